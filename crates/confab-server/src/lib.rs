//! Confab's server: the HTTP API and the domain services behind it.
//!
//! Layout:
//! - [`config`]: the typed configuration, every key with its default.
//! - [`service`]: what Confab does (post, read, vote, moderate), over the `Store` trait.
//! - [`cache`]: the in-process page cache with versioned keys and single-flighted fills.
//! - [`shared`]: the shared cache tier (`confab-cache`) with Confab's keys.
//! - [`encoding`]: gzip, done once per body and kept.
//! - [`http`]: routes, the caller extractor, the error policy, rate limits.
//! - [`conn`]: the accept loop: connection caps and read timeouts under every request.
//! - [`views`]: the JSON shapes; [`openapi`]: the generated document.
//!
//! [`Server::start`] wires a store into a service and serves it until a shutdown signal.

// Tests may unwrap: a failed unwrap is a failed test.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod auth_config;
pub mod cache;
pub mod config;
pub mod conn;
pub mod encoding;
pub mod http;
pub mod openapi;
pub mod service;
pub mod shared;
pub mod views;

use confab_core::sign::Signer;
use confab_core::DomainError;
use confab_store::Store;
use service::Service;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A running Confab, built from a config and a store.
pub struct Server {
    pub state: http::AppState,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
}

/// The bus the config asks for: Redis when `bus.redis_url` is set (a node starts even while
/// Redis is down and connects when it comes up), else in-process.
pub async fn connect_bus(config: &config::Config) -> Result<Arc<dyn confab_bus::Bus>, DomainError> {
    let cfg = confab_bus::BusConfig {
        subscriber_buffer: config.realtime.subscriber_buffer,
        ..Default::default()
    };
    if config.bus.redis_url.is_empty() {
        return Ok(Arc::new(confab_bus::InProcessBus::new(cfg)));
    }
    let bus = confab_bus::RedisBus::connect(config.bus.redis_url.expose(), cfg)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "bus: cannot use redis_url");
            DomainError::invalid(format!("bus.redis_url: {e}"))
        })?;
    Ok(Arc::new(bus))
}

impl Server {
    pub async fn new(
        config: config::Config,
        store: Arc<dyn Store>,
        secret: &[u8],
    ) -> Result<Server, DomainError> {
        let limits = Arc::new(http::limits::Limiters::new(&config.rate_limit));
        let demo = config.demo_forum;
        let bus = connect_bus(&config).await?;
        let live = Arc::new(tokio::sync::Semaphore::new(config.realtime.max_connections));
        let report = http::report::Reporter::new(&config.errors)?;
        let svc = Service::new(config, store, Signer::new(secret), bus).await?;
        if demo {
            svc.ensure_demo_forum().await?;
        }
        let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        let draining = Arc::new(AtomicBool::new(false));
        Ok(Server {
            state: http::AppState::new(http::AppParts {
                svc,
                limits,
                draining,
                live,
                shutdown,
                report,
            }),
            shutdown_tx,
        })
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.state.svc
    }

    /// Where errors are reported (`[errors] sentry_dsn`), if anywhere.
    pub fn reporter(&self) -> Option<&Arc<http::report::Reporter>> {
        self.state.report.as_ref()
    }

    /// Starts draining before a stop: `/readyz` answers 503 `draining` (the load balancer takes
    /// the node out) and live clients are told to reconnect, to another node; requests are
    /// still served until the `shutdown` future given to [`Server::serve`] resolves.
    pub fn drainer(&self) -> impl Fn() + Send + Sync + 'static {
        let draining = self.state.draining.clone();
        let live = self.shutdown_tx.clone();
        move || {
            draining.store(true, Ordering::Relaxed);
            let _ = live.send(true);
        }
    }

    /// Serves on `listener` until `shutdown` resolves, then drains in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let limits = state.limits.clone();
        let svc = state.svc.clone();
        let pruner = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.prune();
                // Idempotency keys are kept for a day.
                if let Err(e) = svc.prune_idempotency().await {
                    tracing::warn!(error = %e, "pruning idempotency keys failed");
                }
            }
        });
        let svc = state.svc.clone();
        let refresher = tokio::spawn(async move {
            // Changes are announced on the bus (service::fleet); this reload is the backstop
            // for a change that was not heard: every 5 s, every second while the bus is lost.
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n = 0u64;
            // The first look at other processes' writes, before any page is cached.
            svc.check_outside_writes().await;
            loop {
                tick.tick().await;
                n += 1;
                // Histogram samples are folded into their buckets every second (between
                // scrapes they would otherwise pile up, one per request).
                http::metrics::upkeep();
                if n.is_multiple_of(5) || !svc.trusted() {
                    svc.reload_registries().await;
                    svc.check_outside_writes().await;
                }
                if n.is_multiple_of(service::secret_check::CLAIM_EVERY.as_secs()) {
                    if let Err(e) = svc.claim_secret().await {
                        // Not fatal here: the node serves on, and says so every minute.
                        tracing::error!(error = %e, "secret check");
                    }
                }
            }
        });
        // The task worker runs here unless `[tasks] in_process` is off (`confab serve --role api`).
        let stop_worker = confab_worker::CancellationToken::new();
        let config = state.svc.config();
        let worker = config.tasks.in_process.then(|| {
            let listen = listener.local_addr().unwrap_or(config.listen);
            tokio::spawn(state.svc.task_worker(listen).run(stop_worker.clone()))
        });
        let draining = state.draining.clone();
        let shutdown_tx = self.shutdown_tx;
        let connections = config.connections.clone();
        let trusted = config.trusted_proxies.clone();
        let fd_limit = conn::raise_fd_limit();
        let max = conn::effective_max(connections.max, fd_limit);
        tracing::info!(
            open_file_limit = fd_limit,
            max_connections = max,
            max_per_ip = connections.max_per_ip,
            header_timeout_secs = connections.header_timeout_secs,
            body_timeout_secs = connections.body_timeout_secs,
            "accepting connections"
        );
        let app = http::router(state);
        conn::serve(listener, app, &connections, &trusted, max, async move {
            shutdown.await;
            draining.store(true, Ordering::Relaxed);
            // Live connections end with a "reconnect" event, so draining can finish.
            let _ = shutdown_tx.send(true);
            tracing::info!("shutting down: finishing in-flight requests");
        })
        .await;
        pruner.abort();
        refresher.abort();
        stop_worker.cancel();
        if let Some(w) = worker {
            // Bounded: the worker gives running tasks a grace period, then stops.
            let _ = w.await;
        }
        Ok(())
    }
}

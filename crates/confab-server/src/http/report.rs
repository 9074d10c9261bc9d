//! Error reports to a Sentry-compatible service (`[errors] sentry_dsn`): every 5xx answer and
//! every panic while answering a request becomes one event, tagged with the request id (the
//! one in the access log and the `X-Request-Id` header), route, method and status, with the
//! request's performance record and the cause the store noted (`confab_record::note_cause`:
//! the database's own error, which the client is not told) as extra data.
//!
//! Never in a request's way: an event is handed to the client's transport queue (30 events,
//! full means dropped) and sent from the transport's own thread, each send bounded by
//! [`SEND_TIMEOUT`]. Each server has its own client (no process-wide hub), so servers in one
//! process report to their own DSNs.

use crate::config::ErrorsConfig;
use confab_core::DomainError;
use sentry::protocol::{Event, Level, Value};
use std::sync::Arc;
use std::time::Duration;

/// Longest one report may take to send (connect included).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A server's error reporter.
pub struct Reporter {
    client: sentry::Client,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

/// What went wrong in one request.
pub struct Failure<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    /// The panic's message, or the error code and message the client was answered.
    pub what: String,
    pub panicked: bool,
    pub record: &'a confab_record::Snapshot,
}

impl Reporter {
    /// The reporter `cfg` asks for; `None` when it names no DSN. A DSN that does not parse is
    /// refused (at start, not at the first error).
    pub fn new(cfg: &ErrorsConfig) -> Result<Option<Arc<Reporter>>, DomainError> {
        if cfg.sentry_dsn.is_empty() {
            return Ok(None);
        }
        let dsn: sentry::types::Dsn = cfg
            .sentry_dsn
            .expose()
            .parse()
            .map_err(|e| DomainError::invalid(format!("errors.sentry_dsn: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| DomainError::invalid(format!("errors.sentry_dsn: {e}")))?;
        let client = sentry::Client::with_options(sentry::ClientOptions {
            dsn: Some(dsn),
            release: Some(concat!("confab@", env!("CARGO_PKG_VERSION")).into()),
            default_integrations: false,
            shutdown_timeout: Duration::from_secs(2),
            transport: Some(Arc::new(move |opts: &sentry::ClientOptions| {
                Arc::new(sentry::transports::ReqwestHttpTransport::with_client(
                    opts,
                    http.clone(),
                )) as Arc<dyn sentry::Transport>
            })),
            ..Default::default()
        });
        Ok(Some(Arc::new(Reporter { client })))
    }

    /// Queues one event for `f` (never waits for the network).
    pub fn report(&self, f: &Failure<'_>) {
        let mut ev = Event {
            level: if f.panicked {
                Level::Fatal
            } else {
                Level::Error
            },
            message: Some(format!("{} {} {}: {}", f.status, f.method, f.route, f.what)),
            transaction: Some(format!("{} {}", f.method, f.route)),
            logger: Some("confab.http".into()),
            ..Default::default()
        };
        ev.tags.insert("request_id".into(), f.request_id.into());
        ev.tags.insert("route".into(), f.route.into());
        ev.tags.insert("method".into(), f.method.into());
        ev.tags.insert("status".into(), f.status.to_string());
        ev.tags.insert("panic".into(), f.panicked.to_string());
        let r = f.record;
        if let Some(cause) = &r.cause {
            ev.extra.insert("cause".into(), Value::from(cause.clone()));
        }
        for (k, v) in [
            ("statements", r.statements),
            ("db_us", r.db_us),
            ("page_hits", r.page_hits),
            ("page_misses", r.page_misses),
            ("tier_hits", r.tier_hits),
            ("tier_misses", r.tier_misses),
            ("tier_us", r.tier_us),
            ("bus_publishes", r.bus_publishes),
            ("render_us", r.render_us),
        ] {
            ev.extra.insert(k.into(), Value::from(v));
        }
        self.client.capture_event(ev, None);
    }
}

/// A panic payload's message.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

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

impl Reporter {
    /// Reports panics outside any request too (the worker, background tasks): a panic hook,
    /// run before the one it replaces. A panic while answering a request is left to the HTTP
    /// layer, which reports it with the request id. Process-wide: for a process that runs one
    /// server (`confab serve`). The hook holds the reporter weakly.
    pub fn report_other_panics(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if confab_record::current().is_none() {
                if let Some(r) = me.upgrade() {
                    r.report_background_panic(info);
                }
            }
            prev(info);
        }));
    }

    fn report_background_panic(&self, info: &std::panic::PanicHookInfo<'_>) {
        let what = panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        let mut ev = Event {
            level: Level::Fatal,
            message: Some(format!("panic outside a request: {what}{at}")),
            logger: Some("confab".into()),
            ..Default::default()
        };
        ev.tags.insert("panic".into(), "true".into());
        ev.tags.insert("thread".into(), thread);
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

#[cfg(test)]
pub(crate) mod testing {
    /// A local receiver of Sentry envelopes (`POST /api/{project}/envelope/`): each body is
    /// sent on the channel with its project.
    pub async fn envelope_receiver() -> (u16, tokio::sync::mpsc::Receiver<(String, Vec<u8>)>) {
        use axum::extract::{Path, State};
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let app = axum::Router::new()
            .route(
                "/api/{project}/envelope/",
                axum::routing::post(
                    |State(tx): State<tokio::sync::mpsc::Sender<(String, Vec<u8>)>>,
                     Path(project): Path<String>,
                     body: bytes::Bytes| async move {
                        let _ = tx.send((project, body.to_vec())).await;
                        "{}"
                    },
                ),
            )
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (port, rx)
    }

    /// The event in an envelope (the item line that has `tags`).
    pub fn event_of(envelope: &[u8]) -> serde_json::Value {
        envelope
            .split(|&b| b == b'\n')
            .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
            .find(|v| v.get("tags").is_some())
            .unwrap_or_else(|| panic!("no event in {}", String::from_utf8_lossy(envelope)))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{envelope_receiver, event_of};
    use super::Reporter;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_outside_any_request_is_reported_by_the_hook() {
        let (port, mut events) = envelope_receiver().await;
        let r = Reporter::new(&crate::config::ErrorsConfig {
            sentry_dsn: format!("http://publickey@127.0.0.1:{port}/9")
                .as_str()
                .into(),
        })
        .unwrap()
        .unwrap();
        r.report_other_panics();
        // Inside a request's record: left to the HTTP layer, the hook sends nothing.
        let (joined, _) = confab_record::scope(async {
            tokio::spawn(async {}).await.unwrap();
            std::panic::catch_unwind(|| panic!("inside-a-request-7"))
        })
        .await;
        assert!(joined.is_err());
        // A thread of no request.
        let t = std::thread::Builder::new()
            .name("bg-test".into())
            .spawn(|| panic!("outside-any-request-42"))
            .unwrap();
        assert!(t.join().is_err());
        let deadline = Instant::now() + Duration::from_secs(10);
        let ev = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (_, envelope) = tokio::time::timeout(left, events.recv())
                .await
                .expect("the hook's event within 10 s")
                .unwrap();
            let ev = event_of(&envelope);
            let msg = ev["message"].as_str().unwrap_or_default().to_string();
            assert!(!msg.contains("inside-a-request-7"), "{ev}");
            if msg.contains("outside-any-request-42") {
                break ev;
            }
        };
        let _ = std::panic::take_hook();
        assert_eq!(ev["level"], "fatal");
        assert_eq!(ev["tags"]["panic"], "true");
        assert_eq!(ev["tags"]["thread"], "bg-test");
        assert!(ev["tags"].get("request_id").is_none(), "{ev}");
    }
}

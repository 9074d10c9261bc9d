//! `/metrics` (Prometheus text format) and the per-request records: one access log line per
//! request, a warning for a slow one, and the `X-Request-Id` header.
//!
//! The recorder is process-wide (the `metrics` crate has one global recorder): it is installed
//! once, by the first router built in the process, and every server in the process records
//! into it. Tests run several servers in one process; their request counters add up in one
//! registry, and the sampled values (store, caches, live connections) are those of the server
//! that was scraped last.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The request id header, read from the request and sent back on the response.
pub const REQUEST_ID: &str = "x-request-id";

/// Upper bounds (seconds) of the request latency histogram's buckets.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds (seconds) of the bus delivery latency histogram's buckets.
const BUS_LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` if another recorder
/// was installed first (an embedding program's own): `/metrics` then answers 503.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("confab_http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("confab_bus_delivery_seconds".into()),
                    BUS_LATENCY_BUCKETS,
                )
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    Some(handle)
                }
                Err(_) => {
                    tracing::warn!("a metrics recorder is already installed: /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "confab_http_requests_total",
        "Requests answered, by route template, method and status."
    );
    describe_histogram!(
        "confab_http_request_duration_seconds",
        Unit::Seconds,
        "Time from a request's arrival to its answer's headers, by route template and method."
    );
    describe_counter!(
        "confab_db_statements_total",
        "Statements the store has run, by shard server and primary/replica (sampled at scrape time)."
    );
    describe_gauge!(
        "confab_tasks_queued",
        "Queued tasks (due or not) by shard server, counted up to 100000 (sampled at most once a second)."
    );
    describe_gauge!(
        "confab_tasks_oldest_age_seconds",
        "How long the longest-waiting due task has waited past its run time, by shard server."
    );
    describe_counter!(
        "confab_bus_deliveries_total",
        "Published messages this node received from the bus."
    );
    describe_histogram!(
        "confab_bus_delivery_seconds",
        Unit::Seconds,
        "Time from a message's publish to its arrival on this node (Redis bus)."
    );
    describe_counter!(
        "confab_db_reads_total",
        "Reads served by a shard primary or a replica (zero on SQLite)."
    );
    describe_counter!(
        "confab_page_cache_hits_total",
        "Page lookups answered from this node's page cache."
    );
    describe_counter!(
        "confab_page_cache_misses_total",
        "Pages this node's page cache filled."
    );
    describe_gauge!(
        "confab_live_connections",
        "Live (SSE and WebSocket) connections held by this node."
    );
    describe_gauge!(
        "confab_live_connections_max",
        "Live connections this node holds at most."
    );
    describe_counter!(
        "confab_rate_limit_refusals_total",
        "Requests refused with 429 by a rate limit, by allowance."
    );
    describe_gauge!(
        "confab_switch_on",
        "Each feature switch's global value: 1 on, 0 off."
    );
    describe_counter!(
        "confab_bus_publishes_total",
        "Messages handed to the bus: live events and change announcements."
    );
    describe_counter!(
        "confab_spam_checks_total",
        "Calls to the outside spam check, by result (spam, ham, invalid_key, unavailable, breaker_open: not called)."
    );
    describe_counter!(
        "confab_spam_breaker_opens_total",
        "Times the spam check's circuit breaker opened after consecutive failures."
    );
}

/// Drains what histograms hold between scrapes (called periodically by the server).
pub fn upkeep() {
    if let Some(h) = handle() {
        h.run_upkeep();
    }
}

/// A rate limit refused a request (`limit`: which allowance).
pub fn rate_limited(limit: &'static str) {
    metrics::counter!("confab_rate_limit_refusals_total", "limit" => limit).increment(1);
}

/// A message was handed to the bus (`what`: `live` events or `fleet` change announcements).
pub fn bus_publish(what: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!("confab_bus_publishes_total", "kind" => what, "result" => result)
        .increment(1);
}

/// `GET /metrics`: the registry, with the values sampled from the service at scrape time.
pub async fn metrics_route(State(app): State<AppState>) -> Response {
    let Some(handle) = handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed",
        )
            .into_response();
    };
    // One scrape at a time: the sampled values are set and rendered together, so a scrape of
    // another server in the same process cannot slip its values in between.
    static SCRAPE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let queue = app.svc.task_queue().await;
    let text = {
        let _one = SCRAPE.lock().unwrap_or_else(|e| e.into_inner());
        sample(&app, &queue);
        handle.render()
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        text,
    )
        .into_response()
}

/// Copies the service's own counters into the registry.
fn sample(app: &AppState, queue: &[confab_store::QueueDepth]) {
    let svc = &app.svc;
    let s = svc.store_counters();
    for st in svc.store_statements() {
        let shard = st.shard;
        metrics::counter!("confab_db_statements_total", "shard" => shard.clone(), "target" => "primary")
            .absolute(st.primary);
        metrics::counter!("confab_db_statements_total", "shard" => shard, "target" => "replica")
            .absolute(st.replica);
    }
    let now = confab_core::now_ms();
    for q in queue {
        metrics::gauge!("confab_tasks_queued", "shard" => q.shard.clone()).set(q.queued as f64);
        let age = q.oldest_due.map_or(0, |t| now.saturating_sub(t).max(0));
        metrics::gauge!("confab_tasks_oldest_age_seconds", "shard" => q.shard.clone())
            .set(age as f64 / 1000.0);
    }
    metrics::counter!("confab_db_reads_total", "target" => "primary").absolute(s.reads_primary);
    metrics::counter!("confab_db_reads_total", "target" => "replica").absolute(s.reads_replica);

    let (hits, misses) = svc.page_cache_stats();
    metrics::counter!("confab_page_cache_hits_total").absolute(hits);
    metrics::counter!("confab_page_cache_misses_total").absolute(misses);
    if let Some(t) = svc.tier_counters() {
        metrics::counter!("confab_cache_tier_hits_total").absolute(t.hits);
        metrics::counter!("confab_cache_tier_misses_total").absolute(t.misses);
        metrics::counter!("confab_cache_tier_fills_total").absolute(t.fills);
        metrics::counter!("confab_cache_tier_lock_waits_total").absolute(t.lock_waits);
        metrics::counter!("confab_cache_tier_stale_served_total").absolute(t.stale_served);
        metrics::counter!("confab_cache_tier_early_refreshes_total").absolute(t.early_refreshes);
        metrics::counter!("confab_cache_tier_errors_total").absolute(t.errors);
        metrics::counter!("confab_cache_tier_ejections_total").absolute(t.ejections);
        for server in &t.servers {
            metrics::gauge!("confab_cache_tier_server_ejected", "server" => server.name.clone())
                .set(if server.ejected { 1.0 } else { 0.0 });
        }
    }

    let max = svc.config().realtime.max_connections;
    let open = max.saturating_sub(app.live.available_permits());
    metrics::gauge!("confab_live_connections").set(open as f64);
    metrics::gauge!("confab_live_connections_max").set(max as f64);

    for (name, on) in svc.switch_states() {
        metrics::gauge!("confab_switch_on", "switch" => name).set(if on { 1.0 } else { 0.0 });
    }
}

/// What [`observe`] needs besides the request.
#[derive(Clone)]
pub struct Observe {
    /// Requests slower than this get a warning; `None`: never.
    pub slow: Option<Duration>,
    /// Where 5xx answers and panics are reported, if anywhere.
    pub report: Option<std::sync::Arc<super::report::Reporter>>,
}

/// The request's id: the client's (or proxy's) `X-Request-Id` if it is a sane token, else a
/// new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_id(v))
        .map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_owned)
}

/// Handles of the request counter and latency histogram per (route, method, status), so a
/// request costs a read-locked map lookup instead of building and hashing labels in the
/// registry. Bounded: routes are the router's templates, methods and statuses few.
type Handles = (metrics::Counter, metrics::Histogram);
#[allow(clippy::type_complexity)]
static HANDLES: OnceLock<
    std::sync::RwLock<
        std::collections::HashMap<String, std::collections::HashMap<(&'static str, u16), Handles>>,
    >,
> = OnceLock::new();

fn handles(route: &str, method: &'static str, status: u16) -> Handles {
    let map = HANDLES.get_or_init(Default::default);
    if let Some(h) = map
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(route)
        .and_then(|m| m.get(&(method, status)))
    {
        return h.clone();
    }
    let h = (
        metrics::counter!(
            "confab_http_requests_total",
            "route" => route.to_owned(),
            "method" => method,
            "status" => status_label(status)
        ),
        metrics::histogram!(
            "confab_http_request_duration_seconds",
            "route" => route.to_owned(),
            "method" => method
        ),
    );
    map.write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(route.to_owned())
        .or_default()
        .insert((method, status), h.clone());
    h
}

/// The method as a label without allocating (the methods the router answers, else "other").
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The status as a label; the common ones without allocating.
fn status_label(s: u16) -> metrics::SharedString {
    match s {
        200 => "200".into(),
        201 => "201".into(),
        204 => "204".into(),
        304 => "304".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        429 => "429".into(),
        503 => "503".into(),
        _ => s.to_string().into(),
    }
}

/// At most 64 characters of `[A-Za-z0-9._-]`.
fn is_sane_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Counts and times every request by route template, logs it, and warns when it was slow.
/// The line carries the request's performance record (`confab_record`): statements and time in
/// the store, page cache and shared tier hits, misses and time, bus publishes, time rendering;
/// work a handler spawns onto other tasks is not in it. For a live connection (SSE,
/// WebSocket) the duration is the time to its first answer, not the connection's life.
pub async fn observe(State(cfg): State<Observe>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    // Cheap clones (reference-counted), not copies: this runs on every request.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |m| m.as_str());
    let uri = req.uri().clone();
    let path = uri.path();
    let id = request_id(req.headers());
    // A panic while answering is caught here: the client gets a 500 in the API's error shape
    // (not a dropped connection), and the panic is logged and reported.
    let run = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(next.run(req)));
    let (answer, rec) = confab_record::scope(run).await;
    let (mut resp, panicked) = match answer {
        Ok(resp) => (resp, None),
        Err(p) => {
            let what = super::report::panic_message(p.as_ref());
            tracing::error!(request_id = %id, route = %route, panic = %what, "request handler panicked");
            let resp =
                super::error::ApiError::new(confab_core::ErrorCode::Internal, "internal error")
                    .into_response();
            (resp, Some(what))
        }
    };
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    if let Some(report) = &cfg.report {
        // `/readyz` answering 503 (draining, or the data unreachable) is its job, not an error.
        if status >= 500 && route != "/readyz" {
            let what = match (
                &panicked,
                resp.extensions().get::<super::error::ServerError>(),
            ) {
                (Some(p), _) => format!("panic: {p}"),
                (None, Some(e)) => format!("{}: {}", e.code, e.message),
                (None, None) => "server error".to_string(),
            };
            report.report(&super::report::Failure {
                request_id: &id,
                method,
                route,
                status,
                what,
                panicked: panicked.is_some(),
                record: &rec,
            });
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let (requests, duration) = handles(route, method, status);
    requests.increment(1);
    duration.record(elapsed.as_secs_f64());
    // Microsecond precision, printed without float noise.
    let duration_ms = elapsed.as_micros() as f64 / 1000.0;
    let ms = |us: u64| us as f64 / 1000.0;
    // One macro call per level: the record's fields are the same in both lines.
    macro_rules! line {
        ($level:ident, $kind:literal, $msg:literal) => {
            tracing::$level!(
                target: "access",
                kind = $kind,
                method = %method,
                route = %route,
                path = %path,
                status,
                duration_ms,
                statements = rec.statements,
                db_ms = ms(rec.db_us),
                page_hits = rec.page_hits,
                page_misses = rec.page_misses,
                tier_hits = rec.tier_hits,
                tier_misses = rec.tier_misses,
                tier_ms = ms(rec.tier_us),
                bus_publishes = rec.bus_publishes,
                render_ms = ms(rec.render_us),
                request_id = %id,
                $msg
            )
        };
    }
    line!(info, "access", "request");
    if cfg.slow.is_some_and(|slow| elapsed >= slow) {
        line!(warn, "slow", "slow request");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::{is_sane_id, observe, Observe};
    use crate::http::report::testing::{envelope_receiver, event_of};

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_is_reported_with_its_request_id() {
        use tower::ServiceExt;
        let (port, mut events) = envelope_receiver().await;
        let report = crate::http::report::Reporter::new(&crate::config::ErrorsConfig {
            sentry_dsn: format!("http://publickey@127.0.0.1:{port}/7")
                .as_str()
                .into(),
        })
        .unwrap();
        assert!(report.is_some());
        let app: axum::Router = axum::Router::new()
            .route(
                "/boom/{id}",
                axum::routing::get(|| async {
                    if std::hint::black_box(true) {
                        panic!("kaboom");
                    }
                    "never"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Observe { slow: None, report },
                observe,
            ));
        let req = axum::http::Request::get("/boom/12")
            .header("x-request-id", "panic-1")
            .body(axum::body::Body::empty())
            .unwrap();
        // A clone answers: the router (and its reporter) lives on while the event is sent
        // (dropping a reporter waits for its transport, and the receiver runs on this thread).
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 500);
        assert_eq!(resp.headers()["x-request-id"], "panic-1");
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal", "the API's error shape");
        let (project, envelope) =
            tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
                .await
                .expect("an event within 10 s")
                .unwrap();
        assert_eq!(project, "7");
        let ev = event_of(&envelope);
        assert_eq!(ev["tags"]["request_id"], "panic-1");
        assert_eq!(ev["tags"]["panic"], "true");
        assert_eq!(ev["tags"]["route"], "/boom/{id}");
        assert_eq!(ev["level"], "fatal");
        assert!(ev["message"].as_str().unwrap().contains("kaboom"), "{ev}");
    }

    #[test]
    fn a_dsn_that_does_not_parse_is_refused() {
        let bad = crate::config::ErrorsConfig {
            sentry_dsn: "not a dsn".into(),
        };
        assert!(crate::http::report::Reporter::new(&bad).is_err());
        let off = crate::config::ErrorsConfig::default();
        assert!(crate::http::report::Reporter::new(&off).unwrap().is_none());
    }

    #[test]
    fn request_ids() {
        assert!(is_sane_id("abc-123_x.y"));
        assert!(is_sane_id(&"a".repeat(64)));
        assert!(!is_sane_id(&"a".repeat(65)));
        assert!(!is_sane_id(""));
        assert!(!is_sane_id("a b"));
        assert!(!is_sane_id("a\u{e9}"));
    }
}

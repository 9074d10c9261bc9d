//! The HTTP layer. Every route is in [`router`], grouped by the client that calls it.

pub mod api;
pub mod auth;
pub mod bans;
pub mod caller;
pub mod challenge;
pub mod error;
pub mod feeds;
pub mod follows;
pub mod gdpr;
pub mod limits;
pub mod live;
pub mod mail;
pub mod media;
pub mod metrics;
mod origin;
pub mod pin;
pub mod report;
pub mod requests;
mod respond;
pub mod web;

use crate::service::Service;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use confab_core::ErrorCode;
use error::ApiError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// What every handler can reach. Axum clones it for each extractor and layer of every
/// request, so it is one `Arc` (one reference count to move, not one per part).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct AppParts {
    pub svc: Arc<Service>,
    pub limits: Arc<limits::Limiters>,
    /// Set when the node is shutting down: `/readyz` fails so the balancer stops sending.
    pub draining: Arc<AtomicBool>,
    /// Slots for live connections (SSE and WebSocket) on this node.
    pub live: Arc<tokio::sync::Semaphore>,
    /// Turns true when the node shuts down; live connections tell their clients to reconnect.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Where 5xx answers and panics are reported (`[errors] sentry_dsn`), if anywhere.
    pub report: Option<Arc<report::Reporter>>,
}

/// Builds the application's router.
pub fn router(state: AppState) -> Router {
    let config = state.svc.config();
    let max_body = config.limits.max_json_bytes;
    // This server's document: its limits are in it.
    let doc = bytes::Bytes::from(crate::openapi::document(&config.limits));
    let body_rules = BodyRules {
        max: max_body,
        timeout: Duration::from_secs(config.connections.body_timeout_secs.max(1)),
    };
    let observe = metrics::Observe {
        slow: (config.limits.slow_request_ms > 0)
            .then(|| Duration::from_millis(config.limits.slow_request_ms)),
        report: state.report.clone(),
    };
    // Installed before any request is counted.
    let _ = metrics::handle();
    let svc = state.svc.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, parts: &axum::http::request::Parts| {
                origin
                    .to_str()
                    .is_ok_and(|o| cors_allows(&svc, o, parts.uri.path()))
            },
        ))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static(caller::ANON_HEADER),
            HeaderName::from_static(caller::EDIT_HEADER),
            HeaderName::from_static(pin::PIN_HEADER),
            HeaderName::from_static("x-file-name"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static(pin::PIN_HEADER),
        ])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));

    let api = Router::new()
        // The widget.
        .route("/comments", get(api::list_comments).post(api::post_comment))
        .route(
            "/comments/{id}",
            patch(api::edit_comment).delete(api::delete_comment),
        )
        .route("/comments/{id}/replies", get(api::list_replies))
        .route("/comments/{id}/vote", post(api::vote))
        .route("/comments/{id}/flag", post(api::flag))
        .route("/comments/{id}/reactions", post(api::react_comment))
        .route("/comments/{id}/feature", post(api::feature_comment))
        .route("/threads/{id}/reactions", post(api::react_thread))
        .route("/counts", get(api::counts))
        .route("/votes", get(api::my_votes))
        .route("/threads/live", get(live::live_sse))
        .route("/threads/live/ws", get(live::live_ws))
        .route("/preview", post(api::preview))
        .route("/challenge", get(challenge::get_challenge))
        .route("/forums/{forum}/images", post(media::upload_image))
        .route("/images/{id}/{file}", get(media::get_image))
        // Accounts.
        .route("/accounts", post(api::signup))
        .route("/sessions", post(api::login).delete(api::logout))
        .route("/sessions/sso", post(api::sso_login))
        .route("/auth/providers", get(auth::providers))
        .route("/me", get(api::me))
        .route("/password-resets", post(api::request_password_reset))
        .route(
            "/password-resets/confirm",
            post(api::confirm_password_reset),
        )
        .route("/me/password", post(api::change_password))
        .route("/me/email", post(api::change_email))
        .route("/me/sessions", delete(api::end_all_sessions))
        // A reader's own data.
        .route("/me/data", get(gdpr::my_data))
        .route("/me/delete", post(gdpr::delete_me))
        .route("/comments/{id}/data", get(gdpr::guest_comment_data))
        .route("/comments/{id}/erase", post(gdpr::erase_guest_comment))
        .route("/data-requests", post(gdpr::request_data_link))
        .route("/forums/{forum}/readers/data", get(gdpr::forum_reader_data))
        .route(
            "/forums/{forum}/readers/erase",
            post(gdpr::erase_forum_reader),
        )
        .route("/staff/readers/{username}/data", get(gdpr::reader_data))
        .route(
            "/staff/readers/{username}/delete",
            post(gdpr::delete_reader),
        )
        // Moderation.
        .route("/forums", get(api::my_forums).post(api::create_forum))
        .route(
            "/forums/{forum}",
            get(api::forum_settings).patch(api::update_forum),
        )
        .route("/forums/{forum}/comments", get(api::mod_list))
        .route("/forums/{forum}/moderate", post(api::moderate))
        .route(
            "/forums/{forum}/comments/{id}/images/{image}",
            delete(media::remove_image),
        )
        .route("/forums/{forum}/bans", get(bans::bans).post(bans::ban))
        .route(
            "/forums/{forum}/bans/{id}",
            axum::routing::delete(bans::unban),
        )
        .route("/forums/{forum}/log", get(api::mod_log))
        .route("/forums/{forum}/stats", get(api::stats))
        .route("/threads/{id}", patch(api::update_thread))
        .route(
            "/threads/{id}/follow",
            get(follows::following)
                .put(follows::follow)
                .delete(follows::unfollow),
        )
        .route("/forums/{forum}/thread-moves", post(api::move_thread))
        .route(
            "/forums/{forum}/imports",
            get(api::list_imports).post(api::upload_import),
        )
        .route("/forums/{forum}/imports/{id}", get(api::get_import))
        // Staff.
        .route("/forums/{forum}/moderators", get(api::forum_moderators))
        .route(
            "/forums/{forum}/moderators/{username}",
            put(api::add_moderator).delete(api::remove_moderator),
        )
        .route(
            "/staff/{username}",
            put(api::add_staff).delete(api::remove_staff),
        )
        .route("/switches", get(api::list_switches))
        .route(
            "/switches/{name}",
            put(api::set_switch).delete(api::reset_switch),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(private_answers))
        .layer(cors)
        .layer(middleware::from_fn_with_state(
            state.svc.clone(),
            origin::refuse_unknown_origins,
        ));

    Router::new()
        .nest("/api/v1", api)
        .route("/api/openapi.json", get(move || openapi(doc.clone())))
        // Liveness: the process answers (whatever its data does); readiness is /readyz.
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/statz", get(statz))
        .route("/metrics", get(metrics::metrics_route))
        .merge(web::routes())
        .merge(mail::routes())
        .merge(feeds::routes())
        .merge(auth::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), pin::pins))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(body_rules, read_body))
        // Outermost: counts, times and logs every answer, refusals of the layers above included.
        .layer(middleware::from_fn_with_state(observe, metrics::observe))
        .with_state(state)
}

/// Whether a browser on `origin` may read answers to (and send credentials with) a request
/// for `path`. A forum's routes (`/forums/{forum}/...`: its queue, settings, bans, log) are
/// open only to that forum's own sites; the forum list and forum creation only to the
/// dashboard on this server (same origin, which needs no CORS); the widget's routes, whose
/// forum is in the query or body, to any forum's sites (the service checks the origin against
/// the forum the request names).
fn cors_allows(svc: &Service, origin: &str, path: &str) -> bool {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    if is_widget_path(path) {
        return svc.any_forum_allows_origin(origin);
    }
    // Staff's routes answer the dashboard only (a forum's imports too).
    if path.starts_with("/switches") || path.starts_with("/staff") || is_imports_path(path) {
        return false;
    }
    match path.strip_prefix("/forums") {
        Some("" | "/") | None => false,
        Some(rest) => {
            let name = rest.trim_start_matches('/').split('/').next().unwrap_or("");
            let name = percent_decode(name);
            svc.forum_allows_origin(&name, origin)
        }
    }
}

/// The widget's routes (under `/api/v1`): all but staff's and a forum's own (`/forums...`).
pub(crate) fn is_widget_path(path: &str) -> bool {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    !(path.starts_with("/switches") || path.starts_with("/staff") || path.starts_with("/forums"))
}

pub(crate) fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(s.replace('+', "%2B").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

/// Whether an API path (under `/api/v1`) answers about the caller's own account or a forum's
/// moderation: such answers, errors included, are never stored by a browser or a proxy.
fn is_private(path: &str) -> bool {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let under = |p: &str| {
        path == p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    under("/me")
        || under("/sessions")
        || under("/accounts")
        || under("/forums")
        || under("/switches")
        || under("/staff")
        || under("/password-resets")
}

/// `Cache-Control: private, no-store` on the answers of [`is_private`] paths.
async fn private_answers(req: Request, next: Next) -> Response {
    let private = is_private(req.uri().path());
    let mut resp = next.run(req).await;
    if private {
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    resp
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

async fn method_not_allowed() -> Response {
    let mut r = ApiError::new(ErrorCode::BadRequest, "method not allowed").into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// How request bodies are read: at most `max` bytes, all of it within `timeout`.
#[derive(Clone, Copy)]
struct BodyRules {
    max: usize,
    timeout: Duration,
}

/// Reads the request's body before any handler sees it: a body declared over the limit is
/// refused before a byte of it is read (413), one that grows past it too, and one that does not
/// arrive within the body timeout gets 408 (a client sending slowly, or not at all, holds
/// nothing for long). Bodies here are small JSON documents and forms, so buffering costs
/// nothing; an empty body passes straight through.
async fn read_body(State(rules): State<BodyRules>, req: Request, next: Next) -> Response {
    use http_body_util::BodyExt;
    if is_upload(req.method(), req.uri().path()) {
        // An export (streamed to disk by its handler) or a picture (read by its handler up to
        // `[images] max_bytes`): under limits of their own.
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is over {} bytes", rules.max),
        )
        .into_response()
    };
    if declared.is_some_and(|n| n > rules.max as u64) {
        return too_large();
    }
    if axum::body::HttpBody::size_hint(req.body()).exact() == Some(0) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, rules.max);
    let bytes = match tokio::time::timeout(rules.timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(_)) => {
            return ApiError::new(ErrorCode::BadRequest, "the request body could not be read")
                .into_response()
        }
        Err(_) => {
            let secs = rules.timeout.as_secs();
            return ApiError::new(
                ErrorCode::RequestTimeout,
                format!("the request body did not arrive within {secs} s"),
            )
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Whether `path` (under `/api/v1`) is a forum's imports or one of them.
fn is_imports_path(path: &str) -> bool {
    path.strip_prefix("/forums/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, tail)| tail == "imports" || tail.starts_with("imports/"))
}

/// Whether a request is an export's upload (`POST /api/v1/forums/{forum}/imports`), whose body
/// its handler streams to disk with a limit of its own (`[import] max_upload_mb`) and the body
/// timeout applied to each piece, or a picture's (`POST /api/v1/forums/{forum}/images`), read
/// by its handler up to `[images] max_bytes` within the body timeout.
fn is_upload(method: &Method, path: &str) -> bool {
    method == Method::POST
        && path
            .strip_prefix("/api/v1/forums/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(forum, tail)| {
                !forum.is_empty() && (tail == "imports" || tail == "images")
            })
}

/// Store counters (statements run, reads by primaries and replicas, statements by shard server
/// and primary/replica): what `confab bench`
/// reports as queries per request and the replicas' share of reads.
async fn statz(State(app): State<AppState>) -> Response {
    axum::Json(serde_json::json!({
        "store": app.svc.store_stats(),
        "store_problems": app.svc.store_problems(),
        "statements": app.svc.store_statements(),
        "cache_tier": app.svc.tier_stats(),
        "trusted": app.svc.trusted(),
    }))
    .into_response()
}

/// Readiness for a load balancer: 200 while this node can serve (`ready`, or `degraded: why`),
/// 503 while it is draining before a stop or cannot reach its data (`down: why`).
async fn readyz(State(app): State<AppState>) -> Response {
    use crate::service::Readiness;
    if app.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    match app.svc.readiness().await {
        Readiness::Ready => (StatusCode::OK, "ready".to_string()).into_response(),
        Readiness::Degraded(why) => (StatusCode::OK, format!("degraded: {why}")).into_response(),
        Readiness::Down(why) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("down: {why}")).into_response()
        }
    }
}

async fn openapi(doc: bytes::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc).into_response()
}

#[cfg(test)]
mod tests {
    use super::{is_private, is_upload};
    use axum::http::Method;

    #[test]
    fn only_an_upload_skips_the_body_limit() {
        assert!(is_upload(&Method::POST, "/api/v1/forums/blog/imports"));
        assert!(!is_upload(&Method::GET, "/api/v1/forums/blog/imports"));
        assert!(!is_upload(&Method::POST, "/api/v1/forums/blog/imports/1"));
        assert!(!is_upload(&Method::POST, "/api/v1/forums//imports"));
        assert!(!is_upload(&Method::POST, "/api/v1/forums/blog/bans"));
        assert!(!is_upload(&Method::POST, "/forums/blog/imports"));
        assert!(!is_upload(&Method::POST, "/api/v1/forums/a/b/imports"));
        assert!(is_upload(&Method::POST, "/api/v1/forums/blog/images"));
        assert!(!is_upload(&Method::GET, "/api/v1/forums/blog/images"));
        assert!(!is_upload(&Method::POST, "/api/v1/forums//images"));
        assert!(super::is_imports_path("/forums/blog/imports"));
        assert!(super::is_imports_path("/forums/blog/imports/7"));
        assert!(!super::is_imports_path("/forums/blog/importsx"));
        assert!(!super::is_imports_path("/forums/blog/log"));
    }

    #[test]
    fn private_paths() {
        for p in [
            "/me",
            "/api/v1/me",
            "/forums",
            "/forums/blog",
            "/forums/blog/comments",
            "/sessions",
            "/accounts",
            "/forums/x/bans/1",
            "/api/v1/password-resets",
            "/api/v1/password-resets/confirm",
            "/api/v1/me/sessions",
        ] {
            assert!(is_private(p), "{p}");
        }
        for p in [
            "/comments",
            "/counts",
            "/votes",
            "/mee",
            "/forumsx",
            "/threads/1",
            "/api/v1/comments",
        ] {
            assert!(!is_private(p), "{p}");
        }
    }
}

//! Atom feeds of newest approved comments (`service::feeds`), for feed readers:
//!
//! - `GET /feeds/{forum}/comments.atom`: a forum's, on every thread;
//! - `GET /feeds/{forum}/thread.atom?ident=I`: one thread's.
//!
//! Both answer `If-None-Match` with 304, are cacheable by anyone for a minute, and may be read
//! from any site (`Access-Control-Allow-Origin: *`: they hold only what the public page shows).

use super::caller::Who;
use super::error::{ApiError, Query};
use super::AppState;
use crate::service::feeds::Feed;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use confab_core::ident::Ident;
use serde::Deserialize;

const ATOM: &str = "application/atom+xml; charset=utf-8";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/feeds/{forum}/comments.atom", get(forum_feed))
        .route("/feeds/{forum}/thread.atom", get(thread_feed))
}

/// Where feed links point: `[mail] public_url` when set (the server's public address), else
/// the address the reader used.
pub(crate) fn public_base(app: &AppState, headers: &HeaderMap, https: bool) -> String {
    let configured = app
        .svc
        .config()
        .mail
        .public_url
        .trim()
        .trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// The feeds of a forum, as `thread_fragment` links them.
pub(crate) fn forum_feed_path(forum: &str) -> String {
    format!("/feeds/{}/comments.atom", urlencoding(forum))
}

pub(crate) fn thread_feed_path(forum: &str, ident: &str) -> String {
    format!(
        "/feeds/{}/thread.atom?ident={}",
        urlencoding(forum),
        urlencoding(ident)
    )
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn forum_feed(
    State(app): State<AppState>,
    Who(caller): Who,
    headers: HeaderMap,
    Path(forum): Path<String>,
) -> Result<Response, ApiError> {
    let f = app.svc.forum(&forum)?;
    let me = public_base(&app, &headers, caller.https) + &forum_feed_path(&f.name);
    let feed = app.svc.forum_feed(f, &me).await?;
    Ok(respond(&headers, &feed))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThreadFeedQuery {
    ident: String,
}

async fn thread_feed(
    State(app): State<AppState>,
    Who(caller): Who,
    headers: HeaderMap,
    Path(forum): Path<String>,
    Query(q): Query<ThreadFeedQuery>,
) -> Result<Response, ApiError> {
    let f = app.svc.forum(&forum)?;
    let ident = Ident::parse(&q.ident)?;
    let me = public_base(&app, &headers, caller.https) + &thread_feed_path(&f.name, ident.as_str());
    let feed = app.svc.thread_feed(f, ident, &me).await?;
    Ok(respond(&headers, &feed))
}

fn respond(headers: &HeaderMap, feed: &Feed) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == feed.etag || t.trim() == "*")
        });
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        feed.xml.clone().into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ATOM));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&feed.etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

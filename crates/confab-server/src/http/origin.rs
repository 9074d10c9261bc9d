//! A page whose origin no forum lists gets a refusal it can read.
//!
//! CORS alone answers such a page with nothing it may read: the widget could only say "could
//! not reach the comment server", a false network error. For the widget's routes (those
//! [`super::cors_allows`] opens to every forum's sites) a request that is not a preflight is
//! answered here instead, before any handler runs: `403 origin_not_allowed`, readable by that
//! origin, naming the origin and the command that allows it. It says nothing the page does not
//! know already (its own origin, the forum it asked for) and carries no data. Preflights stay
//! refused, so a request a browser would preflight (a write with a JSON body, a signed-in read)
//! is never sent from such a page: the widget asks with a plain GET to learn why.

use super::caller::same_origin;
use super::error::ApiError;
use crate::service::Service;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use confab_core::ErrorCode;
use std::sync::Arc;

/// The middleware: see the module's documentation.
pub(super) async fn refuse_unknown_origins(
    State(svc): State<Arc<Service>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(origin) = refused_origin(&svc, &req) else {
        return next.run(req).await;
    };
    let forum = forum_in_query(req.uri().query()).unwrap_or("FORUM");
    let mut resp = ApiError::new(
        ErrorCode::OriginNotAllowed,
        format!(
            "origin {origin} is not among the allowed origins of forum {forum}; \
             its owner can add it with: confab admin forum {forum} --add-origin {origin}"
        ),
    )
    .into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The request's origin when it is to be refused here: a web page's (`http(s)://host[:port]`),
/// not this server's own, that no forum lists, asking a widget route, and not a preflight.
fn refused_origin(svc: &Service, req: &Request) -> Option<String> {
    if req.method() == Method::OPTIONS {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?.to_str().ok()?;
    if !is_web_origin(origin)
        || same_origin(origin, req.headers())
        || !super::is_widget_path(req.uri().path())
        || svc.any_forum_allows_origin(origin)
    {
        return None;
    }
    Some(origin.to_string())
}

/// `http(s)://` and a host (with a port) of at most 255 plain characters: nothing else is
/// echoed back.
fn is_web_origin(o: &str) -> bool {
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty()
            && r.len() <= 255
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
    })
}

/// The forum the query names (`forum=`), if it is a plain name.
fn forum_in_query(q: Option<&str>) -> Option<&str> {
    q?.split('&')
        .filter_map(|kv| kv.strip_prefix("forum="))
        .next()
        .filter(|f| {
            !f.is_empty()
                && f.len() <= 64
                && f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_web_origins_are_echoed() {
        assert!(is_web_origin("https://blog.example"));
        assert!(is_web_origin("http://localhost:8080"));
        assert!(is_web_origin("http://[::1]:3000"));
        assert!(!is_web_origin("null"));
        assert!(!is_web_origin("https://"));
        assert!(!is_web_origin("https://a.example\r\nx: y"));
        assert!(!is_web_origin("file://x"));
    }

    #[test]
    fn the_forum_is_read_from_the_query_when_plain() {
        assert_eq!(forum_in_query(Some("forum=blog&ident=x")), Some("blog"));
        assert_eq!(
            forum_in_query(Some("ident=x&forum=my_site-2")),
            Some("my_site-2")
        );
        assert_eq!(forum_in_query(Some("forum=%3Cb%3E")), None);
        assert_eq!(forum_in_query(Some("ident=x")), None);
        assert_eq!(forum_in_query(None), None);
    }
}

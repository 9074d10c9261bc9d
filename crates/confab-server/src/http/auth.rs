//! Signing in with an OpenID provider or GitHub (`service::oidc`), in a popup the widget opens:
//!
//! - `GET /api/v1/auth/providers`: the configured providers, for the widget's buttons.
//! - `GET /auth/{provider}?forum=F&origin=O`: begins the flow for the page at `O` (one of the
//!   forum's sites) and redirects to the provider; the flow is kept in a signed cookie.
//! - `GET /auth/{provider}/callback`: where the provider sends the reader back. The page
//!   hands the session to the widget with `postMessage`, to the page's origin only, and closes.
//!   A refusal is the API's JSON error, or (for a browser) a page saying why that also tells
//!   the widget.

use super::caller::{cookie, Who};
use super::error::{ApiError, Query};
use super::AppState;
use crate::http::error::status_of;
use crate::openapi::errors::*;
use crate::service::oidc::{AuthFailed, ProviderInfo, FLOW_COOKIE};
use crate::views::{account_view, SessionView};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use confab_core::render::escape_html;
use serde::{Deserialize, Serialize};

/// The browser routes (the providers' list is an API route, in `http/mod.rs`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/{provider}", get(start))
        .route("/auth/{provider}/callback", get(callback))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProvidersView {
    pub providers: Vec<ProviderInfo>,
}

/// The sign-in providers configured on this server (OpenID Connect providers and GitHub),
/// for the widget's "Sign in with ..." buttons.
#[utoipa::path(get, path = "/api/v1/auth/providers", tag = "accounts",
    responses((status = 200, body = ProvidersView), RateLimited, Internal))]
pub async fn providers(State(app): State<AppState>) -> Response {
    axum::Json(ProvidersView {
        providers: app.svc.auth_providers(),
    })
    .into_response()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Forum short name.
    pub forum: String,
    /// The origin of the page the widget is on (one of the forum's sites): the session is
    /// handed to it, and to no other.
    pub origin: String,
}

fn flow_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    // Lax: sent on the provider's top-level redirect back, not on cross-site subrequests.
    HeaderValue::from_str(&format!(
        "{FLOW_COOKIE}={value}; Path=/auth/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Begin signing in with a provider: redirects (303) to its sign-in page, with the flow's
/// state, nonce and PKCE verifier kept in a signed cookie (valid for `auth.flow_secs`).
#[utoipa::path(get, path = "/auth/{provider}", tag = "accounts", operation_id = "auth_start",
    params(("provider" = String, Path, description = "A provider's name, or github"), StartQuery),
    responses((status = 303, description = "To the provider's sign-in page"),
        BadRequest, Forbidden, NotFound, RateLimited, Internal, Unavailable))]
pub async fn start(
    State(app): State<AppState>,
    Who(caller): Who,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Query(q): Query<StartQuery>,
) -> Result<Response, ApiError> {
    app.limits.check_auth(&caller)?;
    // Without a configured public URL, providers send the reader back where they came from.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .ok_or_else(|| ApiError::new(confab_core::ErrorCode::BadRequest, "no valid Host header"))?;
    let scheme = if caller.https { "https" } else { "http" };
    let started = app
        .svc
        .auth_start(
            &provider,
            &q.forum,
            &q.origin,
            &format!("{scheme}://{host}"),
        )
        .await?;
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&started.location)
            .map_err(|_| ApiError::from(confab_core::DomainError::internal()))?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.append(
        header::SET_COOKIE,
        flow_cookie(&started.cookie, started.max_age_secs, caller.https),
    );
    Ok(resp)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's refusal (`access_denied`, ...).
    pub error: Option<String>,
}

/// Where the provider sends the reader back. Answers a page that hands the session (as
/// `POST /api/v1/sessions` answers it) to the widget on the page that began the flow
/// (`postMessage` to that origin only) and sets the session cookie; a client that does not
/// ask for HTML gets the session as JSON. Refused: a missing or forged flow cookie, a `state`
/// that is not the flow's, an expired flow, a code the provider refuses, an ID token that is
/// not valid (signature, issuer, audience, expiry, nonce).
#[utoipa::path(get, path = "/auth/{provider}/callback", tag = "accounts", operation_id = "auth_callback",
    params(("provider" = String, Path, description = "A provider's name, or github"), CallbackQuery),
    responses((status = 200, body = SessionView, description = "Signed in"),
        BadRequest, Unauthorized, NotFound, RateLimited, Internal, Unavailable))]
pub async fn callback(
    State(app): State<AppState>,
    Who(caller): Who,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    app.limits.check_auth(&caller)?;
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let result = app
        .svc
        .auth_finish(
            &provider,
            cookie(&headers, FLOW_COOKIE),
            q.code.as_deref(),
            q.state.as_deref(),
            q.error.as_deref(),
        )
        .await;
    let clear = flow_cookie("", 0, caller.https);
    let mut resp = match result {
        Ok(done) => {
            let view = SessionView {
                account: account_view(
                    &done.session.account,
                    app.svc.moderated_forums(&done.session.account),
                ),
                token: done.session.token.clone(),
            };
            let mut r = if html {
                let msg = serde_json::json!({"confab": "session", "session": view});
                hand_over(
                    StatusCode::OK,
                    "Signed in",
                    "You are signed in. You can close this window.",
                    &done.origin,
                    &msg,
                )
            } else {
                axum::Json(view).into_response()
            };
            super::api::set_session_cookie(&mut r, &done.session.token, caller.https);
            r
        }
        Err(AuthFailed { error, origin }) => {
            if !html {
                let mut r = ApiError::from(error).into_response();
                r.headers_mut().append(header::SET_COOKIE, clear);
                return Ok(r);
            }
            let status = status_of(error.code);
            let msg = serde_json::json!({"confab": "auth-error", "error": {"code": error.code.as_str(), "message": error.message}});
            match origin {
                Some(o) => hand_over(status, "Not signed in", &error.message, &o, &msg),
                None => hand_over(status, "Not signed in", &error.message, "", &msg),
            }
        }
    };
    resp.headers_mut().append(header::SET_COOKIE, clear);
    Ok(resp)
}

/// A page that says `text` and, when it has the page's origin, posts `msg` to the window that
/// opened it (at that origin only) and closes.
fn hand_over(
    status: StatusCode,
    title: &str,
    text: &str,
    origin: &str,
    msg: &serde_json::Value,
) -> Response {
    // JSON in a script element: `<` escaped so no string can end the element.
    let data = serde_json::json!({"origin": origin, "msg": msg})
        .to_string()
        .replace('<', "\\u003c");
    let script = "var d=JSON.parse(document.getElementById('d').textContent);\
        if(d.origin&&window.opener){window.opener.postMessage(d.msg,d.origin);\
        if(d.msg.confab==='session')window.close();}";
    let hash = {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()))
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:30em;margin:3em auto;padding:0 1em;line-height:1.5}}</style></head>\
         <body><h1>{t}</h1><p>{m}</p><script type=\"application/json\" id=\"d\">{data}</script><script>{script}</script></body></html>",
        t = escape_html(title),
        m = escape_html(text),
    );
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

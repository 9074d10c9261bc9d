//! Read-your-writes pins over HTTP (ARCHITECTURE.md, "Read-your-writes").
//!
//! A request that commits a write gets a signed pin naming the shard server and the commit's
//! WAL position, valid for [`PIN_TTL_MS`]: in the `x-confab-pin` response header (the widget,
//! on other origins, sends it back as a header) and in a `confab_pin` cookie (same-site
//! clients). A later request carrying a valid pin reads from a replica only if that replica
//! has replayed past it, else from the primary. The embedded backend records no positions,
//! so it never sets a pin. The service signs, checks and applies pins
//! (`Service::reading_pinned`, `Service::pin_token`); the position of a write comes back in the
//! service's result, and the handler hands it here with [`wrote`].

use crate::http::AppState;
use crate::service::pins::WritePos;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use crate::service::pins::PIN_TTL_MS;

pub const PIN_HEADER: &str = "x-confab-pin";
const PIN_COOKIE: &str = "confab_pin";

fn from_cookie(req: &Request) -> Option<&str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';').map(str::trim).find_map(|kv| {
                kv.strip_prefix(PIN_COOKIE)
                    .and_then(|r| r.strip_prefix('='))
            })
        })
}

/// The pin token a request carries, if any (the service checks it).
fn pin_token(req: &Request) -> Option<String> {
    req.headers()
        .get(PIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| from_cookie(req))
        .map(str::to_string)
}

/// Marks a response whose request committed a write at a known position: [`pins`] gives the
/// client its pin. Handlers attach it with [`wrote`], from the position the service returned.
#[derive(Debug, Clone, Copy)]
struct Wrote(WritePos);

/// `resp`, carrying the position its write committed at (if the backend gave one).
pub fn wrote(resp: impl IntoResponse, at: Option<WritePos>) -> Response {
    let mut resp = resp.into_response();
    if let Some(at) = at {
        resp.extensions_mut().insert(Wrote(at));
    }
    resp
}

pub async fn pins(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let pin = pin_token(&req);
    let mut resp = state
        .svc
        .reading_pinned(pin.as_deref(), next.run(req))
        .await;
    let wrote = resp
        .extensions_mut()
        .remove::<Wrote>()
        .map(|Wrote(at)| state.svc.pin_token(at));
    if let Some(token) = wrote {
        if let Ok(v) = HeaderValue::from_str(&token) {
            resp.headers_mut().insert(PIN_HEADER, v);
        }
        let cookie = format!(
            "{PIN_COOKIE}={token}; Max-Age={}; Path=/; HttpOnly; SameSite=Lax",
            PIN_TTL_MS / 1000
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

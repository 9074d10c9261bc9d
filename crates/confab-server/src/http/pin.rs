//! Read-your-writes pins over HTTP (DESIGN.md section 3).
//!
//! A request that commits a write gets a signed pin naming the shard server and the commit's
//! WAL position, valid for [`PIN_TTL_MS`]: in the `x-confab-pin` response header (the widget,
//! on other origins, sends it back as a header) and in a `confab_pin` cookie (same-site
//! clients). A later request carrying a valid pin reads from a replica only if that replica
//! has replayed past it, else from the primary. The embedded backend records no positions,
//! so it never sets a pin. The service signs, checks and applies pins
//! (`Service::pinned`); this carries them.

use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

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

pub async fn pins(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let pin = pin_token(&req);
    let (mut resp, wrote) = state.svc.pinned(pin.as_deref(), next.run(req)).await;
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

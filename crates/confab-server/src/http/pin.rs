//! Read-your-writes pins over HTTP (DESIGN.md section 3).
//!
//! A request that commits a write gets a signed pin naming the shard server and the commit's
//! WAL position, valid for [`PIN_TTL_MS`]: in the `x-confab-pin` response header (the widget,
//! on other origins, sends it back as a header) and in a `confab_pin` cookie (same-site
//! clients). A later request carrying a valid pin reads from a replica only if that replica
//! has replayed past it, else from the primary. The embedded backend records no positions,
//! so it never sets a pin.

use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use confab_store::pin::{reading_with, track_writes, ReadPin, WritePos};

pub const PIN_HEADER: &str = "x-confab-pin";
const PIN_COOKIE: &str = "confab_pin";
const PIN_KIND: &str = "pin";
/// How long a pin holds: longer than any replica lag a replica is still used at.
pub const PIN_TTL_MS: i64 = 15_000;

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

/// The valid pin a request carries, if any.
fn pin_of(state: &AppState, req: &Request) -> Option<WritePos> {
    let token = req
        .headers()
        .get(PIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| from_cookie(req))?;
    let payload = state.svc.signer.verify(PIN_KIND, token)?;
    let (pos, until) = payload.rsplit_once('.')?;
    let until: i64 = until.parse().ok()?;
    (until > confab_core::now_ms()).then_some(())?;
    WritePos::decode(pos)
}

pub async fn pins(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let pin = pin_of(&state, &req);
    let run = next.run(req);
    let (mut resp, wrote) = match pin {
        Some(p) => track_writes(reading_with(ReadPin::At(p), run)).await,
        None => track_writes(run).await,
    };
    if let Some(pos) = wrote {
        let token = state.svc.signer.sign(
            PIN_KIND,
            &format!("{}.{}", pos.encode(), confab_core::now_ms() + PIN_TTL_MS),
        );
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

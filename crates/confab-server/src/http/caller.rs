//! Who is calling: built from signed tokens and the connection. The one read is the
//! account's session generation, through the account cache.

use super::AppState;
use crate::service::Caller;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts, HeaderMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

pub const SESSION_COOKIE: &str = "confab_session";
pub const ANON_COOKIE: &str = "confab_anon";
pub const ANON_HEADER: &str = "x-confab-anon";
pub const EDIT_HEADER: &str = "x-confab-edit-token";

/// The request's [`Caller`].
pub struct Who(pub Caller);

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` address that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    hops.into_iter().rev().find(|ip| !trusted.contains(ip)).unwrap_or(peer)
}

/// Whether `origin` names the host the request was sent to.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let rest = origin.split_once("://").map_or("", |(_, r)| r);
    !host.is_empty() && rest.eq_ignore_ascii_case(host)
}

impl FromRequestParts<AppState> for Who {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let svc = &app.svc;
        let h = &parts.headers;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        let ip = client_ip(peer, h, &svc.config.trusted_proxies);

        let bearer = h
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let (account, cookie_auth) = match bearer {
            Some(t) => (svc.session_account(t).await, false),
            None => match cookie(h, SESSION_COOKIE) {
                Some(t) => (svc.session_account(t).await, true),
                None => (None, false),
            },
        };
        // Confab does not terminate TLS; a trusted proxy that does says so.
        let https = svc.config.trusted_proxies.contains(&peer)
            && h.get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        let anon = h
            .get(ANON_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| cookie(h, ANON_COOKIE))
            .and_then(|t| svc.verify_anon(t.trim()));
        let foreign_origin = h
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .filter(|o| !same_origin(o, h))
            .map(str::to_string);
        let edit_token = h.get(EDIT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok(Who(Caller {
            account,
            cookie_auth: cookie_auth && account.is_some(),
            anon,
            ip,
            foreign_origin,
            edit_token,
            https,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("9.9.9.9, 1.2.3.4, 10.0.0.2"));
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        // Untrusted peer: its header is ignored.
        assert_eq!(client_ip(proxy, &h, &[]), proxy);
        // Trusted chain: the right-most untrusted hop is the client; spoofed left hops are not.
        assert_eq!(client_ip(proxy, &h, &[proxy, inner]), "1.2.3.4".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; confab_session=tok.en ; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok.en"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn same_origin_compares_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin("http://127.0.0.1:8080", &h));
        assert!(!same_origin("http://127.0.0.1:9090", &h));
        assert!(!same_origin("null", &h));
    }
}

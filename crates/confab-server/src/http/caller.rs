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

/// The client's address. `X-Forwarded-For` is read from the right, one hop at a time, only
/// while the address that handed us the hop is a trusted proxy: the first hop that is not a
/// trusted proxy is the client. A hop that is not an address (`unknown`, a mangled value, a
/// header that is not ASCII) ends the walk, and nothing left of it is believed: the client is
/// then the hop right of it (the last trusted proxy, or the peer). Hops are `ip`, `ip:port`,
/// `[v6]` or `[v6]:port`; IPv4-mapped IPv6 addresses compare as IPv4 (a dual-stack listener
/// sees an IPv4 proxy as `::ffff:a.b.c.d`).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| {
        trusted
            .iter()
            .any(|t| t.to_canonical() == ip.to_canonical())
    };
    if !is_trusted(&peer) {
        return peer;
    }
    // Several headers are one list, in order (RFC 9110, 5.3).
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(s) => s.split(',').map(parse_hop).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Some(ip) = hop else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` element: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]`
/// or `[2001:db8::1]:443`. Anything else (`unknown`, `_hidden`, empty) is `None`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let ip = if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else if let Ok(sa) = s.parse::<SocketAddr>() {
        sa.ip()
    } else {
        s.strip_prefix('[')?
            .strip_suffix(']')?
            .parse::<std::net::Ipv6Addr>()
            .ok()?
            .into()
    };
    Some(ip.to_canonical())
}

/// Whether `origin` names the host the request was sent to.
pub(super) fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let rest = origin.split_once("://").map_or("", |(_, r)| r);
    !host.is_empty() && rest.eq_ignore_ascii_case(host)
}

/// The headers an outside spam check is told, bounded.
fn client_hints(h: &axum::http::HeaderMap) -> crate::service::ClientHints {
    let get = |name: header::HeaderName| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().chars().take(500).collect::<String>())
            .filter(|v| !v.is_empty())
    };
    crate::service::ClientHints {
        user_agent: get(header::USER_AGENT),
        referrer: get(header::REFERER),
        lang: get(header::ACCEPT_LANGUAGE).and_then(|l| {
            l.split(',')
                .next()
                .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
                .filter(|t| !t.is_empty() && t.len() <= 35)
        }),
    }
}

impl FromRequestParts<AppState> for Who {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let svc = &app.svc;
        let h = &parts.headers;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        let ip = client_ip(peer, h, &svc.config().trusted_proxies);

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
        let https = svc.config().trusted_proxies.contains(&peer)
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
        let edit_token = h
            .get(EDIT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Who(Caller {
            account,
            cookie_auth: cookie_auth && account.is_some(),
            anon,
            ip,
            foreign_origin,
            edit_token,
            https,
            hints: client_hints(h),
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
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("9.9.9.9, 1.2.3.4, 10.0.0.2"),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        // Untrusted peer: its header is ignored.
        assert_eq!(client_ip(proxy, &h, &[]), proxy);
        // Trusted chain: the right-most untrusted hop is the client; spoofed left hops are not.
        assert_eq!(
            client_ip(proxy, &h, &[proxy, inner]),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `client_ip` behind the trusted proxies 10.0.0.1 (the peer) and 10.0.0.2, with these
    /// `X-Forwarded-For` headers.
    fn behind_proxies(xff: &[&[u8]]) -> IpAddr {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_bytes(v).unwrap());
        }
        client_ip(ip("10.0.0.1"), &h, &[ip("10.0.0.1"), ip("10.0.0.2")])
    }

    #[test]
    fn forwarded_hops_with_ports_parse() {
        assert_eq!(parse_hop(" 1.2.3.4:5678 "), Some(ip("1.2.3.4")));
        assert_eq!(parse_hop("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("::ffff:1.2.3.4"), Some(ip("1.2.3.4")));
        for bad in [
            "",
            "unknown",
            "_hidden",
            "1.2.3.4:",
            "1.2.3.4:99999",
            "[1.2.3.4]",
            "2001:db8::1:443x",
            "[2001:db8::1",
            "01.2.3.4",
            "fe80::1%eth0",
        ] {
            assert_eq!(parse_hop(bad), None, "{bad:?}");
        }
        // The proxy wrote the client with a port: the spoofed hop left of it is not believed.
        assert_eq!(behind_proxies(&[b"6.6.6.6, 1.2.3.4:5678"]), ip("1.2.3.4"));
        assert_eq!(
            behind_proxies(&[b"6.6.6.6, [2001:db8::1]:443, 10.0.0.2:80"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn nothing_left_of_an_unparseable_hop_is_believed() {
        // Garbage in the middle: the hop right of it (a trusted proxy) is the client.
        assert_eq!(
            behind_proxies(&[b"6.6.6.6, garbage, 10.0.0.2"]),
            ip("10.0.0.2")
        );
        // Garbage right-most: the peer.
        assert_eq!(behind_proxies(&[b"6.6.6.6, unknown"]), ip("10.0.0.1"));
        assert_eq!(behind_proxies(&[b"6.6.6.6,"]), ip("10.0.0.1"));
        // Several headers are one list; a header that is not text is one unparseable hop.
        assert_eq!(behind_proxies(&[b"6.6.6.6", b"1.2.3.4"]), ip("1.2.3.4"));
        assert_eq!(
            behind_proxies(&[b"6.6.6.6", b"\xff1.2.3.4"]),
            ip("10.0.0.1")
        );
        // Only trusted hops: the left-most one reached.
        assert_eq!(behind_proxies(&[b"10.0.0.2"]), ip("10.0.0.2"));
        // No header: the peer.
        assert_eq!(behind_proxies(&[]), ip("10.0.0.1"));
    }

    #[test]
    fn mapped_addresses_compare_as_ipv4() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        // A dual-stack listener sees the IPv4 proxy as ::ffff:10.0.0.1.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &h, &[ip("10.0.0.1")]),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.9"), &h, &[ip("10.0.0.1")]),
            ip("::ffff:10.0.0.9")
        );
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; confab_session=tok.en ; b=2"),
        );
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

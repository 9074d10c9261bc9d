//! Webhooks: a forum's comment events as signed JSON POSTs.
//!
//! One task per (event, endpoint). The request:
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! User-Agent: Confab-Webhook/1
//! X-Confab-Event: comment.created            (or comment.approved, comment.deleted)
//! X-Confab-Delivery: 7012345678901234567     (the task id: the same on every retry)
//! X-Confab-Timestamp: 1795000000             (Unix seconds of this attempt)
//! X-Confab-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//!
//! {"event": "comment.created", "delivery": "...", "occurred_at": "2026-...Z", "forum": "blog",
//!  "thread": {"id", "ident", "url", "title"},
//!  "comment": {"id", "thread_id", "parent_id", "status", "author": {"name", "url", "account_id"},
//!              "body", "body_html", "created_at", "edited_at"}}
//! ```
//!
//! The comment is as it is at delivery; `event` and `occurred_at` say what happened when.
//! A 2xx answer completes the task; anything else (or no answer within the timeout) is retried
//! with backoff, and parked after the last attempt. Redirects are not followed. Unless
//! `allow_private_targets` is on, a name that resolves to a loopback, private, link-local or
//! otherwise internal address is not called.

use crate::config::WebhooksConfig;
use crate::kinds::WebhookPayload;
use crate::{Handler, TaskError};
use async_trait::async_trait;
use confab_core::model::Author;
use confab_store::{ReadFrom, Store, Task};
use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::json;
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// `sha256=` + hex HMAC-SHA256 of `timestamp.body` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut m = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    let out = m.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + out.len() * 2);
    hex.push_str("sha256=");
    for b in out {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Whether an address is inside some network rather than on the public internet.
///
/// IPv6 is judged by allow-list: only global unicast (`2000::/3`) can be public, less its
/// special-purpose blocks; the two kinds of address outside it that reach the IPv4 internet
/// (IPv4-mapped `::ffff:a.b.c.d` and NAT64 `64:ff9b::a.b.c.d`), and 6to4 (`2002:AABB:CCDD::`)
/// inside it, are judged by the IPv4 address they carry. So `::a.b.c.d` (IPv4-compatible),
/// `::ffff:0:a.b.c.d` (SIIT), site-local `fec0::/10`, local-use NAT64 `64:ff9b:1::/48` and
/// Teredo are internal whatever they embed.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24, IETF protocol assignments
                || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 192.88.99.0/24, 6to4 relay anycast
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_internal(v4);
            }
            let s = v6.segments();
            (s[0] & 0xe000) != 0x2000 // outside global unicast: ::/8 (loopback, unspecified,
                                      // IPv4-compatible, SIIT), 64:ff9b:1::/48, 100::/64,
                                      // fc00::/7, fe80::/10, fec0::/10, ff00::/8, ...
                || (s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23, IETF protocol assignments (Teredo, benchmarking, ORCHID)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32, documentation
                || (s[0] & 0xfff0) == 0x3ff0 // 3fff::/20, documentation
        }
    }
}

/// The IPv4 address an IPv6 address reaches: IPv4-mapped (`::ffff:0:0/96`), NAT64 with the
/// well-known prefix (`64:ff9b::/96`), 6to4 (`2002::/16`, the address in bits 16-47).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<IpAddr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| {
        Some(IpAddr::V4(Ipv4Addr::from(
            (u32::from(hi) << 16) | u32::from(lo),
        )))
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(IpAddr::V4(v4));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4(s[6], s[7]);
    }
    if s[0] == 0x2002 {
        return v4(s[1], s[2]);
    }
    None
}

/// Resolves names with the system resolver and drops internal addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                all.into_iter().filter(|a| !is_internal(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

pub struct Webhooks {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    allow_private: bool,
}

impl Webhooks {
    pub fn new(store: Arc<dyn Store>, cfg: &WebhooksConfig) -> Result<Webhooks, String> {
        let timeout = Duration::from_secs(cfg.timeout_secs.clamp(1, 300));
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("Confab-Webhook/1")
            .pool_max_idle_per_host(2);
        if !cfg.allow_private_targets {
            b = b.dns_resolver(Arc::new(PublicOnly));
        }
        let client = b.build().map_err(|e| e.to_string())?;
        Ok(Webhooks {
            store,
            client,
            allow_private: cfg.allow_private_targets,
        })
    }
}

fn retry(e: confab_core::DomainError) -> TaskError {
    TaskError::Retry(format!("store: {e}"))
}

#[async_trait]
impl Handler for Webhooks {
    async fn run(&self, task: &Task) -> Result<(), TaskError> {
        let p: WebhookPayload = serde_json::from_str(&task.payload)
            .map_err(|e| TaskError::Park(format!("bad payload: {e}")))?;
        let forums = self.store.forums().await.map_err(retry)?;
        let Some(forum) = forums.into_iter().find(|f| f.id == p.forum_id) else {
            return Ok(());
        };
        // Looked up again: a removed endpoint (or one no longer taking this event) gets nothing,
        // and a changed secret signs from now on.
        let Some(hook) = forum
            .settings
            .webhooks
            .iter()
            .find(|h| h.url == p.url && h.events.contains(&p.event))
        else {
            tracing::info!(task = task.id, url = %p.url, "webhook no longer configured; delivery dropped");
            return Ok(());
        };
        let url = reqwest::Url::parse(&hook.url)
            .map_err(|e| TaskError::Park(format!("bad webhook url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TaskError::Park("webhook url must be http or https".into()));
        }
        if !self.allow_private {
            // IP literals never reach the resolver.
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if literal.is_some_and(is_internal) {
                return Err(TaskError::Park(format!(
                    "{} is an internal address (webhooks.allow_private_targets is off)",
                    hook.url
                )));
            }
        }
        let Some(c) = self
            .store
            .comment(p.comment_id, ReadFrom::Primary)
            .await
            .map_err(retry)?
        else {
            return Err(TaskError::Park(format!(
                "comment {} not found",
                p.comment_id
            )));
        };
        let thread = self
            .store
            .thread(c.thread_id, ReadFrom::Primary)
            .await
            .map_err(retry)?;
        let (name, author_url, account_id) = match &c.author {
            Author::Guest { name, url, .. } => (name.clone(), url.clone(), None),
            Author::Account(id) => {
                let name = self
                    .store
                    .account(*id)
                    .await
                    .map_err(retry)?
                    .map_or_else(String::new, |a| a.display_name);
                (name, None, Some(*id))
            }
        };
        let deleted = c.status == confab_core::model::CommentStatus::Deleted;
        let body = json!({
            "event": p.event,
            "delivery": task.id.to_string(),
            "occurred_at": confab_core::rfc3339(p.occurred_at),
            "forum": forum.name,
            "thread": thread.map(|t| json!({"id": t.id, "ident": t.ident.as_str(), "url": t.url, "title": t.title})),
            "comment": {
                "id": c.id,
                "thread_id": c.thread_id,
                "parent_id": c.parent_id,
                "status": c.status,
                "author": {"name": name, "url": author_url, "account_id": account_id},
                "body": if deleted { String::new() } else { c.body_md.clone() },
                "body_html": if deleted { String::new() } else { c.body_html.clone() },
                "created_at": confab_core::rfc3339(c.created_at),
                "edited_at": c.edited_at.map(confab_core::rfc3339),
            },
        });
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| TaskError::Park(format!("cannot encode: {e}")))?;
        let ts = confab_core::now_ms() / 1000;
        let resp = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("x-confab-event", p.event.as_str())
            .header("x-confab-delivery", task.id.to_string())
            .header("x-confab-timestamp", ts.to_string())
            .header("x-confab-signature", signature(&hook.secret, ts, &bytes))
            .body(bytes)
            .send()
            .await
            .map_err(|e| TaskError::Retry(format!("webhook: {}", error_chain(&e))))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(TaskError::Retry(format!(
                "webhook answered HTTP {}",
                status.as_u16()
            )))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_and_body() {
        // HMAC-SHA256("key", "1.{}"), checked against an independent implementation.
        let s = signature("key", 1, b"{}");
        assert_eq!(
            s,
            "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
        assert_ne!(s, signature("key", 2, b"{}"));
        assert_ne!(s, signature("other", 1, b"{}"));
    }

    #[test]
    fn internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(a.parse().unwrap()), "{a}");
        }
    }

    /// IPv6 addresses that carry an IPv4 address, and the special-purpose blocks.
    #[test]
    fn ipv6_that_reaches_internal_ipv4_is_internal() {
        for a in [
            "::1.2.3.4", // IPv4-compatible (deprecated): internal whatever it embeds
            "::127.0.0.1",
            "::10.0.0.1",
            "::",
            "::ffff:10.0.0.1", // IPv4-mapped
            "::ffff:169.254.169.254",
            "::ffff:0:10.0.0.1", // SIIT IPv4-translated
            "::ffff:0:1.2.3.4",
            "2002:0a00:0001::",  // 6to4 of 10.0.0.1
            "2002:7f00:1::1",    // 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::",  // 6to4 of 169.254.169.254
            "64:ff9b::10.0.0.1", // NAT64 of 10.0.0.1
            "64:ff9b::7f00:1",   // NAT64 of 127.0.0.1
            "64:ff9b::192.168.1.1",
            "64:ff9b:1::1.2.3.4",                   // local-use NAT64 prefix
            "2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo
            "2001:2::1",                            // benchmarking
            "2001:db8::1",                          // documentation
            "3fff::1",
            "fec0::1", // site-local (deprecated)
            "100::1",  // discard-only
            "ff02::1", // multicast
            "5f00::1", // SRv6 SIDs, outside global unicast
        ] {
            assert!(is_internal(a.parse().unwrap()), "{a}");
        }
        for a in [
            "::ffff:93.184.216.34",   // mapped public
            "64:ff9b::93.184.216.34", // NAT64 of a public address (IPv6-only hosts with DNS64)
            "2002:5db8:d822::1",      // 6to4 of 93.184.216.34
            "2001:4860:4860::8888",
            "2a00:1450:4001:82a::200e",
        ] {
            assert!(!is_internal(a.parse().unwrap()), "{a}");
        }
    }
}

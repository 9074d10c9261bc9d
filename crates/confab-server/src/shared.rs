//! The shared cache tier as Confab uses it (`[cache] servers`): what it keeps, under which keys,
//! in which form. The tier itself (ring, ejection, fill locks, XFetch) is `confab-cache`; this
//! node's own caches (`cache.rs`) stay in front of it.
//!
//! | key | value | ttl |
//! |---|---|---|
//! | `tv:<forum>:<ident>` | a thread's version token: the write's time in ms and 20 random bits, replaced by every write, with the write's commit position | a day |
//! | `pg:<forum>:<token>:<sort>:<limit>:<gravatar>:<cursor>:<ident>` | a rendered page and its gzipped copy (through `get_or_fill`) | `page_ttl_secs` |
//! | `ct:<forum>:<token>:<ident>` | a thread's comment count | `page_ttl_secs` |
//! | `ac:<id>` | an account with its roles (JSON) | 30 s |
//!
//! A thread's pages and count are keyed by its token, so a write makes every older copy
//! unreachable on every node at once: the writer stores a fresh token and announces it on the
//! bus; a node that missed the announcement reads the token again within `version_check_ms`
//! and moves to it if it is newer than its own (tokens order by the time of their write; a
//! node never goes back to an older one, such as a tier server that returns from ejection
//! may hold). A token is never reused, so a lost token key (evicted, its server ejected) is
//! replaced by a new one and can never bring an old page back. The token keeps the write's
//! commit position, so a node that learns it from the tier fills from a replica that has
//! replayed the write.
//!
//! Accounts are not versioned: a change deletes `ac:<id>` (again half a second later, in case a
//! read that began before the change stored the old row meanwhile) and every node forgets its
//! own copy when the change is announced.

use crate::cache::Page;
use crate::config::CacheConfig;
use bytes::{BufMut, Bytes, BytesMut};
use confab_cache::{Tier, TierConfig};
use confab_core::id::{AccountId, ForumId};
use confab_core::model::Account;
use confab_core::DomainError;
use confab_store::WritePos;
use std::sync::Arc;
use std::time::Duration;

/// How long a thread's token is kept (a thread unwritten for a day gets a new one when read).
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long an account is kept in the tier.
const ACCOUNT_TTL: Duration = Duration::from_secs(30);

/// A thread's version in the tier: its token and the commit position of the write that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub id: u64,
    pub at: Option<WritePos>,
}

impl Token {
    /// A token for a new write: newer than every token made before it (by the clocks of the
    /// fleet's nodes), and unique.
    pub fn fresh(at: Option<WritePos>) -> Token {
        let ms = confab_core::now_ms().max(0) as u64;
        Token {
            id: (ms << 20) | (rand::random::<u64>() & 0xf_ffff),
            at,
        }
    }

    fn encode(&self) -> Bytes {
        match self.at {
            Some(p) => format!("{:x}|{}", self.id, p.encode()),
            None => format!("{:x}", self.id),
        }
        .into()
    }

    pub fn decode(b: &[u8]) -> Option<Token> {
        let s = std::str::from_utf8(b).ok()?;
        let (id, at) = match s.split_once('|') {
            Some((id, at)) => (id, Some(WritePos::decode(at)?)),
            None => (s, None),
        };
        Some(Token {
            id: u64::from_str_radix(id, 16).ok()?,
            at,
        })
    }
}

/// The tier with Confab's keys.
pub struct Shared {
    tier: Tier,
    page_ttl: Duration,
}

impl Shared {
    /// The tier `[cache] servers` names, or `None` when it names none.
    pub fn new(cfg: &CacheConfig) -> Result<Option<Arc<Shared>>, DomainError> {
        // (`version_check_ms` is the service's, in `Service::thread_version`.)
        if cfg.servers.is_empty() {
            return Ok(None);
        }
        let tier = Tier::new(TierConfig {
            servers: cfg.servers.clone(),
            timeout: Duration::from_millis(cfg.timeout_ms),
            failure_limit: cfg.failure_limit,
            retry_interval: Duration::from_secs(cfg.retry_secs),
            ..TierConfig::default()
        })
        .map_err(|e| DomainError::invalid(format!("cache.servers: {e}")))?;
        Ok(Some(Arc::new(Shared {
            tier,
            page_ttl: Duration::from_secs(cfg.page_ttl_secs),
        })))
    }

    /// The tier's counters, for `/statz`.
    pub fn stats(&self) -> confab_cache::TierStats {
        self.tier.stats()
    }

    fn token_key(forum: ForumId, ident: &str) -> String {
        format!("tv:{}:{ident}", forum.0)
    }

    /// A thread's current token; a thread without one gets one (the first reader to ask
    /// stores it, everyone else reads that one). `None` when the tier cannot be reached.
    pub async fn token(&self, forum: ForumId, ident: &str) -> Option<Token> {
        let key = Self::token_key(forum, ident);
        if let Some(t) = self.tier.get(&key).await.and_then(|b| Token::decode(&b)) {
            return Some(t);
        }
        let mine = Token::fresh(None);
        match self.tier.add(&key, mine.encode(), TOKEN_TTL).await? {
            true => Some(mine),
            false => self.tier.get(&key).await.and_then(|b| Token::decode(&b)),
        }
    }

    /// Stores a thread's new token after a write.
    pub async fn renew_token(&self, forum: ForumId, ident: &str, token: Token) {
        if !self
            .tier
            .set(&Self::token_key(forum, ident), token.encode(), TOKEN_TTL)
            .await
        {
            tracing::debug!(
                forum = forum.0,
                ident,
                "a thread's new token was not stored"
            );
        }
    }

    /// The tier key of a page (its thread's token in it, so a write retires every old page).
    pub fn page_key(forum: ForumId, token: u64, key: &crate::cache::PageKey) -> String {
        format!(
            "pg:{}:{token:x}:{}:{}:{}:{}:{}",
            forum.0,
            key.sort,
            key.limit,
            u8::from(key.gravatar),
            key.cursor.as_deref().unwrap_or(""),
            key.ident
        )
    }

    /// A page from the tier, or rendered by `fill` (once across the fleet, normally) and kept
    /// there with its gzipped copy.
    pub async fn page<F>(&self, key: &str, fill: F) -> Result<Page, DomainError>
    where
        F: std::future::Future<Output = Result<Page, DomainError>>,
    {
        let bytes = Box::pin(self.tier.get_or_fill(key, self.page_ttl, || async move {
            let page = fill.await?;
            Ok::<_, DomainError>(encode_page(&page))
        }))
        .await?;
        decode_page(&bytes).ok_or_else(|| {
            tracing::error!(key, "undecodable page in the cache tier");
            DomainError::internal()
        })
    }

    fn count_key(forum: ForumId, token: u64, ident: &str) -> String {
        format!("ct:{}:{token:x}:{ident}", forum.0)
    }

    /// Counts kept for `(ident, token)`s, in order (`None`: not kept).
    pub async fn counts(&self, forum: ForumId, want: &[(&str, u64)]) -> Vec<Option<i64>> {
        let keys: Vec<String> = want
            .iter()
            .map(|(i, t)| Self::count_key(forum, *t, i))
            .collect();
        self.tier
            .get_many(&keys)
            .await
            .into_iter()
            .map(|b| b.and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok()))
            .collect()
    }

    /// Keeps counts read from the store, `(ident, token, count)`, in the background (the
    /// reader does not wait for the tier).
    pub fn put_counts(self: &Arc<Self>, forum: ForumId, counts: Vec<(String, u64, i64)>) {
        if counts.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            for (ident, token, n) in counts {
                me.tier
                    .set(
                        &Self::count_key(forum, token, &ident),
                        n.to_string().into(),
                        me.page_ttl,
                    )
                    .await;
            }
        });
    }

    fn account_key(id: AccountId) -> String {
        format!("ac:{}", id.0)
    }

    /// Accounts kept in the tier (the ones found).
    pub async fn accounts(&self, ids: &[AccountId]) -> Vec<Account> {
        let keys: Vec<String> = ids.iter().map(|i| Self::account_key(*i)).collect();
        self.tier
            .get_many(&keys)
            .await
            .into_iter()
            .flatten()
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    pub async fn put_accounts(&self, rows: &[Arc<Account>]) {
        for a in rows {
            if let Ok(json) = serde_json::to_vec(&**a) {
                self.tier
                    .set(&Self::account_key(a.id), json.into(), ACCOUNT_TTL)
                    .await;
            }
        }
    }

    /// Drops an account after it changed: now, and again shortly, so a read that began before
    /// the change cannot leave its older row behind.
    pub async fn forget_account(self: &Arc<Self>, id: AccountId) {
        self.tier.delete(&Self::account_key(id)).await;
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            me.tier.delete(&Self::account_key(id)).await;
        });
    }
}

/// A page as the tier keeps it: a flag byte (hidden comments), the body's length, the body,
/// then its gzipped copy (possibly empty: too short to be worth it).
fn encode_page(p: &Page) -> Bytes {
    let gz = p.gzipped();
    let mut b = BytesMut::with_capacity(5 + p.body.len() + gz.map_or(0, |g| g.len()));
    b.put_u8(u8::from(p.has_hidden));
    b.put_u32(p.body.len() as u32);
    b.put_slice(&p.body);
    if let Some(g) = gz {
        b.put_slice(g);
    }
    b.freeze()
}

fn decode_page(b: &Bytes) -> Option<Page> {
    let flag = *b.first()?;
    let len = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?) as usize;
    let body = b.get(5..5 + len)?;
    let gz = b.slice(5 + len..);
    Some(Page::with_gzip(
        body.to_vec(),
        flag == 1,
        (!gz.is_empty()).then_some(gz),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_pages_round_trip() {
        let t = Token::fresh(Some(WritePos { server: 3, lsn: 77 }));
        assert_eq!(Token::decode(&t.encode()), Some(t));
        let bare = Token::fresh(None);
        assert_eq!(Token::decode(&bare.encode()), Some(bare));
        assert_ne!(Token::fresh(None).id, Token::fresh(None).id);
        assert_eq!(Token::decode(b"zz"), None);

        let body = br#"{"comments":[]}"#.repeat(100);
        let p = Page::new(body.clone(), true);
        let back = decode_page(&encode_page(&p)).unwrap();
        assert_eq!((&back.body[..], back.has_hidden), (&body[..], true));
        assert_eq!(
            back.etag, p.etag,
            "the same bytes have the same ETag on every node"
        );
        assert_eq!(back.gzipped(), p.gzipped());
        let short = Page::new(b"{}".to_vec(), false);
        let back = decode_page(&encode_page(&short)).unwrap();
        assert_eq!((back.gzipped(), back.has_hidden), (None, false));
        assert!(decode_page(&Bytes::from_static(b"\x00\x00\x00\x00\x09ab")).is_none());
    }
}

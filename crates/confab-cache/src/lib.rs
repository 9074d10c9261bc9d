//! Confab's shared cache tier: a list of Redis and/or memcached servers on a ketama
//! consistent-hash ring, shared by a fleet of stateless web nodes (rendered pages, counts,
//! accounts, thread version counters). It knows no other workspace crate.
//!
//! # Layout
//! - `lib.rs`      `TierConfig`, `CacheError`, key sanitizing, and `Tier`: routing, timeouts,
//!   ejection, stats and the raw `get`/`get_many`/`set`/`delete`/`incr`.
//! - `fill.rs`     `Tier::get_or_fill`: single flight, the value envelope, XFetch, fill locks.
//! - `ring.rs`     `Ring`: the ketama ring, point for point as libmemcached builds it.
//! - `server.rs`   one server (Redis or memcached) behind the few operations the tier uses, and
//!   its health (consecutive failures, ejection).
//! - `memcache.rs` a small memcached text-protocol client with a bounded connection pool (why
//!   not a crate: see its docs).
//! - `tests/conformance.rs` one suite, instantiated for Redis and for memcached, against real
//!   throwaway servers.
//!
//! # Semantics
//! - **Placement.** A key lives on one server, chosen by the ring from the key (after
//!   sanitizing, below). Every node with the same server list agrees. No replication: a server
//!   lost is its keys lost, refilled on the servers its keys fall to.
//! - **Keys.** Any `&str`. A key longer than 200 bytes or with a byte that is not printable
//!   ASCII (space, control, non-ASCII) is replaced by `h:` + the hex MD5 of it, the same on
//!   every node, so memcached accepts every key. Two different keys can only meet through an
//!   MD5 collision.
//! - **Failures never reach the caller.** Every server call is bounded by `timeout`. A failed
//!   or timed-out call is a miss (`get`), a no-op (`set`, `delete`) or `None` (`incr`), counted
//!   in `errors`. After `failure_limit` consecutive failures a server is ejected for
//!   `retry_interval`: its keys walk on along the ring to the next live server (nobody else's
//!   keys move); after the interval the next call tries it again, and one success brings it
//!   back. With every server down, calls return at once and `get_or_fill` just runs its fill.
//!   Connections are bounded too: one multiplexed connection per Redis server, a pool of at
//!   most 8 per memcached server; all opened on first use and reopened after a failure.
//! - **Values.** At most `max_value_bytes`; a larger value is not stored (and a later `get`
//!   misses). Tier-level `get`/`get_many`/`set` store the bytes as given. `get_or_fill` stores
//!   an envelope (logical expiry and fill duration, then the payload), so its values are read
//!   only through `get_or_fill`, never through `get`; and a key is used by one or the other.
//! - **`get_or_fill`** (see `fill.rs`): one fill at a time per key within a node (concurrent
//!   callers share it, its error included), and across nodes through a short fill lock
//!   `lock:<key>` on the key's server: the holder fills; the others serve the stale value while
//!   there is one, else wait up to `lock_wait` for the holder's value, then fill themselves.
//!   Values are kept by the server for twice their `ttl`, so an expired value can still be
//!   served stale during a refresh. XFetch refreshes a hot value early, probabilistically.
//! - **Counters.** `incr` is atomic on the server (Redis `INCR` in a transaction that creates
//!   the key with its ttl, memcached `incr`, then `add "1"` when missing); the ttl is set on
//!   creation only.
//!
//! # Not guaranteed
//! A cache, not a store: any value can vanish at any time (eviction, restart, ejection,
//! ttl). Exactly-one-fill holds only while the lock's server stays up and the fill finishes
//! within `lock_ttl`; a fill that takes longer lets a second node fill too (both values are
//! correct, the last write wins). A caller cancelled during its fill leaves the lock until
//! `lock_ttl` (others meanwhile wait `lock_wait`, then fill). memcached counts ttls in whole seconds (rounded up), with
//! one-second granularity. Releasing a fill lock deletes it without checking its owner.
//! Nothing is invalidated across servers when one returns from ejection: it may serve values
//! written before it left, until their ttl (keep ttls short for data that changes).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod fill;
mod memcache;
mod ring;
mod server;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use md5::{Digest, Md5};

pub use ring::{Ring, POINTS_PER_SERVER};

use server::{CallError, Change, Server};

/// The tier's settings. `Default` gives the documented defaults and no servers.
#[derive(Debug, Clone)]
pub struct TierConfig {
    /// `redis://host:port/` (optionally `/db`) and `memcache://host:port` URLs.
    pub servers: Vec<String>,
    /// Bound on every call to a server. Default 150 ms.
    pub timeout: Duration,
    /// Consecutive failures before a server is ejected. Default 3.
    pub failure_limit: u32,
    /// How long an ejected server stays out. Default 5 s.
    pub retry_interval: Duration,
    /// Fill lock expiry. Default 2 s.
    pub lock_ttl: Duration,
    /// How long a node without the lock waits for another's fill before filling itself.
    /// Default 300 ms.
    pub lock_wait: Duration,
    /// XFetch's beta: above 1 refreshes earlier, 0 never early. Default 1.0.
    pub xfetch_beta: f64,
    /// Values larger than this are not stored. Default 1 MiB - 1 KiB (memcached's default item
    /// limit, less room for the key and item header).
    pub max_value_bytes: usize,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            servers: Vec::new(),
            timeout: Duration::from_millis(150),
            failure_limit: 3,
            retry_interval: Duration::from_secs(5),
            lock_ttl: Duration::from_secs(2),
            lock_wait: Duration::from_millis(300),
            xfetch_beta: 1.0,
            max_value_bytes: 1024 * 1024 - 1024,
        }
    }
}

/// Why a tier could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheError {
    /// A server URL that does not parse, has an unknown scheme, or is listed twice.
    BadServer(String),
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::BadServer(why) => write!(f, "bad cache server {why}"),
        }
    }
}

impl std::error::Error for CacheError {}

/// A snapshot of the tier's counters (since it was built) and of its servers.
#[derive(Debug, Clone, Default)]
pub struct TierStats {
    pub hits: u64,
    pub misses: u64,
    /// Fills run by `get_or_fill` on this node.
    pub fills: u64,
    /// Times a node without the lock waited `lock_wait` in vain and filled itself.
    pub lock_waits: u64,
    /// Expired values served while another node refreshed them.
    pub stale_served: u64,
    /// XFetch refreshes of values not yet expired.
    pub early_refreshes: u64,
    /// Failed or timed-out server calls.
    pub errors: u64,
    pub ejections: u64,
    pub servers: Vec<ServerStat>,
}

/// One server in `TierStats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStat {
    /// `host:port`.
    pub name: String,
    pub ejected: bool,
    /// Why its last call failed, while it has not succeeded since.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    fills: AtomicU64,
    lock_waits: AtomicU64,
    stale_served: AtomicU64,
    early_refreshes: AtomicU64,
    errors: AtomicU64,
    ejections: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A lookup found its key (or not): the tier's counter, and the request's record.
fn looked(c: &Counters, found: bool) {
    if found {
        bump(&c.hits);
        confab_record::add(confab_record::Field::TierHits, 1);
    } else {
        bump(&c.misses);
        confab_record::add(confab_record::Field::TierMisses, 1);
    }
}

/// The cache tier. `Send + Sync`; share it in an `Arc`.
pub struct Tier {
    cfg: TierConfig,
    servers: Vec<Server>,
    ring: Ring,
    counters: Counters,
    flights: Mutex<HashMap<String, fill::Flight>>,
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field(
                "servers",
                &self.servers.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Tier {
    /// Parses the servers and builds the ring. Connects nothing: a server that is down now is
    /// tried on first use (and ejected if it keeps failing).
    pub fn new(cfg: TierConfig) -> Result<Tier, CacheError> {
        let mut servers: Vec<Server> = Vec::with_capacity(cfg.servers.len());
        for url in &cfg.servers {
            let server = Server::parse(url)?;
            if servers.iter().any(|s| s.name == server.name) {
                return Err(CacheError::BadServer(format!("{url}: listed twice")));
            }
            servers.push(server);
        }
        let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
        Ok(Tier {
            ring: Ring::new(&names),
            servers,
            cfg,
            counters: Counters::default(),
            flights: Mutex::new(HashMap::new()),
        })
    }

    /// No servers configured: every call is a miss or a no-op.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The raw value of `key`; `None` on a miss or when its server fails.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let key = safe_key(key);
        let idx = self.route(&key)?;
        let got = self
            .call(idx, self.servers[idx].get_many(&[key.as_ref()]))
            .await
            .and_then(|v| v.into_iter().next().flatten());
        looked(&self.counters, got.is_some());
        got
    }

    /// The raw values of `keys`, in order: one `MGET` (Redis) or multi-key `get` (memcached)
    /// per server, the servers asked concurrently.
    pub async fn get_many(&self, keys: &[String]) -> Vec<Option<Bytes>> {
        let mut out = vec![None; keys.len()];
        let safe: Vec<Cow<'_, str>> = keys.iter().map(|k| safe_key(k)).collect();
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for (pos, key) in safe.iter().enumerate() {
            if let Some(idx) = self.route(key) {
                groups.entry(idx).or_default().push(pos);
            }
        }
        let calls = groups.into_iter().map(|(idx, positions)| {
            let safe = &safe;
            async move {
                let ks: Vec<&str> = positions.iter().map(|&p| safe[p].as_ref()).collect();
                let vals = self.call(idx, self.servers[idx].get_many(&ks)).await;
                (positions, vals)
            }
        });
        for (positions, vals) in futures_util::future::join_all(calls).await {
            let Some(vals) = vals else { continue };
            for (pos, val) in positions.into_iter().zip(vals) {
                out[pos] = val;
            }
        }
        for v in &out {
            looked(&self.counters, v.is_some());
        }
        out
    }

    /// Stores `value` under `key` for `ttl`, best effort; whether it was stored. A value over
    /// `max_value_bytes` is not stored, and the key's previous value is deleted.
    pub async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> bool {
        let key = safe_key(key);
        let Some(idx) = self.route(&key) else {
            return false;
        };
        if value.len() > self.cfg.max_value_bytes {
            // Not stored; and the key's older value goes, so nobody reads it as current.
            tracing::debug!(%key, size = value.len(), "cache: value too large, not stored");
            self.call(idx, self.servers[idx].delete(&key)).await;
            return false;
        }
        self.call(idx, self.servers[idx].set(&key, &value, ttl))
            .await
            .is_some()
    }

    /// Stores `value` under `key` only if the key holds nothing (Redis `SET NX`, memcached
    /// `add`): `Some(true)` when this call stored it, `Some(false)` when a value was there,
    /// `None` when the key's server cannot be reached.
    pub async fn add(&self, key: &str, value: Bytes, ttl: Duration) -> Option<bool> {
        let key = safe_key(key);
        let idx = self.route(&key)?;
        if value.len() > self.cfg.max_value_bytes {
            return Some(false);
        }
        self.call(idx, self.servers[idx].add(&key, &value, ttl))
            .await
    }

    /// Removes `key`, best effort.
    pub async fn delete(&self, key: &str) {
        let key = safe_key(key);
        if let Some(idx) = self.route(&key) {
            self.call(idx, self.servers[idx].delete(&key)).await;
        }
    }

    /// Adds one to the counter `key`, creating it at 1 (with `ttl`) when missing. `None` when
    /// its server cannot be reached.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Option<u64> {
        let key = safe_key(key);
        let idx = self.route(&key)?;
        self.call(idx, self.servers[idx].incr(&key, ttl)).await
    }

    /// Returns the value of `key`, filling it with `fill` when missing or expired, with at most
    /// one fill at a time per key on this node and (normally) across nodes. See `fill.rs` and
    /// the crate docs. The tier failing never fails this call: it then just runs `fill`. A
    /// `fill` error is returned (to every caller that shared the attempt) and not cached.
    ///
    /// `E: Clone + Send + Sync + 'static` so one fill's error can be handed to every caller
    /// that waited on it.
    pub async fn get_or_fill<E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        fill: F,
    ) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: Clone + Send + Sync + 'static,
    {
        fill::get_or_fill(self, key, ttl, fill).await
    }

    /// The server (`host:port`) `key` maps to now, skipping ejected servers; `None` when there
    /// is none.
    pub fn server_for(&self, key: &str) -> Option<String> {
        let key = safe_key(key);
        self.route(&key).map(|idx| self.servers[idx].name.clone())
    }

    /// The counters and each server's state.
    pub fn stats(&self) -> TierStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TierStats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            fills: get(&c.fills),
            lock_waits: get(&c.lock_waits),
            stale_served: get(&c.stale_served),
            early_refreshes: get(&c.early_refreshes),
            errors: get(&c.errors),
            ejections: get(&c.ejections),
            servers: self
                .servers
                .iter()
                .map(|s| ServerStat {
                    name: s.name.clone(),
                    ejected: s.is_ejected(),
                    last_error: s.last_error(),
                })
                .collect(),
        }
    }

    /// The live server for an already sanitized key.
    fn route(&self, key: &str) -> Option<usize> {
        let now = Instant::now();
        self.ring
            .lookup_live(key, |idx| self.servers[idx].is_live(now))
    }

    /// Runs one server call under the timeout and records its outcome in the server's health.
    async fn call<T>(
        &self,
        idx: usize,
        op: impl Future<Output = Result<T, CallError>>,
    ) -> Option<T> {
        let server = &self.servers[idx];
        let _t = confab_record::Timer::start(confab_record::Field::TierMicros);
        let err = match tokio::time::timeout(self.cfg.timeout, op).await {
            Ok(Ok(v)) => {
                if server.record_success() == Change::Returned {
                    tracing::info!(server = %server.name, "cache server is back in the ring");
                }
                return Some(v);
            }
            Ok(Err(e)) => e,
            Err(_) => format!(
                "{}: no answer within {} ms",
                server.name,
                self.cfg.timeout.as_millis()
            ),
        };
        bump(&self.counters.errors);
        tracing::debug!(server = %server.name, error = %err, "cache server call failed");
        server.set_last_error(&err);
        if server.record_failure(self.cfg.failure_limit, self.cfg.retry_interval) == Change::Ejected
        {
            bump(&self.counters.ejections);
            tracing::warn!(
                server = %server.name,
                error = %err,
                retry_in = ?self.cfg.retry_interval,
                "cache server ejected from the ring after {} consecutive failures",
                self.cfg.failure_limit
            );
        }
        None
    }
}

/// The form of `key` stored on the servers: itself when memcached accepts it (1..=200 bytes of
/// printable ASCII), else `h:` + hex MD5 of it.
pub(crate) fn safe_key(key: &str) -> Cow<'_, str> {
    if !key.is_empty() && key.len() <= 200 && key.bytes().all(|b| b.is_ascii_graphic()) {
        return Cow::Borrowed(key);
    }
    let digest = Md5::digest(key.as_bytes());
    let mut out = String::with_capacity(34);
    out.push_str("h:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_keys() {
        assert_eq!(safe_key("page:/t/1?x=2"), "page:/t/1?x=2");
        assert_eq!(safe_key(&"a".repeat(200)), "a".repeat(200));
        let long = safe_key(&"a".repeat(201)).into_owned();
        assert!(long.starts_with("h:") && long.len() == 34, "{long}");
        let spaced = safe_key("a b");
        assert_eq!(spaced.len(), 34);
        assert_ne!(spaced, safe_key("a  b"));
        // The MD5 of the empty string, a well-known constant.
        assert_eq!(safe_key(""), "h:d41d8cd98f00b204e9800998ecf8427e");
        assert!(safe_key("caf\u{e9}").starts_with("h:"));
        assert!(safe_key("tab\tkey").starts_with("h:"));
    }

    #[test]
    fn tier_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Tier>();
        check::<std::sync::Arc<Tier>>();
    }

    #[test]
    fn bad_servers() {
        for url in [
            "localhost:6379",
            "http://x:1",
            "redis://",
            "redis://h:notaport/",
            "redis://h:1/x",
            "memcache://h:1/3",
        ] {
            let cfg = TierConfig {
                servers: vec![url.into()],
                ..TierConfig::default()
            };
            assert!(
                matches!(Tier::new(cfg), Err(CacheError::BadServer(_))),
                "{url}"
            );
        }
        let cfg = TierConfig {
            servers: vec!["redis://h:1/".into(), "memcache://h:1".into()],
            ..TierConfig::default()
        };
        assert!(Tier::new(cfg).is_err(), "same host:port twice");
        let cfg = TierConfig {
            servers: vec![
                "redis://10.0.0.1:6379/2".into(),
                "memcache://10.0.0.2".into(),
                "redis://10.0.0.3".into(),
            ],
            ..TierConfig::default()
        };
        let tier = Tier::new(cfg).unwrap();
        let names: Vec<String> = tier.stats().servers.into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["10.0.0.1:6379", "10.0.0.2:11211", "10.0.0.3:6379"]);
        assert!(!tier.is_empty());
        assert!(Tier::new(TierConfig::default()).unwrap().is_empty());
    }
}

//! One conformance suite for the cache tier, run against Redis and against memcached.
//!
//! `cases` holds each test as an async function of the server kind; the `suite!` macro
//! instantiates every case once per kind (`redis::...`, `memcached::...`). Each test starts its
//! own throwaway servers (free port, temp dir, no persistence, killed on drop), never a system
//! one. Without `redis-server` or `memcached` the tests fail loudly unless
//! `CONFAB_SKIP_CACHE_SERVERS=1`.
//!
//! Timing: server calls get a 500 ms timeout (not the 150 ms default) so a loaded 2-core CI
//! machine running the tests in parallel does not eject healthy servers; the tests about
//! failures kill servers, which fails calls at once (connection refused).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_cache::{Tier, TierConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Redis,
    Memcached,
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(super::Kind::Redis).await;
                }
            )*
        }
        mod memcached {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(super::Kind::Memcached).await;
                }
            )*
        }
    };
}

suite!(
    get_set_delete,
    get_many_across_servers,
    incr_counts,
    ttl_expiry,
    oversized_values_not_stored,
    key_sanitizing,
    stampede_one_fill_across_nodes,
    fill_error_shared_not_cached,
    cancelled_fill_does_not_strand_waiters,
    xfetch_refreshes_early,
    stale_served_while_refreshing,
    server_killed_under_load,
    whole_tier_down,
    ejected_server_returns,
);

const LONG_TTL: Duration = Duration::from_secs(60);

fn config(servers: &[CacheServer]) -> TierConfig {
    TierConfig {
        servers: servers.iter().map(CacheServer::url).collect(),
        timeout: Duration::from_millis(500),
        max_value_bytes: 1024,
        ..TierConfig::default()
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

mod cases {
    use super::*;

    pub async fn get_set_delete(kind: Kind) {
        let Some(servers) = start(kind, 1) else {
            return;
        };
        let tier = Tier::new(config(&servers)).unwrap();
        assert_eq!(tier.get("a").await, None);
        assert!(tier.set("a", b("1"), LONG_TTL).await);
        assert_eq!(tier.get("a").await, Some(b("1")));
        // add stores only into an empty key.
        assert_eq!(tier.add("a", b("other"), LONG_TTL).await, Some(false));
        assert_eq!(tier.get("a").await, Some(b("1")));
        assert_eq!(tier.add("fresh", b("mine"), LONG_TTL).await, Some(true));
        assert_eq!(tier.get("fresh").await, Some(b("mine")));
        tier.set("a", b("two"), LONG_TTL).await;
        assert_eq!(tier.get("a").await, Some(b("two")));
        tier.set("empty", Bytes::new(), LONG_TTL).await;
        assert_eq!(tier.get("empty").await, Some(Bytes::new()));
        let binary = Bytes::from_static(b"\x00\r\nEND\r\n\xff");
        tier.set("bin", binary.clone(), LONG_TTL).await;
        assert_eq!(tier.get("bin").await, Some(binary));
        tier.delete("a").await;
        assert_eq!(tier.get("a").await, None);
        tier.delete("never-there").await;
        assert_eq!(
            tier.server_for("a"),
            Some(format!("127.0.0.1:{}", servers[0].port))
        );
        let s = tier.stats();
        assert_eq!((s.errors, s.ejections), (0, 0));
        assert!(s.hits >= 4 && s.misses >= 2, "{s:?}");
    }

    pub async fn get_many_across_servers(kind: Kind) {
        let Some(servers) = start(kind, 3) else {
            return;
        };
        let tier = Tier::new(config(&servers)).unwrap();
        let keys: Vec<String> = (0..60).map(|i| format!("many:{i}")).collect();
        for k in keys.iter().step_by(2) {
            tier.set(k, b(&format!("v-{k}")), LONG_TTL).await;
        }
        let mut ask = keys.clone();
        ask.push("many:0".into()); // a key twice
        ask.push("not there".into());
        let got = tier.get_many(&ask).await;
        assert_eq!(got.len(), ask.len());
        for (i, k) in keys.iter().enumerate() {
            let want = (i % 2 == 0).then(|| b(&format!("v-{k}")));
            assert_eq!(got[i], want, "{k}");
        }
        assert_eq!(got[60], Some(b("v-many:0")));
        assert_eq!(got[61], None);
        // The keys really are spread over the three servers.
        let used: std::collections::HashSet<String> =
            keys.iter().filter_map(|k| tier.server_for(k)).collect();
        assert_eq!(used.len(), 3);
        assert!(tier.get_many(&[]).await.is_empty());
        // Hundreds of keys at once (memcached: several `get` commands per server).
        let lots: Vec<String> = (0..500).map(|i| format!("lots:{i}")).collect();
        for k in lots.iter().step_by(3) {
            tier.set(k, b(k), LONG_TTL).await;
        }
        let got = tier.get_many(&lots).await;
        for (i, (k, v)) in lots.iter().zip(got).enumerate() {
            assert_eq!(v, (i % 3 == 0).then(|| b(k)), "{k}");
        }
        assert_eq!(tier.stats().errors, 0);
    }

    pub async fn incr_counts(kind: Kind) {
        let Some(servers) = start(kind, 2) else {
            return;
        };
        let a = Arc::new(Tier::new(config(&servers)).unwrap());
        let node_b = Arc::new(Tier::new(config(&servers)).unwrap());
        assert_eq!(a.incr("n", LONG_TTL).await, Some(1));
        assert_eq!(a.incr("n", LONG_TTL).await, Some(2));
        assert_eq!(node_b.incr("n", LONG_TTL).await, Some(3));
        // Concurrent increments from two nodes on a fresh counter: each value handed out once.
        let mut tasks = Vec::new();
        for i in 0..40 {
            let t = Arc::clone(if i % 2 == 0 { &a } else { &node_b });
            tasks.push(tokio::spawn(async move { t.incr("race", LONG_TTL).await }));
        }
        let mut got: Vec<u64> = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap().unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, (1..=40).collect::<Vec<u64>>());
        // The ttl is set on creation: the counter starts over after it.
        assert_eq!(a.incr("short", Duration::from_secs(1)).await, Some(1));
        assert_eq!(a.incr("short", Duration::from_secs(1)).await, Some(2));
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(a.incr("short", Duration::from_secs(1)).await, Some(1));
    }

    pub async fn ttl_expiry(kind: Kind) {
        let Some(servers) = start(kind, 1) else {
            return;
        };
        let tier = Tier::new(config(&servers)).unwrap();
        // memcached counts whole seconds (an item lives between ttl - 1 s and ttl): 2 s.
        tier.set("short", b("x"), Duration::from_secs(2)).await;
        tier.set("long", b("y"), LONG_TTL).await;
        assert_eq!(tier.get("short").await, Some(b("x")));
        tokio::time::sleep(Duration::from_millis(2600)).await;
        assert_eq!(tier.get("short").await, None);
        assert_eq!(tier.get("long").await, Some(b("y")));
    }

    pub async fn oversized_values_not_stored(kind: Kind) {
        let Some(servers) = start(kind, 1) else {
            return;
        };
        let tier = Tier::new(config(&servers)).unwrap();
        let max = Bytes::from(vec![b'm'; 1024]);
        tier.set("max", max.clone(), LONG_TTL).await;
        assert_eq!(tier.get("max").await, Some(max));
        tier.set("big", Bytes::from(vec![b'b'; 1025]), LONG_TTL)
            .await;
        assert_eq!(tier.get("big").await, None);
        // Replacing a value by an oversized one leaves no stale value behind.
        tier.set("max", Bytes::from(vec![b'b'; 1025]), LONG_TTL)
            .await;
        assert_eq!(tier.get("max").await, None);
        // get_or_fill: an oversized fill is returned but not kept (the next call fills again).
        let fills = AtomicUsize::new(0);
        for _ in 0..2 {
            let v = tier
                .get_or_fill("bigfill", LONG_TTL, || async {
                    fills.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(Bytes::from(vec![b'f'; 1020]))
                })
                .await
                .unwrap();
            assert_eq!(v.len(), 1020);
        }
        assert_eq!(fills.load(Ordering::SeqCst), 2);
        assert_eq!(tier.stats().errors, 0);
    }

    pub async fn key_sanitizing(kind: Kind) {
        let Some(servers) = start(kind, 2) else {
            return;
        };
        let tier = Tier::new(config(&servers)).unwrap();
        let keys = [
            "k".repeat(300),
            "k".repeat(301),
            "with space".to_string(),
            "with  space".to_string(),
            "tab\tand\nnewline".to_string(),
            "ünïcödé".to_string(),
            String::new(),
            "k".repeat(200),
        ];
        for (i, k) in keys.iter().enumerate() {
            tier.set(k, b(&i.to_string()), LONG_TTL).await;
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(tier.get(k).await, Some(b(&i.to_string())), "{k:?}");
        }
        let got = tier.get_many(&keys).await;
        for (i, v) in got.into_iter().enumerate() {
            assert_eq!(v, Some(b(&i.to_string())));
        }
        assert_eq!(tier.incr("a counter with spaces", LONG_TTL).await, Some(1));
        assert_eq!(tier.incr("a counter with spaces", LONG_TTL).await, Some(2));
        let v = tier
            .get_or_fill(&"p".repeat(500), LONG_TTL, || async {
                Ok::<_, String>(b("page"))
            })
            .await;
        assert_eq!(v, Ok(b("page")));
        assert_eq!(tier.stats().errors, 0, "a key upset the server");
    }

    /// Two nodes, 50 concurrent callers on one key: one fill, everyone gets its value.
    pub async fn stampede_one_fill_across_nodes(kind: Kind) {
        let Some(servers) = start(kind, 2) else {
            return;
        };
        let nodes = [
            Arc::new(Tier::new(config(&servers)).unwrap()),
            Arc::new(Tier::new(config(&servers)).unwrap()),
        ];
        let fills = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let tier = Arc::clone(&nodes[i % 2]);
            let fills = Arc::clone(&fills);
            tasks.push(tokio::spawn(async move {
                tier.get_or_fill("hot", LONG_TTL, || async move {
                    fills.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, String>(b("rendered"))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(b("rendered")));
        }
        assert_eq!(fills.load(Ordering::SeqCst), 1, "more than one fill");
        let (s0, s1) = (nodes[0].stats(), nodes[1].stats());
        assert_eq!(s0.fills + s1.fills, 1);
        assert_eq!(s0.lock_waits + s1.lock_waits, 0);
        assert_eq!(s0.errors + s1.errors, 0);
        // Afterwards: plain hits, no flights left behind.
        let again = nodes[1]
            .get_or_fill("hot", LONG_TTL, || async {
                Err::<Bytes, String>("must not fill".into())
            })
            .await;
        assert_eq!(again, Ok(b("rendered")));
    }

    /// Concurrent callers on one node share one failing fill; the error is not cached.
    pub async fn fill_error_shared_not_cached(kind: Kind) {
        let Some(servers) = start(kind, 1) else {
            return;
        };
        let tier = Arc::new(Tier::new(config(&servers)).unwrap());
        let fills = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let tier = Arc::clone(&tier);
            let fills = Arc::clone(&fills);
            tasks.push(tokio::spawn(async move {
                tier.get_or_fill("flaky", LONG_TTL, || async move {
                    fills.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err::<Bytes, String>("db down".into())
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err("db down".to_string()));
        }
        assert_eq!(fills.load(Ordering::SeqCst), 1);
        let v = tier
            .get_or_fill("flaky", LONG_TTL, || async { Ok::<_, String>(b("ok")) })
            .await;
        assert_eq!(v, Ok(b("ok")));
        assert_eq!(tier.stats().fills, 2);
    }

    /// A caller cancelled in the middle of its fill (client gone) does not strand the callers
    /// that were waiting on it: one of them fills (after waiting out the orphaned fill lock for
    /// `lock_wait`).
    pub async fn cancelled_fill_does_not_strand_waiters(kind: Kind) {
        let Some(servers) = start(kind, 1) else {
            return;
        };
        let tier = Arc::new(Tier::new(config(&servers)).unwrap());
        let leader = {
            let tier = Arc::clone(&tier);
            tokio::spawn(async move {
                tier.get_or_fill("slow", LONG_TTL, || async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok::<_, String>(b("never"))
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiter = {
            let tier = Arc::clone(&tier);
            tokio::spawn(async move {
                tier.get_or_fill("slow", LONG_TTL, || async { Ok::<_, String>(b("mine")) })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = Instant::now();
        leader.abort();
        let got = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("waiter stranded")
            .unwrap();
        assert_eq!(got, Ok(b("mine")));
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        assert_eq!(tier.stats().lock_waits, 1);
    }

    /// XFetch: with a huge beta every hit is "near expiry" and refreshed early by the caller
    /// that drew it, while the value is still fresh.
    pub async fn xfetch_refreshes_early(kind: Kind) {
        let Some(servers) = start(kind, 1) else {
            return;
        };
        let tier = Tier::new(TierConfig {
            xfetch_beta: 1e9,
            ..config(&servers)
        })
        .unwrap();
        for (i, want) in ["v0", "v1", "v2"].into_iter().enumerate() {
            let got = tier
                .get_or_fill("x", LONG_TTL, || async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, String>(b(&format!("v{i}")))
                })
                .await;
            assert_eq!(got, Ok(b(want)));
        }
        let s = tier.stats();
        assert_eq!((s.fills, s.early_refreshes), (3, 2), "{s:?}");
        // beta 0 (the default is 1): the fresh value is kept.
        let calm = Tier::new(TierConfig {
            xfetch_beta: 0.0,
            ..config(&servers)
        })
        .unwrap();
        let got = calm
            .get_or_fill("x", LONG_TTL, || async {
                Err::<Bytes, String>("no".into())
            })
            .await;
        assert_eq!(got, Ok(b("v2")));
    }

    /// After its ttl a value is served stale by other nodes while one node refreshes it.
    pub async fn stale_served_while_refreshing(kind: Kind) {
        let Some(servers) = start(kind, 1) else {
            return;
        };
        let cfg = TierConfig {
            xfetch_beta: 0.0,
            ..config(&servers)
        };
        let a = Arc::new(Tier::new(cfg.clone()).unwrap());
        let node_b = Tier::new(cfg).unwrap();
        // 2 s: memcached's whole-second clock keeps the value (stored for 4 s) well past it.
        let ttl = Duration::from_secs(2);
        let v1 = a
            .get_or_fill("page", ttl, || async { Ok::<_, String>(b("v1")) })
            .await;
        assert_eq!(v1, Ok(b("v1")));
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let refresher = {
            let a = Arc::clone(&a);
            tokio::spawn(async move {
                a.get_or_fill("page", ttl, || async {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    Ok::<_, String>(b("v2"))
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        let t0 = Instant::now();
        let stale = node_b
            .get_or_fill("page", ttl, || async {
                Err::<Bytes, String>("node b must not fill".into())
            })
            .await;
        assert_eq!(stale, Ok(b("v1")));
        assert!(
            t0.elapsed() < Duration::from_millis(400),
            "stale not served at once"
        );
        assert_eq!(node_b.stats().stale_served, 1);
        assert_eq!(refresher.await.unwrap(), Ok(b("v2")));
        let fresh = node_b
            .get_or_fill("page", ttl, || async {
                Err::<Bytes, String>("fresh value expected".into())
            })
            .await;
        assert_eq!(fresh, Ok(b("v2")));
        assert_eq!(node_b.stats().fills, 0);
        assert_eq!(a.stats().fills, 2);
    }

    /// One server of three killed while tasks use the tier: no caller sees a failure, the dead
    /// server is ejected and its keys go to the others.
    pub async fn server_killed_under_load(kind: Kind) {
        let Some(mut servers) = start(kind, 3) else {
            return;
        };
        let cfg = TierConfig {
            retry_interval: Duration::from_secs(60),
            ..config(&servers)
        };
        let tier = Arc::new(Tier::new(cfg).unwrap());
        let dead = format!("127.0.0.1:{}", servers[1].port);
        let keys: Vec<String> = (0..200).map(|i| format!("load:{i}")).collect();
        let on_dead = keys
            .iter()
            .filter(|k| tier.server_for(k).as_deref() == Some(dead.as_str()))
            .count();
        assert!(on_dead > 0);
        let stop = Instant::now() + Duration::from_millis(1500);
        let mut tasks = Vec::new();
        for t in 0..4 {
            let tier = Arc::clone(&tier);
            let keys = keys.clone();
            tasks.push(tokio::spawn(async move {
                let mut calls = 0usize;
                let mut i = t;
                while Instant::now() < stop {
                    let k = &keys[i % keys.len()];
                    match i % 3 {
                        0 => {
                            let want = b(&format!("filled {k}"));
                            let got = tier
                                .get_or_fill(k, LONG_TTL, || async {
                                    Ok::<_, String>(b(&format!("filled {k}")))
                                })
                                .await;
                            assert_eq!(got, Ok(want), "caller saw a failure");
                        }
                        1 => {
                            let raw = format!("raw:{k}");
                            tier.set(&raw, b("r"), LONG_TTL).await;
                        }
                        _ => {
                            let raw = format!("raw:{k}");
                            if let Some(v) = tier.get(&raw).await {
                                assert_eq!(v, b("r"));
                            }
                        }
                    }
                    i += 4;
                    calls += 1;
                }
                calls
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        servers[1].stop();
        let mut calls = 0;
        for t in tasks {
            calls += t.await.expect("a caller task failed");
        }
        assert!(calls > 100, "only {calls} calls");
        let s = tier.stats();
        assert!(s.ejections >= 1, "{s:?}");
        assert!(s.servers[1].ejected && !s.servers[0].ejected && !s.servers[2].ejected);
        for k in &keys {
            let now = tier.server_for(k).unwrap();
            assert_ne!(now, dead);
        }
        // The moved keys work on their new servers.
        for k in keys.iter().take(20) {
            tier.set(k, b("after"), LONG_TTL).await;
            assert_eq!(tier.get(k).await, Some(b("after")));
        }
    }

    /// Every server killed: every call is a quick miss or no-op, get_or_fill just fills.
    pub async fn whole_tier_down(kind: Kind) {
        let Some(mut servers) = start(kind, 2) else {
            return;
        };
        let tier = Tier::new(TierConfig {
            timeout: Duration::from_millis(150),
            ..config(&servers)
        })
        .unwrap();
        tier.set("x", b("1"), LONG_TTL).await;
        assert_eq!(tier.get("x").await, Some(b("1")));
        for s in &mut servers {
            s.stop();
        }
        for round in 0..10 {
            let t0 = Instant::now();
            assert_eq!(tier.get("x").await, None);
            tier.set("x", b("2"), LONG_TTL).await;
            tier.delete("x").await;
            assert_eq!(tier.incr("n", LONG_TTL).await, None);
            assert_eq!(
                tier.get_many(&["x".into(), "y".into()]).await,
                vec![None, None]
            );
            let v = tier
                .get_or_fill("page", LONG_TTL, || async { Ok::<_, String>(b("direct")) })
                .await;
            assert_eq!(v, Ok(b("direct")));
            let took = t0.elapsed();
            assert!(
                took < Duration::from_millis(1000),
                "round {round} took {took:?}"
            );
        }
        let s = tier.stats();
        assert!(s.servers.iter().all(|s| s.ejected), "{s:?}");
        assert_eq!(tier.server_for("x"), None);
        assert_eq!(s.fills, 10);
        // A tier without servers behaves the same.
        let none = Tier::new(TierConfig::default()).unwrap();
        assert!(none.is_empty());
        assert_eq!(none.get("x").await, None);
        assert_eq!(
            none.get_or_fill("x", LONG_TTL, || async { Ok::<_, String>(b("f")) })
                .await,
            Ok(b("f"))
        );
    }

    /// An ejected server comes back after `retry_interval` once it answers again.
    pub async fn ejected_server_returns(kind: Kind) {
        let Some(mut servers) = start(kind, 2) else {
            return;
        };
        let cfg = TierConfig {
            retry_interval: Duration::from_millis(500),
            ..config(&servers)
        };
        let tier = Tier::new(cfg).unwrap();
        let name = format!("127.0.0.1:{}", servers[0].port);
        let key = (0..1000)
            .map(|i| format!("ret:{i}"))
            .find(|k| tier.server_for(k).as_deref() == Some(name.as_str()))
            .unwrap();
        tier.set(&key, b("1"), LONG_TTL).await;
        servers[0].stop();
        for _ in 0..3 {
            assert_eq!(tier.get(&key).await, None);
        }
        let s = tier.stats();
        assert!(s.servers[0].ejected, "{s:?}");
        assert_eq!(s.ejections, 1);
        assert_ne!(tier.server_for(&key).as_deref(), Some(name.as_str()));
        servers[0].start();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(tier.server_for(&key).as_deref(), Some(name.as_str()));
        tier.set(&key, b("back"), LONG_TTL).await;
        assert_eq!(tier.get(&key).await, Some(b("back")));
        let s = tier.stats();
        assert!(!s.servers[0].ejected, "{s:?}");
        assert_eq!(s.ejections, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Throwaway redis-server and memcached processes.

fn start(kind: Kind, n: usize) -> Option<Vec<CacheServer>> {
    if std::env::var("CONFAB_SKIP_CACHE_SERVERS").is_ok_and(|v| v == "1") {
        eprintln!("CONFAB_SKIP_CACHE_SERVERS=1: skipping a {kind:?} cache test");
        return None;
    }
    Some((0..n).map(|_| CacheServer::start_new(kind)).collect())
}

pub struct CacheServer {
    kind: Kind,
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl CacheServer {
    /// Starts a private server. Panics (fails the test) when the binary is missing: a silently
    /// skipped backend would look green.
    fn start_new(kind: Kind) -> CacheServer {
        let (name, env) = match kind {
            Kind::Redis => ("redis-server", "REDIS_SERVER"),
            Kind::Memcached => ("memcached", "MEMCACHED"),
        };
        let bin = find_bin(name, env).unwrap_or_else(|| {
            panic!(
                "{name} not found ({env}, PATH, /usr/bin, /usr/local/bin): the cache tests need \
                 it (apt-get install {name}), or set CONFAB_SKIP_CACHE_SERVERS=1 to skip them"
            )
        });
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("confab-cache-{name}-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = CacheServer {
            kind,
            bin,
            port,
            dir,
            child: None,
        };
        server.start();
        server
    }

    fn url(&self) -> String {
        match self.kind {
            Kind::Redis => format!("redis://127.0.0.1:{}/", self.port),
            Kind::Memcached => format!("memcache://127.0.0.1:{}", self.port),
        }
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let port = self.port.to_string();
        let mut cmd = Command::new(&self.bin);
        match self.kind {
            Kind::Redis => {
                cmd.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "no", "--daemonize", "no"])
                    .args(["--protected-mode", "no", "--loglevel", "warning"])
                    .arg("--dir")
                    .arg(&self.dir);
            }
            Kind::Memcached => {
                // -U 0: no UDP. -u root is needed when running as root (CI) and ignored otherwise.
                cmd.args(["-p", &port, "-l", "127.0.0.1", "-U", "0", "-m", "64"])
                    .args(["-t", "2", "-c", "256", "-u", "root"]);
            }
        }
        let child = cmd
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.child = Some(child);
        let t0 = Instant::now();
        while !self.pings() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                panic!("{} exited ({status}):\n{log}", self.bin.display());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{} did not come up",
                self.bin.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let (ask, want): (&[u8], &[u8]) = match self.kind {
            Kind::Redis => (b"PING\r\n", b"+PONG\r\n"),
            Kind::Memcached => (b"version\r\n", b"VERSION"),
        };
        let mut buf = vec![0u8; want.len()];
        s.write_all(ask).is_ok() && s.read_exact(&mut buf).is_ok() && buf == want
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for CacheServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_bin(name: &str, env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

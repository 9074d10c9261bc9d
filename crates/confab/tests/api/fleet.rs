//! One site on three nodes (ARCHITECTURE.md, "One site on many nodes"): three servers on one
//! store (the suite's backend: one SQLite file, or the PostgreSQL deployment with its replica)
//! sharing a real Redis bus, alone or with a shared cache tier of a real memcached and a real
//! Redis. Every kind of change made on one node is seen by readers of the other two within a
//! second, with their caches warm; the time each took is printed (run with `--nocapture`) and
//! the worst must stay under a second. A node that loses the bus trusts its caches only briefly
//! until it is back. With the tier: concurrent misses on two nodes render a page once; a cache
//! server killed under load costs no request, and with the whole tier down pages are served.

use crate::helpers::{config, spawn_on, As, Resp, TestApp};
use crate::live::redis_server;
use crate::process::{free_port, Proc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The bound the fleet keeps: a change is seen everywhere within this.
const WITHIN: Duration = Duration::from_secs(1);

struct Fleet {
    nodes: Vec<TestApp>,
    /// The shared tier's servers (memcached, Redis), when the fleet has one.
    tier: Vec<Option<Proc>>,
    _redis: Option<Proc>,
    redis_port: u16,
    dir: tempfile::TempDir,
    /// How long each change took to be seen by every other node, by kind.
    seen: Vec<(&'static str, Duration)>,
}

impl Fleet {
    async fn start(n: usize) -> Fleet {
        Fleet::start_with(n, false).await
    }

    /// `n` nodes; with `tier`, a shared cache tier of two memcached servers and one Redis.
    async fn start_with(n: usize, tier: bool) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let redis_port = free_port();
        let redis = redis_server(redis_port, dir.path());
        let store_dir = dir.path().join("store");
        std::fs::create_dir_all(&store_dir).unwrap();
        let mut servers = Vec::new();
        let mut procs = Vec::new();
        if tier {
            for _ in 0..2 {
                let p = free_port();
                procs.push(Some(memcached(p)));
                servers.push(format!("memcache://127.0.0.1:{p}"));
            }
            let p = free_port();
            let d = dir.path().join("cache-redis");
            std::fs::create_dir_all(&d).unwrap();
            procs.push(Some(redis_server(p, &d)));
            servers.push(format!("redis://127.0.0.1:{p}/"));
        }
        let mut nodes = Vec::new();
        for _ in 0..n {
            let mut c = config();
            c.cache.servers = servers.clone();
            // A loaded test machine must not eject healthy servers.
            c.cache.timeout_ms = 500;
            c.bus.redis_url = format!("redis://127.0.0.1:{redis_port}/").into();
            // Every node opens the same databases (the store dir names them).
            let store = crate::backend::open_store(&store_dir).await;
            nodes.push(spawn_on(c, store, tempfile::tempdir().unwrap()).await);
        }
        nodes[0].svc.ensure_demo_forum().await.unwrap();
        // Each node's subscription is live before the test begins.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Fleet {
            nodes,
            tier: procs,
            _redis: Some(redis),
            redis_port,
            dir,
            seen: Vec::new(),
        }
    }

    /// Polls every node but `writer` (with no pin: a reader who never wrote) until `check`
    /// holds on each; records how long the slowest took.
    async fn until_seen<F>(&mut self, kind: &'static str, writer: usize, t0: Instant, check: F)
    where
        F: AsyncFn(&TestApp) -> bool,
    {
        for (i, node) in self.nodes.iter().enumerate() {
            if i == writer {
                continue;
            }
            loop {
                if check(node).await {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "{kind}: node {i} never saw the change made on node {writer}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        self.seen.push((kind, t0.elapsed()));
    }

    fn report(&self) {
        let mut kinds: Vec<&str> = Vec::new();
        for (k, _) in &self.seen {
            if !kinds.contains(k) {
                kinds.push(k);
            }
        }
        for k in kinds {
            let mut ms: Vec<f64> = self
                .seen
                .iter()
                .filter(|s| s.0 == k)
                .map(|s| s.1.as_secs_f64() * 1000.0)
                .collect();
            ms.sort_by(f64::total_cmp);
            let p = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
            println!(
                "fleet: {k:<16} n={:<3} p50 {:>6.1} ms  p99 {:>6.1} ms  worst {:>6.1} ms",
                ms.len(),
                p(0.5),
                p(0.99),
                ms[ms.len() - 1]
            );
        }
        for (k, d) in &self.seen {
            assert!(*d < WITHIN, "{k} took {d:?} to reach every node");
        }
    }
}

/// A throwaway memcached (64 MiB, no UDP).
fn memcached(port: u16) -> Proc {
    let bin = ["memcached", "/usr/bin/memcached"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("-V")
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok()
        })
        .expect("memcached is needed for the cache tier tests (apt-get install memcached)");
    let mut cmd = std::process::Command::new(bin);
    cmd.args([
        "-p",
        &port.to_string(),
        "-l",
        "127.0.0.1",
        "-U",
        "0",
        "-m",
        "64",
    ]);
    // As root (CI), memcached wants a user to run as.
    if std::env::var("USER").is_ok_and(|u| u == "root") || is_root() {
        cmd.args(["-u", "root"]);
    }
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start memcached");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "memcached did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proc(child)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

async fn statz(node: &TestApp) -> Value {
    node.get("/statz", &As::guest()).await.body
}

async fn page(node: &TestApp, ident: &str) -> Value {
    node.page(ident, "", &As::guest()).await.body
}

fn bodies(page: &Value) -> Vec<String> {
    page["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn count(node: &TestApp, ident: &str) -> i64 {
    let r = node
        .get(
            &format!(
                "/api/v1/counts?forum=demo&ident={}",
                crate::helpers::urlencode(ident)
            ),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["counts"][ident].as_i64().unwrap_or(0)
}

/// Reads the page and the count on every node, so their caches hold the thread.
async fn warm(f: &Fleet, ident: &str) {
    for n in &f.nodes {
        page(n, ident).await;
        page(n, ident).await;
        count(n, ident).await;
    }
}

async fn req(node: &TestApp, m: Method, path: &str, body: Value, who: &As) -> Resp {
    node.req(m, path, Some(body), who).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_change_reaches_every_node_within_a_second() {
    every_change_reaches_every_node(Fleet::start(3).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_change_reaches_every_node_within_a_second_with_a_shared_tier() {
    let f = Fleet::start_with(3, true).await;
    let f = every_change_reaches_every_node(f).await;
    // The pages were served through the tier.
    let tiers: Vec<Value> = futures_join(&f, statz).await;
    let hits: u64 = tiers
        .iter()
        .map(|s| s["cache_tier"]["hits"].as_u64().unwrap())
        .sum();
    let fills: u64 = tiers
        .iter()
        .map(|s| s["cache_tier"]["fills"].as_u64().unwrap())
        .sum();
    assert!(hits > 0 && fills > 0, "{tiers:?}");
    // `/metrics` has the same tier counters, and the announcements the nodes published.
    let text = f.nodes[0]
        .http
        .get(format!("{}/metrics", f.nodes[0].base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    // At least what `/statz` said a moment before (background token checks may add hits).
    assert!(
        sample("confab_cache_tier_hits_total ")
            >= tiers[0]["cache_tier"]["hits"].as_u64().unwrap() as f64,
        "{text}"
    );
    assert!(sample("confab_cache_tier_server_ejected{") == 0.0, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("confab_bus_publishes_total{")
                && l.contains("kind=\"fleet\"")
                && l.contains("result=\"ok\"")),
        "{text}"
    );
}

async fn futures_join<F>(f: &Fleet, each: F) -> Vec<Value>
where
    F: AsyncFn(&TestApp) -> Value,
{
    let mut out = Vec::new();
    for n in &f.nodes {
        out.push(each(n).await);
    }
    out
}

async fn every_change_reaches_every_node(mut f: Fleet) -> Fleet {
    let modr_acct = f.nodes[0]
        .svc
        .create_account("fleetmod", None, "correct horse battery", None, false)
        .await
        .unwrap();
    f.nodes[0]
        .svc
        .set_moderator(&modr_acct, "demo", true)
        .await
        .unwrap();
    let modr = As::bearer(
        &f.nodes[0]
            .svc
            .session_token(&f.nodes[0].svc.account(modr_acct.id).await.unwrap().unwrap()),
    );
    const TRIES: usize = 12;

    // New comments, and the counts that go with them.
    let ident = "/fleet/new";
    for i in 0..TRIES {
        warm(&f, ident).await;
        let w = i % 3;
        let body = format!("comment {i}");
        let t0 = Instant::now();
        let r = f.nodes[w]
            .post_comment("demo", ident, &body, None, &As::guest())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        f.until_seen("new comment", w, t0, async |n| {
            bodies(&page(n, ident).await).contains(&body)
        })
        .await;
        let want = i as i64 + 1;
        f.until_seen("count", w, t0, async |n| count(n, ident).await == want)
            .await;
    }

    // Edits (by the author, with the guest edit token) and votes.
    let ident = "/fleet/edit";
    let r = f.nodes[0]
        .post_comment("demo", ident, "v0", None, &As::guest())
        .await;
    let (id, tok) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["edit_token"].as_str().unwrap().to_string(),
    );
    for i in 0..TRIES {
        warm(&f, ident).await;
        let w = i % 3;
        let body = format!("v{}", i + 1);
        let t0 = Instant::now();
        let r = req(
            &f.nodes[w],
            Method::PATCH,
            &format!("/api/v1/comments/{id}"),
            json!({"body": body}),
            &As::edit(&tok),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        f.until_seen("edit", w, t0, async |n| {
            bodies(&page(n, ident).await) == vec![body.clone()]
        })
        .await;
    }
    for i in 0..TRIES {
        warm(&f, ident).await;
        let w = i % 3;
        // Each vote from a new reader: likes go up by one each time.
        let voter = f.nodes[w].svc.new_anon_token().1;
        let t0 = Instant::now();
        let r = f.nodes[w]
            .post(
                &format!("/api/v1/comments/{id}/vote"),
                json!({"value": 1}),
                &As::anon(&voter),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let want = i as i64 + 1;
        f.until_seen("vote", w, t0, async |n| {
            page(n, ident).await["comments"][0]["likes"].as_i64() == Some(want)
        })
        .await;
    }

    // A moderator deletes comments: they leave every node's page and count.
    let ident = "/fleet/delete";
    let mut ids = Vec::new();
    for i in 0..TRIES {
        let r = f.nodes[0]
            .post_comment("demo", ident, &format!("doomed {i}"), None, &As::guest())
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    for (i, id) in ids.iter().enumerate() {
        warm(&f, ident).await;
        let w = i % 3;
        let t0 = Instant::now();
        let r = f.nodes[w]
            .post(
                "/api/v1/forums/demo/moderate",
                json!({"ids": [id], "action": "spam"}),
                &modr,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let gone = format!("doomed {i}");
        let want = (TRIES - i - 1) as i64;
        f.until_seen("moderation", w, t0, async |n| {
            !bodies(&page(n, ident).await).contains(&gone) && count(n, ident).await == want
        })
        .await;
    }

    // Thread state: closing and reopening.
    let ident = "/fleet/state";
    let c = f.nodes[0].comment(ident, "open for now", None).await;
    let thread = c["thread_id"].as_str().unwrap().to_string();
    for i in 0..TRIES {
        warm(&f, ident).await;
        let w = i % 3;
        let closed = i % 2 == 0;
        let t0 = Instant::now();
        let r = req(
            &f.nodes[w],
            Method::PATCH,
            &format!("/api/v1/threads/{thread}"),
            json!({"closed": closed}),
            &modr,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        f.until_seen("thread state", w, t0, async |n| {
            page(n, ident).await["thread"]["closed"].as_bool() == Some(closed)
        })
        .await;
    }

    // Forum settings: guests turned away and let in again, on every node.
    let ident = "/fleet/settings";
    for i in 0..TRIES {
        warm(&f, ident).await;
        let w = i % 3;
        let guests = i % 2 == 1;
        let t0 = Instant::now();
        let r = req(
            &f.nodes[w],
            Method::PATCH,
            "/api/v1/forums/demo",
            json!({"guest_posting": guests}),
            &modr,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        f.until_seen("forum settings", w, t0, async |n| {
            let r = n.get("/api/v1/forums/demo", &modr).await;
            r.body["settings"]["guest_posting"].as_bool() == Some(guests)
        })
        .await;
    }
    f.nodes[0]
        .req(
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"guest_posting": true})),
            &modr,
        )
        .await;

    // Role changes: a demoted moderator can no longer moderate on any node (their sessions
    // end), and a promoted one can at once.
    for i in 0..TRIES {
        let w = i % 3;
        let acct = f.nodes[0]
            .svc
            .create_account(
                &format!("mod{i}"),
                None,
                "correct horse battery",
                None,
                false,
            )
            .await
            .unwrap();
        f.nodes[w]
            .svc
            .set_moderator(&acct, "demo", true)
            .await
            .unwrap();
        let acct = f.nodes[w].svc.account(acct.id).await.unwrap().unwrap();
        let tok = As::bearer(&f.nodes[w].svc.session_token(&acct));
        let queue = "/api/v1/forums/demo/comments?queue=pending";
        let t0 = Instant::now();
        f.until_seen("role granted", w, t0, async |n| {
            n.get(queue, &tok).await.status == StatusCode::OK
        })
        .await;
        let t0 = Instant::now();
        f.nodes[w]
            .svc
            .set_moderator(&acct, "demo", false)
            .await
            .unwrap();
        f.until_seen("role removed", w, t0, async |n| {
            n.get(queue, &tok).await.status != StatusCode::OK
        })
        .await;
    }

    // Log out everywhere, and a password change: the account's sessions end on every node
    // (each has the account cached from a /me just before). Timed from the answer: hashing
    // the password is not propagation.
    for i in 0..3 {
        let w = i % 3;
        let acct = f.nodes[0]
            .svc
            .create_account(
                &format!("reader{i}"),
                None,
                "correct horse battery",
                None,
                false,
            )
            .await
            .unwrap();
        let tok = As::bearer(&f.nodes[w].svc.session_token(&acct));
        for n in &f.nodes {
            assert_eq!(n.get("/api/v1/me", &tok).await.status, StatusCode::OK);
        }
        let t0 = Instant::now();
        let r = f.nodes[w]
            .req(Method::DELETE, "/api/v1/me/sessions", None, &tok)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        f.until_seen("sessions ended", w, t0, async |n| {
            n.get("/api/v1/me", &tok).await.status == StatusCode::UNAUTHORIZED
        })
        .await;

        let acct = f.nodes[w].svc.account(acct.id).await.unwrap().unwrap();
        let old = As::bearer(&f.nodes[w].svc.session_token(&acct));
        for n in &f.nodes {
            assert_eq!(n.get("/api/v1/me", &old).await.status, StatusCode::OK);
        }
        let r = f.nodes[w]
            .post(
                "/api/v1/me/password",
                json!({"current": "correct horse battery", "new": format!("new password {i}")}),
                &old,
            )
            .await;
        let t0 = Instant::now();
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let new = As::bearer(r.body["token"].as_str().unwrap());
        f.until_seen("password changed", w, t0, async |n| {
            n.get("/api/v1/me", &old).await.status == StatusCode::UNAUTHORIZED
                && n.get("/api/v1/me", &new).await.status == StatusCode::OK
        })
        .await;
    }

    // Every node knows the troll as not banned (a write of theirs was admitted there, and
    // nodes cache who is not banned); the ban is in force everywhere once the nodes hear of it.
    let ident = "/fleet/ban";
    let troll = |body: &str| json!({"forum": "demo", "ident": ident, "body": body, "author_name": "T", "author_email": "troll@fleet.example"});
    for (i, n) in f.nodes.iter().enumerate() {
        let r = n
            .post(
                "/api/v1/comments",
                troll(&format!("before the ban {i}")),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let t0 = Instant::now();
    let r = f.nodes[1]
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "email", "value": "troll@fleet.example"}),
            &modr,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // On the node that made it, at once.
    let r = f.nodes[1]
        .post("/api/v1/comments", troll("at once"), &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    f.until_seen("ban", 1, t0, async |n| {
        let r = n.post("/api/v1/comments", troll("hi"), &As::guest()).await;
        r.status == StatusCode::FORBIDDEN
    })
    .await;

    f.report();
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_loses_the_bus_trusts_its_caches_only_briefly() {
    let mut f = Fleet::start(2).await;
    let ident = "/fleet/outage";
    f.nodes[0].comment(ident, "before", None).await;
    warm(&f, ident).await;
    // The bus goes away; node 1 notices (its subscription reports the loss).
    drop(f._redis.take());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!f.nodes[1].svc.trusted(), "node 1 should know it is deaf");
    // A post on node 0 cannot be announced, yet node 1 shows it within the short TTL (1 s).
    let t0 = Instant::now();
    f.nodes[0].comment(ident, "during the outage", None).await;
    f.until_seen("outage", 0, t0, async |n| {
        bodies(&page(n, ident).await).contains(&"during the outage".to_string())
    })
    .await;
    let took = f.seen[0].1;
    assert!(
        took < Duration::from_millis(2500),
        "a deaf node served a stale page for {took:?}"
    );
    // The bus is back: the node trusts its caches again, and announcements flow.
    f._redis = Some(redis_server(f.redis_port, f.dir.path()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f.nodes[1].svc.trusted() {
        assert!(
            Instant::now() < deadline,
            "node 1 never heard the bus again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    warm(&f, ident).await;
    let t0 = Instant::now();
    f.nodes[0].comment(ident, "after", None).await;
    f.seen.clear();
    f.until_seen("after the outage", 0, t0, async |n| {
        bodies(&page(n, ident).await).contains(&"after".to_string())
    })
    .await;
    f.report();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_on_two_nodes_render_a_page_once() {
    let f = Fleet::start_with(2, true).await;
    let ident = "/fleet/stampede";
    for i in 0..30 {
        f.nodes[0].comment(ident, &format!("c{i}"), None).await;
    }
    let before: Vec<Value> = futures_join(&f, statz).await;
    // 40 readers at once, half on each node, on a page nobody has read since the last write.
    let mut readers = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (http, base) = (f.nodes[i % 2].http.clone(), f.nodes[i % 2].base.clone());
        readers.spawn(async move {
            let r = http
                .get(format!(
                    "{base}/api/v1/comments?forum=demo&ident=%2Ffleet%2Fstampede"
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()["comments"]
                .as_array()
                .unwrap()
                .len()
        });
    }
    while let Some(n) = readers.join_next().await {
        assert_eq!(n.unwrap(), 30);
    }
    let after: Vec<Value> = futures_join(&f, statz).await;
    let fills: u64 = (0..2)
        .map(|i| {
            after[i]["cache_tier"]["fills"].as_u64().unwrap()
                - before[i]["cache_tier"]["fills"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(fills, 1, "one render for 40 concurrent misses on two nodes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cache_server_killed_under_load_costs_no_request() {
    let mut f = Fleet::start_with(3, true).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for w in 0..6 {
        let (http, bases, stop) = (
            f.nodes[0].http.clone(),
            f.nodes.iter().map(|n| n.base.clone()).collect::<Vec<_>>(),
            stop.clone(),
        );
        load.spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let base = &bases[(w + i) % bases.len()];
                let ident = format!("/fleet/load/{}", i % 7);
                let r = if i.is_multiple_of(5) {
                    // Writes go to one node (on SQLite, nodes in one process would each be a
                    // writer of the one file); reads to all.
                    http.post(format!("{}/api/v1/comments", bases[0]))
                        .json(&json!({"forum": "demo", "ident": ident, "body": format!("w{w} i{i}"), "author_name": "L"}))
                        .send()
                        .await
                } else if i % 5 == 1 {
                    http.get(format!("{base}/api/v1/counts?forum=demo&ident={}", crate::helpers::urlencode(&ident)))
                        .send()
                        .await
                } else {
                    http.get(format!("{base}/api/v1/comments?forum=demo&ident={}", crate::helpers::urlencode(&ident)))
                        .send()
                        .await
                };
                match r {
                    Ok(r) if r.status().is_success() => ok += 1,
                    Ok(r) => failed.push(format!("{}", r.status())),
                    Err(e) => failed.push(e.to_string()),
                }
                i += 1;
            }
            (ok, failed)
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // One memcached dies under load...
    drop(f.tier[0].take());
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // ...then the whole tier.
    for t in &mut f.tier {
        drop(t.take());
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    while let Some(r) = load.join_next().await {
        let (o, f) = r.unwrap();
        ok += o;
        failed.extend(f);
    }
    println!(
        "fleet: {ok} requests under a dying tier, {} failed",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 100, "too little load: {ok}");
    let s = statz(&f.nodes[0]).await;
    assert!(
        s["cache_tier"]["ejections"].as_u64().unwrap() >= 1,
        "the dead server was ejected: {s}"
    );
    // Every node still serves every thread as it is, from the database.
    for i in 0..7 {
        let ident = format!("/fleet/load/{i}");
        let want = count(&f.nodes[0], &ident).await;
        for n in &f.nodes {
            let p = page(n, &ident).await;
            assert_eq!(p["thread"]["comment_count"].as_i64().unwrap_or(0), want);
        }
    }
}

/// Runs the `confab` binary on the fleet's store, announcing on its bus.
fn confab_cli(f: &Fleet, args: &[&str]) -> String {
    let store_dir = f.dir.path().join("store");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("--data")
        .arg(&store_dir)
        .args(args)
        .env("CONFAB_LOG", "warn")
        .env(
            "CONFAB_BUS__REDIS_URL",
            format!("redis://127.0.0.1:{}/", f.redis_port),
        )
        .envs(crate::backend::process_env(&store_dir))
        .output()
        .expect("run confab");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "confab {args:?}: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_made_by_confab_admin_reaches_every_running_node_at_once() {
    let mut f = Fleet::start(3).await;
    let path = "/api/v1/comments?forum=fromcli&ident=%2Fx";
    for n in &f.nodes {
        assert_eq!(
            n.get(path, &As::guest()).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let out = confab_cli(
        &f,
        &[
            "admin",
            "create-forum",
            "fromcli",
            "--origin",
            "https://cli.example",
        ],
    );
    assert!(!out.contains("warning"), "{out}");
    // From the moment the command has exited (the nodes' own reload runs every 5 s).
    let t0 = Instant::now();
    f.until_seen("forum from the CLI", usize::MAX, t0, async |n| {
        n.get(path, &As::guest()).await.status == StatusCode::OK
    })
    .await;
    f.report();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confab_switches_turns_posting_off_and_on_on_every_node_within_a_second() {
    let mut f = Fleet::start(3).await;
    let post = async |n: &TestApp| {
        n.post_comment("demo", "/fleet/switch", "hello", None, &As::guest())
            .await
    };
    for n in &f.nodes {
        assert_eq!(post(n).await.status, StatusCode::CREATED);
    }
    for round in 0..3 {
        confab_cli(&f, &["switches", "set", "posting", "off"]);
        let t0 = Instant::now();
        f.until_seen("posting off", usize::MAX, t0, async |n| {
            let r = post(n).await;
            r.status == StatusCode::SERVICE_UNAVAILABLE
                && r.code() == "read_only"
                && r.header("retry-after").is_some()
        })
        .await;
        // Reads go on.
        for n in &f.nodes {
            page(n, "/fleet/switch").await;
        }
        // Back on, by a reset this round and an explicit "on" the next.
        if round % 2 == 0 {
            confab_cli(&f, &["switches", "reset", "posting"]);
        } else {
            confab_cli(&f, &["switches", "set", "posting", "on"]);
        }
        let t0 = Instant::now();
        f.until_seen("posting on", usize::MAX, t0, async |n| {
            post(n).await.status == StatusCode::CREATED
        })
        .await;
    }
    let list = confab_cli(&f, &["switches", "list"]);
    assert!(list.contains("posting"), "{list}");
    f.report();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_moderator_demoted_by_confab_admin_stops_moderating_on_every_node_within_a_second() {
    let mut f = Fleet::start(3).await;
    let svc = &f.nodes[0].svc;
    let acct = svc
        .create_account("demoted", None, "correct horse battery", None, false)
        .await
        .unwrap();
    svc.set_moderator(&acct, "demo", true).await.unwrap();
    let acct = svc.account(acct.id).await.unwrap().unwrap();
    let tok = As::bearer(&svc.session_token(&acct));
    let queue = "/api/v1/forums/demo/comments?queue=pending";
    // Every node has the moderator cached.
    for n in &f.nodes {
        assert_eq!(n.get(queue, &tok).await.status, StatusCode::OK);
    }
    confab_cli(&f, &["admin", "set-moderator", "demoted", "demo", "off"]);
    let t0 = Instant::now();
    f.until_seen("demoted (CLI)", usize::MAX, t0, async |n| {
        n.get(queue, &tok).await.status != StatusCode::OK
    })
    .await;
    f.report();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_hears_nothing_is_corrected_by_the_tiers_versions() {
    let mut f = Fleet::start_with(1, true).await;
    // A second node on the same store and tier but no bus: it never hears an announcement and
    // has no reason to doubt its caches; only the tokens it re-reads from the tier tell it.
    let mut c = config();
    c.cache.servers = f.nodes[0].svc.config().cache.servers.clone();
    c.cache.timeout_ms = 500;
    c.cache.version_check_ms = 300;
    let store = crate::backend::open_store(&f.dir.path().join("store")).await;
    f.nodes
        .push(spawn_on(c, store, tempfile::tempdir().unwrap()).await);
    let ident = "/fleet/deaf";
    f.nodes[0].comment(ident, "first", None).await;
    for i in 0..5 {
        warm(&f, ident).await;
        let body = format!("unheard {i}");
        let t0 = Instant::now();
        f.nodes[0].comment(ident, &body, None).await;
        f.until_seen("deaf node, by tokens", 0, t0, async |n| {
            bodies(&page(n, ident).await).contains(&body)
        })
        .await;
    }
    let worst = f.seen.iter().map(|s| s.1).max().unwrap();
    println!("fleet: a node without the bus caught up within {worst:?} (version_check_ms 300)");
    assert!(worst < Duration::from_millis(1500), "{worst:?}");
}

/// A tier server nobody answers at, and one whose host does not resolve: every call misses (no
/// request fails) and `/statz` names each server with the cause of its last failure.
#[tokio::test]
async fn statz_names_why_a_tier_server_fails() {
    let port = free_port();
    let mut c = config();
    c.cache.servers = vec![
        format!("redis://127.0.0.1:{port}/"),
        "memcache://nohost.invalid:11211".to_string(),
    ];
    // Time enough for a slow resolver to say the host is unknown.
    c.cache.timeout_ms = 5_000;
    let app = crate::helpers::spawn_with(c).await;
    for i in 0..8 {
        let r = app
            .get(
                &format!("/api/v1/comments?forum=demo&ident=%2Ft{i}"),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let tier = app.get("/statz", &As::guest()).await.body["cache_tier"].clone();
    let error_of = |name: &str| {
        tier["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["last_error"].clone())
    };
    assert_eq!(
        error_of(&format!("127.0.0.1:{port}")),
        Some(json!(format!(
            "Redis at 127.0.0.1:{port}: connection refused"
        ))),
        "{tier}"
    );
    assert_eq!(
        error_of("nohost.invalid:11211"),
        Some(json!("memcached at nohost.invalid:11211: unknown host")),
        "{tier}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_by_confab_reaches_every_running_node_at_once() {
    let mut f = Fleet::start(3).await;
    let link = "https://blog.example.com/2019/hello-world/";
    // The thread exists (one comment) and every node caches its page and count.
    let r = f.nodes[0]
        .post_comment("demo", link, "before the import", None, &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let t0 = Instant::now();
    f.until_seen("comment", 0, t0, async |n| count(n, link).await == 1)
        .await;
    warm(&f, link).await;
    let export: std::path::PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "testdata",
        "import",
        "disqus.xml",
    ]
    .iter()
    .collect();
    let out = confab_cli(
        &f,
        &[
            "import",
            "disqus",
            &export.to_string_lossy(),
            "--forum",
            "demo",
        ],
    );
    assert!(out.contains("comments: 7 added"), "{out}");
    assert!(!out.contains("warning"), "{out}");
    // From the moment the command has exited; each node's own periodic look (every 5 s)
    // would be too late for this bound: the announcement on the bus did it.
    let t0 = Instant::now();
    f.until_seen("import", usize::MAX, t0, async |n| {
        count(n, link).await == 5
            && page(n, link).await["thread"]["comment_count"] == 5
            && page(n, "post-1").await["thread"]["comment_count"] == 5
    })
    .await;
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the import took {took:?} to reach every node"
    );
    f.report();
}

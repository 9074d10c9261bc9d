//! One site on three nodes (ARCHITECTURE.md, "One site on many nodes"): three servers on one
//! store (the suite's backend: one SQLite file, or the PostgreSQL deployment with its replica)
//! sharing a real Redis bus. Every kind of change made on one node is seen by readers of the
//! other two within a second, with their caches warm; the time each took is printed (run with
//! `--nocapture`) and the worst must stay under a second. A node that loses the bus trusts its
//! caches only briefly until it is back.

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
    _redis: Option<Proc>,
    redis_port: u16,
    dir: tempfile::TempDir,
    /// How long each change took to be seen by every other node, by kind.
    seen: Vec<(&'static str, Duration)>,
}

impl Fleet {
    async fn start(n: usize) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let redis_port = free_port();
        let redis = redis_server(redis_port, dir.path());
        let store_dir = dir.path().join("store");
        std::fs::create_dir_all(&store_dir).unwrap();
        let mut nodes = Vec::new();
        for _ in 0..n {
            let mut c = config();
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
    let mut f = Fleet::start(3).await;
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

    // Bans are read from the store on every write: in force everywhere at once.
    let ident = "/fleet/ban";
    let t0 = Instant::now();
    let r = f.nodes[1]
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "email", "value": "troll@fleet.example"}),
            &modr,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    f.until_seen("ban", 1, t0, async |n| {
        let r = n
            .post(
                "/api/v1/comments",
                json!({"forum": "demo", "ident": ident, "body": "hi", "author_name": "T", "author_email": "troll@fleet.example"}),
                &As::guest(),
            )
            .await;
        r.status == StatusCode::FORBIDDEN
    })
    .await;

    f.report();
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

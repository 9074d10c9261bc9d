//! Sharded PostgreSQL when things go wrong (ARCHITECTURE.md, "Sharded PostgreSQL"), on servers
//! of the test's own: a control server, shard server s1 with a streaming replica, shard server s2.
//!
//! - read-your-writes: with the replica's replay paused, the client that posted sees its comment
//!   at once (its pin sends it to the primary), on any node; others are served by the replica;
//!   once the replica has lagged past the bound it gets no reads, and it is taken back when it
//!   catches up; a killed replica costs no failed read.
//! - a stopped shard primary: that shard's writes get 503 + Retry-After and nothing is half
//!   written, its reads come from the replica, the other shard is untouched, and writes resume
//!   when the primary is back, without restarting Confab.
//! - a crashed shard primary (every process SIGKILLed, posts in flight): every post that got
//!   201 is there after the restart, and every thread's counter matches its rows.

use crate::backend::{self, Cluster, ClusterShard};
use crate::helpers::{config, spawn_on, As, TestApp};
use crate::pg::PgServer;
use confab_core::id::LogicalShard;
use confab_store::pg::PgStore;
use confab_store::prelude::*;
use confab_store::ReadFrom;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Rig {
    pub control: PgServer,
    pub s1: PgServer,
    pub r1: PgServer,
    pub s2: PgServer,
}

impl Rig {
    /// Starts the four servers (blocking work, off the runtime's threads).
    pub async fn start() -> Rig {
        tokio::task::spawn_blocking(|| {
            let control = PgServer::start("control");
            let s1 = PgServer::start("s1");
            let r1 = s1.replica("r1");
            let s2 = PgServer::start("s2");
            Rig {
                control,
                s1,
                r1,
                s2,
            }
        })
        .await
        .unwrap()
    }

    pub fn cluster(&self) -> Cluster {
        Cluster {
            control: self.control.dsn("postgres"),
            shards: vec![
                ClusterShard {
                    name: "s1".into(),
                    primary: self.s1.dsn("postgres"),
                    replicas: vec![self.r1.dsn("postgres")],
                },
                ClusterShard {
                    name: "s2".into(),
                    primary: self.s2.dsn("postgres"),
                    replicas: vec![],
                },
            ],
        }
    }

    /// A node on the given control database (databases made by [`backend::provision`]).
    pub async fn node(control: &str) -> (TestApp, Arc<PgStore>) {
        let store = Arc::new(PgStore::open(backend::options(control)).await.unwrap());
        let app = spawn_on(config(), store.clone(), tempfile::tempdir().unwrap()).await;
        (app, store)
    }
}

/// A forum name whose logical shard lies on s1 (the lower half of the map) or on s2.
pub fn forum_on(first_half: bool, tag: &str) -> String {
    (0..)
        .map(|i| format!("{tag}{i}"))
        .find(|n| (LogicalShard::for_name(n).get() < 2048) == first_half)
        .unwrap()
}

async fn post(
    app: &TestApp,
    forum: &str,
    ident: &str,
    body: &str,
    who: &As,
) -> crate::helpers::Resp {
    app.post(
        "/api/v1/comments",
        json!({"forum": forum, "ident": ident, "body": body, "author_name": "T"}),
        who,
    )
    .await
}

fn bodies(page: &Value) -> Vec<String> {
    page["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn eventually(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_with_replay_paused_and_replicas_that_lag_or_die() {
    let rig = Rig::start().await;
    let control = backend::provision(&rig.cluster()).await;
    let f = forum_on(true, "ryw");
    let (a, a_store) = Rig::node(&control).await;
    a.forum(&f, json!({})).await;
    let (b, b_store) = Rig::node(&control).await;
    let db = control.rsplit('/').next().unwrap().to_string();

    let first = post(&a, &f, "/t", "before the pause", &As::guest()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let pin = first
        .header("x-confab-pin")
        .expect("a write returns a pin")
        .to_string();
    let first_id = confab_core::id::CommentId(first.body["id"].as_str().unwrap().parse().unwrap());
    // Node B (no pin) reads it from the replica once the replica has it. Both halves are
    // checked: until B's poller has heard from the replica, B's "replica" reads go to the
    // primary, and the replica could then be paused before it had replayed the comment.
    eventually(
        "the replica to have the first comment, and node B to read it there",
        20,
        async || {
            let on_replica = rig
                .r1
                .sql(
                    &db,
                    &format!("SELECT count(*) FROM comments WHERE id = {}", first_id.0),
                )
                .trim()
                == "1";
            let served = b_store.read_stats().replica;
            let found = b_store
                .comment(first_id, ReadFrom::Replica)
                .await
                .unwrap()
                .is_some();
            on_replica && found && b_store.read_stats().replica > served
        },
    )
    .await;

    // Pause replay: the replica stops where it is.
    rig.r1.sql(&db, "SELECT pg_wal_replay_pause()");
    let before = b_store.read_stats();
    let w = post(&a, &f, "/t", "during the pause", &As::guest()).await;
    assert_eq!(w.status, StatusCode::CREATED);
    let pin = w.header("x-confab-pin").unwrap_or(&pin).to_string();
    let new_id = confab_core::id::CommentId(w.body["id"].as_str().unwrap().parse().unwrap());

    // The writer reads its own write at once: on its node (the harness sends the pin back)...
    let mine = a
        .get(
            &format!("/api/v1/comments?forum={f}&ident=%2Ft"),
            &As::guest(),
        )
        .await;
    assert_eq!(bodies(&mine.body), ["before the pause", "during the pause"]);
    // ...and on another node, with the pin it was given.
    let r = b
        .http
        .get(format!("{}/api/v1/comments?forum={f}&ident=%2Ft", b.base))
        .header("x-confab-pin", &pin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        bodies(&v),
        ["before the pause", "during the pause"],
        "a pinned read on node B"
    );
    // Someone else on node B is served by the replica, which has not replayed it.
    let other = b
        .http
        .get(format!("{}/api/v1/comments?forum={f}&ident=%2Ft", b.base))
        .send()
        .await
        .unwrap();
    let v: Value = other.json().await.unwrap();
    assert_eq!(
        bodies(&v),
        ["before the pause"],
        "an unpinned read may be served by the (paused) replica"
    );
    assert!(b_store
        .comment(new_id, ReadFrom::Replica)
        .await
        .unwrap()
        .is_none());
    let mid = b_store.read_stats();
    assert!(
        mid.replica > before.replica,
        "node B read from the replica: {before:?} -> {mid:?}"
    );
    // On the writer's node, the shared page of that thread is filled from a copy that has the
    // write (the primary): an unpinned reader there sees it too...
    let v: Value = reqwest::get(format!("{}/api/v1/comments?forum={f}&ident=%2Ft", a.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        bodies(&v),
        ["before the pause", "during the pause"],
        "node A's shared page after its own write"
    );
    // ...while pages of threads it has not written are still filled from the replica.
    let s0 = a_store.read_stats();
    // Statements run on shard servers' replicas (the control database has none).
    let on_replicas = || -> u64 {
        a_store
            .statements()
            .iter()
            .filter(|s| s.shard != "control")
            .map(|s| s.replica)
            .sum()
    };
    let replica_statements = on_replicas();
    let v: Value = reqwest::get(format!(
        "{}/api/v1/comments?forum={f}&ident=%2Fother",
        a.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(v["thread"].is_null());
    assert!(
        a_store.read_stats().replica > s0.replica,
        "another thread's page came from the replica"
    );
    assert!(
        on_replicas() > replica_statements,
        "its statements are counted on the replica: {:?}",
        a_store.statements()
    );

    // Past the lag bound (2 s in tests) the paused replica gets no reads: B now sees the comment.
    eventually("the lagging replica to be left out", 20, async || {
        b_store
            .comment(new_id, ReadFrom::Replica)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    // Resumed, it catches up and is taken back.
    rig.r1.sql(&db, "SELECT pg_wal_replay_resume()");
    eventually("the replica to be used again", 20, async || {
        let s0 = b_store.read_stats();
        b_store
            .comment(new_id, ReadFrom::Replica)
            .await
            .unwrap()
            .is_some()
            && b_store.read_stats().replica > s0.replica
    })
    .await;

    // A killed replica: reads go on, from the primary, without a failure.
    tokio::task::block_in_place(|| rig.r1.kill());
    for i in 0..20 {
        let c = b_store.comment(new_id, ReadFrom::Replica).await;
        assert!(
            matches!(c, Ok(Some(_))),
            "read {i} after the replica died: {c:?}"
        );
        let p = b
            .http
            .get(format!(
                "{}/api/v1/comments?forum={f}&ident=%2Ft&sort=oldest",
                b.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(p.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_shard_primary_fails_only_its_own_writes_and_recovers() {
    let rig = Rig::start().await;
    let control = backend::provision(&rig.cluster()).await;
    let (f1, f2) = (forum_on(true, "down"), forum_on(false, "up"));
    let (app, store) = Rig::node(&control).await;
    app.forum(&f1, json!({})).await;
    app.forum(&f2, json!({})).await;
    let db = control.rsplit('/').next().unwrap().to_string();

    for (f, body) in [(&f1, "one on s1"), (&f2, "one on s2")] {
        let r = post(&app, f, "/t", body, &As::guest()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    eventually("the replica to catch up", 20, async || {
        rig.r1
            .try_sql(&db, "SELECT count(*) FROM comments")
            .as_deref()
            == Ok("1")
    })
    .await;

    let s1 = &rig.s1;
    tokio::task::block_in_place(|| s1.stop());
    // Writes to s1's forum: 503 with Retry-After, quickly.
    for i in 0..3 {
        let t = Instant::now();
        let r = post(&app, &f1, "/t", &format!("while down {i}"), &As::guest()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            "{:?}",
            r.body
        );
        assert!(r.header("retry-after").is_some());
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "failed fast: {:?}",
            t.elapsed()
        );
    }
    // The node stays ready for the balancer (other shards, and this one's reads, are served)
    // and says which server is down and why.
    let want = format!(
        "degraded: shard server s1: cannot connect to PostgreSQL at 127.0.0.1:{}: connection refused",
        s1.port()
    );
    eventually("/readyz to name the stopped primary", 10, async || {
        let r = app
            .http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap();
        r.status() == StatusCode::OK && r.text().await.unwrap().starts_with(&want)
    })
    .await;
    // Its reads come from the replica (a page not cached yet).
    let r = app
        .get(
            &format!("/api/v1/comments?forum={f1}&ident=%2Ft&sort=oldest"),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(bodies(&r.body), ["one on s1"]);
    let counts = app
        .get(
            &format!("/api/v1/counts?forum={f1}&ident=%2Ft"),
            &As::guest(),
        )
        .await;
    assert_eq!(counts.body["counts"]["/t"], 1);
    // The other shard is untouched.
    let r = post(&app, &f2, "/t", "two on s2", &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Back up: writes resume without restarting Confab.
    tokio::task::block_in_place(|| s1.start_again());
    eventually("writes to s1 to resume", 30, async || {
        post(&app, &f1, "/t", "after the restart", &As::guest())
            .await
            .status
            == StatusCode::CREATED
    })
    .await;
    eventually("/readyz to be ready again", 10, async || {
        let r = app
            .http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap();
        r.status() == StatusCode::OK && r.text().await.unwrap() == "ready"
    })
    .await;
    // Nothing half written: exactly the acknowledged comments, counters matching.
    let rows = rig.s1.sql(
        &db,
        "SELECT string_agg(body_md, '|' ORDER BY id) FROM comments",
    );
    assert_eq!(rows, "one on s1|after the restart");
    assert_eq!(rig.s1.sql(&db, "SELECT comment_count FROM threads"), "2");
    let _ = store;
}

/// The acceptance test of online moves: a logical shard moves from s1 to s2 while writers post
/// to threads on it and read them back. Every acknowledged comment ends up exactly once on the
/// target and nowhere on the source; no post fails (writes during the fence wait); no read
/// fails, and no read by the writer's own session goes back in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logical_shard_moves_online_under_writes_and_reads() {
    use confab_store::pg::moves::{move_shard, MoveOptions};
    use std::sync::atomic::{AtomicBool, Ordering};
    let rig = Rig::start().await;
    let control = backend::provision(&rig.cluster()).await;
    let f = forum_on(true, "moving");
    let logical = LogicalShard::for_name(&f).get();
    let (app, store) = Rig::node(&control).await;
    app.forum(&f, json!({})).await;
    let app = Arc::new(app);
    let db = control.rsplit('/').next().unwrap().to_string();
    // Some history first, so the copy has work to do.
    for i in 0..200 {
        let r = post(
            &app,
            &f,
            &format!("/old/{}", i % 10),
            &format!("old {i}"),
            &As::guest(),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let (app, stop, f) = (app.clone(), stop.clone(), f.clone());
        writers.push(tokio::spawn(async move {
            let ident = format!("/live/{w}");
            let (mut acked, mut failures, mut last_count) = (Vec::new(), Vec::new(), 0i64);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = post(&app, &f, &ident, &format!("w{w} #{i}"), &As::guest()).await;
                if r.status != StatusCode::CREATED {
                    failures.push(format!("post {i}: {} {:?}", r.status, r.body));
                    continue;
                }
                let id = r.body["id"].as_str().unwrap().to_string();
                acked.push(id.clone());
                // Read it back (this session's pin rides along): the newest comment is ours,
                // and the thread's count never goes back.
                let p = app.get(&format!("/api/v1/comments?forum={f}&ident={}&sort=newest&limit=1", ident.replace('/', "%2F")), &As::guest()).await;
                if p.status != StatusCode::OK {
                    failures.push(format!("read after post {i}: {} {:?}", p.status, p.body));
                    continue;
                }
                let count = p.body["thread"]["comment_count"].as_i64().unwrap_or(-1);
                let newest = p.body["comments"][0]["id"].as_str().unwrap_or("").to_string();
                if newest != id || count < last_count || count < acked.len() as i64 {
                    failures.push(format!("read after post {i} went back: newest {newest} (posted {id}), count {count} (was {last_count}, acked {})", acked.len()));
                }
                last_count = count;
            }
            (acked, failures)
        }));
    }
    // Another reader, without a session: every read answers.
    let reader = {
        let (app, stop, f) = (app.clone(), stop.clone(), f.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut reads, mut failures) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for ident in ["%2Flive%2F0", "%2Fold%2F3"] {
                    let r = http
                        .get(format!(
                            "{}/api/v1/comments?forum={f}&ident={ident}&sort=oldest",
                            app.base
                        ))
                        .send()
                        .await
                        .unwrap();
                    reads += 1;
                    if r.status() != StatusCode::OK {
                        failures.push(format!(
                            "{} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        ));
                    }
                }
            }
            (reads, failures)
        })
    };

    tokio::time::sleep(Duration::from_millis(700)).await;
    let opts = MoveOptions {
        grace: Duration::from_millis(800),
        ..MoveOptions::default()
    };
    let report = move_shard(store.router(), logical, "s2", opts, |m| {
        eprintln!("move: {m}")
    })
    .await
    .expect("move");
    eprintln!(
        "moved logical shard {logical}: fenced {:?}, total {:?}",
        report.fenced, report.total
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);

    let mut acked = Vec::new();
    for w in writers {
        let (a, failures) = w.await.unwrap();
        assert!(failures.is_empty(), "writer failures: {failures:#?}");
        acked.extend(a);
    }
    let (reads, failures) = reader.await.unwrap();
    assert!(failures.is_empty(), "reader failures: {failures:#?}");
    assert!(
        acked.len() > 20 && reads > 20,
        "the load ran: {} posts, {reads} reads",
        acked.len()
    );

    // Exactly once on the target, none on the source.
    let ids = acked.join(",");
    let on_target = rig.s2.sql(
        &db,
        &format!("SELECT count(*), count(DISTINCT id) FROM comments WHERE id IN ({ids})"),
    );
    assert_eq!(on_target, format!("{}|{}", acked.len(), acked.len()));
    assert_eq!(
        rig.s1.sql(
            &db,
            &format!("SELECT count(*) FROM comments WHERE shard = {logical}")
        ),
        "0"
    );
    assert_eq!(
        rig.s1.sql(
            &db,
            &format!("SELECT count(*) FROM threads WHERE shard = {logical}")
        ),
        "0"
    );
    assert_eq!(
        rig.s2.sql(
            &db,
            &format!("SELECT count(*) FROM comments WHERE shard = {logical}")
        ),
        (200 + acked.len()).to_string()
    );
    // The map routes the shard to s2 now: a new comment lands there.
    let r = post(&app, &f, "/after", "after the move", &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        rig.s2.sql(
            &db,
            "SELECT count(*) FROM comments WHERE body_md = 'after the move'"
        ),
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_control_database_stopped_a_node_is_degraded_not_down_and_serves_pages() {
    let rig = Rig::start().await;
    let control = backend::provision(&rig.cluster()).await;
    let f = forum_on(true, "ctl");
    let (a, _store) = Rig::node(&control).await;
    a.forum(&f, json!({})).await;
    let r = post(&a, &f, "/t", "before the blip", &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let ready = a.get("/readyz", &As::guest()).await;
    assert_eq!(ready.status, StatusCode::OK);
    tokio::task::block_in_place(|| rig.control.stop());
    // The node can still serve: ready for the balancer, and it says what is missing.
    let r = a
        .http
        .get(format!("{}/readyz", a.base))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.starts_with("degraded: control database unreachable"),
        "{body}"
    );
    // ...and why: the cause, not just "unavailable" (a pooled connection may first report the
    // server's shutdown; a new one is refused).
    let want = format!(
        "control database unreachable (cannot connect to PostgreSQL at 127.0.0.1:{}: connection refused)",
        rig.control.port()
    );
    eventually("/readyz to name the cause", 10, async || {
        let r = a
            .http
            .get(format!("{}/readyz", a.base))
            .send()
            .await
            .unwrap();
        r.text().await.unwrap().contains(&want)
    })
    .await;
    for _ in 0..10 {
        let p = a
            .get(
                &format!("/api/v1/comments?forum={f}&ident=%2Ft"),
                &As::guest(),
            )
            .await;
        assert_eq!(p.status, StatusCode::OK, "{:?}", p.body);
        assert_eq!(bodies(&p.body), vec!["before the blip"]);
    }
    // A post's author is checked against the bans, which live in the control data: an author
    // this node has not found unbanned lately is refused clearly, to be retried...
    let r = a
        .post(
            "/api/v1/comments",
            json!({"forum": f, "ident": "/t", "body": "during the blip", "author_name": "N",
                   "author_email": "new@blip.example"}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        "{:?}",
        r.body
    );
    // ...while one it found unbanned a moment ago still posts: no ban can be made meanwhile
    // (bans are written there too), so what the node knows is what it would read.
    let r = post(&a, &f, "/t", "during the blip", &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    tokio::task::block_in_place(|| rig.control.start_again());
    eventually("readiness back to ready", 20, async || {
        let r = a
            .http
            .get(format!("{}/readyz", a.base))
            .send()
            .await
            .unwrap();
        r.status() == StatusCode::OK && r.text().await.unwrap() == "ready"
    })
    .await;
    // Both stores down (shard servers stopped too): down.
    tokio::task::block_in_place(|| {
        rig.control.stop();
        rig.s1.stop();
        rig.r1.stop();
    });
    let r = a
        .http
        .get(format!("{}/readyz", a.base))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.starts_with("down: "), "{body}");
    assert!(body.contains("PostgreSQL"), "the causes: {body}");
}

/// Durability on the scaled path: writers post to a forum on s1 until s1's whole process tree
/// is SIGKILLed mid-stream (posts in flight, pipelined). After the restart, every post that got
/// 201 is there, and nothing half written is: each thread's counter matches its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_post_survives_a_crash_of_its_shard_primary() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let rig = Rig::start().await;
    let control = backend::provision(&rig.cluster()).await;
    let f = forum_on(true, "crash");
    let (app, _store) = Rig::node(&control).await;
    app.forum(&f, json!({})).await;
    let app = Arc::new(app);
    let db = control.rsplit('/').next().unwrap().to_string();
    // A commit is acknowledged by the server only once it is in the WAL.
    assert_eq!(rig.s1.sql(&db, "SHOW synchronous_commit"), "on");

    let stop = Arc::new(AtomicBool::new(false));
    let acked_total = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (app, stop, f, total) = (app.clone(), stop.clone(), f.clone(), acked_total.clone());
        writers.push(tokio::spawn(async move {
            let (mut acked, mut refused) = (Vec::new(), 0);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let ident = format!("/t/{}", i % 3);
                let r = post(&app, &f, &ident, &format!("w{w} #{i}"), &As::guest()).await;
                match r.status {
                    StatusCode::CREATED => {
                        acked.push(r.body["id"].as_str().unwrap().to_string());
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                    StatusCode::SERVICE_UNAVAILABLE => refused += 1,
                    s => panic!("post {i}: {s} {:?}", r.body),
                }
            }
            (acked, refused)
        }));
    }
    eventually("200 acknowledged posts", 60, async || {
        acked_total.load(Ordering::Relaxed) >= 200
    })
    .await;
    tokio::task::block_in_place(|| rig.s1.crash());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut refused) = (Vec::new(), 0);
    for w in writers {
        let (a, r) = w.await.unwrap();
        acked.extend(a);
        refused += r;
    }
    assert!(refused > 0, "posts were refused while s1 was down");

    tokio::task::block_in_place(|| rig.s1.start_again());
    let stored = rig
        .s1
        .sql(&db, "SELECT string_agg(id::text, ',') FROM comments");
    let stored: std::collections::HashSet<&str> = stored.split(',').collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged posts lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    let mismatched = rig.s1.sql(
        &db,
        "SELECT count(*) FROM threads t WHERE comment_count <> \
         (SELECT count(*) FROM comments c WHERE c.thread_id = t.id AND c.status = 'approved')",
    );
    assert_eq!(mismatched, "0", "thread counters match their rows");
}

/// Posts that reach a shard server together share a transaction (group commit), and a post
/// that fails inside a group fails alone: 60 posts at once over three threads, among them
/// replies to a comment of another thread (refused) and pairs with one idempotency key (one
/// comment each, the same answer twice). Every valid post is written once, with its own
/// place in its thread, counters match the rows, and the posts that queued together were
/// written by one statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_that_arrive_together_share_a_commit_and_fail_alone() {
    let rig = Rig::start().await;
    let control = backend::provision(&rig.cluster()).await;
    let f = forum_on(true, "group");
    let (app, _store) = Rig::node(&control).await;
    app.forum(&f, json!({})).await;
    let db = control.rsplit('/').next().unwrap().to_string();
    // The threads exist (a page's first comment takes the general path).
    let mut firsts = Vec::new();
    for t in 0..3 {
        let r = post(&app, &f, &format!("/g/{t}"), "first", &As::guest()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        firsts.push(r.body["id"].as_str().unwrap().to_string());
    }
    let send = |i: usize| {
        let (app, f, firsts) = (&app, &f, &firsts);
        async move {
            let t = i % 3;
            let mut body = json!({"forum": f, "ident": format!("/g/{t}"), "body": format!("post {i}"), "author_name": "G"});
            // Every tenth replies to the first comment of another thread: refused.
            if i.is_multiple_of(10) {
                body["parent_id"] = json!(firsts[(t + 1) % 3]);
            }
            // Posts 1 and 2, 31 and 32 are one request sent twice each.
            let key = matches!(i, 1 | 2 | 31 | 32).then(|| format!("group-{}", i / 30));
            if let Some(k) = &key {
                body["ident"] = json!("/g/1");
                body["body"] = json!(format!("keyed {k}"));
            }
            let mut req = app
                .http
                .post(format!("{}/api/v1/comments", app.base))
                .json(&body);
            if let Some(k) = key {
                req = req.header("idempotency-key", k);
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            (i, status, r.json::<Value>().await.unwrap())
        }
    };
    // The threads' rows are held while the posts arrive: the first group waits for them, and
    // every post that comes meanwhile queues for the next.
    let (held, conn) = tokio_postgres::connect(&rig.s1.dsn(&db), tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    held.batch_execute("BEGIN; SELECT id FROM threads FOR UPDATE")
        .await
        .unwrap();
    let answers = futures_util::future::join_all((0..60).map(send));
    let release = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        held.batch_execute("COMMIT").await.unwrap();
    };
    let (answers, ()) = tokio::join!(answers, release);
    drop(held);
    let _ = conn.await;
    let mut ids = std::collections::HashSet::new();
    let mut keyed: std::collections::HashMap<usize, String> = Default::default();
    for (i, status, body) in &answers {
        if i.is_multiple_of(10) {
            assert!(status.is_client_error(), "post {i}: {status} {body:?}");
            continue;
        }
        assert_eq!(*status, StatusCode::CREATED, "post {i}: {body:?}");
        let id = body["id"].as_str().unwrap().to_string();
        if matches!(i, 1 | 2 | 31 | 32) {
            keyed.insert(*i, id.clone());
        }
        ids.insert(id);
    }
    assert_eq!(keyed[&1], keyed[&2], "one key, one comment");
    assert_eq!(keyed[&31], keyed[&32], "one key, one comment");
    // 54 valid posts, two pairs of them one comment each.
    assert_eq!(ids.len(), 52);
    let stored = rig.s1.sql(&db, "SELECT count(*) FROM comments");
    assert_eq!(stored, (52 + 3).to_string());
    let mismatched = rig.s1.sql(
        &db,
        "SELECT count(*) FROM threads t WHERE comment_count <> \
         (SELECT count(*) FROM comments c WHERE c.thread_id = t.id AND c.status = 'approved') \
         OR seq < comment_count",
    );
    assert_eq!(mismatched, "0", "thread counters match their rows");
    let commits: usize = rig
        .s1
        .sql(&db, "SELECT count(DISTINCT xmin::text) FROM comments")
        .parse()
        .unwrap();
    // The three first comments, the group (or two) that waited, and the posts that took the
    // general path (the refused replies write nothing; a key's second copy replays).
    assert!(commits <= 10, "{commits} transactions wrote 55 comments");
}

//! Shard moves and `migrate-data` against real PostgreSQL servers started by the test (a
//! control server and two shard servers, each its own postmaster in a temp dir with fsync off).
//! Skipped, with a notice, when PostgreSQL's server programs are not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confab_core::id::{self, CommentId, LogicalShard};
use confab_core::ident::Ident;
use confab_core::model::{Author, BanKind, CommentStatus, Forum, ForumSettings};
use confab_core::switch::{Percent, SwitchName, SwitchRecord};
use confab_store::pg::moves::{self, MoveOptions, Phase};
use confab_store::pg::{admin, migrate_data, PgOptions, PgStore};
use confab_store::prelude::*;
use confab_store::sqlite::SqliteStore;
use confab_store::{BanRecord, NewAccount, NewComment, NewTask, ReadFrom, SubState, Visibility};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- throwaway servers

fn bindir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    dirs.push("/usr/lib/postgresql/15/bin".into());
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort();
    dirs.extend(versions.into_iter().rev().map(|(_, d)| d));
    dirs.into_iter().find(|d| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `timeout 60 [runuser -u postgres --] BIN/program`, from `/`.
fn pg(bin: &Path, program: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg("60").current_dir("/");
    if is_root() {
        cmd.args(["runuser", "-u", "postgres", "--"]);
    }
    cmd.arg(bin.join(program));
    cmd
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One postmaster, stopped when dropped.
struct Pg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Pg {
    fn start(bin: &Path, name: &str) -> Pg {
        let dir = tempfile::Builder::new()
            .prefix(&format!("confab-moves-{name}-"))
            .tempdir_in("/tmp")
            .unwrap();
        if is_root() {
            run(
                Command::new("chown").arg("postgres:").arg(dir.path()),
                "chown",
            );
        }
        let data = dir.path().join("data");
        run(
            pg(bin, "initdb")
                .args([
                    "--no-sync",
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-D",
                ])
                .arg(&data),
            "initdb",
        );
        let port = free_port();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n\
             synchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\nshared_buffers = 32MB\n",
            dir.path().display()
        );
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        run(
            pg(bin, "pg_ctl")
                .args(["-w", "-t", "30", "-l"])
                .arg(dir.path().join("log"))
                .arg("-D")
                .arg(&data)
                .arg("start"),
            "pg_ctl start",
        );
        Pg {
            bin: bin.to_path_buf(),
            dir,
            port,
        }
    }

    fn dsn(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = pg(&self.bin, "pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}

/// A control server and shard servers s1 and s2.
struct Cluster {
    control: Pg,
    s1: Pg,
    s2: Pg,
}

fn cluster() -> Option<Cluster> {
    let Some(bin) = bindir() else {
        eprintln!("SKIPPED: PostgreSQL server programs (initdb, pg_ctl) not found; set PG_BIN to run the shard move tests");
        return None;
    };
    let start = |name: &'static str| {
        let bin = bin.clone();
        std::thread::spawn(move || Pg::start(&bin, name))
    };
    let (c, a, b) = (start("control"), start("s1"), start("s2"));
    Some(Cluster {
        control: c.join().unwrap(),
        s1: a.join().unwrap(),
        s2: b.join().unwrap(),
    })
}

async fn client(dsn: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

const TABLES: &[&str] = &[
    "threads",
    "comments",
    "votes",
    "flags",
    "mod_log",
    "idempotency",
    "tasks",
    "task_effects",
    "subscriptions",
    "reply_notify",
];

async fn shard_rows(c: &tokio_postgres::Client, l: u16) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for t in TABLES {
        let n: i64 = c
            .query_one(
                &format!("SELECT count(*) FROM {t} WHERE shard = $1"),
                &[&i32::from(l)],
            )
            .await
            .unwrap()
            .get(0);
        out.push((*t, n));
    }
    out
}

async fn open(c: &Cluster, refresh_ms: u64) -> PgStore {
    let mut o = PgOptions::new(&c.control.dsn());
    o.map_refresh_ms = refresh_ms;
    o.pool_size = 8;
    PgStore::open(o).await.unwrap()
}

/// A store with s1 (every logical shard) and s2 (none) registered.
async fn deployment(c: &Cluster) -> PgStore {
    let store = open(c, 100).await;
    admin::add_server(
        store.router(),
        "s1",
        &c.s1.dsn(),
        &[],
        admin::AddChecks::default(),
    )
    .await
    .unwrap();
    admin::add_server(
        store.router(),
        "s2",
        &c.s2.dsn(),
        &[],
        admin::AddChecks::default(),
    )
    .await
    .unwrap();
    store
}

fn opts(stop: Option<Phase>) -> MoveOptions {
    MoveOptions {
        grace: Duration::from_millis(300),
        stop_after: stop,
        ..MoveOptions::default()
    }
}

// ---------------------------------------------------------------- data

fn comment(f: &Forum, thread: &str, parent: Option<CommentId>, body: &str) -> NewComment {
    NewComment {
        forum: std::sync::Arc::new(f.clone()),
        ident: Ident::parse(thread).unwrap(),
        url: Some(format!("https://example.com{thread}")),
        title: Some(format!("Thread {thread}")),
        parent_id: parent,
        author: Author::Guest {
            name: "Guest".into(),
            email: Some("guest@example.com".into()),
            url: None,
        },
        anon_id: Some("anon-1".into()),
        body_md: body.into(),
        body_html: format!("<p>{body}</p>"),
        status: CommentStatus::Approved,
        held_reason: None,
        ip_hash: "iphash".into(),
        created_at: confab_core::now_ms(),
        idempotency: None,
        max_depth: 4,
        tasks: Vec::new(),
        notify: None,
        spam_facts: None,
        images: Vec::new(),
    }
}

/// Threads, comments with replies, votes, flags, moderation (log and tasks), idempotency keys,
/// reply-mail requests and subscriptions, task claims and effects: every shard table gets rows.
async fn populate(s: &dyn Store, f: &Forum, threads: usize, per_thread: usize) -> Vec<CommentId> {
    let mut ids = Vec::new();
    for t in 0..threads {
        let ident = format!("/post-{t}");
        let mut in_thread: Vec<CommentId> = Vec::new();
        for i in 0..per_thread {
            let parent = (i % 3 == 2).then(|| in_thread[i / 2]);
            let mut c = comment(f, &ident, parent, &format!("comment {t}.{i} ✓"));
            if i % 4 == 0 {
                c.idempotency = Some(confab_store::Idempotency {
                    scope: "guest".into(),
                    key: format!("key-{}-{t}-{i}", f.name),
                    request_hash: "h".into(),
                });
            }
            if i % 5 == 0 {
                c.notify = Some(confab_store::ReplyWatch {
                    email: format!("Reader{i}@Example.COM"),
                    owner: format!("t:{i}"),
                });
            }
            if i % 6 == 0 {
                c.status = CommentStatus::Pending;
            }
            if i % 2 == 0 {
                c.tasks.push(NewTask::new("test.kind", json!({ "n": i })));
            }
            let p = s.post_comment(c).await.unwrap().value;
            in_thread.push(p.comment.id);
            ids.push(p.comment.id);
        }
        for (i, id) in in_thread.iter().enumerate() {
            if i % 2 == 1 {
                s.vote(*id, "voter-a", 1).await.unwrap();
                s.vote(*id, "voter-b", -1).await.unwrap();
            }
            if i % 7 == 3 {
                s.flag(*id, "flagger", "spam", None).await.unwrap();
            }
        }
        // Moderation: approve the pending ones (log entries, counters, a task each).
        let pending: Vec<CommentId> = in_thread
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 12 == 0)
            .map(|(_, id)| *id)
            .collect();
        s.set_status(
            f,
            &pending,
            CommentStatus::Approved,
            None,
            "approve",
            vec![NewTask::new("test.kind", json!({"approved": true}))],
        )
        .await
        .unwrap();
    }
    s.set_subscription(
        f,
        "Mixed.Case@Example.COM",
        SubState::Confirmed,
        Some("t:mixed"),
    )
    .await
    .unwrap();
    let kinds = vec!["test.kind".to_string()];
    let claimed = s.claim_tasks(&kinds, 5, 60_000, 5).await.unwrap();
    for t in &claimed {
        s.record_task_effect(t.id, "mail:someone").await.unwrap();
    }
    if let Some(t) = claimed.first() {
        s.complete_task(t.id, t.attempts).await.unwrap();
    }
    ids
}

/// Two forums whose names hash to different logical shards.
fn two_names() -> (String, String) {
    let a = "alpha".to_string();
    let la = LogicalShard::for_name(&a);
    let b = (0..)
        .map(|i| format!("beta{i}"))
        .find(|n| LogicalShard::for_name(n) != la)
        .unwrap();
    (a, b)
}

/// Bulk comments written straight into the shard's database (fast), counters kept right.
async fn bulk_comments(dsn: &str, f: &Forum, thread: i64, n: i32) {
    let c = client(dsn).await;
    let base = (confab_core::now_ms() - id::EPOCH_MS - 600_000) as i64;
    c.execute(
        "INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, guest_name, body_md, body_html, status, created_at, ip_hash) \
         SELECT (($1::bigint + g / 2048) << 23) | ($2::int::bigint << 11) | (g % 2048), $2::int, $3, $4, NULL, 0, 'bulk', 'bulk ' || g, \
                '<p>bulk ' || g || '</p>', 'approved', $5, 'ip' FROM generate_series(0, $6 - 1) g",
        &[&base, &i32::from(f.shard.get()), &thread, &f.id.0, &confab_core::now_ms(), &n],
    )
    .await
    .unwrap();
    c.execute(
        "UPDATE threads SET comment_count = comment_count + $1 WHERE id = $2",
        &[&i64::from(n), &thread],
    )
    .await
    .unwrap();
}

// ---------------------------------------------------------------- tests

/// A logical shard with every kind of row moves while a writer keeps posting to it: afterwards
/// every row is on the target once, none on the source, the map points at the target, writes
/// (from this node and from a node with a stale map) land there, and it moves back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn move_copies_everything_once_and_writes_follow() {
    let Some(c) = cluster() else { return };
    let t0 = Instant::now();
    let store = Arc::new(deployment(&c).await);
    let r = store.router().clone();
    let (a, b) = two_names();
    let alpha = store
        .create_forum(&a, &ForumSettings::new("Alpha"))
        .await
        .unwrap();
    let beta = store
        .create_forum(&b, &ForumSettings::new("Beta"))
        .await
        .unwrap();
    let l = alpha.shard.get();
    let mut posted = populate(&*store, &alpha, 4, 30).await;
    populate(&*store, &beta, 1, 10).await;
    let big = store
        .thread_by_ident(&alpha, &Ident::parse("/post-0").unwrap(), ReadFrom::Primary)
        .await
        .unwrap()
        .unwrap();
    bulk_comments(&c.s1.dsn(), &alpha, big.id.0, 5000).await;
    // A node that will not notice the move on its own (map refresh once a minute).
    let stale = open(&c, 60_000).await;
    let (s1, s2) = (client(&c.s1.dsn()).await, client(&c.s2.dsn()).await);
    let before = shard_rows(&s1, l).await;
    let beta_before = shard_rows(&s1, beta.shard.get()).await;
    eprintln!("populated in {:?}: {before:?}", t0.elapsed());

    // A writer posting throughout the move.
    let stop = Arc::new(AtomicBool::new(false));
    let during = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (store, alpha, stop, during) =
            (store.clone(), alpha.clone(), stop.clone(), during.clone());
        tokio::spawn(async move {
            let mut i = 0;
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let p = store
                    .post_comment(comment(&alpha, "/live", None, &format!("live {i}")))
                    .await
                    .unwrap()
                    .value;
                slowest = slowest.max(t.elapsed());
                during.lock().unwrap().push(p.comment.id);
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            slowest
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines = Mutex::new(Vec::new());
    let report = moves::move_shard(&r, l, "s2", opts(None), |m| {
        lines.lock().unwrap().push(m.to_string())
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let slowest = writer.await.unwrap();
    eprintln!("{}", lines.lock().unwrap().join("\n"));
    eprintln!("{report}");
    eprintln!("slowest write during the move: {slowest:?}");
    let during = during.lock().unwrap().clone();
    assert!(!during.is_empty());
    posted.extend(&during);

    // The map points at s2, on this node at once.
    let s2_id = r.servers().iter().find(|s| s.name == "s2").unwrap().id;
    assert_eq!(r.map().server_id(alpha.shard), Some(s2_id));
    // None left on the source; on the target, everything there was plus what was written.
    let after_src = shard_rows(&s1, l).await;
    assert!(
        after_src.iter().all(|(_, n)| *n == 0),
        "rows left on the source: {after_src:?}"
    );
    let after_dst = shard_rows(&s2, l).await;
    for ((t, b), (_, a)) in before.iter().zip(&after_dst) {
        let added = if *t == "comments" {
            during.len() as i64
        } else {
            0
        };
        if *t == "comments"
            || *t == "votes"
            || *t == "flags"
            || *t == "mod_log"
            || *t == "subscriptions"
            || *t == "reply_notify"
        {
            assert_eq!(*a, b + added, "{t}");
        } else {
            assert!(*a >= *b, "{t}: {a} < {b}");
        }
    }
    // (The writer went on writing at the target after the flip.)
    let verified = report
        .tables
        .iter()
        .find(|t| t.table == "comments")
        .unwrap()
        .rows as i64;
    assert!(verified >= before[1].1 && verified <= after_dst[1].1);
    assert!(
        report.fenced < Duration::from_secs(2),
        "fenced for {:?}",
        report.fenced
    );
    // Every acknowledged comment is there, readable through the store.
    for id in &posted {
        let n: i64 = s2
            .query_one("SELECT count(*) FROM comments WHERE id = $1", &[&id.0])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "comment {id} on the target");
    }
    let last = store
        .comment(*during.last().unwrap(), ReadFrom::Primary)
        .await
        .unwrap()
        .unwrap();
    assert!(last.body_md.starts_with("live "));
    let fence: String = s1
        .query_one(
            "SELECT state FROM shard_fence WHERE logical = $1",
            &[&i32::from(l)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fence, "moved");
    // The other forum's shard stayed where it was, untouched.
    assert_eq!(shard_rows(&s1, beta.shard.get()).await, beta_before);

    // Writes after the move land on s2: from this node, and from the stale node (it meets the
    // `moved` fence, reloads the map and retries).
    let p = store
        .post_comment(comment(&alpha, "/after", None, "after"))
        .await
        .unwrap()
        .value;
    let p2 = stale
        .post_comment(comment(
            &alpha,
            "/after",
            Some(p.comment.id),
            "from a stale node",
        ))
        .await
        .unwrap()
        .value;
    for id in [p.comment.id, p2.comment.id] {
        let n: i64 = s2
            .query_one("SELECT count(*) FROM comments WHERE id = $1", &[&id.0])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
    }
    let page = store
        .top_level(
            &p.thread,
            &Visibility::Public,
            confab_core::cursor::Sort::Oldest,
            None,
            10,
            None,
            ReadFrom::Primary,
        )
        .await
        .unwrap()
        .0;
    assert_eq!(page.len(), 1);
    assert_eq!(
        page[0].reply_count, 1,
        "the stale node's reply counted on the parent"
    );
    let replies = store
        .replies(
            &p.thread,
            &[p.comment.id],
            &Visibility::Public,
            None,
            10,
            ReadFrom::Primary,
        )
        .await
        .unwrap();
    assert_eq!(
        replies.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![p2.comment.id]
    );
    let v = moves::verify(&r).await.unwrap();
    assert!(v.ok(), "{v}");

    // Again to the same server: nothing to do. Then back to s1.
    let again = moves::move_shard(&r, l, "s2", opts(None), |_| {})
        .await
        .unwrap();
    assert!(again.noop);
    let back = moves::move_shard(&r, l, "s1", opts(None), |_| {})
        .await
        .unwrap();
    eprintln!("{back}");
    assert_eq!(shard_rows(&s2, l).await.iter().map(|x| x.1).sum::<i64>(), 0);
    assert_eq!(shard_rows(&s1, l).await[1].1, after_dst[1].1 + 2);
    assert!(
        r.map().overrides.is_empty(),
        "s1's range owns the shard again: no override"
    );
    let p3 = store
        .post_comment(comment(&alpha, "/after", None, "back home"))
        .await
        .unwrap()
        .value;
    let n: i64 = s1
        .query_one(
            "SELECT count(*) FROM comments WHERE id = $1",
            &[&p3.comment.id.0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let v = moves::verify(&r).await.unwrap();
    assert!(v.ok(), "{v}");

    // verify reports what is wrong (and changes nothing).
    s2.execute(
        "INSERT INTO votes (comment_id, voter, shard, value, created_at) VALUES ($1, 'stray', $2, 1, 0)",
        &[&p3.comment.id.0, &i32::from(l)],
    )
    .await
    .unwrap();
    s1.execute(
        "UPDATE threads SET comment_count = comment_count + 1 WHERE id = $1",
        &[&p3.thread.id.0],
    )
    .await
    .unwrap();
    let v = moves::verify(&r).await.unwrap();
    assert_eq!(v.problems.len(), 2, "{v}");
    eprintln!("{v}");
    eprintln!("test took {:?}", t0.elapsed());
}

/// A move stopped after each phase (as if the process died there) is finished by running it
/// again; a different move of that shard meanwhile is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_move_resumes() {
    let Some(c) = cluster() else { return };
    let store = deployment(&c).await;
    let r = store.router().clone();
    let alpha = store
        .create_forum("alpha", &ForumSettings::new("Alpha"))
        .await
        .unwrap();
    let l = alpha.shard.get();
    let li = i32::from(l);
    populate(&store, &alpha, 2, 10).await;
    let (s1, s2, control) = (
        client(&c.s1.dsn()).await,
        client(&c.s2.dsn()).await,
        client(&c.control.dsn()).await,
    );
    let phase = || async {
        control
            .query_one("SELECT phase FROM shard_moves WHERE logical = $1", &[&li])
            .await
            .unwrap()
            .get::<_, String>(0)
    };

    // Killed after the first copy: writers carry on at the source.
    let e = moves::move_shard(&r, l, "s2", opts(Some(Phase::Copy)), |_| {})
        .await
        .unwrap_err();
    assert!(e.message.contains("stopped"), "{e}");
    assert_eq!(phase().await, "catchup");
    store
        .post_comment(comment(&alpha, "/post-0", None, "written between attempts"))
        .await
        .unwrap();
    // Another move of the shard is refused meanwhile.
    let e = moves::move_shard(&r, l, "s1", opts(None), |_| {})
        .await
        .unwrap_err();
    assert!(e.message.contains("unfinished move"), "{e}");

    // Killed with the fence set: writers wait...
    let e = moves::move_shard(&r, l, "s2", opts(Some(Phase::Fenced)), |_| {})
        .await
        .unwrap_err();
    assert!(e.message.contains("stopped after phase fenced"), "{e}");
    assert_eq!(phase().await, "fenced");
    let fence: String = s1
        .query_one("SELECT state FROM shard_fence WHERE logical = $1", &[&li])
        .await
        .unwrap()
        .get(0);
    assert_eq!(fence, "moving");
    // ...until the move is run again, which lifts the fence before copying again.
    let e = moves::move_shard(&r, l, "s2", opts(Some(Phase::Flipped)), |_| {})
        .await
        .unwrap_err();
    assert!(e.message.contains("stopped"), "{e}");
    assert_eq!(phase().await, "flipped");
    // Flipped but not cleaned: the map points at s2, writes go there, s1 still has the rows.
    let s2_id = r.servers().iter().find(|s| s.name == "s2").unwrap().id;
    assert_eq!(r.map().server_id(alpha.shard), Some(s2_id));
    let p = store
        .post_comment(comment(&alpha, "/post-1", None, "after the flip"))
        .await
        .unwrap()
        .value;
    let n: i64 = s2
        .query_one(
            "SELECT count(*) FROM comments WHERE id = $1",
            &[&p.comment.id.0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert!(shard_rows(&s1, l).await[1].1 > 0);
    let v = moves::verify(&r).await.unwrap();
    assert!(
        v.ok(),
        "rows on both servers are expected during a move: {v}"
    );
    assert_eq!(v.moves.len(), 1);

    // Run again: only the cleanup is left.
    let rep = moves::move_shard(&r, l, "s2", opts(None), |_| {})
        .await
        .unwrap();
    assert_eq!(rep.resumed_from, Some(Phase::Flipped));
    assert_eq!(phase().await, "done");
    assert_eq!(shard_rows(&s1, l).await.iter().map(|x| x.1).sum::<i64>(), 0);
    let dst = shard_rows(&s2, l).await;
    assert_eq!(dst[1].1, 2 * 10 + 2, "every comment once: {dst:?}");
    let v = moves::verify(&r).await.unwrap();
    assert!(v.ok(), "{v}");
    assert!(v.moves.is_empty());
    // Now a move back is a new move (the finished one does not block it).
    let e = moves::move_shard(&r, l, "s1", opts(Some(Phase::Copy)), |_| {})
        .await
        .unwrap_err();
    assert!(e.message.contains("stopped"), "{e}");
    let rep = moves::move_shard(&r, l, "s1", opts(None), |_| {})
        .await
        .unwrap();
    assert_eq!(rep.resumed_from, Some(Phase::Catchup));
    assert_eq!(shard_rows(&s1, l).await[1].1, 2 * 10 + 2);

    // A copy that does not match its source (here a trigger on the target garbles it) fails the
    // move: fence lifted, map unchanged, writers carry on; fixed, the move goes through.
    s2.batch_execute(
        "CREATE FUNCTION garble() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body_md := NEW.body_md || '!'; RETURN NEW; END $$; \
         CREATE TRIGGER garble BEFORE INSERT OR UPDATE ON comments FOR EACH ROW EXECUTE FUNCTION garble();",
    )
    .await
    .unwrap();
    let e = moves::move_shard(&r, l, "s2", opts(None), |_| {})
        .await
        .unwrap_err();
    assert!(
        e.message.contains("does not match") && e.message.contains("comments"),
        "{e}"
    );
    assert_eq!(phase().await, "failed");
    let fences: i64 = s1
        .query_one(
            "SELECT count(*) FROM shard_fence WHERE logical = $1",
            &[&li],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fences, 0);
    let s1_id = r.servers().iter().find(|s| s.name == "s1").unwrap().id;
    assert_eq!(r.map().server_id(alpha.shard), Some(s1_id));
    store
        .post_comment(comment(&alpha, "/post-1", None, "after the failed move"))
        .await
        .unwrap();
    s2.batch_execute("DROP TRIGGER garble ON comments")
        .await
        .unwrap();
    moves::move_shard(&r, l, "s2", opts(None), |_| {})
        .await
        .unwrap();
    assert_eq!(shard_rows(&s2, l).await[1].1, 2 * 10 + 3);
    let v = moves::verify(&r).await.unwrap();
    assert!(v.ok(), "{v}");
}

/// An embedded SQLite database copied into PostgreSQL reads the same through the store;
/// running it again changes nothing; a deployment with other forums is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_data_copies_sqlite_into_postgres() {
    let Some(c) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("confab.sqlite3");
    let lite = SqliteStore::open(&path, 2).unwrap();
    let (a, b) = two_names();
    let alpha = lite
        .create_forum(&a, &ForumSettings::new("Alpha"))
        .await
        .unwrap();
    let beta = lite
        .create_forum(&b, &ForumSettings::new("Beta"))
        .await
        .unwrap();
    let admin_acct = lite
        .create_account(NewAccount {
            username: "Admin".into(),
            email: Some("Admin@Example.com".into()),
            display_name: "The Admin".into(),
            password_hash: "hash".into(),
            is_staff: true,
        })
        .await
        .unwrap();
    lite.set_moderator(admin_acct.id, alpha.id, true)
        .await
        .unwrap();
    lite.add_ban(
        alpha.id,
        &BanRecord {
            kind: BanKind::Email,
            value: "troll@example.com".into(),
            reason: Some("trolling".into()),
            expires_at: None,
            shadow: false,
            actor: Some(admin_acct.id),
            comment_id: None,
            shown: "t***@example.com".into(),
        },
    )
    .await
    .unwrap();
    lite.add_ban(
        alpha.id,
        &BanRecord {
            kind: BanKind::Ip,
            value: "0123456789abcdef".into(),
            reason: None,
            expires_at: None,
            shadow: true,
            actor: Some(admin_acct.id),
            comment_id: None,
            shown: "an address".into(),
        },
    )
    .await
    .unwrap();
    populate(&lite, &alpha, 3, 12).await;
    populate(&lite, &beta, 1, 8).await;
    for (name, forum, percent) in [
        (SwitchName::Posting, None, None),
        (
            SwitchName::Realtime,
            Some(alpha.id),
            Some(Percent::parse(10).unwrap()),
        ),
    ] {
        lite.put_switch(&SwitchRecord {
            name,
            forum,
            on: false,
            percent,
            staff: forum.is_some(),
            changed_by: "cli:op".into(),
            changed_at: 1_700_000_000_000,
        })
        .await
        .unwrap();
    }
    drop(lite);
    let lite = SqliteStore::open(&path, 2).unwrap();

    let store = open(&c, 100).await;
    let r = store.router().clone();
    admin::add_server(&r, "s1", &c.s1.dsn(), &[], admin::AddChecks::default())
        .await
        .unwrap();
    admin::add_server(&r, "s2", &c.s2.dsn(), &[], admin::AddChecks::default())
        .await
        .unwrap();
    admin::spread_ranges(&r, &["s1".to_string(), "s2".to_string()])
        .await
        .unwrap();
    let rep = migrate_data::migrate_data(&r, &path, |m| eprintln!("{m}"))
        .await
        .unwrap();
    assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
    let count = |t: &str| rep.tables.iter().find(|x| x.0 == t).unwrap().1;
    assert_eq!(count("forums"), 2);
    assert_eq!(count("comments"), 3 * 12 + 8);

    // The same forums, accounts, threads, comments and counters through the store.
    let forums = store.forums().await.unwrap();
    assert_eq!(forums, lite.forums().await.unwrap());
    let acct = store
        .credentials("admin@example.com")
        .await
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(acct, lite.account(admin_acct.id).await.unwrap().unwrap());
    assert_eq!(
        store.bans(alpha.id).await.unwrap(),
        lite.bans(alpha.id).await.unwrap()
    );
    // A shadow ban stays one.
    assert!(store.bans(alpha.id).await.unwrap().iter().any(|b| b.shadow));
    let switches = store.switches().await.unwrap();
    assert_eq!(switches.len(), 2);
    assert_eq!(switches, lite.switches().await.unwrap());
    for f in [&alpha, &beta] {
        for t in 0..3 {
            let ident = Ident::parse(&format!("/post-{t}")).unwrap();
            let want = lite
                .thread_by_ident(f, &ident, ReadFrom::Primary)
                .await
                .unwrap();
            let got = store
                .thread_by_ident(f, &ident, ReadFrom::Primary)
                .await
                .unwrap();
            assert_eq!(got, want);
            let Some(th) = want else { continue };
            let sort = confab_core::cursor::Sort::Oldest;
            let want = lite
                .top_level(
                    &th,
                    &Visibility::Moderator,
                    sort,
                    None,
                    100,
                    None,
                    ReadFrom::Primary,
                )
                .await
                .unwrap()
                .0;
            let got = store
                .top_level(
                    &th,
                    &Visibility::Moderator,
                    sort,
                    None,
                    100,
                    None,
                    ReadFrom::Primary,
                )
                .await
                .unwrap()
                .0;
            assert_eq!(got, want);
            assert!(!got.is_empty());
        }
        let want = lite.mod_log(f, None, 100).await.unwrap();
        let got = store.mod_log(f, None, 100).await.unwrap();
        assert_eq!(got.len(), want.len());
        assert_eq!(
            got.iter().map(|e| &e.detail).collect::<Vec<_>>(),
            want.iter().map(|e| &e.detail).collect::<Vec<_>>()
        );
        assert_eq!(
            store
                .subscription(f.id, "mixed.case@example.com")
                .await
                .unwrap()
                .unwrap()
                .state,
            SubState::Confirmed
        );
    }
    assert_eq!(
        store.list_tasks(None, None, 1000).await.unwrap().len(),
        lite.list_tasks(None, None, 1000).await.unwrap().len()
    );
    let stored: String = client(&c.s1.dsn())
        .await
        .query_opt(
            "SELECT email FROM subscriptions WHERE email LIKE 'mixed%' LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .map_or_else(|| "lower".into(), |r| r.get(0));
    assert_eq!(stored, stored.to_lowercase());
    let v = moves::verify(&r).await.unwrap();
    assert!(v.ok(), "{v}");
    assert_eq!(v.comments, 3 * 12 + 8);

    // Again: the same rows, no duplicates (moderation-log ids are derived, not drawn).
    let rep2 = migrate_data::migrate_data(&r, &path, |_| {}).await.unwrap();
    assert_eq!(rep2.tables, rep.tables);
    assert_eq!(
        store.mod_log(&alpha, None, 100).await.unwrap().len(),
        lite.mod_log(&alpha, None, 100).await.unwrap().len()
    );
    // New rows get ids past the copied ones.
    let f3 = store
        .create_forum("gamma", &ForumSettings::new("Gamma"))
        .await
        .unwrap();
    assert!(f3.id.0 > beta.id.0);
    // A forum the SQLite file does not have: another deployment, refused.
    let e = migrate_data::migrate_data(&r, &path, |_| {})
        .await
        .unwrap_err();
    assert!(e.message.contains("gamma"), "{e}");
}

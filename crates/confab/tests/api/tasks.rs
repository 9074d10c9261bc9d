//! The outbox: written atomically with its change, parked after its last attempt and shown by
//! `confab tasks`, and run again after a worker is `kill -9`ed mid-task, with its effect once.

use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::webhooks::{set_hooks, Receiver, SECRET};
use confab_store::TaskState;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn confab(data: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("CONFAB_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .envs(crate::backend::process_env(data))
        .output()
        .expect("run confab");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_always_fails_is_parked_and_listed_then_retried_by_hand() {
    // Three failures, then the receiver recovers.
    let rx = Receiver::start(&[500, 503, 500], 200).await;
    let mut c = config();
    fast_tasks(&mut c);
    c.tasks.max_attempts = 3;
    let app = spawn_with(c).await;
    app.forum("flaky", json!({})).await;
    let modr = app.account("flakymod", false, &["flaky"]).await;
    set_hooks(
        &app,
        "flaky",
        &modr,
        json!([{"url": rx.url, "secret": SECRET, "events": ["comment.created"]}]),
    )
    .await;
    app.post_comment("flaky", "/f", "x", None, &As::guest())
        .await;
    let tasks = app.settle().await;
    let t = &tasks[0];
    assert_eq!((t.state, t.attempts), (TaskState::Parked, 3), "{t:?}");
    assert_eq!(
        t.last_error.as_deref(),
        Some("webhook answered HTTP 500 (attempt 3 of 3)")
    );
    assert_eq!(rx.requests().len(), 3);

    let data = app._dir.path();
    let (ok, out) = confab(data, &["tasks", "--state", "parked"]);
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&t.id.to_string()))
        .unwrap_or_else(|| panic!("task {} not listed:\n{out}", t.id));
    assert!(
        line.contains("webhook")
            && line.contains("parked")
            && line.contains("HTTP 500 (attempt 3 of 3)"),
        "{line}"
    );
    let (ok, out) = confab(data, &["tasks", "--state", "queued"]);
    assert!(ok && !out.contains(&t.id.to_string()), "{out}");
    let (ok, out) = confab(data, &["tasks", "--state", "nonsense"]);
    assert!(!ok && out.contains("--state must be"), "{out}");

    let (ok, out) = confab(data, &["tasks", "retry", &t.id.to_string()]);
    assert!(ok, "{out}");
    let tasks = app.settle().await;
    assert_eq!(
        (tasks[0].state, tasks[0].attempts),
        (TaskState::Done, 1),
        "{:?}",
        tasks[0]
    );
    assert_eq!(rx.requests().len(), 4);
    let (ok, out) = confab(data, &["tasks", "retry", &t.id.to_string()]);
    assert!(!ok && out.contains("is done, not parked"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_fails_leaves_no_task() {
    let rx = Receiver::start(&[], 200).await;
    let mut c = config();
    fast_tasks(&mut c);
    let app = spawn_with(c).await;
    app.forum("atom", json!({})).await;
    app.forum("other", json!({})).await;
    let modr = app.account("atommod", false, &["atom"]).await;
    let hooks = json!([{"url": rx.url, "secret": SECRET, "events": ["comment.created", "comment.approved", "comment.deleted"]}]);
    set_hooks(&app, "atom", &modr, hooks).await;
    let first = app
        .post_comment("atom", "/a", "first", None, &As::guest())
        .await;
    assert_eq!(app.settle().await.len(), 1);

    // A reply to a comment that does not exist, and a comment on a closed thread: refused, and
    // the tasks they would have caused were never written.
    let r = app
        .post_comment("atom", "/a", "orphan", Some("123456789"), &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let thread = first.body["thread_id"].as_str().unwrap();
    let closed = app
        .req(
            Method::PATCH,
            &format!("/api/v1/threads/{thread}"),
            Some(json!({"closed": true})),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{:?}", closed.body);
    let r = app
        .post_comment("atom", "/a", "too late", None, &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A moderation call naming a comment of another forum fails whole: no status change, no task.
    let elsewhere = app
        .post_comment("other", "/o", "x", None, &As::guest())
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let id = first.body["id"].as_str().unwrap().to_string();
    let m = app
        .post(
            "/api/v1/forums/atom/moderate",
            json!({"ids": [id, elsewhere], "action": "delete"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(m.status, StatusCode::NOT_FOUND, "{:?}", m.body);
    let tasks = app.settle().await;
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    assert_eq!(rx.requests().len(), 1);
}

// ---------------------------------------------------------------- separate processes

use crate::process::{self, free_port, wait_ready, Proc};

fn serve(data: &Path, config: &Path, role: &str, port: u16) -> Proc {
    let config = config.to_string_lossy();
    process::serve(data, port, &["--role", role, "--config", &config], &[])
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn config_file(dir: &Path, smtp_port: u16, public_url: &str) -> std::path::PathBuf {
    let p = dir.join("confab.toml");
    std::fs::write(
        &p,
        format!(
            "[mail]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {smtp_port}\ntls = \"none\"\nfrom = \"Confab <confab@test.example>\"\n\
             timeout_secs = 2\npublic_url = \"{public_url}\"\n[tasks]\nlease_secs = 3\npoll_ms = 50\nbackoff_base_ms = 100\n"
        ),
    )
    .unwrap();
    p
}

/// `kill -9` of a worker in the middle of a task: once its lease runs out another worker runs
/// the task again, and its effect happens once: every recipient gets one message (one distinct
/// Message-ID); the recipient whose mail was recorded before the kill is not sent it again, and
/// the one whose mail the SMTP server had stored but not yet acknowledged gets the same message
/// (same Message-ID) again, which mail systems treat as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_worker_mid_task_runs_it_again_with_its_effect_once() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = config_file(dir.path(), sink.port, &base);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let _api = serve(&data, &cfg, "api", port);
    wait_ready(&http, &base).await;
    for m in ["mod1", "mod2"] {
        let (ok, out) = confab(
            &data,
            &[
                "--config",
                cfg.to_str().unwrap(),
                "admin",
                "create-account",
                m,
                "--password",
                "correct horse battery",
                "--email",
                &format!("{m}@example.com"),
                "--moderator-of",
                "demo",
            ],
        );
        assert!(ok, "{out}");
    }
    let mut worker = serve(&data, &cfg, "worker", 0);

    // mod2's message will be stored by the SMTP server, which then never says so.
    sink.set_slow(Some("mod2@"));
    let r = http
        .post(format!("{base}/api/v1/comments"))
        .json(
            &json!({"forum": "demo", "ident": "/kill", "body": "mid-task", "author_name": "Guest"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = sink.wait_for(2).await;
    assert_eq!(first[0].to, ["mod1@example.com"]);
    assert_eq!(first[1].to, ["mod2@example.com"]);
    // The task is mid-flight: mod1's mail recorded, mod2's not acknowledged. Kill the worker.
    let store = crate::backend::open_store(&data).await;
    let task = store
        .list_tasks(None, None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.kind == "mail.moderators")
        .unwrap();
    assert_eq!((task.state, task.attempts), (TaskState::Running, 1));
    wait_until("mod1's mail to be recorded", || async {
        store.task_effects(task.id).await.unwrap().len() == 1
    })
    .await;
    worker.0.kill().unwrap(); // SIGKILL
    worker.0.wait().unwrap();
    let killed_at = Instant::now();
    sink.set_slow(None);

    // Another worker takes it over once the lease (3 s) has run out.
    let _worker2 = serve(&data, &cfg, "worker", 0);
    wait_until("the task to be done", || async {
        store.task(task.id).await.unwrap().unwrap().state == TaskState::Done
    })
    .await;
    let done = store.task(task.id).await.unwrap().unwrap();
    assert_eq!(done.attempts, 2);
    assert!(done.locked_until.is_none());
    assert!(killed_at.elapsed() < Duration::from_secs(15));
    let mut effects = store.task_effects(task.id).await.unwrap();
    effects.sort();
    assert_eq!(effects.len(), 2, "{effects:?}");

    let all = sink.messages();
    let mut by_rcpt: HashMap<String, Vec<String>> = HashMap::new();
    for m in &all {
        by_rcpt
            .entry(m.to[0].clone())
            .or_default()
            .push(m.header("Message-ID").unwrap().to_string());
    }
    assert_eq!(
        by_rcpt["mod1@example.com"].len(),
        1,
        "mod1's recorded mail is not sent again: {by_rcpt:?}"
    );
    assert_eq!(
        by_rcpt["mod2@example.com"].len(),
        2,
        "mod2's unacknowledged mail is sent again: {by_rcpt:?}"
    );
    let distinct: HashSet<&String> = by_rcpt.values().flatten().collect();
    assert_eq!(
        distinct.len(),
        2,
        "one Message-ID per recipient: {by_rcpt:?}"
    );
    for (rcpt, ids) in &by_rcpt {
        assert!(ids.iter().all(|i| i == &ids[0]), "{rcpt}: {ids:?}");
        assert!(
            ids[0].starts_with(&format!("<confab.{}.", task.id)),
            "{ids:?}"
        );
    }
}

/// `kill -9` of the API process during a stream of posts: every acknowledged comment has its
/// task in the outbox (written in the same transaction), and no task exists without its comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_commit_loses_no_task() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Mail to a port nothing listens on; no worker runs (`--role api`), so tasks stay queued.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = config_file(dir.path(), free_port(), &base);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut api = serve(&data, &cfg, "api", port);
    wait_ready(&http, &base).await;
    let (ok, out) = confab(
        &data,
        &[
            "admin",
            "create-account",
            "mod1",
            "--password",
            "correct horse battery",
            "--email",
            "mod1@example.com",
            "--moderator-of",
            "demo",
        ],
    );
    assert!(ok, "{out}");

    let mut writers = Vec::new();
    for w in 0..8 {
        let (http, base) = (http.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let r = http
                    .post(format!("{base}/api/v1/comments"))
                    .json(&json!({"forum": "demo", "ident": format!("/outbox/{w}"), "body": format!("c {i}"), "author_name": "k"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::CREATED => match r.json::<serde_json::Value>().await {
                        Ok(v) => acked.push(v["id"].as_str().unwrap().to_string()),
                        Err(_) => break,
                    },
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    api.0.kill().unwrap(); // SIGKILL
    api.0.wait().unwrap();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() > 50, "the writers got going ({})", acked.len());

    let store = crate::backend::open_store(&data).await;
    let tasks = store.list_tasks(None, None, 1_000_000).await.unwrap();
    let with_task: HashSet<String> = tasks
        .iter()
        .filter(|t| t.kind == "mail.moderators")
        .map(|t| t.payload_json()["comment_id"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !with_task.contains(*id)).collect();
    eprintln!(
        "acknowledged {}, tasks {}, lost {}",
        acked.len(),
        tasks.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged comments without their task: {lost:?}"
    );
    for id in &with_task {
        let c = store
            .comment(id.parse().unwrap(), confab_store::ReadFrom::Primary)
            .await
            .unwrap();
        assert!(c.is_some(), "task for comment {id}, which does not exist");
    }
    assert!(tasks.iter().all(|t| t.state == TaskState::Queued));
}

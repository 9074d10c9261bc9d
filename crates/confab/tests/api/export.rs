//! `confab export` and `confab backup`, run as processes against the data of a running server
//! (on SQLite and, with CONFAB_TEST_BACKEND=postgres, PostgreSQL): a Disqus export imported
//! into another forum reads back through the API as the original does; the JSON export holds
//! every comment; a backup taken while the server writes holds every acknowledged comment.

use crate::helpers::*;
use confab_store::ReadFrom;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const A: &str = "post-a";
const A_URL: &str = "https://site.example/2024/a/";
const B: &str = "post-b";
const B_URL: &str = "https://site.example/2024/b/";

/// Polls `check` until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Fixture {
    /// A moderator of both forums.
    modr: String,
    /// Comments posted, of every status.
    total: usize,
}

async fn post(app: &TestApp, body: Value, who: &As) -> String {
    let r = app.post("/api/v1/comments", body, who).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn guest(ident: &str, name: &str, email: Option<&str>, body: &str) -> Value {
    let mut b = json!({"forum": "src", "ident": ident, "body": body, "author_name": name});
    if let Some(e) = email {
        b["author_email"] = json!(e);
    }
    b
}

async fn moderate(app: &TestApp, modr: &str, id: &str, action: &str) {
    let r = app
        .post(
            "/api/v1/forums/src/moderate",
            json!({"ids": [id], "action": action}),
            &As::bearer(modr),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["changed"], 1, "{:?}", r.body);
}

/// Forum `src` (links held for moderation) with two threads: nested replies, a guest with an
/// e-mail address, an account's comment, a deleted comment with a visible reply, a deleted one
/// nobody answered, spam, a pending comment; the second thread closed. Forum `copy` is empty.
async fn fill(app: &TestApp) -> Fixture {
    app.forum("src", json!({"moderation": "links"})).await;
    app.forum("copy", json!({})).await;
    let modr = app.account("modr", false, &["src", "copy"]).await;
    let carol = app.account("carol", false, &[]).await;

    let mut first = guest(
        A,
        "Ann",
        Some("ann@example.com"),
        "Hello **there** & <welcome>",
    );
    first["url"] = json!(A_URL);
    first["title"] = json!("Post A");
    let ann = post(app, first, &As::guest()).await;
    let mut reply = guest(A, "Bob", None, "Reply to Ann");
    reply["parent_id"] = json!(ann);
    let bob = post(app, reply, &As::guest()).await;
    let mut deeper = guest(
        A,
        "Dan",
        Some("dan@example.org"),
        "Reply to Bob\n\n> quoted",
    );
    deeper["parent_id"] = json!(bob);
    post(app, deeper, &As::guest()).await;
    let from_carol = json!({"forum": "src", "ident": A, "body": "An account's comment"});
    post(app, from_carol, &As::bearer(&carol)).await;
    let eve = post(app, guest(A, "Eve", None, "Soon deleted"), &As::guest()).await;
    let mut to_eve = guest(A, "Fay", None, "Answering Eve");
    to_eve["parent_id"] = json!(eve);
    post(app, to_eve, &As::guest()).await;
    let gus = post(app, guest(A, "Gus", None, "Buy cheap things"), &As::guest()).await;
    let zed = post(
        app,
        guest(A, "Zed", None, "Deleted, unanswered"),
        &As::guest(),
    )
    .await;
    // Links mode holds this one.
    let pending = post(
        app,
        guest(A, "Pia", None, "See [this](https://elsewhere.example/x)"),
        &As::guest(),
    )
    .await;

    let mut on_b = guest(B, "Hal", Some("hal@example.com"), "On the closed post");
    on_b["url"] = json!(B_URL);
    on_b["title"] = json!("Post B");
    let r = app.post("/api/v1/comments", on_b, &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let thread_b = r.body["thread_id"].as_str().unwrap().to_string();

    moderate(app, &modr, &eve, "delete").await;
    moderate(app, &modr, &zed, "delete").await;
    moderate(app, &modr, &gus, "spam").await;
    let p = app
        .req(
            Method::PATCH,
            &format!("/api/v1/threads/{thread_b}"),
            Some(json!({"closed": true})),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{:?}", p.body);
    let q = app
        .get(
            "/api/v1/forums/src/comments?queue=pending",
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(ids(&q.body["comments"]), [pending], "{:?}", q.body);
    replicated(app, "src").await;
    Fixture { modr, total: 10 }
}

/// Waits until the forum's replicas hold what its primary does (the command reads replicas,
/// and wrote on the primary; on SQLite they are one).
async fn replicated(app: &TestApp, forum: &str) {
    let f = app.svc.forum(forum).unwrap();
    let caught_up = eventually(Duration::from_secs(10), || async {
        let (p, r) = (
            app.store
                .export_comments(&f, None, 1000, ReadFrom::Primary)
                .await
                .unwrap(),
            app.store
                .export_comments(&f, None, 1000, ReadFrom::Replica)
                .await
                .unwrap(),
        );
        let same = p == r;
        let (p, r) = (
            app.store
                .export_threads(&f, None, 1000, ReadFrom::Primary)
                .await
                .unwrap(),
            app.store
                .export_threads(&f, None, 1000, ReadFrom::Replica)
                .await
                .unwrap(),
        );
        same && p == r
    })
    .await;
    assert!(caught_up, "the replicas of {forum} never caught up");
}

async fn page_of(app: &TestApp, forum: &str, ident: &str, who: &As) -> Value {
    let r = app
        .get(
            &format!(
                "/api/v1/comments?forum={forum}&ident={}&sort=oldest",
                urlencode(ident)
            ),
            who,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// What a reader sees of a thread, ids and derived avatars aside: the thread, and each
/// comment's author, status, text, time, depth and replies, in order. Statuses go through
/// `status` (a moderator's view of a copy shows pending comments as spam).
fn shape(page: &Value, status: fn(&str) -> &str) -> Value {
    fn walk(c: &Value, status: fn(&str) -> &str) -> Value {
        json!({
            "author": c["author"]["name"],
            "author_url": c["author"]["url"],
            "gravatar": c["author"]["gravatar"],
            "status": status(c["status"].as_str().unwrap_or("")),
            "body_html": c["body_html"],
            "created_at": c["created_at"],
            "depth": c["depth"],
            "reply_count": c["reply_count"],
            "replies": c["replies"].as_array().unwrap().iter().map(|r| walk(r, status)).collect::<Vec<_>>(),
        })
    }
    let t = &page["thread"];
    json!({
        "thread": {"ident": t["ident"], "url": t["url"], "title": t["title"], "closed": t["closed"], "comment_count": t["comment_count"]},
        "comments": page["comments"].as_array().unwrap().iter().map(|c| walk(c, status)).collect::<Vec<_>>(),
    })
}

fn same(s: &str) -> &str {
    s
}

fn pending_as_spam(s: &str) -> &str {
    if s == "pending" {
        "spam"
    } else {
        s
    }
}

#[tokio::test]
async fn a_disqus_export_imported_into_another_forum_reads_back_as_the_original() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let fx = fill(&app).await;
    let file = dir.join("src.xml");
    let file_s = file.to_string_lossy().into_owned();
    let (ok, out, err) = cli(
        &dir,
        &[
            "export", "--forum", "src", "--format", "disqus", "--output", &file_s,
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("exported 2 threads and 9 comments")
            && err.contains("left out 1 deleted comments"),
        "{err}"
    );
    assert!(!Path::new(&format!("{file_s}.tmp")).exists());
    let xml = std::fs::read_to_string(&file).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
    assert!(xml.contains(
        r#"<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">"#
    ));
    // The deleted comment's text and author stay out; the unanswered one is not there at all.
    for gone in ["Soon deleted", "<name>Eve</name>", "Zed"] {
        assert!(!xml.contains(gone), "{gone} in the export");
    }

    let (ok, out, err) = cli(&dir, &["import", "disqus", &file_s, "--forum", "copy"]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("comments: 9 added"), "{out}");
    assert!(out.contains("threads: 2 created"), "{out}");

    // Readers see the same threads (the server reads replicas; the import wrote the primary).
    let me = As::bearer(&fx.modr);
    for ident in [A, B] {
        let want = shape(&page_of(&app, "src", ident, &As::guest()).await, same);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = shape(&page_of(&app, "copy", ident, &As::guest()).await, same);
            if got == want {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{ident}:\nsource {want:#}\ncopy {got:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Moderators too, pending comments having become spam.
        let want = shape(&page_of(&app, "src", ident, &me).await, pending_as_spam);
        let got = shape(&page_of(&app, "copy", ident, &me).await, same);
        assert_eq!(got, want, "{ident} as a moderator");
    }
    let a = page_of(&app, "copy", A, &As::guest()).await;
    // The copy answers to each thread's link as well (the import makes it an alias).
    for (ident, link) in [(A, A_URL), (B, B_URL)] {
        assert_eq!(
            shape(&page_of(&app, "copy", link, &As::guest()).await, same),
            shape(&page_of(&app, "copy", ident, &As::guest()).await, same)
        );
    }
    let names: Vec<&str> = a["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["author"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ann", "carol", "[deleted]"], "{a}");
    assert_eq!(
        a["comments"][0]["replies"][0]["replies"][0]["author"]["name"],
        "Dan"
    );
    assert_eq!(a["comments"][2]["replies"][0]["author"]["name"], "Fay");
    assert_eq!(a["thread"]["comment_count"], 5);
    let b = page_of(&app, "copy", B, &As::guest()).await;
    assert_eq!(b["thread"]["closed"], true);
    // E-mail addresses are never public.
    let text = format!("{a}{b}");
    for mail in [
        "ann@example.com",
        "dan@example.org",
        "hal@example.com",
        "carol@",
    ] {
        assert!(!text.contains(mail), "{mail} in {text}");
    }
    // Spam and the pending comment wait in the copy's spam queue, with their text.
    let q = app
        .get("/api/v1/forums/copy/comments?queue=spam", &me)
        .await;
    let mut spam: Vec<&str> = q.body["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["author"]["name"].as_str().unwrap())
        .collect();
    spam.sort_unstable();
    assert_eq!(spam, ["Gus", "Pia"], "{:?}", q.body);

    // Exporting the copy gives the same file, ids and forum name aside, and accounts: an
    // import makes every author a guest (carol keeps her name and address).
    let again = dir.join("copy.xml");
    let (ok, out, err) = cli(
        &dir,
        &[
            "export",
            "--forum",
            "copy",
            "--format",
            "disqus",
            "--output",
            &again.to_string_lossy(),
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                !["dsq:id", "<forum>", "<isAnonymous>", "<username>"]
                    .iter()
                    .any(|x| l.contains(x))
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        strip(&std::fs::read_to_string(&again).unwrap()),
        strip(&xml)
    );
}

#[tokio::test]
async fn the_json_export_holds_every_comment_line_by_line() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let fx = fill(&app).await;
    // Standard output this time.
    let (ok, out, err) = cli(&dir, &["export", "--forum", "src", "--format", "json"]).await;
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let of = |t: &str| lines.iter().filter(|l| l["type"] == t).collect::<Vec<_>>();
    assert_eq!(lines[0]["type"], "forum");
    assert_eq!(lines[0]["name"], "src");
    assert_eq!(lines[0]["settings"]["moderation"], "links");
    let threads = of("thread");
    assert_eq!(threads.len(), 2);
    let a = threads.iter().find(|t| t["ident"] == A).unwrap();
    assert_eq!(a["url"], A_URL);
    assert!(a["aliases"].is_array());
    let comments = of("comment");
    assert_eq!(comments.len(), fx.total, "{out}");
    let mut statuses: Vec<&str> = comments
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    statuses.dedup();
    assert_eq!(statuses, ["approved", "deleted", "pending", "spam"]);
    let ann = comments
        .iter()
        .find(|c| c["author"]["guest"]["name"] == "Ann")
        .unwrap();
    assert_eq!(ann["author"]["guest"]["email"], "ann@example.com");
    assert_eq!(ann["body_md"], "Hello **there** & <welcome>");
    assert!(ann["body_html"]
        .as_str()
        .unwrap()
        .contains("<strong>there</strong>"));
    assert!(ann["created_at"].is_i64() && ann["id"].is_string());
    let carol = comments
        .iter()
        .find(|c| c["author"]["account"]["username"] == "carol")
        .unwrap();
    assert!(carol["author"]["account"]["id"].is_string());
    // The deleted comment's text is in the backup.
    assert!(comments.iter().any(|c| c["body_md"] == "Soon deleted"));
    // Every reply's parent is in it.
    for c in &comments {
        if let Some(p) = c["parent"].as_str() {
            assert!(comments.iter().any(|o| o["id"] == p), "{c}");
        }
    }
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["comments"], fx.total);
    assert_eq!(end["threads"], 2);
    assert!(err.contains(&format!("{} comments", fx.total)), "{err}");

    // Imported comments' source ids come after them.
    let file = dir.join("src.xml");
    let (ok, _, err) = cli(
        &dir,
        &[
            "export",
            "--forum",
            "src",
            "--format",
            "disqus",
            "--output",
            &file.to_string_lossy(),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = cli(
        &dir,
        &[
            "import",
            "disqus",
            &file.to_string_lossy(),
            "--forum",
            "copy",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli(&dir, &["export", "--forum", "copy", "--format", "json"]).await;
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sources: Vec<&Value> = lines.iter().filter(|l| l["type"] == "source").collect();
    assert_eq!(sources.len(), 9);
    assert!(sources.iter().all(|s| s["source"] == "disqus"));
    for s in &sources {
        assert!(lines
            .iter()
            .any(|l| l["type"] == "comment" && l["id"] == s["comment"]));
    }
}

#[tokio::test]
async fn a_backup_taken_while_the_server_writes_holds_every_acknowledged_comment() {
    let app = std::sync::Arc::new(spawn().await);
    let dir = app._dir.path().to_path_buf();
    let target = tempfile::tempdir().unwrap();
    let target_s = target.path().join("backups").to_string_lossy().into_owned();
    if crate::backend::is_postgres() {
        let (ok, out, err) = cli(&dir, &["backup", &target_s]).await;
        assert!(!ok, "{out}");
        assert!(
            err.contains("PostgreSQL") && err.contains("pg_dump") && err.contains("README"),
            "{err}"
        );
        return;
    }
    let mut acked = Vec::new();
    for i in 0..40 {
        acked.push(
            app.comment("/busy", &format!("before {i}"), None).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Writes go on while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                app.comment("/busy", &format!("during {n}"), None).await;
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (ok, out, err) = cli(&dir, &["backup", &target_s]).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = writer.await.unwrap();
    assert!(ok, "{out}{err}");
    assert!(during > 0, "nothing was written during the backup");
    // `PATH (N bytes)`
    let (path, size) = out.trim().rsplit_once(" (").unwrap();
    assert!(
        path.contains("/backups/confab-") && path.ends_with(".db"),
        "{out}"
    );
    let bytes: u64 = size.trim_end_matches(" bytes)").parse().unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), bytes);

    // The copy opens, is sound, and holds every comment acknowledged before it began.
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    for id in &acked {
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM comments WHERE id = ?",
                [id.parse::<i64>().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "comment {id} is missing from the backup");
    }
    drop(db);

    // Restored as a data directory, confab reads it.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(path, restored.path().join("confab.sqlite3")).unwrap();
    let (ok, out, err) = cli(
        restored.path(),
        &["export", "--forum", "demo", "--format", "json"],
    )
    .await;
    assert!(ok, "{err}");
    let comments = out
        .lines()
        .filter(|l| l.contains(r#""type":"comment""#))
        .count();
    assert!(
        comments >= acked.len(),
        "{comments} comments in the restored copy"
    );

    // A second backup in the same second gets a name of its own.
    let (ok, out2, err) = cli(&dir, &["backup", &target_s]).await;
    assert!(ok, "{err}");
    assert_ne!(out2, out);
}

#[tokio::test]
async fn bad_input_is_refused_plainly() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let file = dir.join("out.xml");
    let file_s = file.to_string_lossy().into_owned();
    // An unknown forum: said, non-zero, and no file (nor half of one).
    let (ok, out, err) = cli(
        &dir,
        &[
            "export", "--forum", "nope", "--format", "disqus", "--output", &file_s,
        ],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(err.contains("forum \"nope\" not found"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!file.exists() && !Path::new(&format!("{file_s}.tmp")).exists());
    // An unknown format: clap refuses it.
    let (ok, _, err) = cli(&dir, &["export", "--forum", "demo", "--format", "csv"]).await;
    assert!(!ok);
    assert!(
        err.contains("invalid value 'csv'") && err.contains("disqus, json"),
        "{err}"
    );
    // No format at all.
    let (ok, _, err) = cli(&dir, &["export", "--forum", "demo"]).await;
    assert!(!ok);
    assert!(err.contains("--format"), "{err}");
    // An output in a directory that does not exist.
    let (ok, _, err) = cli(
        &dir,
        &[
            "export",
            "--forum",
            "demo",
            "--format",
            "json",
            "--output",
            "/nonexistent/dir/x.jsonl",
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("/nonexistent/dir/x.jsonl.tmp"), "{err}");
    if !crate::backend::is_postgres() {
        // A backup into a path that is a file.
        std::fs::write(dir.join("a-file"), "x").unwrap();
        let (ok, _, err) = cli(&dir, &["backup", &dir.join("a-file").to_string_lossy()]).await;
        assert!(!ok);
        assert!(err.contains("cannot create the directory"), "{err}");
        // A data directory with no database.
        let empty = tempfile::tempdir().unwrap();
        let (ok, _, err) = cli(empty.path(), &["backup", &dir.to_string_lossy()]).await;
        assert!(!ok);
        assert!(err.contains("no database at"), "{err}");
    }
}

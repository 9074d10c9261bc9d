//! `confab import disqus`, run as a process against the data of a running server, then read
//! back through the HTTP API (on SQLite and, with CONFAB_TEST_BACKEND=postgres, PostgreSQL).
//! The exports are hand-made, in `testdata/import/`.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LINK: &str = "https://blog.example.com/2019/hello-world/";
const CLOSED: &str = "https://blog.example.com/2019/closed-post";

pub(crate) fn testdata(name: &str) -> String {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "testdata",
        "import",
        name,
    ]
    .iter()
    .collect();
    p.to_string_lossy().into_owned()
}

/// Runs `confab --data DIR import disqus FILE --forum demo`: success, stdout and stderr.
async fn import(dir: &Path, file: &str) -> (bool, String, String) {
    import_as(dir, "disqus", file).await
}

/// Runs `confab --data DIR import FORMAT FILE --forum demo`: success, stdout and stderr.
pub(crate) async fn import_as(dir: &Path, format: &str, file: &str) -> (bool, String, String) {
    cli(dir, &["import", format, file, "--forum", "demo"]).await
}

pub(crate) fn find<'a>(comments: &'a Value, author: &str) -> &'a Value {
    comments
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["author"]["name"] == author)
        .unwrap_or_else(|| panic!("no comment by {author} in {comments}"))
}

/// Every comment of the public first page of `ident`, nested, as (author, status) in order.
pub(crate) fn tree(page: &Value) -> Vec<String> {
    fn walk(c: &Value, depth: usize, out: &mut Vec<String>) {
        out.push(format!(
            "{}{} {}",
            "  ".repeat(depth),
            c["author"]["name"].as_str().unwrap_or(""),
            c["status"].as_str().unwrap_or("")
        ));
        for r in c["replies"].as_array().into_iter().flatten() {
            walk(r, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    for c in page["comments"].as_array().into_iter().flatten() {
        walk(c, 0, &mut out);
    }
    out
}

/// Approved comments of both imported threads, and the first thread's sequence number, as
/// the database has them (a server on the same file may serve its cached pages for up to 5 s).
async fn approved_total(app: &TestApp) -> (i64, i64) {
    let forum = app.svc.forum("demo").unwrap();
    let mut n = 0;
    let mut seq = -1;
    for ident in [LINK, CLOSED] {
        let ident = confab_core::ident::Ident::parse(ident).unwrap();
        if let Some(t) = app
            .store
            .thread_by_ident(&forum, &ident, confab_store::ReadFrom::Primary)
            .await
            .unwrap()
        {
            n += t.comment_count;
            if seq < 0 {
                seq = t.seq;
            }
        }
    }
    (n, seq)
}

/// Waits until a read that may go to a replica finds `ident` with `count` approved comments:
/// on PostgreSQL the command wrote on the primary, and this test server (no bus between it and
/// the command, so no write position to read past) reads pages from replicas.
pub(crate) async fn replicas_have(app: &TestApp, ident: &str, count: i64) {
    let forum = app.svc.forum("demo").unwrap();
    let ident = confab_core::ident::Ident::parse(ident).unwrap();
    let seen = eventually(Duration::from_secs(5), || async {
        app.store
            .thread_by_ident(&forum, &ident, confab_store::ReadFrom::Replica)
            .await
            .unwrap()
            .is_some_and(|t| t.comment_count == count)
    })
    .await;
    assert!(
        seen,
        "the replicas never had {ident:?} with {count} comments"
    );
}

#[tokio::test]
async fn a_disqus_export_reads_back_through_the_api_as_it_was() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let (ok, out, err) = import(&dir, &testdata("disqus.xml")).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("threads: 2 created"), "{out}");
    assert!(
        out.contains("comments: 7 added, 0 imported before"),
        "{out}"
    );
    assert!(
        out.contains("skipped: 1 posts of deleted threads, 1 posts of unknown threads"),
        "{out}"
    );
    replicas_have(&app, "post-1", 4).await;
    replicas_have(&app, CLOSED, 1).await;

    // One thread, answering to its identifier and to its link (any URL form of it).
    let by_id = app.page("post-1", "&sort=oldest", &As::guest()).await.body;
    let by_link = app.page(LINK, "&sort=oldest", &As::guest()).await.body;
    let by_path = app
        .page(
            "/2019/hello-world?utm_source=x",
            "&sort=oldest",
            &As::guest(),
        )
        .await
        .body;
    assert_eq!(by_id["thread"]["id"], by_link["thread"]["id"]);
    assert_eq!(by_id["thread"]["id"], by_path["thread"]["id"]);
    assert_eq!(by_id["thread"]["title"], "Hello & welcome");
    assert_eq!(by_id["thread"]["comment_count"], 4, "{by_id}");
    // Six comments were added to it, each with its sequence number, as if posted.
    assert_eq!(by_id["thread"]["seq"], 6);
    assert_eq!(by_id["thread"]["closed"], false);
    // Oldest first, replies under their parents (Bob's reply came first in the file); the
    // deleted comment is a placeholder above its visible reply; spam is not shown.
    assert_eq!(
        tree(&by_id),
        [
            "Ann approved",
            "  Bob approved",
            "[deleted] deleted",
            "  Dora approved",
            "Anonymous approved",
        ],
        "{by_id}"
    );
    let comments = &by_id["comments"];
    let ann = find(comments, "Ann");
    assert!(
        ann["created_at"]
            .as_str()
            .unwrap()
            .starts_with("2019-03-01T10:00:00"),
        "{ann}"
    );
    assert_eq!(ann["reply_count"], 1);
    let html = ann["body_html"].as_str().unwrap();
    for kept in [
        "<b>Bold</b>",
        "<i>italic</i>",
        "href=\"https://example.org/page\"",
        "<code>x &lt; y</code>",
        "café",
        "—",
        "<br>",
        "<blockquote>quoted</blockquote>",
        "&amp;",
    ] {
        assert!(html.contains(kept), "{kept:?} lost from {html}");
    }
    for dropped in [
        "<script",
        "alert",
        "onerror",
        "javascript:",
        "onclick",
        "<img",
    ] {
        assert!(!html.contains(dropped), "{dropped:?} kept in {html}");
    }
    // E-mail addresses are never public.
    let text = by_id.to_string();
    for mail in ["ann@example.com", "bob@example.org", "quiet@example.com"] {
        assert!(!text.contains(mail), "{mail} in {text}");
    }
    // The deleted comment shows no text; the anonymous guest got a name.
    assert_eq!(comments[1]["body"], "");
    // Counts answer by either ident.
    let counts = app
        .get(
            &format!(
                "/api/v1/counts?forum=demo&ident=post-1&ident={}",
                urlencode(LINK)
            ),
            &As::guest(),
        )
        .await;
    assert_eq!(counts.status, StatusCode::OK);
    let counts_text = counts.body.to_string();
    assert!(counts_text.contains("\"post-1\":4"), "{counts_text}");
    assert!(
        counts_text.contains(&format!("\"{LINK}\":4")),
        "{counts_text}"
    );

    // A comment posted through the API by the link joins the same thread, and the pages
    // cached under each of its idents (both were read above, default sort too) go stale.
    for ident in ["post-1", LINK] {
        app.page(ident, "", &As::guest()).await;
    }
    let r = app
        .post_comment("demo", LINK, "posted after the import", None, &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    for ident in ["post-1", LINK] {
        let fresh = eventually(Duration::from_secs(2), || async {
            app.page(ident, "", &As::guest()).await.body["thread"]["comment_count"] == 5
        })
        .await;
        assert!(fresh, "a stale page of {ident} after a post by the link");
    }

    // The closed thread (no identifier: its link alone) stays closed.
    let closed = app.page(CLOSED, "", &As::guest()).await.body;
    assert_eq!(closed["thread"]["closed"], true);
    assert_eq!(closed["thread"]["comment_count"], 1);
    let r = app
        .post_comment("demo", CLOSED, "too late", None, &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

    // Spam waits in the spam queue, with its text, for moderators.
    let me = As::bearer(&app.account("mod", false, &["demo"]).await);
    let spam = app
        .get("/api/v1/forums/demo/comments?queue=spam", &me)
        .await;
    assert_eq!(spam.status, StatusCode::OK, "{:?}", spam.body);
    let spam = &spam.body["comments"];
    assert_eq!(spam.as_array().unwrap().len(), 1, "{spam}");
    assert_eq!(spam[0]["author"]["name"], "Spammer");
    assert!(spam[0]["body_html"]
        .as_str()
        .unwrap()
        .contains("cheap things"));
}

#[tokio::test]
async fn importing_again_adds_nothing_a_broken_file_changes_nothing_a_newer_export_adds_what_is_new(
) {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let (ok, out, err) = import(&dir, &testdata("disqus.xml")).await;
    assert!(ok, "{out}{err}");
    let first = approved_total(&app).await;
    assert_eq!(first, (5, 6));

    // The same export again, gzipped, from standard input's file form: nothing new.
    let gz = testdata("disqus.xml.gz");
    let (ok, out, err) = import(&dir, &gz).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("comments: 0 added, 7 imported before"),
        "{out}"
    );
    assert!(out.contains("threads: 0 created, 2 already there"), "{out}");
    assert_eq!(approved_total(&app).await, first);

    // A file broken near its end: an error naming line and column, and nothing written.
    let (ok, out, err) = import(&dir, &testdata("disqus-broken.xml")).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("line 155, column") && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(approved_total(&app).await, first);

    // A later export: only its two new posts, one a reply to a comment imported before.
    let (ok, out, err) = import(&dir, &testdata("disqus-newer.xml")).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("comments: 2 added, 7 imported before"),
        "{out}"
    );
    assert_eq!(approved_total(&app).await, (7, 8));
    // "post-1" was never read, so no page of it was cached here.
    replicas_have(&app, "post-1", 6).await;
    let page = app.page("post-1", "&sort=oldest", &As::guest()).await.body;
    assert_eq!(
        tree(&page),
        [
            "Ann approved",
            "  Bob approved",
            "    Hal approved",
            "[deleted] deleted",
            "  Dora approved",
            "Anonymous approved",
            "Ivy approved",
        ],
        "{page}"
    );
}

#[tokio::test]
async fn pages_cached_before_an_import_by_another_process_are_not_served_after_it() {
    if crate::backend::is_postgres() {
        // Nodes on PostgreSQL hear of the import on the bus: tests/api/fleet.rs.
        return;
    }
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    // The thread exists and its first page is cached (read twice), before the import.
    app.comment(LINK, "posted before the import", None).await;
    for _ in 0..2 {
        let p = app.page(LINK, "", &As::guest()).await.body;
        assert_eq!(p["thread"]["comment_count"], 1);
    }
    let (ok, out, err) = import(&dir, &testdata("disqus.xml")).await;
    assert!(ok, "{out}{err}");
    // The existing thread (found by its link) took the comments and the identifier.
    assert!(out.contains("threads: 1 created, 1 already there"), "{out}");
    let fresh = eventually(Duration::from_secs(8), || async {
        app.page(LINK, "", &As::guest()).await.body["thread"]["comment_count"] == 5
    })
    .await;
    assert!(
        fresh,
        "the server kept serving the page cached before the import"
    );
    let by_id = app.page("post-1", "", &As::guest()).await.body;
    assert_eq!(by_id["thread"]["comment_count"], 5, "{by_id}");
}

/// Polls `check` until it holds or `within` passes.
pub(crate) async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
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

#[tokio::test]
async fn replies_past_the_depth_cap_attach_as_posted_ones_do() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    // A chain of eight, listed deepest first (each reply before its parent).
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?>
<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">
<thread dsq:id="1"><id>deep</id><link>https://e.example/deep</link><title>Deep</title></thread>
"#,
    );
    for i in (0..8).rev() {
        let parent = if i > 0 {
            format!(r#"<parent dsq:id="{}"/>"#, 100 + i - 1)
        } else {
            String::new()
        };
        xml.push_str(&format!(
            r#"<post dsq:id="{}"><message>c{i}</message><createdAt>2020-01-01T00:00:0{i}Z</createdAt><author><name>a{i}</name></author><thread dsq:id="1"/>{parent}</post>
"#,
            100 + i
        ));
    }
    xml.push_str("</disqus>\n");
    let file = dir.join("deep.xml");
    std::fs::write(&file, xml).unwrap();
    let (ok, out, err) = import(&dir, &file.to_string_lossy()).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("comments: 8 added"), "{out}");
    replicas_have(&app, "deep", 8).await;
    let page = app.page("deep", "&sort=oldest", &As::guest()).await.body;
    // The default cap is 5: c6 and c7 answered the depth-5 c5, so they join c4's replies.
    // Each comment's replies are read from its replies endpoint (a page nests a few levels).
    let mut depth: std::collections::BTreeMap<String, (i64, String)> = Default::default();
    let mut todo: Vec<(Value, String)> = page["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c.clone(), String::new()))
        .collect();
    while let Some((c, parent)) = todo.pop() {
        let name = c["author"]["name"].as_str().unwrap().to_string();
        depth.insert(name.clone(), (c["depth"].as_i64().unwrap(), parent));
        let id = c["id"].as_str().unwrap();
        let r = app
            .get(&format!("/api/v1/comments/{id}/replies"), &As::guest())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        for reply in r.body["comments"].as_array().into_iter().flatten() {
            todo.push((reply.clone(), name.clone()));
        }
    }
    assert_eq!(depth.len(), 8, "{depth:?}");
    assert_eq!(depth["a5"], (5, "a4".to_string()), "{page}");
    assert_eq!(depth["a6"], (5, "a4".to_string()), "{page}");
    assert_eq!(depth["a7"], (5, "a4".to_string()), "{page}");
    assert_eq!(page["thread"]["comment_count"], 8);
}

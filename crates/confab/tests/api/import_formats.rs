//! `confab import wordpress|isso|remark42`, run as a process against the data of a running
//! server, then read back through the HTTP API (on SQLite and, with
//! CONFAB_TEST_BACKEND=postgres, PostgreSQL). The exports are hand-made, in `testdata/import/`;
//! the Isso database is made by the test from `isso.sql`, the gzipped Remark42 backup from
//! `remark42.jsonl`.

use crate::helpers::*;
use crate::import::{eventually, find, import_as, replicas_have, testdata, tree};
use reqwest::StatusCode;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LINK: &str = "https://blog.example.com/2019/hello-world/";
const CLOSED: &str = "https://blog.example.com/2019/closed-post/";

/// (visible comments, sequence number) of each ident's thread as the primary has it; `None`
/// for a thread that does not exist.
async fn state(app: &TestApp, idents: &[&str]) -> Vec<Option<(i64, i64)>> {
    let forum = app.svc.forum("demo").unwrap();
    let mut out = Vec::new();
    for ident in idents {
        let ident = confab_core::ident::Ident::parse(ident).unwrap();
        out.push(
            app.store
                .thread_by_ident(&forum, &ident, confab_store::ReadFrom::Primary)
                .await
                .unwrap()
                .map(|t| (t.comment_count, t.seq)),
        );
    }
    out
}

/// A moderator's view of a queue of the demo forum.
async fn queue(app: &TestApp, me: &As, which: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/forums/demo/comments?queue={which}"), me)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["comments"].as_array().unwrap().clone()
}

fn gzip(from: &str, to: &Path) {
    let raw = std::fs::read(from).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    std::fs::write(to, gz.finish().unwrap()).unwrap();
}

fn created(c: &Value) -> &str {
    c["created_at"].as_str().unwrap()
}

/// What must survive and what must not in a body that came as HTML.
fn sanitized_html(html: &str) {
    for kept in [
        "<b>Bold</b>",
        "<i>italic</i>",
        "href=\"https://example.org/page\"",
        "<code>x &lt; y</code>",
        "café",
        "—",
        "<br>",
        "<blockquote>quoted</blockquote>",
        "Tom &amp; Jerry",
    ] {
        assert!(html.contains(kept), "{kept:?} lost from {html}");
    }
    for dropped in ["<script", "alert", "javascript:", "onclick"] {
        assert!(!html.contains(dropped), "{dropped:?} kept in {html}");
    }
}

/// The closed thread stays closed and takes no new comment.
async fn closed_stays_closed(app: &TestApp, count: i64) {
    let closed = app.page(CLOSED, "", &As::guest()).await.body;
    assert_eq!(closed["thread"]["closed"], true, "{closed}");
    assert_eq!(closed["thread"]["comment_count"], count);
    let r = app
        .post_comment("demo", CLOSED, "too late", None, &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
}

#[tokio::test]
async fn a_wordpress_export_reads_back_as_it_was_once_and_a_broken_one_changes_nothing() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let me = As::bearer(&app.account("mod", false, &["demo"]).await);

    // Broken in its last item: refused with its line and column, nothing written (the items
    // before it were valid).
    let (ok, out, err) = import_as(&dir, "wordpress", &testdata("wordpress-broken.xml")).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("line 434, column") && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(state(&app, &[LINK, CLOSED]).await, [None, None]);

    let (ok, out, err) = import_as(&dir, "wordpress", &testdata("wordpress.xml")).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("threads: 2 created"), "{out}");
    assert!(
        out.contains("comments: 9 added, 0 imported before"),
        "{out}"
    );
    assert!(
        out.contains(
            "skipped: 1 comments of attachments, 2 comments of drafts, \
             1 comments of posts in the trash, 1 pingbacks, 1 trackbacks"
        ),
        "{out}"
    );
    replicas_have(&app, LINK, 5).await;
    replicas_have(&app, CLOSED, 1).await;
    // Nothing of the draft (its ?p= link) nor of the trashed post.
    assert_eq!(
        state(
            &app,
            &[
                "https://blog.example.com/?p=3",
                "/2019/thrown-away",
                "/2019/hello-world/photo"
            ]
        )
        .await,
        [None, None, None]
    );

    // One thread, answering to its permalink and to its ?p=ID guid.
    let page = app.page(LINK, "&sort=oldest", &As::guest()).await.body;
    let by_guid = app
        .page(
            "https://blog.example.com/?p=1",
            "&sort=oldest",
            &As::guest(),
        )
        .await
        .body;
    assert_eq!(page["thread"]["id"], by_guid["thread"]["id"], "{by_guid}");
    assert_eq!(page["thread"]["title"], "Hello & welcome");
    assert_eq!(page["thread"]["comment_count"], 5, "{page}");
    // Eight comments went into it (spam, trash and pending included), each with its sequence.
    assert_eq!(page["thread"]["seq"], 8);
    assert_eq!(page["thread"]["closed"], false);
    // Oldest first; Bob's reply (listed first) under Ann; the trashed comment a placeholder
    // above its visible reply; no pingback, trackback, spam or pending comment shown.
    assert_eq!(
        tree(&page),
        [
            "Ann approved",
            "  Bob approved",
            "[deleted] deleted",
            "  Dora approved",
            "Fred approved",
            "Anonymous approved",
        ],
        "{page}"
    );
    let comments = &page["comments"];
    let ann = find(comments, "Ann");
    assert!(created(ann).starts_with("2019-03-01T10:00:00"), "{ann}");
    assert_eq!(ann["reply_count"], 1);
    let html = ann["body_html"].as_str().unwrap();
    sanitized_html(html);
    // WordPress' paragraphs: a blank line is a paragraph, a single newline a line break.
    assert!(html.starts_with("<p>Hi! A <b>Bold</b>"), "{html}");
    assert!(html.contains(".<br>\nA second line"), "{html}");
    // Fred's comment had no GMT date: the site's own date.
    let fred = find(comments, "Fred");
    assert!(created(fred).starts_with("2019-03-02T08:30:00"), "{fred}");
    // Entities outside CDATA are XML's: the text was "<em>escaped</em> &amp; plain".
    let anon = find(comments, "Anonymous");
    let html = anon["body_html"].as_str().unwrap();
    assert!(html.contains("<em>escaped</em> &amp; plain"), "{html}");
    let text = page.to_string();
    for mail in ["ann@example.com", "bob@example.org", "quiet@example.com"] {
        assert!(!text.contains(mail), "{mail} in {text}");
    }
    let bob = find(&ann["replies"], "Bob");
    assert_eq!(
        bob["body_html"],
        "<p>Replying to Ann,<br>\nlisted before her comment.</p>"
    );

    closed_stays_closed(&app, 1).await;

    // Spam in the spam queue, the pending comment waiting, its address kept for moderators.
    let spam = queue(&app, &me, "spam").await;
    assert_eq!(spam.len(), 1, "{spam:?}");
    assert_eq!(spam[0]["author"]["name"], "Spammer");
    let pending = queue(&app, &me, "pending").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["author"]["name"], "Eve");
    assert_eq!(pending[0]["author_email"], "eve@example.com");

    // The same export again, gzipped: nothing new.
    let before = state(&app, &[LINK, CLOSED]).await;
    let gz = dir.join("wordpress.xml.gz");
    gzip(&testdata("wordpress.xml"), &gz);
    let (ok, out, err) = import_as(&dir, "wordpress", &gz.to_string_lossy()).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("comments: 0 added, 9 imported before"),
        "{out}"
    );
    assert!(out.contains("threads: 0 created, 2 already there"), "{out}");
    assert_eq!(state(&app, &[LINK, CLOSED]).await, before);
}

/// `isso.sql` (or another script) as a fresh SQLite file in `dir`.
fn isso_db(dir: &Path, script: &str, name: &str) -> PathBuf {
    let path = dir.join(name);
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(&std::fs::read_to_string(testdata(script)).unwrap())
        .unwrap();
    path
}

#[tokio::test]
async fn an_isso_database_reads_back_as_it_was_once_and_a_broken_one_changes_nothing() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let me = As::bearer(&app.account("mod", false, &["demo"]).await);
    const NEW: &str = "/2019/new-post";

    // A row whose date is not one, after two good ones: refused naming the row, nothing
    // written.
    let broken = isso_db(&dir, "isso-broken.sql", "isso-broken.db");
    let (ok, out, err) = import_as(&dir, "isso", &broken.to_string_lossy()).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("comments, row id 5") && err.contains("yesterday"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(state(&app, &[NEW, LINK]).await, [None, None]);
    // A file that is not an Isso database says so; standard input is refused.
    let (ok, _, err) = import_as(&dir, "isso", &testdata("wordpress.xml")).await;
    assert!(!ok && err.contains("not an Isso database"), "{err}");
    let (ok, _, err) = import_as(&dir, "isso", "-").await;
    assert!(!ok && err.contains("not from standard input"), "{err}");

    let db = isso_db(&dir, "isso.sql", "comments.db");
    let (ok, out, err) = import_as(&dir, "isso", &db.to_string_lossy()).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("threads: 2 created"), "{out}");
    assert!(
        out.contains("comments: 8 added, 0 imported before"),
        "{out}"
    );
    assert!(out.contains("skipped: none"), "{out}");
    replicas_have(&app, LINK, 4).await;
    replicas_have(&app, "/about", 1).await;

    // The thread is the uri Isso kept (a path), found by the page's full URL too.
    let page = app.page(LINK, "&sort=oldest", &As::guest()).await.body;
    let by_path = app
        .page("/2019/hello-world/", "&sort=oldest", &As::guest())
        .await
        .body;
    assert_eq!(page["thread"]["id"], by_path["thread"]["id"]);
    assert_eq!(page["thread"]["title"], "Hello & welcome");
    assert_eq!(page["thread"]["comment_count"], 4, "{page}");
    assert_eq!(page["thread"]["seq"], 7);
    assert_eq!(
        tree(&page),
        [
            "Ann approved",
            "  Bob approved",
            "[deleted] deleted",
            "  Dora approved",
            "Anonymous approved",
        ],
        "{page}"
    );
    let comments = &page["comments"];
    let ann = find(comments, "Ann");
    assert!(created(ann).starts_with("2019-03-01T10:00:00"), "{ann}");
    let anon = find(comments, "Anonymous");
    assert!(created(anon).starts_with("2019-03-02T08:30:00.5"), "{anon}");
    // Markdown, rendered as a posted comment is: raw HTML is shown as text, never run.
    let html = ann["body_html"].as_str().unwrap();
    for kept in [
        "<strong>Bold</strong>",
        "<em>italic</em>",
        "href=\"https://example.org/page\"",
        "<code>x &lt; y</code>",
        "café",
        "—",
        "<br>",
        "<blockquote>",
        "Tom &amp; Jerry",
        "&lt;script&gt;",
    ] {
        assert!(html.contains(kept), "{kept:?} lost from {html}");
    }
    assert!(
        html.contains("An <a rel=\"nofollow ugc noopener\">evil link</a> and"),
        "{html}"
    );
    for dropped in ["<script", "<span", "javascript:"] {
        assert!(!html.contains(dropped), "{dropped:?} kept in {html}");
    }
    let text = page.to_string();
    for mail in ["ann@example.com", "bob@example.org", "quiet@example.com"] {
        assert!(!text.contains(mail), "{mail} in {text}");
    }
    let pending = queue(&app, &me, "pending").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["author"]["name"], "Eve");
    assert_eq!(pending[0]["author_email"], "eve@example.com");
    let about = app.page("/about", "", &As::guest()).await.body;
    assert_eq!(tree(&about), ["Gus approved"], "{about}");

    // Again: nothing new.
    let before = state(&app, &[LINK, "/about"]).await;
    let (ok, out, err) = import_as(&dir, "isso", &db.to_string_lossy()).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("comments: 0 added, 8 imported before"),
        "{out}"
    );
    assert_eq!(state(&app, &[LINK, "/about"]).await, before);
}

#[tokio::test]
async fn a_remark42_backup_reads_back_as_it_was_once_and_a_broken_one_changes_nothing() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let me = As::bearer(&app.account("mod", false, &["demo"]).await);

    // A line cut short: refused with its line, nothing of the lines before it written.
    let (ok, out, err) = import_as(&dir, "remark42", &testdata("remark42-broken.jsonl")).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("line 5, column") && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(state(&app, &[LINK]).await, [None]);

    // The backup as Remark42 writes it: gzipped.
    let gz = dir.join("remark42-blog-20190501.gz");
    gzip(&testdata("remark42.jsonl"), &gz);
    let (ok, out, err) = import_as(&dir, "remark42", &gz.to_string_lossy()).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("threads: 2 created"), "{out}");
    assert!(
        out.contains("comments: 7 added, 0 imported before"),
        "{out}"
    );
    replicas_have(&app, LINK, 4).await;
    replicas_have(&app, CLOSED, 1).await;

    let page = app.page(LINK, "&sort=oldest", &As::guest()).await.body;
    assert_eq!(page["thread"]["title"], "Hello & welcome");
    assert_eq!(page["thread"]["comment_count"], 4, "{page}");
    assert_eq!(page["thread"]["seq"], 6);
    assert_eq!(
        tree(&page),
        [
            "Ann approved",
            "  Bob approved",
            "[deleted] deleted",
            "  Dora approved",
            "Fred approved",
        ],
        "{page}"
    );
    let comments = &page["comments"];
    let ann = find(comments, "Ann");
    assert!(created(ann).starts_with("2019-03-01T10:00:00"), "{ann}");
    // Nanoseconds and an offset: 14:00:00.123456789+03:00.
    let bob = find(&ann["replies"], "Bob");
    assert!(created(bob).starts_with("2019-03-01T11:00:00.123"), "{bob}");
    let html = ann["body_html"].as_str().unwrap();
    for kept in [
        "<strong>Bold</strong>",
        "<em>italic</em>",
        "href=\"https://example.org/page\"",
        "<code>x &lt; y</code>",
        "café",
        "—",
        "<br>",
        "<blockquote>",
        "Tom &amp; Jerry",
    ] {
        assert!(html.contains(kept), "{kept:?} lost from {html}");
    }
    for dropped in ["<script", "alert", "javascript:", "onclick"] {
        assert!(!html.contains(dropped), "{dropped:?} kept in {html}");
    }
    // A comment with only its markdown source is rendered from it.
    let fred = find(comments, "Fred");
    let html = fred["body_html"].as_str().unwrap();
    assert!(
        html.contains("<p><strong>markdown</strong> only</p>"),
        "{html}"
    );
    closed_stays_closed(&app, 1).await;
    // The blocked user's comment, hidden by Remark42, waits in the spam queue.
    let spam = queue(&app, &me, "spam").await;
    assert_eq!(spam.len(), 1, "{spam:?}");
    assert_eq!(spam[0]["author"]["name"], "Spammer");
    assert!(queue(&app, &me, "pending").await.is_empty());

    // Again, as plain JSON lines: nothing new.
    let before = state(&app, &[LINK, CLOSED]).await;
    let (ok, out, err) = import_as(&dir, "remark42", &testdata("remark42.jsonl")).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("comments: 0 added, 7 imported before"),
        "{out}"
    );
    assert_eq!(state(&app, &[LINK, CLOSED]).await, before);

    // A comment posted by the thread's URL joins it (the cached page goes stale).
    let r = app
        .post_comment("demo", LINK, "posted after the import", None, &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let fresh = eventually(Duration::from_secs(2), || async {
        app.page(LINK, "", &As::guest()).await.body["thread"]["comment_count"] == 5
    })
    .await;
    assert!(fresh, "a stale page after a post");
}

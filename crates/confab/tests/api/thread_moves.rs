//! Threads moved to new addresses: `POST /api/v1/forums/{forum}/thread-moves` (the dashboard)
//! and `confab threads remap FILE.csv` (many at once), on SQLite and PostgreSQL.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

fn count(page: &Value) -> i64 {
    page["thread"]["comment_count"].as_i64().unwrap_or(0)
}

/// Reads `ident`'s first page until it shows `n` comments (replicas may lag on PostgreSQL).
async fn shows(app: &TestApp, ident: &str, n: i64) -> bool {
    let until = std::time::Instant::now() + Duration::from_secs(8);
    loop {
        if count(&app.page(ident, "", &As::guest()).await.body) == n {
            return true;
        }
        if std::time::Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_moved_thread_answers_to_its_new_address_and_its_old_one() {
    let app = spawn().await;
    let modr = app.account("movemod", false, &["demo"]).await;
    let other = app.account("notmod", false, &[]).await;
    app.comment("https://old.example.com/2019/hello/", "first", None)
        .await;
    app.comment("/2019/hello/", "second", None).await;
    app.comment("/taken", "elsewhere", None).await;
    // The new address was viewed before the move: its empty page is cached (read twice).
    for _ in 0..2 {
        assert_eq!(
            count(&app.page("/posts/hello", "", &As::guest()).await.body),
            0
        );
    }

    let body = json!({"from": "https://old.example.com/2019/hello/", "to": "https://new.example.com/posts/hello"});
    // Only the forum's moderators.
    let r = app
        .post(
            "/api/v1/forums/demo/thread-moves",
            body.clone(),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/forums/demo/thread-moves",
            body.clone(),
            &As::bearer(&other),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

    let r = app
        .post(
            "/api/v1/forums/demo/thread-moves",
            body.clone(),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["thread"]["ident"], "/2019/hello");
    assert_eq!(
        r.body["thread"]["url"],
        "https://new.example.com/posts/hello"
    );
    assert_eq!(r.body["aliases"], json!(["/posts/hello"]));
    // The new address shows the thread's comments at once (the cached empty page is gone),
    // and the old one still does.
    assert!(shows(&app, "/posts/hello", 2).await, "the new address");
    assert!(shows(&app, "https://old.example.com/2019/hello/", 2).await);
    // A comment posted at the new address joins the same thread.
    app.comment("https://new.example.com/posts/hello", "third", None)
        .await;
    assert!(shows(&app, "/2019/hello", 3).await);
    // Again: nothing changes.
    let r = app
        .post("/api/v1/forums/demo/thread-moves", body, &As::bearer(&modr))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["aliases"], json!(["/posts/hello"]));

    // Refusals: no thread at the old address; the new one held by another thread; bad input.
    let r = app
        .post(
            "/api/v1/forums/demo/thread-moves",
            json!({"from": "/nothing-here", "to": "/x"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{:?}",
        r.body
    );
    let r = app
        .post(
            "/api/v1/forums/demo/thread-moves",
            json!({"from": "/taken", "to": "/posts/hello"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "conflict"),
        "{:?}",
        r.body
    );
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not merged"));
    let r = app
        .post(
            "/api/v1/forums/demo/thread-moves",
            json!({"from": "/taken", "to": "   "}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{:?}",
        r.body
    );
    assert!(shows(&app, "/taken", 1).await);

    // The move is in the moderation log, with who did it.
    let log = app.get("/api/v1/forums/demo/log", &As::bearer(&modr)).await;
    assert_eq!(log.status, StatusCode::OK);
    let entries = log.body["entries"].as_array().cloned().unwrap_or_default();
    let e = entries
        .iter()
        .find(|e| e["action"] == "alias")
        .unwrap_or_else(|| panic!("no alias entry in {}", log.body));
    assert!(
        e["detail"].as_str().unwrap().contains("also /posts/hello"),
        "{e}"
    );
}

#[tokio::test]
async fn threads_remap_moves_every_line_of_a_file_and_a_bad_file_changes_nothing() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    for (ident, n) in [("/a", 1), ("/b", 2), ("/c", 1)] {
        for i in 0..n {
            app.comment(ident, &format!("on {ident} {i}"), None).await;
        }
    }
    let map = dir.join("map.csv");
    // A bad line (one field) stops it before any change.
    std::fs::write(
        &map,
        "old,new\nhttps://site.example/a,https://site.example/new-a\n/b\n",
    )
    .unwrap();
    let (ok, out, err) = cli(
        &dir,
        &["threads", "remap", map.to_str().unwrap(), "--forum", "demo"],
    )
    .await;
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("line 3") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(count(&app.page("/new-a", "", &As::guest()).await.body), 0);

    std::fs::write(
        &map,
        "old,new\n# moved in 2024\nhttps://site.example/a,https://site.example/new-a\n\"/b\",\"/new-b?x=1,2\"\n/missing,/whatever\n/c,/b\n",
    )
    .unwrap();
    let (ok, out, err) = cli(
        &dir,
        &["threads", "remap", map.to_str().unwrap(), "--forum", "demo"],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("threads moved: 2; already at their new address: 0; no thread at the old address: 1; new address taken by another thread: 1"),
        "{out}"
    );
    assert!(
        err.contains("line 5: no thread") && err.contains("line 6: /b already belongs"),
        "{err}"
    );
    // The running server serves the moved threads at their new addresses (the command told it
    // on the bus, or the server saw the database change).
    assert!(shows(&app, "/new-a", 1).await, "/new-a");
    assert!(shows(&app, "/new-b?x=1,2", 2).await, "/new-b");
    assert!(shows(&app, "/c", 1).await);
    // Again: nothing new.
    let (ok, out, _) = cli(
        &dir,
        &["threads", "remap", map.to_str().unwrap(), "--forum", "demo"],
    )
    .await;
    assert!(ok);
    assert!(
        out.contains("threads moved: 0; already at their new address: 2"),
        "{out}"
    );
    // An unknown forum is a clear error.
    let (ok, _, err) = cli(
        &dir,
        &["threads", "remap", map.to_str().unwrap(), "--forum", "nope"],
    )
    .await;
    assert!(!ok && err.contains("nope"), "{err}");
}

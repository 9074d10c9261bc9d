//! The dashboard's import: an export uploaded by staff (`POST /api/v1/forums/{forum}/imports`),
//! streamed to disk, imported in the background, its record polled, its summary in the
//! moderation log (on SQLite and, with CONFAB_TEST_BACKEND=postgres, PostgreSQL).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn testdata(name: &str) -> Vec<u8> {
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
    std::fs::read(p).expect("test file")
}

fn resp_of(status: StatusCode, bytes: &[u8]) -> Resp {
    Resp {
        status,
        headers: Default::default(),
        body: serde_json::from_slice(bytes).unwrap_or(Value::Null),
    }
}

/// Uploads `body` as an export (the dashboard's request: the raw file, its name in a header).
async fn upload(app: &TestApp, who: &str, query: &str, name: &str, body: Vec<u8>) -> Resp {
    let r = app
        .http
        .post(format!("{}/api/v1/forums/demo/imports{query}", app.base))
        .bearer_auth(who)
        .header("content-type", "application/octet-stream")
        .header("x-file-name", urlencode(name))
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = r.status();
    resp_of(status, &r.bytes().await.expect("body"))
}

/// Polls an import until it is no longer running.
async fn finished(app: &TestApp, who: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = app
            .get(
                &format!("/api/v1/forums/demo/imports/{id}"),
                &As::bearer(who),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        if r.body["state"] != "running" {
            return r.body;
        }
        assert!(Instant::now() < deadline, "import {id} still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Files left in the upload directory.
fn uploads_left(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir.join("imports")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The forum's moderation log once it holds `imports` import entries. On PostgreSQL the log
/// is read from a replica, and the import writes its entry from a background task, so the
/// entry can reach the reader a moment after the import's record says it ended.
async fn log(app: &TestApp, who: &str, imports: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .get("/api/v1/forums/demo/log?limit=100", &As::bearer(who))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let entries = r.body["entries"].as_array().unwrap().clone();
        let n = entries.iter().filter(|e| e["action"] == "import").count();
        assert!(n <= imports, "{entries:?}");
        if n == imports {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "{imports} imports never logged: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Approved comments on the public page of `ident`, once a replica has them.
async fn comment_count(app: &TestApp, ident: &str, want: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = app.page(ident, "&sort=oldest", &As::guest()).await.body;
        if page["thread"]["comment_count"] == want {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{ident} never had {want} comments: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn staff_upload_an_export_it_is_imported_in_the_background_and_logged() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let boss = app.account("boss", true, &[]).await;

    let list = app
        .get("/api/v1/forums/demo/imports", &As::bearer(&boss))
        .await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    assert!(list.body["formats"]
        .as_array()
        .unwrap()
        .contains(&Value::from("disqus")));
    assert_eq!(list.body["max_upload_bytes"], 256 * 1024 * 1024);
    assert_eq!(list.body["imports"], Value::Array(vec![]));

    let file = testdata("disqus.xml");
    let size = file.len();
    let r = upload(&app, &boss, "?format=disqus", "my export é.xml", file).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["format"], "disqus");
    assert_eq!(r.body["file_name"], "my export é.xml");
    assert_eq!(r.body["bytes"], size);
    let id = r.body["id"].as_str().unwrap().to_string();

    let done = finished(&app, &boss, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["error"], "");
    assert_eq!(done["posts_read"], 9, "{done}");
    assert_eq!(done["comments_total"], 7, "{done}");
    assert_eq!(done["comments_written"], 7, "{done}");
    let summary = done["summary"].as_str().unwrap();
    assert!(summary.contains("threads: 2 created"), "{summary}");
    assert!(
        summary.contains("comments: 7 added, 0 imported before"),
        "{summary}"
    );
    assert!(done["finished_at"].is_string(), "{done}");
    // The uploaded file is gone.
    assert_eq!(uploads_left(&dir), Vec::<String>::new());

    // The comments read back through the API.
    let page = comment_count(&app, "post-1", 4).await;
    assert_eq!(page["thread"]["title"], "Hello & welcome");
    let names: Vec<&str> = page["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["author"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ann", "[deleted]", "Anonymous"], "{page}");

    // The summary is in the moderation log, by the staff member who uploaded it.
    let entries = log(&app, &boss, 1).await;
    let imports: Vec<&Value> = entries.iter().filter(|e| e["action"] == "import").collect();
    assert_eq!(imports.len(), 1, "{entries:?}");
    let detail = imports[0]["detail"].as_str().unwrap();
    assert!(detail.contains("disqus export my export é.xml"), "{detail}");
    assert!(
        detail.contains("2 threads created, 0 already there; 7 comments added, 0 imported before"),
        "{detail}"
    );
    assert!(
        detail.contains("skipped: 1 posts of deleted threads, 1 posts of unknown threads"),
        "{detail}"
    );
    assert!(imports[0]["actor"].is_string(), "{:?}", imports[0]);

    // The same file again (gzipped, its name from the query): nothing new, logged too.
    let r = upload(
        &app,
        &boss,
        "?format=disqus&name=again.xml.gz",
        "ignored.xml",
        testdata("disqus.xml.gz"),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["file_name"], "again.xml.gz");
    let again = finished(&app, &boss, r.body["id"].as_str().unwrap()).await;
    assert_eq!(again["state"], "done", "{again}");
    assert!(again["summary"]
        .as_str()
        .unwrap()
        .contains("comments: 0 added, 7 imported before"));
    comment_count(&app, "post-1", 4).await;
    let list = app
        .get("/api/v1/forums/demo/imports", &As::bearer(&boss))
        .await;
    let ids: Vec<&str> = list.body["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [again["id"].as_str().unwrap(), id.as_str()]);
    log(&app, &boss, 2).await;
    assert_eq!(uploads_left(&dir), Vec::<String>::new());
}

#[tokio::test]
async fn only_staff_upload_and_see_imports_and_bad_requests_are_refused_plainly() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let moderator = app.account("mod", false, &["demo"]).await;
    let boss = app.account("boss", true, &[]).await;

    // A moderator of the forum is not staff.
    let r = upload(
        &app,
        &moderator,
        "?format=disqus",
        "x.xml",
        testdata("disqus.xml"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.code(), "forbidden");
    for path in [
        "/api/v1/forums/demo/imports",
        "/api/v1/forums/demo/imports/1",
    ] {
        let r = app.get(path, &As::bearer(&moderator)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {:?}", r.body);
    }
    // Nobody signed in.
    let r = app
        .http
        .post(format!(
            "{}/api/v1/forums/demo/imports?format=disqus",
            app.base
        ))
        .body(testdata("disqus.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Staff, but from another site's page.
    let r = app
        .http
        .post(format!(
            "{}/api/v1/forums/demo/imports?format=disqus",
            app.base
        ))
        .bearer_auth(&boss)
        .header("origin", "https://evil.example")
        .body(testdata("disqus.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Not sent as the dashboard sends it (a form's type): refused.
    let r = app
        .http
        .post(format!(
            "{}/api/v1/forums/demo/imports?format=disqus",
            app.base
        ))
        .bearer_auth(&boss)
        .header("content-type", "text/plain")
        .body(testdata("disqus.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // No format, an unknown one, an unknown forum, an unknown import.
    let r = upload(&app, &boss, "", "x.xml", testdata("disqus.xml")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("?format= one of disqus"));
    let r = upload(
        &app,
        &boss,
        "?format=blogger",
        "x.xml",
        testdata("disqus.xml"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown format \"blogger\""));
    let r = app
        .http
        .post(format!(
            "{}/api/v1/forums/nope/imports?format=disqus",
            app.base
        ))
        .bearer_auth(&boss)
        .header("content-type", "application/octet-stream")
        .body(testdata("disqus.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .get("/api/v1/forums/demo/imports/12345", &As::bearer(&boss))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    // None of it imported anything or left a file or a record.
    let list = app
        .get("/api/v1/forums/demo/imports", &As::bearer(&boss))
        .await;
    assert_eq!(
        list.body["imports"],
        Value::Array(vec![]),
        "{:?}",
        list.body
    );
    assert_eq!(uploads_left(&dir), Vec::<String>::new());
    let page = app.page("post-1", "", &As::guest()).await.body;
    assert!(page["thread"].is_null(), "{page}");
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_and_leaves_no_file() {
    let mut c = config();
    c.import.max_upload_mb = 1;
    let app = spawn_with(c).await;
    let dir = app._dir.path().to_path_buf();
    let boss = app.account("boss", true, &[]).await;
    let big = vec![b' '; 3 * 1024 * 1024];

    // Declared over the limit: refused before a byte is read.
    let r = upload(&app, &boss, "?format=disqus", "big.xml", big.clone()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    assert_eq!(r.code(), "payload_too_large");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("upload limit of 1 MiB"));
    assert_eq!(uploads_left(&dir), Vec::<String>::new());

    // Sent with no length (chunked): cut off once it passes the limit, its part deleted.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let sent = app
        .http
        .post(format!(
            "{}/api/v1/forums/demo/imports?format=disqus",
            app.base
        ))
        .bearer_auth(&boss)
        .header("content-type", "application/octet-stream")
        .header("x-file-name", "big.xml")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The server answers 413 before the client has sent everything; a client may see that
    // answer or, still sending, only the closed connection.
    if let Ok(r) = sent {
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let record = loop {
        let list = app
            .get("/api/v1/forums/demo/imports", &As::bearer(&boss))
            .await;
        let first = list.body["imports"][0].clone();
        if first["state"] == "failed" {
            break first;
        }
        assert!(Instant::now() < deadline, "{:?}", list.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("over the upload limit of 1 MiB"),
        "{record}"
    );
    assert_eq!(uploads_left(&dir), Vec::<String>::new());

    // A file within the limit still goes through (the node's slot was freed).
    let r = upload(
        &app,
        &boss,
        "?format=disqus",
        "x.xml",
        testdata("disqus.xml"),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let done = finished(&app, &boss, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "done", "{done}");
}

#[tokio::test]
async fn a_broken_file_fails_with_its_position_and_changes_nothing() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let boss = app.account("boss", true, &[]).await;
    let r = upload(
        &app,
        &boss,
        "?format=disqus",
        "broken.xml",
        testdata("disqus-broken.xml"),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let done = finished(&app, &boss, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "failed", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(error.starts_with("broken.xml: line 155, column"), "{error}");
    assert_eq!(done["summary"], "");
    assert_eq!(done["comments_written"], 0);
    assert_eq!(uploads_left(&dir), Vec::<String>::new());

    // Nothing was written: no thread, no comment.
    for ident in ["post-1", "https://blog.example.com/2019/closed-post"] {
        let page = app.page(ident, "", &As::guest()).await.body;
        assert!(page["thread"].is_null(), "{page}");
    }
    let entries = log(&app, &boss, 1).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["action"], "import");
    let detail = entries[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("failed: disqus export broken.xml") && detail.contains("line 155, column"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_second_upload_while_one_runs_is_refused() {
    let app = spawn().await;
    let boss = app.account("boss", true, &[]).await;

    // The first upload is held open (its body still arriving): the node's one slot is taken.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let first = {
        let req = app
            .http
            .post(format!(
                "{}/api/v1/forums/demo/imports?format=disqus",
                app.base
            ))
            .bearer_auth(&boss)
            .header("content-type", "application/octet-stream")
            .header("x-file-name", "first.xml")
            .body(reqwest::Body::wrap_stream(body));
        tokio::spawn(async move {
            let r = req.send().await.expect("first upload");
            let status = r.status();
            resp_of(status, &r.bytes().await.unwrap())
        })
    };
    let file = testdata("disqus.xml");
    let (head, tail) = file.split_at(1000);
    tx.send(Ok(head.to_vec())).await.unwrap();
    // Its record appears, running.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = app
            .get("/api/v1/forums/demo/imports", &As::bearer(&boss))
            .await;
        if list.body["imports"][0]["state"] == "running" {
            assert_eq!(list.body["imports"][0]["file_name"], "first.xml");
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", list.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let r = upload(
        &app,
        &boss,
        "?format=disqus",
        "second.xml",
        testdata("disqus.xml"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "conflict");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("already running an import") && msg.contains("one runs at a time"),
        "{msg}"
    );

    // The first one finishes; then another may start.
    tx.send(Ok(tail.to_vec())).await.unwrap();
    drop(tx);
    let r = first.await.unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let done = finished(&app, &boss, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["comments_written"], 7, "{done}");
    let r = upload(
        &app,
        &boss,
        "?format=disqus",
        "third.xml",
        testdata("disqus.xml"),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let done = finished(&app, &boss, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "done", "{done}");
    // Two records, no third for the refused one.
    let list = app
        .get("/api/v1/forums/demo/imports", &As::bearer(&boss))
        .await;
    assert_eq!(list.body["imports"].as_array().unwrap().len(), 2);
}

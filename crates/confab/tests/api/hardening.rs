//! What a hostile client tried, and what stops it: held sockets, unbounded hashing, edits past
//! moderation, sessions that outlive logout, cross-forum CORS, subscription probing, vote
//! stuffing, idempotency-key replays, banned authors' edits.

use crate::helpers::*;
use crate::live::Sse;
use reqwest::StatusCode;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn addr(app: &TestApp) -> SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("addr")
}

/// A connection to the server from another loopback address (so per-address caps can be
/// tried without touching the test client's own address, 127.0.0.1).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(SocketAddr::from((from, 0))).expect("bind");
    s.connect(to).await.expect("connect")
}

/// Reads until the peer closes (Ok(bytes)) or `wait` passes (Err).
async fn read_to_close(s: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let r = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    r.map(|()| out).map_err(|_| ())
}

fn timeouts_config() -> confab_server::config::Config {
    let mut c = config();
    c.connections.header_timeout_secs = 1;
    c.connections.body_timeout_secs = 1;
    c.connections.max_per_ip = 8;
    c
}

#[tokio::test]
async fn half_sent_requests_and_bare_connects_are_dropped_and_the_server_keeps_answering() {
    let app = spawn_with(timeouts_config()).await;
    let to = addr(&app);
    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..8 {
        let mut s = connect_from([127, 0, 0, 2], to).await;
        if i % 2 == 0 {
            s.write_all(b"GET /heal").await.unwrap(); // half a request line
        } // else: a bare connect
        held.push(s);
    }
    // The address's cap is reached: the next connection is told so, and closed.
    let mut extra = connect_from([127, 0, 0, 2], to).await;
    let refused = String::from_utf8(
        read_to_close(&mut extra, Duration::from_secs(3))
            .await
            .expect("closed"),
    )
    .unwrap();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    assert!(refused.contains("\"unavailable\""), "{refused}");
    // Everyone else is served meanwhile.
    let t = Instant::now();
    let r = app.get("/healthz", &As::guest()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "healthz took {:?}",
        t.elapsed()
    );
    // Every held connection is closed within the header timeout (1 s here).
    for s in &mut held {
        read_to_close(s, Duration::from_secs(5))
            .await
            .expect("the server closes a connection that sends no request");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        started.elapsed()
    );
    // The address's slots were given back.
    let mut again = connect_from([127, 0, 0, 2], to).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let ok = String::from_utf8(
        read_to_close(&mut again, Duration::from_secs(3))
            .await
            .expect("answered"),
    )
    .unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

#[tokio::test]
async fn at_the_node_cap_a_crowd_of_slow_senders_gives_way_to_real_requests() {
    let mut c = config();
    c.connections.header_timeout_secs = 30; // the crowd is not timed out during this test
    c.connections.max = 6;
    let app = spawn_with(c).await;
    let to = addr(&app);
    let mut crowd = Vec::new();
    for i in 0..6u8 {
        let mut s = connect_from([127, 0, 1, 10 + i], to).await;
        s.write_all(b"GET /x").await.unwrap();
        crowd.push(s);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every slot is held by someone who has not sent a whole request: a real request still gets
    // in, in place of the oldest of them.
    for _ in 0..3 {
        let t = Instant::now();
        let r = app.get("/healthz", &As::guest()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    read_to_close(&mut crowd[0], Duration::from_secs(3))
        .await
        .expect("the oldest slow sender was closed");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_gets_408_within_the_body_timeout() {
    let app = spawn_with(timeouts_config()).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"POST /api/v1/comments HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"forum\":")
        .await
        .unwrap();
    let t = Instant::now();
    let answer = String::from_utf8(
        read_to_close(&mut s, Duration::from_secs(5))
            .await
            .expect("answered and closed"),
    )
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Nothing was written.
    let p = app
        .get("/api/v1/comments?forum=demo&ident=x", &As::guest())
        .await;
    assert_eq!(
        p.body["thread"]["comment_count"].as_i64().unwrap_or(0),
        0,
        "{:?}",
        p.body
    );
}

#[tokio::test]
async fn a_kept_alive_connection_that_waits_idle_is_closed() {
    let app = spawn_with(timeouts_config()).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // No next request: closed after the header timeout.
    let t = Instant::now();
    read_to_close(&mut s, Duration::from_secs(5))
        .await
        .expect("idle connection closed");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn live_streams_outlast_the_read_timeouts() {
    let app = spawn_with(timeouts_config()).await;
    let url = format!("{}/api/v1/threads/live?forum=demo&ident=%2Flong", app.base);
    let mut sse = Sse::open(&app.http, &url, None).await.unwrap();
    assert_eq!(sse.next(Duration::from_secs(5)).await.name, "hello");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    app.comment("/long", "still here", None).await;
    assert_eq!(
        sse.next(Duration::from_secs(5)).await.name,
        "comment.created"
    );
}

#[tokio::test]
async fn a_burst_of_logins_is_queued_or_refused_not_hashed_all_at_once() {
    let app = spawn().await;
    app.account("burst", false, &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (http, base) = (app.http.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/api/v1/sessions"))
                .json(&json!({"login": "burst", "password": "wrong password!"}))
                .send()
                .await
                .unwrap();
            (r.status(), r.headers().get("retry-after").is_some())
        }));
    }
    let (mut refused, mut wrong) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::UNAUTHORIZED, _) => wrong += 1,
            (StatusCode::SERVICE_UNAVAILABLE, true) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wrong + refused, 100);
    assert!(
        refused > 0,
        "100 logins at once on a {}-core machine: none refused",
        std::thread::available_parallelism().unwrap()
    );
    assert!(wrong > 0);
    // The owner still gets in afterwards.
    let r = app
        .post(
            "/api/v1/sessions",
            json!({"login": "burst", "password": "correct horse battery"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

fn guest_body(ident: &str, body: &str, email: Option<&str>) -> serde_json::Value {
    let mut b = json!({"forum": "demo", "ident": ident, "body": body, "author_name": "Guest"});
    if let Some(e) = email {
        b["author_email"] = json!(e);
    }
    b
}

async fn patch(app: &TestApp, path: &str, body: serde_json::Value, who: &As) -> Resp {
    app.req(reqwest::Method::PATCH, path, Some(body), who).await
}

async fn set_forum(app: &TestApp, modr: &str, forum: &str, settings: serde_json::Value) {
    let r = patch(
        app,
        &format!("/api/v1/forums/{forum}"),
        settings,
        &As::bearer(modr),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

async fn public_count(app: &TestApp, ident: &str) -> i64 {
    app.page(ident, "", &As::guest()).await.body["thread"]["comment_count"]
        .as_i64()
        .unwrap_or(0)
}

#[tokio::test]
async fn an_edit_passes_the_same_admission_as_a_post() {
    let app = spawn().await;
    let modr = app.account("editmod", false, &["demo"]).await;
    set_forum(&app, &modr, "demo", json!({"moderation": "links"})).await;

    // links mode: a plain comment is public; edited to carry a link it goes back to the queue.
    let r = app
        .post(
            "/api/v1/comments",
            guest_body("/edit", "plain words", None),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::CREATED, Some("approved"))
    );
    let (id, tok) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["edit_token"].as_str().unwrap().to_string(),
    );
    let e = patch(
        &app,
        &format!("/api/v1/comments/{id}"),
        json!({"body": "buy at [my shop](https://scam.example) now"}),
        &As::edit(&tok),
    )
    .await;
    assert_eq!(
        (e.status, e.body["status"].as_str()),
        (StatusCode::OK, Some("pending")),
        "{:?}",
        e.body
    );
    assert_eq!(public_count(&app, "/edit").await, 0, "no longer public");
    let q = app
        .get(
            "/api/v1/forums/demo/comments?queue=pending",
            &As::bearer(&modr),
        )
        .await;
    assert!(
        q.body["comments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str()),
        "{:?}",
        q.body
    );

    // pre mode: an approved comment rewritten goes back to the queue too.
    set_forum(&app, &modr, "demo", json!({"moderation": "pre"})).await;
    let r = app
        .post(
            "/api/v1/comments",
            guest_body("/edit2", "a kind comment", None),
            &As::guest(),
        )
        .await;
    let (id2, tok2) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["edit_token"].as_str().unwrap().to_string(),
    );
    let a = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [id2], "action": "approve"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(public_count(&app, "/edit2").await, 1);
    let e = patch(
        &app,
        &format!("/api/v1/comments/{id2}"),
        json!({"body": "now a scam"}),
        &As::edit(&tok2),
    )
    .await;
    assert_eq!(e.body["status"], "pending", "{:?}", e.body);
    assert_eq!(public_count(&app, "/edit2").await, 0);

    // A moderator's edit of someone else's comment keeps its status, is marked edited, and is
    // logged with the old text.
    let e = patch(
        &app,
        &format!("/api/v1/comments/{id2}"),
        json!({"body": "[removed by a moderator]"}),
        &As::bearer(&modr),
    )
    .await;
    assert_eq!(
        (e.status, e.body["status"].as_str()),
        (StatusCode::OK, Some("pending")),
        "{:?}",
        e.body
    );
    assert!(e.body["edited_at"].is_string());
    let log = app.get("/api/v1/forums/demo/log", &As::bearer(&modr)).await;
    let entry = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["action"] == "edit")
        .cloned()
        .expect("an edit entry");
    assert_eq!(
        (entry["comment_id"].as_str(), entry["detail"].as_str()),
        (Some(id2.as_str()), Some("now a scam")),
        "{entry:?}"
    );
}

#[tokio::test]
async fn closed_threads_banned_authors_and_shortened_windows_stop_edits_votes_and_flags() {
    let mut c = config();
    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let app = spawn_with(c).await;
    let modr = app.account("closemod", false, &["demo"]).await;
    // Closed thread: the author may not edit.
    let r = app
        .post(
            "/api/v1/comments",
            guest_body("/closed", "before closing", None),
            &As::guest(),
        )
        .await;
    let (id, tok) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["edit_token"].as_str().unwrap().to_string(),
    );
    let t = patch(
        &app,
        &format!("/api/v1/threads/{}", r.body["thread_id"].as_str().unwrap()),
        json!({"closed": true}),
        &As::bearer(&modr),
    )
    .await;
    assert_eq!(t.status, StatusCode::OK);
    let e = patch(
        &app,
        &format!("/api/v1/comments/{id}"),
        json!({"body": "after closing"}),
        &As::edit(&tok),
    )
    .await;
    assert_eq!(
        (e.status, e.code()),
        (StatusCode::FORBIDDEN, "thread_closed"),
        "{:?}",
        e.body
    );

    // A banned author may not edit, vote or flag.
    let r = app
        .post(
            "/api/v1/comments",
            guest_body("/banned", "hello", Some("troll@example.com")),
            &As::guest(),
        )
        .await;
    let (id, tok) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["edit_token"].as_str().unwrap().to_string(),
    );
    let other = app.comment("/banned", "someone else", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "email", "value": "troll@example.com"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED);
    let e = patch(
        &app,
        &format!("/api/v1/comments/{id}"),
        json!({"body": "edited"}),
        &As::edit(&tok),
    )
    .await;
    assert_eq!(
        (e.status, e.code()),
        (StatusCode::FORBIDDEN, "banned"),
        "{:?}",
        e.body
    );
    // The moderator bans the readers' address from another one (an IP ban that would match
    // the moderator's own address is refused).
    let b = app
        .http
        .post(format!("{}/api/v1/forums/demo/bans", app.base))
        .bearer_auth(&modr)
        .header("x-forwarded-for", "198.51.100.1")
        .json(&json!({"kind": "ip", "value": "127.0.0.1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(b.status(), StatusCode::CREATED);
    let v = app
        .post(
            &format!("/api/v1/comments/{other}/vote"),
            json!({"value": 1}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (v.status, v.code()),
        (StatusCode::FORBIDDEN, "banned"),
        "{:?}",
        v.body
    );
    let f = app
        .post(
            &format!("/api/v1/comments/{other}/flag"),
            json!({"reason": "x"}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (f.status, f.code()),
        (StatusCode::FORBIDDEN, "banned"),
        "{:?}",
        f.body
    );
}

#[tokio::test]
async fn a_guest_edit_token_follows_a_shortened_edit_window() {
    let app = spawn().await;
    let modr = app.account("windowmod", false, &["demo"]).await;
    let r = app
        .post(
            "/api/v1/comments",
            guest_body("/window", "typo", None),
            &As::guest(),
        )
        .await;
    let (id, tok) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["edit_token"].as_str().unwrap().to_string(),
    );
    set_forum(&app, &modr, "demo", json!({"edit_window_secs": 0})).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = patch(
        &app,
        &format!("/api/v1/comments/{id}"),
        json!({"body": "fixed"}),
        &As::edit(&tok),
    )
    .await;
    assert_eq!(
        (e.status, e.code()),
        (StatusCode::FORBIDDEN, "edit_window_closed"),
        "{:?}",
        e.body
    );
}

#[tokio::test]
async fn a_spam_parent_leaves_a_placeholder_over_its_visible_replies() {
    let app = spawn().await;
    let modr = app.account("spammod", false, &["demo"]).await;
    let parent = app.comment("/spam-parent", "spam spam", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = app
        .comment("/spam-parent", "a good answer", Some(&parent))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [parent], "action": "spam"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK);
    let page = app.page("/spam-parent", "", &As::guest()).await;
    let top = page.body["comments"].as_array().unwrap();
    assert_eq!(top.len(), 1, "{:?}", page.body);
    assert_eq!(top[0]["id"], parent.as_str());
    assert_eq!(
        (top[0]["status"].as_str(), top[0]["body_html"].as_str()),
        (Some("deleted"), Some("")),
        "a placeholder: {:?}",
        top[0]
    );
    assert!(!top[0]["author"]["name"]
        .as_str()
        .unwrap()
        .contains("Tester"));
    assert_eq!(
        top[0]["replies"][0]["id"],
        reply.as_str(),
        "the approved reply stays visible"
    );
    // A moderator still sees what it is.
    let page = app.page("/spam-parent", "", &As::bearer(&modr)).await;
    assert_eq!(page.body["comments"][0]["status"], "spam");
}

#[tokio::test]
async fn logout_and_a_moderators_removal_end_sessions_everywhere() {
    let app = spawn().await;
    app.account("leaver", false, &["demo"]).await;
    let login = app
        .post(
            "/api/v1/sessions",
            json!({"login": "leaver", "password": "correct horse battery"}),
            &As::guest(),
        )
        .await;
    let token = login.body["token"].as_str().unwrap().to_string();
    let other_device = app
        .post(
            "/api/v1/sessions",
            json!({"login": "leaver", "password": "correct horse battery"}),
            &As::guest(),
        )
        .await;
    let other = other_device.body["token"].as_str().unwrap().to_string();
    let cookie = As {
        cookie: Some(format!("confab_session={token}")),
        ..As::default()
    };
    assert_eq!(
        app.get("/api/v1/me", &As::bearer(&token)).await.status,
        StatusCode::OK
    );
    let out = app
        .req(
            reqwest::Method::DELETE,
            "/api/v1/sessions",
            None,
            &As::bearer(&token),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    for who in [As::bearer(&token), cookie, As::bearer(&other)] {
        assert_eq!(
            app.get("/api/v1/me", &who).await.status,
            StatusCode::UNAUTHORIZED,
            "{who:?} still signed in"
        );
    }
    // A new sign-in works; removing the account's moderation ends that session too.
    let again = app
        .post(
            "/api/v1/sessions",
            json!({"login": "leaver", "password": "correct horse battery"}),
            &As::guest(),
        )
        .await;
    let token = again.body["token"].as_str().unwrap().to_string();
    assert_eq!(
        app.get("/api/v1/forums/demo/comments", &As::bearer(&token))
            .await
            .status,
        StatusCode::OK
    );
    let acct = app.svc.forum("demo").unwrap();
    let leaver = app.store.credentials("leaver").await.unwrap().unwrap().0;
    assert!(leaver.can_moderate(acct.id));
    app.svc.set_moderator(&leaver, "demo", false).await.unwrap();
    assert_eq!(
        app.get("/api/v1/forums/demo/comments", &As::bearer(&token))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn cookies_are_secure_behind_an_https_proxy() {
    let mut c = config();
    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let app = spawn_with(c).await;
    app.account("secure", false, &[]).await;
    let login = |proto: Option<&'static str>| {
        let mut r = app
            .http
            .post(format!("{}/api/v1/sessions", app.base))
            .json(&json!({"login": "secure", "password": "correct horse battery"}));
        if let Some(p) = proto {
            r = r.header("x-forwarded-proto", p);
        }
        r.send()
    };
    let https = login(Some("https")).await.unwrap();
    let cookie = https.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let http = login(None).await.unwrap();
    assert!(!http.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));
}

#[tokio::test]
async fn moderation_answers_only_the_forums_own_sites() {
    let app = spawn().await;
    app.forum("forum-a", json!({})).await; // allows https://site.example
    let moda = app.account("moda", false, &["forum-a"]).await;
    let modb = app.account("modb", false, &["demo"]).await;
    set_forum(
        &app,
        &modb,
        "demo",
        json!({"allowed_origins": ["https://evil.example"]}),
    )
    .await;
    let cookie = |origin: &str| As {
        cookie: Some(format!("confab_session={moda}")),
        origin: Some(origin.into()),
        ..As::default()
    };

    // From forum B's site, forum A's queue, settings, bans and log are neither readable by the
    // browser (no CORS grant) nor answered.
    for path in ["/comments?queue=all", "", "/bans", "/log", "/stats"] {
        let r = app
            .get(
                &format!("/api/v1/forums/forum-a{path}"),
                &cookie("https://evil.example"),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "origin_not_allowed"),
            "{path}: {:?}",
            r.body
        );
        assert!(r.header("access-control-allow-origin").is_none(), "{path}");
    }
    let pre = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/forums/forum-a/comments", app.base),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        pre.headers().get("access-control-allow-origin").is_none(),
        "preflight granted: {:?}",
        pre.headers()
    );
    // Forum A's own site is answered; the dashboard (same origin, no Origin header) too.
    let ok = app
        .get(
            "/api/v1/forums/forum-a/comments",
            &cookie("https://site.example"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://site.example")
    );
    assert_eq!(
        app.get("/api/v1/forums/forum-a/log", &As::bearer(&moda))
            .await
            .status,
        StatusCode::OK
    );
    // The widget's routes still answer every forum's sites.
    let w = app
        .get(
            "/api/v1/comments?forum=demo&ident=x",
            &As::guest().origin("https://evil.example"),
        )
        .await;
    assert_eq!(
        w.header("access-control-allow-origin"),
        Some("https://evil.example")
    );
    // The forum list and forum creation are the dashboard's alone.
    let staff = app.account("staffer", true, &[]).await;
    let evil_staff = As {
        bearer: Some(staff.clone()),
        origin: Some("https://evil.example".into()),
        ..As::default()
    };
    let c = app
        .post("/api/v1/forums", json!({"name": "new-forum"}), &evil_staff)
        .await;
    assert_eq!(
        (c.status, c.code()),
        (StatusCode::FORBIDDEN, "origin_not_allowed"),
        "{:?}",
        c.body
    );
    assert_eq!(
        app.get("/api/v1/forums", &evil_staff).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(
            "/api/v1/forums",
            json!({"name": "new-forum"}),
            &As::bearer(&staff)
        )
        .await
        .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn webhook_secrets_are_write_only() {
    let app = spawn().await;
    let modr = app.account("hookmod", false, &["demo"]).await;
    let hook = json!({"url": "https://hooks.example/in", "secret": "s3cret-s3cret-s3cret", "events": ["comment.created"]});
    let r = patch(
        &app,
        "/api/v1/forums/demo",
        json!({"webhooks": [hook]}),
        &As::bearer(&modr),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["settings"]["webhooks"][0]["secret"], "");
    let g = app.get("/api/v1/forums/demo", &As::bearer(&modr)).await;
    assert_eq!(g.body["settings"]["webhooks"][0]["secret"], "");
    assert!(!g.body.to_string().contains("s3cret"));
    // Sending the list back as shown (secret empty) keeps the stored key.
    let back = g.body["settings"]["webhooks"].clone();
    let r = patch(
        &app,
        "/api/v1/forums/demo",
        json!({"webhooks": back}),
        &As::bearer(&modr),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        app.svc.forum("demo").unwrap().settings.webhooks[0].secret,
        "s3cret-s3cret-s3cret"
    );
}

#[tokio::test]
async fn tokenless_votes_from_one_address_count_once_and_votes_are_limited() {
    let app = spawn().await;
    let id = app.comment("/votes", "like me", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut last = None;
    for _ in 0..5 {
        let v = app
            .post(
                &format!("/api/v1/comments/{id}/vote"),
                json!({"value": 1}),
                &As::guest(),
            )
            .await;
        assert_eq!(v.status, StatusCode::OK, "{:?}", v.body);
        last = Some(v);
    }
    assert_eq!(
        last.unwrap().body["likes"],
        1,
        "five tokenless likes from one address are one"
    );
    for _ in 0..3 {
        app.post(
            &format!("/api/v1/comments/{id}/flag"),
            json!({"reason": "x"}),
            &As::guest(),
        )
        .await;
    }
    let c = app
        .store
        .comment(id.parse().unwrap(), confab_store::ReadFrom::Primary)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.flag_count, 1, "flags likewise");

    let mut cfg = config();
    cfg.rate_limit.enabled = true;
    cfg.rate_limit.votes_per_hour_ip = 3;
    let app = spawn_with(cfg).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let c = app
            .post(
                "/api/v1/comments",
                guest_body("/limited", &format!("c{i}"), None),
                &As::anon(&app.svc.new_anon_token().1),
            )
            .await;
        ids.push(c.body["id"].as_str().unwrap().to_string());
    }
    let mut statuses = Vec::new();
    for id in &ids {
        statuses.push(
            app.post(
                &format!("/api/v1/comments/{id}/vote"),
                json!({"value": 1}),
                &As::guest(),
            )
            .await
            .status,
        );
    }
    assert_eq!(statuses[..3], [StatusCode::OK; 3]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_idempotency_key_replays_only_its_own_request() {
    let app = spawn().await;
    let send = |body: serde_json::Value| {
        app.http
            .post(format!("{}/api/v1/comments", app.base))
            .header("idempotency-key", "shared-key-1")
            .json(&body)
            .send()
    };
    let first = send(guest_body("/idem", "mine", None)).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    // The same request again: the first comment (a retry).
    let retry: serde_json::Value = send(guest_body("/idem", "mine", None))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(retry["id"], first["id"]);
    // Another request with the key: refused, and no edit token of the first comment.
    for other in [
        guest_body("/idem", "someone else's text", None),
        json!({"forum": "demo", "ident": "/other", "body": "mine", "author_name": "Guest"}),
    ] {
        let r = send(other).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "idempotency_key_reused", "{body}");
        assert!(!body.to_string().contains("edit_token"));
    }
    assert_eq!(public_count(&app, "/idem").await, 1);
}

#[tokio::test]
async fn logins_for_one_name_are_slowed_from_any_address() {
    let mut cfg = config();
    cfg.rate_limit.enabled = true;
    cfg.rate_limit.auth_per_minute_ip = 1000;
    cfg.rate_limit.logins_per_minute_account = 3;
    let app = spawn_with(cfg).await;
    app.account("target", false, &[]).await;
    let mut statuses = Vec::new();
    for login in ["target", "TARGET", "target", "Target"] {
        let r = app
            .post(
                "/api/v1/sessions",
                json!({"login": login, "password": "guess guess guess"}),
                &As::guest(),
            )
            .await;
        statuses.push((r.status, r.header("retry-after").is_some()));
    }
    assert_eq!(statuses[..3], [(StatusCode::UNAUTHORIZED, false); 3]);
    assert_eq!(statuses[3], (StatusCode::TOO_MANY_REQUESTS, true));
    // Another account is not slowed by it.
    app.account("bystander", false, &[]).await;
    let ok = app
        .post(
            "/api/v1/sessions",
            json!({"login": "bystander", "password": "correct horse battery"}),
            &As::guest(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_mail_goes_only_to_whoever_confirmed_the_address() {
    let sink = crate::smtp::SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let victim = As::anon(&app.svc.new_anon_token().1);
    let attacker = As::anon(&app.svc.new_anon_token().1);
    let ask = |email: &str| json!({"forum": "demo", "ident": "/notify", "body": "hi", "author_name": "N", "author_email": email, "notify": true});

    // The victim subscribes and confirms.
    let r = app
        .post("/api/v1/comments", ask("victim@example.com"), &victim)
        .await;
    assert_eq!(r.body["notify"], "pending_confirmation");
    let confirm = sink.wait_for(1).await[0].link("/mail/confirm?t=");
    let (status, _) = app.post_form(&confirm, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.post("/api/v1/comments", ask("victim@example.com"), &victim)
            .await
            .body["notify"],
        "subscribed"
    );

    // Anyone else typing the address gets the answer an unknown address gets...
    let probe = app
        .post("/api/v1/comments", ask("victim@example.com"), &attacker)
        .await;
    let unknown = app
        .post("/api/v1/comments", ask("nobody@example.com"), &attacker)
        .await;
    assert_eq!(probe.body["notify"], unknown.body["notify"]);
    assert_eq!(probe.body["notify"], "pending_confirmation");
    // ...and replies to their comment never mail the victim.
    let before = app.settle().await;
    let sent_before = sink.messages().len();
    let r = app
        .post_comment(
            "demo",
            "/notify",
            "a reply to the prober",
            Some(probe.body["id"].as_str().unwrap()),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let after = app.settle().await;
    assert!(after.len() > before.len(), "the reply's tasks ran");
    let to_victim = sink.messages()[sent_before..]
        .iter()
        .filter(|m| {
            m.to == ["victim@example.com"]
                && m.header("Subject").is_some_and(|s| !s.contains("Confirm"))
        })
        .count();
    assert_eq!(
        to_victim, 0,
        "a reply to the prober's comment was mailed to the victim"
    );
    // The victim's own comments still bring replies.
    let own = app
        .post("/api/v1/comments", ask("victim@example.com"), &victim)
        .await;
    let n = sink.messages().len();
    app.post_comment(
        "demo",
        "/notify",
        "a reply to the victim",
        Some(own.body["id"].as_str().unwrap()),
        &As::guest(),
    )
    .await;
    let mails = sink.wait_for(n + 1).await;
    assert!(
        mails[n..].iter().any(|m| m.to == ["victim@example.com"]),
        "{mails:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_answers_the_same_for_taken_and_free_addresses() {
    // Without mail: a taken address is left off the new account; the answer is a sign-up.
    let app = spawn().await;
    app.account("holder", false, &[]).await; // holder@example.com
    let r = app.post("/api/v1/accounts", json!({"username": "prober", "email": "HOLDER@example.com", "password": "long enough pw"}), &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let fresh = app.post("/api/v1/accounts", json!({"username": "fresh", "email": "fresh@example.com", "password": "long enough pw"}), &As::guest()).await;
    assert_eq!(fresh.status, StatusCode::CREATED);
    assert_eq!(
        r.body.as_object().unwrap().keys().collect::<Vec<_>>(),
        fresh.body.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    // A taken username is still refused (usernames are public).
    let dup = app
        .post(
            "/api/v1/accounts",
            json!({"username": "HOLDER", "email": "x@example.com", "password": "long enough pw"}),
            &As::guest(),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    // With mail: no address is added until its owner confirms, so nothing tells them apart;
    // the holder hears of the attempt, the new address gets a link.
    let sink = crate::smtp::SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    app.account("holder", false, &[]).await;
    let taken = app.post("/api/v1/accounts", json!({"username": "prober", "email": "holder@example.com", "password": "long enough pw"}), &As::guest()).await;
    let free = app.post("/api/v1/accounts", json!({"username": "newbie", "email": "newbie@example.com", "password": "long enough pw"}), &As::guest()).await;
    assert_eq!(
        (taken.status, free.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(
        (
            &taken.body["account"]["email"],
            &free.body["account"]["email"]
        ),
        (&json!(null), &json!(null))
    );
    for t in [&taken, &free] {
        let me = app
            .get("/api/v1/me", &As::bearer(t.body["token"].as_str().unwrap()))
            .await;
        assert_eq!(me.body["email"], json!(null), "{:?}", me.body);
    }
    let mails = sink.wait_for(2).await;
    let to_holder = mails
        .iter()
        .find(|m| m.to == ["holder@example.com"])
        .expect("the holder is told");
    assert!(
        to_holder.text().contains("already") && to_holder.text().contains("holder"),
        "{}",
        to_holder.text()
    );
    let to_new = mails
        .iter()
        .find(|m| m.to == ["newbie@example.com"])
        .expect("the new address gets a link");
    let link = to_new.link("/mail/account-email?t=");
    let (status, _, page) = app.get_page(&link).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        app.get(
            "/api/v1/me",
            &As::bearer(free.body["token"].as_str().unwrap())
        )
        .await
        .body["email"],
        json!(null),
        "a GET changes nothing"
    );
    let (status, page) = app.post_form(&link, "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        app.get(
            "/api/v1/me",
            &As::bearer(free.body["token"].as_str().unwrap())
        )
        .await
        .body["email"],
        "newbie@example.com"
    );
}

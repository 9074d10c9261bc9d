//! The outside spam check (issue 14 item 1) against a local Akismet-compatible server started
//! here: `comment-check`, `submit-ham` and `submit-spam` answered as Akismet answers them,
//! slowly, or not at all. SQLite by default; PostgreSQL with `CONFAB_TEST_BACKEND=postgres`.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "abcdef123456";

/// One request the fake checker received.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    form: HashMap<String, String>,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    /// How long `comment-check` waits before answering.
    delay: Duration,
}

/// An Akismet-compatible checker: a text containing "viagra" is spam; a key other than
/// [`KEY`] is `invalid`.
#[derive(Clone)]
struct Fake {
    url: String,
    state: Arc<Mutex<FakeState>>,
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap();
                out.push(h);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn fake() -> Fake {
    use axum::extract::{Path, State};
    let state = Arc::new(Mutex::new(FakeState::default()));
    let app = axum::Router::new()
        .route(
            "/1.1/{method}",
            axum::routing::post(
                |State(st): State<Arc<Mutex<FakeState>>>,
                 Path(method): Path<String>,
                 body: axum::body::Bytes| async move {
                    let form = parse_form(&body);
                    let delay = {
                        let mut s = st.lock().unwrap();
                        s.calls.push(Call {
                            method: method.clone(),
                            form: form.clone(),
                        });
                        s.delay
                    };
                    if form.get("api_key").map(String::as_str) != Some(KEY) {
                        return "invalid".to_string();
                    }
                    match method.as_str() {
                        "comment-check" => {
                            tokio::time::sleep(delay).await;
                            let spam = form
                                .get("comment_content")
                                .is_some_and(|c| c.contains("viagra"));
                            spam.to_string()
                        }
                        _ => "Thanks for making the web a better place.".to_string(),
                    }
                },
            ),
        )
        .with_state(state.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    Fake {
        url: format!("http://{addr}/1.1/"),
        state,
    }
}

impl Fake {
    fn calls(&self, method: &str) -> Vec<Call> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }
    fn set_delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }
    /// Waits (up to 15 s) for a call to `method` whose content contains `text`.
    async fn wait_for(&self, method: &str, text: &str) -> Call {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(c) = self
                .calls(method)
                .into_iter()
                .find(|c| c.form["comment_content"].contains(text))
            {
                return c;
            }
            assert!(Instant::now() < deadline, "no {method} for {text:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn spam_config(url: &str) -> confab_server::config::Config {
    let mut c = config();
    fast_tasks(&mut c);
    c.spam.akismet_url = url.to_string();
    c.spam.timeout_ms = 500;
    c.spam.background_timeout_ms = 5000;
    c
}

async fn moderator(app: &TestApp) -> As {
    As::bearer(&app.account("spammod", false, &["demo"]).await)
}

async fn set_spam(app: &TestApp, me: &As, spam: Value) -> Resp {
    app.req(
        Method::PATCH,
        "/api/v1/forums/demo",
        Some(json!({ "spam": spam })),
        me,
    )
    .await
}

/// Posts a guest comment with browser-like headers; the answer and how long it took.
async fn post(app: &TestApp, ident: &str, body: &str) -> (Resp, Duration) {
    let t = Instant::now();
    let r = app
        .http
        .post(format!("{}/api/v1/comments", app.base))
        .header("user-agent", "SpamTest/1.0 (X11)")
        .header("referer", "https://blog.example/post-1")
        .header("accept-language", "de-DE,de;q=0.9")
        .json(&json!({
            "forum": "demo", "ident": ident, "body": body,
            "url": "https://blog.example/post-1",
            "author_name": "Guest Writer", "author_email": "guest@example.org",
            "author_url": "https://guest.example",
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (
        Resp {
            status,
            headers,
            body,
        },
        t.elapsed(),
    )
}

fn id_of(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn queue(app: &TestApp, me: &As, q: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/forums/demo/comments?queue={q}"), me)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["comments"].as_array().unwrap().clone()
}

/// Waits (up to 15 s) until comment `id` is in queue `q`; its held reason.
async fn wait_in_queue(app: &TestApp, me: &As, q: &str, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(c) = queue(app, me, q).await.iter().find(|c| c["id"] == id) {
            return c["held_reason"].as_str().unwrap_or("").to_string();
        }
        assert!(Instant::now() < deadline, "{id} never reached {q}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The public page's comment ids (polled until `want` says yes, up to 15 s: reads may go to a
/// replica).
async fn wait_page(app: &TestApp, ident: &str, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = app.page(ident, "&sort=oldest", &As::guest()).await;
        let got = ids(&page.body["comments"]);
        if want(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "page of {ident}: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn moderate(app: &TestApp, me: &As, id: &str, action: &str) {
    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [id], "action": action}),
            me,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn spam_settings_are_validated_and_the_key_is_masked() {
    let f = fake().await;
    let app = spawn_with(spam_config(&f.url)).await;
    let me = moderator(&app).await;
    let s = app.get("/api/v1/forums/demo", &me).await.body["settings"]["spam"].clone();
    assert_eq!(s, json!({"akismet_key": null, "when_unavailable": "hold"}));

    let r = set_spam(&app, &me, json!({"akismet_key": KEY, "extra": 1})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = set_spam(&app, &me, json!({"when_unavailable": "maybe"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = set_spam(&app, &me, json!({"akismet_key": "no spaces allowed"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("spam.akismet_key"));

    let r = set_spam(
        &app,
        &me,
        json!({"akismet_key": KEY, "when_unavailable": "publish"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let shown = r.body["settings"]["spam"].clone();
    assert_eq!(
        shown,
        json!({"akismet_key": "********456", "when_unavailable": "publish"})
    );
    assert!(!r.body.to_string().contains(KEY), "the key is never shown");
    let read = app.get("/api/v1/forums/demo", &me).await.body;
    assert!(!read.to_string().contains(KEY));
    // The settings sent back as shown keep the key.
    let r = set_spam(&app, &me, shown).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        app.svc.all_forums()[0].settings.spam.akismet_key.as_deref(),
        Some(KEY)
    );
    // Readers' forum answers never carry it either.
    let public = app.get("/api/v1/forums/demo", &As::guest()).await.body;
    assert!(!public.to_string().contains(KEY));
    // "" turns the check off.
    let r = set_spam(&app, &me, json!({"akismet_key": ""})).await;
    assert_eq!(r.body["settings"]["spam"]["akismet_key"], Value::Null);
}

#[tokio::test]
async fn spam_goes_to_the_spam_queue_ham_is_published_and_the_fields_are_sent() {
    let f = fake().await;
    let app = spawn_with(spam_config(&f.url)).await;
    let me = moderator(&app).await;
    let r = set_spam(&app, &me, json!({"akismet_key": KEY})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let (ham, _) = post(&app, "s1", "A thoughtful remark").await;
    assert_eq!(ham.body["status"], "approved", "{:?}", ham.body);
    let ham_id = id_of(&ham);
    let (spam, _) = post(&app, "s1", "cheap viagra here").await;
    assert_eq!(spam.body["status"], "spam", "{:?}", spam.body);
    let spam_id = id_of(&spam);

    let page = wait_page(&app, "s1", |ids| ids.contains(&ham_id)).await;
    assert!(!page.contains(&spam_id), "spam is never public: {page:?}");
    let reason = wait_in_queue(&app, &me, "spam", &spam_id).await;
    assert_eq!(reason, "spam check: Akismet said spam");

    let call = f.wait_for("comment-check", "A thoughtful remark").await;
    let form = &call.form;
    assert_eq!(form["api_key"], KEY);
    assert_eq!(form["user_ip"], "127.0.0.1");
    assert_eq!(form["user_agent"], "SpamTest/1.0 (X11)");
    assert_eq!(form["referrer"], "https://blog.example/post-1");
    assert_eq!(form["permalink"], "https://blog.example/post-1");
    assert_eq!(form["comment_type"], "comment");
    assert_eq!(form["comment_author"], "Guest Writer");
    assert_eq!(form["comment_author_email"], "guest@example.org");
    assert_eq!(form["comment_author_url"], "https://guest.example/");
    assert_eq!(form["comment_content"], "A thoughtful remark");
    assert_eq!(form["blog_lang"], "de-DE");
    assert!(form["blog"].starts_with("http"), "{form:?}");
    assert!(
        form["comment_date_gmt"].ends_with('Z') && form["comment_date_gmt"].contains('T'),
        "{form:?}"
    );
    // Moderators are not checked.
    let n = f.calls("comment-check").len();
    let r = app
        .post_comment("demo", "s1", "mod viagra joke", None, &me)
        .await;
    assert_eq!(r.body["status"], "approved");
    assert_eq!(f.calls("comment-check").len(), n);
}

#[tokio::test]
async fn moderators_verdicts_are_reported_as_ham_and_spam() {
    let f = fake().await;
    let app = spawn_with(spam_config(&f.url)).await;
    let me = moderator(&app).await;
    set_spam(&app, &me, json!({"akismet_key": KEY})).await;

    // The checker called it spam; a moderator approves it: submit-ham.
    let (spam, _) = post(&app, "fb", "viagra, but actually a pharmacology question").await;
    let spam_id = id_of(&spam);
    assert_eq!(spam.body["status"], "spam");
    moderate(&app, &me, &spam_id, "approve").await;
    let ham = f.wait_for("submit-ham", "pharmacology").await;
    assert_eq!(ham.form["user_ip"], "127.0.0.1");
    assert_eq!(ham.form["user_agent"], "SpamTest/1.0 (X11)");
    assert_eq!(ham.form["api_key"], KEY);
    wait_page(&app, "fb", |ids| ids.contains(&spam_id)).await;

    // The checker let it through; a moderator marks it spam: submit-spam.
    let (ok, _) = post(&app, "fb", "buy my totally legit stuff").await;
    let ok_id = id_of(&ok);
    assert_eq!(ok.body["status"], "approved");
    moderate(&app, &me, &ok_id, "spam").await;
    let sp = f.wait_for("submit-spam", "legit stuff").await;
    assert_eq!(sp.form["permalink"], "https://blog.example/post-1");
    wait_page(&app, "fb", |ids| !ids.contains(&ok_id)).await;

    // Each is sent once, however often the worker looks.
    app.settle().await;
    assert_eq!(f.calls("submit-ham").len(), 1);
    assert_eq!(f.calls("submit-spam").len(), 1);
    // Approving a comment held for another reason sends no ham.
    moderate(&app, &me, &ok_id, "approve").await;
    app.settle().await;
    assert_eq!(f.calls("submit-ham").len(), 1);
}

#[tokio::test]
async fn edits_are_checked() {
    let f = fake().await;
    let app = spawn_with(spam_config(&f.url)).await;
    let me = moderator(&app).await;
    set_spam(&app, &me, json!({"akismet_key": KEY})).await;
    let (c, _) = post(&app, "ed", "an innocent first version").await;
    let id = id_of(&c);
    let who = As::edit(c.body["edit_token"].as_str().unwrap());
    let r = app
        .req(
            Method::PATCH,
            &format!("/api/v1/comments/{id}"),
            Some(json!({"body": "now selling viagra"})),
            &who,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    f.wait_for("comment-check", "now selling viagra").await;
    let reason = wait_in_queue(&app, &me, "spam", &id).await;
    assert_eq!(reason, "spam check: Akismet said spam");
    wait_page(&app, "ed", |ids| !ids.contains(&id)).await;
}

#[tokio::test]
async fn a_slow_checker_holds_or_publishes_and_the_background_recheck_moves_spam() {
    let f = fake().await;
    f.set_delay(Duration::from_secs(2));
    let app = spawn_with(spam_config(&f.url)).await;
    let me = moderator(&app).await;
    set_spam(
        &app,
        &me,
        json!({"akismet_key": KEY, "when_unavailable": "hold"}),
    )
    .await;

    // hold: the post answers within the budget (500 ms, plus a margin for a loaded test
    // machine), held; the re-check says spam.
    let (held, took) = post(&app, "slow", "slow viagra offer").await;
    assert!(took < Duration::from_millis(800), "took {took:?}");
    assert_eq!(held.body["status"], "pending", "{:?}", held.body);
    let held_id = id_of(&held);
    let reason = wait_in_queue(&app, &me, "pending", &held_id).await;
    assert!(reason.contains("spam check unavailable"), "{reason}");
    let reason = wait_in_queue(&app, &me, "spam", &held_id).await;
    assert_eq!(reason, "spam check: Akismet said spam");

    // publish: public at once, then taken off the page by the re-check (and live readers
    // are told it was removed).
    set_spam(&app, &me, json!({"when_unavailable": "publish"})).await;
    // The thread exists (the held comment above): readers can follow it live.
    let mut sse =
        crate::live::Sse::open(&app.http, &crate::live::live_url(&app.base, "slow"), None)
            .await
            .expect("live stream");
    let (ham, took) = post(&app, "slow", "a slow but kind word").await;
    assert!(took < Duration::from_millis(800), "took {took:?}");
    let ham_id = id_of(&ham);
    let (pubd, took) = post(&app, "slow", "published viagra deal").await;
    assert!(took < Duration::from_millis(800), "took {took:?}");
    assert_eq!(pubd.body["status"], "approved", "{:?}", pubd.body);
    let pub_id = id_of(&pubd);
    wait_page(&app, "slow", |ids| ids.contains(&pub_id)).await;
    let reason = wait_in_queue(&app, &me, "spam", &pub_id).await;
    assert_eq!(reason, "spam check: Akismet said spam");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ev = sse
            .next(deadline.saturating_duration_since(Instant::now()))
            .await;
        if ev.name == "comment.removed" {
            assert_eq!(ev.data["id"], json!(pub_id));
            break;
        }
    }
    let page = wait_page(&app, "slow", |ids| !ids.contains(&pub_id)).await;
    assert!(page.contains(&ham_id), "ham stays public: {page:?}");
    // The log says who moved it (the checker, no moderator).
    let log = app.get("/api/v1/forums/demo/log", &me).await.body;
    assert!(log.to_string().contains("Akismet said spam"), "{log}");
}

/// A listener that accepts connections and never answers.
async fn black_hole() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    format!("http://{addr}/1.1/")
}

#[tokio::test]
async fn a_dead_checker_opens_the_breaker_and_nothing_is_lost() {
    let url = black_hole().await;
    let mut c = spam_config(&url);
    c.spam.breaker_failures = 2;
    c.spam.breaker_cooldown_secs = 60;
    let app = spawn_with(c).await;
    let me = moderator(&app).await;
    set_spam(
        &app,
        &me,
        json!({"akismet_key": KEY, "when_unavailable": "publish"}),
    )
    .await;
    let mut posted = Vec::new();
    for i in 0..2 {
        let (r, took) = post(&app, "dead", &format!("waiting post {i}")).await;
        assert!(took >= Duration::from_millis(400), "it waited: {took:?}");
        assert!(took < Duration::from_millis(800), "took {took:?}");
        posted.push(id_of(&r));
    }
    assert!(app.svc.spam_breaker_open(), "two failures open the breaker");
    for i in 0..3 {
        let (r, took) = post(&app, "dead", &format!("fast post {i}")).await;
        assert!(
            took < Duration::from_millis(300),
            "the open breaker is not waited for: {took:?}"
        );
        assert_eq!(r.body["status"], "approved");
        posted.push(id_of(&r));
    }
    // Nothing lost: every comment is public (publish), and each has its re-check queued.
    let page = wait_page(&app, "dead", |ids| ids.len() == 5).await;
    for id in &posted {
        assert!(page.contains(id));
    }
    let tasks = app.store.list_tasks(None, None, 1000).await.unwrap();
    let rechecks: Vec<_> = tasks.iter().filter(|t| t.kind == "spam.check").collect();
    assert_eq!(rechecks.len(), 5, "{tasks:#?}");
    assert!(rechecks
        .iter()
        .all(|t| t.state != confab_store::TaskState::Done));

    // A checker port that refuses connections fails fast, and the breaker opens the same way.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/1.1/", l.local_addr().unwrap())
    };
    let mut c = spam_config(&closed);
    c.spam.breaker_failures = 1;
    let app2 = spawn_with(c).await;
    let me2 = moderator(&app2).await;
    set_spam(&app2, &me2, json!({"akismet_key": KEY})).await;
    let (r, _) = post(&app2, "closed", "nobody home").await;
    assert_eq!(r.body["status"], "pending", "hold is the default");
    assert!(app2.svc.spam_breaker_open());
    let reason = wait_in_queue(&app2, &me2, "pending", &id_of(&r)).await;
    assert!(reason.contains("spam check unavailable"), "{reason}");
}

#[tokio::test]
async fn a_wrong_key_is_treated_as_unavailable() {
    let f = fake().await;
    let app = spawn_with(spam_config(&f.url)).await;
    let me = moderator(&app).await;
    set_spam(
        &app,
        &me,
        json!({"akismet_key": "wrong-key", "when_unavailable": "hold"}),
    )
    .await;
    let (r, _) = post(&app, "wk", "viagra with a wrong key").await;
    assert_eq!(r.body["status"], "pending", "{:?}", r.body);
    // The re-check is parked (retrying cannot fix a key), not retried forever.
    let tasks = app.settle().await;
    let t = tasks.iter().find(|t| t.kind == "spam.check").unwrap();
    assert_eq!(t.state, confab_store::TaskState::Parked);
    assert!(!t
        .last_error
        .clone()
        .unwrap_or_default()
        .contains("wrong-key"));
}

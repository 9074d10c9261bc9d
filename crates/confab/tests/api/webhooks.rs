//! Webhooks delivered to a local HTTP receiver: signed, retried, and kept off internal
//! addresses unless allowed.

use crate::helpers::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A webhook receiver: records every request, answers with the queued statuses, then `default`.
#[derive(Clone)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    default: u16,
    pub url: String,
}

impl Receiver {
    pub async fn start(answers: &[u16], default: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let r = Receiver {
            got: Arc::default(),
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            default,
            url,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    pub fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(h, b)| (h.clone(), serde_json::from_slice(b).unwrap()))
            .collect()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxStatus {
    r.got.lock().unwrap().push((headers, body));
    let code = r.answers.lock().unwrap().pop_front().unwrap_or(r.default);
    AxStatus::from_u16(code).unwrap()
}

/// Checks `X-Confab-Signature` the way a receiver would: HMAC-SHA256 of `timestamp.body`.
fn signature_ok(secret: &str, h: &HeaderMap, body: &[u8]) -> bool {
    let ts = h["x-confab-timestamp"].to_str().unwrap();
    let now = confab_core::now_ms() / 1000;
    let age = now - ts.parse::<i64>().unwrap();
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(ts.as_bytes());
    m.update(b".");
    m.update(body);
    let want: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (0..300).contains(&age) && h["x-confab-signature"].to_str().unwrap() == format!("sha256={want}")
}

pub const SECRET: &str = "s3cret-s3cret-s3cret";

/// Sets a forum's webhooks as its moderator would.
pub async fn set_hooks(app: &TestApp, forum: &str, modr: &str, hooks: Value) -> Resp {
    app.req(
        Method::PATCH,
        &format!("/api/v1/forums/{forum}"),
        Some(json!({"webhooks": hooks})),
        &As::bearer(modr),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_retried_until_delivered() {
    let rx = Receiver::start(&[500], 200).await;
    let mut c = config();
    fast_tasks(&mut c);
    let app = spawn_with(c).await;
    app.forum("hooked", json!({})).await;
    let modr = app.account("hookmod", false, &["hooked"]).await;

    for bad in [
        json!([{"url": "ftp://x.example/h", "secret": SECRET, "events": ["comment.created"]}]),
        json!([{"url": rx.url, "secret": "short", "events": ["comment.created"]}]),
        json!([{"url": rx.url, "secret": SECRET, "events": []}]),
        json!([{"url": rx.url, "secret": SECRET, "events": ["comment.liked"]}]),
    ] {
        let r = set_hooks(&app, "hooked", &modr, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
    let r = set_hooks(&app, "hooked", &modr, json!([{"url": rx.url, "secret": SECRET, "events": ["comment.deleted", "comment.created"]}])).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["settings"]["webhooks"][0]["events"],
        json!(["comment.created", "comment.deleted"])
    );

    let posted = app
        .post_comment("hooked", "/h", "hello hooks", None, &As::guest())
        .await;
    let id = posted.body["id"].as_str().unwrap().to_string();
    let tasks = app.settle().await;
    let task = tasks
        .iter()
        .find(|t| t.kind == "webhook")
        .expect("webhook task");
    assert_eq!(
        (task.state.as_str(), task.attempts),
        ("done", 2),
        "{task:?}"
    );
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        2,
        "the first answer was 500, so it was sent again"
    );
    for (h, body) in &got {
        assert!(signature_ok(SECRET, h, body), "{h:?}");
        assert_eq!(h["x-confab-event"], "comment.created");
        assert_eq!(
            h["x-confab-delivery"].to_str().unwrap(),
            task.id.to_string(),
            "the same delivery id on every attempt"
        );
        assert_eq!(h["content-type"], "application/json");
    }
    assert!(!signature_ok("another-secret-value", &got[0].0, &got[0].1));
    let (_, body) = &rx.requests()[1];
    assert_eq!(body["event"], "comment.created");
    assert_eq!(body["delivery"], task.id.to_string());
    assert_eq!(body["forum"], "hooked");
    assert_eq!(body["comment"]["id"], id);
    assert_eq!(body["comment"]["body"], "hello hooks");
    assert_eq!(body["comment"]["status"], "approved");
    assert_eq!(body["comment"]["author"]["name"], "Tester");
    assert_eq!(body["thread"]["ident"], "/h");

    // A moderator deletes it: comment.deleted, with the status and without the text.
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/comments/{id}"),
            None,
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.settle().await;
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].1["event"], "comment.deleted");
    assert_eq!(reqs[2].1["comment"]["status"], "deleted");
    assert_eq!(reqs[2].1["comment"]["body"], "");

    // Approval is not subscribed to: no delivery. Deleting again changes nothing: none either.
    let again = app
        .req(
            Method::DELETE,
            &format!("/api/v1/comments/{id}"),
            None,
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    app.settle().await;
    assert_eq!(rx.requests().len(), 3);

    // A removed endpoint gets nothing, even for events that happened before it was removed.
    let r = set_hooks(&app, "hooked", &modr, json!([])).await;
    assert_eq!(r.status, StatusCode::OK);
    app.post_comment("hooked", "/h", "after removal", None, &As::guest())
        .await;
    app.settle().await;
    assert_eq!(rx.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_internal_addresses_are_refused_unless_allowed() {
    let rx = Receiver::start(&[], 200).await;
    let mut c = config();
    fast_tasks(&mut c);
    c.webhooks.allow_private_targets = false;
    c.tasks.max_attempts = 2;
    let app = spawn_with(c).await;
    app.forum("inside", json!({})).await;
    let modr = app.account("insidemod", false, &["inside"]).await;
    let localhost_url = rx.url.replace("127.0.0.1", "localhost");
    let r = set_hooks(
        &app,
        "inside",
        &modr,
        json!([{"url": rx.url, "secret": SECRET, "events": ["comment.created"]}, {"url": localhost_url, "secret": SECRET, "events": ["comment.created"]}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.post_comment("inside", "/i", "x", None, &As::guest())
        .await;
    let tasks = app.settle().await;
    assert_eq!(tasks.len(), 2);
    let literal = tasks
        .iter()
        .find(|t| t.payload_json()["url"] == rx.url)
        .unwrap();
    assert_eq!(
        (literal.state.as_str(), literal.attempts),
        ("parked", 1),
        "an internal IP is parked at once: {literal:?}"
    );
    assert!(
        literal
            .last_error
            .as_deref()
            .unwrap()
            .contains("internal address"),
        "{literal:?}"
    );
    let named = tasks
        .iter()
        .find(|t| t.payload_json()["url"] == localhost_url)
        .unwrap();
    assert_eq!(
        named.state.as_str(),
        "parked",
        "a name that resolves to one is not called: {named:?}"
    );
    assert!(
        named
            .last_error
            .as_deref()
            .unwrap()
            .contains("no public address"),
        "{named:?}"
    );
    assert!(rx.requests().is_empty());
}

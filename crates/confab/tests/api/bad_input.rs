use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn body(text: &str) -> serde_json::Value {
    json!({"forum": "demo", "ident": "bad", "body": text, "author_name": "B"})
}

#[tokio::test]
async fn invalid_fields_get_400_with_a_code() {
    let app = spawn().await;
    let cases = vec![
        ("empty body", body("")),
        ("blank body", body("   \n  ")),
        ("long body", body(&"x".repeat(10_001))),
        (
            "long name",
            json!({"forum": "demo", "ident": "bad", "body": "x", "author_name": "n".repeat(101)}),
        ),
        (
            "bad email",
            json!({"forum": "demo", "ident": "bad", "body": "x", "author_email": "not-an-email"}),
        ),
        (
            "js url",
            json!({"forum": "demo", "ident": "bad", "body": "x", "author_url": "javascript:alert(1)"}),
        ),
        (
            "long ident",
            json!({"forum": "demo", "ident": "i".repeat(501), "body": "x"}),
        ),
        (
            "empty ident",
            json!({"forum": "demo", "ident": "", "body": "x"}),
        ),
        (
            "control chars",
            json!({"forum": "demo", "ident": "bad", "body": "a\u{0}b"}),
        ),
        ("missing body", json!({"forum": "demo", "ident": "bad"})),
        (
            "wrong type",
            json!({"forum": "demo", "ident": "bad", "body": 5}),
        ),
        (
            "bad parent id",
            json!({"forum": "demo", "ident": "bad", "body": "x", "parent_id": "abc"}),
        ),
    ];
    for (name, b) in cases {
        let r = app.post("/api/v1/comments", b, &As::guest()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {:?}", r.body);
        assert_eq!(r.code(), "invalid_input", "{name}");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }
    let ok = app
        .post("/api/v1/comments", body(&"é".repeat(10_000)), &As::guest())
        .await;
    assert_eq!(
        ok.status,
        StatusCode::CREATED,
        "10,000 characters is allowed"
    );
    let p = app.page("bad", "", &As::guest()).await;
    assert_eq!(
        p.body["thread"]["comment_count"], 1,
        "nothing half-written by the rejected requests"
    );
}

/// Strings that reach storage are checked first: a NUL byte (which PostgreSQL's text cannot
/// hold) or another control character gets a 400 on either backend, never a 500.
#[tokio::test]
async fn control_characters_never_reach_storage() {
    let app = spawn().await;
    let modr = app.account("nulmod", false, &["demo"]).await;
    let c = app.comment("nul", "a comment", None).await;
    let id = c["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/comments/{id}/flag"),
            json!({"reason": "spam\u{0}"}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{:?}",
        r.body
    );
    let r = app
        .get(
            "/api/v1/forums/demo/comments?status=approved&q=a%00b",
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{:?}",
        r.body
    );
    for body in [
        json!({"forum": "demo", "ident": "nul", "body": "x\u{0}y", "author_name": "A"}),
        json!({"forum": "demo", "ident": "n\u{0}l", "body": "x", "author_name": "A"}),
        json!({"forum": "demo", "ident": "nul", "body": "x", "author_name": "A\u{0}"}),
    ] {
        let r = app
            .post("/api/v1/comments", body.clone(), &As::guest())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
    }
}

#[tokio::test]
async fn unknown_things_are_404() {
    let app = spawn().await;
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "nope", "ident": "x", "body": "x"}),
            &As::guest(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = app
        .get("/api/v1/comments?forum=nope&ident=x", &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "x", "body": "x", "parent_id": "999"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for p in [
        "/api/v1/comments/abc/vote",
        "/api/v1/comments/99999999/replies",
        "/api/v1/nothing",
    ] {
        let r = app
            .req(
                if p.ends_with("vote") {
                    Method::POST
                } else {
                    Method::GET
                },
                p,
                Some(json!({"value": 1})),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{p}");
        assert_eq!(r.code(), "not_found");
    }
    let r = app
        .req(
            Method::PUT,
            "/api/v1/comments",
            Some(json!({})),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body["error"]["code"].is_string());
}

#[tokio::test]
async fn reply_from_another_thread_is_refused() {
    let app = spawn().await;
    let a = app.comment("thread-a", "a", None).await;
    let r = app
        .post_comment("demo", "thread-b", "b", a["id"].as_str(), &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let p = app.page("thread-b", "", &As::guest()).await;
    assert!(
        p.body["thread"].is_null(),
        "no thread was created by the failed reply"
    );
}

#[tokio::test]
async fn bodies_must_be_small_json() {
    let app = spawn().await;
    let url = format!("{}/api/v1/comments", app.base);
    let big = format!(
        "{{\"forum\":\"demo\",\"ident\":\"x\",\"body\":\"{}\"}}",
        "a".repeat(64 * 1024)
    );
    let r = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");

    // Chunked (no Content-Length) bodies are cut off at the limit too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..100).map(|_| Ok(vec![b' '; 1024])).collect();
    let stream = futures_util_stream(chunks);
    let r = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let r = app
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unsupported_media_type");
    let r = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("forum=demo")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"forum\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_input");
}

fn futures_util_stream(chunks: Vec<Result<Vec<u8>, std::io::Error>>) -> reqwest::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::spawn(async move {
        for c in chunks {
            if tx.send(c).await.is_err() {
                break;
            }
        }
    });
    reqwest::Body::wrap_stream(ReceiverStream(rx))
}

pub(crate) struct ReceiverStream(
    pub(crate) tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
);

impl futures_core::Stream for ReceiverStream {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn pathological_markdown_at_max_size_is_accepted_and_flattened() {
    let app = spawn().await;
    for (name, input) in confab_core::render::pathological_inputs() {
        let r = app
            .post(
                "/api/v1/comments",
                json!({"forum": "demo", "ident": "patho", "body": input}),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        let html = r.body["body_html"].as_str().unwrap();
        assert!(
            !html.contains("<ul><li><ul><li><ul><li><ul><li><ul><li><ul><li><ul><li>"),
            "{name} nesting flattened"
        );
    }
}

#[tokio::test]
async fn names_and_bodies_with_markup_come_back_inert() {
    let app = spawn().await;
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "xss", "body": "<img src=x onerror=alert(1)>", "author_name": "<script>alert(1)</script>"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The name is data (the JSON string); the widget and dashboard escape it. The body is HTML
    // that was sanitized: the tag is shown as text.
    assert_eq!(r.body["author"]["name"], "<script>alert(1)</script>");
    assert_eq!(
        r.body["body_html"],
        "<p>&lt;img src=x onerror=alert(1)&gt;</p>\n"
    );
}

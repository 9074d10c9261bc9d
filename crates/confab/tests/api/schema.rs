//! What the OpenAPI document promises about inputs and answers, held to the server (the
//! findings of `scripts/schemathesis.sh`, each fixed at its cause).

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Ids are the decimal digits of 0..=2^63-1 (the document's pattern); request bodies take them
/// as JSON integers too. A sign or a leading zero was parsed before and named another id.
#[tokio::test]
async fn ids_are_canonical_decimal_strings_or_integers() {
    let app = spawn().await;
    let modr = app.account("idmod", false, &["demo"]).await;
    let c = app.comment("ids", "parent", None).await;
    let id = c["id"].as_str().unwrap().to_string();
    let n: u64 = id.parse().unwrap();

    for bad in [
        json!(format!("+{id}")),
        json!(format!("0{id}")),
        json!(format!(" {id}")),
        json!(-1),
        json!(1.5),
        json!("9223372036854775808"),
    ] {
        let b = json!({"forum": "demo", "ident": "ids", "body": "reply", "parent_id": bad});
        let r = app.post("/api/v1/comments", b, &As::guest()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "parent_id {bad}: {:?}",
            r.body
        );
    }
    // The lenient form: a JSON integer.
    let b = json!({"forum": "demo", "ident": "ids", "body": "reply", "parent_id": n});
    let r = app.post("/api/v1/comments", b, &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["parent_id"], json!(id));

    // In a path, anything but the canonical form names nothing.
    for path in [format!("+{id}"), format!("0{id}"), format!("-{id}")] {
        let r = app
            .req(
                Method::PATCH,
                &format!("/api/v1/comments/{path}"),
                Some(json!({"body": "x"})),
                &As::bearer(&modr),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {:?}", r.body);
    }
    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [n], "action": "spam"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["changed"]),
        (StatusCode::OK, &json!(1)),
        "{:?}",
        r.body
    );

    // Log and account ids likewise.
    let r = app
        .get("/api/v1/forums/demo/log?before=-1", &As::bearer(&modr))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "bad_cursor"),
        "{:?}",
        r.body
    );
    let r = app
        .get("/api/v1/forums/demo/log?before=", &As::bearer(&modr))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "account", "value": "+5"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{:?}",
        r.body
    );
    let r = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "account", "value": "5"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// JSON Schema counts 1.0 as the integer 1; so does the server now (it answered 400).
#[tokio::test]
async fn integral_numbers_are_integers() {
    let app = spawn().await;
    let modr = app.account("intmod", false, &["demo"]).await;
    let c = app.comment("ints", "like me", None).await;
    let id = c["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/comments/{id}/vote"),
            json!({"value": 1.0}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["my_vote"]),
        (StatusCode::OK, &json!(1)),
        "{:?}",
        r.body
    );
    let r = app
        .post(
            &format!("/api/v1/comments/{id}/vote"),
            json!({"value": 0.5}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"edit_window_secs": 60.0})),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["settings"]["edit_window_secs"]),
        (StatusCode::OK, &json!(60)),
        "{:?}",
        r.body
    );
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"edit_window_secs": 60.5})),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "email", "value": "a@b.example", "expires_in_secs": 3600.0}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// A page cursor is checked whoever reads and whether or not the thread exists: a moderator
/// reading a thread with no comments got 200 for any cursor, everyone else 400.
#[tokio::test]
async fn a_bad_cursor_is_refused_for_every_reader() {
    let app = spawn().await;
    let modr = app.account("curmod", false, &["demo"]).await;
    for who in [As::guest(), As::bearer(&modr)] {
        let r = app
            .get(
                "/api/v1/comments?forum=demo&ident=no-such-thread&cursor=garbage",
                &who,
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "bad_cursor"),
            "{who:?}: {:?}",
            r.body
        );
    }
}

/// Lengths of e-mail addresses and URLs are counted in characters, as the document's
/// `maxLength` counts them (they were bytes, so non-ASCII values the document allowed got 400).
#[tokio::test]
async fn lengths_are_in_characters() {
    let app = spawn().await;
    let local = "é".repeat(64);
    let b = json!({"forum": "demo", "ident": "len", "body": "x", "author_email": format!("{local}@example.com")});
    let r = app.post("/api/v1/comments", b, &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b = json!({"forum": "demo", "ident": "len", "body": "x", "author_email": format!("{local}é@example.com")});
    let r = app.post("/api/v1/comments", b, &As::guest()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let url = format!("https://example.com/{}", "é".repeat(480));
    assert_eq!(url.chars().count(), 500);
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "len", "body": "x", "author_url": url}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "len", "body": "x", "author_url": format!("{url}é")}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
}

/// The WebSocket endpoint answers a plain request in the API's error shape (it was text/plain).
#[tokio::test]
async fn websocket_endpoint_refuses_plain_requests_as_json() {
    let app = spawn().await;
    let r = app
        .get("/api/v1/threads/live/ws?forum=demo&ident=ws", &As::guest())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{:?}",
        r.body
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
}

fn doc_of(r: &Resp) -> Value {
    assert_eq!(r.status, StatusCode::OK);
    r.body.clone()
}

/// Every operation lists the answers every request can get; operations that read a JSON body
/// list its rejections; the limits in the document are the server's own.
#[tokio::test]
async fn the_document_lists_every_answer_and_the_configured_limits() {
    let mut c = config();
    c.limits.max_body_chars = 20;
    c.limits.page_max = 7;
    let app = spawn_with(c).await;
    let doc = doc_of(&app.get("/api/openapi.json", &As::guest()).await);
    let mut ops = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            ops += 1;
            let codes = op["responses"].as_object().unwrap();
            for code in ["413", "503"] {
                assert!(codes.contains_key(code), "{method} {path} lists {code}");
            }
            if op.get("requestBody").is_some() {
                for code in ["400", "415"] {
                    assert!(codes.contains_key(code), "{method} {path} lists {code}");
                }
            }
            if path.starts_with("/api/v1/forums") {
                for code in ["401", "403"] {
                    assert!(codes.contains_key(code), "{method} {path} lists {code}");
                }
            }
            if method != "get" && path.starts_with("/api/v1/") {
                assert!(codes.contains_key("429"), "{method} {path} lists 429");
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if path.contains(&format!("{{{}}}", p["name"].as_str().unwrap())) {
                    assert_eq!(p["in"], "path");
                } else {
                    assert_ne!(
                        p["in"], "path",
                        "{method} {path}: {} is not in the path",
                        p["name"]
                    );
                }
            }
        }
    }
    assert_eq!(ops, 80);
    let body = &doc["components"]["schemas"]["NewCommentBody"]["properties"]["body"]["allOf"][0]
        ["pattern"];
    assert!(body.as_str().unwrap().contains("{0,19}"), "{body}");
    let limit = doc["paths"]["/api/v1/comments"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["maximum"], 7);
    let r = app
        .get("/api/v1/comments?forum=demo&ident=x&limit=8", &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

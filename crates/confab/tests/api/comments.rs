use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn unknown_thread_is_empty_not_404() {
    let app = spawn().await;
    let r = app.page("/never/commented", "", &As::guest()).await;
    assert_eq!(r.body["thread"], serde_json::Value::Null);
    assert_eq!(r.body["comments"], json!([]));
    assert_eq!(r.body["next_cursor"], serde_json::Value::Null);
}

#[tokio::test]
async fn post_creates_thread_and_urls_of_one_page_share_it() {
    let app = spawn().await;
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "https://blog.example/post/1?utm_source=tw#c", "url": "https://blog.example/post/1",
                   "title": "Post one", "body": "Hello *there*", "author_name": "Ann", "author_email": "ann@example.com",
                   "author_url": "https://ann.example"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id is a string");
    assert!(id.parse::<i64>().is_ok());
    assert_eq!(r.body["body_html"], "<p>Hello <em>there</em></p>\n");
    assert_eq!(r.body["author"]["name"], "Ann");
    assert_eq!(r.body["author"]["url"], "https://ann.example/");
    assert!(
        r.body.get("author_email").is_none(),
        "e-mail never shown publicly"
    );
    assert!(r.body["edit_token"].is_string());
    assert!(r.body["anon_token"].is_string());

    for variant in [
        "/post/1",
        "http://www.blog.example/post/1/",
        "https://blog.example/post/1?fbclid=x",
    ] {
        let p = app.page(variant, "", &As::guest()).await;
        assert_eq!(p.body["thread"]["title"], "Post one");
        assert_eq!(p.body["thread"]["comment_count"], 1);
        assert_eq!(ids(&p.body["comments"]), vec![id.to_string()]);
    }
}

#[tokio::test]
async fn replies_nest_and_depth_is_capped() {
    let app = spawn().await;
    let root = app.comment("t", "root", None).await;
    let mut parent = root["id"].as_str().unwrap().to_string();
    let mut depths = Vec::new();
    for i in 0..8 {
        let c = app.comment("t", &format!("reply {i}"), Some(&parent)).await;
        depths.push(c["depth"].as_i64().unwrap());
        parent = c["id"].as_str().unwrap().to_string();
    }
    // max_depth is 5: deeper replies attach to the deepest allowed ancestor.
    assert_eq!(depths, vec![1, 2, 3, 4, 5, 5, 5, 5]);
    let p = app.page("t", "", &As::guest()).await;
    let top = &p.body["comments"][0];
    assert_eq!(top["reply_count"], 1);
    // Three levels are nested into the page (display_depth); the rest via a replies cursor.
    let l3 = &top["replies"][0]["replies"][0]["replies"][0];
    assert_eq!(l3["depth"], 3);
    assert_eq!(l3["replies"], json!([]));
    let cursor = l3["replies_cursor"]
        .as_str()
        .expect("cursor for deeper replies");
    let more = app
        .get(
            &format!(
                "/api/v1/comments/{}/replies?cursor={cursor}",
                l3["id"].as_str().unwrap()
            ),
            &As::guest(),
        )
        .await;
    assert_eq!(more.status, StatusCode::OK, "{:?}", more.body);
    assert_eq!(more.body["comments"][0]["depth"], 4);
    assert_eq!(
        ids(&more.body["comments"]).len(),
        5,
        "depth 4, then four at depth 5 nested below it"
    );
}

#[tokio::test]
async fn many_replies_get_a_cursor_and_page_through() {
    let app = spawn().await;
    let root = app.comment("r", "root", None).await;
    let rid = root["id"].as_str().unwrap();
    let mut want = Vec::new();
    for i in 0..12 {
        want.push(
            app.comment("r", &format!("r{i}"), Some(rid)).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let p = app.page("r", "", &As::guest()).await;
    let top = &p.body["comments"][0];
    assert_eq!(top["reply_count"], 12);
    let shown = ids(&top["replies"]);
    assert_eq!(
        shown,
        want[..5].to_vec(),
        "first five replies, oldest first"
    );
    let mut cursor = top["replies_cursor"].as_str().unwrap().to_string();
    let mut got = shown;
    loop {
        let r = app
            .get(
                &format!("/api/v1/comments/{rid}/replies?limit=4&cursor={cursor}"),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        got.extend(ids(&r.body["comments"]));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(got, want);
}

#[tokio::test]
async fn votes_never_double_count() {
    let app = spawn().await;
    let c = app.comment("v", "vote on me", None).await;
    let path = format!("/api/v1/comments/{}/vote", c["id"].as_str().unwrap());
    let first = app.post(&path, json!({"value": 1}), &As::guest()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let token = first.body["anon_token"]
        .as_str()
        .expect("new voter gets a token")
        .to_string();
    let me = As::anon(&token);
    for _ in 0..3 {
        let r = app.post(&path, json!({"value": 1}), &me).await;
        assert_eq!(
            (r.body["likes"].as_i64(), r.body["dislikes"].as_i64()),
            (Some(1), Some(0))
        );
        assert!(r.body["anon_token"].is_null());
    }
    let r = app.post(&path, json!({"value": -1}), &me).await;
    assert_eq!(
        (
            r.body["likes"].as_i64(),
            r.body["dislikes"].as_i64(),
            r.body["my_vote"].as_i64()
        ),
        (Some(0), Some(1), Some(-1))
    );
    // Another voter (tokenless requests from this address are the same voter: see hardening).
    let (_, other_token) = app.svc.new_anon_token();
    let other = app
        .post(&path, json!({"value": -1}), &As::anon(&other_token))
        .await;
    assert_eq!(other.body["dislikes"], 2);
    let r = app.post(&path, json!({"value": 0}), &me).await;
    assert_eq!(
        (r.body["likes"].as_i64(), r.body["dislikes"].as_i64()),
        (Some(0), Some(1))
    );
    let bad = app.post(&path, json!({"value": 2}), &me).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let p = app.page("v", "", &As::guest()).await;
    assert_eq!(p.body["comments"][0]["dislikes"], 1);
    let missing = app
        .post("/api/v1/comments/12345/vote", json!({"value": 1}), &me)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// A voter reads back its own votes: an account's on any device, a token's with that token.
#[tokio::test]
async fn voters_read_back_their_own_votes() {
    let app = spawn().await;
    let ids: Vec<String> = (0..3).map(|i| format!("{i}")).collect();
    let mut cs = Vec::new();
    for body in &ids {
        cs.push(
            app.comment("mine", body, None).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let q = |ids: &[String]| {
        format!(
            "/api/v1/votes?{}",
            ids.iter()
                .map(|i| format!("id={i}"))
                .collect::<Vec<_>>()
                .join("&")
        )
    };
    let reader = As::bearer(&app.account("reader", false, &[]).await);
    app.post(
        &format!("/api/v1/comments/{}/vote", cs[0]),
        json!({"value": 1}),
        &reader,
    )
    .await;
    app.post(
        &format!("/api/v1/comments/{}/vote", cs[2]),
        json!({"value": -1}),
        &reader,
    )
    .await;
    let other = app
        .post(
            &format!("/api/v1/comments/{}/vote", cs[1]),
            json!({"value": 1}),
            &As::guest(),
        )
        .await;
    let anon = As::anon(other.body["anon_token"].as_str().unwrap());

    // A new session of the same account (another device) sees the same votes.
    let login = app
        .post(
            "/api/v1/sessions",
            json!({"login": "reader", "password": "correct horse battery"}),
            &As::guest(),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
    let again = As::bearer(login.body["token"].as_str().unwrap());
    let r = app.get(&q(&cs), &again).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["votes"],
        json!({cs[0].clone(): 1, cs[2].clone(): -1})
    );
    assert_eq!(r.headers.get("cache-control").unwrap(), "private, no-store");
    let r = app.get(&q(&cs), &anon).await;
    assert_eq!(
        r.body["votes"],
        json!({cs[1].clone(): 1}),
        "the token's vote only"
    );
    let r = app.get(&q(&cs), &As::guest()).await;
    assert_eq!(r.body["votes"], json!({}), "no account, no token: no votes");
    // Withdrawn votes are gone.
    app.post(
        &format!("/api/v1/comments/{}/vote", cs[0]),
        json!({"value": 0}),
        &reader,
    )
    .await;
    assert_eq!(
        app.get(&q(&cs), &again).await.body["votes"],
        json!({cs[2].clone(): -1})
    );

    for bad in [
        "/api/v1/votes",
        "/api/v1/votes?id=nope",
        &q(&vec!["1".to_string(); 201]),
    ] {
        let r = app.get(bad, &reader).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn best_sort_follows_votes() {
    let app = spawn().await;
    let a = app.comment("b", "a", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.comment("b", "b", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = app.comment("b", "c", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/api/v1/comments/{c}/vote"),
        json!({"value": 1}),
        &As::guest(),
    )
    .await;
    app.post(
        &format!("/api/v1/comments/{a}/vote"),
        json!({"value": -1}),
        &As::guest(),
    )
    .await;
    let best = app.page("b", "&sort=best", &As::guest()).await;
    assert_eq!(
        ids(&best.body["comments"]),
        vec![c.clone(), b.clone(), a.clone()]
    );
    let newest = app.page("b", "&sort=newest", &As::guest()).await;
    assert_eq!(
        ids(&newest.body["comments"]),
        vec![c.clone(), b.clone(), a.clone()]
    );
    let oldest = app.page("b", "&sort=oldest", &As::guest()).await;
    assert_eq!(ids(&oldest.body["comments"]), vec![a, b, c]);
}

#[tokio::test]
async fn counts_for_many_idents_in_one_request() {
    let app = spawn().await;
    app.comment("/a", "1", None).await;
    app.comment("/a", "2", None).await;
    app.comment("/b", "1", None).await;
    let r = app
        .get(
            "/api/v1/counts?forum=demo&ident=/a&ident=https://x.example/b?utm_medium=m&ident=/none",
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["counts"],
        json!({"/a": 2, "https://x.example/b?utm_medium=m": 1, "/none": 0})
    );
    let many: String = (0..101).map(|i| format!("&ident=i{i}")).collect();
    let r = app
        .get(&format!("/api/v1/counts?forum=demo{many}"), &As::guest())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let r = app.get("/api/v1/counts?ident=a", &As::guest()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn guests_edit_and_delete_with_their_token_only() {
    let app = spawn().await;
    let c = app.comment("e", "first", None).await;
    let id = c["id"].as_str().unwrap();
    let token = c["edit_token"].as_str().unwrap();
    let path = format!("/api/v1/comments/{id}");

    let none = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"body": "x"})),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let other = app.comment("e", "second", None).await;
    let wrong = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"body": "x"})),
            &As::edit(other["edit_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let forged = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"body": "x"})),
            &As::edit(&format!("{token}x")),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let ok = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"body": "edited **now**"})),
            &As::edit(token),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["body_html"], "<p>edited <strong>now</strong></p>\n");
    assert!(ok.body["edited_at"].is_string());
    let p = app.page("e", "&sort=oldest", &As::guest()).await;
    assert_eq!(p.body["comments"][0]["body"], "edited **now**");

    let del = app.req(Method::DELETE, &path, None, &As::edit(token)).await;
    assert_eq!(del.status, StatusCode::OK, "{:?}", del.body);
    let p = app.page("e", "&sort=oldest", &As::guest()).await;
    assert_eq!(
        ids(&p.body["comments"]),
        vec![other["id"].as_str().unwrap().to_string()]
    );
    assert_eq!(p.body["thread"]["comment_count"], 1);
    let again = app.req(Method::DELETE, &path, None, &As::edit(token)).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleted_comment_with_replies_stays_as_a_tombstone() {
    let app = spawn().await;
    let c = app.comment("tomb", "parent", None).await;
    let id = c["id"].as_str().unwrap();
    app.comment("tomb", "child", Some(id)).await;
    let del = app
        .req(
            Method::DELETE,
            &format!("/api/v1/comments/{id}"),
            None,
            &As::edit(c["edit_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(del.status, StatusCode::OK);
    let p = app.page("tomb", "", &As::guest()).await;
    let top = &p.body["comments"][0];
    assert_eq!(top["status"], "deleted");
    assert_eq!(top["body_html"], "");
    assert_eq!(top["author"]["name"], "[deleted]");
    assert_eq!(top["replies"][0]["body"], "child");
}

#[tokio::test]
async fn edit_window_closes() {
    let app = spawn().await;
    app.forum("nowin", json!({"edit_window_secs": 0})).await;
    let r = app
        .post_comment("nowin", "w", "hi", None, &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let path = format!("/api/v1/comments/{}", r.body["id"].as_str().unwrap());
    let e = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"body": "late"})),
            &As::edit(r.body["edit_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        (e.status, e.code()),
        (StatusCode::FORBIDDEN, "edit_window_closed")
    );
}

#[tokio::test]
async fn signed_in_authors_edit_their_own_and_moderators_any() {
    let app = spawn().await;
    let ann = app.account("ann", false, &[]).await;
    let bob = app.account("bob", false, &[]).await;
    let modr = app.account("mod", false, &["demo"]).await;
    let c = app
        .post_comment("demo", "acc", "mine", None, &As::bearer(&ann))
        .await;
    assert_eq!(c.status, StatusCode::CREATED);
    assert_eq!(c.body["author"]["name"], "ann");
    assert!(c.body["edit_token"].is_null());
    let path = format!("/api/v1/comments/{}", c.body["id"].as_str().unwrap());
    let r = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"body": "bob was here"})),
            &As::bearer(&bob),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"body": "still mine"})),
            &As::bearer(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .req(Method::DELETE, &path, None, &As::bearer(&modr))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "deleted");
}

#[tokio::test]
async fn idempotency_key_returns_the_first_result() {
    let app = spawn().await;
    let send = |key: &'static str, body: &'static str| {
        app.http
            .post(format!("{}/api/v1/comments", app.base))
            .header("idempotency-key", key)
            .json(&json!({"forum": "demo", "ident": "idem", "body": body, "author_name": "A"}))
            .send()
    };
    // Two at once with one key: one comment, the same answer twice. The first pair creates the
    // thread; the later ones post to the thread that exists (on PostgreSQL, the one-statement
    // post, where the second request meets the first's key as it commits).
    for (key, count) in [("k-123", 1), ("k-456", 2), ("k-456", 2), ("k-789", 3)] {
        let (a, b) = tokio::join!(send(key, "once"), send(key, "once"));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            (a.status(), b.status()),
            (StatusCode::CREATED, StatusCode::CREATED)
        );
        let (a, b): (serde_json::Value, serde_json::Value) =
            (a.json().await.unwrap(), b.json().await.unwrap());
        assert_eq!(a["id"], b["id"]);
        // A later retry gets the same comment.
        let c: serde_json::Value = send(key, "once").await.unwrap().json().await.unwrap();
        assert_eq!(c["id"], a["id"]);
        let p = app.page("idem", "", &As::guest()).await;
        assert_eq!(p.body["thread"]["comment_count"], count, "after {key}");
    }
}

#[tokio::test]
async fn etag_gives_304_until_the_thread_changes() {
    let app = spawn().await;
    app.comment("etag", "one", None).await;
    let p = app.page("etag", "", &As::guest()).await;
    let etag = p.header("etag").expect("etag").to_string();
    let r = app
        .http
        .get(format!(
            "{}/api/v1/comments?forum=demo&ident=etag",
            app.base
        ))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    app.comment("etag", "two", None).await;
    let r = app
        .http
        .get(format!(
            "{}/api/v1/comments?forum=demo&ident=etag",
            app.base
        ))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test]
async fn pages_are_gzipped_for_clients_that_take_it() {
    use std::io::Read;
    let app = spawn().await;
    for i in 0..20 {
        app.comment(
            "gz",
            &format!("comment number {i}, long enough that the page is worth compressing"),
            None,
        )
        .await;
    }
    let url = format!("{}/api/v1/comments?forum=demo&ident=gz", app.base);
    let get = |enc: Option<&'static str>, inm: Option<String>| {
        let mut r = app.http.get(&url);
        if let Some(e) = enc {
            r = r.header("accept-encoding", e);
        }
        if let Some(t) = inm {
            r = r.header("if-none-match", t);
        }
        r.send()
    };
    let plain = get(None, None).await.unwrap();
    assert_eq!(plain.headers().get("content-encoding"), None);
    let plain_etag = plain.headers()["etag"].to_str().unwrap().to_string();
    let plain_body = plain.bytes().await.unwrap();

    let gz = get(Some("br, gzip"), None).await.unwrap();
    assert_eq!(gz.status(), StatusCode::OK);
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert!(gz
        .headers()
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().contains("accept-encoding")));
    let gz_etag = gz.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(
        gz_etag, plain_etag,
        "each encoding has its own strong validator"
    );
    let packed = gz.bytes().await.unwrap();
    assert!(
        packed.len() * 3 < plain_body.len(),
        "{} -> {} bytes",
        plain_body.len(),
        packed.len()
    );
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain_body);

    // Validators follow the encoding the client would get.
    assert_eq!(
        get(Some("gzip"), Some(gz_etag.clone()))
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_MODIFIED
    );
    let r = get(None, Some(gz_etag.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("content-encoding"), None);
    let r = get(Some("gzip;q=0"), None).await.unwrap();
    assert_eq!(
        r.headers().get("content-encoding"),
        None,
        "q=0 refuses gzip"
    );
    assert_eq!(
        get(None, Some(plain_etag)).await.unwrap().status(),
        StatusCode::NOT_MODIFIED
    );
}

#[tokio::test]
async fn flags_count_once_per_flagger() {
    let app = spawn().await;
    let modr = app.account("fmod", false, &["demo"]).await;
    let c = app.comment("flag", "rude", None).await;
    let path = format!("/api/v1/comments/{}/flag", c["id"].as_str().unwrap());
    let r = app
        .post(&path, json!({"reason": "rude"}), &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let me = As::anon(r.body["anon_token"].as_str().unwrap());
    app.post(&path, json!({}), &me).await;
    app.post(&path, json!({}), &me).await;
    let q = app
        .get(
            "/api/v1/forums/demo/comments?queue=flagged",
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(q.status, StatusCode::OK, "{:?}", q.body);
    assert_eq!(q.body["comments"][0]["flag_count"], 1);
    // Approving dismisses the flags.
    let a = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [c["id"]], "action": "approve"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(a.body["changed"], 1);
    let q = app
        .get(
            "/api/v1/forums/demo/comments?queue=flagged",
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(q.body["comments"], json!([]));
}

#[tokio::test]
async fn openapi_document_matches_snapshot() {
    let app = spawn().await;
    let r = app
        .http
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc = r.text().await.unwrap();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &doc).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .expect("snapshot exists (run with UPDATE_SNAPSHOTS=1 to create)");
    assert!(
        doc == want,
        "OpenAPI document changed; review and run with UPDATE_SNAPSHOTS=1"
    );
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    for p in [
        "/api/v1/comments",
        "/api/v1/comments/{id}/vote",
        "/api/v1/counts",
        "/api/v1/me",
        "/api/v1/forums/{forum}/moderate",
    ] {
        assert!(v["paths"][p].is_object(), "{p} documented");
    }
}

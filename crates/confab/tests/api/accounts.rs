use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn sign_up_log_in_me_log_out() {
    let app = spawn().await;
    let r = app
        .post("/api/v1/accounts", json!({"username": "carol", "email": "carol@example.com", "password": "long enough pw", "display_name": "Carol C"}), &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["account"]["display_name"], "Carol C");
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.contains("confab_session=") && c.contains("HttpOnly")));
    let dup = app
        .post(
            "/api/v1/accounts",
            json!({"username": "CAROL", "password": "long enough pw"}),
            &As::guest(),
        )
        .await;
    assert_eq!((dup.status, dup.code()), (StatusCode::CONFLICT, "conflict"));
    let weak = app
        .post(
            "/api/v1/accounts",
            json!({"username": "dave", "password": "short"}),
            &As::guest(),
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);

    let bad = app
        .post(
            "/api/v1/sessions",
            json!({"login": "carol", "password": "wrong password"}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let nobody = app
        .post(
            "/api/v1/sessions",
            json!({"login": "nobody", "password": "wrong password"}),
            &As::guest(),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    let ok = app
        .post(
            "/api/v1/sessions",
            json!({"login": "carol@example.com", "password": "long enough pw"}),
            &As::guest(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let token = ok.body["token"].as_str().unwrap().to_string();

    let me = app.get("/api/v1/me", &As::bearer(&token)).await;
    assert_eq!(me.body["username"], "carol");
    let cookie = As {
        cookie: Some(format!("confab_session={token}")),
        ..As::default()
    };
    assert_eq!(
        app.get("/api/v1/me", &cookie).await.body["username"],
        "carol"
    );
    assert_eq!(
        app.get("/api/v1/me", &As::guest()).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/me", &As::bearer("forged.token"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // An anonymous-voter token is not a session.
    let anon = app
        .post(
            &format!(
                "/api/v1/comments/{}/vote",
                app.comment("x", "x", None).await["id"].as_str().unwrap()
            ),
            json!({"value": 1}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        app.get(
            "/api/v1/me",
            &As::bearer(anon.body["anon_token"].as_str().unwrap())
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );

    let out = app
        .req(Method::DELETE, "/api/v1/sessions", None, &cookie)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
}

#[tokio::test]
async fn guest_posting_off_requires_sign_in() {
    let app = spawn().await;
    app.forum("members", json!({"guest_posting": false})).await;
    let r = app
        .post_comment("members", "m", "hi", None, &As::guest())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "guest_posting_disabled")
    );
    let t = app.account("member", false, &[]).await;
    let r = app
        .post_comment("members", "m", "hi", None, &As::bearer(&t))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn writes_from_foreign_origins_are_refused() {
    let app = spawn().await;
    app.forum("site", json!({})).await;
    let evil = As::guest().origin("https://evil.example");
    let r = app.post_comment("site", "o", "hi", None, &evil).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "origin_not_allowed")
    );
    let good = As::guest().origin("https://site.example");
    assert_eq!(
        app.post_comment("site", "o", "hi", None, &good)
            .await
            .status,
        StatusCode::CREATED
    );
    // demo accepts any localhost port.
    let local = As::guest().origin("http://localhost:4321");
    assert_eq!(
        app.post_comment("demo", "o", "hi", None, &local)
            .await
            .status,
        StatusCode::CREATED
    );
    // Cookie-authenticated sign-in from a foreign origin is refused too.
    let r = app
        .post(
            "/api/v1/sessions",
            json!({"login": "x", "password": "y"}),
            &evil,
        )
        .await;
    assert_eq!(r.code(), "origin_not_allowed");

    // CORS: preflights succeed only for origins some forum lists.
    let pre = |origin: &'static str| {
        app.http
            .request(Method::OPTIONS, format!("{}/api/v1/comments", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = pre("https://site.example").await.unwrap();
    assert_eq!(
        ok.headers().get("access-control-allow-origin").unwrap(),
        "https://site.example"
    );
    let bad = pre("https://evil.example").await.unwrap();
    assert!(bad.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut c = config();
    c.rate_limit.enabled = true;
    c.rate_limit.writes_per_minute_ip = 3;
    let app = spawn_with(c).await;
    for _ in 0..3 {
        assert_eq!(
            app.post_comment("demo", "rl", "x", None, &As::guest())
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let r = app
        .post_comment("demo", "rl", "x", None, &As::guest())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Reads are not limited.
    assert_eq!(
        app.get("/api/v1/comments?forum=demo&ident=rl", &As::guest())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn previews_have_an_allowance_of_their_own() {
    let mut c = config();
    c.rate_limit.enabled = true;
    c.rate_limit.writes_per_minute_ip = 2;
    c.rate_limit.previews_per_minute_ip = 5;
    let app = spawn_with(c).await;
    // A reader previews as often as the preview allowance lets them…
    for i in 0..5 {
        let r = app
            .post(
                "/api/v1/preview",
                json!({"body": format!("draft {i}")}),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let r = app
        .post("/api/v1/preview", json!({"body": "one more"}), &As::guest())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    // …and can still post every comment the write allowance gives.
    for _ in 0..2 {
        let r = app
            .post_comment("demo", "pv", "x", None, &As::guest())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
}

/// Addresses compare with ASCII letters folded and every other character as written, on
/// either backend and whatever the database's locale: `Zoë` and `zoë` are one address,
/// `zoë` and `zoË` are two.
#[tokio::test]
async fn addresses_fold_ascii_case_only_on_every_backend() {
    let app = spawn().await;
    let r = app
        .post(
            "/api/v1/accounts",
            json!({"username": "zoe", "email": "Zoë.Ünal@example.org", "password": "long enough pw"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let login = |l: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/sessions",
                json!({"login": l, "password": "long enough pw"}),
                &As::guest(),
            )
            .await
            .status
        }
    };
    assert_eq!(login("Zoë.Ünal@example.org").await, StatusCode::OK);
    assert_eq!(login("ZOë.ÜNAL@EXAMPLE.ORG").await, StatusCode::OK);
    assert_eq!(
        login("zoë.ünal@example.org").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login("ZOË.ÜNAL@example.org").await,
        StatusCode::UNAUTHORIZED
    );
    // The same rule decides which address is taken: the folded twin is, the other is not.
    let twin = app
        .post(
            "/api/v1/accounts",
            json!({"username": "zoe2", "email": "zoë.Ünal@example.org", "password": "long enough pw"}),
            &As::guest(),
        )
        .await;
    assert_eq!(twin.status, StatusCode::CREATED, "{:?}", twin.body);
    let other = app
        .post(
            "/api/v1/accounts",
            json!({"username": "zoe3", "email": "zoË.ünal@example.org", "password": "long enough pw"}),
            &As::guest(),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{:?}", other.body);
    // Only the distinct address was attached: it logs in, the twin's account has none.
    let t = app
        .post(
            "/api/v1/sessions",
            json!({"login": "zoË.ünal@example.org", "password": "long enough pw"}),
            &As::guest(),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK);
    let me = app
        .get(
            "/api/v1/me",
            &As::bearer(t.body["token"].as_str().unwrap_or_default()),
        )
        .await;
    assert_eq!(me.body["username"], "zoe3");
}

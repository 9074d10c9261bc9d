//! SSO from a forum's site (`POST /api/v1/sessions/sso`): both token formats, each refusal,
//! per-forum accounts that are never moderators, and the write-only secret.

use crate::helpers::*;
use confab_core::sso::{sign_jwt_hs256, sign_remote_auth_s3, SsoSecret};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SECRET: &str = "site-secret-0123456789";
const SITE: &str = "https://site.example";

fn now() -> i64 {
    confab_core::now_ms() / 1000
}

fn secret() -> SsoSecret {
    SsoSecret::parse(SECRET).unwrap()
}

fn s3(user: Value) -> String {
    sign_remote_auth_s3(&secret(), &user, now())
}

fn ann() -> Value {
    json!({"id": 42, "username": "Ann Site", "email": "ann@site.example",
           "avatar": "https://site.example/ann.png", "url": "https://site.example/~ann"})
}

fn site() -> As {
    As::guest().origin(SITE)
}

/// A forum with the SSO secret set through the API by a moderator, as the dashboard does.
async fn forum_with_secret(app: &TestApp, name: &str, staff: &str) {
    app.forum(name, json!({})).await;
    set_secret(app, name, staff).await;
}

async fn set_secret(app: &TestApp, name: &str, staff: &str) {
    let r = app
        .req(
            Method::PATCH,
            &format!("/api/v1/forums/{name}"),
            Some(json!({"sso_secret": SECRET})),
            &As::bearer(staff),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["sso"], true);
}

async fn sso(app: &TestApp, body: Value, who: &As) -> Resp {
    app.post("/api/v1/sessions/sso", body, who).await
}

#[tokio::test]
async fn remote_auth_s3_signs_in_like_sign_in() {
    let app = spawn().await;
    let staff = app.account("boss", true, &[]).await;
    app.forum("blog", json!({})).await;

    // No secret yet.
    let r = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(ann())}),
        &site(),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "sso_not_configured"),
        "{:?}",
        r.body
    );

    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/blog",
            Some(json!({"sso_secret": SECRET})),
            &As::bearer(&staff),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let r = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(ann())}),
        &site(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The answer of sign-in: the account, a bearer token and the session cookie.
    assert_eq!(r.body["account"]["display_name"], "Ann Site");
    assert_eq!(r.body["account"]["is_staff"], false);
    assert_eq!(r.body["account"]["moderates"], json!([]));
    assert_eq!(
        r.body["account"]["email"],
        Value::Null,
        "the site's address is not kept"
    );
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.contains("confab_session=") && c.contains("HttpOnly")));
    let token = r.body["token"].as_str().unwrap().to_string();
    let id = r.body["account"]["id"].clone();

    let me = app.get("/api/v1/me", &As::bearer(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["id"], id);

    // Their comment shows the site's name, profile URL and avatar.
    let posted = app
        .post_comment(
            "blog",
            "/post-1",
            "hello from the site",
            None,
            &As::bearer(&token).origin(SITE),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{:?}", posted.body);
    let page = app
        .get("/api/v1/comments?forum=blog&ident=/post-1", &site())
        .await;
    let author = &page.body["comments"][0]["author"];
    assert_eq!(author["name"], "Ann Site");
    assert_eq!(author["url"], "https://site.example/~ann");
    assert_eq!(author["avatar_url"], "https://site.example/ann.png");
    assert_eq!(author["account_id"], id);
    assert_eq!(author["moderator"], false);

    // The next sign-in is the same account, its name and links as the site now says.
    let mut renamed = ann();
    renamed["username"] = json!("Ann Renamed");
    renamed["url"] = json!("");
    let r = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(renamed)}),
        &site(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["account"]["id"], id);
    assert_eq!(r.body["account"]["display_name"], "Ann Renamed");
    let me = app.get("/api/v1/me", &As::bearer(&token)).await;
    assert_eq!(me.body["display_name"], "Ann Renamed");

    // An SSO account has no password to sign in with.
    let username = r.body["account"]["username"].as_str().unwrap().to_string();
    for pw in ["!sso", "", "correct horse battery"] {
        let r = app
            .post(
                "/api/v1/sessions",
                json!({"login": username, "password": pw}),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{pw:?}");
    }
}

#[tokio::test]
async fn jwt_signs_in() {
    let app = spawn().await;
    let staff = app.account("boss", true, &[]).await;
    forum_with_secret(&app, "blog", &staff).await;
    let claims = json!({"sub": "u-7", "name": "Bo Site", "exp": now() + 600,
                        "email": "bo@site.example", "picture": "https://site.example/bo.png"});
    let r = sso(
        &app,
        json!({"forum": "blog", "jwt": sign_jwt_hs256(&secret(), &claims)}),
        &site(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["account"]["display_name"], "Bo Site");
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/me", &As::bearer(token)).await.status,
        StatusCode::OK
    );
    // The same site user through remote_auth_s3 is the same account (the same id on the site).
    let r2 = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(json!({"id": "u-7", "username": "Bo", "email": "bo@site.example"}))}),
        &site(),
    )
    .await;
    assert_eq!(r2.body["account"]["id"], r.body["account"]["id"]);
}

#[tokio::test]
async fn accounts_belong_to_their_forum_and_are_never_moderators() {
    let app = spawn().await;
    let staff = app.account("boss", true, &[]).await;
    forum_with_secret(&app, "blog", &staff).await;
    forum_with_secret(&app, "news", &staff).await;
    let on_blog = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(ann())}),
        &site(),
    )
    .await;
    let on_news = sso(
        &app,
        json!({"forum": "news", "remote_auth_s3": s3(ann())}),
        &site(),
    )
    .await;
    assert_eq!(on_blog.status, StatusCode::OK);
    assert_eq!(on_news.status, StatusCode::OK);
    assert_ne!(
        on_blog.body["account"]["id"], on_news.body["account"]["id"],
        "the same site user on another forum is another account"
    );

    // A site user whose id and name are a staff member's username gets an account of its own,
    // with no role.
    let claims = json!({"sub": "boss", "name": "boss", "exp": now() + 600});
    let r = sso(
        &app,
        json!({"forum": "blog", "jwt": sign_jwt_hs256(&secret(), &claims)}),
        &site(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["account"]["is_staff"], false);
    assert_eq!(r.body["account"]["moderates"], json!([]));
    assert_ne!(r.body["account"]["username"], "boss");
    let token = r.body["token"].as_str().unwrap();
    let q = app
        .get(
            "/api/v1/forums/blog/comments?queue=pending",
            &As::bearer(token),
        )
        .await;
    assert_eq!(q.status, StatusCode::FORBIDDEN, "{:?}", q.body);
    // Signing in again keeps it so (and a moderator named by staff stays one: SSO touches no role).
    let r = sso(
        &app,
        json!({"forum": "blog", "jwt": sign_jwt_hs256(&secret(), &claims)}),
        &site(),
    )
    .await;
    assert_eq!(r.body["account"]["is_staff"], false);
}

#[tokio::test]
async fn every_refusal_is_a_clear_error() {
    let app = spawn().await;
    let staff = app.account("boss", true, &[]).await;
    forum_with_secret(&app, "blog", &staff).await;
    let other = SsoSecret::parse("not-the-forums-secret").unwrap();
    let t = now();
    let jwt = |c: Value| sign_jwt_hs256(&secret(), &c);
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"forum": "blog", "remote_auth_s3": sign_remote_auth_s3(&other, &ann(), t)}),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            json!({"forum": "blog", "remote_auth_s3": sign_remote_auth_s3(&secret(), &ann(), t - 2 * 3600 - 5)}),
            StatusCode::UNAUTHORIZED,
            "token_expired",
        ),
        (
            json!({"forum": "blog", "remote_auth_s3": sign_remote_auth_s3(&secret(), &ann(), t + 600)}),
            StatusCode::UNAUTHORIZED,
            "token_from_future",
        ),
        (
            json!({"forum": "blog", "remote_auth_s3": "not a token at all"}),
            StatusCode::BAD_REQUEST,
            "malformed_token",
        ),
        (
            json!({"forum": "blog", "remote_auth_s3": s3(json!({"id": 1, "email": "a@b.c"}))}),
            StatusCode::BAD_REQUEST,
            "missing_claim",
        ),
        (
            json!({"forum": "blog", "remote_auth_s3": "A".repeat(9000)}),
            StatusCode::BAD_REQUEST,
            "malformed_token",
        ),
        (
            json!({"forum": "blog", "jwt": sign_jwt_hs256(&other, &json!({"sub": "1", "name": "A", "exp": t + 60}))}),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            json!({"forum": "blog", "jwt": jwt(json!({"sub": "1", "name": "A", "exp": t - 1}))}),
            StatusCode::UNAUTHORIZED,
            "token_expired",
        ),
        (
            json!({"forum": "blog", "jwt": jwt(json!({"sub": "1", "exp": t + 60}))}),
            StatusCode::BAD_REQUEST,
            "missing_claim",
        ),
        (
            json!({"forum": "blog", "jwt": jwt(json!({"name": "A", "exp": t + 60}))}),
            StatusCode::BAD_REQUEST,
            "missing_claim",
        ),
        (
            json!({"forum": "blog", "jwt": jwt(json!({"sub": "1", "name": "A"}))}),
            StatusCode::BAD_REQUEST,
            "missing_claim",
        ),
        (
            json!({"forum": "blog", "jwt": format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&json!({"sub": "1", "name": "A", "exp": t + 60}).to_string()))}),
            StatusCode::BAD_REQUEST,
            "unsupported_algorithm",
        ),
        (
            json!({"forum": "blog", "jwt": format!("{}.{}.AAAA", b64(r#"{"alg":"RS256"}"#), b64(&json!({"sub": "1", "name": "A", "exp": t + 60}).to_string()))}),
            StatusCode::BAD_REQUEST,
            "unsupported_algorithm",
        ),
        (
            json!({"forum": "blog", "jwt": "a.b"}),
            StatusCode::BAD_REQUEST,
            "malformed_token",
        ),
        (
            json!({"forum": "blog", "jwt": jwt(json!({"sub": "1", "name": "  ", "exp": t + 60}))}),
            StatusCode::BAD_REQUEST,
            "missing_claim",
        ),
        (
            json!({"forum": "blog", "jwt": jwt(json!({"sub": "1", "name": "A", "exp": t + 60, "picture": "javascript:alert(1)"}))}),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json!({"forum": "blog", "remote_auth_s3": s3(json!({"id": 1, "username": "A", "email": "not an address"}))}),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json!({"forum": "blog"}),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json!({"forum": "blog", "jwt": "x", "remote_auth_s3": "y"}),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json!({"forum": "nope", "jwt": "x"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (body, status, code) in cases {
        let r = sso(&app, body.clone(), &site()).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code),
            "{body:.200} -> {:?}",
            r.body
        );
        assert!(r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        assert!(r.header("set-cookie").is_none());
    }
    // A page of a site that is not the forum's.
    let r = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(ann())}),
        &As::guest().origin("https://elsewhere.example"),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "origin_not_allowed")
    );
}

#[tokio::test]
async fn an_empty_payload_signs_out() {
    let app = spawn().await;
    let staff = app.account("boss", true, &[]).await;
    forum_with_secret(&app, "blog", &staff).await;
    let r = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(ann())}),
        &site(),
    )
    .await;
    let token = r.body["token"].as_str().unwrap().to_string();
    // Unsigned or forged sign-outs are refused like any token.
    let forged = format!("e30= {} {}", "0".repeat(40), now());
    let r = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": forged}),
        &As::bearer(&token).origin(SITE),
    )
    .await;
    assert_eq!(r.code(), "bad_signature");
    assert_eq!(
        app.get("/api/v1/me", &As::bearer(&token)).await.status,
        StatusCode::OK
    );

    let out = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(json!({}))}),
        &As::bearer(&token).origin(SITE),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{:?}", out.body);
    assert!(out
        .header("set-cookie")
        .is_some_and(|c| c.contains("confab_session=;") && c.contains("Max-Age=0")));
    let me = app.get("/api/v1/me", &As::bearer(&token)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "the session ended");

    // A signed-out payload from a reader with no session only clears the cookie; a staff
    // member's own session is not this forum's SSO account and stays.
    let out = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(json!({}))}),
        &As::bearer(&staff).origin(SITE),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/me", &As::bearer(&staff)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_secret_is_write_only() {
    let app = spawn().await;
    let staff = app.account("boss", true, &[]).await;
    app.forum("blog", json!({})).await;
    let settings = app.get("/api/v1/forums/blog", &As::bearer(&staff)).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert_eq!(settings.body["sso"], false);

    set_secret(&app, "blog", &staff).await;
    for path in ["/api/v1/forums/blog", "/api/v1/forums"] {
        let r = app.get(path, &As::bearer(&staff)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            !r.body.to_string().contains(SECRET),
            "{path} shows the secret"
        );
    }
    let r = app.get("/api/v1/forums/blog", &As::bearer(&staff)).await;
    assert_eq!(r.body["sso"], true);
    // Other settings changes keep it.
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/blog",
            Some(json!({"title": "Blog"})),
            &As::bearer(&staff),
        )
        .await;
    assert_eq!(r.body["sso"], true);
    assert!(!r.body.to_string().contains(SECRET));
    // A short secret is refused and changes nothing.
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/blog",
            Some(json!({"sso_secret": "short"})),
            &As::bearer(&staff),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let ok = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(ann())}),
        &site(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    // A reader (not a moderator) cannot set it.
    let reader = ok.body["token"].as_str().unwrap();
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/blog",
            Some(json!({"sso_secret": "another-secret-0123"})),
            &As::bearer(reader),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // "" removes it: SSO sign-in stops.
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/blog",
            Some(json!({"sso_secret": ""})),
            &As::bearer(&staff),
        )
        .await;
    assert_eq!(r.body["sso"], false);
    let r = sso(
        &app,
        json!({"forum": "blog", "remote_auth_s3": s3(ann())}),
        &site(),
    )
    .await;
    assert_eq!(r.code(), "sso_not_configured");
}

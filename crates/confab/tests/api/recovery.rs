//! Accounts that can be recovered: a password reset by mail (through a real SMTP sink), a
//! password change, an e-mail address change confirmed by mail, and "log out everywhere". Run
//! on SQLite by default and on PostgreSQL with `CONFAB_TEST_BACKEND=postgres`.

use crate::helpers::*;
use crate::smtp::SmtpSink;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The query string of a mail link (what the API takes as the token).
fn token_of(url: &str) -> String {
    url.split_once("?t=").expect("a token").1.to_string()
}

async fn log_in(app: &TestApp, login: &str, password: &str) -> Resp {
    app.post(
        "/api/v1/sessions",
        json!({"login": login, "password": password}),
        &As::guest(),
    )
    .await
}

async fn me(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/me", &As::bearer(token)).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_recovers_a_lost_password_by_mail() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let old_session = app.account("rita", false, &[]).await;
    assert_eq!(me(&app, &old_session).await, StatusCode::OK);

    // Unknown logins get the very answer a real one gets, and no mail is sent for them.
    let nobody = app
        .post(
            "/api/v1/password-resets",
            json!({"login": "nobody@example.com"}),
            &As::guest(),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::ACCEPTED, "{:?}", nobody.body);
    let ghost = app
        .post(
            "/api/v1/password-resets",
            json!({"login": "ghost"}),
            &As::guest(),
        )
        .await;
    let real = app
        .post(
            "/api/v1/password-resets",
            json!({"login": "RITA@example.com"}),
            &As::guest(),
        )
        .await;
    assert_eq!(real.status, StatusCode::ACCEPTED, "{:?}", real.body);
    assert_eq!(real.body, nobody.body, "no account enumeration");
    assert_eq!(real.body, ghost.body);
    assert!(real.body["message"]
        .as_str()
        .unwrap()
        .contains("If that account has an e-mail address"));
    let blank = app
        .post(
            "/api/v1/password-resets",
            json!({"login": "  "}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (blank.status, blank.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );

    sink.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.settle().await;
    let mails = sink.messages();
    assert_eq!(
        mails.len(),
        1,
        "only the real account is mailed: {mails:#?}"
    );
    let mail = &mails[0];
    assert_eq!(mail.to, ["rita@example.com"]);
    assert!(
        mail.header("Subject").unwrap().contains("new password"),
        "{mail:#?}"
    );
    let link = mail.link("/mail/password-reset?t=");
    assert!(link.starts_with(&app.base), "{link}");

    // The link shows a form and changes nothing yet (mail scanners follow links).
    let (status, ct, html) = app.get_page(&link).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(ct.starts_with("text/html"));
    assert!(html.contains("name=\"password\"") && html.contains("At least 8 characters"));
    assert_eq!(me(&app, &old_session).await, StatusCode::OK);

    // A password that breaks the rule is refused on the page, saying why; the link still works.
    let (status, html) = app.post_form(&link, "password=short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("The password must be at least 8 characters"),
        "{html}"
    );

    let (status, html) = app.post_form(&link, "password=a+brand+new+secret").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Password changed"), "{html}");

    // The new password signs in, the old one does not, and every old session has ended.
    assert_eq!(
        log_in(&app, "rita", "a brand new secret").await.status,
        StatusCode::OK
    );
    assert_eq!(
        log_in(&app, "rita", "correct horse battery").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&app, &old_session).await, StatusCode::UNAUTHORIZED);

    // The link works once: neither the page nor the API takes it again.
    let (status, _, html) = app.get_page(&link).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("already used"), "{html}");
    let again = app
        .post(
            "/api/v1/password-resets/confirm",
            json!({"token": token_of(&link), "password": "yet another secret"}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(
        log_in(&app, "rita", "yet another secret").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reset_api_sets_a_password_once_and_refuses_forged_links() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let other_device = app.account("sam", false, &[]).await;
    let r = app
        .post(
            "/api/v1/password-resets",
            json!({"login": "sam"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let link = sink.wait_for(1).await[0].link("/mail/password-reset?t=");
    let token = token_of(&link);

    let weak = app
        .post(
            "/api/v1/password-resets/confirm",
            json!({"token": token, "password": "short"}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (weak.status, weak.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    assert_eq!(
        weak.body["error"]["message"],
        "The password must be at least 8 characters."
    );
    let forged = app
        .post(
            "/api/v1/password-resets/confirm",
            json!({"token": format!("{token}x"), "password": "a good new password"}),
            &As::guest(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);

    let ok = app
        .post(
            "/api/v1/password-resets/confirm",
            json!({"token": token, "password": "a good new password"}),
            &As::guest(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["account"]["username"], "sam");
    let fresh = ok.body["token"].as_str().unwrap().to_string();
    assert_eq!(me(&app, &fresh).await, StatusCode::OK, "signed in afresh");
    assert_eq!(
        me(&app, &other_device).await,
        StatusCode::UNAUTHORIZED,
        "every other session ended"
    );
    let again = app
        .post(
            "/api/v1/password-resets/confirm",
            json!({"token": token, "password": "a third password"}),
            &As::guest(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "single use");
    assert_eq!(
        log_in(&app, "sam", "a good new password").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_an_address_gets_the_same_answer_and_no_mail() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    app.svc
        .create_account("noaddr", None, "correct horse battery", None, false)
        .await
        .unwrap();
    let r = app
        .post(
            "/api/v1/password-resets",
            json!({"login": "noaddr"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let tasks = app.settle().await;
    assert!(tasks.is_empty(), "{tasks:#?}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn().await;
    let laptop = app.account("paula", false, &[]).await;
    let phone = log_in(&app, "paula", "correct horse battery").await.body["token"]
        .as_str()
        .unwrap()
        .to_string();

    let wrong = app
        .post(
            "/api/v1/me/password",
            json!({"current": "not it at all", "new": "a fresh password"}),
            &As::bearer(&laptop),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    assert_eq!(
        wrong.body["error"]["message"],
        "The current password is not right."
    );
    assert_eq!(me(&app, &laptop).await, StatusCode::OK, "nothing ended");
    let weak = app
        .post(
            "/api/v1/me/password",
            json!({"current": "correct horse battery", "new": "tiny"}),
            &As::bearer(&laptop),
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    let anonymous = app
        .post(
            "/api/v1/me/password",
            json!({"current": "correct horse battery", "new": "a fresh password"}),
            &As::guest(),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let ok = app
        .post(
            "/api/v1/me/password",
            json!({"current": "correct horse battery", "new": "a fresh password"}),
            &As::bearer(&laptop),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let renewed = ok.body["token"].as_str().unwrap().to_string();
    assert_eq!(me(&app, &renewed).await, StatusCode::OK);
    assert_eq!(me(&app, &laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        log_in(&app, "paula", "correct horse battery").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in(&app, "paula", "a fresh password").await.status,
        StatusCode::OK
    );

    // Without mail, an address cannot be confirmed, and says so; a reset request is answered
    // as ever, and nothing is queued.
    let r = app
        .post(
            "/api/v1/me/email",
            json!({"email": "paula.new@example.com", "password": "a fresh password"}),
            &As::bearer(&renewed),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["message"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("This server sends no mail, so an e-mail address cannot be confirmed.")
        )
    );
    let r = app
        .post(
            "/api/v1/password-resets",
            json!({"login": "paula"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(app.settle().await.is_empty());
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session() {
    let app = spawn().await;
    let a = app.account("lou", false, &[]).await;
    let b = log_in(&app, "lou", "correct horse battery").await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bystander = app.account("bea", false, &[]).await;
    assert_eq!(
        app.req(Method::DELETE, "/api/v1/me/sessions", None, &As::guest())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .req(Method::DELETE, "/api/v1/me/sessions", None, &As::bearer(&b))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(me(&app, &a).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &b).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &bystander).await, StatusCode::OK, "only lou's");
    assert_eq!(
        log_in(&app, "lou", "correct horse battery").await.status,
        StatusCode::OK,
        "signing in again works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_changes_only_when_the_mailed_link_is_followed() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let t = app.account("eve", false, &[]).await;
    let wrong = app
        .post(
            "/api/v1/me/email",
            json!({"email": "eve.new@example.com", "password": "nope nope nope"}),
            &As::bearer(&t),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let bad = app
        .post(
            "/api/v1/me/email",
            json!({"email": "not an address", "password": "correct horse battery"}),
            &As::bearer(&t),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let r = app
        .post(
            "/api/v1/me/email",
            json!({"email": "eve.new@example.com", "password": "correct horse battery"}),
            &As::bearer(&t),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0].to, ["eve.new@example.com"]);
    let link = mails[0].link("/mail/account-email?t=");
    // Not yet: the account keeps its address, and the new one does not sign in.
    assert_eq!(
        app.get("/api/v1/me", &As::bearer(&t)).await.body["email"],
        "eve@example.com"
    );
    assert_eq!(
        log_in(&app, "eve.new@example.com", "correct horse battery")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, html) = app.get_page(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("eve.new@example.com"), "{html}");
    assert_eq!(
        app.get("/api/v1/me", &As::bearer(&t)).await.body["email"],
        "eve@example.com",
        "a GET changes nothing"
    );
    let (status, html) = app.post_form(&link, "").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(
        app.get("/api/v1/me", &As::bearer(&t)).await.body["email"],
        "eve.new@example.com"
    );
    assert_eq!(
        log_in(&app, "eve.new@example.com", "correct horse battery")
            .await
            .status,
        StatusCode::OK
    );
    // An address another account holds is answered the same, and not mailed.
    app.account("fay", false, &[]).await;
    let taken = app
        .post(
            "/api/v1/me/email",
            json!({"email": "fay@example.com", "password": "correct horse battery"}),
            &As::bearer(&t),
        )
        .await;
    assert_eq!(taken.status, StatusCode::ACCEPTED);
    app.settle().await;
    assert_eq!(sink.messages().len(), 1, "{:#?}", sink.messages());
}

#[tokio::test]
async fn sign_up_errors_say_what_is_wrong() {
    let app = spawn().await;
    let cases = [
        (
            json!({"username": "al", "password": "long enough pw"}),
            "The username must be at least 3 characters.",
        ),
        (
            json!({"username": "al ice", "password": "long enough pw"}),
            "The username cannot contain a space: use letters (a-z), digits, _ . or -.",
        ),
        (
            json!({"username": "alice", "password": "short"}),
            "The password must be at least 8 characters.",
        ),
        (
            json!({"username": "alice", "password": "long enough pw", "email": "nope"}),
            "That is not a valid e-mail address.",
        ),
    ];
    for (body, message) in cases {
        let r = app.post("/api/v1/accounts", body, &As::guest()).await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (StatusCode::BAD_REQUEST, Some(message))
        );
    }
    app.account("alice", false, &[]).await;
    let taken = app
        .post(
            "/api/v1/accounts",
            json!({"username": "Alice", "password": "long enough pw"}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (taken.status, taken.body["error"]["message"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("That username is taken. Please choose another.")
        )
    );
}

#[tokio::test]
async fn reset_requests_are_rate_limited_like_sign_ins() {
    let mut c = config();
    c.rate_limit.enabled = true;
    c.rate_limit.auth_per_minute_ip = 1000;
    c.rate_limit.logins_per_minute_account = 3;
    let app = spawn_with(c).await;
    app.account("target", false, &[]).await;
    let mut statuses = Vec::new();
    for login in ["target", "TARGET", " target", "Target"] {
        let r = app
            .post(
                "/api/v1/password-resets",
                json!({"login": login}),
                &As::guest(),
            )
            .await;
        statuses.push((r.status, r.header("retry-after").is_some()));
    }
    assert_eq!(statuses[..3], [(StatusCode::ACCEPTED, false); 3]);
    assert_eq!(statuses[3], (StatusCode::TOO_MANY_REQUESTS, true));
    // The owner can still sign in: the allowances are apart.
    assert_eq!(
        log_in(&app, "target", "correct horse battery").await.status,
        StatusCode::OK
    );

    let mut c = config();
    c.rate_limit.enabled = true;
    c.rate_limit.auth_per_minute_ip = 2;
    let app = spawn_with(c).await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let r = app
            .post(
                "/api/v1/password-resets",
                json!({"login": format!("name{i}")}),
                &As::guest(),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::ACCEPTED,
            StatusCode::ACCEPTED,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "one address asking for many names is limited too"
    );
}

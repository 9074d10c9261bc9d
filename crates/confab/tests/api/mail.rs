//! Mail through a real SMTP server (aiosmtpd): reply notifications with double opt-in and
//! one-click unsubscribe, and moderators' notices with working approve links.

use crate::helpers::*;
use crate::smtp::SmtpSink;
use confab_core::id::CommentId;
use confab_store::{ReadFrom, SubState};
use reqwest::StatusCode;
use serde_json::json;

fn guest(
    name: &str,
    email: &str,
    body: &str,
    parent: Option<&str>,
    notify: bool,
) -> serde_json::Value {
    let mut b = json!({"forum": "demo", "ident": "/mail", "body": body, "author_name": name, "author_email": email, "notify": notify});
    if let Some(p) = parent {
        b["parent_id"] = json!(p);
    }
    b
}

async fn sub_state(app: &TestApp, email: &str) -> Option<SubState> {
    let demo = app.svc.forum("demo").unwrap();
    app.store
        .subscription(demo.id, email)
        .await
        .unwrap()
        .map(|s| s.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_notifications_double_opt_in_and_one_click_unsubscribe() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;

    // Ann asks to be told about replies: she is sent a confirmation link, nothing else.
    let r = app
        .post(
            "/api/v1/comments",
            guest("Ann", "ann@example.com", "First!", None, true),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["notify"], "pending_confirmation");
    let ann = r.body["id"].as_str().unwrap().to_string();
    let mails = sink.wait_for(1).await;
    let confirm = &mails[0];
    assert_eq!(confirm.to, ["ann@example.com"]);
    assert!(
        confirm
            .header("Subject")
            .unwrap()
            .contains("Confirm reply notifications"),
        "{confirm:#?}"
    );
    assert!(confirm.html().contains("/mail/confirm?t="));
    let confirm_url = confirm.link("/mail/confirm?t=");
    assert!(
        confirm_url.starts_with(&app.base),
        "links use the server's address: {confirm_url}"
    );
    assert_eq!(
        sub_state(&app, "ann@example.com").await,
        Some(SubState::Pending)
    );

    // Until she confirms, replies are not mailed.
    let r = app
        .post(
            "/api/v1/comments",
            guest(
                "<b>Bob</b>",
                "bob@example.com",
                "Reply before confirming",
                Some(&ann),
                false,
            ),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["notify"], serde_json::Value::Null);
    app.settle().await;
    assert_eq!(sink.messages().len(), 1);

    // The link's page shows a button and changes nothing (mail scanners follow links)...
    let (status, ct, html) = app.get_page(&confirm_url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        html.contains("<form method=\"post\"") && html.contains("ann@example.com"),
        "{html}"
    );
    assert_eq!(
        sub_state(&app, "ann@example.com").await,
        Some(SubState::Pending)
    );
    // ...the button does it.
    let (status, html) = app.post_form(&confirm_url, "").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("confirmed"), "{html}");
    assert_eq!(
        sub_state(&app, "ann@example.com").await,
        Some(SubState::Confirmed)
    );

    // Now a reply is mailed to her, with the one-click unsubscribe headers.
    let r = app
        .post(
            "/api/v1/comments",
            guest(
                "<b>Bob</b>",
                "bob@example.com",
                "Reply <script>x</script> & more",
                Some(&ann),
                false,
            ),
            &As::guest(),
        )
        .await;
    let reply_id = r.body["id"].as_str().unwrap().to_string();
    let mails = sink.wait_for(2).await;
    let m = &mails[1];
    assert_eq!(m.to, ["ann@example.com"]);
    assert_eq!(m.from, "confab@test.example");
    let unsubscribe = m
        .header("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim_matches(['<', '>'])
        .to_string();
    assert!(
        unsubscribe.starts_with(&format!("{}/mail/unsubscribe?t=", app.base)),
        "{unsubscribe}"
    );
    assert_eq!(
        m.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(m.header("Auto-Submitted"), Some("auto-generated"));
    let task = app
        .settle()
        .await
        .into_iter()
        .find(|t| t.kind == "mail.reply" && t.payload_json()["comment_id"] == reply_id)
        .expect("the reply's mail task");
    assert_eq!(
        m.header("Message-ID"),
        Some(format!("<confab.{}.0@test.example>", task.id).as_str()),
        "stable, from the task id"
    );
    assert!(
        m.text().contains("> Reply <script>x</script> & more"),
        "plain text quotes the reply: {}",
        m.text()
    );
    assert!(m.text().contains(&unsubscribe));
    assert!(
        m.html().contains("&lt;b&gt;Bob&lt;/b&gt;")
            && m.html()
                .contains("Reply &lt;script&gt;x&lt;/script&gt; &amp; more"),
        "{}",
        m.html()
    );
    assert!(
        !m.html().contains("<script>") && !m.html().contains("<b>Bob"),
        "{}",
        m.html()
    );

    // Her own reply to her comment is not mailed to her.
    app.post(
        "/api/v1/comments",
        guest("Ann", "ANN@example.com", "Thanks Bob", Some(&ann), false),
        &As::guest(),
    )
    .await;
    app.settle().await;
    assert_eq!(sink.messages().len(), 2);

    // The unsubscribe page has a plain form (for browsers)...
    let (status, _, html) = app.get_page(&unsubscribe).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("action=\"/mail/unsubscribe?t=")
            && html.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{html}"
    );
    assert_eq!(
        sub_state(&app, "ann@example.com").await,
        Some(SubState::Confirmed),
        "a GET changes nothing"
    );
    // ...and the RFC 8058 one-click POST, as a mail provider sends it, unsubscribes.
    let (status, html) = app
        .post_form(&unsubscribe, "List-Unsubscribe=One-Click")
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(
        sub_state(&app, "ann@example.com").await,
        Some(SubState::Unsubscribed)
    );
    let (status, _) = app
        .post_form(&unsubscribe, "List-Unsubscribe=One-Click")
        .await;
    assert_eq!(status, StatusCode::OK, "repeating it is fine");

    // The next reply sends nothing.
    app.post(
        "/api/v1/comments",
        guest("Bob", "bob@example.com", "Anyone there?", Some(&ann), false),
        &As::guest(),
    )
    .await;
    app.settle().await;
    assert_eq!(sink.messages().len(), 2);

    // Asking again needs a new confirmation, but no second request mail within the hour
    // (a form cannot be used to flood an inbox).
    let r = app
        .post(
            "/api/v1/comments",
            guest("Ann", "ann@example.com", "Me again", None, true),
            &As::guest(),
        )
        .await;
    assert_eq!(r.body["notify"], "pending_confirmation");
    app.settle().await;
    assert_eq!(sink.messages().len(), 2);
    assert_eq!(
        sub_state(&app, "ann@example.com").await,
        Some(SubState::Pending)
    );

    // Forged and cross-purpose tokens do nothing.
    let (status, _, html) = app
        .get_page(&format!("{}/mail/unsubscribe?t=forged.token", app.base))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    let confirm_token = confirm_url.split("t=").nth(1).unwrap();
    let (status, _) = app
        .post_form(
            &format!("{}/mail/unsubscribe?t={confirm_token}", app.base),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post_form(&format!("{}/mail/moderate", app.base), "")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_needs_an_address_and_mail() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "/n", "body": "x", "notify": true}),
            &As::guest(),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{:?}",
        r.body
    );
    // A server without mail takes the comment and says so.
    let plain = spawn().await;
    let r = plain
        .post(
            "/api/v1/comments",
            guest("Ann", "ann@example.com", "x", None, true),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["notify"], "unavailable");
    assert!(
        plain
            .store
            .list_tasks(None, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "no mail task is written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_get_pending_notices_whose_approve_link_approves() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    app.forum("held", json!({"moderation": "pre"})).await;
    let modr = app.account("heldmod", false, &["held"]).await;
    let r = app
        .post("/api/v1/comments", json!({"forum": "held", "ident": "/p", "body": "Please <i>approve</i> me", "author_name": "Eve <e>", "author_email": "eve@example.com"}), &As::guest())
        .await;
    assert_eq!(r.body["status"], "pending");
    let id: CommentId = r.body["id"].as_str().unwrap().parse().unwrap();
    let m = &sink.wait_for(1).await[0];
    assert_eq!(m.to, ["heldmod@example.com"]);
    assert!(
        m.header("Subject")
            .unwrap()
            .contains("waiting for approval"),
        "{m:#?}"
    );
    assert!(
        m.html().contains("Eve &lt;e&gt;")
            && m.html().contains("Please &lt;i&gt;approve&lt;/i&gt; me"),
        "{}",
        m.html()
    );
    assert!(
        m.header("List-Unsubscribe").is_none(),
        "notices to moderators are not a list"
    );
    let approve = m.link("/mail/moderate?t=");
    assert!(
        m.text().contains("Approve: ") && m.text().contains("Mark as spam: "),
        "{}",
        m.text()
    );

    // GET: a page with the button; the comment is still pending.
    let (status, _, html) = app.get_page(&approve).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(">Approve</button>") && html.contains("Please &lt;i&gt;approve&lt;/i&gt; me"),
        "{html}"
    );
    assert_eq!(
        app.store
            .comment(id, ReadFrom::Primary)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "pending"
    );
    // POST: approved, as the moderator, and the public sees it.
    let (status, html) = app.post_form(&approve, "").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(
        app.store
            .comment(id, ReadFrom::Primary)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "approved"
    );
    let page = app
        .get("/api/v1/comments?forum=held&ident=/p", &As::guest())
        .await;
    assert_eq!(ids(&page.body["comments"]), vec![id.to_string()]);
    let log = app.get("/api/v1/forums/held/log", &As::bearer(&modr)).await;
    assert_eq!(log.body["entries"][0]["action"], "approve");
    // Again: it says so and changes nothing.
    let (status, html) = app.post_form(&approve, "").await;
    assert_eq!(status, StatusCode::OK, "{html}");

    // A moderator who lost the role cannot use the link.
    let spam = m
        .text()
        .split_whitespace()
        .filter(|w| w.contains("/mail/moderate?t="))
        .nth(1)
        .unwrap()
        .to_string();
    let acct = app.store.credentials("heldmod").await.unwrap().unwrap().0;
    app.svc.set_moderator(&acct, "held", false).await.unwrap();
    app.svc.forget_account(acct.id).await;
    let (status, _) = app.post_form(&spam, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.store
            .comment(id, ReadFrom::Primary)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "approved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_held_for_moderation_is_mailed_when_approved() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    app.forum("linky", json!({"moderation": "links"})).await;
    let modr = app.account("linkmod", false, &["linky"]).await;
    let post = |body: &str, parent: Option<&str>, notify: bool| {
        let mut b = json!({"forum": "linky", "ident": "/l", "body": body, "author_name": "A", "author_email": "a@example.com", "notify": notify});
        if let Some(p) = parent {
            b["parent_id"] = json!(p);
            b["author_email"] = json!("b@example.com");
        }
        b
    };
    let r = app
        .post("/api/v1/comments", post("hello", None, true), &As::guest())
        .await;
    let parent = r.body["id"].as_str().unwrap().to_string();
    let app_ref = &app;
    // Confirm through the mailed link.
    let confirm = sink
        .wait_for(2)
        .await
        .into_iter()
        .find(|m| m.to == ["a@example.com"])
        .unwrap()
        .link("/mail/confirm");
    assert_eq!(app_ref.post_form(&confirm, "").await.0, StatusCode::OK);
    app.settle().await;
    let before = sink.messages().len();
    // A reply with a link waits for a moderator: nothing to A yet.
    let r = app
        .post(
            "/api/v1/comments",
            post("see [this](https://example.com)", Some(&parent), false),
            &As::guest(),
        )
        .await;
    assert_eq!(r.body["status"], "pending");
    let reply = r.body["id"].as_str().unwrap().to_string();
    app.settle().await;
    let to_a = |ms: &[crate::smtp::Mail]| ms.iter().filter(|m| m.to == ["a@example.com"]).count();
    assert_eq!(to_a(&sink.messages()), 1, "only the confirmation request");
    // Approving it publishes it, and A hears of it once.
    let a = app
        .post(
            "/api/v1/forums/linky/moderate",
            json!({"ids": [reply], "action": "approve"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(a.body["changed"], 1);
    app.settle().await;
    let ms = sink.messages();
    assert_eq!(to_a(&ms), 2, "{ms:#?}");
    assert!(ms.len() > before);
    // Spam then approve again does not mail twice (only a first publication does).
    app.post(
        "/api/v1/forums/linky/moderate",
        json!({"ids": [reply], "action": "spam"}),
        &As::bearer(&modr),
    )
    .await;
    app.post(
        "/api/v1/forums/linky/moderate",
        json!({"ids": [reply], "action": "approve"}),
        &As::bearer(&modr),
    )
    .await;
    app.settle().await;
    assert_eq!(to_a(&sink.messages()), 2);
}

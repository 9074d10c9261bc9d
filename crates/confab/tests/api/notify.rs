//! Issue 15, item 1: reply notifications asked for from the widget (double opt-in), the
//! website field, following a thread, and `@name` mentions, through a real SMTP server
//! (aiosmtpd). One mail per reader per comment; held comments notify on approval.

use crate::helpers::*;
use crate::smtp::{Mail, SmtpSink};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn guest(
    ident: &str,
    name: &str,
    email: &str,
    body: &str,
    parent: Option<&str>,
    notify: bool,
) -> Value {
    let mut b = json!({"forum": "demo", "ident": ident, "body": body, "author_name": name, "author_email": email, "notify": notify});
    if let Some(p) = parent {
        b["parent_id"] = json!(p);
    }
    b
}

fn to<'a>(mails: &'a [Mail], who: &str) -> Vec<&'a Mail> {
    mails
        .iter()
        .filter(|m| m.to.iter().any(|t| t == who))
        .collect()
}

fn subject(m: &Mail) -> &str {
    m.header("Subject").unwrap_or("")
}

/// Posts and asserts 201; the comment's id.
async fn post(app: &TestApp, body: Value, who: &As) -> String {
    let r = app.post("/api/v1/comments", body, who).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// Waits until the worker is done and the sink has stored every message it accepted (a
/// message is stored just after the worker hears it was accepted).
async fn settled(app: &TestApp, sink: &SmtpSink) {
    app.settle().await;
    let mut n = sink.messages().len();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let m = sink.messages().len();
        if m == n {
            return;
        }
        n = m;
    }
}

/// Follows the confirmation link of the last confirmation mail to `who`.
async fn confirm(app: &TestApp, sink: &SmtpSink, who: &str) {
    settled(app, sink).await;
    let mails = sink.messages();
    let m = to(&mails, who)
        .into_iter()
        .rev()
        .find(|m| subject(m).contains("Confirm reply notifications"))
        .unwrap_or_else(|| panic!("no confirmation mail to {who}: {mails:#?}"));
    let (status, html) = app.post_form(&m.link("/mail/confirm?t="), "").await;
    assert_eq!(status, StatusCode::OK, "{html}");
}

async fn thread_id(app: &TestApp, ident: &str) -> String {
    let r = app.page(ident, "", &As::guest()).await;
    r.body["thread"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_box_confirms_then_replies_are_mailed_and_the_website_is_kept() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let ann = As::guest();
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "/n1", "body": "Hello", "author_name": "Ann",
                   "author_email": "ann@example.com", "author_url": "https://ann.example/blog", "notify": true}),
            &ann,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["notify"], "pending_confirmation");
    assert_eq!(r.body["author"]["url"], "https://ann.example/blog");
    let first = r.body["id"].as_str().unwrap().to_string();
    let page = app.page("/n1", "", &As::guest()).await;
    assert_eq!(
        page.body["comments"][0]["author"]["url"], "https://ann.example/blog",
        "the page shows the website: {:?}",
        page.body
    );
    confirm(&app, &sink, "ann@example.com").await;

    post(
        &app,
        guest(
            "/n1",
            "Bob",
            "bob@example.com",
            "A reply",
            Some(&first),
            false,
        ),
        &As::guest(),
    )
    .await;
    settled(&app, &sink).await;
    let mails = sink.messages();
    let ann_mail = to(&mails, "ann@example.com");
    assert_eq!(
        ann_mail.len(),
        2,
        "confirmation, then the reply: {mails:#?}"
    );
    assert!(
        subject(ann_mail[1]).contains("Bob replied to your comment"),
        "{}",
        subject(ann_mail[1])
    );
    assert!(to(&mails, "bob@example.com").is_empty());

    // A website that is not an http(s) URL is refused with the error shape, and nothing is written.
    for bad in ["javascript:alert(1)", "ftp://ann.example/", "not a url"] {
        let r = app
            .post(
                "/api/v1/comments",
                json!({"forum": "demo", "ident": "/n1", "body": "x", "author_name": "Eve", "author_url": bad}),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_input", "{:?}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("your website")),
            "{:?}",
            r.body
        );
    }
    let page = app.page("/n1", "", &As::guest()).await;
    assert_eq!(page.body["thread"]["comment_count"], 2, "{:?}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_thread_mails_each_new_comment_until_unfollowed() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let fol = As::bearer(&app.account("fol", false, &[]).await);
    post(
        &app,
        guest("/f1", "Gus", "gus@example.com", "Opening", None, false),
        &As::guest(),
    )
    .await;
    // Followers are those of the thread when a comment's mail task runs: let the opening
    // comment's run first (on PostgreSQL it could run after the follow below).
    settled(&app, &sink).await;
    let tid = thread_id(&app, "/f1").await;
    let path = format!("/api/v1/threads/{tid}/follow");

    // Guests cannot follow; an unknown thread is 404.
    let r = app.req(Method::PUT, &path, None, &As::guest()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "unauthorized");
    let r = app
        .req(Method::PUT, "/api/v1/threads/12345/follow", None, &fol)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    let r = app.get(&path, &fol).await;
    assert_eq!(
        (r.status, &r.body["following"]),
        (StatusCode::OK, &json!(false)),
        "{:?}",
        r.body
    );
    let r = app.req(Method::PUT, &path, None, &fol).await;
    assert_eq!(
        (r.status, &r.body["following"]),
        (StatusCode::OK, &json!(true)),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["thread_id"], tid.as_str());
    let r = app.req(Method::PUT, &path, None, &fol).await;
    assert_eq!(r.body["following"], true, "idempotent");
    assert_eq!(app.get(&path, &fol).await.body["following"], true);

    // A new top-level comment, and a reply, each mail the follower once.
    let c = post(
        &app,
        guest("/f1", "Hal", "hal@example.com", "Second", None, false),
        &As::guest(),
    )
    .await;
    post(
        &app,
        guest("/f1", "Ivy", "ivy@example.com", "Reply", Some(&c), false),
        &As::guest(),
    )
    .await;
    // The follower's own comment is not mailed to them.
    app.post_comment("demo", "/f1", "Mine", None, &fol).await;
    settled(&app, &sink).await;
    let mails = sink.messages();
    let got = to(&mails, "fol@example.com");
    assert_eq!(got.len(), 2, "{mails:#?}");
    // The worker runs the two tasks concurrently: either may arrive first.
    let mut subjects: Vec<&str> = got.iter().map(|m| subject(m)).collect();
    subjects.sort();
    assert!(
        subjects[0].starts_with("Hal commented on") && subjects[1].starts_with("Ivy commented on"),
        "{subjects:?}"
    );
    assert_eq!(mails.len(), 2, "nobody else is mailed: {mails:#?}");

    // The mail's one-click unsubscribe unfollows the thread (and only that).
    let unsub = got[1]
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    let (status, _, html) = app.get_page(&unsub).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Stop mailing new comments in this discussion"),
        "{html}"
    );
    assert_eq!(
        app.get(&path, &fol).await.body["following"],
        true,
        "a GET changes nothing"
    );
    let (status, html) = app.post_form(&unsub, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("no longer follow"), "{html}");
    assert_eq!(app.get(&path, &fol).await.body["following"], false);
    post(
        &app,
        guest("/f1", "Jo", "jo@example.com", "Third", None, false),
        &As::guest(),
    )
    .await;
    settled(&app, &sink).await;
    assert_eq!(
        to(&sink.messages(), "fol@example.com").len(),
        2,
        "no mail after unfollowing"
    );

    // Follow again from the widget, and unfollow from it.
    app.req(Method::PUT, &path, None, &fol).await;
    let r = app.req(Method::DELETE, &path, None, &fol).await;
    assert_eq!(
        (r.status, &r.body["following"]),
        (StatusCode::OK, &json!(false)),
        "{:?}",
        r.body
    );
    post(
        &app,
        guest("/f1", "Kim", "kim@example.com", "Fourth", None, false),
        &As::guest(),
    )
    .await;
    settled(&app, &sink).await;
    assert_eq!(to(&sink.messages(), "fol@example.com").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_mails_once_even_when_it_is_also_a_reply_and_a_followed_thread() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let mia = As::bearer(&app.account("mia", false, &[]).await);

    // Mia comments asking for replies (and confirms), and follows the thread.
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "/m1", "body": "Thoughts?", "notify": true}),
            &mia,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let hers = r.body["id"].as_str().unwrap().to_string();
    confirm(&app, &sink, "mia@example.com").await;
    let tid = thread_id(&app, "/m1").await;
    let r = app
        .req(
            Method::PUT,
            &format!("/api/v1/threads/{tid}/follow"),
            None,
            &mia,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let before = to(&sink.messages(), "mia@example.com").len();

    // A guest who confirmed reply mail in this thread, and one who did not.
    let zed = post(
        &app,
        guest("/m1", "Zed Guest", "zed@example.com", "Hi", None, true),
        &As::guest(),
    )
    .await;
    confirm(&app, &sink, "zed@example.com").await;
    post(
        &app,
        guest("/m1", "Quiet", "quiet@example.com", "Hello", None, false),
        &As::guest(),
    )
    .await;
    settled(&app, &sink).await;
    let mia_now = to(&sink.messages(), "mia@example.com").len();
    assert_eq!(mia_now, before + 2, "the follower hears of both comments");

    // Bob replies to Mia and mentions her, Zed, Quiet and a stranger, twice over.
    let r = app
        .post(
            "/api/v1/comments",
            guest(
                "/m1",
                "Bob",
                "bob@example.com",
                "@mia @MIA yes, and @ZedGuest @Quiet @nobody `@mia`",
                Some(&hers),
                false,
            ),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let html = r.body["body_html"].as_str().unwrap_or_default();
    assert!(
        html.contains(r#"<span class="confab-mention">@mia</span>"#)
            && html.contains("<code>@mia</code>"),
        "mentions are marked, code is not: {html}"
    );
    settled(&app, &sink).await;
    let mails = sink.messages();
    let mia_mail = to(&mails, "mia@example.com");
    assert_eq!(
        mia_mail.len(),
        mia_now + 1,
        "exactly one mail for the reply that mentions her: {mails:#?}"
    );
    assert!(subject(mia_mail.last().unwrap()).contains("Bob replied to your comment"));
    let zed_mail = to(&mails, "zed@example.com");
    assert_eq!(
        zed_mail.len(),
        2,
        "confirmation, then the mention: {zed_mail:#?}"
    );
    assert!(
        subject(zed_mail[1]).contains("Bob mentioned you"),
        "{}",
        subject(zed_mail[1])
    );
    assert!(
        to(&mails, "quiet@example.com").is_empty(),
        "a guest without a confirmed subscription is not mailed"
    );
    assert!(to(&mails, "bob@example.com").is_empty());
    let _ = zed;

    // A mention alone (not a reply, in a thread she does not follow) mails her too; after she
    // unsubscribes from the forum's mail with its link, mentions stop.
    post(
        &app,
        guest("/m2", "Cy", "cy@example.com", "Start", None, false),
        &As::guest(),
    )
    .await;
    app.post_comment("demo", "/m2", "I am here", None, &mia)
        .await;
    let n = to(&sink.messages(), "mia@example.com").len();
    post(
        &app,
        guest("/m2", "Cy", "cy@example.com", "ping @mia", None, false),
        &As::guest(),
    )
    .await;
    settled(&app, &sink).await;
    let mails = sink.messages();
    let mia_mail = to(&mails, "mia@example.com");
    assert_eq!(mia_mail.len(), n + 1, "{mails:#?}");
    let m = mia_mail.last().unwrap();
    assert!(subject(m).contains("Cy mentioned you"), "{}", subject(m));
    let unsub = m
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    let (status, _) = app.post_form(&unsub, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, StatusCode::OK);
    post(
        &app,
        guest("/m2", "Cy", "cy@example.com", "again @mia", None, false),
        &As::guest(),
    )
    .await;
    settled(&app, &sink).await;
    assert_eq!(
        to(&sink.messages(), "mia@example.com").len(),
        n + 1,
        "mentions stop after unsubscribing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_comments_mention_mails_only_on_approval() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let modr = As::bearer(&app.account("moddy", false, &["demo"]).await);
    let lea = As::bearer(&app.account("lea", false, &[]).await);
    app.post_comment("demo", "/h1", "First", None, &lea).await;
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"moderation": "pre"})),
            &modr,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let r = app
        .post(
            "/api/v1/comments",
            guest("/h1", "Max", "max@example.com", "hey @lea", None, false),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    let held = r.body["id"].as_str().unwrap().to_string();
    settled(&app, &sink).await;
    assert!(
        to(&sink.messages(), "lea@example.com").is_empty(),
        "held: nobody is mailed yet"
    );

    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [held], "action": "approve"}),
            &modr,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    settled(&app, &sink).await;
    let mails = sink.messages();
    let got = to(&mails, "lea@example.com");
    assert_eq!(got.len(), 1, "{mails:#?}");
    assert!(
        subject(got[0]).contains("Max mentioned you"),
        "{}",
        subject(got[0])
    );

    // Approving again changes nothing and mails nothing.
    app.post(
        "/api/v1/forums/demo/moderate",
        json!({"ids": [held], "action": "approve"}),
        &modr,
    )
    .await;
    settled(&app, &sink).await;
    assert_eq!(to(&sink.messages(), "lea@example.com").len(), 1);
}

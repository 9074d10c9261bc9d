//! Moderation rules that need no outside service (issue 14): word lists, the link limit, new
//! commenters held, readers' flags, duplicates as spam, shadow bans. Each through the API,
//! on SQLite and (with `CONFAB_TEST_BACKEND=postgres`) on PostgreSQL.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn patch(app: &TestApp, me: &As, body: Value) -> Resp {
    app.req(Method::PATCH, "/api/v1/forums/demo", Some(body), me)
        .await
}

async fn set(app: &TestApp, me: &As, body: Value) {
    let r = patch(app, me, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{body}: {:?}", r.body);
}

async fn moderator(app: &TestApp) -> As {
    As::bearer(&app.account("rulemod", false, &["demo"]).await)
}

/// The moderation queue `queue`, newest first.
async fn queue(app: &TestApp, me: &As, queue: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/forums/demo/comments?queue={queue}"), me)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["comments"].as_array().unwrap().clone()
}

/// The held reason moderators see for comment `id` in `q`.
async fn reason_in(app: &TestApp, me: &As, q: &str, id: &str) -> Option<String> {
    queue(app, me, q)
        .await
        .iter()
        .find(|c| c["id"] == id)
        .map(|c| c["held_reason"].as_str().unwrap_or("").to_string())
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

async fn post_as(app: &TestApp, ident: &str, body: Value, who: &As) -> Resp {
    let mut b = json!({"forum": "demo", "ident": ident});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    app.post("/api/v1/comments", b, who).await
}

fn id_of(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn rule_settings_round_trip_are_bounded_and_unknown_keys_are_refused() {
    let app = spawn().await;
    let me = moderator(&app).await;
    // Every rule is off for a forum that never set one.
    let s = app.get("/api/v1/forums/demo", &me).await.body["settings"].clone();
    assert_eq!(s["words"], json!({"block": [], "hold": []}));
    assert_eq!(s["max_links"], Value::Null);
    assert_eq!(s["trust"], json!({"hold_first": 0}));
    assert_eq!(s["flags_to_hold"], Value::Null);
    assert_eq!(s["duplicates"], json!({"count": 0, "minutes": 0}));

    set(
        &app,
        &me,
        json!({
            "words": {"block": [" Nasty ", "nasty", "bad word"], "hold": ["offer"]},
            "max_links": 3,
            "trust": {"hold_first": 2},
            "flags_to_hold": 4,
            "duplicates": {"count": 3, "minutes": 10},
        }),
    )
    .await;
    let s = app.get("/api/v1/forums/demo", &me).await.body["settings"].clone();
    // Trimmed, and a repeat (after normalization) kept once.
    assert_eq!(
        s["words"],
        json!({"block": ["Nasty", "bad word"], "hold": ["offer"]})
    );
    assert_eq!(s["max_links"], 3);
    assert_eq!(s["trust"]["hold_first"], 2);
    assert_eq!(s["flags_to_hold"], 4);
    assert_eq!(s["duplicates"], json!({"count": 3, "minutes": 10}));
    // Counts may come as floats without a fraction, as some JSON writers send numbers.
    set(
        &app,
        &me,
        json!({"max_links": 3.0, "duplicates": {"count": 3.0, "minutes": 10.0}}),
    )
    .await;
    let s = app.get("/api/v1/forums/demo", &me).await.body["settings"].clone();
    assert_eq!(s["max_links"], 3);
    assert_eq!(s["duplicates"], json!({"count": 3, "minutes": 10}));
    // A key left out stays; null clears the optional limits.
    set(&app, &me, json!({"max_links": null, "flags_to_hold": null})).await;
    let s = app.get("/api/v1/forums/demo", &me).await.body["settings"].clone();
    assert_eq!(s["max_links"], Value::Null);
    assert_eq!(s["flags_to_hold"], Value::Null);
    assert_eq!(s["trust"]["hold_first"], 2);

    for bad in [
        json!({"words": {"block": (0..501).map(|i| format!("w{i}")).collect::<Vec<_>>()}}),
        json!({"words": {"hold": ["x".repeat(101)]}}),
        // Sizes count as sent: repeats and surrounding spaces do not make a list fit.
        json!({"words": {"hold": vec!["same"; 501]}}),
        json!({"words": {"hold": [format!(" {} ", "y".repeat(100))]}}),
        json!({"words": {"hold": ["   "]}}),
        json!({"words": {"hold": ["!!!"]}}),
        json!({"words": {"block": "spam"}}),
        json!({"max_links": 1001}),
        json!({"max_links": -1}),
        json!({"max_links": 2.5}),
        json!({"flags_to_hold": 0}),
        json!({"trust": {"hold_first": 1001}}),
        json!({"duplicates": {"count": 1, "minutes": 5}}),
        json!({"duplicates": {"count": 3, "minutes": 0}}),
        json!({"duplicates": {"count": 3, "minutes": 1441}}),
        // Unknown keys, at the top and inside the new settings, are refused, not ignored.
        json!({"wrods": {"block": ["x"]}}),
        json!({"words": {"blocked": ["x"]}}),
        json!({"trust": {"hold_first": 1, "after": 2}}),
        json!({"duplicates": {"count": 2, "minutes": 5, "per": "ip"}}),
    ] {
        let r = patch(&app, &me, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    }
    // Nothing refused was stored.
    let s = app.get("/api/v1/forums/demo", &me).await.body["settings"].clone();
    assert_eq!(s["words"]["hold"], json!(["offer"]));
    // Readers may not change rules.
    let reader = As::bearer(&app.account("plainreader", false, &[]).await);
    let r = patch(&app, &reader, json!({"max_links": 1})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn blocked_words_refuse_posts_and_edits() {
    let app = spawn().await;
    let me = moderator(&app).await;
    set(&app, &me, json!({"words": {"block": ["spam", "buy now"]}})).await;
    for text in ["ＳＰＡＭ for you", "So much Spam.", "please BUY  now"] {
        let r = app
            .post_comment("demo", "w", text, None, &As::guest())
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "blocked_word"),
            "{text}"
        );
        assert_eq!(
            r.body["error"]["message"],
            "your comment contains a word this site does not allow"
        );
    }
    // Whole words only: nothing of these is the word "spam".
    for text in ["a spammer's spamming", "buy it now"] {
        let r = app
            .post_comment("demo", "w", text, None, &As::guest())
            .await;
        assert_eq!(r.body["status"], "approved", "{text}: {:?}", r.body);
    }
    // An edit to a blocked word is refused and changes nothing.
    let c = app.comment("w", "fine words", None).await;
    let path = format!("/api/v1/comments/{}", c["id"].as_str().unwrap());
    let who = As::edit(c["edit_token"].as_str().unwrap());
    let r = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"body": "now with spam"})),
            &who,
        )
        .await;
    assert_eq!(r.code(), "blocked_word", "{:?}", r.body);
    let page = app.page("w", "&sort=oldest", &As::guest()).await;
    let bodies: Vec<&str> = page.body["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert!(bodies.contains(&"fine words"), "{bodies:?}");
    // Moderators are not refused.
    let r = app.post_comment("demo", "w", "spam", None, &me).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn held_words_hold_with_a_reason_and_an_edit_goes_back_to_pending() {
    let app = spawn().await;
    let me = moderator(&app).await;
    set(&app, &me, json!({"words": {"hold": ["offer"]}})).await;
    let r = app
        .post_comment("demo", "h", "A special ＯＦＦＥＲ!", None, &As::guest())
        .await;
    let held = id_of(&r);
    assert_eq!(r.body["status"], "pending");
    let anon = As::anon(r.body["anon_token"].as_str().unwrap());
    assert_eq!(
        reason_in(&app, &me, "pending", &held).await.as_deref(),
        Some("held: word 'offer'")
    );
    // Hidden from the public, shown to its author.
    assert!(app.page("h", "", &As::guest()).await.body["comments"]
        .as_array()
        .unwrap()
        .is_empty());
    let mine = app.page("h", "", &anon).await;
    assert_eq!(mine.body["comments"][0]["status"], "pending");

    // "offers" is another word.
    let ok = app
        .post_comment("demo", "h", "no offers here", None, &As::guest())
        .await;
    assert_eq!(ok.body["status"], "approved");
    // A published comment edited to hold a held word waits again, with the reason.
    let id = ok.body["id"].as_str().unwrap();
    let r = app
        .req(
            Method::PATCH,
            &format!("/api/v1/comments/{id}"),
            Some(json!({"body": "now an offer"})),
            &As::edit(ok.body["edit_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(
        reason_in(&app, &me, "pending", id).await.as_deref(),
        Some("held: word 'offer'")
    );
    let t = app.page("h", "", &As::guest()).await;
    assert_eq!(t.body["thread"]["comment_count"], 0, "{:?}", t.body);
}

#[tokio::test]
async fn more_links_than_the_limit_are_held() {
    let app = spawn().await;
    let me = moderator(&app).await;
    set(&app, &me, json!({"max_links": 1})).await;
    let one = app
        .post_comment(
            "demo",
            "l",
            "see [this](https://a.example)",
            None,
            &As::guest(),
        )
        .await;
    assert_eq!(one.body["status"], "approved", "{:?}", one.body);
    let two = app
        .post_comment(
            "demo",
            "l",
            "see [this](https://a.example) and <https://b.example>",
            None,
            &As::guest(),
        )
        .await;
    let id = id_of(&two);
    assert_eq!(two.body["status"], "pending");
    assert_eq!(
        reason_in(&app, &me, "pending", &id).await.as_deref(),
        Some("held: 2 links (limit 1)")
    );
    // The limit holds edits too.
    let r = app
        .req(
            Method::PATCH,
            &format!("/api/v1/comments/{}", one.body["id"].as_str().unwrap()),
            Some(json!({"body": "[a](https://a.example) [b](https://b.example) [c](https://c.example)"})),
            &As::edit(one.body["edit_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.body["status"], "pending", "{:?}", r.body);
    // Off again: nothing is held for links.
    set(&app, &me, json!({"max_links": null})).await;
    let r = app
        .post_comment(
            "demo",
            "l",
            "[a](https://a.example) [b](https://b.example)",
            None,
            &As::guest(),
        )
        .await;
    assert_eq!(r.body["status"], "approved");
}

#[tokio::test]
async fn new_commenters_wait_until_enough_comments_were_approved() {
    let app = spawn().await;
    let me = moderator(&app).await;
    set(&app, &me, json!({"trust": {"hold_first": 2}})).await;
    let newbie = As::bearer(&app.account("newbie", false, &[]).await);
    for n in 0..2 {
        let r = app
            .post_comment("demo", "t", &format!("hello {n}"), None, &newbie)
            .await;
        let id = id_of(&r);
        assert_eq!(r.body["status"], "pending");
        assert_eq!(
            reason_in(&app, &me, "pending", &id).await,
            Some(format!("held: new commenter ({n} of 2 approved)"))
        );
        moderate(&app, &me, &id, "approve").await;
    }
    let r = app
        .post_comment("demo", "t", "trusted now", None, &newbie)
        .await;
    assert_eq!(r.body["status"], "approved", "{:?}", r.body);

    // Guests are counted by the address they give; without one they are always held.
    let guest = |email: Option<&str>, body: &str| {
        let mut b = json!({"body": body, "author_name": "G"});
        if let Some(e) = email {
            b["author_email"] = json!(e);
        }
        b
    };
    let mut approved = 0;
    for n in 0..3 {
        let r = post_as(
            &app,
            "t",
            guest(Some("Gale@Example.com"), &format!("guest {n}")),
            &As::guest(),
        )
        .await;
        let id = id_of(&r);
        if n < 2 {
            assert_eq!(r.body["status"], "pending");
            moderate(&app, &me, &id, "approve").await;
            approved += 1;
        } else {
            assert_eq!(approved, 2);
            assert_eq!(r.body["status"], "approved");
        }
    }
    // Another case of the same address is the same guest.
    let r = post_as(
        &app,
        "t",
        guest(Some("gale@example.com"), "still me"),
        &As::guest(),
    )
    .await;
    assert_eq!(r.body["status"], "approved");
    let r = post_as(&app, "t", guest(None, "who am I"), &As::guest()).await;
    let id = id_of(&r);
    assert_eq!(r.body["status"], "pending");
    assert!(reason_in(&app, &me, "pending", &id)
        .await
        .unwrap()
        .starts_with("held: new commenter"));
    // A spam or pending comment does not count: a fresh address starts at 0.
    let r = post_as(
        &app,
        "t",
        guest(Some("other@example.com"), "first"),
        &As::guest(),
    )
    .await;
    let id = id_of(&r);
    moderate(&app, &me, &id, "spam").await;
    let r = post_as(
        &app,
        "t",
        guest(Some("other@example.com"), "second"),
        &As::guest(),
    )
    .await;
    let id = id_of(&r);
    assert_eq!(
        reason_in(&app, &me, "pending", &id).await.as_deref(),
        Some("held: new commenter (0 of 2 approved)")
    );
}

#[tokio::test]
async fn flags_from_enough_distinct_readers_hold_a_comment_until_a_moderator_decides() {
    let app = spawn().await;
    let me = moderator(&app).await;
    set(&app, &me, json!({"flags_to_hold": 2})).await;
    let c = app.comment("f", "flag me", None).await;
    let id = c["id"].as_str().unwrap().to_string();
    let flag = |who: As| {
        let app = &app;
        let path = format!("/api/v1/comments/{id}/flag");
        async move {
            let r = app.post(&path, json!({"reason": "rude"}), &who).await;
            assert!(r.status.is_success(), "{:?}", r.body);
        }
    };
    let visible = || async {
        app.page("f", "", &As::guest()).await.body["comments"]
            .as_array()
            .unwrap()
            .len()
    };
    let a = As::bearer(&app.account("flagger1", false, &[]).await);
    let b = As::bearer(&app.account("flagger2", false, &[]).await);
    flag(a.clone()).await;
    // The same reader again is not a second reader.
    flag(a.clone()).await;
    assert_eq!(visible().await, 1);
    flag(b.clone()).await;
    assert_eq!(visible().await, 0, "held after two distinct readers");
    assert_eq!(
        reason_in(&app, &me, "pending", &id).await.as_deref(),
        Some("held: flagged by 2 readers")
    );
    let t = app.page("f", "", &As::guest()).await;
    assert_eq!(t.body["thread"]["comment_count"], 0);
    // The moderator decides: approved, its flags dismissed, it stays up.
    moderate(&app, &me, &id, "approve").await;
    assert_eq!(visible().await, 1);
    flag(a.clone()).await;
    assert_eq!(visible().await, 1, "one new flag after approval is not two");
    let log = app.get("/api/v1/forums/demo/log", &me).await;
    assert!(
        log.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "hold" && e["comment_id"] == id.as_str()),
        "{:?}",
        log.body
    );
    // Off: no number of flags holds.
    set(&app, &me, json!({"flags_to_hold": null})).await;
    let c = app.comment("f2", "flag me too", None).await;
    let path = format!("/api/v1/comments/{}/flag", c["id"].as_str().unwrap());
    for who in [a, b] {
        app.post(&path, json!({}), &who).await;
    }
    assert_eq!(
        app.page("f2", "", &As::guest()).await.body["comments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_same_text_posted_too_often_is_spam() {
    let app = spawn().await;
    let me = moderator(&app).await;
    set(
        &app,
        &me,
        json!({"duplicates": {"count": 3, "minutes": 10}}),
    )
    .await;
    let mut statuses = Vec::new();
    let mut last = String::new();
    for text in [
        "Buy cheap pills",
        "buy  CHEAP pills",
        "something else",
        "BUY CHEAP PILLS",
    ] {
        let r = app
            .post_comment("demo", "d", text, None, &As::guest())
            .await;
        last = id_of(&r);
        statuses.push(r.body["status"].as_str().unwrap().to_string());
    }
    assert_eq!(statuses, ["approved", "approved", "approved", "spam"]);
    assert_eq!(
        reason_in(&app, &me, "spam", &last).await.as_deref(),
        Some("spam: the same text posted 3 times in 10 minutes")
    );
    // Another thread is no escape: the rule counts the forum.
    let r = app
        .post_comment("demo", "d2", "buy cheap pills", None, &As::guest())
        .await;
    assert_eq!(r.body["status"], "spam");
}

#[tokio::test]
async fn a_shadow_banned_author_sees_their_comments_and_nobody_else_does() {
    let app = spawn().await;
    let me = moderator(&app).await;
    let troll = As::bearer(&app.account("troll", false, &[]).await);
    let first = app
        .post_comment("demo", "s", "before the ban", None, &troll)
        .await;
    let account = first.body["author"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "account", "value": account, "shadow": true, "reason": "trolling"}),
            &me,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let ban = &r.body["bans"][0];
    assert_eq!(ban["shadow"], true);

    // Posting still works and looks published to the author.
    let r = app
        .post_comment("demo", "s", "after the ban", None, &troll)
        .await;
    let hidden = id_of(&r);
    assert_eq!(r.body["status"], "approved", "{:?}", r.body);
    let texts = |page: &Resp| -> Vec<(String, String)> {
        page.body["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["body"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let own = texts(&app.page("s", "&sort=oldest", &troll).await);
    assert_eq!(
        own,
        [
            ("before the ban".to_string(), "approved".to_string()),
            ("after the ban".to_string(), "approved".to_string())
        ]
    );
    let public = app.page("s", "&sort=oldest", &As::guest()).await;
    assert_eq!(
        texts(&public),
        [("before the ban".to_string(), "approved".to_string())]
    );
    assert_eq!(public.body["thread"]["comment_count"], 1);
    let other = As::bearer(&app.account("bystander", false, &[]).await);
    assert_eq!(texts(&app.page("s", "", &other).await).len(), 1);
    // Moderators see it as what it is, in the spam queue.
    assert_eq!(
        reason_in(&app, &me, "spam", &hidden).await.as_deref(),
        Some("shadow ban")
    );
    let modpage = texts(&app.page("s", "&sort=oldest", &me).await);
    assert_eq!(modpage[1], ("after the ban".into(), "spam".into()));
    // The author may still vote and flag (nothing tells them).
    let r = app
        .post(
            &format!(
                "/api/v1/comments/{}/vote",
                first.body["id"].as_str().unwrap()
            ),
            json!({"value": 1}),
            &troll,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // A moderator who approves it publishes it.
    moderate(&app, &me, &hidden, "approve").await;
    assert_eq!(texts(&app.page("s", "", &As::guest()).await).len(), 2);
    // A plain ban still refuses.
    let r = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "account", "value": account}),
            &me,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["bans"][0]["shadow"], false);
    let r = app.post_comment("demo", "s", "again", None, &troll).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "banned"));
}

#[tokio::test]
async fn live_clients_see_a_held_comment_leave_and_nothing_of_a_shadowed_one() {
    use crate::live::{live_url, Sse};
    let wait = std::time::Duration::from_secs(10);
    let app = spawn().await;
    let me = moderator(&app).await;
    set(&app, &me, json!({"flags_to_hold": 1})).await;
    let c = app.comment("lv", "flag me live", None).await;
    let id = c["id"].as_str().unwrap();
    let mut sse = Sse::open(&app.http, &live_url(&app.base, "lv"), None)
        .await
        .unwrap();
    sse.next(wait).await; // the stream's hello
    let reader = As::bearer(&app.account("liveflagger", false, &[]).await);
    let r = app
        .post(&format!("/api/v1/comments/{id}/flag"), json!({}), &reader)
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let ev = sse.next(wait).await;
    assert_eq!(
        (ev.name.as_str(), ev.data["id"].as_str()),
        ("comment.removed", Some(id))
    );

    // A shadow-banned author's comment moves the sequence and carries nothing.
    let troll = As::bearer(&app.account("livetroll", false, &[]).await);
    let first = app.post_comment("demo", "lv", "hello", None, &troll).await;
    let ev = sse.next(wait).await;
    assert_eq!(ev.name, "comment.created");
    let account = first.body["author"]["account_id"].as_str().unwrap();
    let r = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "account", "value": account, "shadow": true}),
            &me,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.post_comment("demo", "lv", "nobody sees this", None, &troll)
        .await;
    let ev = sse.next(wait).await;
    assert_eq!(ev.name, "thread.changed");
    assert!(ev.data.get("comment").is_none(), "{:?}", ev.data);
}

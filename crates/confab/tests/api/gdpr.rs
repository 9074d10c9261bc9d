//! A reader's own data (GDPR): the export (profile, comments on forums on both shard servers,
//! votes, flags, subscriptions, and nothing of anyone else's), deleting an account (comments
//! kept as "deleted user" or removed; sessions end; the address is free again), staff and a
//! forum's moderators on request, and guests by edit token or by a mailed link through the
//! real SMTP sink.

use crate::helpers::*;
use crate::sharding::forum_on;
use crate::smtp::SmtpSink;
use confab_core::id::CommentId;
use confab_core::model::Author;
use confab_store::ReadFrom;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Two forums whose shards lie on different shard servers on PostgreSQL (s1 and s2).
async fn two_forums(app: &TestApp, tag: &str) -> (String, String) {
    let a = forum_on(true, &format!("{tag}a"));
    let b = forum_on(false, &format!("{tag}b"));
    app.forum(&a, json!({})).await;
    app.forum(&b, json!({})).await;
    (a, b)
}

async fn post(
    app: &TestApp,
    forum: &str,
    ident: &str,
    body: &str,
    parent: Option<&str>,
    who: &As,
    extra: Value,
) -> Value {
    let mut b = json!({"forum": forum, "ident": ident, "body": body, "author_name": "Guesty"});
    if let Some(p) = parent {
        b["parent_id"] = json!(p);
    }
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        b[k] = v;
    }
    let r = app
        .post(
            "/api/v1/comments",
            b,
            &who.clone().origin("https://site.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn stored(app: &TestApp, id: &str) -> confab_core::model::Comment {
    app.store
        .comment(CommentId(id.parse().unwrap()), ReadFrom::Primary)
        .await
        .unwrap()
        .unwrap()
}

/// Reads a thread's first page until `ok` holds for it (a PostgreSQL replica may lag).
async fn page_until(app: &TestApp, forum: &str, ident: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .get(
                &format!("/api/v1/comments?forum={forum}&ident={}", urlencode(ident)),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        if ok(&r.body) {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "page never became right: {:#}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn find<'a>(comments: &'a Value, id: &str) -> Option<&'a Value> {
    comments.as_array()?.iter().find_map(|c| {
        if c["id"] == id {
            Some(c)
        } else {
            find(&c["replies"], id)
        }
    })
}

fn comment_ids(export: &Value) -> Vec<String> {
    let mut v: Vec<String> = export["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_export_holds_the_readers_data_and_nobody_elses() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let (fa, fb) = two_forums(&app, "gdx").await;
    let reader = As::bearer(&app.account("reader", false, &[]).await);
    let other = As::bearer(&app.account("other", false, &[]).await);

    let r1 = post(
        &app,
        &fa,
        "/p1",
        "reader on a",
        None,
        &reader,
        json!({"notify": true}),
    )
    .await;
    let r2 = post(&app, &fb, "/p2", "reader on b", None, &reader, json!({})).await;
    let o1 = post(
        &app,
        &fa,
        "/p1",
        "other's words",
        Some(&id(&r1)),
        &other,
        json!({}),
    )
    .await;
    post(
        &app,
        &fa,
        "/p1",
        "a guest's words",
        None,
        &As::guest(),
        json!({"author_email": "guest@example.com"}),
    )
    .await;
    let site = |w: &As| w.clone().origin("https://site.example");
    for (who, c, v) in [(&reader, &o1, 1), (&other, &r1, -1)] {
        let r = app
            .post(
                &format!("/api/v1/comments/{}/vote", id(c)),
                json!({"value": v}),
                &site(who),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let r = app
        .post(
            &format!("/api/v1/comments/{}/flag", id(&o1)),
            json!({"reason": "rude"}),
            &site(&reader),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The reply-mail subscription, confirmed through the mailed link.
    let mails = sink.wait_for(1).await;
    let confirm = mails
        .iter()
        .find(|m| m.to == ["reader@example.com"])
        .expect("confirmation mail")
        .link("/mail/confirm?t=");
    let (status, _) = app.post_form(&confirm, "").await;
    assert_eq!(status, StatusCode::OK);

    let r = app.get("/api/v1/me/data", &reader).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(r.header("cache-control"), Some("private, no-store"));
    let d = r.body;
    assert_eq!(d["account"]["username"], "reader");
    assert_eq!(d["account"]["email"], "reader@example.com");
    let mut want = vec![id(&r1), id(&r2)];
    want.sort();
    assert_eq!(comment_ids(&d), want, "{d:#}");
    let forums: Vec<&str> = d["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["forum"].as_str().unwrap())
        .collect();
    assert!(
        forums.contains(&fa.as_str()) && forums.contains(&fb.as_str()),
        "{forums:?}"
    );
    let c1 = d["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id(&r1))
        .unwrap();
    assert_eq!(c1["body"], "reader on a");
    assert_eq!(c1["thread_ident"], "/p1");
    assert_eq!(
        d["votes"],
        json!([{"forum": fa, "comment_id": id(&o1), "value": 1, "created_at": d["votes"][0]["created_at"]}])
    );
    assert_eq!(d["flags"].as_array().unwrap().len(), 1);
    assert_eq!(d["flags"][0]["comment_id"], id(&o1));
    assert_eq!(d["flags"][0]["reason"], "rude");
    assert_eq!(
        d["subscriptions"],
        json!([{"forum": fa, "email": "reader@example.com", "state": "confirmed",
        "updated_at": d["subscriptions"][0]["updated_at"]}])
    );
    assert_eq!(d["truncated"], false);
    let text = d.to_string();
    for foreign in [
        "other's words",
        "a guest's words",
        "guest@example.com",
        "other@example.com",
    ] {
        assert!(!text.contains(foreign), "{foreign} leaked: {text}");
    }

    // Nobody signed in has nothing to export.
    let r = app.get("/api/v1/me/data", &As::guest()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
}

#[tokio::test]
async fn deleting_an_account_keeps_its_comments_as_deleted_user() {
    let app = spawn().await;
    let (fa, fb) = two_forums(&app, "gdk").await;
    let token = app.account("reader", false, &[]).await;
    let reader = As::bearer(&token);
    let other = As::bearer(&app.account("other", false, &[]).await);
    let r1 = post(&app, &fa, "/k1", "kept words", None, &reader, json!({})).await;
    let r2 = post(&app, &fb, "/k2", "kept too", None, &reader, json!({})).await;
    let o1 = post(
        &app,
        &fa,
        "/k1",
        "a reply",
        Some(&id(&r1)),
        &other,
        json!({}),
    )
    .await;
    // The page is cached with the reader's name in it.
    page_until(&app, &fa, "/k1", |p| {
        find(&p["comments"], &id(&r1)).is_some_and(|c| c["author"]["name"] == "reader")
    })
    .await;
    // The address is taken while the account lives.
    assert!(app
        .svc
        .create_account(
            "reader2",
            Some("reader@example.com"),
            "correct horse battery",
            None,
            false
        )
        .await
        .is_err());

    // A choice that is not one of the two, and unknown fields, are refused.
    for bad in [
        json!({"comments": "maybe"}),
        json!({"comments": "keep", "also": 1}),
        json!({}),
    ] {
        let r = app.post("/api/v1/me/delete", bad, &reader).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    }
    let r = app
        .post("/api/v1/me/delete", json!({"comments": "keep"}), &reader)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"state": "done", "comments": 2, "account_deleted": true})
    );

    // Every session ended.
    assert_eq!(
        app.get("/api/v1/me", &reader).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The pages show "deleted user" with the text, on both forums, the reply untouched.
    let p = page_until(&app, &fa, "/k1", |p| {
        find(&p["comments"], &id(&r1)).is_some_and(|c| c["author"]["name"] == "deleted user")
    })
    .await;
    let c = find(&p["comments"], &id(&r1)).unwrap();
    assert_eq!(c["body"], "kept words");
    assert_eq!(c["author"]["account_id"], Value::Null);
    assert_eq!(
        find(&p["comments"], &id(&o1)).unwrap()["author"]["name"],
        "other"
    );
    assert!(!p.to_string().contains("\"reader\""), "{p:#}");
    page_until(&app, &fb, "/k2", |p| {
        find(&p["comments"], &id(&r2))
            .is_some_and(|c| c["author"]["name"] == "deleted user" && c["body"] == "kept too")
    })
    .await;
    // In the store: no name, address, account or IP hash on the comments, no account to sign in to.
    for c in [&r1, &r2] {
        let s = stored(&app, &id(c)).await;
        assert_eq!(
            s.author,
            Author::Guest {
                name: "deleted user".into(),
                email: None,
                url: None
            }
        );
        assert_eq!(s.ip_hash, "");
        assert_eq!(s.anon_id, None);
    }
    assert!(app.store.credentials("reader").await.unwrap().is_none());
    assert!(app
        .store
        .credentials("reader@example.com")
        .await
        .unwrap()
        .is_none());
    // The address can sign up again.
    app.svc
        .create_account(
            "reader2",
            Some("reader@example.com"),
            "correct horse battery",
            None,
            false,
        )
        .await
        .expect("the address is free again");
}

#[tokio::test]
async fn deleting_with_remove_leaves_placeholders_where_others_replied() {
    let app = spawn().await;
    let (fa, _) = two_forums(&app, "gdr").await;
    let reader = As::bearer(&app.account("reader", false, &[]).await);
    let other = As::bearer(&app.account("other", false, &[]).await);
    let r1 = post(&app, &fa, "/r1", "answered words", None, &reader, json!({})).await;
    let r2 = post(&app, &fa, "/r1", "lonely words", None, &reader, json!({})).await;
    let o1 = post(
        &app,
        &fa,
        "/r1",
        "the answer",
        Some(&id(&r1)),
        &other,
        json!({}),
    )
    .await;
    page_until(&app, &fa, "/r1", |p| p["thread"]["comment_count"] == 3).await;

    let r = app
        .post("/api/v1/me/delete", json!({"comments": "remove"}), &reader)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["comments"], 2);
    let p = page_until(&app, &fa, "/r1", |p| p["thread"]["comment_count"] == 1).await;
    let placeholder = find(&p["comments"], &id(&r1)).expect("a placeholder where someone replied");
    assert_eq!(placeholder["status"], "deleted");
    assert_eq!(placeholder["body"], "");
    assert_eq!(placeholder["author"]["name"], "[deleted]");
    assert!(find(&p["comments"], &id(&r2)).is_none(), "{p:#}");
    assert_eq!(
        find(&p["comments"], &id(&o1)).unwrap()["body"],
        "the answer"
    );
    let text = p.to_string();
    assert!(
        !text.contains("answered words") && !text.contains("lonely words"),
        "{text}"
    );
    let s = stored(&app, &id(&r2)).await;
    assert_eq!((s.body_md.as_str(), s.body_html.as_str()), ("", ""));
    assert_eq!(s.status, confab_core::model::CommentStatus::Deleted);
}

#[tokio::test]
async fn staff_and_a_forums_moderators_act_on_request() {
    let app = spawn().await;
    let (fa, fb) = two_forums(&app, "gds").await;
    let reader = As::bearer(&app.account("reader", false, &[]).await);
    let staff = As::bearer(&app.account("boss", true, &[]).await);
    let moderator = As::bearer(&app.account("mod", false, &[&fa]).await);
    let ra = post(&app, &fa, "/s1", "on a", None, &reader, json!({})).await;
    let rb = post(&app, &fb, "/s2", "on b", None, &reader, json!({})).await;
    let g = post(
        &app,
        &fa,
        "/s1",
        "guest on a",
        None,
        &As::guest(),
        json!({"author_email": "Guest@Example.com"}),
    )
    .await;

    // A forum's moderator sees only what the reader left on their forum, and no profile.
    let r = app
        .get(
            &format!("/api/v1/forums/{fa}/readers/data?account=reader"),
            &moderator,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(comment_ids(&r.body), vec![id(&ra)]);
    assert_eq!(r.body["account"], Value::Null);
    let r = app
        .get(
            &format!("/api/v1/forums/{fa}/readers/data?email=guest%40example.com"),
            &moderator,
        )
        .await;
    assert_eq!(comment_ids(&r.body), vec![id(&g)]);
    assert_eq!(r.body["comments"][0]["guest_email"], "Guest@example.com");
    for q in ["", "?account=reader&email=a%40b.example", "?nobody=1"] {
        let r = app
            .get(&format!("/api/v1/forums/{fa}/readers/data{q}"), &moderator)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {:?}", r.body);
    }
    let r = app
        .get(
            &format!("/api/v1/forums/{fb}/readers/data?account=reader"),
            &moderator,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .post(
            &format!("/api/v1/forums/{fb}/readers/erase"),
            json!({"account": "reader", "comments": "remove"}),
            &moderator,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

    // The moderator erases the reader's comments on their forum; the account and the other
    // forum's comment stay.
    let r = app
        .post(
            &format!("/api/v1/forums/{fa}/readers/erase"),
            json!({"account": "reader", "comments": "remove"}),
            &moderator,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"state": "done", "comments": 1, "account_deleted": false})
    );
    assert_eq!(
        stored(&app, &id(&ra)).await.status,
        confab_core::model::CommentStatus::Deleted
    );
    assert_eq!(stored(&app, &id(&rb)).await.body_md, "on b");
    assert_eq!(app.get("/api/v1/me", &reader).await.status, StatusCode::OK);

    // Staff only, for the whole account.
    let r = app
        .get("/api/v1/staff/readers/reader/data", &moderator)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app.get("/api/v1/staff/readers/nobody/data", &staff).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = app.get("/api/v1/staff/readers/reader/data", &staff).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["account"]["email"], "reader@example.com");
    assert_eq!(comment_ids(&r.body), vec![id(&rb)]);
    let r = app
        .post(
            "/api/v1/staff/readers/reader/delete",
            json!({"comments": "keep"}),
            &staff,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["account_deleted"], true);
    assert_eq!(
        app.get("/api/v1/me", &reader).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        stored(&app, &id(&rb)).await.author,
        Author::Guest {
            name: "deleted user".into(),
            email: None,
            url: None
        }
    );
    // Staff's routes answer the dashboard only (no other origin).
    let r = app
        .get(
            "/api/v1/staff/readers/boss/data",
            &staff.clone().origin("https://site.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
}

#[tokio::test]
async fn a_guest_erases_a_comment_with_its_edit_token() {
    let app = spawn().await;
    let (fa, _) = two_forums(&app, "gde").await;
    let c = post(
        &app,
        &fa,
        "/e1",
        "mine",
        None,
        &As::guest(),
        json!({"author_email": "me@example.com", "author_url": "https://me.example"}),
    )
    .await;
    let other = post(&app, &fa, "/e1", "not mine", None, &As::guest(), json!({})).await;
    let token = c["edit_token"].as_str().unwrap().to_string();
    let site = |a: As| a.origin("https://site.example");

    let r = app
        .get(
            &format!("/api/v1/comments/{}/data", id(&c)),
            &site(As::edit(&token)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(comment_ids(&r.body), vec![id(&c)]);
    assert_eq!(r.body["comments"][0]["guest_email"], "me@example.com");
    // No token, or another comment's token, proves nothing.
    let r = app
        .get(
            &format!("/api/v1/comments/{}/data", id(&c)),
            &site(As::guest()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let r = app
        .get(
            &format!("/api/v1/comments/{}/data", id(&other)),
            &site(As::edit(&token)),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let r = app
        .post(
            &format!("/api/v1/comments/{}/erase", id(&other)),
            json!({"comments": "remove"}),
            &site(As::edit(&token)),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let r = app
        .post(
            &format!("/api/v1/comments/{}/erase", id(&c)),
            json!({"comments": "remove"}),
            &site(As::edit("forged.token")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);

    let r = app
        .post(
            &format!("/api/v1/comments/{}/erase", id(&c)),
            json!({"comments": "keep"}),
            &site(As::edit(&token)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["comments"], 1);
    let s = stored(&app, &id(&c)).await;
    assert_eq!(
        s.author,
        Author::Guest {
            name: "deleted user".into(),
            email: None,
            url: None
        }
    );
    assert_eq!(s.body_md, "mine");
    assert_eq!(stored(&app, &id(&other)).await.body_md, "not mine");
    page_until(&app, &fa, "/e1", |p| {
        find(&p["comments"], &id(&c)).is_some_and(|x| x["author"]["name"] == "deleted user")
    })
    .await;
}

#[tokio::test]
async fn a_guest_erases_through_a_mailed_link() {
    let sink = SmtpSink::start();
    let app = spawn_with(mail_config(&sink)).await;
    let (fa, _) = two_forums(&app, "gdm").await;
    let email = json!({"author_email": "g@example.com"});
    let g1 = post(
        &app,
        &fa,
        "/m1",
        "first of mine",
        None,
        &As::guest(),
        email.clone(),
    )
    .await;
    let g2 = post(
        &app,
        &fa,
        "/m2",
        "second of mine",
        None,
        &As::guest(),
        email,
    )
    .await;
    let o = post(
        &app,
        &fa,
        "/m1",
        "someone else",
        None,
        &As::guest(),
        json!({"author_email": "x@example.com"}),
    )
    .await;

    let site = As::guest().origin("https://site.example");
    for addr in ["g@example.com", "nobody@example.com"] {
        let r = app
            .post(
                "/api/v1/data-requests",
                json!({"forum": fa, "email": addr}),
                &site,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    }
    let r = app
        .post(
            "/api/v1/data-requests",
            json!({"forum": fa, "email": "not an address"}),
            &site,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/data-requests",
            json!({"forum": "no-such-forum", "email": "g@example.com"}),
            &site,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    sink.wait_for(1).await;
    app.settle().await;
    // Only the address that commented is mailed.
    let mails: Vec<_> = sink
        .messages()
        .into_iter()
        .filter(|m| m.text().contains("/mail/reader-data"))
        .collect();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].to, ["g@example.com"]);
    let link = mails[0].link("/mail/reader-data?t=");
    assert!(link.starts_with(&app.base), "{link}");

    // The page changes nothing; it offers the download and both deletions.
    let (status, ct, html) = app.get_page(&link).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(ct.starts_with("text/html"));
    assert!(
        html.contains("value=\"download\"")
            && html.contains("value=\"keep\"")
            && html.contains("value=\"remove\""),
        "{html}"
    );
    assert_eq!(stored(&app, &id(&g1)).await.body_md, "first of mine");

    let (status, body) = app.post_form(&link, "action=download").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d: Value = serde_json::from_str(&body).unwrap();
    let mut want = vec![id(&g1), id(&g2)];
    want.sort();
    assert_eq!(comment_ids(&d), want);
    assert!(
        !body.contains("someone else") && !body.contains("x@example.com"),
        "{body}"
    );

    // Bad, tampered and expired links do nothing.
    let (status, _) = app.post_form(&format!("{link}x"), "action=remove").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post_form(&format!("{}/mail/reader-data", app.base), "action=remove")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.post_form(&link, "action=burn").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let signer = confab_core::sign::Signer::new(b"test-secret-key-0123456789abcdef");
    let forum_id = app.svc.forum(&fa).unwrap().id;
    let expired = confab_worker::links::reader_data_token(
        &signer,
        forum_id,
        "g@example.com",
        1,
        confab_core::now_ms() - 2 * 3600 * 1000,
    );
    let (status, _) = app
        .post_form(
            &format!("{}/mail/reader-data?t={expired}", app.base),
            "action=remove",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(stored(&app, &id(&g1)).await.body_md, "first of mine");

    let (status, html) = app.post_form(&link, "action=remove").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("2 comment(s)"), "{html}");
    for g in [&g1, &g2] {
        let s = stored(&app, &id(g)).await;
        assert_eq!(s.status, confab_core::model::CommentStatus::Deleted);
        assert_eq!(
            s.author,
            Author::Guest {
                name: "deleted user".into(),
                email: None,
                url: None
            }
        );
        assert_eq!(s.body_md, "");
    }
    assert_eq!(stored(&app, &id(&o)).await.body_md, "someone else");
    // The link works once.
    let (status, html) = app.post_form(&link, "action=keep").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
}

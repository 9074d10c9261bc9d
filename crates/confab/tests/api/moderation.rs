use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn pre_moderation_hides_until_approved() {
    let app = spawn().await;
    app.forum("premod", json!({"moderation": "pre"})).await;
    let modr = app.account("premodder", false, &["premod"]).await;
    let r = app
        .post_comment("premod", "p", "wait for me", None, &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["status"], "pending");
    let author = As::anon(r.body["anon_token"].as_str().unwrap());
    let id = r.body["id"].as_str().unwrap().to_string();
    let page = |who: As| {
        let app = &app;
        async move { app.get("/api/v1/comments?forum=premod&ident=p", &who).await }
    };
    assert_eq!(
        ids(&page(As::guest()).await.body["comments"]),
        Vec::<String>::new(),
        "public does not see it"
    );
    let other = app
        .post_comment("premod", "other", "x", None, &As::guest())
        .await;
    let stranger = As::anon(other.body["anon_token"].as_str().unwrap());
    assert!(
        ids(&page(stranger.clone()).await.body["comments"]).is_empty(),
        "another guest does not see it"
    );
    let mine = page(author.clone()).await;
    assert_eq!(
        ids(&mine.body["comments"]),
        vec![id.clone()],
        "its author does"
    );
    assert_eq!(mine.body["comments"][0]["status"], "pending");
    let m = page(As::bearer(&modr)).await;
    assert_eq!(
        ids(&m.body["comments"]),
        vec![id.clone()],
        "moderators do: {}",
        m.body
    );

    let q = app
        .get(
            "/api/v1/forums/premod/comments?queue=pending",
            &As::bearer(&modr),
        )
        .await;
    let other_id = other.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        ids(&q.body["comments"]),
        vec![other_id, id.clone()],
        "newest first"
    );
    assert!(q.body["comments"][0]["ip_hash"].is_string());
    let a = app
        .post(
            "/api/v1/forums/premod/moderate",
            json!({"ids": [id], "action": "approve"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(a.body["changed"], 1);
    let public = page(As::guest()).await;
    assert_eq!(ids(&public.body["comments"]), vec![id.clone()]);
    assert_eq!(public.body["thread"]["comment_count"], 1);
}

#[tokio::test]
async fn links_mode_holds_only_comments_with_links() {
    let app = spawn().await;
    app.forum("linky", json!({"moderation": "links"})).await;
    let plain = app
        .post_comment("linky", "l", "no links", None, &As::guest())
        .await;
    assert_eq!(plain.body["status"], "approved");
    let link = app
        .post_comment(
            "linky",
            "l",
            "see [this](https://spam.example)",
            None,
            &As::guest(),
        )
        .await;
    assert_eq!(link.body["status"], "pending");
}

#[tokio::test]
async fn spam_delete_restore_adjust_counts_and_log() {
    let app = spawn().await;
    let modr = app.account("mod1", false, &["demo"]).await;
    let a = app.comment("mod", "a", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.comment("mod", "b", Some(&a)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let me = As::bearer(&modr);
    let act = |action: &'static str, id: String| {
        let (app, me) = (&app, me.clone());
        async move {
            app.post(
                "/api/v1/forums/demo/moderate",
                json!({"ids": [id], "action": action}),
                &me,
            )
            .await
        }
    };
    assert_eq!(act("spam", b.clone()).await.body["changed"], 1);
    let p = app.page("mod", "", &As::guest()).await;
    assert_eq!(p.body["thread"]["comment_count"], 1);
    assert_eq!(p.body["comments"][0]["reply_count"], 0);
    assert_eq!(ids(&p.body["comments"]), vec![a.clone()]);
    assert_eq!(act("restore", b.clone()).await.body["changed"], 1);
    assert_eq!(act("delete", a.clone()).await.body["changed"], 1);
    let p = app.page("mod", "", &As::guest()).await;
    assert_eq!(p.body["thread"]["comment_count"], 1);
    assert_eq!(
        p.body["comments"][0]["status"], "deleted",
        "tombstone keeps the reply visible"
    );
    let spam = app
        .get("/api/v1/forums/demo/comments?queue=deleted", &me)
        .await;
    assert_eq!(ids(&spam.body["comments"]), vec![a.clone()]);
    assert_eq!(
        spam.body["comments"][0]["body"], "a",
        "moderators still see the text"
    );
    let bulk = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [a, b], "action": "spam"}),
            &me,
        )
        .await;
    assert_eq!(bulk.body["changed"], 2);
    let log = app.get("/api/v1/forums/demo/log", &me).await;
    let actions: Vec<&str> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["spam", "spam", "delete", "restore", "spam"]);
    let bad = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": ["1"], "action": "explode"}),
            &me,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let stats = app.get("/api/v1/forums/demo/stats?days=7", &me).await;
    let daily = stats.body["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 7);
    assert_eq!(daily[6]["count"], 2);
}

#[tokio::test]
async fn only_moderators_moderate() {
    let app = spawn().await;
    let user = app.account("plain", false, &[]).await;
    let other_mod = app.account("othermod", false, &[]).await;
    app.forum("elsewhere", json!({})).await;
    app.svc
        .set_moderator(
            &app.store.credentials("othermod").await.unwrap().unwrap().0,
            "elsewhere",
            true,
        )
        .await
        .unwrap();
    let c = app.comment("perm", "x", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for who in [As::guest(), As::bearer(&user), As::bearer(&other_mod)] {
        let r = app
            .post(
                "/api/v1/forums/demo/moderate",
                json!({"ids": [c], "action": "delete"}),
                &who,
            )
            .await;
        assert!(
            matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{:?}",
            r.body
        );
        let r = app.get("/api/v1/forums/demo/comments", &who).await;
        assert!(matches!(
            r.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ));
        let r = app
            .req(
                Method::PATCH,
                "/api/v1/forums/demo",
                Some(json!({"moderation": "pre"})),
                &who,
            )
            .await;
        assert!(matches!(
            r.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ));
    }
    let staff = app.account("boss", true, &[]).await;
    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [c], "action": "delete"}),
            &As::bearer(&staff),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "staff moderate everything");
    let r = app
        .post(
            "/api/v1/forums",
            json!({"name": "new-site", "allowed_origins": ["https://new.example"]}),
            &As::bearer(&staff),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/forums",
            json!({"name": "nope"}),
            &As::bearer(&user),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bans_stop_authors_until_lifted() {
    let app = spawn().await;
    let modr = app.account("banner", false, &["demo"]).await;
    let me = As::bearer(&modr);
    let r = app
        .post("/api/v1/comments", json!({"forum": "demo", "ident": "ban", "body": "spam", "author_email": "troll@example.com"}), &As::guest())
        .await;
    let troll = As::anon(r.body["anon_token"].as_str().unwrap());
    let b = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"comment_id": r.body["id"], "reason": "spam"}),
            &me,
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{:?}", b.body);
    let bans = b.body["bans"].as_array().unwrap();
    // Without a choice, a guest who gave an e-mail is banned by it (not by an address others
    // may share).
    assert_eq!(bans.len(), 1, "the e-mail: {bans:?}");
    assert_eq!(bans[0]["kind"], "email");
    let again = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "ban", "body": "more spam", "author_email": "troll@example.com"}),
            &troll,
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::FORBIDDEN, "banned")
    );
    for ban in bans {
        let r = app
            .req(
                Method::DELETE,
                &format!("/api/v1/forums/demo/bans/{}", ban["id"].as_str().unwrap()),
                None,
                &me,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(
        app.post_comment("demo", "ban", "sorry", None, &troll)
            .await
            .status,
        StatusCode::CREATED
    );

    // Ban by e-mail, with expiry; an account ban.
    let r = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "email", "value": "X@Example.com", "expires_in_secs": 3600}),
            &me,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "ban", "body": "hi", "author_email": "x@example.com"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.code(), "banned");
    let user = app.account("baduser", false, &[]).await;
    let id = app.get("/api/v1/me", &As::bearer(&user)).await.body["id"].clone();
    app.post(
        "/api/v1/forums/demo/bans",
        json!({"kind": "account", "value": id}),
        &me,
    )
    .await;
    assert_eq!(
        app.post_comment("demo", "ban", "hi", None, &As::bearer(&user))
            .await
            .code(),
        "banned"
    );
    let bad = app
        .post(
            "/api/v1/forums/demo/bans",
            json!({"kind": "ip", "value": "not-an-ip"}),
            &me,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn closed_threads_refuse_new_comments() {
    let app = spawn().await;
    let modr = app.account("closer", false, &["demo"]).await;
    let c = app.comment("closing", "last word", None).await;
    let t = app
        .req(
            Method::PATCH,
            &format!("/api/v1/threads/{}", c["thread_id"].as_str().unwrap()),
            Some(json!({"closed": true})),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
    assert_eq!(t.body["closed"], true);
    let r = app
        .post_comment("demo", "closing", "too late", None, &As::guest())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "thread_closed")
    );
    // One change moves the sequence by one, however many fields it sets; no change, not at all.
    let path = format!("/api/v1/threads/{}", c["thread_id"].as_str().unwrap());
    let seq = t.body["seq"].as_i64().unwrap();
    let both = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"closed": false, "title": "New title"})),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(both.body["seq"].as_i64(), Some(seq + 1));
    let same = app
        .req(
            Method::PATCH,
            &path,
            Some(json!({"closed": false})),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(same.body["seq"].as_i64(), Some(seq + 1));
    app.req(
        Method::PATCH,
        &path,
        Some(json!({"closed": true})),
        &As::bearer(&modr),
    )
    .await;
    let p = app.page("closing", "", &As::guest()).await;
    assert_eq!(p.body["thread"]["closed"], true);
}

#[tokio::test]
async fn settings_change_and_validate() {
    let app = spawn().await;
    let modr = app.account("setter", false, &["demo"]).await;
    let me = As::bearer(&modr);
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"moderation": "pre", "edit_window_secs": 60})),
            &me,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["settings"]["moderation"], "pre");
    assert_eq!(
        app.post_comment("demo", "s", "x", None, &As::guest())
            .await
            .body["status"],
        "pending"
    );
    for bad in [
        json!({"allowed_origins": ["javascript:alert(1)"]}),
        json!({"edit_window_secs": -1}),
        json!({"moderation": "maybe"}),
        json!({"title": ""}),
    ] {
        let r = app
            .req(Method::PATCH, "/api/v1/forums/demo", Some(bad.clone()), &me)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let forums = app.get("/api/v1/forums", &me).await;
    assert_eq!(forums.body[0]["name"], "demo");
}

#[tokio::test]
async fn gravatar_hashes_go_out_only_when_the_forum_shows_them() {
    use sha2::{Digest, Sha256};
    let app = spawn().await;
    let me = As::bearer(&app.account("avatars", false, &["demo"]).await);
    for (name, email) in [("Ann", Some("Ann@Example.com")), ("Bob", None)] {
        let mut b = json!({"forum": "demo", "ident": "g", "body": format!("hi from {name}"), "author_name": name});
        if let Some(e) = email {
            b["author_email"] = json!(e);
        }
        assert_eq!(
            app.post("/api/v1/comments", b, &As::guest()).await.status,
            StatusCode::CREATED
        );
    }
    let gravatars = || async {
        let page = app.page("g", "&sort=oldest", &As::guest()).await;
        page.body["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["author"]["gravatar"].clone())
            .collect::<Vec<_>>()
    };
    // Off by default: nothing that could identify an address leaves the server.
    assert_eq!(gravatars().await, vec![json!(null), json!(null)]);

    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"gravatar": true})),
            &me,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["settings"]["gravatar"], true);
    // The cached page stops being served at once: the setting is part of its key.
    let hash: String = Sha256::digest(b"ann@example.com")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        gravatars().await,
        vec![json!(hash), json!(null)],
        "the lower-cased address's SHA-256; none without an address"
    );

    app.req(
        Method::PATCH,
        "/api/v1/forums/demo",
        Some(json!({"gravatar": false})),
        &me,
    )
    .await;
    assert_eq!(gravatars().await, vec![json!(null), json!(null)]);
}

/// The registry reloads every few seconds and after every change; a reload that read before a
/// change must never be installed after it (a new forum would vanish, new settings revert).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forums_and_settings_are_seen_at_once_while_the_registry_reloads() {
    let app = spawn().await;
    let me = As::bearer(&app.account("racer", true, &[]).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reloaders: Vec<_> = (0..2)
        .map(|_| {
            let (svc, stop) = (app.svc.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    svc.refresh_forums().await.unwrap();
                }
            })
        })
        .collect();
    for i in 0..40 {
        let name = app.forum(&format!("race{i}"), json!({})).await;
        assert!(
            app.svc.forum(&name).is_ok(),
            "{name} was created but is not found"
        );
        let window = 60 + i64::from(i);
        let r = app
            .req(
                Method::PATCH,
                &format!("/api/v1/forums/{name}"),
                Some(json!({"edit_window_secs": window})),
                &me.clone().origin("https://site.example"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(
            app.svc.forum(&name).unwrap().settings.edit_window_secs,
            window,
            "{name}'s new settings are in force"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in reloaders {
        r.await.unwrap();
    }
}

/// Accounts are cached; a read that started before a role change must never put the old
/// roles back into the cache after the change forgot them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_changes_take_effect_at_once_while_accounts_are_read() {
    let app = spawn().await;
    app.account("flipper", false, &[]).await;
    let acct = app.store.credentials("flipper").await.unwrap().unwrap().0;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (svc, stop, id) = (app.svc.clone(), stop.clone(), acct.id);
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    svc.account(id).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for i in 0..600 {
        let on = i % 2 == 0;
        app.svc.set_moderator(&acct, "demo", on).await.unwrap();
        // Removal also ends the account's sessions: sign in again (as of the store, not a cache).
        let now = app.store.credentials("flipper").await.unwrap().unwrap().0;
        let token = app.svc.session_token(&now);
        let r = app
            .get("/api/v1/forums/demo/comments", &As::bearer(&token))
            .await;
        let expect = if on {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(
            r.status, expect,
            "round {i}: moderator {on} is in force at once"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
}

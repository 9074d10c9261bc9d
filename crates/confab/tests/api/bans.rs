//! Issue 14 items 4 and 5: bans that don't hurt the innocent (what, for how long, why; IP
//! bans for a day, never matching the moderator or stopping the forum's moderators; a list
//! that says what each ban matched, masked; expiry; lifting), and moderation with context
//! (thread, link, flag reasons, author history, queue sizes, a log with names). Through the
//! API, on SQLite and (with `CONFAB_TEST_BACKEND=postgres`) on PostgreSQL.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A server that believes `X-Forwarded-For` from this host, so each test client can have its
/// own address.
async fn app() -> TestApp {
    let mut c = config();
    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    spawn_with(c).await
}

/// A request from `ip`.
async fn from(
    app: &TestApp,
    ip: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    who: &As,
) -> Resp {
    let mut r = app
        .http
        .request(method, format!("{}{}", app.base, path))
        .header("x-forwarded-for", ip);
    if let Some(b) = &body {
        r = r.json(b);
    }
    if let Some(t) = &who.bearer {
        r = r.bearer_auth(t);
    }
    if let Some(t) = &who.anon {
        r = r.header("x-confab-anon", t);
    }
    let resp = r.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    Resp {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Posts on thread `ident` from `ip`.
async fn post_from(app: &TestApp, ip: &str, who: &As, body: Value) -> Resp {
    let mut b = json!({"forum": "demo", "ident": "bans", "url": "http://127.0.0.1:1/post", "title": "A post about bans", "body": "hello"});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    from(app, ip, Method::POST, "/api/v1/comments", Some(b), who).await
}

async fn ban_from(app: &TestApp, ip: &str, me: &As, body: Value) -> Resp {
    from(
        app,
        ip,
        Method::POST,
        "/api/v1/forums/demo/bans",
        Some(body),
        me,
    )
    .await
}

async fn ban_list(app: &TestApp, me: &As) -> Vec<Value> {
    let r = app.get("/api/v1/forums/demo/bans", me).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["bans"].as_array().unwrap().clone()
}

fn near(ms: &Value, want: i64) {
    let got = ms.as_i64().unwrap_or_else(|| panic!("a time: {ms}"));
    assert!((got - want).abs() < 120_000, "{got} is not about {want}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const MOD_IP: &str = "198.51.100.1";
const TROLL_IP: &str = "198.51.100.2";
const NEIGHBOUR_IP: &str = "198.51.100.3";

#[tokio::test]
async fn ip_bans_last_a_day_and_never_hit_moderators() {
    let app = app().await;
    let me = As::bearer(&app.account("banmod", false, &["demo"]).await);
    let troll = post_from(
        &app,
        TROLL_IP,
        &As::guest(),
        json!({"author_name": "Troll", "author_email": "troll@example.com", "body": "spam spam"}),
    )
    .await;
    assert_eq!(troll.status, StatusCode::CREATED, "{:?}", troll.body);
    let cid = troll.body["id"].as_str().unwrap().to_string();

    // IP, no duration: one day.
    let r = ban_from(
        &app,
        MOD_IP,
        &me,
        json!({"comment_id": cid, "kind": "ip", "reason": "flooding"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let bans = r.body["bans"].as_array().unwrap();
    assert_eq!(bans.len(), 1);
    let b = &bans[0];
    assert_eq!(b["kind"], "ip");
    assert_eq!(b["shown"], format!("the address of comment {cid} by Troll"));
    assert_eq!(b["comment_id"], cid.as_str());
    assert_eq!(b["reason"], "flooding");
    assert_eq!(b["created_by"]["name"], "banmod");
    assert_eq!(b["active"], true);
    assert_eq!(b["shadow"], false);
    assert!(b["value"].is_null(), "an address's hash is not shown: {b}");
    near(&b["expires_at"], now_ms() + 24 * 3600 * 1000);

    // The log names the comment, its thread and the moderator, and shows the value masked.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = app.get("/api/v1/forums/demo/log", &me).await.body;
        let entry = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "ban")
            .cloned();
        if let Some(e) = entry {
            assert_eq!(e["comment_id"], cid.as_str());
            assert_eq!(e["actor_name"], "banmod");
            assert_eq!(e["thread_title"], "A post about bans");
            assert_eq!(
                e["detail"],
                format!("ip the address of comment {cid} by Troll")
            );
            break;
        }
        assert!(Instant::now() < deadline, "no ban in the log: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The author is told until when and why; a neighbour on another address is not banned.
    let r = post_from(
        &app,
        TROLL_IP,
        &As::guest(),
        json!({"author_name": "Troll"}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "banned"));
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("You can't comment on this site until 20"),
        "{msg}"
    );
    assert!(msg.ends_with(" UTC: flooding"), "{msg}");
    let r = post_from(
        &app,
        NEIGHBOUR_IP,
        &As::guest(),
        json!({"author_name": "Neighbour"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // A moderator and a staff member on the banned address post and vote as ever.
    let other_mod = As::bearer(&app.account("othermod", false, &["demo"]).await);
    let r = post_from(&app, TROLL_IP, &other_mod, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let staff = As::bearer(&app.account("staffer", true, &[]).await);
    let r = post_from(&app, TROLL_IP, &staff, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = from(
        &app,
        TROLL_IP,
        Method::POST,
        &format!("/api/v1/comments/{cid}/vote"),
        Some(json!({"value": 1})),
        &other_mod,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // A plain reader on it is refused a vote too.
    let reader = As::bearer(&app.account("plainreader", false, &[]).await);
    let r = from(
        &app,
        TROLL_IP,
        Method::POST,
        &format!("/api/v1/comments/{cid}/vote"),
        Some(json!({"value": 1})),
        &reader,
    )
    .await;
    assert_eq!(r.code(), "banned");

    // An IP ban that would match the moderator's own address is refused, and writes nothing.
    let same = post_from(
        &app,
        MOD_IP,
        &As::guest(),
        json!({"author_name": "Housemate", "author_email": "mate@example.com"}),
    )
    .await;
    let same_id = same.body["id"].as_str().unwrap();
    for body in [
        json!({"comment_id": same_id, "kind": "ip"}),
        json!({"comment_id": same_id, "kind": "ip+email"}),
        json!({"kind": "ip", "value": MOD_IP}),
    ] {
        let r = ban_from(&app, MOD_IP, &me, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "conflict"),
            "{body}"
        );
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("your own address"));
    }
    assert_eq!(ban_list(&app, &me).await.len(), 1, "nothing half-written");
    // Her e-mail alone may be banned.
    let r = ban_from(
        &app,
        MOD_IP,
        &me,
        json!({"comment_id": same_id, "kind": "email"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Lifting the IP ban lets the author back.
    let ip_ban = ban_list(&app, &me)
        .await
        .into_iter()
        .find(|b| b["kind"] == "ip")
        .unwrap();
    let r = app
        .req(
            Method::DELETE,
            &format!(
                "/api/v1/forums/demo/bans/{}",
                ip_ban["id"].as_str().unwrap()
            ),
            None,
            &me,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = post_from(
        &app,
        TROLL_IP,
        &As::guest(),
        json!({"author_name": "Troll"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Lifting it again: 404.
    let r = app
        .req(
            Method::DELETE,
            &format!(
                "/api/v1/forums/demo/bans/{}",
                ip_ban["id"].as_str().unwrap()
            ),
            None,
            &me,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ban_kinds_durations_expiry_and_validation() {
    let app = app().await;
    let me = As::bearer(&app.account("kindmod", false, &["demo"]).await);
    let guest = post_from(
        &app,
        TROLL_IP,
        &As::guest(),
        json!({"author_name": "Troll", "author_email": "Troll@Example.com"}),
    )
    .await;
    let gid = guest.body["id"].as_str().unwrap().to_string();
    let user = As::bearer(&app.account("meanuser", false, &[]).await);
    let acct = post_from(&app, NEIGHBOUR_IP, &user, json!({})).await;
    let aid = acct.body["id"].as_str().unwrap().to_string();
    let nomail = post_from(
        &app,
        "198.51.100.9",
        &As::guest(),
        json!({"author_name": "Anon"}),
    )
    .await;
    let nid = nomail.body["id"].as_str().unwrap().to_string();

    // Validation: each refused with 400 and nothing written.
    for body in [
        json!({"comment_id": gid, "kind": "subnet"}),
        json!({"comment_id": gid, "duration": "month"}),
        json!({"comment_id": gid, "duration": "day", "expires_in_secs": 60}),
        json!({"comment_id": gid, "expires_in_secs": 0}),
        json!({"comment_id": gid, "value": "x@example.com"}),
        json!({"comment_id": aid, "kind": "email"}),
        json!({"comment_id": nid, "kind": "email"}),
        json!({"comment_id": nid, "kind": "account"}),
        json!({"kind": "ip+email", "value": "1.2.3.4"}),
        json!({"kind": "email", "value": "not an e-mail"}),
        json!({"comment_id": gid, "reason": "x".repeat(501)}),
    ] {
        let r = ban_from(&app, MOD_IP, &me, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert!(r.body["error"]["message"].is_string());
    }
    assert!(ban_list(&app, &me).await.is_empty());

    // IP + e-mail for a week: two bans, the e-mail masked, neither value shown whole.
    let r = ban_from(
        &app,
        MOD_IP,
        &me,
        json!({"comment_id": gid, "kind": "ip+email", "duration": "week", "reason": "trolling"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let bans = r.body["bans"].as_array().unwrap();
    assert_eq!(bans.len(), 2);
    for b in bans {
        near(&b["expires_at"], now_ms() + 7 * 24 * 3600 * 1000);
        assert_eq!(b["reason"], "trolling");
    }
    let email = bans.iter().find(|b| b["kind"] == "email").unwrap();
    assert_eq!(email["shown"], "T***@example.com");
    let text = r.body.to_string().to_lowercase();
    assert!(!text.contains("troll@example.com"), "{text}");
    assert!(!text.contains(TROLL_IP), "{text}");
    // The author is banned on another address too (by the e-mail).
    let r = post_from(
        &app,
        "198.51.100.50",
        &As::guest(),
        json!({"author_email": "troll@example.com"}),
    )
    .await;
    assert_eq!(r.code(), "banned");

    // An account author, for good: no expiry, shown by name.
    let r = ban_from(
        &app,
        MOD_IP,
        &me,
        json!({"comment_id": aid, "kind": "account", "duration": "forever"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b = r.body["bans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["kind"] == "account")
        .unwrap()
        .clone();
    assert!(b["expires_at"].is_null());
    assert_eq!(b["shown"], "the account of meanuser");
    let r = post_from(&app, "198.51.100.51", &user, json!({})).await;
    assert_eq!(r.code(), "banned");
    assert_eq!(
        r.body["error"]["message"],
        "You can't comment on this site."
    );

    // A shadow ban is listed as one.
    let r = ban_from(
        &app,
        MOD_IP,
        &me,
        json!({"kind": "email", "value": "quiet@example.com", "shadow": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let b = ban_list(&app, &me)
        .await
        .into_iter()
        .find(|b| b["shown"] == "q***@example.com")
        .unwrap();
    assert_eq!(
        (b["shadow"].clone(), b["kind"].clone()),
        (json!(true), json!("email"))
    );

    // Expiry: a ban past its time stops matching and is listed as lapsed.
    let r = ban_from(
        &app,
        MOD_IP,
        &me,
        json!({"comment_id": nid, "expires_in_secs": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = post_from(&app, "198.51.100.9", &As::guest(), json!({})).await;
    assert_eq!(r.code(), "banned");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = post_from(&app, "198.51.100.9", &As::guest(), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let lapsed = ban_list(&app, &me)
        .await
        .into_iter()
        .find(|b| b["comment_id"] == nid.as_str())
        .unwrap();
    assert_eq!(lapsed["active"], false);

    // Only the forum's moderators see or make bans.
    let r = ban_from(
        &app,
        MOD_IP,
        &user,
        json!({"comment_id": gid, "kind": "ip"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/api/v1/forums/demo/bans", &user).await.status,
        StatusCode::FORBIDDEN
    );
}

/// The queue `q` once `ok` holds (PostgreSQL reads it from a replica).
async fn queue_until(app: &TestApp, me: &As, q: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .get(&format!("/api/v1/forums/demo/comments?queue={q}"), me)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        if ok(&r.body) {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "queue {q} never matched: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_queue_and_the_log_carry_context() {
    let app = app().await;
    let me = As::bearer(&app.account("ctxmod", false, &["demo"]).await);
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"moderation": "pre"})),
            &me,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let guest = |body: &str| json!({"author_name": "Regular", "author_email": "regular@example.com", "body": body});
    let a = post_from(&app, TROLL_IP, &As::guest(), guest("first")).await;
    let b = post_from(&app, TROLL_IP, &As::guest(), guest("second")).await;
    let c = post_from(&app, TROLL_IP, &As::guest(), guest("third")).await;
    let ids: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|r| r.body["id"].as_str().unwrap().to_string())
        .collect();
    for (id, action) in [(&ids[0], "approve"), (&ids[1], "spam")] {
        let r = app
            .post(
                "/api/v1/forums/demo/moderate",
                json!({"ids": [id], "action": action}),
                &me,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    // Two readers flag the approved one, for reasons.
    for (who, reason) in [("flagger1", "spam"), ("flagger2", "spam")] {
        let f = As::bearer(&app.account(who, false, &[]).await);
        let r = from(
            &app,
            NEIGHBOUR_IP,
            Method::POST,
            &format!("/api/v1/comments/{}/flag", ids[0]),
            Some(json!({"reason": reason})),
            &f,
        )
        .await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    let f = As::bearer(&app.account("flagger3", false, &[]).await);
    from(
        &app,
        NEIGHBOUR_IP,
        Method::POST,
        &format!("/api/v1/comments/{}/flag", ids[0]),
        Some(json!({"reason": "off topic"})),
        &f,
    )
    .await;

    let body = queue_until(&app, &me, "all", |b| {
        b["comments"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["flag_reasons"].as_array().is_some_and(|r| r.len() == 2))
                && cs.iter().any(|c| {
                    c["author_history"]["spam"] == 1 && c["author_history"]["approved"] == 1
                })
        })
    })
    .await;
    assert_eq!(
        body["counts"],
        json!({"pending": 1, "flagged": 1, "spam": 1, "cap": 1000})
    );
    let items = body["comments"].as_array().unwrap();
    let flagged = items.iter().find(|c| c["id"] == ids[0].as_str()).unwrap();
    assert_eq!(flagged["thread"]["title"], "A post about bans");
    assert_eq!(flagged["thread"]["url"], "http://127.0.0.1:1/post");
    assert_eq!(
        flagged["link"],
        format!("http://127.0.0.1:1/post#comment-{}", ids[0])
    );
    assert_eq!(
        flagged["flag_reasons"],
        json!([{"reason": "spam", "count": 2}, {"reason": "off topic", "count": 1}])
    );
    let h = &flagged["author_history"];
    assert_eq!(
        (
            h["approved"].as_i64(),
            h["pending"].as_i64(),
            h["spam"].as_i64(),
            h["deleted"].as_i64()
        ),
        (Some(1), Some(1), Some(1), Some(0))
    );
    assert!(h["first_seen"].as_str().unwrap().ends_with('Z'));
    // A guest without an e-mail has no history to show.
    post_from(
        &app,
        TROLL_IP,
        &As::guest(),
        json!({"author_name": "Nobody"}),
    )
    .await;
    let body = queue_until(&app, &me, "pending", |b| b["counts"]["pending"] == 2).await;
    let nobody = body["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["author"]["name"] == "Nobody")
        .unwrap();
    assert!(nobody["author_history"].is_null());
    assert!(nobody["flag_reasons"].as_array().unwrap().is_empty());

    // The log names the moderator and the thread.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get("/api/v1/forums/demo/log", &me).await;
        assert_eq!(r.status, StatusCode::OK);
        let e = r.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "spam")
            .cloned();
        if let Some(e) = e {
            assert_eq!(e["actor_name"], "ctxmod");
            assert_eq!(e["thread_title"], "A post about bans");
            assert_eq!(
                e["link"],
                format!("http://127.0.0.1:1/post#comment-{}", ids[1])
            );
            break;
        }
        assert!(Instant::now() < deadline, "no spam entry: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_queue_page_reads_its_context_in_a_fixed_number_of_statements() {
    use confab_server::service::{Caller, ModListFilter};
    let app = app().await;
    let token = app.account("countmod", false, &["demo"]).await;
    let me = As::bearer(&token);
    let id = app.get("/api/v1/me", &me).await.body["id"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    let caller = Caller {
        account: Some(confab_core::id::AccountId(id)),
        ip: MOD_IP.parse().unwrap(),
        ..Caller::public()
    };
    let mut statements = Vec::new();
    let mut posted = 0;
    for n in [2, 12] {
        // n more comments, each by its own author on its own thread, each flagged.
        for i in 0..n {
            let who = As::bearer(&app.account(&format!("author{n}x{i}"), false, &[]).await);
            let r = post_from(
                &app,
                NEIGHBOUR_IP,
                &who,
                json!({"ident": format!("t{n}x{i}"), "body": format!("c {i}")}),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            let f = As::bearer(&app.account(&format!("flag{n}x{i}"), false, &[]).await);
            from(
                &app,
                NEIGHBOUR_IP,
                Method::POST,
                &format!("/api/v1/comments/{}/flag", r.body["id"].as_str().unwrap()),
                Some(json!({"reason": "rude"})),
                &f,
            )
            .await;
            posted += 1;
        }
        let m = app.svc.moderate(&caller, "demo").await.unwrap();
        // On PostgreSQL the queue is read from a replica: wait until it has every flag.
        let deadline = Instant::now() + Duration::from_secs(10);
        let q = loop {
            let filter = ModListFilter::parse(Some("all"), None, None, 50).unwrap();
            let (page, q) = confab_store::count_queries(app.svc.mod_list(&m, filter)).await;
            let page = page.unwrap();
            if page.comments.len() == posted
                && page
                    .comments
                    .iter()
                    .all(|c| c.author_history.is_some() && c.flag_reasons.len() == 1)
            {
                break q;
            }
            assert!(
                Instant::now() < deadline,
                "the queue never showed every flag"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        statements.push(q);
    }
    assert_eq!(
        statements[0], statements[1],
        "statements for 2 and for 14 comments: {statements:?}"
    );
}

#[tokio::test]
async fn moderators_pin_a_comment_first_on_its_thread() {
    let app = app().await;
    let me = As::bearer(&app.account("pinmod", false, &["demo"]).await);
    let mut ids = Vec::new();
    for body in ["one", "two", "three"] {
        let r = post_from(
            &app,
            NEIGHBOUR_IP,
            &As::guest(),
            json!({"ident": "pins", "body": body}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let thread = app.page("pins", "", &As::guest()).await.body["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = post_from(
        &app,
        NEIGHBOUR_IP,
        &As::guest(),
        json!({"ident": "pins", "body": "a reply", "parent_id": ids[0]}),
    )
    .await;
    let reply = reply.body["id"].as_str().unwrap().to_string();
    let patch = |who: As, body: Value| {
        let app = &app;
        let thread = thread.clone();
        async move {
            app.req(
                Method::PATCH,
                &format!("/api/v1/threads/{thread}"),
                Some(body),
                &who,
            )
            .await
        }
    };

    // Only a moderator, only a published top-level comment of the thread.
    let reader = As::bearer(&app.account("pinreader", false, &[]).await);
    assert_eq!(
        patch(reader, json!({"pinned": ids[2]})).await.status,
        StatusCode::FORBIDDEN
    );
    for bad in [json!(reply), json!("not an id"), json!("123")] {
        let r = patch(me.clone(), json!({ "pinned": bad })).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }

    // The id as a JSON integer is the same pin (the schema allows both, as for other ids).
    let as_int: u64 = ids[2].parse().unwrap();
    let r = patch(me.clone(), json!({ "pinned": as_int })).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["pinned_id"], ids[2].as_str());
    let r = patch(me.clone(), json!({"pinned": ids[2]})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["pinned_id"], ids[2].as_str());
    let order = |page: &Value| -> Vec<String> {
        page["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    // First on the first page, whatever the sort; not again on a later page.
    let first = app
        .page("pins", "&sort=oldest&limit=2", &As::guest())
        .await
        .body;
    assert_eq!(first["thread"]["pinned_id"], ids[2].as_str());
    assert_eq!(
        order(&first),
        vec![ids[2].clone(), ids[0].clone(), ids[1].clone()]
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .page(
            "pins",
            &format!("&sort=oldest&limit=2&cursor={cursor}"),
            &As::guest(),
        )
        .await
        .body;
    assert!(order(&second).is_empty(), "{second}");
    let newest = app.page("pins", "&sort=newest", &As::guest()).await.body;
    assert_eq!(
        order(&newest),
        vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    let first_by_oldest = app.page("pins", "&sort=oldest", &As::guest()).await.body;
    assert_eq!(order(&first_by_oldest)[0], ids[2]);

    // Unpinned: back in its place.
    let r = patch(me.clone(), json!({"pinned": ""})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["pinned_id"].is_null());
    let page = app.page("pins", "&sort=oldest", &As::guest()).await.body;
    assert_eq!(order(&page), ids);

    // Logged, with the thread named.
    let log = app.get("/api/v1/forums/demo/log", &me).await.body;
    let pin = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "pin")
        .unwrap()
        .clone();
    assert_eq!(
        (pin["comment_id"].as_str(), pin["actor_name"].as_str()),
        (Some(ids[2].as_str()), Some("pinmod"))
    );
    assert_eq!(pin["thread_title"], "A post about bans");
}

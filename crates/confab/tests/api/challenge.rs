//! The proof-of-work challenge for guests (issue 14): a forum turns it on, guests' new comments
//! must carry a solution (solved here in Rust, as a script would), each solution is accepted
//! once (across nodes), accounts never need one. On SQLite and (with
//! `CONFAB_TEST_BACKEND=postgres`) on PostgreSQL.

use crate::helpers::*;
use confab_core::challenge;
use confab_core::sign::Signer;
use confab_store::Spend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The key `helpers::spawn_on` starts servers with.
const TEST_KEY: &[u8] = b"test-secret-key-0123456789abcdef";

async fn moderator(app: &TestApp) -> As {
    As::bearer(&app.account("powmod", false, &["demo"]).await)
}

async fn patch(app: &TestApp, me: &As, forum: &str, body: Value) -> Resp {
    app.req(
        Method::PATCH,
        &format!("/api/v1/forums/{forum}"),
        Some(body),
        me,
    )
    .await
}

async fn turn_on(app: &TestApp, me: &As, forum: &str, difficulty: u32) {
    let r = patch(
        app,
        me,
        forum,
        json!({"challenge": {"enabled": true, "difficulty": difficulty}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// A challenge from `GET /api/v1/challenge`, required.
async fn fetch(app: &TestApp, forum: &str, who: &As) -> Value {
    let r = app
        .get(&format!("/api/v1/challenge?forum={forum}"), who)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body["required"], true, "{:?}", r.body);
    r.body
}

/// A challenge's solution, found by brute force as a client does.
fn solve(c: &Value) -> Value {
    let salt = c["salt"].as_str().unwrap();
    let ch = c["challenge"].as_str().unwrap();
    let max = u32::try_from(c["maxnumber"].as_u64().unwrap()).unwrap();
    let number = challenge::solve(salt, ch, max).expect("solvable below maxnumber");
    json!({"algorithm": "SHA-256", "salt": salt, "challenge": ch, "number": number, "signature": c["signature"]})
}

async fn post(app: &TestApp, forum: &str, body: &str, sol: Option<&Value>, who: &As) -> Resp {
    let mut b = json!({"forum": forum, "ident": "/pow", "body": body, "author_name": "Guest"});
    if let Some(s) = sol {
        b["challenge"] = s.clone();
    }
    app.post("/api/v1/comments", b, who).await
}

fn refused(r: &Resp, code: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.code(), code, "{:?}", r.body);
}

#[tokio::test]
async fn challenge_settings_round_trip_are_bounded_and_unknown_keys_are_refused() {
    let app = spawn().await;
    let me = moderator(&app).await;
    let s = app.get("/api/v1/forums/demo", &me).await.body["settings"].clone();
    assert_eq!(
        s["challenge"],
        json!({"enabled": false, "difficulty": 50000})
    );
    let r = patch(
        &app,
        &me,
        "demo",
        json!({"challenge": {"enabled": true, "difficulty": 2000.0}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["settings"]["challenge"],
        json!({"enabled": true, "difficulty": 2000})
    );
    // Left out, the difficulty is the default; other settings are untouched.
    let r = patch(&app, &me, "demo", json!({"challenge": {"enabled": true}})).await;
    assert_eq!(
        r.body["settings"]["challenge"],
        json!({"enabled": true, "difficulty": 50000})
    );
    for bad in [
        json!({"challenge": {"enabled": true, "difficulty": 999}}),
        json!({"challenge": {"enabled": true, "difficulty": 1_000_001}}),
        json!({"challenge": {"enabled": true, "difficulty": 2.5}}),
        json!({"challenge": {"enabled": true, "difficulty": -1}}),
        json!({"challenge": {"enabled": "yes"}}),
        json!({"challenge": true}),
        json!({"challenge": {"enabled": true, "level": 3}}),
        json!({"chalenge": {"enabled": true}}),
    ] {
        let r = patch(&app, &me, "demo", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        assert_eq!(
            r.body["error"]["message"].as_str().map(|m| !m.is_empty()),
            Some(true)
        );
    }
    let s = app.get("/api/v1/forums/demo", &me).await.body["settings"].clone();
    assert_eq!(
        s["challenge"],
        json!({"enabled": true, "difficulty": 50000})
    );
    // A guest cannot change it.
    let r = patch(
        &app,
        &As::guest(),
        "demo",
        json!({"challenge": {"enabled": false}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
}

#[tokio::test]
async fn guests_post_with_a_solved_challenge_once_and_scripts_without_are_refused() {
    let app = spawn().await;
    let me = moderator(&app).await;
    let guest = As::guest();

    // Off (the default): nothing to solve, guests post as before.
    let r = app.get("/api/v1/challenge?forum=demo", &guest).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"required": false}));
    assert_eq!(
        post(&app, "demo", "no pow needed", None, &guest)
            .await
            .status,
        StatusCode::CREATED
    );

    turn_on(&app, &me, "demo", 1_000).await;
    let c = fetch(&app, "demo", &guest).await;
    assert_eq!(c["algorithm"], "SHA-256");
    assert_eq!(c["maxnumber"], 1000);
    assert_eq!(c["challenge"].as_str().unwrap().len(), 64);
    assert!(c["expires_at"].as_i64().unwrap() > confab_core::now_ms() + 9 * 60_000);

    // A script that did not solve it.
    refused(
        &post(&app, "demo", "bot", None, &guest).await,
        "challenge_required",
    );
    let sol = solve(&c);
    // Tampered: a wrong number, a changed salt, a changed challenge, a foreign signature, an
    // algorithm other than SHA-256.
    let mut wrong = sol.clone();
    wrong["number"] = json!(sol["number"].as_u64().unwrap() + 1);
    let mut salt = sol.clone();
    salt["salt"] = json!(sol["salt"]
        .as_str()
        .unwrap()
        .replace("expires=", "expires=1"));
    let mut ch = sol.clone();
    ch["challenge"] = json!("0".repeat(64));
    let mut sig = sol.clone();
    sig["signature"] = json!("f".repeat(64));
    let mut alg = sol.clone();
    alg["algorithm"] = json!("SHA-1");
    for bad in [&wrong, &salt, &ch, &sig, &alg] {
        refused(
            &post(&app, "demo", "bot", Some(bad), &guest).await,
            "challenge_failed",
        );
    }
    // A shape that is not a solution at all is a bad request.
    let r = post(&app, "demo", "bot", Some(&json!({"salt": "x"})), &guest).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = post(
        &app,
        "demo",
        "bot",
        Some(&json!({"salt": "x", "challenge": "y", "number": 1, "signature": "z", "extra": 1})),
        &guest,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    // A number sent as an integral float is a number (JSON does not tell them apart): it is
    // checked, not refused as malformed; a negative one solves nothing.
    let n = sol["number"].as_u64().unwrap();
    for number in [json!((n + 1) as f64), json!(-1)] {
        let mut wrong = sol.clone();
        wrong["number"] = number;
        let r = post(&app, "demo", "a float", Some(&wrong), &guest).await;
        refused(&r, "challenge_failed");
    }

    // Solved: posted (the refusals above did not use it up).
    let r = post(&app, "demo", "a real guest", Some(&sol), &guest).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Used once: again (another text, another client) it is refused.
    let r = post(&app, "demo", "again", Some(&sol), &As::guest()).await;
    refused(&r, "challenge_failed");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already used"));

    // The default difficulty solves too (the widget's case).
    turn_on(&app, &me, "demo", challenge::DEFAULT_DIFFICULTY).await;
    let c = fetch(&app, "demo", &guest).await;
    assert_eq!(c["maxnumber"], 50000);
    let r = post(&app, "demo", "default difficulty", Some(&solve(&c)), &guest).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Off again: no solution needed.
    let r = patch(&app, &me, "demo", json!({"challenge": {"enabled": false}})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        post(&app, "demo", "off again", None, &guest).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn expired_and_other_forums_challenges_are_refused() {
    let app = spawn().await;
    let me = moderator(&app).await;
    turn_on(&app, &me, "demo", 1_000).await;
    let staff = As::bearer(&app.account("powstaff", true, &[]).await);
    let r = app
        .post("/api/v1/forums", json!({"name": "other"}), &staff)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/other",
            Some(json!({"challenge": {"enabled": true, "difficulty": 1000}})),
            &staff,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Issued for "other": good there, refused on "demo".
    let c = fetch(&app, "other", &As::guest()).await;
    let sol = solve(&c);
    let r = post(&app, "demo", "wrong forum", Some(&sol), &As::guest()).await;
    refused(&r, "challenge_failed");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("another forum"));
    let r = post(&app, "other", "right forum", Some(&sol), &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Issued (with the server's key, as any node of the fleet would) 11 minutes ago.
    let demo = app.svc.forum("demo").unwrap().id;
    let old = challenge::issue(
        &Signer::new(TEST_KEY),
        demo,
        1_000,
        confab_core::now_ms() - 11 * 60_000,
        [7; 16],
        321,
    );
    let sol = json!({"salt": old.salt, "challenge": old.challenge, "number": 321, "signature": old.signature});
    let r = post(&app, "demo", "too late", Some(&sol), &As::guest()).await;
    refused(&r, "challenge_failed");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // The same, fresh, is accepted: only the time was wrong.
    let fresh = challenge::issue(
        &Signer::new(TEST_KEY),
        demo,
        1_000,
        confab_core::now_ms(),
        [7; 16],
        321,
    );
    let sol = json!({"salt": fresh.salt, "challenge": fresh.challenge, "number": 321, "signature": fresh.signature});
    assert_eq!(
        post(&app, "demo", "in time", Some(&sol), &As::guest())
            .await
            .status,
        StatusCode::CREATED
    );
    // Issued by a server with another key: refused.
    let foreign = challenge::issue(
        &Signer::new(b"another key"),
        demo,
        1_000,
        confab_core::now_ms(),
        [8; 16],
        5,
    );
    let sol = json!({"salt": foreign.salt, "challenge": foreign.challenge, "number": 5, "signature": foreign.signature});
    refused(
        &post(&app, "demo", "forged", Some(&sol), &As::guest()).await,
        "challenge_failed",
    );
}

#[tokio::test]
async fn accounts_skip_it_and_guests_edit_without_one() {
    let app = spawn().await;
    let me = moderator(&app).await;
    turn_on(&app, &me, "demo", 1_000).await;
    let user = As::bearer(&app.account("powuser", false, &[]).await);
    // Signed in: nothing to solve, and a post without a solution is taken.
    let r = app.get("/api/v1/challenge?forum=demo", &user).await;
    assert_eq!(r.body, json!({"required": false}));
    let r = post(&app, "demo", "from an account", None, &user).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // A guest's edit (with the edit token) needs none: only new comments do.
    let c = fetch(&app, "demo", &As::guest()).await;
    let r = post(&app, "demo", "first text", Some(&solve(&c)), &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap();
    let r = app
        .req(
            Method::PATCH,
            &format!("/api/v1/comments/{id}"),
            Some(json!({"body": "edited text"})),
            &As::edit(r.body["edit_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Unknown forum.
    let r = app.get("/api/v1/challenge?forum=nope", &As::guest()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = app.get("/api/v1/challenge", &As::guest()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
}

#[tokio::test]
async fn a_refused_text_keeps_its_solution_and_a_retry_with_its_key_replays() {
    let app = spawn().await;
    let me = moderator(&app).await;
    turn_on(&app, &me, "demo", 1_000).await;
    let r = patch(
        &app,
        &me,
        "demo",
        json!({"words": {"block": ["forbidden"]}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let sol = solve(&fetch(&app, "demo", &As::guest()).await);
    // Refused for its text: the solution is not spent, the fixed text goes through with it.
    let r = post(&app, "demo", "a forbidden word", Some(&sol), &As::guest()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);

    // The widget retries a post whose answer was lost with the same Idempotency-Key and the
    // same solution: the first comment is replayed, nothing new is created.
    let body = json!({"forum": "demo", "ident": "/pow", "body": "fixed text", "author_name": "G", "challenge": sol});
    let send = |key: &'static str| {
        let app = &app;
        let body = body.clone();
        async move {
            let r = app
                .http
                .post(format!("{}/api/v1/comments", app.base))
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (s1, first) = send("key-1").await;
    assert_eq!(s1, StatusCode::CREATED, "{first:?}");
    let (s2, again) = send("key-1").await;
    assert_eq!(s2, StatusCode::CREATED, "{again:?}");
    assert_eq!(again["id"], first["id"]);
    // Another key is another request: the solution is used.
    let (s3, other) = send("key-2").await;
    assert_eq!(s3, StatusCode::FORBIDDEN, "{other:?}");
    assert_eq!(other["error"]["code"], "challenge_failed");
}

#[tokio::test]
async fn a_challenge_from_one_node_is_good_once_on_any_node() {
    let store_dir = tempfile::tempdir().unwrap();
    let a = spawn_on(
        config(),
        crate::backend::open_store(store_dir.path()).await,
        tempfile::tempdir().unwrap(),
    )
    .await;
    let b = spawn_on(
        config(),
        crate::backend::open_store(store_dir.path()).await,
        tempfile::tempdir().unwrap(),
    )
    .await;
    let me = moderator(&a).await;
    turn_on(&a, &me, "demo", 1_000).await;
    // Node b hears of the change within the fleet's bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = b.get("/api/v1/challenge?forum=demo", &As::guest()).await;
        if r.body["required"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node b never saw the setting"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sol = solve(&fetch(&a, "demo", &As::guest()).await);
    let r = post(
        &b,
        "demo",
        "issued by a, posted on b",
        Some(&sol),
        &As::guest(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    refused(
        &post(&a, "demo", "again on a", Some(&sol), &As::guest()).await,
        "challenge_failed",
    );
    refused(
        &post(&b, "demo", "again on b", Some(&sol), &As::guest()).await,
        "challenge_failed",
    );
}

#[tokio::test]
async fn used_challenges_are_forgotten_once_expired() {
    let app = spawn().await;
    let now = confab_core::now_ms();
    let s = &app.store;
    assert_eq!(
        s.spend_challenge("c1", now + 60_000, Some("t"), now)
            .await
            .unwrap(),
        Spend::Fresh
    );
    assert_eq!(
        s.spend_challenge("c1", now + 60_000, None, now)
            .await
            .unwrap(),
        Spend::Used {
            tag: Some("t".into())
        }
    );
    assert_eq!(
        s.spend_challenge("c2", now + 1, None, now).await.unwrap(),
        Spend::Fresh
    );
    // Once c2 has expired, the next spend prunes it (c1 still lives).
    let later = now + 2;
    assert_eq!(
        s.spend_challenge("c3", now + 60_000, None, later)
            .await
            .unwrap(),
        Spend::Fresh
    );
    assert_eq!(
        s.spend_challenge("c2", now + 60_000, None, later)
            .await
            .unwrap(),
        Spend::Fresh
    );
    assert_eq!(
        s.spend_challenge("c1", now + 60_000, None, later)
            .await
            .unwrap(),
        Spend::Used {
            tag: Some("t".into())
        }
    );
}

//! Feature switches (posting, realtime, signups, gravatar) and their real effects; staff's
//! roles and forum settings from the API and from `confab admin` / `confab switches` run as
//! processes against the data of a running server.

use crate::helpers::*;
use crate::live::Sse;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

impl TestApp {
    async fn put(&self, path: &str, body: Value, who: &As) -> Resp {
        self.req(Method::PUT, path, Some(body), who).await
    }
    async fn delete(&self, path: &str, who: &As) -> Resp {
        self.req(Method::DELETE, path, None, who).await
    }
    /// Sets a switch as staff and asserts it took.
    async fn switch(&self, staff: &As, name: &str, body: Value) {
        let r = self
            .put(&format!("/api/v1/switches/{name}"), body, staff)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
}

fn live_url(base: &str, ident: &str) -> String {
    format!(
        "{base}/api/v1/threads/live?forum=demo&ident={}",
        urlencode(ident)
    )
}

/// Runs `confab --data DIR ARGS...` (on the test's backend), returning success and stdout.
async fn confab(dir: &Path, args: &[&str]) -> (bool, String) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg("--data")
            .arg(&dir)
            .args(&args)
            .envs(crate::backend::process_env(&dir))
            .env("CONFAB_LOG", "warn")
            .env("USER", "tester")
            .output()
            .expect("run confab");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            eprintln!(
                "confab {args:?} failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        (out.status.success(), stdout)
    })
    .await
    .unwrap()
}

/// Polls `check` until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn posting_off_refuses_reader_writes_with_read_only_while_reads_and_moderation_go_on() {
    let app = spawn().await;
    let staff = As::bearer(&app.account("boss", true, &[]).await);
    let moderator = As::bearer(&app.account("mod", false, &["demo"]).await);
    let c = app.comment("/ro", "before", None).await;
    let id = c["id"].as_str().unwrap().to_string();
    let edit = As::edit(c["edit_token"].as_str().unwrap());

    app.switch(&staff, "posting", json!({"on": false})).await;
    let refused = |r: &Resp, what: &str| {
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {:?}",
            r.body
        );
        assert_eq!(r.code(), "read_only", "{what}");
        assert_eq!(r.header("retry-after"), Some("30"), "{what}");
    };
    let r = app
        .post_comment("demo", "/ro", "during", None, &As::guest())
        .await;
    refused(&r, "post");
    let r = app
        .post(
            &format!("/api/v1/comments/{id}/vote"),
            json!({"value": 1}),
            &As::guest(),
        )
        .await;
    refused(&r, "vote");
    let r = app
        .req(
            Method::PATCH,
            &format!("/api/v1/comments/{id}"),
            Some(json!({"body": "edited"})),
            &edit,
        )
        .await;
    refused(&r, "edit");
    let r = app.delete(&format!("/api/v1/comments/{id}"), &edit).await;
    refused(&r, "delete");
    let r = app
        .post(
            &format!("/api/v1/comments/{id}/flag"),
            json!({"reason": "spam"}),
            &As::guest(),
        )
        .await;
    refused(&r, "flag");
    let r = app
        .post(
            "/api/v1/accounts",
            json!({"username": "newbie", "password": "correct horse battery"}),
            &As::guest(),
        )
        .await;
    refused(&r, "sign-up");
    // Reads and log-in go on.
    let page = app.page("/ro", "", &As::guest()).await;
    assert_eq!(page.body["comments"][0]["id"], id.as_str());
    let r = app
        .post(
            "/api/v1/sessions",
            json!({"login": "boss", "password": "correct horse battery"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Moderators can still clean up.
    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [id], "action": "spam"}),
            &moderator,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    app.switch(&staff, "posting", json!({"on": true})).await;
    let r = app
        .post_comment("demo", "/ro", "after", None, &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn signups_off_answers_403_and_reset_opens_them_again() {
    let app = spawn().await;
    let staff = As::bearer(&app.account("boss", true, &[]).await);
    app.switch(&staff, "signups", json!({"on": false})).await;
    let signup = |name: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/accounts",
                json!({"username": name, "password": "correct horse battery"}),
                &As::guest(),
            )
            .await
        }
    };
    let r = signup("first").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.code(), "signups_closed");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sign-ups are closed"));
    // Comments are not affected.
    app.comment("/s", "still open", None).await;
    let r = app.delete("/api/v1/switches/signups", &staff).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(signup("second").await.status, StatusCode::CREATED);
    // Nothing left to reset.
    let r = app.delete("/api/v1/switches/signups", &staff).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

fn gravatar_of(page: &Resp) -> Option<String> {
    page.body["comments"][0]["author"]["gravatar"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn gravatar_off_drops_avatar_hashes_and_earlier_cached_pages_are_not_served() {
    let app = spawn().await;
    let staff = As::bearer(&app.account("boss", true, &[]).await);
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"gravatar": true})),
            &staff,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/comments",
            json!({"forum": "demo", "ident": "/g", "body": "hi", "author_name": "Ann", "author_email": "ann@example.com"}),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Read twice: the second answer comes from the page cache.
    let guest = As::guest();
    assert!(gravatar_of(&app.page("/g", "", &guest).await).is_some());
    let cached = app.page("/g", "", &guest).await;
    assert!(gravatar_of(&cached).is_some());

    app.switch(&staff, "gravatar", json!({"on": false})).await;
    let page = app.page("/g", "", &guest).await;
    assert_eq!(gravatar_of(&page), None, "{}", page.body);
    assert!(!page.body.to_string().contains("gravatar\":\""));
    assert_ne!(page.header("etag"), cached.header("etag"));

    // Staff only: staff see avatars, readers don't.
    app.switch(&staff, "gravatar", json!({"on": true, "staff": true}))
        .await;
    assert!(gravatar_of(&app.page("/g", "", &staff).await).is_some());
    assert_eq!(gravatar_of(&app.page("/g", "", &guest).await), None);
    let reader = As::bearer(&app.account("reader", false, &[]).await);
    assert_eq!(gravatar_of(&app.page("/g", "", &reader).await), None);

    app.delete("/api/v1/switches/gravatar", &staff).await;
    assert!(gravatar_of(&app.page("/g", "", &guest).await).is_some());
}

#[tokio::test]
async fn realtime_off_ends_open_and_new_live_streams_with_poll() {
    let app = spawn().await;
    let staff = As::bearer(&app.account("boss", true, &[]).await);
    let url = live_url(&app.base, "/rt");
    let mut open = Sse::open(&app.http, &url, None).await.expect("open");
    assert_eq!(open.next(WAIT).await.name, "hello");
    let ws_url = format!(
        "{}/api/v1/threads/live/ws?forum=demo&ident=/rt",
        app.base.replace("http://", "ws://")
    );
    let (mut ws_open, _) = tokio_tungstenite::connect_async(ws_url.clone())
        .await
        .expect("websocket");

    app.switch(&staff, "realtime", json!({"on": false})).await;
    let flipped = Instant::now();
    // The stream that was already open is told to poll, then ends.
    let ev = open.next(WAIT).await;
    assert_eq!(ev.name, "poll", "{ev:?}");
    assert!(ev.data["poll_ms"].as_u64().unwrap() > 0);
    assert!(open.try_next(WAIT).await.is_none());
    assert!(
        flipped.elapsed() < Duration::from_secs(2),
        "{:?}",
        flipped.elapsed()
    );
    // So is the open WebSocket (after its hello).
    let mut types = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(WAIT, ws_open.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            types.push(serde_json::from_str::<Value>(&t).unwrap()["type"].clone());
        }
    }
    assert_eq!(types, vec![json!("hello"), json!("poll")]);

    // New connections get `poll` and end at once.
    let mut new = Sse::open(&app.http, &url, None).await.expect("open");
    assert_eq!(new.next(WAIT).await.name, "poll");
    assert!(new.try_next(WAIT).await.is_none());
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("websocket");
    let mut types = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(WAIT, ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            types.push(serde_json::from_str::<Value>(&t).unwrap()["type"].clone());
        }
    }
    assert_eq!(types, vec![json!("poll")]);
    // Comments still post (and are read by polling).
    app.comment("/rt", "while polling", None).await;

    app.switch(&staff, "realtime", json!({"on": true})).await;
    let mut back = Sse::open(&app.http, &url, None).await.expect("open");
    assert_eq!(back.next(WAIT).await.name, "hello");
}

#[tokio::test]
async fn the_forum_record_wins_over_the_global_one() {
    let app = spawn().await;
    let staff = As::bearer(&app.account("boss", true, &[]).await);
    app.forum("big", json!({})).await;
    let post = |forum: &'static str| {
        let app = &app;
        async move {
            app.post_comment(forum, "/scoped", "x", None, &As::guest())
                .await
                .status
        }
    };
    app.switch(&staff, "posting", json!({"on": false, "forum": "big"}))
        .await;
    assert_eq!(post("big").await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(post("demo").await, StatusCode::CREATED);
    // Global off, but the forum's own record says on.
    app.switch(&staff, "posting", json!({"on": true, "forum": "big"}))
        .await;
    app.switch(&staff, "posting", json!({"on": false})).await;
    assert_eq!(post("big").await, StatusCode::CREATED);
    assert_eq!(post("demo").await, StatusCode::SERVICE_UNAVAILABLE);

    let list = app.get("/api/v1/switches", &staff).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.body["names"],
        json!(["posting", "realtime", "signups", "gravatar"])
    );
    let recs = list.body["switches"].as_array().unwrap();
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert!(recs
        .iter()
        .any(|r| r["forum"] == "big" && r["on"] == true && r["changed_by"] == "boss"));
    assert!(recs
        .iter()
        .any(|r| r["forum"].is_null() && r["on"] == false));

    // Resetting the forum's record leaves the global one in charge.
    let r = app
        .delete("/api/v1/switches/posting?forum=big", &staff)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(post("big").await, StatusCode::SERVICE_UNAVAILABLE);
    // A forum that does not exist.
    let r = app
        .put(
            "/api/v1/switches/posting",
            json!({"on": false, "forum": "nope"}),
            &staff,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_percent_record_gives_each_reader_a_stable_answer() {
    let app = spawn().await;
    let staff = As::bearer(&app.account("boss", true, &[]).await);
    app.switch(&staff, "posting", json!({"on": false, "percent": 50}))
        .await;
    let (mut refused, mut allowed) = (0, 0);
    for _ in 0..30 {
        let (_, token) = app.svc.new_anon_token();
        let who = As::anon(&token);
        let first = app
            .post_comment("demo", "/pct", "x", None, &who)
            .await
            .status;
        for _ in 0..2 {
            let again = app
                .post_comment("demo", "/pct", "y", None, &who)
                .await
                .status;
            assert_eq!(again, first, "the same reader gets the same answer");
        }
        match first {
            StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            StatusCode::CREATED => allowed += 1,
            s => panic!("{s}"),
        }
    }
    assert!(
        refused > 0 && allowed > 0,
        "{refused} refused, {allowed} allowed"
    );
    // The staff selector: staff are matched (posting off for them), others get the opposite.
    app.switch(&staff, "posting", json!({"on": false, "staff": true}))
        .await;
    assert_eq!(
        app.post_comment("demo", "/pct", "z", None, &staff)
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.post_comment("demo", "/pct", "z", None, &As::guest())
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn unknown_switches_bad_percents_and_non_staff_are_refused() {
    let app = spawn().await;
    let staff = As::bearer(&app.account("boss", true, &[]).await);
    let plain = As::bearer(&app.account("plain", false, &["demo"]).await);
    let r = app
        .put("/api/v1/switches/comments", json!({"on": false}), &staff)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_input");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("posting, realtime, signups, gravatar"),
        "{msg}"
    );
    let r = app.delete("/api/v1/switches/comments", &staff).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for p in [0, 101] {
        let r = app
            .put(
                "/api/v1/switches/realtime",
                json!({"on": true, "percent": p}),
                &staff,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{p}");
    }
    // A moderator is not staff.
    for r in [
        app.get("/api/v1/switches", &plain).await,
        app.put("/api/v1/switches/posting", json!({"on": false}), &plain)
            .await,
        app.delete("/api/v1/switches/posting", &plain).await,
        app.put("/api/v1/staff/plain", json!({}), &plain).await,
        app.put("/api/v1/forums/demo/moderators/boss", json!({}), &plain)
            .await,
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    }
    let r = app.get("/api/v1/switches", &As::guest()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Only from the dashboard (same origin).
    let r = app
        .get(
            "/api/v1/switches",
            &staff.clone().origin("https://site.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Nothing changed.
    assert_eq!(
        app.post_comment("demo", "/x", "x", None, &As::guest())
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn staff_grant_and_remove_moderators_and_staff_over_the_api() {
    let app = spawn().await;
    let staff = As::bearer(&app.account("boss", true, &[]).await);
    let bob = As::bearer(&app.account("bob", false, &[]).await);
    let carol = As::bearer(&app.account("carol", false, &[]).await);
    let queue = "/api/v1/forums/demo/comments";
    assert_eq!(app.get(queue, &bob).await.status, StatusCode::FORBIDDEN);
    let r = app
        .put("/api/v1/forums/demo/moderators/Bob", json!({}), &staff)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(app.get(queue, &bob).await.status, StatusCode::OK);
    let mods = app.get("/api/v1/forums/demo/moderators", &staff).await;
    assert_eq!(mods.body[0]["username"], "bob", "{:?}", mods.body);
    let r = app
        .delete("/api/v1/forums/demo/moderators/bob", &staff)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Demoted: the old session is over.
    assert_eq!(app.get(queue, &bob).await.status, StatusCode::UNAUTHORIZED);
    let r = app
        .put("/api/v1/forums/demo/moderators/nobody", json!({}), &staff)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app.put("/api/v1/staff/carol", json!({}), &staff).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/switches", &carol).await.status,
        StatusCode::OK
    );
    let r = app.delete("/api/v1/staff/carol", &staff).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/switches", &carol).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Staff cannot remove themselves.
    let r = app.delete("/api/v1/staff/boss", &staff).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cli_switches_set_list_and_reset_reach_a_running_server() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    let (ok, out) = confab(&dir, &["switches", "set", "posting", "off"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("switch posting off"), "{out}");
    // Another process on the same data: the server sees it with its periodic reload (≤ 5 s).
    let post = || async {
        app.post_comment("demo", "/cli", "x", None, &As::guest())
            .await
            .status
    };
    assert!(
        eventually(Duration::from_secs(8), || async {
            post().await == StatusCode::SERVICE_UNAVAILABLE
        })
        .await,
        "the server did not see the switch"
    );
    let (ok, out) = confab(
        &dir,
        &[
            "switches",
            "set",
            "realtime",
            "on",
            "--percent",
            "10",
            "--forum",
            "demo",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, list) = confab(&dir, &["switches", "list"]).await;
    assert!(ok, "{list}");
    let lines = |name: &str| -> Vec<String> {
        list.lines()
            .filter(|l| l.starts_with(name))
            .map(str::to_string)
            .collect()
    };
    let posting = lines("posting");
    assert_eq!(posting.len(), 1, "{list}");
    assert!(
        posting[0].contains("global")
            && posting[0].contains("off")
            && posting[0].contains("cli:tester"),
        "{list}"
    );
    // No global record: the default, then the forum's record.
    let realtime = lines("realtime");
    assert_eq!(realtime.len(), 2, "{list}");
    assert!(realtime[0].contains("(default)"), "{list}");
    assert!(
        realtime[1].contains("forum demo") && realtime[1].contains("10%"),
        "{list}"
    );
    assert!(lines("signups")[0].contains("(default)"));
    let (ok, out) = confab(&dir, &["switches", "set", "nope", "on"]).await;
    assert!(!ok, "{out}");
    let (ok, out) = confab(&dir, &["switches", "reset", "posting"]).await;
    assert!(ok, "{out}");
    assert!(
        eventually(Duration::from_secs(8), || async {
            post().await == StatusCode::CREATED
        })
        .await,
        "the server did not see the reset"
    );
}

#[tokio::test]
async fn cli_admin_sets_roles_and_edits_forums_of_a_running_server() {
    let app = spawn().await;
    let dir = app._dir.path().to_path_buf();
    // Sessions made before the change; not used (so not cached) until after it.
    let mod_token = As::bearer(&app.account("modder", false, &["demo"]).await);
    let alice = As::bearer(&app.account("alice", false, &[]).await);

    let (ok, out) = confab(&dir, &["admin", "set-staff", "alice", "on"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("alice is now staff"), "{out}");
    assert_eq!(
        app.get("/api/v1/switches", &alice).await.status,
        StatusCode::OK
    );

    let (ok, out) = confab(&dir, &["admin", "set-moderator", "modder", "demo", "off"]).await;
    assert!(ok, "{out}");
    assert_eq!(
        app.get("/api/v1/forums/demo/comments", &mod_token)
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "the demoted moderator's session ended"
    );
    let (ok, out) = confab(&dir, &["admin", "set-moderator", "modder", "demo", "on"]).await;
    assert!(ok, "{out}");

    let (ok, out) = confab(
        &dir,
        &[
            "admin",
            "edit-forum",
            "demo",
            "--title",
            "Edited",
            "--origin",
            "https://a.example",
            "--origin",
            "https://b.example",
            "--moderation",
            "pre",
            "--guests",
            "off",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("moderation pre"), "{out}");
    // The running server reloads forums periodically (≤ 5 s) on SQLite, at once over Redis.
    assert!(
        eventually(Duration::from_secs(8), || async {
            let f = app.get("/api/v1/forums/demo", &alice).await;
            f.body["settings"]["title"] == "Edited"
        })
        .await
    );
    let f = app.get("/api/v1/forums/demo", &alice).await;
    assert_eq!(
        f.body["settings"]["allowed_origins"],
        json!(["https://a.example", "https://b.example"])
    );
    assert_eq!(f.body["settings"]["moderation"], "pre");
    let r = app
        .post_comment("demo", "/guests", "x", None, &As::guest())
        .await;
    assert_eq!(r.code(), "guest_posting_disabled", "{:?}", r.body);

    // One origin added and one removed, any PATCH setting through --set (`forum` is the
    // subcommand's short name); unknown keys and bad values are refused as by the API.
    let (ok, out) = confab(
        &dir,
        &[
            "admin",
            "forum",
            "demo",
            "--add-origin",
            "https://c.example",
            "--remove-origin",
            "https://a.example",
            "--set",
            "max_links=2",
            "--set",
            r#"words={"block":["casino"],"hold":[]}"#,
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("origins https://b.example https://c.example"),
        "{out}"
    );
    assert!(
        eventually(Duration::from_secs(8), || async {
            let f = app.get("/api/v1/forums/demo", &alice).await;
            f.body["settings"]["max_links"] == 2
        })
        .await
    );
    let f = app.get("/api/v1/forums/demo", &alice).await;
    assert_eq!(
        f.body["settings"]["allowed_origins"],
        json!(["https://b.example", "https://c.example"])
    );
    assert_eq!(f.body["settings"]["words"]["block"], json!(["casino"]));
    for (args, says) in [
        (&["--set", "max_linkz=2"][..], "unknown field `max_linkz`"),
        (&["--set", "max_links=-1"], "max_links"),
        (
            &["--remove-origin", "https://typo.example"],
            "no allowed origin https://typo.example",
        ),
        (
            &["--title", "A", "--set", "title=B"],
            "title is given twice",
        ),
    ] {
        let mut all = vec!["admin", "edit-forum", "demo"];
        all.extend_from_slice(args);
        let (ok, _, err) = crate::helpers::cli(&dir, &all).await;
        assert!(!ok, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }

    let (ok, out) = confab(&dir, &["admin", "set-staff", "alice", "off"]).await;
    assert!(ok, "{out}");
    // Alice's account is cached by the running server: over Redis every node forgets it at
    // once; a separate process on SQLite has no bus, so the cached row lives out its TTL.
    let a = app.store.credentials("alice").await.unwrap().unwrap().0;
    assert!(!a.is_staff);
    let (ok, _) = confab(&dir, &["admin", "set-staff", "nobody", "on"]).await;
    assert!(!ok);
}

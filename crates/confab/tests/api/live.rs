//! Live threads: SSE and WebSocket events, resync, limits, and two nodes sharing Redis.

use crate::helpers::*;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A Server-Sent Events reader over a streaming response.
pub struct Sse {
    stream:
        std::pin::Pin<Box<dyn futures_core::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

/// One event: name, data (JSON) and id.
#[derive(Debug)]
pub struct Ev {
    pub name: String,
    pub data: Value,
    pub id: Option<String>,
}

impl Sse {
    pub async fn open(
        http: &reqwest::Client,
        url: &str,
        last_event_id: Option<&str>,
    ) -> Result<Sse, reqwest::Response> {
        let mut r = http.get(url);
        if let Some(l) = last_event_id {
            r = r.header("last-event-id", l);
        }
        let resp = r.send().await.expect("connect");
        if resp.status() != StatusCode::OK {
            return Err(resp);
        }
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Ok(Sse {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        })
    }

    /// The next event (skipping keep-alive comments), or panic after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Ev {
        match self.try_next(wait).await {
            Some(ev) => ev,
            None => panic!("no event within {wait:?} (buffer {:?})", self.buf),
        }
    }

    /// The next event, or `None` after `wait`.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Ev> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut data, mut id) = (String::from("message"), String::new(), None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    }
                }
                if data.is_empty() {
                    continue; // a comment line (heartbeat)
                }
                return Some(Ev {
                    name,
                    data: serde_json::from_str(&data).expect("event data is JSON"),
                    id,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

pub(crate) fn live_url(base: &str, ident: &str) -> String {
    format!(
        "{base}/api/v1/threads/live?forum=demo&ident={}",
        urlencode(ident)
    )
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn sse_carries_every_change_with_consecutive_sequence_numbers() {
    let app = spawn().await;
    let mut sse = Sse::open(&app.http, &live_url(&app.base, "/live"), None)
        .await
        .unwrap();
    let hello = sse.next(WAIT).await;
    assert_eq!(
        (hello.name.as_str(), &hello.data["thread_seq"]),
        ("hello", &json!(0))
    );

    let c = app.comment("/live", "hello **live**", None).await;
    let id = c["id"].as_str().unwrap().to_string();
    let ev = sse.next(WAIT).await;
    assert_eq!(ev.name, "comment.created");
    assert_eq!(ev.data["comment"]["id"], id.as_str());
    assert_eq!(
        ev.data["comment"]["body_html"],
        "<p>hello <strong>live</strong></p>\n"
    );
    assert_eq!(ev.id.as_deref(), Some("1"));

    app.post(
        &format!("/api/v1/comments/{id}/vote"),
        json!({"value": 1}),
        &As::guest(),
    )
    .await;
    let ev = sse.next(WAIT).await;
    assert_eq!(
        (ev.name.as_str(), &ev.data["likes"], &ev.data["thread_seq"]),
        ("comment.voted", &json!(1), &json!(2))
    );

    let token = c["edit_token"].as_str().unwrap();
    app.req(
        Method::PATCH,
        &format!("/api/v1/comments/{id}"),
        Some(json!({"body": "edited"})),
        &As::edit(token),
    )
    .await;
    let ev = sse.next(WAIT).await;
    assert_eq!(
        (
            ev.name.as_str(),
            &ev.data["comment"]["body"],
            &ev.data["thread_seq"]
        ),
        ("comment.updated", &json!("edited"), &json!(3))
    );

    app.req(
        Method::DELETE,
        &format!("/api/v1/comments/{id}"),
        None,
        &As::edit(token),
    )
    .await;
    let ev = sse.next(WAIT).await;
    assert_eq!(
        (ev.name.as_str(), &ev.data["id"], &ev.data["thread_seq"]),
        ("comment.removed", &json!(id), &json!(4))
    );
}

#[tokio::test]
async fn pending_comments_are_not_shown_live_but_move_the_sequence() {
    let app = spawn().await;
    app.forum("livemod", json!({"moderation": "pre"})).await;
    let modr = app.account("livemoder", false, &["livemod"]).await;
    let url = format!("{}/api/v1/threads/live?forum=livemod&ident=/p", app.base);
    let mut sse = Sse::open(&app.http, &url, None).await.unwrap();
    sse.next(WAIT).await;
    let r = app
        .post_comment("livemod", "/p", "secret until approved", None, &As::guest())
        .await;
    let ev = sse.next(WAIT).await;
    assert_eq!(
        (ev.name.as_str(), &ev.data["thread_seq"]),
        ("thread.changed", &json!(1))
    );
    assert!(
        ev.data.get("comment").is_none(),
        "no content of a pending comment"
    );
    app.post(
        "/api/v1/forums/livemod/moderate",
        json!({"ids": [r.body["id"]], "action": "approve"}),
        &As::bearer(&modr),
    )
    .await;
    let ev = sse.next(WAIT).await;
    assert_eq!(
        (ev.name.as_str(), &ev.data["comment"]["id"]),
        ("comment.created", &r.body["id"])
    );
}

#[tokio::test]
async fn last_event_id_behind_the_thread_gets_resync() {
    let app = spawn().await;
    app.comment("/resume", "one", None).await;
    app.comment("/resume", "two", None).await;
    let url = live_url(&app.base, "/resume");
    let mut up_to_date = Sse::open(&app.http, &url, Some("2")).await.unwrap();
    assert_eq!(up_to_date.next(WAIT).await.data["thread_seq"], 2);
    let mut behind = Sse::open(&app.http, &url, Some("1")).await.unwrap();
    assert_eq!(behind.next(WAIT).await.name, "hello");
    assert_eq!(behind.next(WAIT).await.name, "resync");
    // The up-to-date one goes straight to the next change.
    app.comment("/resume", "three", None).await;
    assert_eq!(up_to_date.next(WAIT).await.name, "comment.created");
}

#[tokio::test]
async fn connections_are_bounded_per_node() {
    let mut c = config();
    c.realtime.max_connections = 2;
    let app = spawn_with(c).await;
    let url = live_url(&app.base, "/busy");
    let _a = Sse::open(&app.http, &url, None).await.unwrap();
    let b = Sse::open(&app.http, &url, None).await.unwrap();
    let full = Sse::open(&app.http, &url, None)
        .await
        .err()
        .expect("third is refused");
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(full.headers().get("retry-after").is_some());
    drop(b);
    // The slot comes back when a client goes away.
    let deadline = Instant::now() + WAIT;
    loop {
        match Sse::open(&app.http, &url, None).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(r) => panic!("slot not released: {}", r.status()),
        }
    }
    let bad = app
        .get("/api/v1/threads/live?forum=nope&ident=x", &As::guest())
        .await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn websocket_carries_the_same_events() {
    let app = spawn().await;
    let url = format!(
        "{}/api/v1/threads/live/ws?forum=demo&ident=/ws",
        app.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    let mut texts = Vec::new();
    let c = app.comment("/ws", "over a socket", None).await;
    while texts.len() < 2 {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .expect("ok");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            texts.push(serde_json::from_str::<Value>(&t).unwrap());
        }
    }
    assert_eq!(texts[0]["type"], "hello");
    assert_eq!(texts[1]["type"], "comment.created");
    assert_eq!(texts[1]["comment"]["id"], c["id"]);
    ws.close(None).await.ok();
}

// ---- two nodes sharing Redis --------------------------------------------------------------

use crate::process::{free_port, wait_ready, Proc};

pub(crate) fn redis_server(port: u16, dir: &std::path::Path) -> Proc {
    let bin = ["redis-server", "/usr/bin/redis-server"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok()
        })
        .expect("redis-server is needed for the two-node test (apt-get install redis-server)");
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proc(child)
}

fn node(data: &std::path::Path, port: u16, redis: u16) -> Proc {
    crate::process::serve(
        data,
        port,
        &[],
        &[(
            "CONFAB_BUS__REDIS_URL",
            format!("redis://127.0.0.1:{redis}/"),
        )],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_on_node_a_reaches_a_client_of_node_b_and_redis_outages_degrade_to_polling() {
    let dir = tempfile::tempdir().unwrap();
    let (rp, pa, pb) = (free_port(), free_port(), free_port());
    let mut redis = Some(redis_server(rp, dir.path()));
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Both nodes share the data directory (one SQLite file, one secret) and the Redis bus.
    let _a = node(&data, pa, rp);
    let (a, b) = (
        format!("http://127.0.0.1:{pa}"),
        format!("http://127.0.0.1:{pb}"),
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    wait_ready(&http, &a).await;
    let _b = node(&data, pb, rp);
    wait_ready(&http, &b).await;

    let mut sse = Sse::open(&http, &live_url(&b, "/two"), None).await.unwrap();
    assert_eq!(sse.next(WAIT).await.name, "hello");
    let post = |base: String, body: &'static str| {
        let http = http.clone();
        async move {
            http.post(format!("{base}/api/v1/comments"))
                .json(&json!({"forum": "demo", "ident": "/two", "body": body, "author_name": "A"}))
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(a.clone(), "from node A").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].clone();
    let ev = sse.next(WAIT).await;
    assert_eq!(
        (ev.name.as_str(), &ev.data["comment"]["id"]),
        ("comment.created", &id)
    );

    // Redis goes away: posting and reading still work; live clients are told to poll.
    drop(redis.take());
    assert_eq!(sse.next(WAIT).await.name, "degraded");
    let r = post(a.clone(), "while redis is down").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The writer's read-your-writes pin goes with it to node B, as the widget's does (without
    // it, B may read a replica that has not replayed the post yet).
    let mut read = http.get(format!("{b}/api/v1/comments?forum=demo&ident=/two"));
    if let Some(pin) = r.headers().get("x-confab-pin") {
        read = read.header("x-confab-pin", pin.clone());
    }
    let page: Value = read.send().await.unwrap().json().await.unwrap();
    assert_eq!(page["thread"]["comment_count"], 2);

    // Redis is back: clients are told to re-sync, and events flow again.
    let _redis = redis_server(rp, dir.path());
    let ev = sse.next(Duration::from_secs(20)).await;
    assert_eq!(ev.name, "resync");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // The publishing node reconnects on its own schedule; retry until an event gets through.
        post(a.clone(), "after the outage").await;
        match sse.try_next(Duration::from_secs(2)).await {
            Some(ev) if ev.name == "comment.created" => break,
            _ if Instant::now() < deadline => continue,
            _ => panic!("no events after Redis came back"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_each_get_their_own_sequence_number() {
    let app = spawn().await;
    let c = app.comment("/race", "vote on me", None).await;
    let id = c["id"].as_str().unwrap().to_string();
    let mut sse = Sse::open(&app.http, &live_url(&app.base, "/race"), None)
        .await
        .unwrap();
    let start = sse.next(WAIT).await.data["thread_seq"].as_i64().unwrap();
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (http, base, id) = (app.http.clone(), app.base.clone(), id.clone());
        // Each vote from a voter of its own (tokenless votes from one address are one voter).
        let voter = app.svc.new_anon_token().1;
        writes.spawn(async move {
            let r = if i % 2 == 0 {
                http.post(format!("{base}/api/v1/comments/{id}/vote")).header("x-confab-anon", voter).json(&json!({"value": 1})).send().await
            } else {
                http.post(format!("{base}/api/v1/comments"))
                    .json(&json!({"forum": "demo", "ident": "/race", "body": format!("c{i}"), "author_name": "r"}))
                    .send()
                    .await
            };
            assert!(r.unwrap().status().is_success());
        });
    }
    while let Some(r) = writes.join_next().await {
        r.unwrap();
    }
    let mut seqs: Vec<i64> = Vec::new();
    for _ in 0..20 {
        seqs.push(sse.next(WAIT).await.data["thread_seq"].as_i64().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (start + 1..=start + 20).collect::<Vec<_>>(),
        "one distinct number per change"
    );
}

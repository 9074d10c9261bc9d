//! What a hostile client tried, and what stops it: held sockets, unbounded hashing, edits past
//! moderation, sessions that outlive logout, cross-forum CORS, subscription probing, vote
//! stuffing, idempotency-key replays, banned authors' edits.

use crate::helpers::*;
use crate::live::Sse;
use reqwest::StatusCode;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn addr(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().expect("addr")
}

/// A connection to the server from another loopback address (so per-address caps can be
/// tried without touching the test client's own address, 127.0.0.1).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(SocketAddr::from((from, 0))).expect("bind");
    s.connect(to).await.expect("connect")
}

/// Reads until the peer closes (Ok(bytes)) or `wait` passes (Err).
async fn read_to_close(s: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let r = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    r.map(|()| out).map_err(|_| ())
}

fn timeouts_config() -> confab_server::config::Config {
    let mut c = config();
    c.connections.header_timeout_secs = 1;
    c.connections.body_timeout_secs = 1;
    c.connections.max_per_ip = 8;
    c
}

#[tokio::test]
async fn half_sent_requests_and_bare_connects_are_dropped_and_the_server_keeps_answering() {
    let app = spawn_with(timeouts_config()).await;
    let to = addr(&app);
    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..8 {
        let mut s = connect_from([127, 0, 0, 2], to).await;
        if i % 2 == 0 {
            s.write_all(b"GET /heal").await.unwrap(); // half a request line
        } // else: a bare connect
        held.push(s);
    }
    // The address's cap is reached: the next connection is told so, and closed.
    let mut extra = connect_from([127, 0, 0, 2], to).await;
    let refused = String::from_utf8(read_to_close(&mut extra, Duration::from_secs(3)).await.expect("closed")).unwrap();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.to_ascii_lowercase().contains("retry-after: 1"), "{refused}");
    assert!(refused.contains("\"unavailable\""), "{refused}");
    // Everyone else is served meanwhile.
    let t = Instant::now();
    let r = app.get("/healthz", &As::guest()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(t.elapsed() < Duration::from_secs(1), "healthz took {:?}", t.elapsed());
    // Every held connection is closed within the header timeout (1 s here).
    for s in &mut held {
        read_to_close(s, Duration::from_secs(5)).await.expect("the server closes a connection that sends no request");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "closed after {:?}", started.elapsed());
    // The address's slots were given back.
    let mut again = connect_from([127, 0, 0, 2], to).await;
    again.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let ok = String::from_utf8(read_to_close(&mut again, Duration::from_secs(3)).await.expect("answered")).unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_gets_408_within_the_body_timeout() {
    let app = spawn_with(timeouts_config()).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"POST /api/v1/comments HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"forum\":")
        .await
        .unwrap();
    let t = Instant::now();
    let answer = String::from_utf8(read_to_close(&mut s, Duration::from_secs(5)).await.expect("answered and closed")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Nothing was written.
    let p = app.get("/api/v1/comments?forum=demo&ident=x", &As::guest()).await;
    assert_eq!(p.body["thread"]["comment_count"].as_i64().unwrap_or(0), 0, "{:?}", p.body);
}

#[tokio::test]
async fn a_kept_alive_connection_that_waits_idle_is_closed() {
    let app = spawn_with(timeouts_config()).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // No next request: closed after the header timeout.
    let t = Instant::now();
    read_to_close(&mut s, Duration::from_secs(5)).await.expect("idle connection closed");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn live_streams_outlast_the_read_timeouts() {
    let app = spawn_with(timeouts_config()).await;
    let url = format!("{}/api/v1/threads/live?forum=demo&ident=%2Flong", app.base);
    let mut sse = Sse::open(&app.http, &url, None).await.unwrap();
    assert_eq!(sse.next(Duration::from_secs(5)).await.name, "hello");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    app.comment("/long", "still here", None).await;
    assert_eq!(sse.next(Duration::from_secs(5)).await.name, "comment.created");
}

#[tokio::test]
async fn a_burst_of_logins_is_queued_or_refused_not_hashed_all_at_once() {
    let app = spawn().await;
    app.account("burst", false, &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (http, base) = (app.http.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/api/v1/sessions"))
                .json(&json!({"login": "burst", "password": "wrong password!"}))
                .send()
                .await
                .unwrap();
            (r.status(), r.headers().get("retry-after").is_some())
        }));
    }
    let (mut refused, mut wrong) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::UNAUTHORIZED, _) => wrong += 1,
            (StatusCode::SERVICE_UNAVAILABLE, true) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wrong + refused, 100);
    assert!(refused > 0, "100 logins at once on a {}-core machine: none refused", std::thread::available_parallelism().unwrap());
    assert!(wrong > 0);
    // The owner still gets in afterwards.
    let r = app.post("/api/v1/sessions", json!({"login": "burst", "password": "correct horse battery"}), &As::guest()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

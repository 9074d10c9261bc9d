//! Stopping a node behind a load balancer: on SIGTERM it keeps serving for
//! `connections.drain_secs` while `/readyz` answers 503 `draining` (the balancer takes it out),
//! tells its live clients to reconnect at once (to another node), then stops accepting,
//! finishes what is in flight and exits.

use crate::live::{live_url, Sse};
use crate::process::{free_port, serve, wait_ready};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_a_node_drains_while_serving_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut node = serve(
        dir.path(),
        port,
        &[],
        &[("CONFAB_CONNECTIONS__DRAIN_SECS", "2".to_string())],
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_ready(&http, &base).await;
    let mut sse = Sse::open(&http, &live_url(&base, "/drain"), None)
        .await
        .unwrap();
    assert_eq!(sse.next(Duration::from_secs(10)).await.name, "hello");
    let t0 = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Live clients hear at once that they should go elsewhere.
    assert_eq!(sse.next(Duration::from_secs(2)).await.name, "reconnect");
    // While draining: not ready, but still serving.
    let mut saw_draining = false;
    while t0.elapsed() < Duration::from_millis(1500) {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.text().await.unwrap(), "draining");
        saw_draining = true;
        let page = http
            .get(format!("{base}/api/v1/comments?forum=demo&ident=%2Fdrain"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let post = http
            .post(format!("{base}/api/v1/comments"))
            .json(&serde_json::json!({"forum": "demo", "ident": "/drain", "body": "still here", "author_name": "D"}))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), StatusCode::CREATED);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_draining);
    // Then it stops by itself, cleanly, a little after the drain time.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = node.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

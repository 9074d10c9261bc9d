//! `kill -9` during a stream of posts loses no comment that got a 201.

use crate::process::{free_port, serve, wait_ready};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_comment() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut child = serve(dir.path(), port, &[], &[]);
    wait_ready(&http, &base).await;

    let writers = 16;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let (mut acked, mut pin) = (Vec::new(), None::<String>);
            for i in 0.. {
                let r = http
                    .post(format!("{base}/api/v1/comments"))
                    .json(&json!({"forum": "demo", "ident": format!("kill/{w}"), "body": format!("comment {i}"), "author_name": "k"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        // The read-your-writes pin, kept as the widget keeps it (PostgreSQL gives
                        // one; on a replicated deployment the check below reads past it).
                        if let Some(p) = r.headers().get("x-confab-pin") {
                            pin = p.to_str().ok().map(str::to_string);
                        }
                        let v: serde_json::Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => break,
                        };
                        acked.push(v["id"].as_str().unwrap().to_string());
                    }
                    _ => break,
                }
            }
            (acked, pin)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.0.kill().expect("SIGKILL"); // std's kill() sends SIGKILL on Unix.
    child.0.wait().unwrap();
    let (mut acked, mut pins) = (Vec::new(), Vec::new());
    for t in tasks {
        let (a, pin) = t.await.unwrap();
        acked.extend(a);
        pins.push(pin);
    }
    assert!(
        acked.len() > 100,
        "the writers got going ({} acknowledged)",
        acked.len()
    );

    let child = serve(dir.path(), port, &[], &[]);
    wait_ready(&http, &base).await;
    let mut stored = HashSet::new();
    for (w, pin) in pins.iter().enumerate() {
        let mut cursor: Option<String> = None;
        loop {
            let mut url =
                format!("{base}/api/v1/comments?forum=demo&ident=kill/{w}&sort=oldest&limit=100");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            // Each writer reads back with its own pin: an acknowledged comment must be there,
            // not merely on its way to a replica.
            let mut req = http.get(url);
            if let Some(p) = pin {
                req = req.header("x-confab-pin", p);
            }
            let v: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
            for c in v["comments"].as_array().into_iter().flatten() {
                stored.insert(c["id"].as_str().unwrap().to_string());
            }
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
    }
    drop(child);
    let lost: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    eprintln!(
        "acknowledged {}, stored {}, lost {}",
        acked.len(),
        stored.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost acknowledged comments: {lost:?}");
}

//! `/metrics` and the per-request records: request counters by route template, the latency
//! histogram, the page cache's hits, rate-limit refusals, `X-Request-Id`; and a real
//! Prometheus scraping a server.
//!
//! Every server in the test process records into one registry (the recorder is global), so
//! request counters are checked for presence and growth, never for exact totals.

use crate::helpers::{config, spawn, spawn_with, As, TestApp};
use crate::process::{free_port, Proc};
use reqwest::StatusCode;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn scrape(app: &TestApp) -> String {
    let r = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("private, no-store")
    );
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/plain")));
    r.text().await.unwrap()
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            (n == name
                && labels
                    .iter()
                    .all(|(k, want)| rest.contains(&format!("{k}=\"{want}\""))))
            .then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_time_them() {
    let app = spawn().await;
    app.comment("/metrics-a", "first", None).await;
    app.page("/metrics-a", "", &As::guest()).await;
    let text = scrape(&app).await;
    // Routes are templates, never raw URLs (no query string, no ids).
    let posts = value(
        &text,
        "confab_http_requests_total",
        &[
            ("route", "/api/v1/comments"),
            ("method", "POST"),
            ("status", "201"),
        ],
    );
    assert!(posts >= 1.0, "{text}");
    let reads = value(
        &text,
        "confab_http_requests_total",
        &[
            ("route", "/api/v1/comments"),
            ("method", "GET"),
            ("status", "200"),
        ],
    );
    assert!(reads >= 1.0, "{text}");
    assert!(!text.contains("ident="), "no raw URL in a label");
    assert!(
        text.contains("confab_http_request_duration_seconds_bucket{")
            && text.contains("le=\"0.005\""),
        "{text}"
    );
    assert!(
        value(
            &text,
            "confab_http_request_duration_seconds_count",
            &[("route", "/api/v1/comments"), ("method", "GET")]
        ) >= 1.0
    );
    // A path with an id is counted under its template.
    let id = app.comment("/metrics-a", "second", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/api/v1/comments/{id}/vote"),
        json!({"value": 1}),
        &As::guest(),
    )
    .await;
    let text = scrape(&app).await;
    assert!(
        value(
            &text,
            "confab_http_requests_total",
            &[("route", "/api/v1/comments/{id}/vote")]
        ) >= 1.0,
        "{text}"
    );
    assert!(!text.contains(&id), "no comment id in a label");
    // The store's statements, switches and live connections are sampled at scrape time.
    assert!(value(&text, "confab_db_statements_total", &[]) > 0.0);
    assert!(text.contains("confab_db_reads_total{target=\"replica\"}"));
    assert_eq!(
        value(&text, "confab_switch_on", &[("switch", "posting")]),
        1.0
    );
    assert!(text.contains("confab_live_connections "), "{text}");
}

#[tokio::test]
async fn metrics_page_cache_hits_move_on_a_repeated_read() {
    let app = spawn().await;
    app.comment("/metrics-cache", "hello", None).await;
    // Read as a reader who never wrote: the test client's own reads carry its read-your-writes
    // pin, which on PostgreSQL reads past the shared page for a while.
    let read = || async {
        let r = app
            .http
            .get(format!(
                "{}/api/v1/comments?forum=demo&ident=%2Fmetrics-cache",
                app.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    };
    read().await;
    let before = scrape(&app).await;
    let misses = value(&before, "confab_page_cache_misses_total", &[]);
    assert!(misses >= 1.0, "the first read filled the page: {before}");
    let (local_hits, local_misses) = app.svc.page_cache_stats();
    read().await;
    read().await;
    // This server's counters moved by exactly two hits and no miss...
    assert_eq!(app.svc.page_cache_stats(), (local_hits + 2, local_misses));
    // ...and the exposition shows them. (Servers of other tests in this process share the one
    // registry, and a counter there only moves up: it shows at least this server's value.)
    let after = scrape(&app).await;
    assert!(value(&after, "confab_page_cache_hits_total", &[]) >= (local_hits + 2) as f64);
    assert!(value(&after, "confab_page_cache_misses_total", &[]) >= misses);
}

#[tokio::test]
async fn metrics_request_ids_are_echoed_or_made() {
    let app = spawn().await;
    let get = |id: Option<&str>| {
        let mut r = app.http.get(format!("{}/healthz", app.base));
        if let Some(id) = id {
            r = r.header("x-request-id", id);
        }
        async move {
            let r = r.send().await.unwrap();
            r.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        }
    };
    assert_eq!(
        get(Some("abc-123.X_y")).await.as_deref(),
        Some("abc-123.X_y")
    );
    let made = get(None).await.unwrap();
    assert_eq!(made.len(), 16, "{made}");
    assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(get(None).await.unwrap(), made, "a new id per request");
    // Not a sane token (too long, or a character outside [A-Za-z0-9._-]): replaced.
    for bad in ["a".repeat(65), "two words".to_string(), "x;y".to_string()] {
        let id = get(Some(&bad)).await.unwrap();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 16);
    }
    // Errors carry one too.
    let r = app.get("/api/v1/nope", &As::guest()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test]
async fn metrics_count_rate_limit_refusals() {
    let mut cfg = config();
    cfg.rate_limit.enabled = true;
    cfg.rate_limit.auth_per_minute_ip = 1;
    let app = spawn_with(cfg).await;
    let before = value(
        &scrape(&app).await,
        "confab_rate_limit_refusals_total",
        &[("limit", "auth")],
    );
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let r = app
            .post(
                "/api/v1/sessions",
                json!({"login": "nobody", "password": "guess guess guess"}),
                &As::guest(),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses[1], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let text = scrape(&app).await;
    assert!(
        value(
            &text,
            "confab_rate_limit_refusals_total",
            &[("limit", "auth")]
        ) >= before + 1.0,
        "{text}"
    );
    assert!(
        value(
            &text,
            "confab_http_requests_total",
            &[
                ("route", "/api/v1/sessions"),
                ("method", "POST"),
                ("status", "429")
            ]
        ) >= 1.0,
        "{text}"
    );
    // `/metrics` itself is never limited.
    for _ in 0..5 {
        scrape(&app).await;
    }
}

/// The Debian package's binary, or a failure saying how to get it (`CONFAB_SKIP_PROMETHEUS=1`:
/// `None`, the test is skipped).
fn prometheus_bin() -> Option<&'static str> {
    let found = ["prometheus", "/usr/bin/prometheus"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if found.is_none() && std::env::var("CONFAB_SKIP_PROMETHEUS").as_deref() == Ok("1") {
        eprintln!("prometheus not installed: skipped (CONFAB_SKIP_PROMETHEUS=1)");
        return None;
    }
    Some(found.expect(
        "prometheus is needed for the scrape test (apt-get install prometheus), \
         or set CONFAB_SKIP_PROMETHEUS=1",
    ))
}

#[tokio::test]
async fn metrics_are_scraped_by_a_real_prometheus() {
    let Some(bin) = prometheus_bin() else {
        return;
    };
    let app = spawn().await;
    app.comment("/metrics-prom", "scraped", None).await;
    let target = app.base.trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: confab\n    metrics_path: /metrics\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let _prom = Proc(
        Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=confab_http_requests_total%7Bjob%3D%22confab%22%7D"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    loop {
        if let Ok(r) = app.http.get(&query).send().await {
            last = r.text().await.unwrap_or_default();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&last) {
                let result = &v["data"]["result"];
                if result.as_array().is_some_and(|a| !a.is_empty()) {
                    let routes: Vec<&str> = result
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|s| s["metric"]["route"].as_str())
                        .collect();
                    assert!(routes.contains(&"/api/v1/comments"), "{routes:?}");
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "prometheus returned no sample of confab_http_requests_total within 30 s: {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `log_format = "json"`: a real `confab serve` writes one JSON object per request, with the
/// route template, the path without its query, the status and the request id it echoed.
#[tokio::test]
async fn metrics_json_access_log_of_a_real_process() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab"));
    cmd.args(["serve", "--rate-limit", "off", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data")
        .arg(dir.path())
        .env("CONFAB_LOG", "warn,access=info")
        .env("CONFAB_LOG_FORMAT", "json")
        .env("CONFAB_LIMITS__SLOW_REQUEST_MS", "20")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in crate::backend::process_env(dir.path()) {
        cmd.env(k, v);
    }
    let mut proc = Proc(cmd.spawn().expect("spawn confab"));
    let stdout = proc.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    crate::process::wait_ready(&http, &base).await;
    // A body that takes 50 ms to arrive: the request is slower than `slow_request_ms`.
    let (tx, rx_body) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx.send(Ok(br#"{"body": "*hi*"}"#.to_vec())).await;
    });
    let r = http
        .post(format!("{base}/api/v1/preview?x=1"))
        .header("x-request-id", "json-log-1")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(
            crate::bad_input::ReceiverStream(rx_body),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "json-log-1");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut access, mut slow) = (None, None);
    while access.is_none() || slow.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("an access line and a slow line within 10 s");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            panic!("not JSON: {line}");
        };
        if v["fields"]["request_id"] != "json-log-1" {
            continue;
        }
        match v["fields"]["kind"].as_str() {
            Some("access") => access = Some(v),
            Some("slow") => slow = Some(v),
            _ => {}
        }
    }
    let access = access.unwrap();
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["target"], "access");
    let f = &access["fields"];
    assert_eq!(f["method"], "POST");
    assert_eq!(f["route"], "/api/v1/preview");
    assert_eq!(f["path"], "/api/v1/preview", "no query string");
    assert_eq!(f["status"], 200);
    assert!(f["duration_ms"].as_f64().unwrap() >= 50.0);
    assert!(f["duration_ms"].is_number());
    assert!(f["statements"].is_u64());
    // The request's record is in both lines.
    for k in [
        "db_ms",
        "page_hits",
        "page_misses",
        "tier_hits",
        "tier_misses",
        "tier_ms",
        "bus_publishes",
        "render_ms",
    ] {
        assert!(f[k].is_number(), "{k}: {access}");
    }
    let slow = slow.unwrap();
    assert_eq!(slow["level"], "WARN");
    let sf = &slow["fields"];
    assert!(
        sf["render_ms"].as_f64().unwrap() > 0.0,
        "the preview rendered markdown: {slow}"
    );
    assert_eq!(sf["statements"], 0, "a preview reads nothing: {slow}");
    // A first page read: a page cache miss, filled from the store.
    let r = http
        .get(format!(
            "{base}/api/v1/comments?forum=demo&ident=%2Fjson-log"
        ))
        .header("x-request-id", "json-log-2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the page read's access line");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["fields"]["request_id"] == "json-log-2" && v["fields"]["kind"] == "access" {
            break v;
        }
    };
    let pf = &page["fields"];
    assert_eq!(pf["page_misses"], 1, "{page}");
    assert_eq!(pf["page_hits"], 0, "{page}");
    assert!(pf["statements"].as_u64().unwrap() >= 1, "{page}");
    assert!(pf["db_ms"].as_f64().unwrap() > 0.0, "{page}");
}

/// Statements are counted by shard server and primary/replica, and the task queue's depth and
/// its oldest due task's wait are sampled per shard server.
#[tokio::test]
async fn metrics_statements_by_shard_and_the_task_queue() {
    use confab_core::id::LogicalShard;
    let app = spawn().await;
    app.comment("/metrics-shards", "counted", None).await;
    // A task no handler claims (its kind is unknown to the worker): it stays queued and due.
    app.store
        .enqueue_task(
            LogicalShard::for_name("demo"),
            confab_store::NewTask::new("test.never", json!({})),
        )
        .await
        .unwrap();
    let enqueued = Instant::now();
    let text = scrape(&app).await;
    // Every statement series names its shard and target; this server's are in the registry.
    let mine = app.svc.store_statements();
    assert!(!mine.is_empty());
    for s in &mine {
        for (target, n) in [("primary", s.primary), ("replica", s.replica)] {
            let shown = value(
                &text,
                "confab_db_statements_total",
                &[("shard", &s.shard), ("target", target)],
            );
            // Counted at scrape time, after `mine` was read: at least as many.
            assert!(
                shown >= n as f64,
                "{} {target}: {shown} < {n}\n{text}",
                s.shard
            );
        }
    }
    if crate::backend::is_postgres() {
        assert!(mine.iter().any(|s| s.shard == "control" && s.primary > 0));
    } else {
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0].shard, "embedded");
        assert!(mine[0].primary > 0);
        assert_eq!(mine[0].replica, 0, "one copy: nothing read from a replica");
    }
    let total: u64 = mine.iter().map(|s| s.primary + s.replica).sum();
    assert_eq!(
        total,
        app.store.query_count(),
        "the total is the sum by shard"
    );
    // The queue: sampled at most once a second, so wait past the sample the scrape above
    // took, and until the task has waited a second.
    tokio::time::sleep(Duration::from_millis(1_200).saturating_sub(enqueued.elapsed())).await;
    let text = scrape(&app).await;
    let queued = value(&text, "confab_tasks_queued", &[]);
    assert!(queued >= 1.0, "{text}");
    let age = value(&text, "confab_tasks_oldest_age_seconds", &[]);
    assert!(
        age >= 1.0,
        "the due task has waited over a second: {age}\n{text}"
    );
    assert!(text.contains("confab_tasks_queued{shard=\""), "{text}");
    // `/statz` has the same figures by shard.
    let statz: serde_json::Value = app
        .http
        .get(format!("{}/statz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(statz["statements"][0]["shard"].is_string(), "{statz}");
}

/// The Grafana dashboard's queries name only metrics a running server exports. The server is
/// made to export all of them: a Redis bus (deliveries and their latency), a shared tier,
/// a rate-limit refusal.
#[tokio::test]
async fn metrics_dashboard_queries_name_exported_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let redis_port = free_port();
    let _redis = crate::live::redis_server(redis_port, dir.path());
    let mut cfg = config();
    cfg.bus.redis_url = format!("redis://127.0.0.1:{redis_port}/").as_str().into();
    cfg.cache.servers = vec![format!("redis://127.0.0.1:{redis_port}/")];
    cfg.rate_limit.enabled = true;
    cfg.rate_limit.auth_per_minute_ip = 1;
    let app = spawn_with(cfg).await;
    app.comment("/metrics-dash", "on the bus", None).await;
    app.page("/metrics-dash", "", &As::guest()).await;
    app.page("/metrics-dash", "", &As::guest()).await;
    for _ in 0..2 {
        app.post(
            "/api/v1/sessions",
            json!({"login": "nobody", "password": "guess guess guess"}),
            &As::guest(),
        )
        .await;
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/grafana/confab.json"
        ))
        .expect("deploy/grafana/confab.json"),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dashboard, &mut exprs);
    let mut used: Vec<String> = exprs
        .iter()
        .flat_map(|e| {
            let b = e.as_bytes();
            let mut names = Vec::new();
            let mut i = 0;
            while let Some(at) = e[i..].find("confab_") {
                let start = i + at;
                let end = start
                    + b[start..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                        .count();
                names.push(e[start..end].to_string());
                i = end;
            }
            names
        })
        .collect();
    used.sort();
    used.dedup();
    assert!(
        used.len() >= 15,
        "the dashboard queries too little: {used:?}"
    );
    // The bus delivers asynchronously: wait for every name to show (10 s at most).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&app).await;
        let exported: std::collections::HashSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let missing: Vec<&String> = used
            .iter()
            .filter(|n| !exported.contains(n.as_str()))
            .collect();
        if missing.is_empty() {
            // The Redis bus measured deliveries to this node.
            assert!(
                value(
                    &text,
                    "confab_bus_delivery_seconds_count",
                    &[("bus", "redis")]
                ) >= 1.0,
                "{text}"
            );
            assert!(value(&text, "confab_bus_deliveries_total", &[("bus", "redis")]) >= 1.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard queries metrics /metrics does not export: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `[errors] sentry_dsn`: a real server error (the database lost a table under the server)
/// reaches a Sentry-compatible receiver as one event with the request's id; a 404 does not.
/// The receiver is a local stand-in for the paid service: it takes envelopes as Sentry does.
#[tokio::test]
async fn metrics_server_errors_are_reported_to_sentry() {
    use axum::extract::{Path, State};
    type Got = (String, Option<String>, Vec<u8>);
    let (tx, mut events) = tokio::sync::mpsc::channel::<Got>(16);
    let receiver = axum::Router::new()
        .route(
            "/api/{project}/envelope/",
            axum::routing::post(
                |State(tx): State<tokio::sync::mpsc::Sender<Got>>,
                 Path(project): Path<String>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let auth = headers
                        .get("x-sentry-auth")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let _ = tx.send((project, auth, body.to_vec())).await;
                    "{}"
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    // On SQLite whatever the suite's backend: the test breaks the file under the server.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("confab.sqlite3");
    let store = std::sync::Arc::new(confab_store::sqlite::SqliteStore::open(&file, 2).unwrap());
    let mut cfg = config();
    cfg.errors.sentry_dsn = format!("http://publickey@127.0.0.1:{port}/42")
        .as_str()
        .into();
    let app = crate::helpers::spawn_on(cfg, store, dir).await;
    app.comment("/sentry-ok", "fine", None).await;
    let get = |path: String, id: &'static str| {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .header("x-request-id", id);
        async move { r.send().await.unwrap().status() }
    };
    assert_eq!(
        get("/api/v1/nope".into(), "sentry-404").await,
        StatusCode::NOT_FOUND
    );
    // The database loses the threads table: reading a thread fails inside the store.
    let c = rusqlite::Connection::open(&file).unwrap();
    c.execute_batch("ALTER TABLE threads RENAME TO threads_gone")
        .unwrap();
    let status = get(
        "/api/v1/comments?forum=demo&ident=%2Fsentry-new".into(),
        "sentry-500",
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (project, auth, envelope) = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .unwrap();
    assert_eq!(project, "42");
    assert!(
        auth.as_deref()
            .is_some_and(|a| a.contains("sentry_key=publickey")),
        "{auth:?}"
    );
    let event = envelope
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .find(|v| v.get("tags").is_some())
        .unwrap_or_else(|| panic!("no event in {}", String::from_utf8_lossy(&envelope)));
    assert_eq!(event["tags"]["request_id"], "sentry-500", "{event}");
    assert_eq!(event["tags"]["status"], "500");
    assert_eq!(event["tags"]["route"], "/api/v1/comments");
    assert_eq!(event["tags"]["panic"], "false");
    assert!(
        event["extra"]["statements"].as_u64().unwrap() >= 1,
        "{event}"
    );
    // Nothing else arrives: the 404 was not an error to report.
    if let Ok(Some((_, _, more))) =
        tokio::time::timeout(Duration::from_millis(500), events.recv()).await
    {
        panic!("unexpected report: {}", String::from_utf8_lossy(&more));
    }
}

//! Issue 9, items 10, 12, 13 and 14: invisible and bidi-control text, `X-Forwarded-For` hops
//! with ports, the thread fragment's CSP and private answers' `Cache-Control`, webhook targets
//! that embed an internal IPv4 address, and secrets in the configuration.

use crate::helpers::*;
use crate::webhooks::{set_hooks, Receiver, SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

const OPENERS: [char; 7] = [
    '\u{202A}', '\u{202B}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
];

/// Whether every bidi embedding, override and isolate in `s` is closed, in order, before the
/// end of `s` (the Unicode bidi algorithm's pairing: a PDI closes the innermost isolate and
/// whatever embeddings were opened inside it).
fn bidi_balanced(s: &str) -> bool {
    let mut stack: Vec<bool> = Vec::new(); // true: isolate
    for c in s.chars() {
        match c {
            '\u{202A}' | '\u{202B}' | '\u{202D}' | '\u{202E}' => stack.push(false),
            '\u{2066}' | '\u{2067}' | '\u{2068}' => stack.push(true),
            // A PDF pops the innermost embedding (the guard pops either way): an isolate there,
            // or nothing, is unbalanced.
            '\u{202C}' if stack.pop() != Some(false) => return false,
            '\u{2069}' => {
                let Some(i) = stack.iter().rposition(|&iso| iso) else {
                    return false;
                };
                stack.truncate(i);
            }
            _ => {}
        }
    }
    stack.is_empty()
}

#[tokio::test]
async fn invisible_only_text_is_refused() {
    let app = spawn().await;
    let post = |body: &str, name: &str| json!({"forum": "demo", "ident": "/invisible", "body": body, "author_name": name});
    for body in [
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
        " \u{202E} ",
        "\u{2066}\u{2069}\n\u{200E}",
        "\u{00AD}\u{3164}",
    ] {
        let r = app
            .post("/api/v1/comments", post(body, "Ann"), &As::guest())
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "body {body:?}: {:?}",
            r.body
        );
    }
    for name in ["\u{200B}", "\u{202E}\u{202C}", "\u{FEFF} \u{2060}"] {
        let r = app
            .post("/api/v1/comments", post("hello", name), &As::guest())
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "name {name:?}: {:?}",
            r.body
        );
    }
    let r = app
        .post("/api/v1/accounts", json!({"username": "invisible", "password": "correct horse battery", "display_name": "\u{200B}\u{200D}"}), &As::guest())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "display name: {:?}",
        r.body
    );
    // Zero-width characters inside visible text stay (ZWJ joins emoji, ZWNJ matters in Persian).
    let r = app.post("/api/v1/comments", post("\u{1F468}\u{200D}\u{1F469} \u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}", "Ann\u{200B}"), &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(
        r.body["body"].as_str().unwrap().contains('\u{200D}'),
        "{:?}",
        r.body
    );
    assert_eq!(
        r.body["author"]["name"], "Ann",
        "invisible characters at a name's ends are trimmed"
    );
    // A title of nothing visible is no title.
    let r = app
        .post("/api/v1/comments", json!({"forum": "demo", "ident": "/invisible-title", "body": "x", "title": "\u{200B}\u{2060}"}), &As::guest())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let p = app.page("/invisible-title", "", &As::guest()).await;
    assert_eq!(
        p.body["thread"]["title"],
        Value::Null,
        "{:?}",
        p.body["thread"]
    );
}

#[tokio::test]
async fn bidi_controls_never_reach_html_unbalanced() {
    let app = spawn().await;
    let post = |body: &str, name: &str| json!({"forum": "demo", "ident": "/bidi", "body": body, "author_name": name});
    let bodies = [
        "price: \u{202E}0.01 USD",
        "*\u{202E}emphasis* after\n\nnext \u{2067}isolate",
        "nested \u{202B}a \u{2066}b\u{202C} c",
        "closers first \u{202C}\u{2069} then text",
        // Entities are decoded by the markdown parser, after the input rules ran.
        "entity &#x202E;reversed and &#8295;isolated",
        "- item \u{202D}one\n- item two\n\n> quote \u{202E}x",
        "`code \u{202E}span` and ```x\u{202E}```",
    ];
    for body in bodies {
        let r = app
            .post("/api/v1/comments", post(body, "Bidi"), &As::guest())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{body:?}: {:?}", r.body);
        let html = r.body["body_html"].as_str().unwrap();
        assert!(
            bidi_balanced(html),
            "body {body:?} rendered unbalanced: {html:?}"
        );
        assert!(
            bidi_balanced(r.body["body"].as_str().unwrap()),
            "source kept unbalanced: {:?}",
            r.body["body"]
        );
        // Each of the server's block elements is balanced on its own, so nothing leaks into the
        // next block: no paragraph or list item ends with a control still open.
        for block in html.split("</p>").flat_map(|b| b.split("</li>")) {
            assert!(bidi_balanced(block), "block {block:?} of {html:?}");
        }
    }
    // Paired controls are kept: right-to-left text in a left-to-right comment.
    let r = app.post("/api/v1/comments", post("he said \u{2067}\u{0645}\u{0631}\u{062D}\u{0628}\u{0627}\u{2069} and \u{202B}x\u{202C}", "Bidi"), &As::guest()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let html = r.body["body_html"].as_str().unwrap();
    assert!(
        OPENERS.iter().filter(|c| html.contains(**c)).count() == 2 && bidi_balanced(html),
        "{html:?}"
    );
    for name in [
        "\u{202E}evil",
        "a\u{202E}b",
        "x\u{2067}y\u{2069}\u{2069}\u{202C}z",
    ] {
        let r = app
            .post("/api/v1/comments", post("hi", name), &As::guest())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name:?}: {:?}", r.body);
        let shown = r.body["author"]["name"].as_str().unwrap();
        assert!(bidi_balanced(shown), "name {name:?} stored as {shown:?}");
    }
    // The server-rendered fragment carries the same balanced HTML.
    let (status, _, html) = app
        .get_page(&format!(
            "{}/embed/thread.html?forum=demo&ident=%2Fbidi",
            app.base
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let visible = html.split("<script").next().unwrap();
    assert!(bidi_balanced(visible), "{visible:?}");
}

#[tokio::test]
async fn forwarded_for_hops_with_ports_are_parsed() {
    let mut c = config();
    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    c.rate_limit.enabled = true;
    c.rate_limit.writes_per_minute_ip = 2;
    let app = spawn_with(c).await;
    // The proxy wrote the client as `ip:port` (or `[v6]:port`); the hops left of it are the
    // client's own. Rotating them must not rotate the rate limit's key.
    for (client, ident) in [
        ("203.0.113.7:51234", "/xff4"),
        ("[2001:db8::7]:443", "/xff6"),
    ] {
        let mut statuses = Vec::new();
        for i in 0..3 {
            let r = app
                .http
                .post(format!("{}/api/v1/comments", app.base))
                .header("x-forwarded-for", format!("198.51.100.{i}, {client}"))
                .json(&json!({"forum": "demo", "ident": ident, "body": "x", "author_name": "A"}))
                .send()
                .await
                .unwrap();
            statuses.push(r.status());
        }
        assert_eq!(
            statuses,
            [
                StatusCode::CREATED,
                StatusCode::CREATED,
                StatusCode::TOO_MANY_REQUESTS
            ],
            "client {client}"
        );
    }
    // An unparseable hop: nothing left of it is believed; the client is the hop right of it
    // (here the proxy itself, which has its own allowance).
    let mut statuses = Vec::new();
    for i in 0..3 {
        let r = app
            .http
            .post(format!("{}/api/v1/comments", app.base))
            .header("x-forwarded-for", format!("198.51.100.{i}, unknown"))
            .json(&json!({"forum": "demo", "ident": "/xffbad", "body": "x", "author_name": "A"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn thread_fragment_has_a_strict_csp() {
    let app = spawn().await;
    app.comment("/csp", "hello [link](https://example.com)", None)
        .await;
    let url = format!("{}/embed/thread.html?forum=demo&ident=%2Fcsp", app.base);
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let etag = r.headers().get("etag").unwrap().clone();
    for directive in [
        "default-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "sandbox",
    ] {
        assert!(
            csp.split(';').any(|d| d.trim() == directive),
            "{directive} missing from {csp:?}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    // The 304 carries it too (a browser may show the cached body under the new headers).
    let r = app
        .http
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        r.headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok()),
        Some(csp.as_str())
    );
}

#[tokio::test]
async fn private_answers_are_never_stored() {
    let app = spawn().await;
    let modr = app.account("cachemod", false, &["demo"]).await;
    let other = app.account("cacheother", false, &[]).await;
    let cases: Vec<(Method, &str, Option<Value>, As, StatusCode)> = vec![
        (
            Method::GET,
            "/api/v1/me",
            None,
            As::bearer(&modr),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/me",
            None,
            As::guest(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/api/v1/forums",
            None,
            As::bearer(&modr),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/forums",
            None,
            As::guest(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/api/v1/forums/demo",
            None,
            As::bearer(&modr),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/forums/demo",
            None,
            As::bearer(&other),
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            "/api/v1/forums/nope",
            None,
            As::bearer(&modr),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/forums/demo/comments?queue=pending",
            None,
            As::bearer(&modr),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/forums/demo/comments?before=nonsense",
            None,
            As::bearer(&modr),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/forums/demo/bans",
            None,
            As::bearer(&modr),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/forums/demo/log",
            None,
            As::bearer(&modr),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/forums/demo/stats",
            None,
            As::bearer(&modr),
            StatusCode::OK,
        ),
        (
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"title": 5})),
            As::bearer(&modr),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"login": "cachemod", "password": "correct horse battery"})),
            As::guest(),
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"login": "cachemod", "password": "wrong horse battery"})),
            As::guest(),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (method, path, body, who, want) in cases {
        let r = app.req(method.clone(), path, body, &who).await;
        assert_eq!(r.status, want, "{method} {path}: {:?}", r.body);
        assert_eq!(
            r.header("cache-control"),
            Some("private, no-store"),
            "{method} {path} ({})",
            r.status
        );
    }
    // Public answers keep their own caching.
    app.comment("/cache", "x", None).await;
    let r = app
        .get("/api/v1/counts?forum=demo&ident=%2Fcache", &As::guest())
        .await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_addresses_that_embed_an_internal_ipv4_are_refused() {
    let rx = Receiver::start(&[], 200).await;
    let port = rx
        .url
        .split(':')
        .nth(2)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    let mut c = config();
    fast_tasks(&mut c);
    c.webhooks.allow_private_targets = false;
    c.tasks.max_attempts = 2;
    let app = spawn_with(c).await;
    app.forum("embedded", json!({})).await;
    let modr = app.account("embeddedmod", false, &["embedded"]).await;
    let urls: Vec<String> = [
        "[::127.0.0.1]",                          // IPv4-compatible
        "[::ffff:0:127.0.0.1]",                   // IPv4-translated (SIIT)
        "[2002:7f00:1::]",                        // 6to4 of 127.0.0.1
        "[2002:a00:1::1]",                        // 6to4 of 10.0.0.1
        "[64:ff9b::a00:1]",                       // NAT64 of 10.0.0.1
        "[2001:0:4136:e378:8000:63bf:f5ff:fffe]", // Teredo (client 10.0.0.1)
        "[fec0::1]",                              // site-local
    ]
    .iter()
    .map(|h| format!("http://{h}:{port}/hook"))
    .collect();
    let hooks: Vec<Value> = urls
        .iter()
        .map(|u| json!({"url": u, "secret": SECRET, "events": ["comment.created"]}))
        .collect();
    let r = set_hooks(&app, "embedded", &modr, json!(hooks)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.post_comment("embedded", "/e", "x", None, &As::guest())
        .await;
    let tasks = app.settle().await;
    assert_eq!(tasks.len(), urls.len());
    for t in &tasks {
        let url = t.payload_json()["url"].as_str().unwrap().to_string();
        assert_eq!(
            (t.state.as_str(), t.attempts),
            ("parked", 1),
            "{url}: an internal address is parked at once: {t:?}"
        );
        assert!(
            t.last_error
                .as_deref()
                .unwrap()
                .contains("internal address"),
            "{url}: {t:?}"
        );
    }
    assert!(rx.requests().is_empty());
}

/// Runs `confab serve` with `env` until it exits (it cannot start: nothing listens for its
/// databases) and returns what it wrote to stderr.
fn serve_output(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    config: Option<&std::path::Path>,
) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab"));
    if let Some(f) = config {
        cmd.arg("--config").arg(f);
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir)
        .env("CONFAB_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run confab");
    assert!(
        !out.status.success(),
        "confab serve was expected to fail to start"
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn configured_secrets_never_reach_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let refused = "127.0.0.1:1";
    // Connection strings with passwords: the server fails to reach them and says so.
    let out = serve_output(
        dir.path(),
        &[
            (
                "CONFAB_POSTGRES__CONTROL",
                &format!("postgres://confab:pg-pass-2718@{refused}/confab"),
            ),
            (
                "CONFAB_BUS__REDIS_URL",
                &format!("redis://:redis-pass-1618@{refused}/0"),
            ),
            ("CONFAB_MAIL__PASSWORD", "smtp-pass-1414"),
            ("CONFAB_SECRET", "server-secret-1732-0123456789abcdef"),
        ],
        None,
    );
    for secret in [
        "pg-pass-2718",
        "redis-pass-1618",
        "smtp-pass-1414",
        "server-secret-1732",
    ] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }
    // A secret that reads as a number (TOML) is refused without echoing it.
    let out = serve_output(
        dir.path(),
        &[("CONFAB_MAIL__PASSWORD", "31415926535")],
        None,
    );
    assert!(!out.contains("31415926535"), "{out}");
    assert!(
        out.contains("mail.password") || out.contains("password"),
        "the key is named: {out}"
    );
    // A syntax error on a secret's line of the file is reported by position, not by quoting it.
    let f = dir.path().join("c.toml");
    std::fs::write(
        &f,
        "[mail]\nsmtp_host = \"mail.example\"\npassword = hunter2-unquoted\n",
    )
    .unwrap();
    let out = serve_output(dir.path(), &[], Some(&f));
    assert!(!out.contains("hunter2-unquoted"), "{out}");
    assert!(out.contains("line 3"), "the position is given: {out}");
}

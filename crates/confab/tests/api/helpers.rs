//! The test harness: a spawned server, a client, and typed helpers that read like the API.

use confab_server::config::Config;
use confab_server::service::Service;
use confab_server::Server;
use confab_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub svc: Arc<Service>,
    pub store: Arc<dyn Store>,
    pub _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    /// The last read-your-writes pin the server gave (sent back like the widget does).
    pin: std::sync::Mutex<Option<String>>,
}

/// Default test config: rate limits off unless a test turns them on.
pub fn config() -> Config {
    let mut c = Config::default();
    c.rate_limit.enabled = false;
    c
}

/// Test config with mail sent to `sink`, a fast worker, and webhooks allowed to reach this host.
pub fn mail_config(sink: &crate::smtp::SmtpSink) -> Config {
    let mut c = config();
    c.mail.smtp_host = "127.0.0.1".into();
    c.mail.smtp_port = sink.port;
    c.mail.tls = confab_server::config::MailTls::None;
    c.mail.from = "Confab <confab@test.example>".into();
    c.mail.timeout_secs = 5;
    fast_tasks(&mut c);
    c
}

/// A worker that polls often and retries soon.
pub fn fast_tasks(c: &mut Config) {
    c.tasks.poll_ms = 50;
    c.tasks.backoff_base_ms = 100;
    c.tasks.backoff_max_secs = 1;
    c.webhooks.allow_private_targets = true;
    c.webhooks.timeout_secs = 5;
}

pub async fn spawn() -> TestApp {
    spawn_with(config()).await
}

pub async fn spawn_with(config: Config) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = crate::backend::open_store(dir.path()).await;
    spawn_on(config, store, dir).await
}

/// A server on a given store (tests that build their own PostgreSQL deployment).
pub async fn spawn_on(
    mut config: Config,
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
) -> TestApp {
    config.data_dir = dir.path().to_path_buf();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Links in mail point here.
    config.listen = addr;
    let server = Server::new(config, store.clone(), b"test-secret-key-0123456789abcdef")
        .await
        .expect("server");
    let svc = server.service().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async move {
        let _ = rx.await;
    }));
    TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder().build().expect("client"),
        svc,
        store,
        _dir: dir,
        _shutdown: tx,
        pin: std::sync::Mutex::new(None),
    }
}

/// A response: status, headers and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Credentials a request is sent with.
#[derive(Debug, Clone, Default)]
pub struct As {
    pub bearer: Option<String>,
    pub anon: Option<String>,
    pub edit_token: Option<String>,
    pub origin: Option<String>,
    pub cookie: Option<String>,
}

impl As {
    pub fn guest() -> As {
        As::default()
    }
    pub fn bearer(t: &str) -> As {
        As {
            bearer: Some(t.to_string()),
            ..As::default()
        }
    }
    pub fn anon(t: &str) -> As {
        As {
            anon: Some(t.to_string()),
            ..As::default()
        }
    }
    pub fn edit(t: &str) -> As {
        As {
            edit_token: Some(t.to_string()),
            ..As::default()
        }
    }
    pub fn origin(mut self, o: &str) -> As {
        self.origin = Some(o.to_string());
        self
    }
}

impl TestApp {
    pub async fn req(&self, method: Method, path: &str, body: Option<Value>, who: &As) -> Resp {
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(b) = &body {
            r = r.json(b);
        }
        if let Some(t) = &who.bearer {
            r = r.bearer_auth(t);
        }
        if let Some(t) = &who.anon {
            r = r.header("x-confab-anon", t);
        }
        if let Some(t) = &who.edit_token {
            r = r.header("x-confab-edit-token", t);
        }
        if let Some(o) = &who.origin {
            r = r.header("origin", o);
        }
        if let Some(c) = &who.cookie {
            r = r.header("cookie", c);
        }
        let pin = self.pin.lock().unwrap().clone();
        if let Some(p) = pin {
            r = r.header("x-confab-pin", p);
        }
        let resp = r.send().await.expect("request");
        if let Some(p) = resp
            .headers()
            .get("x-confab-pin")
            .and_then(|v| v.to_str().ok())
        {
            *self.pin.lock().unwrap() = Some(p.to_string());
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, who: &As) -> Resp {
        self.req(Method::GET, path, None, who).await
    }
    pub async fn post(&self, path: &str, body: Value, who: &As) -> Resp {
        self.req(Method::POST, path, Some(body), who).await
    }

    /// Posts a guest comment and asserts it was created.
    pub async fn comment(&self, ident: &str, body: &str, parent: Option<&str>) -> Value {
        let r = self
            .post_comment("demo", ident, body, parent, &As::guest())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body
    }

    pub async fn post_comment(
        &self,
        forum: &str,
        ident: &str,
        body: &str,
        parent: Option<&str>,
        who: &As,
    ) -> Resp {
        let mut b = json!({"forum": forum, "ident": ident, "body": body, "author_name": "Tester"});
        if let Some(p) = parent {
            b["parent_id"] = json!(p);
        }
        self.post("/api/v1/comments", b, who).await
    }

    /// A page of a thread.
    pub async fn page(&self, ident: &str, query: &str, who: &As) -> Resp {
        let r = self
            .get(
                &format!(
                    "/api/v1/comments?forum=demo&ident={}{query}",
                    urlencode(ident)
                ),
                who,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r
    }

    /// Creates an account through the service and returns a session token.
    pub async fn account(&self, username: &str, staff: bool, moderates: &[&str]) -> String {
        let a = self
            .svc
            .create_account(
                username,
                Some(&format!("{username}@example.com")),
                "correct horse battery",
                None,
                staff,
            )
            .await
            .expect("account");
        for f in moderates {
            self.svc
                .set_moderator(&a, f, true)
                .await
                .expect("moderator");
        }
        self.svc.session_token(&a)
    }

    /// Creates a forum through the service.
    pub async fn forum(&self, name: &str, patch: Value) -> String {
        let mut body = confab_server::service::NewForum {
            name: confab_core::input::ForumName::parse(name).expect("forum name"),
            title: None,
            allowed_origins: None,
            moderation: None,
            guest_posting: None,
            edit_window_secs: None,
        };
        if let Some(m) = patch.get("moderation").and_then(Value::as_str) {
            body.moderation = confab_core::model::ModerationMode::parse(m);
        }
        if let Some(g) = patch.get("guest_posting").and_then(Value::as_bool) {
            body.guest_posting = Some(g);
        }
        if let Some(w) = patch.get("edit_window_secs").and_then(Value::as_i64) {
            body.edit_window_secs = Some(w);
        }
        body.allowed_origins = Some(vec!["https://site.example".into()]);
        self.svc.create_forum(body).await.expect("create forum");
        name.to_string()
    }
}

pub fn urlencode(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl TestApp {
    /// Waits until no task is queued or running (the worker has done everything it was given).
    pub async fn settle(&self) -> Vec<confab_store::Task> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let all = self
                .store
                .list_tasks(None, None, 1000)
                .await
                .expect("tasks");
            if all.iter().all(|t| {
                matches!(
                    t.state,
                    confab_store::TaskState::Done | confab_store::TaskState::Parked
                )
            }) {
                return all;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tasks did not settle: {all:#?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A form POST (what a browser's button, or a mail provider's one-click, sends).
    /// A form POST, as the browser that follows a mail link sends it: with the pin it holds, and
    /// keeping the pin a write gives it (so its next read sees that write).
    pub async fn post_form(&self, url: &str, body: &str) -> (StatusCode, String) {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(p) = self.pin.lock().unwrap().clone() {
            req = req.header("x-confab-pin", p);
        }
        let r = req.send().await.expect("request");
        if let Some(p) = r
            .headers()
            .get("x-confab-pin")
            .and_then(|v| v.to_str().ok())
        {
            *self.pin.lock().unwrap() = Some(p.to_string());
        }
        (r.status(), r.text().await.expect("body"))
    }

    /// A GET of a page, with its status, content type and text.
    pub async fn get_page(&self, url: &str) -> (StatusCode, String, String) {
        let r = self.http.get(url).send().await.expect("request");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (r.status(), ct, r.text().await.expect("body"))
    }
}

/// Every comment id in a page, depth-first.
pub fn ids(comments: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for c in comments.as_array().into_iter().flatten() {
        out.push(c["id"].as_str().unwrap_or_default().to_string());
        out.extend(ids(&c["replies"]));
    }
    out
}

/// Runs `confab --data DIR ARGS...` against the data of a running test server (its backend's
/// settings and secret): success, stdout and stderr.
pub async fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg("--data")
            .arg(&dir)
            .args(&args)
            .envs(crate::backend::process_env(&dir))
            .env("CONFAB_LOG", "warn")
            // The test servers' secret: on PostgreSQL a node with another one refuses to start.
            .env("CONFAB_SECRET", "test-secret-key-0123456789abcdef")
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("run confab");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

//! Sign-in with an OpenID provider and with GitHub (`/auth/{provider}`): the authorization-code
//! flow driven against a real OpenID provider (`oidc-provider`, started by
//! `web/scripts/oidc-provider.mjs`), and against a local server that answers like GitHub's
//! OAuth endpoints. Linking by a verified address only, identities that outlive an address
//! change, unique display names, and the refusals (state, nonce, cookie, origin).

use crate::helpers::*;
use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};

const SITE: &str = "https://site.example";

/// The test provider, stopped when dropped.
struct OidcProvider {
    child: Child,
    issuer: String,
    client_id: String,
    client_secret: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn web_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

/// Starts the provider, or `None` (the test is skipped, saying why) when node or the package is
/// missing and `CI` is not set; under `CI=true` that is a failure.
fn start_provider() -> Option<OidcProvider> {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let web = web_dir();
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let pkg_ok = web.join("node_modules/oidc-provider").exists();
    if !node_ok || !pkg_ok {
        let why = if node_ok {
            "web/node_modules/oidc-provider is missing (run `npm ci` in web/)"
        } else {
            "node is not installed"
        };
        assert!(!ci, "the OpenID provider tests must run under CI: {why}");
        eprintln!("SKIPPED: OpenID provider tests: {why}");
        return None;
    }
    let mut child = Command::new("node")
        .arg("scripts/oidc-provider.mjs")
        .current_dir(&web)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start web/scripts/oidc-provider.mjs");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    out.read_line(&mut line).expect("the provider's first line");
    // Whatever it prints later is read (a closed pipe would end the provider).
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    Some(OidcProvider {
        child,
        issuer: v["issuer"].as_str().unwrap().to_string(),
        client_id: v["client_id"].as_str().unwrap().to_string(),
        client_secret: v["client_secret"].as_str().unwrap().to_string(),
    })
}

/// A browser's cookies, per site, well enough for these flows (every cookie of a site is sent
/// on every request to it).
#[derive(Default)]
struct Jar(BTreeMap<String, BTreeMap<String, String>>);

impl Jar {
    fn site(url: &str) -> String {
        let u = reqwest::Url::parse(url).unwrap();
        format!(
            "{}:{}",
            u.host_str().unwrap(),
            u.port_or_known_default().unwrap()
        )
    }
    fn take(&mut self, url: &str, resp: &reqwest::Response) {
        let site = self.0.entry(Self::site(url)).or_default();
        for v in resp.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || v.to_ascii_lowercase().contains("max-age=0") {
                site.remove(k.trim());
            } else {
                site.insert(k.trim().to_string(), val.to_string());
            }
        }
    }
    fn header(&self, url: &str) -> String {
        self.0
            .get(&Self::site(url))
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
}

/// A browser: no automatic redirects, a cookie jar.
struct Browser {
    http: reqwest::Client,
    jar: Jar,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // A fresh connection each time, as the provider's interaction answers end theirs.
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            jar: Jar::default(),
        }
    }
    async fn get(&mut self, url: &str, accept: &str) -> reqwest::Response {
        let r = self
            .http
            .get(url)
            .header(COOKIE, self.jar.header(url))
            .header(ACCEPT, accept)
            .send()
            .await
            .unwrap();
        self.jar.take(url, &r);
        r
    }
    async fn post_form(&mut self, url: &str, body: &str) -> reqwest::Response {
        let r = self
            .http
            .post(url)
            .header(COOKIE, self.jar.header(url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        self.jar.take(url, &r);
        r
    }
}

fn location(base: &str, r: &reqwest::Response) -> String {
    let l = r
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location in a {} answer", r.status()))
        .to_str()
        .unwrap();
    reqwest::Url::parse(base)
        .unwrap()
        .join(l)
        .unwrap()
        .to_string()
}

fn query(url: &str, key: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn with_query(url: &str, key: &str, value: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

async fn spawn_with_provider(p: &OidcProvider) -> TestApp {
    let mut c = config();
    c.auth.oidc.push(confab_server::auth_config::OidcProvider {
        name: "test".into(),
        label: Some("Test ID".into()),
        issuer: p.issuer.clone(),
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.as_str().into(),
    });
    let app = spawn_with(c).await;
    app.forum("blog", json!({})).await;
    app
}

/// Begins a flow at Confab: the provider's authorization URL (the flow cookie is in the jar).
async fn begin(app: &TestApp, b: &mut Browser) -> String {
    let r = b
        .get(
            &format!(
                "{}/auth/test?forum=blog&origin={}",
                app.base,
                urlencode(SITE)
            ),
            "text/html",
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    location(&app.base, &r)
}

/// Signs `user` in at the provider, from its authorization URL to the URL it sends the
/// browser back to (Confab's callback, with `code` and `state`).
async fn at_provider(p: &OidcProvider, b: &mut Browser, authorize: &str, user: &str) -> String {
    let mut url = authorize.to_string();
    let mut posted = false;
    for _ in 0..10 {
        if !url.starts_with(&p.issuer) {
            return url;
        }
        let r = if !posted && url.contains("/interaction/") {
            posted = true;
            b.post_form(&url, &format!("login={user}")).await
        } else {
            b.get(&url, "text/html").await
        };
        assert!(
            r.status().is_redirection(),
            "provider answered {} at {url}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        url = location(&p.issuer, &r);
    }
    panic!("the provider never sent the browser back");
}

/// The whole flow; the callback's answer as JSON.
async fn sign_in(app: &TestApp, p: &OidcProvider, user: &str) -> (StatusCode, Value) {
    let mut b = Browser::new();
    let authorize = begin(app, &mut b).await;
    let back = at_provider(p, &mut b, &authorize, user).await;
    assert!(
        back.starts_with(&format!("{}/auth/test/callback?", app.base)),
        "{back}"
    );
    let r = b.get(&back, "application/json").await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn set_user(p: &OidcProvider, user: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_test/users", p.issuer))
        .header("content-type", "application/json")
        .body(user.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn oidc_sign_in_makes_an_account_and_finds_it_again() {
    let Some(p) = start_provider() else { return };
    let app = spawn_with_provider(&p).await;

    let r = app.get("/api/v1/auth/providers", &As::guest()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["providers"],
        json!([{"name": "test", "label": "Test ID"}])
    );

    // Carol has no address: a new account, named as the provider names her.
    let (status, s) = sign_in(&app, &p, "carol").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["account"]["display_name"], "Carol");
    let username = s["account"]["username"].as_str().unwrap().to_string();
    assert!(username.starts_with("ext~test~"), "{username}");
    let token = s["token"].as_str().unwrap().to_string();

    // The session works: she posts as herself.
    let posted = app
        .post(
            "/api/v1/comments",
            json!({"forum": "blog", "ident": "/p", "body": "hello from the provider"}),
            &As::bearer(&token).origin(SITE),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{:?}", posted.body);
    assert_eq!(posted.body["author"]["name"], "Carol");
    let me = app.get("/api/v1/me", &As::bearer(&token)).await;
    assert_eq!(me.body["username"], username.as_str());

    // Another reader the provider also calls Carol gets a name of her own.
    set_user(&p, json!({"sub": "carol2", "name": "Carol"})).await;
    let (_, s2) = sign_in(&app, &p, "carol2").await;
    assert_eq!(s2["account"]["display_name"], "Carol 2");

    // Her address changes (now verified, and an existing account's): the identity still
    // names her own account.
    app.account("someone", false, &[]).await;
    set_user(&p, json!({"sub": "carol", "name": "Carol", "email": "someone@example.com", "email_verified": true})).await;
    let (_, again) = sign_in(&app, &p, "carol").await;
    assert_eq!(again["account"]["username"], username.as_str());

    // She deletes her account: the identity goes with it, and the provider's next sign-in
    // makes a new account rather than opening the deleted one.
    set_user(&p, json!({"sub": "carol", "name": "Carol"})).await;
    let token = again["token"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/api/v1/me/delete",
            json!({"comments": "keep"}),
            &As::bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (status, fresh) = sign_in(&app, &p, "carol").await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_ne!(fresh["account"]["id"], again["account"]["id"], "{fresh}");
    assert_eq!(fresh["account"]["display_name"], "Carol", "{fresh}");
}

#[tokio::test]
async fn oidc_links_by_verified_address_only() {
    let Some(p) = start_provider() else { return };
    let app = spawn_with_provider(&p).await;
    // Accounts with the addresses the provider has for alice (verified) and bob (not).
    app.account("alice", false, &[]).await;
    app.account("bob", false, &[]).await;

    let (status, a) = sign_in(&app, &p, "alice").await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(
        a["account"]["username"], "alice",
        "linked by the verified address"
    );
    // Linked: the next sign-in finds it by the identity.
    let (_, a2) = sign_in(&app, &p, "alice").await;
    assert_eq!(a2["account"]["username"], "alice");

    let (status, b) = sign_in(&app, &p, "bob").await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_ne!(
        b["account"]["username"], "bob",
        "an unverified address never links"
    );
    assert!(b["account"]["username"]
        .as_str()
        .unwrap()
        .starts_with("ext~test~"));
    assert_eq!(b["account"]["display_name"], "Bob Example");
}

#[tokio::test]
async fn oidc_refuses_a_wrong_state_nonce_or_cookie() {
    let Some(p) = start_provider() else { return };
    let app = spawn_with_provider(&p).await;

    // A state that is not the flow's.
    let mut b = Browser::new();
    let authorize = begin(&app, &mut b).await;
    let back = at_provider(&p, &mut b, &authorize, "alice").await;
    let r = b
        .get(
            &with_query(&back, "state", "forged-state"),
            "application/json",
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"].as_str().unwrap().contains("state"),
        "{e}"
    );

    // No flow cookie (another browser), and a forged one.
    let mut other = Browser::new();
    let r = other.get(&back, "application/json").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let mut forged = Browser::new();
    forged
        .jar
        .0
        .entry(Jar::site(&app.base))
        .or_default()
        .insert("confab_auth".into(), "eyJwIjoidGVzdCJ9.AAAA".into());
    let r = forged.get(&back, "application/json").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "bad_signature"
    );

    // An authorization request whose nonce was swapped (state and PKCE are the flow's): the ID
    // token names another nonce and is refused.
    let mut b = Browser::new();
    let authorize = begin(&app, &mut b).await;
    let swapped = with_query(&authorize, "nonce", "an-injected-nonce");
    let back = at_provider(&p, &mut b, &swapped, "alice").await;
    let r = b.get(&back, "application/json").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("nonce"),
        "{e}"
    );

    // A browser gets a page that tells the widget (at the page's origin only).
    let mut b = Browser::new();
    let authorize = begin(&app, &mut b).await;
    let back = at_provider(&p, &mut b, &authorize, "alice").await;
    let r = b.get(&with_query(&back, "state", "x"), "text/html").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(html.contains("auth-error") && html.contains(SITE), "{html}");

    // Success, as a browser: the page hands the session to the site's origin.
    let mut b = Browser::new();
    let authorize = begin(&app, &mut b).await;
    let back = at_provider(&p, &mut b, &authorize, "alice").await;
    let r = b.get(&back, "text/html").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("confab_session=")));
    let html = r.text().await.unwrap();
    assert!(
        html.contains("\"session\"") && html.contains(&format!("\"origin\":\"{SITE}\"")),
        "{html}"
    );

    // Starting: an unknown provider, a page that is not the forum's.
    let r = app
        .get(
            "/auth/nope?forum=blog&origin=https%3A%2F%2Fsite.example",
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .get(
            "/auth/test?forum=blog&origin=https%3A%2F%2Fevil.example",
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "origin_not_allowed");
    let r = app.get("/auth/test?forum=blog", &As::guest()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// A local server that answers like GitHub's OAuth endpoints: code `good-code` (with a PKCE
/// verifier) gets a token; the token reads user 777 whose primary address is verified.
async fn fake_github() -> String {
    use axum::http::{HeaderMap, StatusCode as S};
    use axum::routing::{get, post};
    let json = |v: Value| ([("content-type", "application/json")], v.to_string());
    let authed = |h: &HeaderMap| {
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer gh-token")
    };
    let app = axum::Router::new()
        .route(
            "/login/oauth/access_token",
            post(move |body: String| async move {
                let form: BTreeMap<String, String> = reqwest::Url::parse(&format!("http://x/?{body}"))
                    .unwrap()
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let ok = form.get("code").map(String::as_str) == Some("good-code")
                    && form.get("client_id").map(String::as_str) == Some("gh-client")
                    && form.get("client_secret").map(String::as_str) == Some("gh-secret")
                    && form.get("code_verifier").is_some_and(|v| v.len() >= 43);
                if ok {
                    json(json!({"access_token": "gh-token", "token_type": "bearer"}))
                } else {
                    json(json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}))
                }
            }),
        )
        .route(
            "/api/user",
            get(move |h: HeaderMap| async move {
                if !authed(&h) {
                    return (S::UNAUTHORIZED, json(json!({"message": "Bad credentials"}))).into_response_parts();
                }
                (S::OK, json(json!({"id": 777, "login": "octo", "name": "Octo Cat"}))).into_response_parts()
            }),
        )
        .route(
            "/api/user/emails",
            get(move |h: HeaderMap| async move {
                if !authed(&h) {
                    return (S::UNAUTHORIZED, json(json!({"message": "Bad credentials"}))).into_response_parts();
                }
                (S::OK, json(json!([
                    {"email": "octo@users.noreply.example", "primary": false, "verified": true},
                    {"email": "alice@example.com", "primary": true, "verified": true}
                ])))
                .into_response_parts()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

trait IntoParts {
    fn into_response_parts(self) -> axum::response::Response;
}
impl<T: axum::response::IntoResponse> IntoParts for T {
    fn into_response_parts(self) -> axum::response::Response {
        self.into_response()
    }
}

#[tokio::test]
async fn github_sign_in_links_by_verified_primary_address() {
    let gh = fake_github().await;
    let mut c = config();
    c.auth.github = Some(confab_server::auth_config::GithubProvider {
        client_id: "gh-client".into(),
        client_secret: "gh-secret".into(),
        authorize_url: format!("{gh}/login/oauth/authorize"),
        token_url: format!("{gh}/login/oauth/access_token"),
        api_url: format!("{gh}/api"),
    });
    let app = spawn_with(c).await;
    app.forum("blog", json!({})).await;
    app.account("alice", false, &[]).await;
    let r = app.get("/api/v1/auth/providers", &As::guest()).await;
    assert_eq!(
        r.body["providers"],
        json!([{"name": "github", "label": "GitHub"}])
    );

    let mut b = Browser::new();
    let start = format!(
        "{}/auth/github?forum=blog&origin={}",
        app.base,
        urlencode(SITE)
    );
    let r = b.get(&start, "text/html").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&app.base, &r);
    assert!(
        to.starts_with(&format!("{gh}/login/oauth/authorize?")),
        "{to}"
    );
    assert_eq!(query(&to, "client_id").as_deref(), Some("gh-client"));
    assert_eq!(query(&to, "code_challenge_method").as_deref(), Some("S256"));
    let state = query(&to, "state").unwrap();
    let callback = format!("{}/auth/github/callback", app.base);
    assert_eq!(
        query(&to, "redirect_uri").as_deref(),
        Some(callback.as_str())
    );

    // GitHub refuses a bad code: so does Confab.
    let r = b
        .get(
            &format!("{callback}?code=bad-code&state={state}"),
            "application/json",
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The flow cookie was cleared with that answer: begin again.
    let r = b.get(&start, "text/html").await;
    let state = query(&location(&app.base, &r), "state").unwrap();
    let r = b
        .get(
            &format!("{callback}?code=good-code&state={state}"),
            "application/json",
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = r.json().await.unwrap();
    assert_eq!(
        s["account"]["username"], "alice",
        "linked by GitHub's verified primary address"
    );
}

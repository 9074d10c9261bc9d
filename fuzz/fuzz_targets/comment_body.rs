//! The JSON body of `POST /api/v1/comments`, through every confab-core parser the server applies
//! to it (`service::comments::post`), then the renderer.
//!
//! The fields are read from a `serde_json` object here rather than through
//! `confab_server::views::NewCommentBody`: depending on confab-server would pull the store
//! (SQLite's C build, Postgres), the worker, axum and tokio into every fuzz build, all of it
//! coverage-instrumented, for a type whose parsing is serde's derive. The code of Confab's own
//! on the path (CommentId's lenient Deserialize, the input parsers, the renderer) is all in
//! confab-core, and that is what this target exercises. Field names follow NewCommentBody.
#![no_main]
use confab_core::id::CommentId;
use confab_core::ident::Ident;
use confab_core::input::{parse_title, AuthorName, CommentBody, Email, WebUrl};
use confab_core::render::render_markdown;
use confab_fuzz::check_rendered;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// The server's defaults (`confab_server::config::Limits`).
const MAX_BODY_CHARS: usize = 10_000;
const MAX_NAME_CHARS: usize = 100;

/// `Some(Some(s))` for a string, `Some(None)` for absent or null, `None` for another type (the
/// server answers 422 for that).
fn opt_str<'a>(m: &'a Map<String, Value>, k: &str) -> Option<Option<&'a str>> {
    match m.get(k) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s)),
        Some(_) => None,
    }
}

fn check_url(raw: &str) {
    let Ok(u) = WebUrl::parse(raw) else { return };
    let s = u.as_str();
    assert!(
        s.starts_with("http://") || s.starts_with("https://"),
        "WebUrl {s:?} from {raw:?}"
    );
    // (Finding "weburl-len", fixed: the limit was checked on the typed form only, so a stored
    // URL could be refused by the parser that made it. Now both forms are measured alike.)
    assert!(
        s.len() <= 500 * 12,
        "WebUrl of {} bytes from {raw:?}",
        s.len()
    );
    {
        assert_eq!(
            WebUrl::parse(s).ok().as_ref().map(WebUrl::as_str),
            Some(s),
            "WebUrl not idempotent from {raw:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (Some(Some(_forum)), Some(Some(ident)), Some(Some(body))) = (
        opt_str(&m, "forum"),
        opt_str(&m, "ident"),
        opt_str(&m, "body"),
    ) else {
        return;
    };
    let (Some(url), Some(title), Some(name), Some(email), Some(author_url)) = (
        opt_str(&m, "url"),
        opt_str(&m, "title"),
        opt_str(&m, "author_name"),
        opt_str(&m, "author_email"),
        opt_str(&m, "author_url"),
    ) else {
        return;
    };

    if let Some(v) = m.get("parent_id").filter(|v| !v.is_null()) {
        if let Ok(id) = serde_json::from_value::<CommentId>(v.clone()) {
            let _ = id.shard();
            let json = serde_json::to_string(&id).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", id.0));
            assert_eq!(serde_json::from_str::<CommentId>(&json).ok(), Some(id));
        }
    }

    // Ident is covered in depth by ident_parse; here only that a valid one stays valid.
    if let Ok(i) = Ident::parse(ident) {
        assert!(!i.as_str().is_empty());
    }

    if let Ok(text) = CommentBody::parse(body, MAX_BODY_CHARS) {
        let s = text.as_str();
        assert!(
            s.chars().count() <= MAX_BODY_CHARS && !s.trim().is_empty() && s == s.trim_end(),
            "body {s:?}"
        );
        assert!(
            !s.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')),
            "control char in {s:?}"
        );
        assert_eq!(
            CommentBody::parse(s, MAX_BODY_CHARS).ok().as_ref(),
            Some(&text),
            "CommentBody not idempotent"
        );
        let r = render_markdown(s);
        check_rendered(s, &r.html, r.has_links);
    }

    if let Some(u) = url.filter(|s| !s.trim().is_empty()) {
        check_url(u);
    }
    if let Some(Ok(t)) = title.map(parse_title) {
        assert!(
            t.chars().count() <= 300 && t == t.trim() && !t.chars().any(char::is_control),
            "title {t:?}"
        );
        assert_eq!(
            parse_title(&t).ok().as_deref(),
            Some(t.as_str()),
            "parse_title not idempotent"
        );
    }
    if let Some(n) = name.map(str::trim).filter(|s| !s.is_empty()) {
        if let Ok(a) = AuthorName::parse(n, MAX_NAME_CHARS) {
            let s = a.as_str();
            assert!(
                s.chars().count() <= MAX_NAME_CHARS
                    && !s.is_empty()
                    && !s.chars().any(char::is_control)
            );
            assert_eq!(
                AuthorName::parse(s, MAX_NAME_CHARS).ok().as_ref(),
                Some(&a),
                "AuthorName not idempotent"
            );
        }
    }
    if let Some(e) = email.filter(|s| !s.trim().is_empty()) {
        if let Ok(a) = Email::parse(e) {
            let s = a.as_str();
            assert!(s.len() <= 254 && s.contains('@'), "Email {s:?} from {e:?}");
            assert_eq!(
                Email::parse(s).ok().as_ref(),
                Some(&a),
                "Email not idempotent from {e:?}"
            );
        }
    }
    if let Some(u) = author_url.filter(|s| !s.trim().is_empty()) {
        check_url(u);
    }
});

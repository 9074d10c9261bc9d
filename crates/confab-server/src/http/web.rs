//! What a browser loads besides the JSON API: the embed script, the demo article at `/`, the
//! moderation dashboard at `/admin`, and `/embed/thread.html`, the server-rendered first page
//! of a thread for crawlers and no-script readers (the widget hydrates from the JSON it carries).
//!
//! The files under `web/src` are compiled into the binary, so one `confab` carries everything.
//! Every user-provided string in server-rendered HTML is escaped; comment bodies were
//! sanitized when they were written.

use super::caller::Who;
use super::error::{ApiError, Query};
use super::AppState;
use crate::encoding::{accepts_gzip, gzip};
use crate::service::{Caller, PageRequest};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use confab_core::cursor::Sort;
use confab_core::ident::Ident;
use confab_core::render::escape_html;
use confab_core::DomainError;
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::LazyLock;

const EMBED_JS: &str = include_str!("../../../../web/src/embed.js");
const EMBED_CSS: &str = include_str!("../../../../web/src/embed.css");
const DEMO_HTML: &str = include_str!("../../../../web/src/demo.html");
const DEMO_CSS: &str = include_str!("../../../../web/src/demo.css");
const ADMIN_HTML: &str = include_str!("../../../../web/src/admin.html");
const ADMIN_JS: &str = include_str!("../../../../web/src/admin.js");
const ADMIN_CSS: &str = include_str!("../../../../web/src/admin.css");

/// The message catalogs (`web/src/i18n/{surface}/{lang}.json`): every language but English,
/// which is inline in `embed.js` and `admin.js`. A new language is a line here (and its files).
macro_rules! catalogs {
    ($($lang:literal),* $(,)?) => {
        &[$(
            ("embed", $lang, include_str!(concat!("../../../../web/src/i18n/embed/", $lang, ".json"))),
            ("admin", $lang, include_str!(concat!("../../../../web/src/i18n/admin/", $lang, ".json"))),
        )*]
    };
}
const CATALOGS: &[(&str, &str, &str)] = catalogs!("de", "fr", "es", "pt", "ja", "zh", "ar");

/// Where the embed script takes its stylesheet (replaced by the CSS as a JS string literal).
const CSS_MARKER: &str = "/*CONFAB_CSS*/''";
/// Where the embed script takes the catalogs' version (a string literal), for cache-busting URLs.
const I18N_MARKER: &str = "/*CONFAB_I18N*/''";
/// Where the demo page takes the server-rendered thread, and this server's origin.
const THREAD_MARKER: &str = "<!--CONFAB_THREAD-->";
const ORIGIN_MARKER: &str = "<!--CONFAB_ORIGIN-->";

const JS: &str = "text/javascript; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// Pages of our own origin: no inline script, nothing from elsewhere, not framed.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The thread fragment is meant to be included by a site's server, but it is served from this
/// origin, so a browser sent to it must run nothing: it loads nothing (no script, style, image
/// or frame; its JSON island is data, not script), and `sandbox` gives it an opaque origin, so
/// even markup that got past the sanitizer could not act with this origin's cookies.
const FRAGMENT_CSP: &str =
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox";

/// A static file with its validator.
struct Asset {
    body: String,
    /// The body gzipped once at start, for clients that accept it.
    gzip: Option<Vec<u8>>,
    etag: String,
    content_type: &'static str,
    cache: &'static str,
}

/// Whether the request's `Accept-Encoding` takes gzip.
pub(crate) fn wants_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip)
}

impl Asset {
    fn new(body: String, content_type: &'static str, cache: &'static str) -> Asset {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(body.as_bytes());
        let etag = format!(
            "\"{}\"",
            d.iter()
                .take(10)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Asset {
            gzip: gzip(body.as_bytes(), flate2::Compression::best()),
            body,
            etag,
            content_type,
            cache,
        }
    }

    fn respond(&self, headers: &HeaderMap, extra: &[(HeaderName, &'static str)]) -> Response {
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().trim_start_matches("W/") == self.etag)
            });
        let gzip_ok = wants_gzip(headers);
        let mut resp = match (&self.gzip, fresh, gzip_ok) {
            (_, true, _) => StatusCode::NOT_MODIFIED.into_response(),
            (Some(gz), false, true) => {
                let mut r = gz.clone().into_response();
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            _ => self.body.clone().into_response(),
        };
        let h = resp.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(self.cache));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        for (k, v) in extra {
            h.insert(k.clone(), HeaderValue::from_static(v));
        }
        resp
    }
}

/// Not fingerprinted, so short-lived; revalidation with the ETag is cheap.
const SHORT: &str = "public, max-age=300, stale-while-revalidate=86400";
const REVALIDATE: &str = "no-cache";
/// A catalog asked for with the current version (`?v=`): that URL never changes content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The embed: script with its stylesheet inlined, so a page makes one request for it.
static EMBED: LazyLock<Asset> = LazyLock::new(|| Asset::new(embed_js(), JS, SHORT));
static ADMIN_PAGE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(ADMIN_HTML.to_string(), HTML, REVALIDATE));
static ADMIN_SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    let js = ADMIN_JS.replacen(I18N_MARKER, &format!("'{}'", *I18N_VERSION), 1);
    Asset::new(js, JS, REVALIDATE)
});
static ADMIN_STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(ADMIN_CSS.to_string(), CSS, REVALIDATE));
static DEMO_STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(DEMO_CSS.to_string(), CSS, REVALIDATE));

/// Each catalog as served, by (surface, language).
static CATALOG_ASSETS: LazyLock<Vec<(&'static str, &'static str, Asset)>> = LazyLock::new(|| {
    CATALOGS
        .iter()
        .map(|(surface, lang, body)| (*surface, *lang, Asset::new(body.to_string(), JSON, SHORT)))
        .collect()
});

/// One version for all catalogs (a hash of their texts): the widget and the dashboard ask for
/// `/i18n/{surface}/{lang}.json?v=VERSION`, cached for good, and a new build changes the URL.
static I18N_VERSION: LazyLock<String> = LazyLock::new(|| {
    use sha2::{Digest, Sha256};
    let mut d = Sha256::new();
    for (surface, lang, body) in CATALOGS {
        d.update(surface.as_bytes());
        d.update(lang.as_bytes());
        d.update(body.as_bytes());
    }
    d.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
});

/// The embed script as served: `web/src/embed.js` with `web/src/embed.css` in place of the
/// marker, and the catalogs' version in place of its marker.
pub fn embed_js() -> String {
    let css = serde_json::to_string(EMBED_CSS).unwrap_or_else(|_| "\"\"".to_string());
    EMBED_JS
        .replacen(CSS_MARKER, &css, 1)
        .replacen(I18N_MARKER, &format!("'{}'", *I18N_VERSION), 1)
}

#[derive(Debug, Deserialize)]
pub struct CatalogQuery {
    /// The catalogs' version the page was built with; the current one makes the answer immutable.
    pub v: Option<String>,
}

/// `GET /i18n/{surface}/{lang}.json`: a language's message catalog for the widget (`embed`) or
/// the dashboard (`admin`). Public and static: any site may read it.
async fn catalog(
    axum::extract::Path((surface, file)): axum::extract::Path<(String, String)>,
    Query(q): Query<CatalogQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = file.strip_suffix(".json").unwrap_or("");
    let Some((_, _, asset)) = CATALOG_ASSETS
        .iter()
        .find(|(s, l, _)| *s == surface && *l == lang)
    else {
        return ApiError::from(DomainError::not_found("catalog")).into_response();
    };
    let cache = if q.v.as_deref() == Some(I18N_VERSION.as_str()) {
        IMMUTABLE
    } else {
        SHORT
    };
    let mut resp = asset.respond(
        &headers,
        &[
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                "cross-origin",
            ),
        ],
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

/// Routes for browsers; merged into the application's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(demo))
        .route(
            "/demo.css",
            get(|h: HeaderMap| async move { DEMO_STYLE.respond(&h, &[]) }),
        )
        .route("/embed.js", get(embed))
        .route("/embed/thread.html", get(thread_html))
        .route("/i18n/{surface}/{file}", get(catalog))
        .route("/admin", get(admin))
        .route("/admin/", get(admin))
        .route(
            "/admin/admin.js",
            get(|h: HeaderMap| async move { ADMIN_SCRIPT.respond(&h, &[]) }),
        )
        .route(
            "/admin/admin.css",
            get(|h: HeaderMap| async move { ADMIN_STYLE.respond(&h, &[]) }),
        )
}

async fn embed(headers: HeaderMap) -> Response {
    // Any site may load the script (it does nothing without a forum that allows the site).
    EMBED.respond(
        &headers,
        &[(
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "cross-origin",
        )],
    )
}

async fn admin(headers: HeaderMap) -> Response {
    ADMIN_PAGE.respond(
        &headers,
        &[
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
    )
}

/// The demo article, with the `demo` forum's thread for `/` rendered in place for hydration.
async fn demo(State(app): State<AppState>, Who(caller): Who, headers: HeaderMap) -> Response {
    let base = super::feeds::public_base(&app, &headers, caller.https);
    let thread = match app.svc.forum("demo").ok() {
        Some(forum) => match Ident::parse("/") {
            Ok(ident) => thread_fragment(
                &app,
                PageRequest { forum, ident, sort: Sort::Best, cursor: None, limit: app.svc.config().limits.page_default },
                &base,
            )
            .await
            .map(|(html, _)| html)
            .unwrap_or_default(),
            Err(_) => String::new(),
        },
        None => "<p>The <code>demo</code> forum is switched off on this server (<code>demo_forum = false</code>).</p>".to_string(),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("comments.example.com");
    let body = DEMO_HTML
        .replacen(ORIGIN_MARKER, &escape_html(&format!("http://{host}")), 1)
        .replacen(THREAD_MARKER, &thread, 1);
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(HTML)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("strict-origin-when-cross-origin"),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct ThreadHtmlQuery {
    pub forum: String,
    pub ident: String,
    /// best (default), newest or oldest.
    pub sort: Option<String>,
}

/// `GET /embed/thread.html?forum=F&ident=I`: the first page as HTML, to include server-side.
async fn thread_html(
    State(app): State<AppState>,
    Who(caller): Who,
    headers: HeaderMap,
    Query(q): Query<ThreadHtmlQuery>,
) -> Result<Response, ApiError> {
    let forum = app.svc.forum(&q.forum)?;
    let req = PageRequest {
        forum,
        ident: Ident::parse(&q.ident)?,
        sort: q
            .sort
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(Sort::parse)
            .transpose()?
            .unwrap_or_default(),
        cursor: None,
        limit: app.svc.config().limits.page_default,
    };
    let base = super::feeds::public_base(&app, &headers, caller.https);
    let (html, etag) = thread_fragment(&app, req, &base).await?;
    let etag = HeaderValue::from_str(&etag).map_err(|_| DomainError::internal())?;
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().as_bytes() == etag.as_bytes()));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        html.into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FRAGMENT_CSP),
    );
    h.insert(header::ETAG, etag);
    Ok(resp)
}

/// The shape of a page as the API serializes it (`views::PageView`), as much as HTML needs.
#[derive(Deserialize)]
struct SsrPage {
    thread: Option<SsrThread>,
    comments: Vec<SsrComment>,
}

#[derive(Deserialize)]
struct SsrThread {
    comment_count: i64,
    closed: bool,
}

#[derive(Deserialize)]
struct SsrComment {
    id: String,
    author: SsrAuthor,
    body_html: String,
    status: String,
    created_at: String,
    edited_at: Option<String>,
    likes: i64,
    replies: Vec<SsrComment>,
}

#[derive(Deserialize)]
struct SsrAuthor {
    name: String,
    url: Option<String>,
}

/// The public first page of a thread as an HTML fragment, and its ETag. The fragment carries
/// the page's JSON too, so the widget can show it without asking again.
async fn thread_fragment(
    app: &AppState,
    req: PageRequest,
    base: &str,
) -> Result<(String, String), DomainError> {
    // Always the public view: this HTML is shared by every reader (and cached by sites).
    let public = Caller::public();
    let forum_name = req.forum.name.clone();
    let feed = format!(
        "{base}{}",
        super::feeds::thread_feed_path(&forum_name, req.ident.as_str())
    );
    let sort = match req.sort {
        Sort::Best => "best",
        Sort::Newest => "newest",
        Sort::Oldest => "oldest",
        Sort::Featured => "featured",
    };
    let page = app.svc.page(req, &public).await?;
    let parsed: SsrPage = serde_json::from_slice(&page.body).map_err(|e| {
        tracing::error!(error = %e, "reading a page back for HTML");
        DomainError::internal()
    })?;
    let count = parsed.thread.as_ref().map_or(0, |t| t.comment_count);
    let mut out = String::with_capacity(page.body.len() * 2 + 512);
    let _ = write!(
        out,
        "<section class=\"confab-ssr\" aria-label=\"Comments\"><h2>{}</h2>",
        count_text(count)
    );
    if parsed.thread.as_ref().is_some_and(|t| t.closed) {
        out.push_str("<p>This discussion is closed.</p>");
    }
    if !parsed.comments.is_empty() {
        out.push_str("<ol>");
        for c in &parsed.comments {
            comment_html(&mut out, c);
        }
        out.push_str("</ol>");
    }
    let _ = write!(
        out,
        "<p class=\"confab-feed\"><a href=\"{}\" type=\"application/atom+xml\">Feed of these comments</a></p>",
        escape_html(&feed)
    );
    // JSON inside <script>: no '<', '>' or '&' can end the element or start markup.
    let json = String::from_utf8_lossy(&page.body)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let _ = write!(
        out,
        "<script type=\"application/json\" data-confab-page data-confab-forum=\"{}\" data-confab-sort=\"{sort}\">{json}</script></section>",
        escape_html(&forum_name)
    );
    let etag = format!("\"h{}\"", page.etag.trim_matches('"'));
    Ok((out, etag))
}

fn count_text(n: i64) -> String {
    match n {
        0 => "No comments yet".to_string(),
        1 => "1 comment".to_string(),
        n => format!("{n} comments"),
    }
}

fn comment_html(out: &mut String, c: &SsrComment) {
    let id = escape_html(&c.id);
    let _ = write!(
        out,
        "<li id=\"confab-c-{id}\"><article itemscope itemtype=\"https://schema.org/Comment\"><p>"
    );
    if c.status == "deleted" {
        out.push_str("<em>This comment was deleted.</em>");
    } else {
        let name = escape_html(&c.author.name);
        match c
            .author
            .url
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        {
            Some(u) => {
                let _ = write!(
                    out,
                    "<a itemprop=\"author\" href=\"{}\" rel=\"nofollow ugc noopener\">{name}</a>",
                    escape_html(u)
                );
            }
            None => {
                let _ = write!(out, "<strong itemprop=\"author\">{name}</strong>");
            }
        }
    }
    let when = escape_html(&c.created_at);
    let shown = match (c.created_at.get(..10), c.created_at.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => c.created_at.clone(),
    };
    let _ = write!(
        out,
        " · <time itemprop=\"dateCreated\" datetime=\"{when}\">{}</time>",
        escape_html(&shown)
    );
    if c.edited_at.is_some() {
        out.push_str(" (edited)");
    }
    if c.likes > 0 {
        let _ = write!(
            out,
            " · <span itemprop=\"upvoteCount\">{}</span> likes",
            c.likes
        );
    }
    out.push_str("</p>");
    if c.status != "deleted" {
        // Sanitized at write time (confab_core::render), safe to insert as is.
        let _ = write!(out, "<div itemprop=\"text\">{}</div>", c.body_html);
    }
    if !c.replies.is_empty() {
        out.push_str("<ol>");
        for r in &c.replies {
            comment_html(out, r);
        }
        out.push_str("</ol>");
    }
    out.push_str("</article></li>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embed_carries_its_stylesheet() {
        let js = embed_js();
        assert!(!js.contains(CSS_MARKER));
        assert!(js.contains(".c-comment"));
        assert!(!js.contains(I18N_MARKER));
        assert!(js.contains(&format!("'{}'", *I18N_VERSION)));
    }

    #[test]
    fn every_catalog_is_json_of_its_language() {
        for (surface, lang, body) in CATALOGS {
            let v: serde_json::Value = serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("i18n/{surface}/{lang}.json: {e}"));
            assert!(v.is_object(), "i18n/{surface}/{lang}.json is not an object");
        }
    }

    #[test]
    fn comment_html_escapes_what_users_wrote() {
        let c = SsrComment {
            id: "1".into(),
            author: SsrAuthor {
                name: "<script>x</script>".into(),
                url: Some("javascript:alert(1)".into()),
            },
            body_html: "<p>ok</p>".into(),
            status: "approved".into(),
            created_at: "2026-01-02T03:04:05.000Z".into(),
            edited_at: None,
            likes: 0,
            replies: vec![],
        };
        let mut out = String::new();
        comment_html(&mut out, &c);
        assert!(out.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!out.contains("javascript:"));
        assert!(out.contains("2026-01-02 03:04 UTC"));
    }
}

//! The OpenAPI document: generated from the handlers' annotations and the view types, then
//! given the constraints of what the server accepts ([`constrain`]), some of which follow the
//! configured limits. The document a server serves is true for that server: every status an
//! operation can answer is listed (extractor rejections, rate limits, the global body-size
//! check and store outages included), and the schema of each input admits what the server
//! takes and no more, where the rule is a static one (`scripts/schemathesis.sh` checks both).

use crate::config::Limits;
use crate::http::gdpr::{DataLinkBody, EraseBody, ForumEraseBody};
use crate::http::requests::*;
use crate::http::{api, bans, gdpr, mail};
use crate::service::{DataComment, DataMark, DataProfile, DataSubscription, Erasure, ReaderData};
use crate::views::*;
use serde_json::{json, Map, Value};
use utoipa::OpenApi;

pub use errors::*;

/// The error responses, as components every operation refers to (`errors.rs`).
pub mod errors;

#[derive(OpenApi)]
#[openapi(
    info(title = "Confab API", version = "1", description = "Threaded comments for any web page. Ids are decimal strings (0 to 2^63-1, no sign, no leading zero); request bodies also take them as JSON integers."),
    paths(
        api::list_comments, api::post_comment, api::edit_comment, api::delete_comment, api::list_replies,
        api::preview, api::vote, api::flag, api::react_comment, api::react_thread, api::feature_comment, api::my_votes, api::counts, api::signup, api::login, api::sso_login, api::logout, api::me,
        api::request_password_reset, api::confirm_password_reset, api::change_password, api::change_email, api::end_all_sessions,
        api::my_forums, api::create_forum, api::forum_settings, api::update_forum, api::mod_list,
        api::moderate, bans::bans, bans::ban, bans::unban, api::mod_log, api::stats, api::update_thread, api::move_thread,
        api::upload_import, api::list_imports, api::get_import,
        api::list_switches, api::set_switch, api::reset_switch, api::forum_moderators, api::add_moderator, api::remove_moderator,
        api::add_staff, api::remove_staff,
        crate::http::live::live_sse, crate::http::live::live_ws,
        crate::http::challenge::get_challenge,
        crate::http::follows::following, crate::http::follows::follow, crate::http::follows::unfollow,
        mail::confirm_page, mail::confirm, mail::unsubscribe_page, mail::unsubscribe, mail::moderate_page, mail::moderate, mail::account_email_page, mail::account_email,
        mail::password_reset_page, mail::password_reset,
        gdpr::my_data, gdpr::delete_me, gdpr::reader_data, gdpr::delete_reader, gdpr::forum_reader_data, gdpr::erase_forum_reader,
        gdpr::guest_comment_data, gdpr::erase_guest_comment, gdpr::request_data_link, gdpr::reader_data_page, gdpr::reader_data_action,
        crate::http::auth::providers, crate::http::auth::start, crate::http::auth::callback,
        crate::http::media::upload_image, crate::http::media::get_image, crate::http::media::remove_image,
    ),
    components(schemas(
        PageView, ThreadView, CommentView, AuthorView, RepliesView, NewCommentBody, PostedView, EditBody,
        PreviewBody, PreviewView, VoteBody, VoteView, ReactBody, ReactedView, FeatureBody, FlagBody, FlagView, MyVotesView, CountsView, SignupBody, LoginBody, SsoBody, AccountView, SessionView,
        PasswordResetBody, PasswordResetConfirmBody, PasswordChangeBody, EmailChangeBody, MailRequestedView,
        ForumView, NewForumBody, ForumPatch, ModCommentView, ModListView, ModerateBody, ModerateView, BanBody,
        BansView, BanView, ActorView, ModThreadView, FlagReasonView, AuthorHistoryView, QueueCountsView, LogEntryView, LogView, DayCount, StatsView, ThreadPatchBody, ThreadMoveBody, ThreadAddressesView, ImportView, ImportsView, SwitchBody, SwitchView, SwitchesView, ModeratorView, ErrorBody, ErrorDetail, NotifyStatus, LiveEventView,
        confab_core::model::Webhook, confab_core::model::WebhookEvent, confab_core::model::ModeratorMail,
        crate::http::challenge::ChallengeView, crate::http::challenge::ChallengeSolution, confab_core::challenge::ChallengeSettings,
        EraseBody, ForumEraseBody, DataLinkBody, ReaderData, DataProfile, DataComment, DataMark, DataSubscription, Erasure,
        crate::http::auth::ProvidersView, crate::service::oidc::ProviderInfo, crate::http::follows::FollowView,
        ImageView, crate::http::media::UploadedView,
    ),
    responses(BadRequest, Unauthorized, Forbidden, NotFound, Gone, Conflict, PayloadTooLarge, UnsupportedMediaType,
        Unprocessable, RateLimited, Internal, Unavailable, UpgradeRequired, RequestTimeout)),
    tags((name = "widget", description = "What the embed calls"), (name = "accounts"), (name = "moderation"), (name = "staff", description = "Feature switches and roles (staff, from the dashboard)"),
        (name = "mail", description = "Pages behind the signed links in Confab's mail (HTML; GET shows, POST acts)"))
)]
pub struct ApiDoc;

/// The document of a server with default settings.
pub fn json() -> String {
    document(&Limits::default())
}

/// The document of a server with these limits, as pretty JSON (keys sorted, so it is stable
/// and can be snapshot-tested).
pub fn document(limits: &Limits) -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    constrain(&mut doc, limits);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string())
}

// Character classes of the rules in `confab_core::input`, as regular expressions that mean the
// same in ECMA-262 and Python. WS is Unicode White_Space (Rust's `trim` and `is_whitespace`),
// CC the control characters (`char::is_control`), INV the invisible ones (`is_invisible`;
// characters outside the BMP are written as themselves), INV_TRIM those of them a one-line
// field loses at its ends (`is_trimmable`: not the modifiers), LS_PS the line and paragraph
// separators a one-line field refuses.
const WS: &str = r"\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
const CC: &str = r"\u0000-\u001F\u007F-\u009F";
const LS_PS: &str = r"\u2028\u2029";
/// White space that is neither a control character nor a line break.
const WS_INLINE: &str = r" \u00A0\u1680\u2000-\u200A\u202F\u205F\u3000";
const INV: &str = "\\u00AD\\u034F\\u061C\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u206F\\u2800\\u3164\\uFE00-\\uFE0F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}";
const INV_TRIM: &str = "\\u00AD\\u034F\\u061C\\u115F\\u1160\\u17B4\\u17B5\\u180E\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u206F\\u2800\\u3164\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E001F}\u{E0080}-\u{E00FF}\u{E01F0}-\u{E0FFF}";

/// Something visible (`is_visible`), anywhere in the value.
fn visible() -> Value {
    json!({ "pattern": format!("[^{WS}{CC}{INV}]") })
}

/// One line of text as `AuthorName` and `parse_title` take it: no control characters or line
/// breaks; white space and invisible characters trimmed from the ends; then at most `max`
/// characters (unpaired bidi controls, which are dropped, are not counted by the server, so it
/// takes a few more of those than this says). Something must be visible; the caller says what
/// happens otherwise. `pre_trimmed`: the handler trims white space first (control characters
/// among it then pass).
fn line(max: usize, pre_trimmed: bool) -> Value {
    let t = format!("[{WS_INLINE}{INV_TRIM}]");
    let (pre, post) = if pre_trimmed {
        (format!("[{WS}]*"), format!("[{WS}]*"))
    } else {
        (String::new(), String::new())
    };
    let edge = format!("[^{CC}{LS_PS}{WS}{INV_TRIM}]");
    let core = match max {
        0 | 1 => edge.clone(),
        _ => format!("{edge}(?:[^{CC}{LS_PS}]{{0,{}}}{edge})?", max - 2),
    };
    json!({ "type": "string", "allOf": [{ "pattern": format!("^{pre}{t}*{core}{t}*{post}$") }, visible()] })
}

/// A name that may be left blank (white space alone is taken as absent).
fn optional_name(max: usize, pre_trimmed: bool) -> Value {
    json!({ "anyOf": [{ "type": "null" }, { "type": "string", "pattern": format!("^[{WS}]*$") }, line(max, pre_trimmed)] })
}

/// A title: empty when nothing in it is visible (taken as no title), else a [`line`].
fn optional_title(max: usize) -> Value {
    json!({ "anyOf": [{ "type": "null" }, { "type": "string", "pattern": format!("^[{WS_INLINE}{INV}]*$") }, line(max, false)] })
}

/// A comment body as `CommentBody` takes it: trailing white space dropped, then 1..=max
/// characters, something visible, no control characters but tab and line breaks.
fn body(max: usize) -> Value {
    let a = r"[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]";
    let n = format!("[^{WS}{CC}]");
    json!({ "type": "string", "minLength": 1, "allOf": [{ "pattern": format!("^{a}{{0,{}}}{n}[{WS}]*$", max.saturating_sub(1)) }, visible()] })
}

/// A one-line text trimmed of white space, at most `max` characters, no control characters
/// (the flag reason).
fn trimmed_line(max: usize) -> String {
    let n = format!("[^{WS}{CC}]");
    format!(
        "^[{WS}]*(?:{n}(?:[^{CC}]{{0,{}}}{n})?[{WS}]*)?$",
        max.saturating_sub(2)
    )
}

/// An e-mail address as `Email` takes it (at most 254 characters as sent, trimmed; local part
/// 1-64 characters; a dotted domain).
fn email(blank: bool) -> Value {
    let e = format!(r#"[^{WS}{CC}{INV}@<>"(),;:\\\[\]]"#);
    let d = format!(r#"[^{WS}{CC}{INV}@<>"(),;:\\\[\].]"#);
    let addr = format!(r"{e}{{1,64}}@{d}+(?:\.{d}+)+");
    let pattern = if blank {
        format!("^[{WS}]*(?:{addr}[{WS}]*)?$")
    } else {
        format!("^[{WS}]*{addr}[{WS}]*$")
    };
    json!({ "type": "string", "maxLength": 254, "pattern": pattern })
}

/// An absolute http(s) URL (`WebUrl`, webhook URLs): at most 500 characters.
fn web_url() -> Value {
    json!({ "type": "string", "format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://", "maxLength": 500 })
}

/// An optional URL field of a comment: null, blank (ignored) or an absolute http(s) URL.
fn optional_url() -> Value {
    json!({ "anyOf": [{ "type": "null" }, { "type": "string", "pattern": format!("^[{WS}]*$") }, web_url()] })
}

/// A forum's short name (`ForumName`).
const FORUM: &str = "^[a-z0-9][a-z0-9-]{1,63}$";
/// A thread identifier (`Ident`): not blank, no control characters once trimmed.
fn ident() -> Value {
    json!({
        "type": "string",
        "pattern": format!("^[{WS}]*[^{WS}{CC}](?:[^{CC}]*[^{WS}{CC}])?[{WS}]*$"),
        "description": "Thread identifier: the page URL or any string. A URL (or `//host/path`, or an absolute path) keeps its path and query without tracking parameters; the result is at most 500 bytes.",
        "example": "/blog/hello-world",
    })
}

fn id_string() -> Value {
    json!({ "type": "string", "pattern": confab_core::id::ID_PATTERN })
}

/// An id in a request body: the decimal string, or (for scripts) a JSON integer.
fn id_in_body() -> Value {
    json!({ "anyOf": [id_string(), { "type": "integer", "minimum": 0, "maximum": i64::MAX }], "description": "64-bit id as a decimal string (a JSON integer is accepted too)" })
}

/// An id, or an empty string for none (the `before` of a first page).
fn id_or_empty() -> Value {
    json!({ "type": "string", "pattern": confab_core::id::ID_PATTERN.replacen("^(", "^(|", 1) })
}

/// Gives the document the rules the handlers and `confab_core::input` apply. Each entry names
/// the parser it copies.
pub fn constrain(doc: &mut Value, limits: &Limits) {
    let page_limit = json!({ "type": "integer", "minimum": 1, "maximum": limits.page_max });
    let name = limits.max_name_chars;

    // Request bodies.
    let s = "NewCommentBody";
    merge(
        prop(doc, s, "forum"),
        json!({ "pattern": FORUM, "example": "demo" }),
    );
    set(prop(doc, s, "ident"), ident());
    set(prop(doc, s, "url"), optional_url());
    set(prop(doc, s, "title"), optional_title(300));
    set(
        prop(doc, s, "parent_id"),
        json!({ "anyOf": [{ "type": "null" }, id_in_body()] }),
    );
    merge(prop(doc, s, "body"), body(limits.max_body_chars));
    set(prop(doc, s, "author_name"), optional_name(name, true));
    set(
        prop(doc, s, "author_email"),
        json!({ "anyOf": [{ "type": "null" }, email(true)] }),
    );
    set(prop(doc, s, "author_url"), optional_url());
    merge(prop(doc, "EditBody", "body"), body(limits.max_body_chars));
    merge(
        prop(doc, "PreviewBody", "body"),
        body(limits.max_body_chars),
    );
    merge(
        prop(doc, "VoteBody", "value"),
        json!({ "minimum": -1, "maximum": 1 }),
    );
    // The handler reads it as a 64-bit signed integer (integral floats too).
    merge(
        prop(doc, "ChallengeSolution", "number"),
        json!({ "minimum": 0, "maximum": i64::MAX }),
    );
    merge(
        prop(doc, "FlagBody", "reason"),
        json!({ "pattern": trimmed_line(200) }),
    );
    // A picture is at least one byte: an empty upload is refused before anything else.
    if let Some(upload) = doc.pointer_mut(
        "/paths/~1api~1v1~1forums~1{forum}~1images/post/requestBody/content/application~1octet-stream/schema",
    ) {
        merge(upload, json!({ "minLength": 1 }));
    }

    let s = "SignupBody";
    merge(
        prop(doc, s, "username"),
        json!({ "pattern": "^[A-Za-z0-9_.-]{3,32}$" }),
    );
    set(
        prop(doc, s, "email"),
        json!({ "anyOf": [{ "type": "null" }, email(true)] }),
    );
    merge(
        prop(doc, s, "password"),
        json!({ "minLength": 8, "maxLength": 256 }),
    );
    set(prop(doc, s, "display_name"), optional_name(name, false));
    let password = json!({ "minLength": 8, "maxLength": 256 });
    merge(
        prop(doc, "PasswordResetConfirmBody", "password"),
        password.clone(),
    );
    merge(prop(doc, "PasswordChangeBody", "new"), password);
    set(prop(doc, "EmailChangeBody", "email"), email(false));

    // Feature switches (`confab_core::switch::Percent`).
    merge(
        prop(doc, "SwitchBody", "percent"),
        json!({ "minimum": 1, "maximum": 100 }),
    );

    // Forum settings (`validate_settings`, `validate_webhooks`).
    let title = json!({ "maxLength": 200, "pattern": format!("[^{WS}]") });
    let origins = json!({ "maxItems": 50, "items": { "type": "string", "pattern": r"^https?://[A-Za-z0-9.:\[\]*-]{1,253}$", "example": "https://blog.example.com" } });
    let window = json!({ "minimum": 0, "maximum": 7 * 24 * 3600 });
    for s in ["NewForumBody", "ForumPatch"] {
        merge(prop(doc, s, "title"), title.clone());
        merge(prop(doc, s, "allowed_origins"), origins.clone());
        merge(prop(doc, s, "edit_window_secs"), window.clone());
    }
    merge(
        prop(doc, "NewForumBody", "name"),
        json!({ "pattern": FORUM }),
    );
    // Each URL once: the schema can only say that no two entries are the same.
    merge(
        prop(doc, "ForumPatch", "webhooks"),
        json!({ "maxItems": 10, "uniqueItems": true, "description": "Replaces the forum's webhooks (at most 10, each URL once)." }),
    );
    set(prop(doc, "Webhook", "url"), web_url());
    // Write-only: answers show it empty, and an empty one keeps the key stored for that URL.
    merge(
        prop(doc, "Webhook", "secret"),
        json!({ "maxLength": 200, "pattern": format!("^(?:|[^{CC}]{{16,200}})$") }),
    );
    // Repeated events are merged before the check, so only an empty list is refused.
    merge(prop(doc, "Webhook", "events"), json!({ "minItems": 1 }));

    // Moderation rules (`confab_core::modrules::validate`): each entry 1-100 characters with
    // a word in it, no control characters; at most 500 per list.
    let entry = json!({ "type": "string", "minLength": 1, "maxLength": 100,
        "pattern": format!("^[^{CC}]*[A-Za-z0-9][^{CC}]*$") });
    for list in ["block", "hold"] {
        merge(
            prop(doc, "WordLists", list),
            json!({ "maxItems": 500, "items": entry.clone() }),
        );
    }
    merge(prop(doc, "Trust", "hold_first"), json!({ "minimum": 0 }));
    // Off (`count` 0), or 2-100 identical texts within 1-1440 minutes.
    schema(doc, "Duplicates").insert(
        "anyOf".into(),
        json!([
            { "type": "object", "properties": { "count": { "const": 0 }, "minutes": { "type": "integer", "minimum": 0, "maximum": 1440 } } },
            { "type": "object", "properties": { "count": { "type": "integer", "minimum": 2, "maximum": 100 }, "minutes": { "type": "integer", "minimum": 1, "maximum": 1440 } }, "required": ["count", "minutes"] },
        ]),
    );

    let s = "ModerateBody";
    set(
        prop(doc, s, "ids"),
        json!({ "type": "array", "items": id_in_body(), "minItems": 1, "maxItems": 100, "description": "Up to 100 comment ids of this forum." }),
    );
    merge(
        prop(doc, s, "action"),
        json!({ "enum": ["approve", "spam", "delete", "restore"] }),
    );

    // A ban names a comment (its author is banned), or a kind and a value of that kind.
    let s = "BanBody";
    set(
        prop(doc, s, "comment_id"),
        json!({ "anyOf": [{ "type": "null" }, id_in_body()] }),
    );
    merge(
        prop(doc, s, "reason"),
        json!({ "pattern": format!("^[{WS}]*(?:[^{WS}](?:[\\s\\S]{{0,498}}[^{WS}])?[{WS}]*)?$") }),
    );
    merge(
        prop(doc, s, "expires_in_secs"),
        json!({ "minimum": 1, "maximum": 100_i64 * 365 * 24 * 3600 }),
    );
    set(
        prop(doc, s, "duration"),
        json!({ "anyOf": [{ "type": "null" }, { "type": "string", "enum": ["day", "week", "forever"] }] }),
    );
    schema(doc, s).insert(
        "not".into(),
        json!({ "required": ["duration", "expires_in_secs"],
                "properties": { "duration": { "type": "string" }, "expires_in_secs": { "type": "integer" } } }),
    );
    let not_comment = json!({ "anyOf": [{ "type": "null" }] });
    let account = format!(
        "^[{WS}]*{}[{WS}]*$",
        confab_core::id::ID_PATTERN
            .trim_start_matches('^')
            .trim_end_matches('$')
    );
    let ip = json!({ "anyOf": [
        { "type": "string", "format": "ipv4" },
        { "type": "string", "format": "ipv6" },
        { "type": "string", "pattern": format!("^[{WS}]*[0-9A-Fa-f]{{16}}[{WS}]*$"), "description": "an IP hash as moderators see it" },
    ] });
    schema(doc, s).insert(
        "anyOf".into(),
        json!([
            { "required": ["comment_id"], "properties": { "comment_id": id_in_body(), "value": { "type": "null" },
                "kind": { "anyOf": [{ "type": "null" }, { "type": "string", "enum": ["account", "email", "ip", "ip+email"] }] } } },
            { "required": ["kind", "value"], "properties": { "comment_id": not_comment, "kind": { "const": "email" }, "value": email(false) } },
            { "required": ["kind", "value"], "properties": { "comment_id": not_comment, "kind": { "const": "ip" }, "value": ip } },
            { "required": ["kind", "value"], "properties": { "comment_id": not_comment, "kind": { "const": "account" }, "value": { "type": "string", "pattern": account } } },
        ]),
    );

    set(prop(doc, "ThreadPatchBody", "title"), optional_title(300));
    set(
        prop(doc, "ThreadPatchBody", "pinned"),
        json!({ "anyOf": [{ "type": "null" }, { "const": "" }, id_in_body()] }),
    );
    set(
        prop(doc, "PasswordResetBody", "login"),
        json!({ "type": "string", "maxLength": 254, "pattern": format!("[^{WS}]") }),
    );
    // Reactions: one of the fixed set, by name or emoji.
    let reactions = confab_core::reaction::Reaction::ALL;
    let names = reactions.iter().map(|r| r.as_str());
    set(
        prop(doc, "ReactBody", "emoji"),
        json!({ "type": "string", "enum": names.chain(reactions.iter().map(|r| r.emoji())).collect::<Vec<_>>() }),
    );
    set(prop(doc, "ThreadMoveBody", "from"), ident());
    set(prop(doc, "ThreadMoveBody", "to"), ident());

    // A reader's own data (`http/gdpr.rs`): what to do with the comments, and who.
    let choice = json!({ "type": "string", "enum": ["keep", "remove"] });
    set(prop(doc, "EraseBody", "comments"), choice.clone());
    set(prop(doc, "ForumEraseBody", "comments"), choice);
    set(
        prop(doc, "ForumEraseBody", "email"),
        json!({ "anyOf": [{ "type": "null" }, email(true)] }),
    );
    // The reader is named by account or by e-mail: one of the two (a blank one is none).
    schema(doc, "ForumEraseBody").insert(
        "anyOf".into(),
        json!([
            { "required": ["account"], "properties": {
                "account": { "type": "string", "pattern": format!("[^{WS}]") }, "email": { "type": "null" } } },
            { "required": ["email"], "properties": { "email": { "type": "string" }, "account": { "type": "null" } } },
        ]),
    );
    set(prop(doc, "DataLinkBody", "email"), email(false));
    merge(
        prop(doc, "DataLinkBody", "forum"),
        json!({ "pattern": FORUM }),
    );

    // Parameters.
    let forum = json!({ "type": "string", "pattern": FORUM, "example": "demo" });
    let id = json!({ "type": "string", "pattern": confab_core::id::ID_PATTERN });
    for (path, ops) in paths(doc) {
        for (method, op) in ops.iter_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for p in params {
                let name = p["name"].as_str().unwrap_or("").to_string();
                let schema = match (p["in"].as_str(), name.as_str()) {
                    (Some("path"), "forum") => forum.clone(),
                    (Some("path"), "id") => id.clone(),
                    // Pictures (`http/media.rs`): an image's id, and its served name `{hash}.{ext}`.
                    (Some("path"), "image") => id.clone(),
                    (Some("path"), "file") => json!({ "type": "string", "pattern": "^[0-9a-f]{32}\\.(jpg|png)$" }),
                    (Some("path"), "username") => json!({ "type": "string", "pattern": "^[A-Za-z0-9_.-]{3,32}$" }),
                    (Some("path"), "name") => json!({ "type": "string", "enum": confab_core::switch::SwitchName::ALL.map(|n| n.as_str()) }),
                    (Some("query"), "forum") => forum.clone(),
                    // Sign-in with a provider (`http/auth.rs`).
                    (Some("path"), "provider") => json!({ "type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,31}$" }),
                    (Some("query"), "origin") => json!({ "type": "string", "maxLength": 200, "example": "https://blog.example.com" }),
                    (Some("query"), "code" | "state" | "error") => json!({ "type": "string", "maxLength": 2048 }),
                    (Some("query"), "ident") if path == "/api/v1/counts" => json!({
                        "type": "array", "items": ident(), "minItems": 1, "maxItems": limits.counts_max,
                    }),
                    (Some("query"), "ident") => ident(),
                    (Some("query"), "id") => json!({ "type": "array", "items": id, "minItems": 1, "maxItems": crate::service::VOTES_MAX }),
                    (Some("query"), "sort") => json!({ "type": "string", "enum": ["best", "newest", "oldest", "featured"] }),
                    (Some("query"), "limit") => page_limit.clone(),
                    // Cursors are opaque: only one the server gave (for the same sort) is taken,
                    // which no schema can say; longer ones are refused unread.
                    (Some("query"), "cursor") => json!({ "type": "string", "maxLength": 128 }),
                    (Some("query"), "before") => id_or_empty(),
                    (Some("query"), "queue") => json!({ "type": "string", "enum": ["pending", "approved", "spam", "deleted", "flagged", "all"] }),
                    (Some("query"), "q") => json!({ "type": "string", "maxLength": 200, "pattern": format!("^[^{CC}]*$") }),
                    (Some("query"), "format") => json!({ "type": "string", "enum": crate::service::import::ImportFormat::ALL.iter().map(|f| f.source()).collect::<Vec<_>>() }),
                    (Some("query"), "name") => json!({ "type": "string" }),
                    (Some("query"), "days") => json!({ "type": "integer", "minimum": 1, "maximum": 365 }),
                    (Some("query"), "account") => json!({ "type": "string", "maxLength": 200 }),
                    (Some("query"), "email") => json!({ "type": "string", "maxLength": 254 }),
                    (Some("query"), "t") => json!({ "type": "string", "minLength": 1, "maxLength": 1024 }),
                    // What makes a request a WebSocket upgrade (compared without case).
                    (Some("header"), "Connection") => json!({ "type": "string", "pattern": "(^|,)[ \\t]*[Uu][Pp][Gg][Rr][Aa][Dd][Ee][ \\t]*(,|$)", "example": "Upgrade" }),
                    (Some("header"), "Upgrade") => json!({ "type": "string", "pattern": "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$", "example": "websocket" }),
                    (Some("header"), "Sec-WebSocket-Version") => json!({ "type": "string", "enum": ["13"] }),
                    (Some("header"), "Idempotency-Key") => json!({ "type": "string", "pattern": "^[\\t -~]*[!-~][\\t -~]*$", "maxLength": 200 }),
                    (Some("header"), _) => json!({ "type": "string" }),
                    (place, _) => panic!("{method} {path}: parameter {name} in {place:?} has no rule in openapi::constrain"),
                };
                p["schema"] = schema;
            }
        }
    }
    global_answers(doc);
}

/// What the layers in front of every handler may answer, on every operation: `http::read_body`
/// (400 for a body that cannot be read, 408 for one that does not arrive in time, 413 for one
/// over the limit) and the connection caps (503), all in the API's JSON error shape. Where an
/// operation answers that status in HTML (the mail pages), JSON is added as a second form.
/// On the widget's routes, `http::origin` answers a page whose origin no forum lists with 403.
fn global_answers(doc: &mut Value) {
    for (path, ops) in paths(doc) {
        let widget = path
            .strip_prefix("/api/v1")
            .is_some_and(crate::http::is_widget_path);
        for (_, op) in ops.iter_mut() {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            if widget && !responses.contains_key("403") {
                responses.insert(
                    "403".into(),
                    json!({ "$ref": "#/components/responses/Forbidden" }),
                );
            }
            for (code, name) in [
                ("400", "BadRequest"),
                ("408", "RequestTimeout"),
                ("413", "PayloadTooLarge"),
                ("503", "Unavailable"),
            ] {
                match responses.get_mut(code) {
                    None => {
                        responses.insert(
                            code.into(),
                            json!({ "$ref": format!("#/components/responses/{name}") }),
                        );
                    }
                    Some(r)
                        if r.get("content")
                            .is_some_and(|c| c.get("application/json").is_none()) =>
                    {
                        r["content"]["application/json"] =
                            json!({ "schema": { "$ref": "#/components/schemas/ErrorBody" } });
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

/// `doc.paths`, mutably, as (path, operations by method).
fn paths(doc: &mut Value) -> Vec<(String, &mut Map<String, Value>)> {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    paths
        .iter_mut()
        .filter_map(|(p, ops)| Some((p.clone(), ops.as_object_mut()?)))
        .collect()
}

fn schema<'a>(doc: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    doc["components"]["schemas"][name]
        .as_object_mut()
        .unwrap_or_else(|| panic!("schema {name} is in the document"))
}

fn prop<'a>(doc: &'a mut Value, schema: &str, prop: &str) -> &'a mut Value {
    let p = &mut doc["components"]["schemas"][schema]["properties"][prop];
    assert!(p.is_object(), "{schema}.{prop} is in the document");
    p
}

fn merge(v: &mut Value, with: Value) {
    if let (Some(v), Value::Object(with)) = (v.as_object_mut(), with) {
        v.extend(with);
    }
}

fn set(v: &mut Value, to: Value) {
    let description = v.get("description").cloned();
    *v = to;
    if let (Some(d), Some(o)) = (description, v.as_object_mut()) {
        o.entry("description").or_insert(d);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rule_finds_its_place() {
        // `constrain` panics on a schema, property or parameter it does not know.
        let doc: serde_json::Value = serde_json::from_str(&super::json()).unwrap();
        assert_eq!(
            doc["components"]["schemas"]["SignupBody"]["properties"]["password"]["minLength"],
            8
        );
    }

    #[test]
    fn line_patterns() {
        let l = super::line(100, false).to_string();
        assert!(l.contains("{0,98}"), "{l}");
    }
}

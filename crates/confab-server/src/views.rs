//! The JSON shapes of the API. They are the contract with the widget and with scripts;
//! `tests/snapshots/openapi.json` pins them.

use confab_core::id::{AccountId, CommentId, ThreadId};
use confab_core::model::{Ban, CommentStatus, ForumSettings, ModLogEntry, ModerationMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Integers in request bodies. JSON Schema counts `1.0` as the integer 1, and so does the
/// server: an integral number is taken whatever its spelling.
mod int {
    use serde::de::{Deserializer, Error, Visitor};
    use std::fmt;

    struct Int;
    impl Visitor<'_> for Int {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("integer out of range"))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v)
            {
                Ok(v as i64)
            } else {
                Err(E::custom(format!(
                    "invalid type: floating point `{v}`, expected an integer"
                )))
            }
        }
    }

    pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(Int)
    }

    struct OptInt;
    impl<'de> Visitor<'de> for OptInt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or null")
        }
        fn visit_none<E: Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
            de(d).map(Some)
        }
    }

    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_option(OptInt)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThreadView {
    pub id: ThreadId,
    pub forum: String,
    pub ident: String,
    pub url: Option<String>,
    pub title: Option<String>,
    pub closed: bool,
    /// Visible (approved) comments.
    pub comment_count: i64,
    /// Changes with every change to the thread; realtime events carry it.
    pub seq: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthorView {
    /// Display name (escape it when you put it in HTML).
    pub name: String,
    pub url: Option<String>,
    /// Set when the author is a signed-in account.
    pub account_id: Option<AccountId>,
    /// Stable per author, for generating an identicon locally.
    pub avatar: String,
    /// SHA-256 (hex) of the author's e-mail address, for `https://gravatar.com/avatar/{hash}`:
    /// only when the forum shows Gravatar images and the author gave an address.
    pub gravatar: Option<String>,
    /// The author moderates this forum.
    pub moderator: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommentView {
    pub id: CommentId,
    pub thread_id: ThreadId,
    pub parent_id: Option<CommentId>,
    pub depth: i32,
    pub author: AuthorView,
    /// Sanitized HTML, safe to insert.
    pub body_html: String,
    /// The markdown source (empty for deleted comments).
    pub body: String,
    pub status: CommentStatus,
    pub likes: i64,
    pub dislikes: i64,
    /// Visible direct replies, shown or not.
    pub reply_count: i64,
    pub created_at: String,
    pub edited_at: Option<String>,
    #[schema(no_recursion)]
    pub replies: Vec<CommentView>,
    /// Cursor for `GET /api/v1/comments/{id}/replies` when not every reply is nested here.
    pub replies_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PageView {
    pub thread: Option<ThreadView>,
    pub comments: Vec<CommentView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RepliesView {
    pub comments: Vec<CommentView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewCommentBody {
    pub forum: String,
    pub ident: String,
    pub url: Option<String>,
    pub title: Option<String>,
    pub parent_id: Option<CommentId>,
    pub body: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub author_url: Option<String>,
    /// Ask to be e-mailed replies to this comment (needs `author_email`, or an account with an
    /// address). The first time, a confirmation link is mailed; replies are mailed only once it
    /// has been followed (double opt-in). Without an address it is refused (400).
    #[serde(default)]
    pub notify: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PostedView {
    #[serde(flatten)]
    pub comment: CommentView,
    /// For guests: lets this client edit or delete the comment within the edit window.
    pub edit_token: Option<String>,
    /// For clients without an identity yet: keep it and send it as `X-Confab-Anon`.
    pub anon_token: Option<String>,
    /// Set when the request asked for reply notifications: what happens next.
    pub notify: Option<NotifyStatus>,
}

/// What became of a request for reply notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyStatus {
    /// The address is confirmed: replies will be mailed.
    Subscribed,
    /// A confirmation link is mailed (at most once an hour); replies are mailed once it is followed.
    PendingConfirmation,
    /// This server sends no mail.
    Unavailable,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EditBody {
    pub body: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PreviewBody {
    pub body: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PreviewView {
    /// Sanitized HTML, exactly as the comment would be stored.
    pub html: String,
    /// The body links somewhere (a forum in `links` moderation mode would hold it).
    pub has_links: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct VoteBody {
    /// 1 (like), -1 (dislike) or 0 (withdraw).
    #[serde(deserialize_with = "int::de")]
    pub value: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VoteView {
    pub likes: i64,
    pub dislikes: i64,
    pub my_vote: i64,
    pub anon_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct FlagBody {
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlagView {
    pub flagged: bool,
    pub anon_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MyVotesView {
    /// The caller's vote (1 or -1) per comment id it voted on; others are left out.
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    pub votes: std::collections::BTreeMap<confab_core::id::CommentId, i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountsView {
    /// Visible comments per ident, keyed as the client sent it.
    pub counts: std::collections::BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SignupBody {
    pub username: String,
    pub email: Option<String>,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LoginBody {
    /// Username or e-mail.
    pub login: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub id: AccountId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_staff: bool,
    /// Short names of the forums this account moderates.
    pub moderates: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub account: AccountView,
    /// Bearer token for embeds on other origins (`Authorization: Bearer ...`).
    pub token: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForumView {
    pub name: String,
    pub settings: ForumSettings,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewForumBody {
    pub name: String,
    pub title: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub moderation: Option<ModerationMode>,
    pub guest_posting: Option<bool>,
    #[serde(default, deserialize_with = "int::opt")]
    pub edit_window_secs: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ForumPatch {
    pub title: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub moderation: Option<ModerationMode>,
    pub guest_posting: Option<bool>,
    #[serde(default, deserialize_with = "int::opt")]
    pub edit_window_secs: Option<i64>,
    pub moderator_mail: Option<confab_core::model::ModeratorMail>,
    /// Replaces the forum's webhooks (at most 10).
    pub webhooks: Option<Vec<confab_core::model::Webhook>>,
    /// Show authors' Gravatar images (readers' browsers then ask gravatar.com).
    pub gravatar: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModCommentView {
    #[serde(flatten)]
    pub comment: CommentView,
    pub forum: String,
    pub author_email: Option<String>,
    pub ip_hash: String,
    pub flag_count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModListView {
    pub comments: Vec<ModCommentView>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<CommentId>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ModerateBody {
    /// Up to 100 comment ids of this forum.
    pub ids: Vec<CommentId>,
    /// approve, spam, delete or restore.
    pub action: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModerateView {
    pub changed: usize,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BanBody {
    /// email, ip or account. With `comment_id` instead, the author of that comment is banned
    /// (their account or e-mail, and their IP).
    pub kind: Option<confab_core::model::BanKind>,
    /// An e-mail, an IP address or IP hash, or an account id.
    pub value: Option<String>,
    pub comment_id: Option<CommentId>,
    pub reason: Option<String>,
    /// Seconds until the ban lapses; none for permanent.
    #[serde(default, deserialize_with = "int::opt")]
    pub expires_in_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BansView {
    pub bans: Vec<Ban>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogView {
    pub entries: Vec<ModLogEntry>,
    pub next_before: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayCount {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsView {
    pub daily: Vec<DayCount>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ThreadPatchBody {
    pub closed: Option<bool>,
    pub title: Option<String>,
}

/// One Server-Sent Event of `GET /api/v1/threads/live`: `hello` first, then the thread's
/// changes (`comment.created` and the like, whose `data` is the change) and control events
/// (`resync`, `degraded`, `reconnect`). `data` is JSON text; `id` is the thread's sequence.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveEventView {
    pub event: String,
    pub data: String,
    #[schema(pattern = "^[0-9]+$")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `rate_limited`.
    pub code: String,
    pub message: String,
}

//! The JSON shapes of the API. They are the contract with the widget and with scripts;
//! `tests/snapshots/openapi.json` pins them. The service builds the ones it caches or publishes
//! (pages, live events, the moderation queue); `http/respond.rs` turns its other results into
//! these shapes, so this file depends on no layer above the core.

use confab_core::id::{AccountId, CommentId, ThreadId};
use confab_core::model::{
    Account, BanKind, CommentStatus, Forum, ForumSettings, ModLogEntry, Thread,
};
use confab_core::rfc3339;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A thread as the API shows it.
pub fn thread_view(t: &Thread, forum: &Forum) -> ThreadView {
    ThreadView {
        id: t.id,
        forum: forum.name.clone(),
        ident: t.ident.as_str().to_string(),
        url: t.url.clone(),
        title: t.title.clone(),
        closed: t.closed,
        comment_count: t.comment_count,
        seq: t.seq,
        pinned_id: t.pinned_id,
        reactions: t.reactions.to_map(),
    }
}

/// A forum as the API shows it. Webhook secrets are write-only: shown empty; the spam
/// check's key is shown masked.
pub fn forum_view(f: &Forum) -> ForumView {
    let mut settings = f.settings.clone();
    for h in &mut settings.webhooks {
        h.secret.clear();
    }
    settings.spam = settings.spam.masked();
    ForumView {
        name: f.name.clone(),
        settings,
        created_at: rfc3339(f.created_at),
        sso: f.sso_secret.is_some(),
    }
}

/// An account as its owner sees it, with the names of the forums it moderates.
pub fn account_view(a: &Account, moderates: Vec<String>) -> AccountView {
    AccountView {
        id: a.id,
        username: a.username.clone(),
        display_name: a.display_name.clone(),
        email: a.email.clone(),
        is_staff: a.is_staff,
        moderates,
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
    /// The comment a moderator pinned: first on the first page (and not on later ones).
    pub pinned_id: Option<CommentId>,
    /// Readers' emoji reactions to the page itself, by name, only those with any.
    pub reactions: BTreeMap<String, i64>,
}

/// A thread with every address it answers to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThreadAddressesView {
    pub thread: ThreadView,
    /// Its other idents (aliases: links it had, addresses it moved from or to).
    pub aliases: Vec<String>,
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
    /// An avatar image URL the author's site sent (SSO accounts), to show instead of the
    /// identicon.
    pub avatar_url: Option<String>,
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
    /// Readers' emoji reactions by name (`like`, `love`, `laugh`, `wow`, `sad`, `party`), only
    /// those with any.
    pub reactions: BTreeMap<String, i64>,
    /// A moderator featured it (listed with `sort=featured`).
    pub featured: bool,
    #[schema(no_recursion)]
    pub replies: Vec<CommentView>,
    /// Cursor for `GET /api/v1/comments/{id}/replies` when not every reply is nested here.
    pub replies_cursor: Option<String>,
    /// Pictures attached to it, in order (none for deleted, withheld and spam comments: their
    /// pictures are not served). Left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub images: Vec<ImageView>,
}

/// A picture attached to a comment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageView {
    pub id: confab_core::id::ImageId,
    /// Where it is served, relative to the server (`/api/v1/images/{id}/{hash}.{ext}`): the
    /// address changes with the content, so it is cached for a year.
    pub url: String,
    pub width: u32,
    pub height: u32,
}

impl ImageView {
    pub fn of(r: &confab_core::media::ImageRef) -> ImageView {
        ImageView {
            id: confab_core::id::ImageId(r.id),
            url: r.path(),
            width: r.width,
            height: r.height,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PageView {
    pub thread: Option<ThreadView>,
    pub comments: Vec<CommentView>,
    pub next_cursor: Option<String>,
    /// The forum takes pictures with comments (its `images` setting; a page cached before a
    /// change says the old value until the thread changes or the page's time is up). Left
    /// out when it does not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub pictures: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RepliesView {
    pub comments: Vec<CommentView>,
    pub next_cursor: Option<String>,
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

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PreviewView {
    /// Sanitized HTML, exactly as the comment would be stored.
    pub html: String,
    /// The body links somewhere (a forum in `links` moderation mode would hold it).
    pub has_links: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VoteView {
    pub likes: i64,
    pub dislikes: i64,
    pub my_vote: i64,
    pub anon_token: Option<String>,
}

/// A comment's or thread's reactions after the caller's change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReactedView {
    /// The counts by name, only those above zero.
    pub reactions: BTreeMap<String, i64>,
    /// The caller's reactions on it now.
    pub mine: Vec<String>,
    pub anon_token: Option<String>,
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
    /// The caller's reactions (names) per comment or thread id it reacted to; others are left
    /// out.
    pub reactions: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountsView {
    /// Visible comments per ident, keyed as the client sent it.
    pub counts: std::collections::BTreeMap<String, i64>,
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

/// The answer to a request that mails a link: the same whatever the request named.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MailRequestedView {
    /// What happens next, to show the reader.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForumView {
    pub name: String,
    pub settings: ForumSettings,
    pub created_at: String,
    /// Whether the forum has an SSO secret (the secret itself is never returned).
    pub sso: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModCommentView {
    #[serde(flatten)]
    pub comment: CommentView,
    pub forum: String,
    pub author_email: Option<String>,
    pub ip_hash: String,
    pub flag_count: i64,
    /// Why a hidden comment was hidden: `held: word 'x'`, `held: 5 links (limit 3)`, `held:
    /// new commenter (1 of 2 approved)`, `held: flagged by 3 readers`, `spam: the same text
    /// posted 3 times in 10 minutes`, `shadow ban`, `held: moderation mode pre`. None for
    /// comments shown to the public, and for those held before reasons were kept.
    pub held_reason: Option<String>,
    /// The comment's thread: its title and address.
    pub thread: ModThreadView,
    /// The comment in place on the site (the thread's address + `#comment-<id>`, which the
    /// widget scrolls to and highlights); none when the thread's address is not known.
    pub link: Option<String>,
    /// Why readers flagged it, most given first.
    pub flag_reasons: Vec<FlagReasonView>,
    /// The author's comments on this forum by status, and since when (accounts, and guests
    /// who gave an e-mail; none for other guests).
    pub author_history: Option<AuthorHistoryView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModThreadView {
    pub id: ThreadId,
    pub title: Option<String>,
    pub url: Option<String>,
    pub ident: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlagReasonView {
    pub reason: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthorHistoryView {
    pub approved: i64,
    pub pending: i64,
    pub spam: i64,
    pub deleted: i64,
    /// Their first comment on this forum.
    pub first_seen: String,
}

/// How many comments wait in each queue; each count stops at `cap` ("1000+").
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueCountsView {
    pub pending: i64,
    pub flagged: i64,
    pub spam: i64,
    pub cap: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModListView {
    pub comments: Vec<ModCommentView>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<CommentId>,
    /// The queues' sizes (the same whatever queue was asked for).
    pub counts: QueueCountsView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModerateView {
    pub changed: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BansView {
    pub bans: Vec<BanView>,
}

/// A ban as moderators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BanView {
    #[schema(value_type = String)]
    #[serde(serialize_with = "confab_core::id::i64_as_string")]
    pub id: i64,
    pub kind: BanKind,
    /// What it matches, masked: `t***@example.com`, `203.0.113.x`, `the address of comment
    /// 123 by Troll`, `the account of Troll` (e-mails and addresses are never shown whole).
    pub shown: String,
    /// The account id, for account bans only.
    pub value: Option<String>,
    /// The comment it was made from.
    pub comment_id: Option<CommentId>,
    pub reason: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; none: for good.
    pub expires_at: Option<i64>,
    /// In force (not past `expires_at`); lapsed bans stay listed until lifted.
    pub active: bool,
    pub shadow: bool,
    /// Who made it (none for bans made before this was kept).
    pub created_by: Option<ActorView>,
}

/// A moderator, by id and display name (none if the account is gone).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorView {
    pub id: AccountId,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogView {
    pub entries: Vec<LogEntryView>,
    pub next_before: Option<String>,
}

/// A log entry with names: who acted, and on which thread.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogEntryView {
    #[serde(flatten)]
    pub entry: ModLogEntry,
    /// The moderator's display name (none for the system, or an account that is gone).
    pub actor_name: Option<String>,
    /// The title of the thread of the comment acted on, if any.
    pub thread_title: Option<String>,
    /// The comment in place on the site, if the thread's address is known.
    pub link: Option<String>,
}

/// An import uploaded in the dashboard: how far it is, then what it did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportView {
    pub id: String,
    /// The export's format (`disqus`, ...).
    pub format: String,
    /// The file's name as it was uploaded.
    pub file_name: String,
    /// Bytes received.
    pub bytes: i64,
    /// `running`; then `done` or `failed`; `interrupted` when a running import's record has
    /// not moved for two minutes (its server stopped: upload the file again, nothing is
    /// imported twice).
    pub state: String,
    /// Posts read so far (the first pass: the whole file is read before anything is written).
    pub posts_read: i64,
    /// Comments to write (known once the file is read).
    pub comments_total: i64,
    pub comments_written: i64,
    /// What it did (when `done`): threads created, comments added and already there, what was
    /// skipped and why, how long it took.
    pub summary: String,
    /// Why it stopped (when `failed`), with the line and column of a file that cannot be read.
    pub error: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub updated_at: String,
}

impl From<&confab_store::ImportRecord> for ImportView {
    fn from(r: &confab_store::ImportRecord) -> Self {
        ImportView {
            id: r.id.to_string(),
            format: r.format.clone(),
            file_name: r.file_name.clone(),
            bytes: r.bytes,
            state: r.state.as_str().to_string(),
            posts_read: r.posts_read,
            comments_total: r.comments_total,
            comments_written: r.comments_written,
            summary: r.summary.clone(),
            error: r.error.clone(),
            started_at: rfc3339(r.started_at),
            finished_at: r.finished_at.map(rfc3339),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// A forum's latest imports, and what an upload may be.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportsView {
    /// The formats this server reads (the `format` an upload names).
    pub formats: Vec<String>,
    /// The largest upload this server takes.
    pub max_upload_bytes: u64,
    /// Newest first, at most 20.
    pub imports: Vec<ImportView>,
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

/// A feature switch record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SwitchView {
    /// posting, realtime, signups or gravatar.
    pub name: String,
    /// The forum of the record; none: global.
    pub forum: Option<String>,
    /// The value given to the requests the selectors match (all, without selectors); the rest
    /// of the scope gets the opposite.
    pub on: bool,
    pub percent: Option<u8>,
    pub staff: bool,
    pub changed_by: String,
    pub changed_at: String,
}

/// Every switch and its records. A switch without records is on; the most specific record
/// (the forum's, else the global one) decides.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SwitchesView {
    /// Every switch there is.
    pub names: Vec<String>,
    pub switches: Vec<SwitchView>,
}

/// An account as staff see it in a forum's moderator list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModeratorView {
    pub username: String,
    pub display_name: String,
    pub is_staff: bool,
}

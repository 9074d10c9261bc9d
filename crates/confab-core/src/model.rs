//! Records as the storage layer keeps them and the services reason about them.

use crate::id::{AccountId, CommentId, ForumId, LogicalShard, ThreadId};
use crate::ident::Ident;
use serde::{Deserialize, Serialize};

/// How new comments of a forum are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModerationMode {
    /// Published at once.
    None,
    /// Every guest or user comment waits for a moderator.
    Pre,
    /// Comments containing a link wait for a moderator.
    Links,
}

impl ModerationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationMode::None => "none",
            ModerationMode::Pre => "pre",
            ModerationMode::Links => "links",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "pre" => Some(Self::Pre),
            "links" => Some(Self::Links),
            _ => None,
        }
    }
}

/// A forum's settings, changed by its moderators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ForumSettings {
    pub title: String,
    /// Origins allowed to embed and write, e.g. `https://blog.example.com`. A port of `*`
    /// matches any port (`http://localhost:*`).
    pub allowed_origins: Vec<String>,
    pub moderation: ModerationMode,
    pub guest_posting: bool,
    /// How long after posting an author may edit or delete, in seconds.
    pub edit_window_secs: i64,
    /// Which comments the forum's moderators are mailed about.
    #[serde(default)]
    pub moderator_mail: ModeratorMail,
    /// Endpoints told about comment events (at most 10).
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    /// Show authors' Gravatar images. Off by default: avatars are identicons drawn in the
    /// reader's browser and nothing goes to a third party. On, the API carries the SHA-256 of
    /// each author's e-mail address and readers' browsers ask gravatar.com for the image.
    #[serde(default)]
    pub gravatar: bool,
    /// Words refused (`block`) or held for a moderator (`hold`): case-insensitive, Unicode
    /// normalized, whole words (`confab_core::modrules`).
    #[serde(default)]
    pub words: crate::modrules::WordLists,
    /// Hold a comment with more links than this (none: no limit).
    #[serde(default, deserialize_with = "crate::modrules::count::opt")]
    #[schema(maximum = 1000)]
    pub max_links: Option<u32>,
    /// Hold new commenters until some of their comments were approved.
    #[serde(default)]
    pub trust: crate::modrules::Trust,
    /// Hold a published comment once this many distinct readers flagged it (none: never).
    #[serde(default, deserialize_with = "crate::modrules::count::opt")]
    #[schema(minimum = 1, maximum = 1000)]
    pub flags_to_hold: Option<u32>,
    /// The same text posted `count` times in `minutes` by one author or address is spam.
    #[serde(default)]
    pub duplicates: crate::modrules::Duplicates,
    /// Guests' new comments carry a solved proof-of-work challenge (`confab_core::challenge`).
    #[serde(default)]
    pub challenge: crate::challenge::ChallengeSettings,
    /// The outside spam check (an Akismet-compatible service); off without a key.
    #[serde(default)]
    pub spam: crate::spam::SpamSettings,
    /// Readers may attach pictures to their comments (`confab_core::media`). Off by default:
    /// hosting readers' pictures is storage, moderation and legal work a site owner takes on
    /// by choice.
    #[serde(default)]
    pub images: bool,
}

/// Which new comments a forum's moderators (those with an e-mail address) are mailed about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModeratorMail {
    /// Every new comment: pending ones with approve and spam links, published ones with spam
    /// and delete links.
    #[default]
    All,
    /// Only comments waiting for a moderator.
    Pending,
    None,
}

/// A comment event a webhook can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEvent {
    #[serde(rename = "comment.created")]
    CommentCreated,
    #[serde(rename = "comment.approved")]
    CommentApproved,
    #[serde(rename = "comment.deleted")]
    CommentDeleted,
}

impl WebhookEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::CommentCreated => "comment.created",
            WebhookEvent::CommentApproved => "comment.approved",
            WebhookEvent::CommentDeleted => "comment.deleted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "comment.created" => Some(Self::CommentCreated),
            "comment.approved" => Some(Self::CommentApproved),
            "comment.deleted" => Some(Self::CommentDeleted),
            _ => None,
        }
    }
}

/// An endpoint that receives a forum's comment events as signed JSON POSTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    /// An absolute http(s) URL.
    pub url: String,
    /// Key of the `X-Confab-Signature` HMAC-SHA256 (16-200 characters). Write-only: answers
    /// show it empty, and an empty one sent for a URL already registered keeps the stored key.
    pub secret: String,
    pub events: Vec<WebhookEvent>,
}

impl ForumSettings {
    pub fn new(title: &str) -> Self {
        ForumSettings {
            title: title.to_string(),
            allowed_origins: Vec::new(),
            moderation: ModerationMode::None,
            guest_posting: true,
            edit_window_secs: 900,
            moderator_mail: ModeratorMail::All,
            webhooks: Vec::new(),
            gravatar: false,
            words: Default::default(),
            max_links: None,
            trust: Default::default(),
            flags_to_hold: None,
            duplicates: Default::default(),
            challenge: Default::default(),
            spam: Default::default(),
            images: false,
        }
    }

    /// Whether a browser `Origin` header value is one of this forum's sites.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|pat| origin_matches(pat, origin))
    }
}

/// Matches an origin against a pattern; the pattern's port may be `*`.
pub fn origin_matches(pattern: &str, origin: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if let Some(prefix) = pattern.strip_suffix(":*") {
        if origin == prefix {
            return true;
        }
        return origin
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    }
    pattern.eq_ignore_ascii_case(origin)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forum {
    pub id: ForumId,
    pub name: String,
    pub shard: LogicalShard,
    pub settings: ForumSettings,
    pub created_at: i64,
    /// The secret the forum's site signs SSO tokens with (`confab_core::sso`); never shown.
    pub sso_secret: Option<crate::sso::SsoSecret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub id: ThreadId,
    pub forum_id: ForumId,
    pub ident: Ident,
    pub url: Option<String>,
    pub title: Option<String>,
    pub closed: bool,
    /// Approved comments.
    pub comment_count: i64,
    /// Pending and spam comments (visible to moderators and their authors).
    pub hidden_count: i64,
    /// Bumped by every change to the thread or its comments: cache version and realtime sequence.
    pub seq: i64,
    pub created_at: i64,
    /// The thread also answers to other idents (its aliases, e.g. an imported thread's link
    /// beside its identifier): a change to it must make the pages cached under those stale too.
    pub aliased: bool,
    /// A top-level comment a moderator pinned: first on the thread's first page.
    pub pinned_id: Option<CommentId>,
    /// Readers' reactions to the page itself (shown above its comments).
    pub reactions: crate::reaction::ReactionCounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CommentStatus {
    Approved,
    Pending,
    Spam,
    Deleted,
}

impl CommentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CommentStatus::Approved => "approved",
            CommentStatus::Pending => "pending",
            CommentStatus::Spam => "spam",
            CommentStatus::Deleted => "deleted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approved" => Some(Self::Approved),
            "pending" => Some(Self::Pending),
            "spam" => Some(Self::Spam),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
    /// Hidden from the public but shown to moderators and the author.
    pub fn is_hidden(self) -> bool {
        matches!(self, CommentStatus::Pending | CommentStatus::Spam)
    }
}

/// Who wrote a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Account(AccountId),
    Guest {
        name: String,
        email: Option<String>,
        url: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: CommentId,
    pub thread_id: ThreadId,
    pub forum_id: ForumId,
    pub parent_id: Option<CommentId>,
    pub depth: i32,
    pub author: Author,
    /// The signed anonymous client id that posted it (guests), to show them their pending comments.
    pub anon_id: Option<String>,
    pub body_md: String,
    pub body_html: String,
    pub status: CommentStatus,
    pub likes: i64,
    pub dislikes: i64,
    /// Visible (approved) direct replies.
    pub reply_count: i64,
    pub flag_count: i64,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub ip_hash: String,
    /// Why admission or readers' flags hid it (`held: word 'x'`, `shadow ban`, ...), for
    /// moderators; none for comments published at once or held before this was kept.
    pub held_reason: Option<String>,
    /// Readers' emoji reactions.
    pub reactions: crate::reaction::ReactionCounts,
    /// A moderator featured it (listed under the thread's "Featured" tab).
    pub featured: bool,
    /// Pictures attached to it, in the order given (kept on the comment row, so a page of
    /// comments brings its pictures with no statement of its own).
    pub images: Vec<crate::media::ImageRef>,
}

impl Comment {
    /// Hidden by a shadow ban on its author: its author sees it as published, nobody else
    /// but moderators sees it.
    pub fn shadowed(&self) -> bool {
        self.status == CommentStatus::Spam
            && self.held_reason.as_deref() == Some(crate::modrules::SHADOW_REASON)
    }
    pub fn account_id(&self) -> Option<AccountId> {
        match self.author {
            Author::Account(a) => Some(a),
            Author::Guest { .. } => None,
        }
    }
    pub fn guest_email(&self) -> Option<&str> {
        match &self.author {
            Author::Guest { email, .. } => email.as_deref(),
            Author::Account(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub username: String,
    pub email: Option<String>,
    pub display_name: String,
    pub is_staff: bool,
    /// Forums this account moderates.
    pub moderates: Vec<ForumId>,
    pub created_at: i64,
    /// Session tokens carry this; moving it ends every session of the account.
    pub session_gen: i64,
    /// Profile URL (SSO accounts: the one their site sent).
    #[serde(default)]
    pub url: Option<String>,
    /// Avatar image URL (SSO accounts: the one their site sent).
    #[serde(default)]
    pub avatar_url: Option<String>,
}

impl Account {
    pub fn can_moderate(&self, forum: ForumId) -> bool {
        self.is_staff || self.moderates.contains(&forum)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BanKind {
    Email,
    /// Stored as the IP's keyed hash, never the raw address.
    Ip,
    Account,
}

impl BanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BanKind::Email => "email",
            BanKind::Ip => "ip",
            BanKind::Account => "account",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            "ip" => Some(Self::Ip),
            "account" => Some(Self::Account),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Ban {
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::id::i64_as_string")]
    pub id: i64,
    pub kind: BanKind,
    pub value: String,
    pub reason: Option<String>,
    /// Unix ms; none means permanent.
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// A shadow ban: the author may still post, but their new comments are hidden from
    /// everyone but themselves and the moderators.
    pub shadow: bool,
    /// The moderator who made it (none for bans made before this was kept).
    pub created_by: Option<AccountId>,
    /// The comment it was made from, if it was.
    pub comment_id: Option<CommentId>,
    /// What it matches, as moderators are shown it (`t***@example.com`, `the address of
    /// comment 123 by Troll`); the value itself is not shown for e-mails and addresses.
    pub shown: Option<String>,
}

/// What the bans of a forum say about someone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanState {
    None,
    /// Refused (a ban that is not a shadow ban wins over a shadow ban): until when (none:
    /// for good) and the reason of the latest such ban.
    Banned {
        until: Option<i64>,
        reason: Option<String>,
    },
    Shadow,
}

impl BanState {
    /// The state from the bans in force that match someone, as `(shadow, expires_at, reason)`
    /// newest first.
    pub fn from_matches(matches: &[(bool, Option<i64>, Option<String>)]) -> BanState {
        let hard: Vec<_> = matches.iter().filter(|m| !m.0).collect();
        if hard.is_empty() {
            return if matches.is_empty() {
                BanState::None
            } else {
                BanState::Shadow
            };
        }
        let until = if hard.iter().any(|m| m.1.is_none()) {
            None
        } else {
            hard.iter().filter_map(|m| m.1).max()
        };
        BanState::Banned {
            until,
            reason: hard.iter().find_map(|m| m.2.clone()),
        }
    }
}

/// The identities a write is checked against for bans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BanSubject {
    pub email: Option<String>,
    pub ip_hash: Option<String>,
    pub account: Option<AccountId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ModLogEntry {
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::id::i64_as_string")]
    pub id: i64,
    pub actor: Option<AccountId>,
    pub action: String,
    pub comment_id: Option<CommentId>,
    pub detail: String,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns() {
        assert!(origin_matches(
            "http://localhost:*",
            "http://localhost:3000"
        ));
        assert!(origin_matches("http://localhost:*", "http://localhost"));
        assert!(!origin_matches(
            "http://localhost:*",
            "http://localhost.evil.com:3000"
        ));
        assert!(!origin_matches("http://localhost:*", "http://localhost:"));
        assert!(origin_matches(
            "https://blog.example.com/",
            "https://blog.example.com"
        ));
        assert!(!origin_matches(
            "https://blog.example.com",
            "https://blog.example.com.evil"
        ));
    }
}

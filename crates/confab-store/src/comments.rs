//! Threads and comments: the pages readers load, posting and editing.

use crate::pin::Written;
use crate::{NewTask, ReadFrom, ReplyWatch, StoreResult};
use async_trait::async_trait;
use confab_core::cursor::{Cursor, Sort};
use confab_core::id::{AccountId, CommentId, ForumId, ThreadId};
use confab_core::ident::Ident;
use confab_core::model::{Author, Comment, CommentStatus, Forum, Thread};
use confab_core::DomainError;

/// Which comments a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Approved comments, and any other that still has visible replies (shown as a placeholder).
    Public,
    /// Public, plus this author's own pending and spam comments.
    Author {
        account: Option<AccountId>,
        anon: Option<String>,
    },
    /// Everything but deleted comments without replies.
    Moderator,
}

/// An `Idempotency-Key` as a post carries it.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// Whose key it is (`a:<account>`, `t:<anonymous token>` or `i:<address hash>`).
    pub scope: String,
    pub key: String,
    /// A keyed hash of the request the key came with.
    pub request_hash: String,
}

impl Idempotency {
    /// A stored key answers only a retry of the same request: another request sent with it is
    /// refused (it must not get the first comment, nor its edit token). Keys stored before
    /// hashes were kept (empty) still replay.
    pub fn check_replay(&self, stored_hash: &str) -> StoreResult<()> {
        if stored_hash.is_empty() || stored_hash == self.request_hash {
            Ok(())
        } else {
            Err(DomainError::new(
                confab_core::ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was already used for a different request; send a new key",
            ))
        }
    }
}

/// A new text for a comment, after admission ran on it again.
#[derive(Debug, Clone)]
pub struct CommentEdit {
    pub body_md: String,
    pub body_html: String,
    pub now: i64,
    /// Admission says the new text waits for a moderator (moderation mode, links, ...).
    pub hold: bool,
    /// A moderator editing someone else's comment: the edit is logged, with the old text.
    pub logged_by: Option<(ForumId, AccountId)>,
    /// Why admission holds the new text (with `hold`), for moderators.
    pub held_reason: Option<String>,
    /// The spam check called the new text spam: a public or held comment becomes spam.
    pub spam: bool,
}

impl CommentEdit {
    /// The status an edit leaves a comment in: an edit can hold a public comment for a
    /// moderator, but never make a held, spam or removed one public.
    pub fn status_after(&self, current: CommentStatus) -> CommentStatus {
        if self.spam && matches!(current, CommentStatus::Approved | CommentStatus::Pending) {
            CommentStatus::Spam
        } else if self.hold && current == CommentStatus::Approved {
            CommentStatus::Pending
        } else {
            current
        }
    }

    /// The held reason after the edit: the new one when the edit holds the comment, else the
    /// one it had.
    pub fn reason_after(&self, old: &Comment) -> Option<String> {
        if (self.hold || self.spam) && self.status_after(old.status) != old.status {
            self.held_reason.clone().or_else(|| old.held_reason.clone())
        } else if self.hold && self.status_after(old.status) != CommentStatus::Approved {
            self.held_reason.clone().or_else(|| old.held_reason.clone())
        } else {
            old.held_reason.clone()
        }
    }
}

/// Whose approved comments a forum counts for its new-commenter rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorKey {
    Account(AccountId),
    /// A guest, by the e-mail address they gave (compared without case).
    GuestEmail(String),
}

/// A comment to insert. The service has validated and rendered it.
#[derive(Debug, Clone)]
pub struct NewComment {
    pub forum: std::sync::Arc<Forum>,
    pub ident: Ident,
    pub url: Option<String>,
    pub title: Option<String>,
    pub parent_id: Option<CommentId>,
    pub author: Author,
    pub anon_id: Option<String>,
    pub body_md: String,
    pub body_html: String,
    pub status: CommentStatus,
    /// Why admission hid it (see `Comment::held_reason`).
    pub held_reason: Option<String>,
    pub ip_hash: String,
    pub created_at: i64,
    /// A retried request with the same scope and key returns the first comment.
    pub idempotency: Option<Idempotency>,
    /// Replies deeper than this attach to the deepest allowed ancestor.
    pub max_depth: i32,
    /// Written with the comment, in its transaction; each payload gets the new comment's id as
    /// `"comment_id"` (a decimal string). A replayed request (same idempotency key) adds none.
    pub tasks: Vec<NewTask>,
    /// The author asked to be mailed replies: recorded with the comment, and the address's
    /// subscription to the forum's reply mail becomes pending unless it is confirmed.
    pub notify: Option<ReplyWatch>,
    /// The request it came with, for the forum's spam check (`crate::spam`).
    pub spam_facts: Option<crate::SpamFacts>,
    /// Uploaded pictures to attach (the service read them: this forum's, not yet attached).
    /// The insert attaches each only if it is still unattached, or the post fails.
    pub images: Vec<confab_core::media::ImageRef>,
}

impl NewComment {
    /// The comment as inserted: `id` in `thread`, under `parent` at `depth`, no votes yet.
    pub(crate) fn inserted(
        &self,
        id: CommentId,
        thread_id: ThreadId,
        parent_id: Option<CommentId>,
        depth: i32,
    ) -> Comment {
        Comment {
            id,
            thread_id,
            forum_id: self.forum.id,
            parent_id,
            depth,
            author: self.author.clone(),
            anon_id: self.anon_id.clone(),
            body_md: self.body_md.clone(),
            body_html: self.body_html.clone(),
            status: self.status,
            likes: 0,
            dislikes: 0,
            reply_count: 0,
            flag_count: 0,
            created_at: self.created_at,
            edited_at: None,
            ip_hash: self.ip_hash.clone(),
            held_reason: self.held_reason.clone(),
            reactions: Default::default(),
            featured: false,
            images: self.images.clone(),
        }
    }
}

/// The result of posting.
#[derive(Debug, Clone)]
pub struct Posted {
    pub comment: Comment,
    pub thread: Thread,
    /// True when an earlier request with the same idempotency key created the comment.
    pub replayed: bool,
}

/// Changes to a thread's own fields.
#[derive(Debug, Clone, Default)]
pub struct ThreadPatch {
    pub closed: Option<bool>,
    pub title: Option<String>,
    /// `Some(None)` unpins; the service has checked a comment is a visible top-level one of
    /// this thread.
    pub pinned: Option<Option<CommentId>>,
}

/// Threads and their comments (shard data: addressed by forum, thread id or comment id).
#[async_trait]
pub trait CommentStore: Send + Sync {
    async fn thread_by_ident(
        &self,
        forum: &Forum,
        ident: &Ident,
        from: ReadFrom,
    ) -> StoreResult<Option<Thread>>;

    async fn thread(&self, id: ThreadId, from: ReadFrom) -> StoreResult<Option<Thread>>;

    /// Approved-comment counts for many idents of one forum, in one query.
    async fn counts(&self, forum: &Forum, idents: &[Ident]) -> StoreResult<Vec<(Ident, i64)>>;

    async fn update_thread(
        &self,
        forum: &Forum,
        id: ThreadId,
        patch: ThreadPatch,
        actor: Option<AccountId>,
    ) -> StoreResult<Written<Thread>>;

    /// Up to `limit` top-level comments after `cursor`, in `sort` order; and with `pinned`,
    /// that comment too when it is a top-level comment of the thread (whatever its status: the
    /// caller decides whether the reader sees it), read by the same statement, so a page with a
    /// pinned comment costs what a page without one does.
    #[allow(clippy::too_many_arguments)]
    async fn top_level(
        &self,
        thread: &Thread,
        vis: &Visibility,
        sort: Sort,
        cursor: Option<Cursor>,
        limit: usize,
        pinned: Option<CommentId>,
        from: ReadFrom,
    ) -> StoreResult<(Vec<Comment>, Option<Comment>)>;

    /// For each parent, its first `per_parent` visible replies with id above `after`, oldest
    /// first, in one query.
    async fn replies(
        &self,
        thread: &Thread,
        parents: &[CommentId],
        vis: &Visibility,
        after: Option<CommentId>,
        per_parent: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<Comment>>;

    async fn comment(&self, id: CommentId, from: ReadFrom) -> StoreResult<Option<Comment>>;

    /// This author's pending/spam comments in a thread exist (cheap: a partial index).
    async fn has_hidden_by(&self, thread: &Thread, vis: &Visibility) -> StoreResult<bool>;

    async fn post_comment(&self, new: NewComment) -> StoreResult<Written<Posted>>;

    /// Replaces a comment's text (and holds it, see [`CommentEdit`]) in one transaction.
    /// Returns the comment and the thread sequence number the edit was given.
    async fn edit_comment(
        &self,
        id: CommentId,
        edit: &CommentEdit,
    ) -> StoreResult<Written<(Comment, i64)>>;

    /// How many of `author`'s comments in `forum` are approved, counting up to `limit`.
    async fn approved_by(&self, forum: &Forum, author: &AuthorKey, limit: u32) -> StoreResult<u32>;
    /// The texts (markdown) of up to `limit` comments of `forum` created at or after `since`
    /// by `account` (if given) or from the address `ip_hash`, newest first.
    async fn recent_texts(
        &self,
        forum: &Forum,
        account: Option<AccountId>,
        ip_hash: &str,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<String>>;
    /// Forgets idempotency keys older than `before` (retries come within minutes, not days).
    async fn prune_idempotency(&self, before: i64) -> StoreResult<u64>;
}

//! A reader's own data (their export and erasure, GDPR articles 15, 17 and 20): what an account
//! or a guest's address left on one forum, read in keyset pages from the forum's shard, and
//! erased there a bounded batch per transaction; the account's tombstone on the control side;
//! and the single-use record of mailed data links. The service walks every forum and pages
//! through (`confab-server/src/service/gdpr.rs`); storage only reads and writes what it is told.

use crate::pin::Written;
use crate::StoreResult;
use async_trait::async_trait;
use confab_core::id::{AccountId, CommentId};
use confab_core::model::{Comment, CommentStatus, Forum};

/// The name an erased author's comments show (their name, address, site and IP are gone).
pub const ERASED_AUTHOR: &str = "deleted user";

/// Most rows one page or one erasing transaction takes.
pub const GDPR_PAGE_MAX: usize = 500;

/// Whose comments: an account's, or a guest's (by the address they commented with, compared
/// as [`crate::rules::email_key`] does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Account(AccountId),
    GuestEmail(String),
}

/// What erasing does to a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erase {
    /// The text stays, the author becomes [`ERASED_AUTHOR`]: name, address, site, account,
    /// anonymous-client id and IP hash are cleared.
    Anonymize,
    /// Also deleted (status `deleted`, text cleared): a placeholder where others replied, as a
    /// deletion leaves.
    Remove,
}

/// A vote or flag a voter left on a comment of the forum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnMark {
    pub comment: CommentId,
    /// The vote's value (1 or -1), or 0 for a flag.
    pub value: i64,
    /// The flag's reason (empty for a vote).
    pub reason: String,
    pub created_at: i64,
}

/// One erased comment, as it is now.
#[derive(Debug, Clone)]
pub struct ErasedComment {
    pub comment: Comment,
    pub old: CommentStatus,
    /// The thread's sequence number this change was given.
    pub thread_seq: i64,
}

/// See the module documentation.
#[async_trait]
pub trait GdprStore: Send + Sync {
    /// The owner's comments on `forum` (any status), by id after `after`, at most `limit`
    /// (capped at [`GDPR_PAGE_MAX`]); read from the primary.
    async fn owned_comments(
        &self,
        forum: &Forum,
        owner: &Owner,
        after: Option<CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<Comment>>;

    /// The votes (`flags` false) or flags (`flags` true) `voter` (`a:<account>`) left on
    /// `forum`'s comments, by comment id after `after`, at most `limit`.
    async fn owned_marks(
        &self,
        forum: &Forum,
        voter: &str,
        flags: bool,
        after: Option<CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<OwnMark>>;

    /// Erases comments of `forum` in one transaction on its shard: each is anonymized or
    /// removed as `how` says (counters move as a deletion moves them), its reply-mail request
    /// is dropped, and the moderation log says `erase` (no text, no name). Comments already
    /// erased are left alone. At most [`GDPR_PAGE_MAX`] ids.
    async fn erase_comments(
        &self,
        forum: &Forum,
        ids: &[CommentId],
        how: Erase,
        actor: Option<AccountId>,
    ) -> StoreResult<Written<Vec<ErasedComment>>>;

    /// Drops the address's reply-mail subscription on `forum`; whether there was one.
    async fn erase_subscription(&self, forum: &Forum, email: &str) -> StoreResult<bool>;

    /// Turns an account into a tombstone: username `deleted~<id>`, display name
    /// [`ERASED_AUTHOR`], no e-mail (so it can sign up again), password, URL or avatar, no
    /// roles, sessions ended. The row stays so its id is never given to another account (the
    /// votes it left keep pointing at nobody). Whether the account existed.
    async fn erase_account(&self, account: AccountId) -> StoreResult<bool>;

    /// Records the use of a single-use link `key` (kept until `expires_at`, then pruned);
    /// false when it was used before.
    async fn use_link(&self, key: &str, now: i64, expires_at: i64) -> StoreResult<bool>;
}

/// A page size within bounds.
pub fn gdpr_limit(limit: usize) -> usize {
    limit.clamp(1, GDPR_PAGE_MAX)
}

/// The tombstone username of an erased account (`~` is outside every name a sign-up takes).
pub fn erased_username(account: AccountId) -> String {
    format!("deleted~{}", account.0)
}

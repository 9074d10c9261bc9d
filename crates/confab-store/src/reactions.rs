//! Readers' emoji reactions (on comments and on whole threads) and moderators' featured
//! comments (shard data: addressed by comment or thread id).
//!
//! Designed like votes: the counts live on the comment's or thread's row (`reactions`, a JSON
//! object changed with `n = n + d` inside the statement, never read-modify-write in the
//! application), so the page read that brings the row brings them; a reader's own reactions are
//! per-reader rows, read separately ([`ReactionStore::reactions_of`]) so the cached page stays
//! shared.

use crate::pin::Written;
use crate::{StatusChange, StoreResult};
use async_trait::async_trait;
use confab_core::id::{AccountId, CommentId, ThreadId};
use confab_core::reaction::{Reaction, ReactionCounts};

/// A comment's or thread's reactions after one reader's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reacted {
    pub counts: ReactionCounts,
    /// The reader's reactions on it now.
    pub mine: Vec<Reaction>,
    pub thread_id: ThreadId,
    /// The thread's sequence number after the change, if it changed anything.
    pub thread_seq: Option<i64>,
}

/// Readers' reactions and moderators' featured comments.
#[async_trait]
pub trait ReactionStore: Send + Sync {
    /// Sets (`on`) or clears `reactor`'s `reaction` on an approved comment; setting it twice or
    /// clearing one not set changes nothing (one per reader per reaction).
    async fn react_comment(
        &self,
        id: CommentId,
        reactor: &str,
        reaction: Reaction,
        on: bool,
    ) -> StoreResult<Written<Reacted>>;

    /// The same on a thread itself (the page's reactions, shown above its comments).
    async fn react_thread(
        &self,
        id: ThreadId,
        reactor: &str,
        reaction: Reaction,
        on: bool,
    ) -> StoreResult<Written<Reacted>>;

    /// `reactor`'s reactions on those of `targets` (comment or thread ids) it reacted to.
    /// Reads replicas, honouring the caller's read pin.
    async fn reactions_of(
        &self,
        reactor: &str,
        targets: &[i64],
    ) -> StoreResult<Vec<(i64, Reaction)>>;

    /// Features (`on`) or unfeatures an approved comment, logged as `feature` / `unfeature`
    /// by `actor`. The change's `thread_seq` is `None` when it was already so.
    async fn feature(
        &self,
        id: CommentId,
        actor: AccountId,
        on: bool,
    ) -> StoreResult<Written<StatusChange>>;
}

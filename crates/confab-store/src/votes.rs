//! Votes and flags on comments.

use crate::pin::Written;
use crate::{StatusChange, StoreResult};
use async_trait::async_trait;
use confab_core::id::{CommentId, ThreadId};

/// Vote counts after a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteCounts {
    pub likes: i64,
    pub dislikes: i64,
    /// The voter's current vote: -1, 0 or 1.
    pub mine: i64,
    pub thread_id: ThreadId,
    /// The thread's sequence number after this vote, if the vote changed anything.
    pub thread_seq: Option<i64>,
}

/// A flag's effect.
#[derive(Debug, Clone)]
pub struct Flagged {
    /// The comment's flags (distinct flaggers).
    pub count: i64,
    pub thread_id: ThreadId,
    /// Set when the flag held the comment for a moderator.
    pub held: Option<StatusChange>,
}

/// Readers' votes and flags (shard data: addressed by comment id).
#[async_trait]
pub trait VoteStore: Send + Sync {
    /// Records `value` (-1, 0, 1) as `voter`'s vote; repeated votes never double count.
    async fn vote(
        &self,
        id: CommentId,
        voter: &str,
        value: i64,
    ) -> StoreResult<Written<VoteCounts>>;

    /// `voter`'s votes (1 or -1) on those of `ids` it voted on; comments it didn't vote on are
    /// left out. Reads replicas, honouring the caller's read pin.
    async fn votes_of(&self, voter: &str, ids: &[CommentId]) -> StoreResult<Vec<(CommentId, i64)>>;

    /// Flags a comment once per flagger. With `hold_at`, a published comment that now has that
    /// many flags (distinct flaggers) goes to `pending`, in the same transaction, with
    /// [`confab_core::modrules::flagged_reason`] as its held reason and a `hold` log entry.
    async fn flag(
        &self,
        id: CommentId,
        flagger: &str,
        reason: &str,
        hold_at: Option<u32>,
    ) -> StoreResult<Written<Flagged>>;
}

//! Votes and flags on comments.

use crate::pin::Written;
use crate::StoreResult;
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

    /// Flags a comment once per flagger; returns the flag count.
    async fn flag(
        &self,
        id: CommentId,
        flagger: &str,
        reason: &str,
    ) -> StoreResult<Written<(i64, ThreadId)>>;
}

//! What a moderator needs beside a queue's comments: their threads, why readers flagged them,
//! their authors' history, and how many comments each queue holds. Each is one query for a
//! whole page (a forum's comments live on one shard), never one per comment.

use crate::StoreResult;
use async_trait::async_trait;
use confab_core::id::{AccountId, CommentId, ThreadId};
use confab_core::model::{Forum, Thread};

/// Most comments a queue count counts: past it the dashboard says "1000+".
pub const MOD_COUNT_CAP: i64 = 1000;

/// An author's comments on a forum, by status, and when they first commented there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthorHistory {
    pub approved: i64,
    pub pending: i64,
    pub spam: i64,
    pub deleted: i64,
    /// Unix ms of their first comment.
    pub first_seen: i64,
}

/// How many comments wait in each queue (each at most [`MOD_COUNT_CAP`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub pending: i64,
    pub flagged: i64,
    pub spam: i64,
}

/// Authors' histories: accounts by id, guests by e-mail (lower-cased).
#[derive(Debug, Clone, Default)]
pub struct Histories {
    pub accounts: Vec<(AccountId, AuthorHistory)>,
    pub emails: Vec<(String, AuthorHistory)>,
}

#[async_trait]
pub trait ModContextStore: Send + Sync {
    /// Threads of the forum by id (those that exist).
    async fn threads_by_ids(&self, forum: &Forum, ids: &[ThreadId]) -> StoreResult<Vec<Thread>>;
    /// Readers' flags on comments of the forum: `(comment, reason, how many)`.
    async fn flag_reasons(
        &self,
        forum: &Forum,
        ids: &[CommentId],
    ) -> StoreResult<Vec<(CommentId, String, i64)>>;
    /// The histories of accounts and guests (by e-mail, compared without case) on the forum.
    async fn author_histories(
        &self,
        forum: &Forum,
        accounts: &[AccountId],
        emails: &[String],
    ) -> StoreResult<Histories>;
    /// The threads of comments of the forum (those that exist), for the moderation log.
    async fn comment_threads(
        &self,
        forum: &Forum,
        ids: &[CommentId],
    ) -> StoreResult<Vec<(CommentId, ThreadId)>>;
    /// The pending, flagged and spam queues' sizes.
    async fn queue_counts(&self, forum: &Forum) -> StoreResult<QueueCounts>;
}

/// Folds `(key, status, count, first_seen)` rows into histories.
pub(crate) fn fold_histories<K: PartialEq + Clone>(
    rows: impl IntoIterator<Item = (K, String, i64, i64)>,
) -> Vec<(K, AuthorHistory)> {
    let mut out: Vec<(K, AuthorHistory)> = Vec::new();
    for (k, status, n, first) in rows {
        let i = match out.iter().position(|(o, _)| *o == k) {
            Some(i) => i,
            None => {
                out.push((
                    k.clone(),
                    AuthorHistory {
                        first_seen: first,
                        ..AuthorHistory::default()
                    },
                ));
                out.len() - 1
            }
        };
        let h = &mut out[i].1;
        h.first_seen = h.first_seen.min(first);
        match status.as_str() {
            "approved" => h.approved += n,
            "pending" => h.pending += n,
            "spam" => h.spam += n,
            "deleted" => h.deleted += n,
            _ => {}
        }
    }
    out
}

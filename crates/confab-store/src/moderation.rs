//! Moderation: status changes with their counters and log, the queues, statistics.

use crate::pin::Written;
use crate::{NewTask, StoreResult};
use async_trait::async_trait;
use confab_core::id::{AccountId, CommentId};
use confab_core::model::{Comment, CommentStatus, Forum, ModLogEntry};

/// A moderation queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Status(CommentStatus),
    Flagged,
    All,
}

/// A filter for a moderator's listing of a forum's comments, newest first.
#[derive(Debug, Clone)]
pub struct ModQuery {
    pub queue: Queue,
    /// Case-insensitive substring of the body, author name, e-mail or IP hash.
    pub search: Option<String>,
    /// Only comments with id below this (keyset paging).
    pub before: Option<CommentId>,
    pub limit: usize,
}

/// A moderation action's effect on one comment.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub comment: Comment,
    pub old: CommentStatus,
    /// The thread's sequence number this change was given (none when only flags were dismissed).
    pub thread_seq: Option<i64>,
}

/// What moderators read and change (shard data: addressed by forum or comment id).
#[async_trait]
pub trait ModerationStore: Send + Sync {
    /// Sets the status of comments of one forum, adjusting counters and writing the moderation
    /// log. `tasks` are written in the same transaction, each as its [`TaskWhen`] says.
    async fn set_status(
        &self,
        forum: &Forum,
        ids: &[CommentId],
        status: CommentStatus,
        actor: Option<AccountId>,
        action: &str,
        tasks: Vec<NewTask>,
    ) -> StoreResult<Written<Vec<StatusChange>>>;

    async fn moderation_list(&self, forum: &Forum, q: &ModQuery) -> StoreResult<Vec<Comment>>;

    async fn mod_log(
        &self,
        forum: &Forum,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<ModLogEntry>>;

    /// Comments created per UTC day for the last `days` days: `(day_start_ms, count)`.
    async fn daily_counts(
        &self,
        forum: &Forum,
        days: u32,
        now: i64,
    ) -> StoreResult<Vec<(i64, i64)>>;
}

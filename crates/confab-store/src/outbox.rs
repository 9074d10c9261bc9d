//! The outbox's records: tasks to write with a change, tasks as stored, and reply-mail
//! subscriptions.

use crate::StoreResult;
use async_trait::async_trait;
use confab_core::id::{CommentId, ForumId};
use confab_core::model::CommentStatus;
use confab_core::model::Forum;

/// Largest serialized task payload. Payloads name what to act on (ids, a URL, an address);
/// handlers load the rest when they run.
pub const MAX_TASK_PAYLOAD: usize = 16 * 1024;

/// When a task given to [`crate::ModerationStore::set_status`] is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskWhen {
    Always,
    /// Only if this comment's status changed in the call.
    Changed(CommentId),
    /// Only if this comment's status changed from this one.
    ChangedFrom(CommentId, CommentStatus),
}

/// A task to write in the same transaction as the change that causes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// The handler that runs it, e.g. `webhook` or `mail.reply`.
    pub kind: String,
    /// A JSON object (see [`MAX_TASK_PAYLOAD`]).
    pub payload: serde_json::Value,
    /// Run no earlier than this many milliseconds after the commit.
    pub delay_ms: i64,
    pub when: TaskWhen,
}

impl NewTask {
    pub fn new(kind: &str, payload: serde_json::Value) -> NewTask {
        NewTask {
            kind: kind.to_string(),
            payload,
            delay_ms: 0,
            when: TaskWhen::Always,
        }
    }
    pub fn when(mut self, when: TaskWhen) -> NewTask {
        self.when = when;
        self
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Waiting for its `run_at`.
    Queued,
    /// Claimed by a worker until `locked_until`; after that any worker may claim it again.
    Running,
    Done,
    /// Failed `max_attempts` times, or failed in a way retrying cannot fix; waits for an
    /// operator (`confab tasks retry ID`).
    Parked,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Parked => "parked",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "parked" => Some(Self::Parked),
            _ => None,
        }
    }
}

/// A task as stored. A claimed task's `attempts` identifies the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// A sharded id (carries the logical shard of the forum whose change caused it).
    pub id: i64,
    pub shard: u16,
    pub kind: String,
    /// The JSON payload as written (the handler parses it; a bad one parks the task).
    pub payload: String,
    pub state: TaskState,
    pub run_at: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Task {
    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null)
    }
}

/// Most queued tasks [`OutboxStore::task_queue`] counts on one server: past it the count stops
/// (so the sample stays cheap however long the queue grows) and shows this.
pub const QUEUE_COUNT_CAP: u64 = 100_000;

/// One server's task queue, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    /// The shard server's name (`embedded` for the one SQLite file).
    pub shard: String,
    /// Queued tasks, due or not (at most [`QUEUE_COUNT_CAP`]).
    pub queued: u64,
    /// The earliest `run_at` of a queued task that is due (its wait is `now - run_at`).
    pub oldest_due: Option<i64>,
}

/// An address's subscription to a forum's reply mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// Asked for; a confirmation mail with a signed link is (or was) on its way.
    Pending,
    /// The link was followed: replies are mailed.
    Confirmed,
    /// One-click unsubscribed: nothing is mailed until a new request is confirmed.
    Unsubscribed,
}

impl SubState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubState::Pending => "pending",
            SubState::Confirmed => "confirmed",
            SubState::Unsubscribed => "unsubscribed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "confirmed" => Some(Self::Confirmed),
            "unsubscribed" => Some(Self::Unsubscribed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub state: SubState,
    /// Who confirmed it (`a:<account>` or `t:<anonymous token>`; empty for subscriptions from
    /// before owners were kept): only that caller's comments are mailed their replies.
    pub owner: String,
    /// When the last confirmation request was mailed.
    pub confirm_sent_at: Option<i64>,
    pub updated_at: i64,
}

/// A reply-mail request: the address replies go to, and who asked (see [`Subscription::owner`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyWatch {
    pub email: String,
    pub owner: String,
}

/// The task outbox (a task lives on the shard of the change that caused it) and the
/// subscriptions reply mail is sent by. Addresses given here were parsed by
/// `confab_core::input::Email` and are not checked again; they compare by
/// [`crate::rules::email_key`].
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Writes a task that belongs to no comment (account mail), on logical shard `shard`.
    async fn enqueue_task(
        &self,
        shard: confab_core::id::LogicalShard,
        task: NewTask,
    ) -> StoreResult<()>;

    /// Claims up to `limit` due tasks of `kinds`, oldest due first: queued tasks whose `run_at`
    /// has come, and running tasks whose lease ran out (their worker died or stalled). Each moves
    /// to running with `attempts + 1` and `locked_until = now + lease_ms`. A task whose lease ran
    /// out after `max_attempts` attempts is parked instead of claimed.
    async fn claim_tasks(
        &self,
        kinds: &[String],
        limit: usize,
        lease_ms: i64,
        max_attempts: i64,
    ) -> StoreResult<Vec<Task>>;

    /// When the next task of `kinds` falls due (a queued task's `run_at` or a running task's
    /// lease end), if any. A cheap read, so idle workers need not take the write lock.
    async fn next_task_due(&self, kinds: &[String]) -> StoreResult<Option<i64>>;

    /// Each server's queue: queued tasks (counted up to [`QUEUE_COUNT_CAP`]) and the oldest
    /// due one, on its primary. A server that has not answered within `timeout` is left out (a
    /// slow shard must not stall a scrape); servers are asked concurrently.
    async fn task_queue(&self, now: i64, timeout: std::time::Duration) -> Vec<QueueDepth>;

    /// Marks a claimed task done. `attempt` is the claim's `attempts`; false (and no change)
    /// when the task is no longer held by that claim.
    async fn complete_task(&self, id: i64, attempt: i64) -> StoreResult<bool>;

    /// Records a failed attempt: queued again to run at `retry_at`, or parked when `None`.
    /// False (and no change) when the task is no longer held by that claim.
    async fn fail_task(
        &self,
        id: i64,
        attempt: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> StoreResult<bool>;

    async fn task(&self, id: i64) -> StoreResult<Option<Task>>;

    /// Tasks newest first, optionally in one state, with id below `before` (keyset paging).
    async fn list_tasks(
        &self,
        state: Option<TaskState>,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<Task>>;

    /// Queues a parked task again, to run now with its attempts reset. False if it is not parked.
    async fn retry_task(&self, id: i64) -> StoreResult<bool>;

    /// Deletes up to `limit` done tasks (and their effects) last changed before `before`.
    async fn prune_tasks(&self, before: i64, limit: usize) -> StoreResult<u64>;

    /// The effects a task recorded (its handler's keys, e.g. one per mail recipient).
    async fn task_effects(&self, id: i64) -> StoreResult<Vec<String>>;

    /// Records that a task's effect `key` happened, so a re-run of the task skips it.
    async fn record_task_effect(&self, id: i64, key: &str) -> StoreResult<()>;

    /// An address's subscription to a forum's reply mail.
    async fn subscription(&self, forum: ForumId, email: &str) -> StoreResult<Option<Subscription>>;

    /// Sets (creating if needed) an address's subscription state, and its owner when given.
    async fn set_subscription(
        &self,
        forum: &Forum,
        email: &str,
        state: SubState,
        owner: Option<&str>,
    ) -> StoreResult<()>;

    /// Takes the right to mail `owner` a confirmation request for an address (unless the
    /// address is already confirmed for that owner): true when none was sent in the last
    /// `min_interval_ms`, or when task `task` took it before (a re-run).
    async fn claim_confirmation(
        &self,
        forum: ForumId,
        email: &str,
        owner: &str,
        task: i64,
        min_interval_ms: i64,
    ) -> StoreResult<bool>;

    /// Who asked to be mailed replies to this comment, and where, if anyone.
    async fn reply_watcher(&self, comment: CommentId) -> StoreResult<Option<ReplyWatch>>;
}

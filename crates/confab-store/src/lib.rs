//! Confab storage: the traits every service calls, and the embedded SQLite backend.
//!
//! Layout:
//! - [`Store`]: the one storage trait. Every operation is addressed by forum or by id, never
//!   by "the database", so a sharded backend can route each call (ids carry their logical
//!   shard). Reads say where they may be served from ([`ReadFrom`]); writes always go to the
//!   primary of the shard that owns the row.
//! - [`sqlite`]: the embedded backend. One file in WAL mode, a pool of reader connections and a
//!   single writer thread that commits in groups (one fsync for many acknowledged writes).
//!
//! Counters (comment counts, replies, votes, flags) change with `SET n = n + ?` in the same
//! transaction as the row that caused them. Reading a page of a thread costs a fixed number of
//! statements whatever the thread's size; [`Store::query_count`] lets tests prove it.
//!
//! Tasks are a transactional outbox: [`NewComment::tasks`] and the tasks
//! given to [`Store::set_status`] are written in the same transaction as the change that causes
//! them, so a task exists exactly when its change committed. Workers claim due tasks with a
//! lease ([`Store::claim_tasks`]); a claim is identified by its attempt number, so a worker whose
//! lease ran out (it died, or stalled) can no longer complete or fail the task another worker
//! now holds. Embedded SQLite claims through its single writer (one claimer per file); the
//! sharded PostgreSQL backend claims per shard database with
//!
//! ```sql
//! WITH due AS (
//!   SELECT id FROM tasks WHERE kind = ANY($1) AND ((state = 'queued' AND run_at <= $now)
//!      OR (state = 'running' AND locked_until <= $now))
//!   ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED)
//! UPDATE tasks t SET state = 'running', attempts = t.attempts + 1, locked_until = $now + $lease
//! FROM due WHERE t.id = due.id RETURNING t.*
//! ```
//!
//! so many workers share a shard without blocking each other, visiting shards in turn.

use async_trait::async_trait;
use confab_core::cursor::{Cursor, Sort};
use confab_core::id::{AccountId, CommentId, ForumId, ThreadId};
use confab_core::ident::Ident;
use confab_core::model::{
    Account, Author, Ban, BanKind, BanSubject, Comment, CommentStatus, Forum, ForumSettings,
    ModLogEntry, Thread,
};
use confab_core::DomainError;
pub use tasks::{
    NewTask, ReplyWatch, SubState, Subscription, Task, TaskState, TaskWhen, MAX_TASK_PAYLOAD,
};

pub mod pg;
pub mod pin;
pub mod sqlite;
mod tasks;
pub use pin::{ReadPin, WritePos};

tokio::task_local! {
    static QUERY_SCOPE: std::sync::Arc<std::sync::atomic::AtomicU64>;
}

/// Runs `f` and counts the statements the store executes on its behalf (in this task).
pub async fn count_queries<F: std::future::Future>(f: F) -> (F::Output, u64) {
    let c = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let out = QUERY_SCOPE.scope(c.clone(), f).await;
    (out, c.load(std::sync::atomic::Ordering::Relaxed))
}

/// Counts statements: into a store's total, and into the caller's query scope if it runs inside
/// [`count_queries`] (per-request records; tests that prove a page read costs the same for any
/// thread size).
pub struct Counter {
    total: std::sync::Arc<std::sync::atomic::AtomicU64>,
    scope: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl Counter {
    /// A counter adding to `total`, and to the current task's query scope if there is one.
    pub(crate) fn new(total: &std::sync::Arc<std::sync::atomic::AtomicU64>) -> Counter {
        Counter {
            total: total.clone(),
            scope: QUERY_SCOPE.try_with(|c| c.clone()).ok(),
        }
    }
    pub fn add(&self, n: u64) {
        use std::sync::atomic::Ordering;
        self.total.fetch_add(n, Ordering::Relaxed);
        if let Some(s) = &self.scope {
            s.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Storage operations return domain errors; internal causes are logged where they happen.
pub type StoreResult<T> = Result<T, DomainError>;

/// Where a read may be served from. Embedded SQLite has one copy and ignores it; a replicated
/// backend reads replicas for `Replica` and the shard primary for `Primary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Replica,
    Primary,
}

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
}

impl CommentEdit {
    /// The status an edit leaves a comment in: an edit can hold a public comment for a
    /// moderator, but never make a held, spam or removed one public.
    pub fn status_after(&self, current: CommentStatus) -> CommentStatus {
        if self.hold && current == CommentStatus::Approved {
            CommentStatus::Pending
        } else {
            current
        }
    }
}

/// A comment to insert. The service has validated and rendered it.
#[derive(Debug, Clone)]
pub struct NewComment {
    pub forum: Forum,
    pub ident: Ident,
    pub url: Option<String>,
    pub title: Option<String>,
    pub parent_id: Option<CommentId>,
    pub author: Author,
    pub anon_id: Option<String>,
    pub body_md: String,
    pub body_html: String,
    pub status: CommentStatus,
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
        }
    }
}

/// A `LIKE` pattern matching `s` anywhere (`%`, `_` and `\` escaped; use `ESCAPE '\'`).
pub(crate) fn like_pattern(s: &str) -> String {
    let mut out = String::from("%");
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The result of posting.
#[derive(Debug, Clone)]
pub struct Posted {
    pub comment: Comment,
    pub thread: Thread,
    /// True when an earlier request with the same idempotency key created the comment.
    pub replayed: bool,
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub email: Option<String>,
    pub display_name: String,
    pub password_hash: String,
    pub is_staff: bool,
}

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

/// Changes to a thread's own fields.
#[derive(Debug, Clone, Default)]
pub struct ThreadPatch {
    pub closed: Option<bool>,
    pub title: Option<String>,
}

/// The storage contract. See the crate docs for the rules every backend keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- control data: forums, accounts, bans (small and global) ----
    async fn create_forum(&self, name: &str, settings: &ForumSettings) -> StoreResult<Forum>;
    /// Every forum; services keep them in memory and refresh on change.
    async fn forums(&self) -> StoreResult<Vec<Forum>>;
    async fn update_forum(&self, id: ForumId, settings: &ForumSettings) -> StoreResult<Forum>;

    async fn create_account(&self, new: NewAccount) -> StoreResult<Account>;
    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    /// Many accounts in one query (application-level join for a page's authors).
    async fn accounts(&self, ids: &[AccountId]) -> StoreResult<Vec<Account>>;
    /// An account and its password hash, by username or e-mail.
    async fn credentials(&self, login: &str) -> StoreResult<Option<(Account, String)>>;
    async fn set_moderator(&self, account: AccountId, forum: ForumId, on: bool) -> StoreResult<()>;
    /// Ends every session of an account (moves its session generation).
    async fn end_sessions(&self, account: AccountId) -> StoreResult<()>;
    /// Gives an account an e-mail address (its owner confirmed it); `Conflict` when another
    /// account holds it.
    async fn set_account_email(&self, account: AccountId, email: &str) -> StoreResult<()>;
    /// Writes a task that belongs to no comment (account mail), on logical shard `shard`.
    async fn enqueue_task(
        &self,
        shard: confab_core::id::LogicalShard,
        task: NewTask,
    ) -> StoreResult<()>;

    async fn add_ban(
        &self,
        forum: ForumId,
        kind: BanKind,
        value: &str,
        reason: Option<&str>,
        expires_at: Option<i64>,
        actor: Option<AccountId>,
    ) -> StoreResult<Ban>;
    async fn remove_ban(
        &self,
        forum: ForumId,
        ban: i64,
        actor: Option<AccountId>,
    ) -> StoreResult<bool>;
    async fn bans(&self, forum: ForumId) -> StoreResult<Vec<Ban>>;
    async fn is_banned(&self, forum: ForumId, who: &BanSubject, now: i64) -> StoreResult<bool>;

    // ---- shard data: threads and comments ----
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
    ) -> StoreResult<Thread>;

    /// Up to `limit` top-level comments after `cursor`, in `sort` order.
    async fn top_level(
        &self,
        thread: &Thread,
        vis: &Visibility,
        sort: Sort,
        cursor: Option<Cursor>,
        limit: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<Comment>>;
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

    async fn post_comment(&self, new: NewComment) -> StoreResult<Posted>;
    /// Replaces a comment's text (and holds it, see [`CommentEdit`]) in one transaction.
    /// Returns the comment and the thread sequence number the edit was given.
    async fn edit_comment(&self, id: CommentId, edit: &CommentEdit) -> StoreResult<(Comment, i64)>;
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
    ) -> StoreResult<Vec<StatusChange>>;
    /// Records `value` (-1, 0, 1) as `voter`'s vote; repeated votes never double count.
    async fn vote(&self, id: CommentId, voter: &str, value: i64) -> StoreResult<VoteCounts>;
    /// `voter`'s votes (1 or -1) on those of `ids` it voted on; comments it didn't vote on are
    /// left out. Reads replicas, honouring the caller's read pin.
    async fn votes_of(&self, voter: &str, ids: &[CommentId]) -> StoreResult<Vec<(CommentId, i64)>>;
    /// Flags a comment once per flagger; returns the flag count.
    async fn flag(
        &self,
        id: CommentId,
        flagger: &str,
        reason: &str,
    ) -> StoreResult<(i64, ThreadId)>;

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

    /// Forgets idempotency keys older than `before` (retries come within minutes, not days).
    async fn prune_idempotency(&self, before: i64) -> StoreResult<u64>;

    // ---- tasks: the outbox (shard data: a task lives with the forum whose change caused it) ----
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

    // ---- reply notifications (double opt-in) ----
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
    /// The accounts that moderate a forum (not staff at large), by id.
    async fn forum_moderators(&self, forum: ForumId) -> StoreResult<Vec<Account>>;

    /// Statements executed so far by this store (for tests and per-request records).
    fn query_count(&self) -> u64;

    /// Counters for operators and the benchmark.
    fn stats(&self) -> StoreStats {
        StoreStats {
            queries: self.query_count(),
            reads_primary: 0,
            reads_replica: 0,
        }
    }
}

/// What a store has done since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    pub queries: u64,
    /// Reads served by a shard primary, and by a replica (zero for the embedded backend,
    /// which has one copy).
    pub reads_primary: u64,
    pub reads_replica: u64,
}

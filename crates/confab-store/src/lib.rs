//! Confab storage: the traits every service calls, and the two backends.
//!
//! Layout, by concern (each trait sits in its own file with the records it takes and returns):
//! - [`ControlStore`] (`control.rs`): forums, accounts, moderators, bans. Small and global.
//! - [`CommentStore`] (`comments.rs`): threads and comments, pages of a thread, posting, editing.
//! - [`VoteStore`] (`votes.rs`): votes and flags.
//! - [`ModerationStore`] (`moderation.rs`): status changes, queues, the moderation log, stats.
//! - [`OutboxStore`] (`outbox.rs`): the task outbox and reply-mail subscriptions.
//! - [`NotifyStore`] (`notify.rs`): thread follows, and a thread's authors (for mentions).
//! - [`ImportStore`] (`import.rs`): threads and comments from another system, in bulk, with
//!   thread aliases and each comment's source id (importing again adds nothing).
//! - [`ExportStore`] (`export.rs`): a whole forum read out in keyset pages, and a consistent
//!   copy of the embedded database.
//! - [`ChallengeStore`] (`challenge.rs`): proof-of-work challenges already used (single use
//!   across a fleet), pruned as they expire.
//! - [`Store`]: all of them composed; the service holds an `Arc<dyn Store>`. Code that calls a
//!   concrete backend imports [`prelude`].
//! - [`rules`]: every domain rule a backend applies (counter and vote shifts, the reply-depth
//!   cap, task rows, e-mail keys), written once. A backend holds SQL and driver code only.
//! - [`sqlite`] (embedded: one file in WAL mode, reader connections and a single writer thread
//!   that commits in groups) and [`pg`] (sharded PostgreSQL) are cut into the same files: `mod.rs`
//!   (the handle, driver helpers), `rows.rs` (columns, row mapping, shared statements), and one
//!   file per trait. `pg/` adds the router, shard moves, admin and data migration.
//!
//! Every operation is addressed by forum or by id, never by "the database", so a sharded backend
//! can route each call (ids carry their logical shard). Reads say where they may be served from
//! ([`ReadFrom`]); writes always go to the primary of the shard that owns the row.
//!
//! Counters (comment counts, replies, votes, flags) change with `SET n = n + ?` in the same
//! transaction as the row that caused them. Reading a page of a thread costs a fixed number of
//! statements whatever the thread's size; [`Store::query_count`] lets tests prove it.
//!
//! Tasks are a transactional outbox: [`NewComment::tasks`] and the tasks
//! given to [`ModerationStore::set_status`] are written in the same transaction as the change that causes
//! them, so a task exists exactly when its change committed. Workers claim due tasks with a
//! lease ([`OutboxStore::claim_tasks`]); a claim is identified by its attempt number, so a worker whose
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

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use async_trait::async_trait;
use confab_core::DomainError;

pub mod challenge;
mod comments;
mod control;
pub mod export;
pub mod gdpr;
pub mod identity;
pub mod import;
pub mod media;
mod mod_context;
mod moderation;
pub mod notify;
mod outbox;
pub mod pg;
pub mod pin;
pub mod reactions;
pub mod rules;
pub mod spam;
pub mod sqlite;
mod votes;

pub use challenge::{ChallengeStore, Spend};
pub use comments::{
    AuthorKey, CommentEdit, CommentStore, Idempotency, NewComment, Posted, ThreadPatch, Visibility,
};
pub use control::{BanRecord, ControlStore, NewAccount, SsoAccount};
pub use export::{ExportComment, ExportSource, ExportStore, ExportThread, EXPORT_PAGE_MAX};
pub use gdpr::{Erase, ErasedComment, GdprStore, OwnMark, Owner};
pub use identity::{IdentityStore, NewIdentityAccount};
pub use import::{
    ImportBatch, ImportComment, ImportRecord, ImportState, ImportStore, ImportThread, ImportUpdate,
    Imported, Moved, NewImportRecord, ThreadMove, IMPORT_STALE_MS,
};
pub use media::{ImageData, ImageMeta, MediaStore, NewImage};
pub use mod_context::{AuthorHistory, Histories, ModContextStore, QueueCounts, MOD_COUNT_CAP};
pub use moderation::{ModQuery, ModerationStore, Queue, StatusChange};
pub use notify::{NotifyStore, ThreadAuthor};
pub use outbox::{
    NewTask, OutboxStore, QueueDepth, ReplyWatch, SubState, Subscription, Task, TaskState,
    TaskWhen, MAX_TASK_PAYLOAD, QUEUE_COUNT_CAP,
};
pub use reactions::{Reacted, ReactionStore};
pub use spam::{SpamFacts, SpamStore};
pub use votes::{Flagged, VoteCounts, VoteStore};

/// Every storage trait, for code that calls a concrete backend (`SqliteStore`, `PgStore`)
/// rather than `dyn Store`: `use confab_store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        ChallengeStore, CommentStore, ControlStore, ExportStore, GdprStore, ImportStore,
        MediaStore, ModContextStore, ModerationStore, NotifyStore, OutboxStore, ReactionStore,
        Store, VoteStore,
    };
}
pub use pin::{ReadPin, WritePos, Written};

/// Runs `f` and counts the statements the store executes on its behalf (in this task): the
/// `statements` of a [`confab_record::scope`], for tests that prove what a read costs.
pub async fn count_queries<F: std::future::Future>(f: F) -> (F::Output, u64) {
    let (out, record) = confab_record::scope(f).await;
    (out, record.statements)
}

/// Where a statement ran: a shard server's primary or one of its replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Primary,
    Replica,
}

/// Statements run on one shard server (or the control database), by its primary and by its
/// replicas. A backend keeps one per server for its whole life (a server rebuilt by a map
/// reload keeps its counts), so the totals only move up.
#[derive(Debug, Default)]
pub struct ShardCounts {
    primary: std::sync::atomic::AtomicU64,
    replica: std::sync::atomic::AtomicU64,
}

impl ShardCounts {
    /// A counter for statements on this server's `target`, adding to the current task's
    /// performance record too.
    pub fn counter(self: &std::sync::Arc<Self>, target: Target) -> Counter {
        Counter {
            shard: self.clone(),
            replica: target == Target::Replica,
            record: confab_record::current(),
        }
    }
    /// (primary, replica) statements so far.
    pub fn get(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.primary.load(Ordering::Relaxed),
            self.replica.load(Ordering::Relaxed),
        )
    }
}

/// Statements run on one shard server, for `/statz` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShardStatements {
    /// The server's name (`control` for the control database; `embedded` for the one SQLite
    /// file).
    pub shard: String,
    pub primary: u64,
    pub replica: u64,
}

/// Counts the statements of one store call: into its server's counts (by primary or replica),
/// and into the performance record of the task that made the call, if it runs in one
/// ([`confab_record::scope`]: per-request records; tests that prove a page read costs the same
/// for any thread size). Made once per call, so a statement costs two relaxed atomic adds.
pub struct Counter {
    shard: std::sync::Arc<ShardCounts>,
    replica: bool,
    record: Option<std::sync::Arc<confab_record::Record>>,
}

impl Counter {
    pub fn add(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let c = if self.replica {
            &self.shard.replica
        } else {
            &self.shard.primary
        };
        c.fetch_add(n, Ordering::Relaxed);
        if let Some(r) = &self.record {
            r.add(confab_record::Field::Statements, n);
        }
    }

    /// The performance record this call adds to (to run its work on another thread).
    pub(crate) fn record(&self) -> Option<&std::sync::Arc<confab_record::Record>> {
        self.record.as_ref()
    }
}

/// The statement that samples a server's task queue: queued tasks, counted on an index and
/// capped at [`QUEUE_COUNT_CAP`], and the earliest due `run_at`, one seek on the `tasks_due`
/// partial index (SQLite is told to use it: left to itself it scans every queued row).
pub(crate) const QUEUE_SQL_SQLITE: &str = "SELECT \
     (SELECT count(*) FROM (SELECT 1 FROM tasks WHERE state = 'queued' LIMIT 100000)), \
     (SELECT run_at FROM tasks INDEXED BY tasks_due WHERE state = 'queued' AND run_at <= ?1 \
      ORDER BY run_at LIMIT 1)";
pub(crate) const QUEUE_SQL_PG: &str = "SELECT \
     (SELECT count(*) FROM (SELECT 1 FROM tasks WHERE state = 'queued' LIMIT 100000) q), \
     (SELECT run_at FROM tasks WHERE state = 'queued' AND run_at <= $1 ORDER BY run_at LIMIT 1)";

/// Storage operations return domain errors; internal causes are logged where they happen.
pub type StoreResult<T> = Result<T, DomainError>;

/// Where a read may be served from. Embedded SQLite has one copy and ignores it; a replicated
/// backend reads replicas for `Replica` and the shard primary for `Primary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Replica,
    Primary,
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

/// What a store has done since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    pub queries: u64,
    /// Reads served by a shard primary, and by a replica (zero for the embedded backend,
    /// which has one copy).
    pub reads_primary: u64,
    pub reads_replica: u64,
}

/// The storage contract: every concern's trait, composed. The service holds one
/// `Arc<dyn Store>`; see the crate docs for the rules every backend keeps.
#[async_trait]
pub trait Store:
    ControlStore
    + CommentStore
    + VoteStore
    + ReactionStore
    + ModerationStore
    + ModContextStore
    + OutboxStore
    + NotifyStore
    + ImportStore
    + ExportStore
    + ChallengeStore
    + GdprStore
    + SpamStore
    + IdentityStore
    + MediaStore
    + Send
    + Sync
    + 'static
{
    /// Statements executed so far by this store (for tests and per-request records).
    fn query_count(&self) -> u64 {
        self.statements()
            .iter()
            .map(|s| s.primary + s.replica)
            .sum()
    }

    /// Statements executed so far, by shard server and primary/replica.
    fn statements(&self) -> Vec<ShardStatements>;

    /// Counters for operators and the benchmark.
    fn stats(&self) -> StoreStats {
        StoreStats {
            queries: self.query_count(),
            reads_primary: 0,
            reads_replica: 0,
        }
    }

    /// Parts of the store known to be down right now, each with its cause (`shard server s1:
    /// cannot connect to PostgreSQL at db1:5432: connection refused`), from what the store's
    /// background checks last saw: no I/O. Empty when everything answers.
    fn problems(&self) -> Vec<String> {
        Vec::new()
    }

    /// A number that moves when another process wrote to this store (the embedded file's
    /// `PRAGMA data_version` on the writer's connection: a `confab import` or `confab admin`
    /// beside a running server, which no bus tells of). `None` where every writer announces its
    /// changes on the bus instead (PostgreSQL).
    async fn outside_writes(&self) -> StoreResult<Option<i64>> {
        Ok(None)
    }
}

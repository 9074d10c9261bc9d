//! The sharded PostgreSQL backend (ARCHITECTURE.md, "Sharded PostgreSQL").
//!
//! - A **control database** holds forums, accounts, moderators, bans and the shard map.
//! - **Shard servers** each hold the shard tables (threads, comments, votes, flags, moderation
//!   log, idempotency keys, the task outbox, reply-mail subscriptions) for the logical shards the
//!   map gives them. Every row carries its logical shard; every id carries it too, so a comment,
//!   thread or task id routes with no lookup. Ids come from `confab_next_id()` in the shard
//!   database, so any number of nodes can write without colliding.
//! - Every write transaction starts with `confab_write_shard(logical)`: a shared advisory lock
//!   plus a fence check, which is what lets `confab shards move` fence one logical shard for a
//!   moment without stopping the others (see [`moves`]). A write that meets a fence waits and
//!   retries (up to [`FENCE_WAIT`]); one that finds its shard moved reloads the map and retries
//!   on the new server.
//! - After each commit the node reads the primary's WAL position and records it for the
//!   request ([`crate::pin`]), so the client's next read can be pinned.
//! - Counters change with `SET n = n + $1` in the transaction of the row that caused them.
//! - Authors are joined in the application: the service reads a page's comments from the shard,
//!   then the set of author accounts from the control database in one query.

#[macro_use]
mod macros;

pub mod admin;
pub mod cause;
mod challenge;
mod comments;
mod control;
mod export;
mod gdpr;
mod group;
mod identity;
mod import;
mod media;
pub mod migrate_data;
mod mod_context;
mod moderation;
pub mod moves;
mod notify;
mod outbox;
mod post_one;
mod reactions;
mod router;
mod rows;
pub mod schema;
mod spam;
mod tx;
mod votes;

use crate::{
    clip, like_pattern, CommentEdit, CommentStore, ControlStore, ModQuery, ModerationStore,
    NewAccount, NewComment, NewTask, OutboxStore, Posted, Queue, ReadFrom, ReplyWatch,
    StatusChange, Store, StoreResult, SubState, Subscription, Task, TaskState, ThreadPatch,
    Visibility, VoteCounts, VoteStore, Written,
};
use crate::{AuthorKey, Flagged, Reacted, ReactionStore};
use async_trait::async_trait;
use confab_core::cursor::{Cursor, Sort};
use confab_core::id::{self, AccountId, CommentId, ForumId, LogicalShard, ThreadId};
use confab_core::ident::Ident;
use confab_core::model::{
    Account, Author, Ban, BanKind, BanState, BanSubject, Comment, CommentStatus, Forum,
    ForumSettings, ModLogEntry, Thread,
};
use confab_core::reaction::{Reaction, ReactionCounts};
use confab_core::{DomainError, ErrorCode};
use deadpool_postgres::GenericClient;
pub use export::BACKUP_REFUSED;
use outbox::insert_task;
pub use router::{redact, PgPool, ReadStats, ReplicaStatus, Router, Server, ShardMap};
use rows::*;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// How long a write waits for a shard move's fence before giving up with 503.
pub const FENCE_WAIT: Duration = Duration::from_secs(10);

/// Connection settings for every server: the `[postgres]` section of the configuration.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgOptions {
    /// The control database's DSN (`postgres://user:pass@host:port/db`). Empty: embedded
    /// SQLite. Shard servers and their replicas are registered in the control database
    /// (`confab shards add`), so every node routes by the same map.
    pub control: confab_core::secret::Secret,
    /// Pooled connections per server (each primary and each replica), per node.
    pub pool_size: usize,
    /// Most posts a node commits in one transaction on one shard server (group commit: posts
    /// that arrive while the server is busy share a commit). 1: each post commits alone.
    pub group_commit: usize,
    /// Longest one statement may run or wait for a lock, in milliseconds.
    pub statement_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Longest a request waits for a pooled connection before answering 503.
    pub pool_wait_ms: u64,
    /// How often each node checks the shard map's version.
    pub map_refresh_ms: u64,
    /// How often each node polls replicas' replay positions.
    pub replica_poll_ms: u64,
    /// A replica behind its primary for longer than this gets no reads until it catches up.
    pub replica_max_lag_ms: u64,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            control: confab_core::secret::Secret::default(),
            pool_size: 16,
            group_commit: 64,
            statement_timeout_ms: 5_000,
            connect_timeout_ms: 2_000,
            pool_wait_ms: 2_000,
            map_refresh_ms: 1_000,
            replica_poll_ms: 100,
            replica_max_lag_ms: 5_000,
        }
    }
}

impl PgOptions {
    pub fn new(control: &str) -> PgOptions {
        PgOptions {
            control: control.into(),
            ..PgOptions::default()
        }
    }
}

pub(crate) fn unavailable(msg: &str) -> DomainError {
    DomainError::new(ErrorCode::Unavailable, msg)
}

/// Maps a PostgreSQL failure to a domain error, logging what is not the caller's fault. The
/// cause ([`cause::describe`]: the server's message and SQLSTATE, or the broken connection's
/// I/O error) goes with it for operators; clients get the message only.
pub(crate) fn pg_err(e: tokio_postgres::Error) -> DomainError {
    use tokio_postgres::error::SqlState;
    let why = format!("PostgreSQL: {}", cause::describe(&e, None));
    if let Some(code) = e.code() {
        if *code == SqlState::UNIQUE_VIOLATION {
            return DomainError::new(ErrorCode::Conflict, "already exists");
        }
        // Class 22, data exceptions (a NUL byte in text, a number out of range): the input's
        // fault, which the parsers should have caught; never a 500.
        if code.code().starts_with("22") {
            tracing::warn!(cause = %why, "PostgreSQL refused a value");
            return DomainError::invalid("a value in the request cannot be stored");
        }
        if *code == SqlState::QUERY_CANCELED
            || *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        {
            tracing::warn!(cause = %why, "PostgreSQL refused or timed out");
            confab_record::note_cause(&why);
            return unavailable("the database is busy, retry shortly").with_cause(why);
        }
        tracing::error!(cause = %why, "PostgreSQL error");
        confab_record::note_cause(&why);
        return DomainError::internal().with_cause(why);
    }
    // No SQL state: the connection broke (server stopped, network).
    tracing::warn!(cause = %why, "PostgreSQL connection failed");
    confab_record::note_cause(&why);
    unavailable("the database is unavailable, retry shortly").with_cause(why)
}

/// Why a write transaction stopped.
enum TxError {
    Domain(DomainError),
    /// The logical shard is fenced for a move: wait and retry.
    Fenced,
    /// The logical shard has moved away: reload the map and retry.
    Moved,
}

impl From<DomainError> for TxError {
    fn from(e: DomainError) -> Self {
        TxError::Domain(e)
    }
}

fn fence_err(e: tokio_postgres::Error) -> TxError {
    match e.code().map(|c| c.code()) {
        Some("CF001") => TxError::Fenced,
        Some("CF002") => TxError::Moved,
        _ => TxError::Domain(pg_err(e)),
    }
}

// ---------------------------------------------------------------- statement helpers

type Args<'a> = &'a [&'a (dyn ToSql + Sync)];

async fn rows<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    sql: &str,
    args: Args<'_>,
) -> StoreResult<Vec<Row>> {
    n.add(1);
    let st = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.query(&st, args).await.map_err(pg_err)
}

async fn row<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    sql: &str,
    args: Args<'_>,
) -> StoreResult<Option<Row>> {
    n.add(1);
    let st = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.query_opt(&st, args).await.map_err(pg_err)
}

async fn exec<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    sql: &str,
    args: Args<'_>,
) -> StoreResult<u64> {
    n.add(1);
    let st = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.execute(&st, args).await.map_err(pg_err)
}

fn shard_of(id: i64) -> LogicalShard {
    id::unpack(id).shard
}

fn sh(s: LogicalShard) -> i32 {
    i32::from(s.get())
}

// ---------------------------------------------------------------- the store

/// The sharded PostgreSQL store. Cheap to share behind an `Arc`.
pub struct PgStore {
    r: Arc<Router>,
    /// Forum id → logical shard, for calls addressed by forum id alone.
    forum_shards: RwLock<HashMap<ForumId, LogicalShard>>,
}

impl PgStore {
    /// Connects to the control database, applies pending migrations everywhere, loads the shard
    /// map and starts the background loops (map refresh, replica polling).
    pub async fn open(opts: PgOptions) -> StoreResult<PgStore> {
        let r = Router::open(opts).await?;
        admin::migrate_control(&r).await?;
        r.refresh(true).await?;
        for s in r.servers() {
            admin::migrate_shard(&s, &r.opts).await?;
        }
        admin::claim_unowned(&r).await?;
        r.spawn_background();
        Ok(PgStore {
            r,
            forum_shards: RwLock::new(HashMap::new()),
        })
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.r
    }

    /// Reads served by primaries and replicas so far.
    pub fn read_stats(&self) -> ReadStats {
        self.r.read_stats()
    }

    async fn forum_shard(&self, forum: ForumId) -> StoreResult<LogicalShard> {
        if let Some(s) = self
            .forum_shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&forum)
        {
            return Ok(*s);
        }
        let shard: i32 = control!(self, |c, n| {
            Ok(row(
                &c,
                &n,
                "SELECT shard FROM forums WHERE id = $1",
                &[&forum.0],
            )
            .await?
            .ok_or_else(|| DomainError::not_found("forum"))?
            .get(0))
        })?;
        let shard = LogicalShard::new(shard as u16).ok_or_else(DomainError::internal)?;
        self.forum_shards
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(forum, shard);
        Ok(shard)
    }

    async fn load_account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        control!(self, |c, n| {
            Ok(row(
                &c,
                &n,
                &format!("SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id = $1"),
                &[&id.0],
            )
            .await?
            .as_ref()
            .map(account_row))
        })
    }

    /// Writes a control-side action (bans) into the forum's moderation log on its shard.
    async fn log_control_action(
        &self,
        forum: ForumId,
        actor: Option<AccountId>,
        action: &str,
        detail: &str,
    ) -> StoreResult<()> {
        self.log_control_action_on(forum, actor, action, None, detail)
            .await
    }

    /// The same, naming the comment it was about (a ban made from a comment).
    async fn log_control_action_on(
        &self,
        forum: ForumId,
        actor: Option<AccountId>,
        action: &str,
        comment: Option<CommentId>,
        detail: &str,
    ) -> StoreResult<()> {
        let shard = self.forum_shard(forum).await?;
        write_value!(self, shard, |tx, n| {
            log_action(tx, &n, shard, forum, actor, action, comment, detail).await
        })
    }
}

#[async_trait]
impl Store for PgStore {
    fn statements(&self) -> Vec<crate::ShardStatements> {
        self.r.statements()
    }

    fn problems(&self) -> Vec<String> {
        self.r
            .servers()
            .iter()
            .filter_map(|s| {
                s.primary_down()
                    .map(|why| format!("shard server {}: {why}", s.name))
            })
            .collect()
    }

    fn stats(&self) -> crate::StoreStats {
        let r = self.r.read_stats();
        crate::StoreStats {
            queries: self.query_count(),
            reads_primary: r.primary,
            reads_replica: r.replica,
        }
    }
}

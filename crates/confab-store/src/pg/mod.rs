//! The sharded PostgreSQL backend (DESIGN.md sections 2, 3 and 9).
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

pub mod admin;
pub mod migrate_data;
pub mod moves;
mod router;
pub mod schema;

use crate::{
    clip, like_pattern, CommentEdit, ModQuery, NewAccount, NewComment, NewTask, Posted, Queue,
    ReadFrom, ReplyWatch, StatusChange, Store, StoreResult, SubState, Subscription, Task,
    TaskState, TaskWhen, ThreadPatch, Visibility, VoteCounts, MAX_TASK_PAYLOAD,
};
use async_trait::async_trait;
use confab_core::cursor::{Cursor, Sort};
use confab_core::id::{self, AccountId, CommentId, ForumId, LogicalShard, ThreadId};
use confab_core::ident::Ident;
use confab_core::model::{
    Account, Author, Ban, BanKind, BanSubject, Comment, CommentStatus, Forum, ForumSettings,
    ModLogEntry, Thread,
};
use confab_core::{DomainError, ErrorCode};
use deadpool_postgres::GenericClient;
pub use router::{redact, ReadStats, Router, Server, ShardMap};
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

/// Maps a PostgreSQL failure to a domain error, logging what is not the caller's fault.
pub(crate) fn pg_err(e: tokio_postgres::Error) -> DomainError {
    use tokio_postgres::error::SqlState;
    if let Some(code) = e.code() {
        if *code == SqlState::UNIQUE_VIOLATION {
            return DomainError::new(ErrorCode::Conflict, "already exists");
        }
        // Class 22, data exceptions (a NUL byte in text, a number out of range): the input's
        // fault, which the parsers should have caught; never a 500.
        if code.code().starts_with("22") {
            tracing::warn!(error = %e, "PostgreSQL refused a value");
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
            tracing::warn!(error = %e, "PostgreSQL refused or timed out");
            return unavailable("the database is busy, retry shortly");
        }
        tracing::error!(error = %e, "PostgreSQL error");
        return DomainError::internal();
    }
    // No SQL state: the connection broke (server stopped, network).
    tracing::warn!(error = %e, "PostgreSQL connection failed");
    unavailable("the database is unavailable, retry shortly")
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

/// Runs `$body` (an async block's contents using `$tx` and `$n`) in a write transaction on the
/// primary that owns `$shard`, after the fence check; commits, records the commit position, and
/// retries on fences and moves.
macro_rules! write_tx {
    ($self:ident, $shard:expr, |$tx:ident, $n:ident| $body:block) => {{
        let shard: LogicalShard = $shard;
        let deadline = Instant::now() + FENCE_WAIT;
        loop {
            let server = $self.r.server_for(shard)?;
            let mut conn = server.primary().await?;
            let $n = $self.r.counter();
            let $tx = conn.transaction().await.map_err(pg_err)?;
            let step: Result<_, TxError> = async {
                $n.add(1);
                let st = $tx
                    .prepare_cached("SELECT confab_write_shard($1)")
                    .await
                    .map_err(pg_err)?;
                $tx.execute(&st, &[&sh(shard)]).await.map_err(fence_err)?;
                let out: StoreResult<_> = async { $body }.await;
                Ok(out?)
            }
            .await;
            match step {
                Ok(v) => {
                    $tx.commit().await.map_err(pg_err)?;
                    $n.add(1);
                    if let Ok(r) = conn
                        .query_one("SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint", &[])
                        .await
                    {
                        crate::pin::record_write(server.committed(r.get::<_, i64>(0) as u64));
                    }
                    break Ok(v);
                }
                Err(TxError::Domain(e)) => break Err(e),
                Err(TxError::Fenced) if Instant::now() < deadline => {
                    drop($tx);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(TxError::Moved) if Instant::now() < deadline => {
                    drop($tx);
                    $self.r.refresh(true).await?;
                }
                Err(_) => {
                    break Err(unavailable(
                        "this forum's data is being moved, retry shortly",
                    ))
                }
            }
        }
    }};
}

/// A read on a connection chosen by the router.
/// A read on a connection chosen by the router; a read that fails because its replica went
/// away runs again on the primary.
macro_rules! read_on {
    ($self:ident, $shard:expr, $from:expr, |$c:ident, $n:ident| $body:block) => {{
        let (conn, replica) = $self.r.read_conn($shard, $from).await?;
        let first: StoreResult<_> = {
            let $c = conn;
            let $n = $self.r.counter();
            async { $body }.await
        };
        match (first, replica) {
            (Err(e), Some(rep)) if e.code == ErrorCode::Unavailable => {
                let $c = $self.r.replica_failed(&rep).await?;
                let $n = $self.r.counter();
                let again: StoreResult<_> = async { $body }.await;
                again
            }
            (out, _) => out,
        }
    }};
}

/// A statement on the control database.
macro_rules! control {
    ($self:ident, |$c:ident, $n:ident| $body:block) => {{
        let $c = router::get(&$self.r.control, "control database").await?;
        let $n = $self.r.counter();
        let out: StoreResult<_> = async { $body }.await;
        out
    }};
}

// ---------------------------------------------------------------- row mapping

const COMMENT_COLS: &str = "id, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
    guest_email, guest_url, body_md, body_html, status, likes, dislikes, reply_count, flag_count, created_at, \
    edited_at, ip_hash";

fn comment_row(r: &Row) -> Comment {
    let account: Option<i64> = r.get(5);
    let author = match account {
        Some(a) => Author::Account(AccountId(a)),
        None => Author::Guest {
            name: r.get::<_, Option<String>>(7).unwrap_or_default(),
            email: r.get(8),
            url: r.get(9),
        },
    };
    let status: &str = r.get(12);
    Comment {
        id: CommentId(r.get(0)),
        thread_id: ThreadId(r.get(1)),
        forum_id: ForumId(r.get(2)),
        parent_id: r.get::<_, Option<i64>>(3).map(CommentId),
        depth: r.get(4),
        author,
        anon_id: r.get(6),
        body_md: r.get(10),
        body_html: r.get(11),
        status: CommentStatus::parse(status).unwrap_or(CommentStatus::Pending),
        likes: r.get(13),
        dislikes: r.get(14),
        reply_count: r.get(15),
        flag_count: r.get(16),
        created_at: r.get(17),
        edited_at: r.get(18),
        ip_hash: r.get(19),
    }
}

const THREAD_COLS: &str =
    "id, forum_id, ident, url, title, closed, comment_count, hidden_count, seq, created_at";

fn thread_row(r: &Row) -> Thread {
    Thread {
        id: ThreadId(r.get(0)),
        forum_id: ForumId(r.get(1)),
        ident: Ident::from_stored(r.get(2)),
        url: r.get(3),
        title: r.get(4),
        closed: r.get(5),
        comment_count: r.get(6),
        hidden_count: r.get(7),
        seq: r.get(8),
        created_at: r.get(9),
    }
}

const FORUM_COLS: &str = "id, name, shard, settings, created_at";

fn forum_row(r: &Row) -> StoreResult<Forum> {
    let settings: &str = r.get(3);
    let settings: ForumSettings = serde_json::from_str(settings).map_err(|e| {
        tracing::error!(error = %e, "stored forum settings do not parse");
        DomainError::internal()
    })?;
    let shard: i32 = r.get(2);
    Ok(Forum {
        id: ForumId(r.get(0)),
        name: r.get(1),
        shard: LogicalShard::new(shard as u16).ok_or_else(DomainError::internal)?,
        settings,
        created_at: r.get(4),
    })
}

const ACCOUNT_COLS: &str = "a.id, a.username, a.email, a.display_name, a.is_staff, a.created_at, \
    ARRAY(SELECT m.forum_id FROM forum_moderators m WHERE m.account_id = a.id ORDER BY m.forum_id), a.session_gen";

fn account_row(r: &Row) -> Account {
    let mods: Vec<i64> = r.get(6);
    Account {
        id: AccountId(r.get(0)),
        username: r.get(1),
        email: r.get(2),
        display_name: r.get(3),
        is_staff: r.get(4),
        created_at: r.get(5),
        session_gen: r.get(7),
        moderates: mods.into_iter().map(ForumId).collect(),
    }
}

const BAN_COLS: &str = "id, kind, value, reason, expires_at, created_at";

fn ban_row(r: &Row) -> Ban {
    let kind: &str = r.get(1);
    Ban {
        id: r.get(0),
        kind: BanKind::parse(kind).unwrap_or(BanKind::Email),
        value: r.get(2),
        reason: r.get(3),
        expires_at: r.get(4),
        created_at: r.get(5),
    }
}

const TASK_COLS: &str =
    "id, shard, kind, payload, state, run_at, attempts, last_error, locked_until, created_at, updated_at";

fn task_row(r: &Row) -> Task {
    let state: &str = r.get(4);
    Task {
        id: r.get(0),
        shard: r.get::<_, i32>(1) as u16,
        kind: r.get(2),
        payload: r.get(3),
        state: TaskState::parse(state).unwrap_or(TaskState::Parked),
        run_at: r.get(5),
        attempts: r.get(6),
        last_error: r.get(7),
        locked_until: r.get(8),
        created_at: r.get(9),
        updated_at: r.get(10),
    }
}

/// The visibility condition for `vis`, with its parameters numbered from `first`.
fn vis_sql(vis: &Visibility, first: usize) -> String {
    match vis {
        Visibility::Public => "(status = 'approved' OR reply_count > 0)".into(),
        Visibility::Author { .. } => format!(
            "(status = 'approved' OR reply_count > 0 OR \
             (status IN ('pending', 'spam') AND (account_id = ${first} OR anon_id = ${})))",
            first + 1
        ),
        Visibility::Moderator => "(status <> 'deleted' OR reply_count > 0)".into(),
    }
}

fn vis_args(vis: &Visibility) -> (Option<i64>, Option<String>) {
    match vis {
        Visibility::Author { account, anon } => (account.map(|a| a.0), anon.clone()),
        _ => (None, None),
    }
}

const MAX_ERROR: usize = 1000;

// ---------------------------------------------------------------- transaction pieces

async fn load_comment<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    id: CommentId,
) -> StoreResult<Option<Comment>> {
    Ok(row(
        c,
        n,
        &format!("SELECT {COMMENT_COLS} FROM comments WHERE id = $1"),
        &[&id.0],
    )
    .await?
    .as_ref()
    .map(comment_row))
}

async fn load_thread<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    id: ThreadId,
) -> StoreResult<Option<Thread>> {
    Ok(row(
        c,
        n,
        &format!("SELECT {THREAD_COLS} FROM threads WHERE id = $1"),
        &[&id.0],
    )
    .await?
    .as_ref()
    .map(thread_row))
}

#[allow(clippy::too_many_arguments)]
async fn log_action<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    shard: LogicalShard,
    forum: ForumId,
    actor: Option<AccountId>,
    action: &str,
    comment: Option<CommentId>,
    detail: &str,
) -> StoreResult<()> {
    exec(
        c,
        n,
        "INSERT INTO mod_log (id, shard, forum_id, actor, action, comment_id, detail, created_at) \
         VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6, $7)",
        &[
            &sh(shard),
            &forum.0,
            &actor.map(|a| a.0),
            &action,
            &comment.map(|c| c.0),
            &detail,
            &confab_core::now_ms(),
        ],
    )
    .await?;
    Ok(())
}

/// Moves a comment's contribution to its thread and parent counters from `old` to `new`;
/// returns the thread as it is now (with its new sequence number).
async fn shift_counters<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    cm: &Comment,
    old: CommentStatus,
    new: CommentStatus,
) -> StoreResult<Thread> {
    let approved = |s: CommentStatus| i64::from(s == CommentStatus::Approved);
    let hidden = |s: CommentStatus| i64::from(s.is_hidden());
    let d_app = approved(new) - approved(old);
    let d_hid = hidden(new) - hidden(old);
    let thread = row(
        c,
        n,
        &format!(
            "UPDATE threads SET comment_count = comment_count + $1, hidden_count = hidden_count + $2, seq = seq + 1 \
             WHERE id = $3 RETURNING {THREAD_COLS}"
        ),
        &[&d_app, &d_hid, &cm.thread_id.0],
    )
    .await?
    .as_ref()
    .map(thread_row)
    .ok_or_else(DomainError::internal)?;
    if let (Some(p), true) = (cm.parent_id, d_app != 0) {
        exec(
            c,
            n,
            "UPDATE comments SET reply_count = reply_count + $1 WHERE id = $2",
            &[&d_app, &p.0],
        )
        .await?;
    }
    Ok(thread)
}

async fn bump_seq<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    thread: ThreadId,
) -> StoreResult<i64> {
    Ok(row(
        c,
        n,
        "UPDATE threads SET seq = seq + 1 WHERE id = $1 RETURNING seq",
        &[&thread.0],
    )
    .await?
    .ok_or_else(DomainError::internal)?
    .get(0))
}

async fn insert_task<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    shard: LogicalShard,
    task: &NewTask,
    payload: &serde_json::Value,
) -> StoreResult<i64> {
    let json = serde_json::to_string(payload).map_err(|_| DomainError::internal())?;
    if json.len() > MAX_TASK_PAYLOAD || task.kind.is_empty() || task.kind.len() > 64 {
        tracing::error!(kind = %task.kind, bytes = json.len(), "task refused: kind or payload out of bounds");
        return Err(DomainError::internal());
    }
    let now = confab_core::now_ms();
    let run_at = now.saturating_add(task.delay_ms.max(0));
    Ok(row(
        c,
        n,
        "INSERT INTO tasks (id, shard, kind, payload, state, run_at, attempts, created_at, updated_at) \
         VALUES (confab_next_id($1), $1, $2, $3, 'queued', $4, 0, $5, $5) RETURNING id",
        &[&sh(shard), &task.kind, &json, &run_at, &now],
    )
    .await?
    .ok_or_else(DomainError::internal)?
    .get(0))
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
        let shard = self.forum_shard(forum).await?;
        write_tx!(self, shard, |tx, n| {
            log_action(&tx, &n, shard, forum, actor, action, None, detail).await
        })
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_forum(&self, name: &str, settings: &ForumSettings) -> StoreResult<Forum> {
        let json = serde_json::to_string(settings).map_err(|_| DomainError::internal())?;
        let shard = LogicalShard::for_name(name);
        self.r.server_for(shard)?; // refuse a forum whose shard has no server
        let res: StoreResult<Forum> = control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!("INSERT INTO forums (name, shard, settings, created_at) VALUES ($1, $2, $3, $4) RETURNING {FORUM_COLS}"),
                &[&name, &sh(shard), &json, &confab_core::now_ms()],
            )
            .await?
            .ok_or_else(DomainError::internal)?;
            forum_row(&r)
        });
        match res {
            Err(e) if e.code == ErrorCode::Conflict => Err(DomainError::new(
                ErrorCode::Conflict,
                format!("forum {name} already exists"),
            )),
            other => other,
        }
    }

    async fn forums(&self) -> StoreResult<Vec<Forum>> {
        let forums: Vec<Forum> = control!(self, |c, n| {
            rows(
                &c,
                &n,
                &format!("SELECT {FORUM_COLS} FROM forums ORDER BY name"),
                &[],
            )
            .await?
            .iter()
            .map(forum_row)
            .collect()
        })?;
        let mut m = self.forum_shards.write().unwrap_or_else(|p| p.into_inner());
        for f in &forums {
            m.insert(f.id, f.shard);
        }
        Ok(forums)
    }

    async fn update_forum(&self, id: ForumId, settings: &ForumSettings) -> StoreResult<Forum> {
        let json = serde_json::to_string(settings).map_err(|_| DomainError::internal())?;
        control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!("UPDATE forums SET settings = $1 WHERE id = $2 RETURNING {FORUM_COLS}"),
                &[&json, &id.0],
            )
            .await?
            .ok_or_else(|| DomainError::not_found("forum"))?;
            forum_row(&r)
        })
    }

    async fn create_account(&self, new: NewAccount) -> StoreResult<Account> {
        let res: StoreResult<i64> = control!(self, |c, n| {
            Ok(row(
                &c,
                &n,
                "INSERT INTO accounts (username, email, display_name, password_hash, is_staff, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&new.username, &new.email, &new.display_name, &new.password_hash, &new.is_staff, &confab_core::now_ms()],
            )
            .await?
            .ok_or_else(DomainError::internal)?
            .get(0))
        });
        let id = match res {
            Err(e) if e.code == ErrorCode::Conflict => {
                return Err(DomainError::new(
                    ErrorCode::Conflict,
                    "username or email is already taken",
                ))
            }
            other => other?,
        };
        self.load_account(AccountId(id))
            .await?
            .ok_or_else(DomainError::internal)
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.load_account(id).await
    }

    async fn accounts(&self, ids: &[AccountId]) -> StoreResult<Vec<Account>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|a| a.0).collect();
        control!(self, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!("SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id = ANY($1)"),
                &[&ids],
            )
            .await?
            .iter()
            .map(account_row)
            .collect())
        })
    }

    async fn credentials(&self, login: &str) -> StoreResult<Option<(Account, String)>> {
        control!(self, |c, n| {
            let Some(r) = row(
                &c,
                &n,
                &format!("SELECT {ACCOUNT_COLS}, a.password_hash FROM accounts a WHERE lower(a.username) = lower($1) OR lower(a.email) = lower($1) LIMIT 1"),
                &[&login],
            )
            .await?
            else {
                return Ok(None);
            };
            Ok(Some((account_row(&r), r.get(8))))
        })
    }

    async fn set_moderator(&self, account: AccountId, forum: ForumId, on: bool) -> StoreResult<()> {
        let sql = if on {
            "INSERT INTO forum_moderators (forum_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM forum_moderators WHERE forum_id = $1 AND account_id = $2"
        };
        control!(self, |c, n| {
            exec(&c, &n, sql, &[&forum.0, &account.0]).await?;
            Ok(())
        })
    }

    async fn set_account_email(&self, account: AccountId, email: &str) -> StoreResult<()> {
        control!(self, |c, n| {
            match exec(
                &c,
                &n,
                "UPDATE accounts SET email = $1 WHERE id = $2",
                &[&email, &account.0],
            )
            .await
            {
                Err(e) if e.code == ErrorCode::Conflict => Err(DomainError::new(
                    ErrorCode::Conflict,
                    "that e-mail address belongs to another account",
                )),
                Err(e) => Err(e),
                Ok(0) => Err(DomainError::not_found("account")),
                Ok(_) => Ok(()),
            }
        })
    }

    async fn enqueue_task(&self, shard: LogicalShard, task: NewTask) -> StoreResult<()> {
        write_tx!(self, shard, |tx, n| {
            insert_task(&tx, &n, shard, &task, &task.payload).await?;
            Ok(())
        })
    }

    async fn end_sessions(&self, account: AccountId) -> StoreResult<()> {
        control!(self, |c, n| {
            exec(
                &c,
                &n,
                "UPDATE accounts SET session_gen = session_gen + 1 WHERE id = $1",
                &[&account.0],
            )
            .await?;
            Ok(())
        })
    }

    async fn add_ban(
        &self,
        forum: ForumId,
        kind: BanKind,
        value: &str,
        reason: Option<&str>,
        expires_at: Option<i64>,
        actor: Option<AccountId>,
    ) -> StoreResult<Ban> {
        let ban = control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!(
                    "INSERT INTO bans (forum_id, kind, value, reason, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (forum_id, kind, value) DO UPDATE SET reason = excluded.reason, \
                     expires_at = excluded.expires_at, created_at = excluded.created_at RETURNING {BAN_COLS}"
                ),
                &[&forum.0, &kind.as_str(), &value, &reason, &expires_at, &confab_core::now_ms()],
            )
            .await?
            .ok_or_else(DomainError::internal)?;
            Ok(ban_row(&r))
        })?;
        // The ban lives in the control database and its log entry on the forum's shard: two
        // commits. The ban stands even if the log write fails (logged), never the reverse.
        if let Err(e) = self
            .log_control_action(forum, actor, "ban", &format!("{} {}", kind.as_str(), value))
            .await
        {
            tracing::warn!(error = %e.message, "ban recorded but its moderation-log entry was not");
        }
        Ok(ban)
    }

    async fn remove_ban(
        &self,
        forum: ForumId,
        ban: i64,
        actor: Option<AccountId>,
    ) -> StoreResult<bool> {
        let gone = control!(self, |c, n| {
            Ok(exec(
                &c,
                &n,
                "DELETE FROM bans WHERE forum_id = $1 AND id = $2",
                &[&forum.0, &ban],
            )
            .await?
                > 0)
        })?;
        if gone {
            if let Err(e) = self
                .log_control_action(forum, actor, "unban", &format!("ban {ban}"))
                .await
            {
                tracing::warn!(error = %e.message, "ban removed but its moderation-log entry was not");
            }
        }
        Ok(gone)
    }

    async fn bans(&self, forum: ForumId) -> StoreResult<Vec<Ban>> {
        control!(self, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!(
                    "SELECT {BAN_COLS} FROM bans WHERE forum_id = $1 ORDER BY id DESC LIMIT 1000"
                ),
                &[&forum.0],
            )
            .await?
            .iter()
            .map(ban_row)
            .collect())
        })
    }

    async fn is_banned(&self, forum: ForumId, who: &BanSubject, now: i64) -> StoreResult<bool> {
        let account = who.account.map(|a| a.0.to_string());
        control!(self, |c, n| {
            Ok(row(
                &c,
                &n,
                "SELECT 1 FROM bans WHERE forum_id = $1 AND (expires_at IS NULL OR expires_at > $2) AND \
                 ((kind = 'email' AND lower(value) = lower($3)) OR (kind = 'ip' AND value = $4) OR \
                  (kind = 'account' AND value = $5)) LIMIT 1",
                &[&forum.0, &now, &who.email, &who.ip_hash, &account],
            )
            .await?
            .is_some())
        })
    }

    async fn thread_by_ident(
        &self,
        forum: &Forum,
        ident: &Ident,
        from: ReadFrom,
    ) -> StoreResult<Option<Thread>> {
        read_on!(self, forum.shard, from, |c, n| {
            Ok(row(
                &c,
                &n,
                &format!("SELECT {THREAD_COLS} FROM threads WHERE forum_id = $1 AND ident = $2"),
                &[&forum.id.0, &ident.as_str()],
            )
            .await?
            .as_ref()
            .map(thread_row))
        })
    }

    async fn thread(&self, id: ThreadId, from: ReadFrom) -> StoreResult<Option<Thread>> {
        read_on!(self, shard_of(id.0), from, |c, n| {
            load_thread(&c, &n, id).await
        })
    }

    async fn counts(&self, forum: &Forum, idents: &[Ident]) -> StoreResult<Vec<(Ident, i64)>> {
        if idents.is_empty() {
            return Ok(Vec::new());
        }
        let idents: Vec<&str> = idents.iter().map(|i| i.as_str()).collect();
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT ident, comment_count FROM threads WHERE forum_id = $1 AND ident = ANY($2)",
                &[&forum.id.0, &idents],
            )
            .await?
            .iter()
            .map(|r| (Ident::from_stored(r.get(0)), r.get(1)))
            .collect())
        })
    }

    async fn update_thread(
        &self,
        forum: &Forum,
        id: ThreadId,
        patch: ThreadPatch,
        actor: Option<AccountId>,
    ) -> StoreResult<Thread> {
        let (forum_id, shard) = (forum.id, forum.shard);
        write_tx!(self, shard, |tx, n| {
            let t = load_thread(&tx, &n, id)
                .await?
                .filter(|t| t.forum_id == forum_id)
                .ok_or_else(|| DomainError::not_found("thread"))?;
            let closed = patch.closed.unwrap_or(t.closed);
            let title = patch.title.clone().or_else(|| t.title.clone());
            if closed == t.closed && title == t.title {
                return Ok(t);
            }
            exec(
                &tx,
                &n,
                "UPDATE threads SET closed = $1, title = $2, seq = seq + 1 WHERE id = $3",
                &[&closed, &title, &id.0],
            )
            .await?;
            if closed != t.closed {
                let action = if closed { "close" } else { "open" };
                log_action(
                    &tx,
                    &n,
                    shard,
                    forum_id,
                    actor,
                    action,
                    None,
                    &format!("thread {id} {}", t.ident.as_str()),
                )
                .await?;
            }
            load_thread(&tx, &n, id)
                .await?
                .ok_or_else(DomainError::internal)
        })
    }

    async fn top_level(
        &self,
        thread: &Thread,
        vis: &Visibility,
        sort: Sort,
        cursor: Option<Cursor>,
        limit: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<Comment>> {
        let (va, vb) = vis_args(vis);
        let limit = limit as i64;
        let v = vis_sql(vis, 3);
        let mut sql = format!("SELECT {COMMENT_COLS} FROM comments WHERE thread_id = $1 AND parent_id IS NULL AND {v}");
        // Parameters: $1 thread, $2 limit, $3/$4 visibility, $5/$6 cursor.
        let (c1, c2) = match (sort, cursor) {
            (Sort::Best, Some(c)) => {
                sql.push_str(" AND (score < $5 OR (score = $5 AND id > $6))");
                (Some(c.score), Some(c.id))
            }
            (Sort::Newest, Some(c)) => {
                sql.push_str(" AND id < $5");
                (Some(c.id), None)
            }
            (Sort::Oldest, Some(c)) => {
                sql.push_str(" AND id > $5");
                (Some(c.id), None)
            }
            (_, None) => (None, None),
        };
        sql.push_str(match sort {
            Sort::Best => " ORDER BY score DESC, id ASC LIMIT $2",
            Sort::Newest => " ORDER BY id DESC LIMIT $2",
            Sort::Oldest => " ORDER BY id ASC LIMIT $2",
        });
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&thread.id.0, &limit];
        if matches!(vis, Visibility::Author { .. }) {
            args.push(&va);
            args.push(&vb);
        } else if c1.is_some() {
            // Keep parameter numbers fixed: the visibility slots are unused, so renumber.
            sql = sql.replace("$5", "$3").replace("$6", "$4");
        }
        if let Some(x) = &c1 {
            args.push(x);
        }
        if let Some(x) = &c2 {
            args.push(x);
        }
        read_on!(self, shard_of(thread.id.0), from, |c, n| {
            Ok(rows(&c, &n, &sql, &args)
                .await?
                .iter()
                .map(comment_row)
                .collect())
        })
    }

    async fn replies(
        &self,
        thread: &Thread,
        parents: &[CommentId],
        vis: &Visibility,
        after: Option<CommentId>,
        per_parent: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<Comment>> {
        if parents.is_empty() || per_parent == 0 {
            return Ok(Vec::new());
        }
        // One statement: a lateral index range scan per parent, each with its own LIMIT, so the
        // cost is bounded by parents x per_parent whatever the thread's size.
        let parents: Vec<i64> = parents.iter().map(|p| p.0).collect();
        let (va, vb) = vis_args(vis);
        let after = after.map_or(0, |a| a.0);
        let per = per_parent as i64;
        let is_author = matches!(vis, Visibility::Author { .. });
        let v = vis_sql(vis, 5);
        let sql = format!(
            "SELECT c.* FROM unnest($2::bigint[]) WITH ORDINALITY AS p(id, ord) CROSS JOIN LATERAL \
             (SELECT {COMMENT_COLS} FROM comments WHERE thread_id = $1 AND parent_id = p.id AND id > $3 AND {v} \
              ORDER BY id LIMIT $4) c ORDER BY p.ord, c.id"
        );
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&thread.id.0, &parents, &after, &per];
        if is_author {
            args.push(&va);
            args.push(&vb);
        }
        read_on!(self, shard_of(thread.id.0), from, |c, n| {
            Ok(rows(&c, &n, &sql, &args)
                .await?
                .iter()
                .map(comment_row)
                .collect())
        })
    }

    async fn comment(&self, id: CommentId, from: ReadFrom) -> StoreResult<Option<Comment>> {
        read_on!(self, shard_of(id.0), from, |c, n| {
            load_comment(&c, &n, id).await
        })
    }

    async fn has_hidden_by(&self, thread: &Thread, vis: &Visibility) -> StoreResult<bool> {
        let Visibility::Author { account, anon } = vis else {
            return Ok(false);
        };
        let account = account.map(|a| a.0);
        read_on!(self, shard_of(thread.id.0), ReadFrom::Replica, |c, n| {
            Ok(row(
                &c,
                &n,
                "SELECT 1 FROM comments WHERE thread_id = $1 AND status IN ('pending', 'spam') \
                 AND (account_id = $2 OR anon_id = $3) LIMIT 1",
                &[&thread.id.0, &account, anon],
            )
            .await?
            .is_some())
        })
    }

    async fn post_comment(&self, new: NewComment) -> StoreResult<Posted> {
        let shard = new.forum.shard;
        write_tx!(self, shard, |tx, n| { insert_comment(&tx, &n, &new).await })
    }

    async fn edit_comment(&self, id: CommentId, edit: &CommentEdit) -> StoreResult<(Comment, i64)> {
        write_tx!(self, shard_of(id.0), |tx, n| {
            let old = row(
                &tx,
                &n,
                &format!("SELECT {COMMENT_COLS} FROM comments WHERE id = $1 FOR UPDATE"),
                &[&id.0],
            )
            .await?
            .as_ref()
            .map(comment_row)
            .filter(|cm| cm.status != CommentStatus::Deleted)
            .ok_or_else(|| DomainError::not_found("comment"))?;
            let status = edit.status_after(old.status);
            exec(
                &tx,
                &n,
                "UPDATE comments SET body_md = $1, body_html = $2, edited_at = $3, status = $4 WHERE id = $5",
                &[&edit.body_md, &edit.body_html, &edit.now, &status.as_str(), &id.0],
            )
            .await?;
            let seq = if status == old.status {
                bump_seq(&tx, &n, old.thread_id).await?
            } else {
                shift_counters(&tx, &n, &old, old.status, status).await?.seq
            };
            if let Some((forum, actor)) = edit.logged_by {
                log_action(
                    &tx,
                    &n,
                    shard_of(id.0),
                    forum,
                    Some(actor),
                    "edit",
                    Some(id),
                    &old.body_md,
                )
                .await?;
            }
            let cm = load_comment(&tx, &n, id)
                .await?
                .ok_or_else(DomainError::internal)?;
            Ok((cm, seq))
        })
    }

    async fn set_status(
        &self,
        forum: &Forum,
        ids: &[CommentId],
        status: CommentStatus,
        actor: Option<AccountId>,
        action: &str,
        tasks: Vec<NewTask>,
    ) -> StoreResult<Vec<StatusChange>> {
        let (forum_id, shard) = (forum.id, forum.shard);
        if let Some(stray) = ids.iter().find(|i| shard_of(i.0) != shard) {
            return Err(DomainError::not_found(&format!("comment {stray}")));
        }
        write_tx!(self, shard, |tx, n| {
            let mut changes = Vec::new();
            for &id in ids {
                let Some(cm) = load_comment(&tx, &n, id)
                    .await?
                    .filter(|cm| cm.forum_id == forum_id)
                else {
                    return Err(DomainError::not_found(&format!("comment {id}")));
                };
                let dismiss = status == CommentStatus::Approved && cm.flag_count > 0;
                if dismiss {
                    exec(
                        &tx,
                        &n,
                        "UPDATE comments SET flag_count = 0 WHERE id = $1",
                        &[&id.0],
                    )
                    .await?;
                    exec(&tx, &n, "DELETE FROM flags WHERE comment_id = $1", &[&id.0]).await?;
                }
                if cm.status == status {
                    if dismiss {
                        log_action(
                            &tx,
                            &n,
                            shard,
                            forum_id,
                            actor,
                            "dismiss_flags",
                            Some(id),
                            &format!("{} flags", cm.flag_count),
                        )
                        .await?;
                        let old = cm.status;
                        changes.push(StatusChange {
                            comment: Comment {
                                flag_count: 0,
                                ..cm
                            },
                            old,
                            thread_seq: None,
                        });
                    }
                    continue;
                }
                exec(
                    &tx,
                    &n,
                    "UPDATE comments SET status = $1 WHERE id = $2",
                    &[&status.as_str(), &id.0],
                )
                .await?;
                let seq = shift_counters(&tx, &n, &cm, cm.status, status).await?.seq;
                log_action(
                    &tx,
                    &n,
                    shard,
                    forum_id,
                    actor,
                    action,
                    Some(id),
                    &format!("{} -> {}", cm.status.as_str(), status.as_str()),
                )
                .await?;
                let old = cm.status;
                let mut comment = cm;
                comment.status = status;
                changes.push(StatusChange {
                    comment,
                    old,
                    thread_seq: Some(seq),
                });
            }
            for t in &tasks {
                let due = match t.when {
                    TaskWhen::Always => true,
                    TaskWhen::Changed(id) => changes.iter().any(|ch| ch.comment.id == id),
                    TaskWhen::ChangedFrom(id, from) => changes
                        .iter()
                        .any(|ch| ch.comment.id == id && ch.old == from),
                };
                if due {
                    insert_task(&tx, &n, shard, t, &t.payload).await?;
                }
            }
            Ok(changes)
        })
    }

    async fn vote(&self, id: CommentId, voter: &str, value: i64) -> StoreResult<VoteCounts> {
        let shard = shard_of(id.0);
        write_tx!(self, shard, |tx, n| {
            // Lock the comment row: concurrent votes on it serialize here.
            let found = row(
                &tx,
                &n,
                "SELECT status, thread_id FROM comments WHERE id = $1 FOR UPDATE",
                &[&id.0],
            )
            .await?;
            let thread_id = match found {
                Some(r) if r.get::<_, &str>(0) == "approved" => ThreadId(r.get(1)),
                _ => return Err(DomainError::not_found("comment")),
            };
            let old: i64 = row(
                &tx,
                &n,
                "SELECT value FROM votes WHERE comment_id = $1 AND voter = $2",
                &[&id.0, &voter],
            )
            .await?
            .map_or(0, |r| i64::from(r.get::<_, i32>(0)));
            if value == 0 {
                exec(
                    &tx,
                    &n,
                    "DELETE FROM votes WHERE comment_id = $1 AND voter = $2",
                    &[&id.0, &voter],
                )
                .await?;
            } else if value != old {
                exec(
                    &tx,
                    &n,
                    "INSERT INTO votes (comment_id, voter, shard, value, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (comment_id, voter) DO UPDATE SET value = excluded.value",
                    &[&id.0, &voter, &sh(shard), &(value as i32), &confab_core::now_ms()],
                )
                .await?;
            }
            let dl = i64::from(value == 1) - i64::from(old == 1);
            let dd = i64::from(value == -1) - i64::from(old == -1);
            let r = row(
                &tx,
                &n,
                "UPDATE comments SET likes = likes + $1, dislikes = dislikes + $2, score = score + $1 - $2 \
                 WHERE id = $3 RETURNING likes, dislikes",
                &[&dl, &dd, &id.0],
            )
            .await?
            .ok_or_else(DomainError::internal)?;
            let thread_seq = if dl != 0 || dd != 0 {
                Some(bump_seq(&tx, &n, thread_id).await?)
            } else {
                None
            };
            Ok(VoteCounts {
                likes: r.get(0),
                dislikes: r.get(1),
                mine: value,
                thread_id,
                thread_seq,
            })
        })
    }

    async fn votes_of(&self, voter: &str, ids: &[CommentId]) -> StoreResult<Vec<(CommentId, i64)>> {
        // Ids carry their shard: one statement per shard (a thread's comments share one).
        let mut by_shard: std::collections::BTreeMap<LogicalShard, Vec<i64>> = Default::default();
        for id in ids {
            by_shard.entry(shard_of(id.0)).or_default().push(id.0);
        }
        let mut out = Vec::new();
        for (shard, ids) in by_shard {
            let found = read_on!(self, shard, ReadFrom::Replica, |c, n| {
                rows(
                    &c,
                    &n,
                    "SELECT comment_id, value FROM votes WHERE voter = $1 AND comment_id = ANY($2)",
                    &[&voter, &ids],
                )
                .await
            })?;
            out.extend(
                found
                    .iter()
                    .map(|r| (CommentId(r.get(0)), i64::from(r.get::<_, i32>(1)))),
            );
        }
        Ok(out)
    }

    async fn flag(
        &self,
        id: CommentId,
        flagger: &str,
        reason: &str,
    ) -> StoreResult<(i64, ThreadId)> {
        let shard = shard_of(id.0);
        write_tx!(self, shard, |tx, n| {
            let cm = load_comment(&tx, &n, id)
                .await?
                .filter(|cm| cm.status != CommentStatus::Deleted)
                .ok_or_else(|| DomainError::not_found("comment"))?;
            let added = exec(
                &tx,
                &n,
                "INSERT INTO flags (comment_id, flagger, shard, reason, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&id.0, &flagger, &sh(shard), &reason, &confab_core::now_ms()],
            )
            .await?;
            if added == 0 {
                return Ok((cm.flag_count, cm.thread_id));
            }
            let count: i64 = row(&tx, &n, "UPDATE comments SET flag_count = flag_count + 1 WHERE id = $1 RETURNING flag_count", &[&id.0])
                .await?
                .ok_or_else(DomainError::internal)?
                .get(0);
            Ok((count, cm.thread_id))
        })
    }

    async fn moderation_list(&self, forum: &Forum, q: &ModQuery) -> StoreResult<Vec<Comment>> {
        let search = q
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        // The application-level join: accounts matching the search come from the control
        // database first, then the shard query takes their ids.
        let (pat, accounts) = match &search {
            Some(s) => {
                let pat = like_pattern(s);
                let ids: Vec<i64> = control!(self, |c, n| {
                    Ok(rows(
                        &c,
                        &n,
                        "SELECT id FROM accounts WHERE username ILIKE $1 OR display_name ILIKE $1 OR email ILIKE $1 LIMIT 1000",
                        &[&pat],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect())
                })?;
                (Some(pat), ids)
            }
            None => (None, Vec::new()),
        };
        let status = match q.queue {
            Queue::Status(s) => Some(s.as_str()),
            _ => None,
        };
        let flagged = q.queue == Queue::Flagged;
        let before = q.before.map_or(i64::MAX, |b| b.0);
        let limit = q.limit as i64;
        let mut sql = format!(
            "SELECT {COMMENT_COLS} FROM comments WHERE forum_id = $1 AND id < $2 AND ($3::text IS NULL OR status = $3)"
        );
        if flagged {
            sql.push_str(" AND flag_count > 0 AND status <> 'deleted'");
        }
        sql.push_str(
            " AND ($4::text IS NULL OR body_md ILIKE $4 OR guest_name ILIKE $4 OR guest_email ILIKE $4 OR ip_hash = $5 \
             OR account_id = ANY($6)) ORDER BY id DESC LIMIT $7",
        );
        let term = search.clone().unwrap_or_default();
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                &sql,
                &[
                    &forum.id.0,
                    &before,
                    &status,
                    &pat,
                    &term,
                    &accounts,
                    &limit,
                ],
            )
            .await?
            .iter()
            .map(comment_row)
            .collect())
        })
    }

    async fn mod_log(
        &self,
        forum: &Forum,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<ModLogEntry>> {
        let before = before.unwrap_or(i64::MAX);
        let limit = limit as i64;
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT id, actor, action, comment_id, detail, created_at FROM mod_log \
                 WHERE forum_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                &[&forum.id.0, &before, &limit],
            )
            .await?
            .iter()
            .map(|r| ModLogEntry {
                id: r.get(0),
                actor: r.get::<_, Option<i64>>(1).map(AccountId),
                action: r.get(2),
                comment_id: r.get::<_, Option<i64>>(3).map(CommentId),
                detail: r.get(4),
                created_at: r.get(5),
            })
            .collect())
        })
    }

    async fn daily_counts(
        &self,
        forum: &Forum,
        days: u32,
        now: i64,
    ) -> StoreResult<Vec<(i64, i64)>> {
        const DAY: i64 = 86_400_000;
        let since = (now / DAY - i64::from(days) + 1) * DAY;
        let min_id = ((since - id::EPOCH_MS).max(0)) << (id::SHARD_BITS + id::SEQ_BITS);
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT created_at / $1 * $1 AS day, count(*) FROM comments WHERE forum_id = $2 AND id >= $3 \
                 AND created_at >= $4 GROUP BY day ORDER BY day",
                &[&DAY, &forum.id.0, &min_id, &since],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    async fn prune_idempotency(&self, before: i64) -> StoreResult<u64> {
        let mut total = 0;
        for s in self.r.servers() {
            let c = s.primary().await?;
            let n = self.r.counter();
            total += exec(
                &c,
                &n,
                "DELETE FROM idempotency WHERE created_at < $1",
                &[&before],
            )
            .await?;
        }
        Ok(total)
    }

    async fn claim_tasks(
        &self,
        kinds: &[String],
        limit: usize,
        lease_ms: i64,
        max_attempts: i64,
    ) -> StoreResult<Vec<Task>> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut first_err = None;
        for s in self.r.servers() {
            if out.len() >= limit {
                break;
            }
            let want = (limit - out.len()) as i64;
            match claim_on(&s, &self.r.counter(), kinds, want, lease_ms, max_attempts).await {
                Ok(mut got) => out.append(&mut got),
                // One server down must not stop the others' tasks.
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        match first_err {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    async fn next_task_due(&self, kinds: &[String]) -> StoreResult<Option<i64>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let mut best: Option<i64> = None;
        for s in self.r.servers() {
            let Ok(c) = s.primary().await else { continue };
            let n = self.r.counter();
            let r = row(
                &c,
                &n,
                "SELECT least((SELECT min(run_at) FROM tasks WHERE state = 'queued' AND kind = ANY($1) AND NOT EXISTS \
                 (SELECT 1 FROM shard_fence f WHERE f.logical = tasks.shard)), \
                 (SELECT min(locked_until) FROM tasks WHERE state = 'running' AND kind = ANY($1) AND NOT EXISTS \
                 (SELECT 1 FROM shard_fence f WHERE f.logical = tasks.shard)))",
                &[&kinds],
            )
            .await;
            if let Ok(Some(r)) = r {
                if let Some(t) = r.get::<_, Option<i64>>(0) {
                    best = Some(best.map_or(t, |b| b.min(t)));
                }
            }
        }
        Ok(best)
    }

    async fn complete_task(&self, id: i64, attempt: i64) -> StoreResult<bool> {
        write_tx!(self, shard_of(id), |tx, n| {
            Ok(exec(
                &tx,
                &n,
                "UPDATE tasks SET state = 'done', locked_until = NULL, updated_at = $1 WHERE id = $2 AND attempts = $3 AND state = 'running'",
                &[&confab_core::now_ms(), &id, &attempt],
            )
            .await?
                > 0)
        })
    }

    async fn fail_task(
        &self,
        id: i64,
        attempt: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> StoreResult<bool> {
        let state = if retry_at.is_some() {
            "queued"
        } else {
            "parked"
        };
        let error = clip(error, MAX_ERROR);
        write_tx!(self, shard_of(id), |tx, n| {
            Ok(exec(
                &tx,
                &n,
                "UPDATE tasks SET state = $1, run_at = coalesce($2, run_at), last_error = $3, locked_until = NULL, \
                 updated_at = $4 WHERE id = $5 AND attempts = $6 AND state = 'running'",
                &[&state, &retry_at, &error, &confab_core::now_ms(), &id, &attempt],
            )
            .await?
                > 0)
        })
    }

    async fn task(&self, id: i64) -> StoreResult<Option<Task>> {
        read_on!(self, shard_of(id), ReadFrom::Primary, |c, n| {
            Ok(row(
                &c,
                &n,
                &format!("SELECT {TASK_COLS} FROM tasks WHERE id = $1"),
                &[&id],
            )
            .await?
            .as_ref()
            .map(task_row))
        })
    }

    async fn list_tasks(
        &self,
        state: Option<TaskState>,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<Task>> {
        let before = before.unwrap_or(i64::MAX);
        let state = state.map(|s| s.as_str());
        let lim = limit as i64;
        let mut all = Vec::new();
        for s in self.r.servers() {
            let c = s.primary().await?;
            let n = self.r.counter();
            let got = rows(
                &c,
                &n,
                &format!("SELECT {TASK_COLS} FROM tasks WHERE id < $1 AND ($2::text IS NULL OR state = $2) ORDER BY id DESC LIMIT $3"),
                &[&before, &state, &lim],
            )
            .await?;
            all.extend(got.iter().map(task_row));
        }
        all.sort_by_key(|t| std::cmp::Reverse(t.id));
        all.truncate(limit);
        Ok(all)
    }

    async fn retry_task(&self, id: i64) -> StoreResult<bool> {
        let now = confab_core::now_ms();
        write_tx!(self, shard_of(id), |tx, n| {
            Ok(exec(
                &tx,
                &n,
                "UPDATE tasks SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1 WHERE id = $2 AND state = 'parked'",
                &[&now, &id],
            )
            .await?
                > 0)
        })
    }

    async fn prune_tasks(&self, before: i64, limit: usize) -> StoreResult<u64> {
        let lim = limit as i64;
        let mut total = 0u64;
        for s in self.r.servers() {
            if total as usize >= limit {
                break;
            }
            let c = s.primary().await?;
            let n = self.r.counter();
            total += row(
                &c,
                &n,
                "WITH gone AS (DELETE FROM tasks WHERE id IN \
                   (SELECT id FROM tasks WHERE state = 'done' AND updated_at < $1 ORDER BY id LIMIT $2) RETURNING id), \
                 effects AS (DELETE FROM task_effects WHERE task_id IN (SELECT id FROM gone)) \
                 SELECT count(*) FROM gone",
                &[&before, &lim],
            )
            .await?
            .map_or(0, |r| r.get::<_, i64>(0) as u64);
        }
        Ok(total)
    }

    async fn task_effects(&self, id: i64) -> StoreResult<Vec<String>> {
        read_on!(self, shard_of(id), ReadFrom::Primary, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT key FROM task_effects WHERE task_id = $1 ORDER BY key LIMIT 1000",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    async fn record_task_effect(&self, id: i64, key: &str) -> StoreResult<()> {
        if key.is_empty() || key.len() > 200 {
            return Err(DomainError::invalid("effect keys are 1-200 bytes"));
        }
        let shard = shard_of(id);
        write_tx!(self, shard, |tx, n| {
            exec(
                &tx,
                &n,
                "INSERT INTO task_effects (task_id, key, shard, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&id, &key, &sh(shard), &confab_core::now_ms()],
            )
            .await?;
            Ok(())
        })
    }

    async fn subscription(&self, forum: ForumId, email: &str) -> StoreResult<Option<Subscription>> {
        let shard = self.forum_shard(forum).await?;
        let email = email.to_lowercase();
        read_on!(self, shard, ReadFrom::Primary, |c, n| {
            Ok(row(&c, &n, "SELECT state, confirm_sent_at, updated_at, owner FROM subscriptions WHERE forum_id = $1 AND email = $2", &[&forum.0, &email])
                .await?
                .map(|r| Subscription {
                    state: SubState::parse(r.get(0)).unwrap_or(SubState::Unsubscribed),
                    confirm_sent_at: r.get(1),
                    updated_at: r.get(2),
                    owner: r.get(3),
                }))
        })
    }

    async fn set_subscription(
        &self,
        forum: &Forum,
        email: &str,
        state: SubState,
        owner: Option<&str>,
    ) -> StoreResult<()> {
        if email.is_empty() || email.len() > 254 {
            return Err(DomainError::invalid("email is not a valid address"));
        }
        let (id, shard, email) = (forum.id, forum.shard, email.to_lowercase());
        write_tx!(self, shard, |tx, n| {
            exec(
                &tx,
                &n,
                "INSERT INTO subscriptions (forum_id, email, shard, state, created_at, updated_at, owner) \
                 VALUES ($1, $2, $3, $4, $5, $5, coalesce($6, '')) \
                 ON CONFLICT (forum_id, email) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, \
                 owner = coalesce($6, subscriptions.owner)",
                &[&id.0, &email, &sh(shard), &state.as_str(), &confab_core::now_ms(), &owner],
            )
            .await?;
            Ok(())
        })
    }

    async fn claim_confirmation(
        &self,
        forum: ForumId,
        email: &str,
        owner: &str,
        task: i64,
        min_interval_ms: i64,
    ) -> StoreResult<bool> {
        let shard = self.forum_shard(forum).await?;
        let email = email.to_lowercase();
        let now = confab_core::now_ms();
        let cutoff = now.saturating_sub(min_interval_ms);
        write_tx!(self, shard, |tx, n| {
            Ok(exec(
                &tx,
                &n,
                "UPDATE subscriptions SET confirm_sent_at = $1, confirm_task = $2 \
                 WHERE forum_id = $3 AND email = $4 AND (state = 'pending' OR (state = 'confirmed' AND owner <> $6)) \
                 AND (confirm_sent_at IS NULL OR confirm_sent_at <= $5 OR confirm_task = $2)",
                &[&now, &task, &forum.0, &email, &cutoff, &owner],
            )
            .await?
                > 0)
        })
    }

    async fn reply_watcher(&self, comment: CommentId) -> StoreResult<Option<ReplyWatch>> {
        read_on!(self, shard_of(comment.0), ReadFrom::Primary, |c, n| {
            Ok(row(
                &c,
                &n,
                "SELECT email, owner FROM reply_notify WHERE comment_id = $1",
                &[&comment.0],
            )
            .await?
            .map(|r| ReplyWatch {
                email: r.get(0),
                owner: r.get(1),
            }))
        })
    }

    async fn forum_moderators(&self, forum: ForumId) -> StoreResult<Vec<Account>> {
        control!(self, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!(
                    "SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id IN \
                     (SELECT account_id FROM forum_moderators WHERE forum_id = $1) ORDER BY a.id LIMIT 100"
                ),
                &[&forum.0],
            )
            .await?
            .iter()
            .map(account_row)
            .collect())
        })
    }

    fn query_count(&self) -> u64 {
        self.r.total.load(std::sync::atomic::Ordering::Relaxed)
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

/// Claims due tasks on one server: parks tasks whose lease ran out after their last attempt,
/// then takes due ones with `FOR UPDATE SKIP LOCKED`, so many workers share a server without
/// waiting on each other. Tasks of a logical shard fenced here (being moved, or moved away and
/// not yet cleaned up) are left alone: their claims belong to the shard's new server.
async fn claim_on(
    s: &Server,
    n: &crate::Counter,
    kinds: &[String],
    limit: i64,
    lease_ms: i64,
    max_attempts: i64,
) -> StoreResult<Vec<Task>> {
    let c = s.primary().await?;
    let now = confab_core::now_ms();
    exec(
        &c,
        n,
        "UPDATE tasks SET state = 'parked', locked_until = NULL, updated_at = $1, \
         last_error = 'attempt ' || attempts || ' did not finish (lease expired: worker died or stalled)' \
         WHERE state = 'running' AND locked_until <= $1 AND attempts >= $2 AND kind = ANY($3) \
         AND NOT EXISTS (SELECT 1 FROM shard_fence f WHERE f.logical = tasks.shard)",
        &[&now, &max_attempts, &kinds],
    )
    .await?;
    let until = now.saturating_add(lease_ms);
    let got = rows(
        &c,
        n,
        &format!(
            "WITH queued AS (SELECT id, false AS expired, run_at AS t FROM tasks \
               WHERE state = 'queued' AND run_at <= $1 AND kind = ANY($2) AND {NOT_FENCED} \
               ORDER BY run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED), \
             lost AS (SELECT id, true AS expired, locked_until AS t FROM tasks \
               WHERE state = 'running' AND locked_until <= $1 AND kind = ANY($2) AND {NOT_FENCED} \
               ORDER BY locked_until, id LIMIT $3 FOR UPDATE SKIP LOCKED), \
             pick AS (SELECT * FROM (SELECT * FROM queued UNION ALL SELECT * FROM lost) due ORDER BY expired, t, id LIMIT $3) \
             UPDATE tasks SET state = 'running', attempts = tasks.attempts + 1, locked_until = $4, updated_at = $1, \
               last_error = CASE WHEN pick.expired THEN 'attempt ' || tasks.attempts || \
                 ' did not finish (lease expired: worker died or stalled)' ELSE tasks.last_error END \
             FROM pick WHERE tasks.id = pick.id RETURNING {}",
            TASK_COLS.split(", ").map(|c| format!("tasks.{c}")).collect::<Vec<_>>().join(", "),
            NOT_FENCED = "NOT EXISTS (SELECT 1 FROM shard_fence f WHERE f.logical = tasks.shard)",
        ),
        &[&now, &kinds, &limit, &until],
    )
    .await?;
    let mut out: Vec<Task> = got.iter().map(task_row).collect();
    out.sort_by_key(|t| (t.run_at, t.id));
    Ok(out)
}

/// The write transaction of a new comment: thread on first comment, comment, counters,
/// idempotency record, reply-mail request and tasks, all or nothing.
async fn insert_comment<C: GenericClient + Sync>(
    tx: &C,
    n: &crate::Counter,
    new: &NewComment,
) -> StoreResult<Posted> {
    let forum = &new.forum;
    let shard = sh(forum.shard);
    if let Some(idem) = &new.idempotency {
        let (scope, key) = (&idem.scope, &idem.key);
        // Concurrent retries of one request queue here; the later one then finds the first's row.
        exec(
            tx,
            n,
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text || ' ' || $2::text, 20260101))",
            &[scope, key],
        )
        .await?;
        let prior = row(
            tx,
            n,
            "SELECT comment_id, request_hash FROM idempotency WHERE scope = $1 AND key = $2",
            &[scope, key],
        )
        .await?;
        if let Some(r) = prior {
            idem.check_replay(r.get(1))?;
            let comment = load_comment(tx, n, CommentId(r.get(0)))
                .await?
                .ok_or_else(DomainError::internal)?;
            let thread = load_thread(tx, n, comment.thread_id)
                .await?
                .ok_or_else(DomainError::internal)?;
            return Ok(Posted {
                comment,
                thread,
                replayed: true,
            });
        }
    }
    // Creates the thread on first comment; concurrent first comments meet on the unique key.
    let thread = row(
        tx,
        n,
        &format!(
            "WITH ins AS (INSERT INTO threads (id, shard, forum_id, ident, url, title, created_at) \
               VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6) ON CONFLICT (forum_id, ident) DO NOTHING RETURNING {THREAD_COLS}) \
             SELECT {THREAD_COLS} FROM ins UNION ALL \
             SELECT {THREAD_COLS} FROM threads WHERE forum_id = $2 AND ident = $3 AND NOT EXISTS (SELECT 1 FROM ins)"
        ),
        &[&shard, &forum.id.0, &new.ident.as_str(), &new.url, &new.title, &new.created_at],
    )
    .await?
    .as_ref()
    .map(thread_row);
    let t = match thread {
        Some(t) => t,
        // The other transaction's thread is not visible to this statement's snapshot yet.
        None => row(
            tx,
            n,
            &format!("SELECT {THREAD_COLS} FROM threads WHERE forum_id = $1 AND ident = $2"),
            &[&forum.id.0, &new.ident.as_str()],
        )
        .await?
        .as_ref()
        .map(thread_row)
        .ok_or_else(|| {
            DomainError::new(
                ErrorCode::Unavailable,
                "the thread is being created, retry shortly",
            )
        })?,
    };
    if t.closed {
        return Err(DomainError::new(
            ErrorCode::ThreadClosed,
            "this thread is closed to new comments",
        ));
    }
    if t.url.is_none() && new.url.is_some() || t.title.is_none() && new.title.is_some() {
        exec(
            tx,
            n,
            "UPDATE threads SET url = coalesce(url, $1), title = coalesce(title, $2) WHERE id = $3",
            &[&new.url, &new.title, &t.id.0],
        )
        .await?;
    }
    let thread_id = t.id;
    let (parent_id, depth) = match new.parent_id {
        None => (None, 0),
        Some(pid) => {
            let mut p = load_comment(tx, n, pid)
                .await?
                .filter(|p| p.thread_id == thread_id && p.status != CommentStatus::Deleted)
                .ok_or_else(|| {
                    DomainError::new(
                        ErrorCode::NotFound,
                        "the comment replied to does not exist in this thread",
                    )
                })?;
            while p.depth >= new.max_depth {
                let Some(up) = p.parent_id else { break };
                p = load_comment(tx, n, up)
                    .await?
                    .ok_or_else(DomainError::internal)?;
            }
            (Some(p.id), p.depth + 1)
        }
    };
    let (account, gname, gemail, gurl) = match &new.author {
        Author::Account(a) => (Some(a.0), None, None, None),
        Author::Guest { name, email, url } => {
            (None, Some(name.clone()), email.clone(), url.clone())
        }
    };
    let id: i64 = row(
        tx,
        n,
        "INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
         guest_email, guest_url, body_md, body_html, status, created_at, ip_hash) \
         VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        &[
            &shard,
            &thread_id.0,
            &forum.id.0,
            &parent_id.map(|p: CommentId| p.0),
            &depth,
            &account,
            &new.anon_id,
            &gname,
            &gemail,
            &gurl,
            &new.body_md,
            &new.body_html,
            &new.status.as_str(),
            &new.created_at,
            &new.ip_hash,
        ],
    )
    .await?
    .ok_or_else(DomainError::internal)?
    .get(0);
    let id = CommentId(id);
    let comment = new.inserted(id, thread_id, parent_id, depth);
    let thread = shift_counters(tx, n, &comment, CommentStatus::Deleted, new.status).await?;
    if let Some(idem) = &new.idempotency {
        exec(
            tx,
            n,
            "INSERT INTO idempotency (scope, key, shard, comment_id, created_at, request_hash) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&idem.scope, &idem.key, &shard, &id.0, &new.created_at, &idem.request_hash],
        )
        .await?;
    }
    if let Some(watch) = &new.notify {
        let email = &watch.email;
        if email.is_empty() || email.len() > 254 {
            return Err(DomainError::invalid("email is not a valid address"));
        }
        let now = confab_core::now_ms();
        exec(
            tx,
            n,
            "INSERT INTO reply_notify (comment_id, shard, forum_id, email, created_at, owner) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&id.0, &shard, &forum.id.0, email, &now, &watch.owner],
        )
        .await?;
        exec(
            tx,
            n,
            "INSERT INTO subscriptions (forum_id, email, shard, state, created_at, updated_at) VALUES ($1, $2, $3, 'pending', $4, $4) \
             ON CONFLICT (forum_id, email) DO UPDATE SET state = 'pending', updated_at = excluded.updated_at \
             WHERE subscriptions.state <> 'confirmed'",
            &[&forum.id.0, &email.to_lowercase(), &shard, &now],
        )
        .await?;
    }
    for t in &new.tasks {
        let mut payload = t.payload.clone();
        if let Some(o) = payload.as_object_mut() {
            o.insert(
                "comment_id".into(),
                serde_json::Value::String(id.0.to_string()),
            );
        }
        insert_task(tx, n, forum.shard, t, &payload).await?;
    }
    Ok(Posted {
        comment,
        thread,
        replayed: false,
    })
}

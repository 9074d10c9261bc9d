//! The embedded backend: one SQLite file holds the control tables and every shard's tables.
//!
//! Rows keep their logical shard in a `shard` column even here, so `confab migrate-data` can
//! later copy them to a sharded PostgreSQL deployment shard by shard.

mod challenge;
mod comments;
mod control;
mod export;
mod gdpr;
mod identity;
mod import;
mod media;
mod mod_context;
mod moderation;
mod notify;
mod outbox;
mod pool;
mod reactions;
mod rows;
mod schema;
mod spam;
mod votes;

use crate::{
    like_pattern, CommentEdit, CommentStore, ControlStore, ModQuery, ModerationStore, NewAccount,
    NewComment, NewTask, OutboxStore, Posted, Queue, ReadFrom, StatusChange, Store, StoreResult,
    ThreadPatch, Visibility, VoteCounts, VoteStore, Written,
};
use crate::{AuthorKey, Flagged, Reacted, ReactionStore};
use async_trait::async_trait;
use confab_core::cursor::{Cursor, Sort};
use confab_core::id::{self, AccountId, CommentId, ForumId, IdGenerator, LogicalShard, ThreadId};
use confab_core::ident::Ident;
use confab_core::model::{
    Account, Author, Ban, BanKind, BanState, BanSubject, Comment, CommentStatus, Forum,
    ForumSettings, ModLogEntry, Thread,
};
use confab_core::reaction::{Reaction, ReactionCounts};
use confab_core::{DomainError, ErrorCode};
use pool::{db_err, Counter, Pool};
use rows::*;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::Arc;

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    pool: Pool,
    ids: Arc<IdGenerator>,
    /// The database file (`confab backup` opens a connection of its own on it).
    path: std::path::PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path, readers: usize) -> StoreResult<SqliteStore> {
        let pool = Pool::open(path, readers, migrate)?;
        Ok(SqliteStore {
            pool,
            ids: Arc::new(IdGenerator::new()),
            path: path.to_path_buf(),
        })
    }

    /// Applies pending migrations to the file and returns the versions applied.
    pub fn migrate_file(path: &Path) -> StoreResult<Vec<i64>> {
        let mut conn = Connection::open(path).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        migrate_report(&mut conn)
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    migrate_report(conn).map(|_| ())
}

fn migrate_report(conn: &mut Connection) -> StoreResult<Vec<i64>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(db_err)?;
    let mut applied = Vec::new();
    for (version, sql) in schema::MIGRATIONS {
        let done: Option<i64> = conn
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?",
                [version],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        if done.is_some() {
            continue;
        }
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute_batch(sql).map_err(db_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
            params![version, confab_core::now_ms()],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        applied.push(*version);
    }
    Ok(applied)
}

// ---------------------------------------------------------------- statement helpers

fn rows<T>(
    conn: &Connection,
    n: &Counter,
    sql: &str,
    args: &[Value],
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    n.add(1);
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    let it = st
        .query_map(params_from_iter(args.iter()), map)
        .map_err(db_err)?;
    it.collect::<rusqlite::Result<Vec<T>>>().map_err(db_err)
}

fn row<T>(
    conn: &Connection,
    n: &Counter,
    sql: &str,
    args: &[Value],
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Option<T>> {
    n.add(1);
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    st.query_row(params_from_iter(args.iter()), map)
        .optional()
        .map_err(db_err)
}

fn exec(conn: &Connection, n: &Counter, sql: &str, args: &[Value]) -> StoreResult<usize> {
    n.add(1);
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    st.execute(params_from_iter(args.iter())).map_err(db_err)
}

fn int(v: i64) -> Value {
    Value::Integer(v)
}
fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}
fn opt_text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, text)
}
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[async_trait]
impl Store for SqliteStore {
    fn query_count(&self) -> u64 {
        self.pool.statements()
    }

    fn statements(&self) -> Vec<crate::ShardStatements> {
        vec![crate::ShardStatements {
            shard: EMBEDDED.to_string(),
            primary: self.pool.statements(),
            replica: 0,
        }]
    }

    async fn outside_writes(&self) -> StoreResult<Option<i64>> {
        // On the writer's connection the version moves only for commits of other connections,
        // and this process has no other writing connection: it counts other processes' writes
        // (a PASSIVE checkpoint, as the checkpointer runs, does not move it).
        self.pool
            .write(|c, n| {
                n.add(1);
                c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
                    .map(Some)
                    .map_err(db_err)
            })
            .await
    }
}

/// The name of the embedded store's one shard (every logical shard is in the one file), in
/// `/statz` and the metrics' `shard` label.
pub const EMBEDDED: &str = "embedded";

//! Online moves of one logical shard between physical servers (`confab shards move`), and a
//! consistency check of the whole deployment (`confab shards verify`).
//!
//! A move of logical shard L from server S (its owner now) to server T goes through phases
//! recorded in the control database's `shard_moves`, so a move interrupted anywhere (the process
//! killed, a server restarted) is finished by running the same move again:
//!
//! 1. `copy`: every row of L, table by table ([`SHARD_TABLES`] order), read from one
//!    repeatable-read snapshot of S and upserted into T in batches. Writers keep writing to S.
//! 2. `catchup`: passes that copy only the rows changed since the previous pass's snapshot (a
//!    row whose `xmin` is at or after that snapshot's xmin), until a pass is small.
//! 3. `fenced`: S gets a `moving` fence for L, set under the exclusive advisory lock (which
//!    waits for the writes in flight; later writers meet the fence, wait and retry). A last pass
//!    copies what changed, rows of L on T that S no longer has are deleted, and every table's
//!    count and checksum must match on both sides: else the fence is lifted, the move is
//!    recorded `failed` and the map is left alone.
//! 4. `flipped`: one control transaction points L at T, bumps the map version and records the
//!    phase; S's fence becomes `moved` (writers that still route to S reload the map and retry).
//! 5. `done`: after a grace period (every node has reloaded the map), L's rows are deleted from
//!    S in batches. S keeps the `moved` fence.
//!
//! Resuming: `copy` and `catchup` copy again from the start (upserts make that safe); `fenced`
//! lifts the fence first (the map was not flipped: the flip and its record commit together), so
//! writers are not held while it copies again; `flipped` finishes the cleanup.

use super::router::{redact, Router, Server};
use super::schema::SHARD_TABLES;
use crate::StoreResult;
use confab_core::id::{LogicalShard, LOGICAL_SHARDS};
use confab_core::{DomainError, ErrorCode};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, GenericClient, IsolationLevel, NoTls};

/// The advisory lock key (first half) writers take shared and a move takes exclusive, per
/// logical shard (see `confab_write_shard` in the shard schema).
pub const FENCE_LOCK: i32 = 20_260_101;
/// Taken (per logical shard) on the control database by the process moving it.
const MOVE_LOCK: i32 = 20_260_102;

/// Where a move is. Stored in `shard_moves.phase` as [`Phase::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Copy,
    Catchup,
    Fenced,
    Flipped,
    Done,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Copy => "copy",
            Phase::Catchup => "catchup",
            Phase::Fenced => "fenced",
            Phase::Flipped => "flipped",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Some(match s {
            "copy" => Phase::Copy,
            "catchup" => Phase::Catchup,
            "fenced" => Phase::Fenced,
            "flipped" => Phase::Flipped,
            "done" => Phase::Done,
            "failed" => Phase::Failed,
            _ => return None,
        })
    }

    /// A move in this phase is still under way (or was interrupted).
    pub fn unfinished(self) -> bool {
        !matches!(self, Phase::Done | Phase::Failed)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a move runs.
#[derive(Debug, Clone)]
pub struct MoveOptions {
    /// Wait between the flip and deleting the source's rows, so every node has reloaded the
    /// map (about 3× `map_refresh_ms`).
    pub grace: Duration,
    /// Rows per copy batch.
    pub batch: usize,
    /// A catch-up pass copying at most this many rows ends the catch-up: the fence comes next.
    pub small_pass: u64,
    /// Catch-up passes at most, small or not.
    pub max_passes: u32,
    /// How long the target's replicas are waited for before the fence (they should have
    /// replayed the copy) and, shorter, under the fence before the flip.
    pub replica_wait: Duration,
    pub replica_wait_fenced: Duration,
    /// Test hook: stop (with an error, as if the process died) once this phase's work is done:
    /// `Copy` after the first full copy, `Catchup` before fencing, `Fenced` with the fence set
    /// and the target verified but the map not flipped, `Flipped` before the cleanup.
    pub stop_after: Option<Phase>,
}

impl Default for MoveOptions {
    fn default() -> Self {
        MoveOptions {
            grace: Duration::from_secs(3),
            batch: 1000,
            small_pass: 200,
            max_passes: 10,
            replica_wait: Duration::from_secs(5),
            replica_wait_fenced: Duration::from_secs(1),
            stop_after: None,
        }
    }
}

/// One table's part of a move.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableReport {
    pub table: &'static str,
    /// Rows written to the target, all passes together (a row changed during the move counts
    /// once per pass that copied it).
    pub copied: u64,
    /// Rows of the logical shard in this table when verified (equal on both sides).
    pub rows: u64,
    /// Rows deleted on the target because the source no longer had them.
    pub removed: u64,
    /// Rows deleted from the source in the cleanup.
    pub cleaned: u64,
}

/// What a move did.
#[derive(Debug, Clone, Default)]
pub struct MoveReport {
    pub logical: u16,
    pub source: String,
    pub target: String,
    /// The target owned the shard already: nothing was done.
    pub noop: bool,
    /// The phase an interrupted move was resumed from.
    pub resumed_from: Option<Phase>,
    pub tables: Vec<TableReport>,
    /// Copy passes: the first full copy, catch-up passes and the ones under the fence.
    pub passes: u32,
    /// From the fence's commit to the `moved` fence (writers to the shard wait meanwhile).
    pub fenced: Duration,
    pub total: Duration,
}

impl fmt::Display for MoveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.noop {
            return write!(
                f,
                "logical shard {} is on {} already: nothing to do",
                self.logical, self.target
            );
        }
        writeln!(
            f,
            "moved logical shard {} from {} to {}",
            self.logical, self.source, self.target
        )?;
        if let Some(p) = self.resumed_from {
            writeln!(f, "  resumed an interrupted move (phase {p})")?;
        }
        writeln!(
            f,
            "  {:<14} {:>10} {:>10} {:>8} {:>10}",
            "table", "copied", "rows", "removed", "cleaned"
        )?;
        for t in &self.tables {
            writeln!(
                f,
                "  {:<14} {:>10} {:>10} {:>8} {:>10}",
                t.table, t.copied, t.rows, t.removed, t.cleaned
            )?;
        }
        write!(
            f,
            "  {} copy passes; writers fenced for {} ms; total {:.1} s",
            self.passes,
            self.fenced.as_millis(),
            self.total.as_secs_f64()
        )
    }
}

// ---------------------------------------------------------------- connections and tables

/// An error from a server, with what was being done (operators read these).
pub(crate) fn db(what: impl Into<String>) -> impl Fn(tokio_postgres::Error) -> DomainError {
    let what = what.into();
    move |e| {
        let msg = super::cause::describe(&e, None);
        DomainError::new(ErrorCode::Unavailable, format!("{what}: {msg}"))
    }
}

/// A connection of its own (not pooled): session locks, long transactions and statements.
pub(crate) async fn connect(dsn: &str, timeout: Duration) -> StoreResult<Client> {
    let mut cfg: tokio_postgres::Config = dsn
        .parse()
        .map_err(|e| DomainError::invalid(format!("bad PostgreSQL DSN {}: {e}", redact(dsn))))?;
    cfg.application_name("confab-shards");
    cfg.connect_timeout(timeout);
    cfg.options("-c statement_timeout=600000 -c lock_timeout=5000 -c idle_in_transaction_session_timeout=600000");
    let at = super::cause::Target::of(&cfg);
    let (client, conn) = cfg.connect(NoTls).await.map_err(|e| {
        DomainError::new(
            ErrorCode::Unavailable,
            super::cause::connect_failed(&at, &e),
        )
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "shard tool connection ended");
        }
    });
    Ok(client)
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A shard table's columns (as the server has them) and primary key.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub name: &'static str,
    pub cols: Vec<String>,
    pub pk: Vec<String>,
}

impl Table {
    pub async fn load<C: GenericClient>(c: &C, name: &'static str, pk: &str) -> StoreResult<Table> {
        let cols: Vec<String> = c
            .query(
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = $1 ORDER BY ordinal_position",
                &[&name],
            )
            .await
            .map_err(db(format!("reading the columns of {name}")))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if cols.is_empty() {
            return Err(DomainError::new(
                ErrorCode::Internal,
                format!("table {name} is missing (is the server migrated?)"),
            ));
        }
        Ok(Table {
            name,
            cols,
            pk: pk.split(',').map(|s| s.trim().to_string()).collect(),
        })
    }

    /// Every shard table, in copy order.
    pub async fn all(c: &Client) -> StoreResult<Vec<Table>> {
        let mut out = Vec::new();
        for (name, pk) in SHARD_TABLES {
            out.push(Table::load(c, name, pk).await?);
        }
        Ok(out)
    }

    fn list(cols: &[String], prefix: &str) -> String {
        cols.iter()
            .map(|c| format!("{prefix}{}", quote(c)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn pk_list(&self, prefix: &str) -> String {
        Table::list(&self.pk, prefix)
    }

    /// `INSERT` of a JSON array of rows (`$1`, text), updating rows that exist and differ.
    pub fn upsert_sql(&self) -> String {
        let t = quote(self.name);
        let rest: Vec<String> = self
            .cols
            .iter()
            .filter(|c| !self.pk.contains(c))
            .cloned()
            .collect();
        let tail = if rest.is_empty() {
            "DO NOTHING".to_string()
        } else {
            let sets = rest
                .iter()
                .map(|c| format!("{0} = excluded.{0}", quote(c)))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "DO UPDATE SET {sets} WHERE ROW({}) IS DISTINCT FROM ROW({})",
                Table::list(&rest, &format!("{t}.")),
                Table::list(&rest, "excluded.")
            )
        };
        format!(
            "INSERT INTO {t} SELECT * FROM json_populate_recordset(NULL::{t}, $1::text::json) ON CONFLICT ({}) {tail}",
            self.pk_list("")
        )
    }

    /// Row count and an order-independent checksum (sum of 64-bit row hashes) of one logical
    /// shard's rows, the columns named in this server's order so both sides hash alike.
    fn checksum_sql(&self) -> String {
        format!(
            "SELECT count(*), coalesce(sum(('x' || left(md5(ROW({})::text), 16))::bit(64)::bigint::numeric), 0)::text \
             FROM {} WHERE shard = $1",
            Table::list(&self.cols, ""),
            quote(self.name)
        )
    }
}

/// Upserts a batch of rows given as JSON texts.
pub(crate) async fn upsert<C: GenericClient>(
    c: &C,
    sql: &str,
    rows: &[String],
) -> StoreResult<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut json = String::with_capacity(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    json.push('[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(r);
    }
    json.push(']');
    c.execute(sql, &[&json])
        .await
        .map_err(db("writing rows to the target"))?;
    Ok(rows.len() as u64)
}

// ---------------------------------------------------------------- copy passes

/// One pass: from one repeatable-read snapshot of the source, copies the shard's rows of every
/// table (only those changed at or after the `since` snapshot xmin, if given) to the target.
/// Returns this pass's snapshot xmin (the next pass's `since`) and the rows copied.
#[allow(clippy::too_many_arguments)]
async fn copy_pass(
    src: &mut Client,
    dst: &Client,
    l: i32,
    since: Option<i64>,
    tables: &[Table],
    batch: usize,
    report: &mut [TableReport],
    progress: &dyn Fn(&str),
) -> StoreResult<(i64, u64)> {
    let tx = src
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db("starting the copy on the source"))?;
    let snap: i64 = tx
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await
        .map_err(db("reading the source's snapshot"))?
        .get(0);
    let mut total = 0;
    for (t, rep) in tables.iter().zip(report.iter_mut()) {
        let upsert_sql = t.upsert_sql();
        // A row changed by a transaction that had not committed when the previous pass's
        // snapshot was taken has an xmin at or after that snapshot's xmin (modulo 2^32 as the
        // server compares xids; a few older rows may match too, which is harmless).
        let (sql, since32) = match since {
            None => (
                format!(
                    "SELECT row_to_json(t)::text FROM {} t WHERE shard = $1",
                    quote(t.name)
                ),
                None,
            ),
            Some(x) => (
                format!(
                    "SELECT row_to_json(t)::text FROM {} t WHERE shard = $1 \
                     AND ((t.xmin::text::bigint - $2) & 4294967295) < 2147483648",
                    quote(t.name)
                ),
                Some(x & 0xffff_ffff),
            ),
        };
        let st = tx
            .prepare(&sql)
            .await
            .map_err(db(format!("reading {} on the source", t.name)))?;
        let portal = match &since32 {
            None => tx.bind(&st, &[&l]).await,
            Some(s) => tx.bind(&st, &[&l, s]).await,
        }
        .map_err(db(format!("reading {} on the source", t.name)))?;
        let mut n = 0;
        loop {
            let rows = tx
                .query_portal(&portal, batch.max(1) as i32)
                .await
                .map_err(db(format!("reading {} on the source", t.name)))?;
            if rows.is_empty() {
                break;
            }
            let texts: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            n += upsert(dst, &upsert_sql, &texts).await?;
            if texts.len() < batch.max(1) {
                break;
            }
        }
        rep.copied += n;
        total += n;
        if since.is_none() || n > 0 {
            progress(&format!("  {:<14} {n} rows", t.name));
        }
    }
    tx.commit()
        .await
        .map_err(db("ending the copy on the source"))?;
    Ok((snap, total))
}

async fn checksum(c: &Client, t: &Table, l: i32, side: &str) -> StoreResult<(i64, String)> {
    let r = c
        .query_one(&t.checksum_sql(), &[&l])
        .await
        .map_err(db(format!("checksumming {} on the {side}", t.name)))?;
    Ok((r.get(0), r.get(1)))
}

/// Deletes the shard's rows on the target whose primary key the source no longer has.
async fn delete_missing(
    src: &Client,
    dst: &mut Client,
    t: &Table,
    l: i32,
    batch: usize,
) -> StoreResult<u64> {
    let tname = quote(t.name);
    let keys_json =
        t.pk.iter()
            .map(|c| format!("'{}', {}", c.replace('\'', "''"), quote(c)))
            .collect::<Vec<_>>()
            .join(", ");
    let k_json =
        t.pk.iter()
            .map(|c| format!("'{}', k.{}", c.replace('\'', "''"), quote(c)))
            .collect::<Vec<_>>()
            .join(", ");
    let (tk, kk) = (t.pk_list("t."), t.pk_list("k."));
    let missing_sql = format!(
        "SELECT json_build_object({k_json})::text FROM json_populate_recordset(NULL::{tname}, $1::text::json) k \
         WHERE NOT EXISTS (SELECT 1 FROM {tname} t WHERE ({tk}) = ({kk}))"
    );
    let mut missing = Vec::new();
    {
        let tx = dst
            .transaction()
            .await
            .map_err(db("reading keys on the target"))?;
        let st = tx
            .prepare(&format!(
                "SELECT json_build_object({keys_json})::text FROM {tname} WHERE shard = $1"
            ))
            .await
            .map_err(db(format!("reading {} keys on the target", t.name)))?;
        let portal = tx
            .bind(&st, &[&l])
            .await
            .map_err(db(format!("reading {} keys on the target", t.name)))?;
        loop {
            let rows = tx
                .query_portal(&portal, batch.max(1) as i32)
                .await
                .map_err(db(format!("reading {} keys on the target", t.name)))?;
            if rows.is_empty() {
                break;
            }
            let json = format!(
                "[{}]",
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            for r in src
                .query(&missing_sql, &[&json])
                .await
                .map_err(db(format!("comparing {} keys", t.name)))?
            {
                missing.push(r.get::<_, String>(0));
            }
        }
        tx.commit()
            .await
            .map_err(db("reading keys on the target"))?;
    }
    let mut gone = 0;
    for chunk in missing.chunks(batch.max(1)) {
        let json = format!("[{}]", chunk.join(","));
        gone += dst
            .execute(
                &format!("DELETE FROM {tname} t USING json_populate_recordset(NULL::{tname}, $1::text::json) k WHERE ({tk}) = ({kk})"),
                &[&json],
            )
            .await
            .map_err(db(format!("deleting {} rows on the target", t.name)))?;
    }
    Ok(gone)
}

// ---------------------------------------------------------------- fences and the map

async fn set_fence(c: &Client, l: i32, state: &str) -> StoreResult<()> {
    c.execute(
        "INSERT INTO shard_fence (logical, state, since) VALUES ($1, $2, $3) \
         ON CONFLICT (logical) DO UPDATE SET state = excluded.state, since = excluded.since",
        &[&l, &state, &confab_core::now_ms()],
    )
    .await
    .map_err(db(format!("setting the {state} fence")))?;
    Ok(())
}

/// Sets the `moving` fence under the exclusive advisory lock, which waits for the writes in
/// flight (they hold it shared until they commit); released at once. New writers queue behind
/// a waiting exclusive request, so it waits at most a second at a time: if a long write holds
/// the lock, it lets the queue through and tries again.
async fn fence(c: &Client, l: i32) -> StoreResult<()> {
    let mut last = None;
    for _ in 0..5 {
        c.batch_execute("SET lock_timeout = 1000")
            .await
            .map_err(db("taking the fence lock"))?;
        let got = c
            .execute("SELECT pg_advisory_lock($1, $2)", &[&FENCE_LOCK, &l])
            .await;
        c.batch_execute("RESET lock_timeout")
            .await
            .map_err(db("taking the fence lock"))?;
        match got {
            Ok(_) => {
                let set = set_fence(c, l, "moving").await;
                c.execute("SELECT pg_advisory_unlock($1, $2)", &[&FENCE_LOCK, &l])
                    .await
                    .map_err(db("releasing the fence lock"))?;
                return set;
            }
            Err(e) => {
                last = Some(db("taking the fence lock")(e));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Err(last.unwrap_or_else(DomainError::internal))
}

async fn lift_fence(c: &Client, l: i32) -> StoreResult<()> {
    c.execute("DELETE FROM shard_fence WHERE logical = $1", &[&l])
        .await
        .map_err(db("lifting the fence"))?;
    Ok(())
}

async fn set_phase(
    control: &Client,
    l: i32,
    source: i32,
    target: i32,
    phase: Phase,
) -> StoreResult<()> {
    let now = confab_core::now_ms();
    control
        .execute(
            "INSERT INTO shard_moves (logical, source_id, target_id, phase, started_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (logical) DO UPDATE SET source_id = excluded.source_id, target_id = excluded.target_id, \
             phase = excluded.phase, updated_at = excluded.updated_at, \
             started_at = CASE WHEN shard_moves.phase IN ('done', 'failed') THEN excluded.started_at ELSE shard_moves.started_at END",
            &[&l, &source, &target, &phase.as_str(), &now],
        )
        .await
        .map_err(db("recording the move's phase"))?;
    Ok(())
}

/// Points the logical shard at `target` (an override, or none when the range owns it), bumps
/// the map version and records `flipped`, in one control transaction. On failure, also says
/// whether the server refused it (so it surely did not commit) or the connection failed (it may
/// have).
async fn flip(control: &mut Client, l: i32, target: i32) -> Result<(), (DomainError, bool)> {
    let fail = |e: tokio_postgres::Error| {
        let refused = e.as_db_error().is_some();
        (db("flipping the map")(e), refused)
    };
    let tx = control.transaction().await.map_err(fail)?;
    let range_owner: Option<i32> = tx
        .query_opt(
            "SELECT server_id FROM shard_ranges WHERE lo <= $1 AND hi >= $1",
            &[&l],
        )
        .await
        .map_err(fail)?
        .map(|r| r.get(0));
    if range_owner == Some(target) {
        tx.execute("DELETE FROM shard_overrides WHERE logical = $1", &[&l])
            .await
            .map_err(fail)?;
    } else {
        tx.execute(
            "INSERT INTO shard_overrides (logical, server_id) VALUES ($1, $2) ON CONFLICT (logical) DO UPDATE SET server_id = excluded.server_id",
            &[&l, &target],
        )
        .await
        .map_err(fail)?;
    }
    tx.execute("UPDATE shard_map_version SET version = version + 1", &[])
        .await
        .map_err(fail)?;
    tx.execute(
        "UPDATE shard_moves SET phase = 'flipped', updated_at = $2 WHERE logical = $1",
        &[&l, &confab_core::now_ms()],
    )
    .await
    .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(())
}

/// Waits (up to `within`) until every answering replica of the target has replayed the
/// target's current WAL position; returns those that did not.
async fn wait_replicas(
    dst: &Client,
    replicas: &[(String, Option<Client>)],
    within: Duration,
) -> StoreResult<Vec<String>> {
    if replicas.is_empty() {
        return Ok(Vec::new());
    }
    let lsn: String = dst
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(db("reading the target's WAL position"))?
        .get(0);
    let deadline = Instant::now() + within;
    let mut behind = Vec::new();
    for (dsn, c) in replicas {
        let Some(c) = c else {
            behind.push(dsn.clone());
            continue;
        };
        loop {
            let ok = c
                .query_one(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, true)",
                    &[&lsn],
                )
                .await
                .map(|r| r.get::<_, bool>(0));
            match ok {
                Ok(true) => break,
                Ok(false) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                _ => {
                    behind.push(dsn.clone());
                    break;
                }
            }
        }
    }
    Ok(behind)
}

fn stop_if(opts: &MoveOptions, done: Phase) -> StoreResult<()> {
    if opts.stop_after == Some(done) {
        return Err(DomainError::new(
            ErrorCode::Unavailable,
            format!("move stopped after phase {done} (MoveOptions::stop_after)"),
        ));
    }
    Ok(())
}

fn server_named(r: &Router, name: &str) -> StoreResult<Arc<Server>> {
    r.servers()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| DomainError::not_found(&format!("shard server {name}")))
}

// ---------------------------------------------------------------- the move

/// Moves logical shard `logical` to the server named `target`, online; see the module docs.
/// A move to the server that owns the shard already does nothing; running the same move again
/// after an interruption finishes it; a different move of a shard whose move is unfinished is
/// refused.
pub async fn move_shard(
    r: &Arc<Router>,
    logical: u16,
    target: &str,
    opts: MoveOptions,
    progress: impl Fn(&str),
) -> StoreResult<MoveReport> {
    let started = Instant::now();
    LogicalShard::new(logical).ok_or_else(|| {
        DomainError::invalid(format!("logical shards are 0-{}", LOGICAL_SHARDS - 1))
    })?;
    let l = i32::from(logical);
    let timeout = Duration::from_millis(r.opts.connect_timeout_ms.max(1000));
    let mut control = connect(r.opts.control.expose(), timeout).await?;
    // One mover per logical shard. (A mover that died holds the lock until its server notices
    // the connection is gone: wait a little for that.)
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let locked: bool = control
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&MOVE_LOCK, &l])
            .await
            .map_err(db("locking the move"))?
            .get(0);
        if locked {
            break;
        }
        if Instant::now() >= deadline {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                format!("another process is moving logical shard {l} right now"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = move_locked(r, &mut control, logical, target, &opts, &progress, started).await;
    let _ = control
        .execute("SELECT pg_advisory_unlock($1, $2)", &[&MOVE_LOCK, &l])
        .await;
    out
}

/// The move, with its lock held on `control`.
async fn move_locked(
    r: &Arc<Router>,
    control: &mut Client,
    logical: u16,
    target: &str,
    opts: &MoveOptions,
    progress: &dyn Fn(&str),
    started: Instant,
) -> StoreResult<MoveReport> {
    let shard = LogicalShard::new(logical).ok_or_else(DomainError::internal)?;
    let l = i32::from(logical);
    let timeout = Duration::from_millis(r.opts.connect_timeout_ms.max(1000));
    r.refresh(true).await?;
    let map = r.map();
    let tgt = server_named(r, target)?;
    let name_of = |id: i32| {
        map.servers
            .get(&id)
            .map_or_else(|| format!("server #{id}"), |s| s.name.clone())
    };
    let owner = map.server_id(shard).ok_or_else(|| {
        DomainError::new(
            ErrorCode::Conflict,
            format!("logical shard {l} has no server in the map"),
        )
    })?;
    let rec = control
        .query_opt(
            "SELECT source_id, target_id, phase FROM shard_moves WHERE logical = $1",
            &[&l],
        )
        .await
        .map_err(db("reading shard_moves"))?
        .map(|r| {
            (
                r.get::<_, i32>(0),
                r.get::<_, i32>(1),
                Phase::parse(r.get(2)).unwrap_or(Phase::Failed),
            )
        });
    let mut report = MoveReport {
        logical,
        target: tgt.name.clone(),
        ..MoveReport::default()
    };
    let (src_id, resume) = match rec {
        Some((s, t, phase)) if phase.unfinished() => {
            if t != tgt.id {
                return Err(DomainError::new(
                    ErrorCode::Conflict,
                    format!(
                        "logical shard {l} has an unfinished move from {} to {} (phase {phase}); finish it first: confab shards move {l} {}",
                        name_of(s),
                        name_of(t),
                        name_of(t)
                    ),
                ));
            }
            let consistent = if phase == Phase::Flipped {
                owner == t
            } else {
                owner == s
            };
            if !consistent {
                return Err(DomainError::new(
                    ErrorCode::Conflict,
                    format!(
                        "the move of logical shard {l} from {} to {} is at phase {phase} but the map gives the shard to {}: \
                         fix shard_overrides / shard_moves by hand",
                        name_of(s),
                        name_of(t),
                        name_of(owner)
                    ),
                ));
            }
            (s, Some(phase))
        }
        _ => {
            if owner == tgt.id {
                report.noop = true;
                report.source = tgt.name.clone();
                report.total = started.elapsed();
                return Ok(report);
            }
            (owner, None)
        }
    };
    let src = map
        .servers
        .get(&src_id)
        .cloned()
        .ok_or_else(|| DomainError::not_found(&format!("shard server #{src_id}")))?;
    if src.id == tgt.id {
        return Err(DomainError::invalid(
            "source and target are the same server",
        ));
    }
    report.source = src.name.clone();
    report.resumed_from = resume;
    if let Some(p) = resume {
        progress(&format!(
            "resuming the move of logical shard {l} from {} to {} (phase {p})",
            src.name, tgt.name
        ));
    } else {
        progress(&format!(
            "moving logical shard {l} from {} to {}",
            src.name, tgt.name
        ));
    }
    let mut s = connect(&src.primary_dsn, timeout).await?;
    let mut t = connect(&tgt.primary_dsn, timeout).await?;
    let tables = Table::all(&t).await?;
    report.tables = tables
        .iter()
        .map(|t| TableReport {
            table: t.name,
            ..TableReport::default()
        })
        .collect();

    if resume != Some(Phase::Flipped) {
        // Stale fences: the source's from an interrupted fenced phase (the map was not
        // flipped, so the source still owns the shard), the target's from an earlier move away.
        lift_fence(&s, l).await?;
        lift_fence(&t, l).await?;
        set_phase(control, l, src.id, tgt.id, Phase::Copy).await?;
        progress("copy:");
        let (mut snap, _) = copy_pass(
            &mut s,
            &t,
            l,
            None,
            &tables,
            opts.batch,
            &mut report.tables,
            progress,
        )
        .await?;
        report.passes += 1;
        set_phase(control, l, src.id, tgt.id, Phase::Catchup).await?;
        stop_if(opts, Phase::Copy)?;
        for pass in 1..=opts.max_passes {
            let (next, n) = copy_pass(
                &mut s,
                &t,
                l,
                Some(snap),
                &tables,
                opts.batch,
                &mut report.tables,
                progress,
            )
            .await?;
            report.passes += 1;
            snap = next;
            progress(&format!("catch-up pass {pass}: {n} rows"));
            if n <= opts.small_pass {
                break;
            }
        }
        let mut replicas = Vec::new();
        for rep in &tgt.replicas {
            let c = match connect(&rep.dsn, timeout).await {
                Ok(c) => Some(c),
                Err(e) => {
                    progress(&format!(
                        "replica {} of {} does not answer ({}); not waiting for it",
                        redact(&rep.dsn),
                        tgt.name,
                        e.message
                    ));
                    None
                }
            };
            replicas.push((redact(&rep.dsn), c));
        }
        for behind in wait_replicas(&t, &replicas, opts.replica_wait).await? {
            progress(&format!(
                "replica {behind} of {} has not replayed the copy yet",
                tgt.name
            ));
        }
        stop_if(opts, Phase::Catchup)?;

        set_phase(control, l, src.id, tgt.id, Phase::Fenced).await?;
        fence(&s, l).await?;
        let fenced_at = Instant::now();
        progress("fenced: writers to the shard wait");
        let synced = async {
            final_sync(
                &mut s,
                &mut t,
                l,
                snap,
                &tables,
                opts,
                &mut report,
                progress,
            )
            .await?;
            for behind in wait_replicas(&t, &replicas, opts.replica_wait_fenced).await? {
                progress(&format!(
                    "replica {behind} of {} is behind the copy; flipping anyway",
                    tgt.name
                ));
            }
            Ok::<_, DomainError>(())
        }
        .await;
        if let Err(e) = synced {
            // The map is not flipped: lift the fence and let writers carry on at the source.
            return Err(abandon(control, &s, l, src.id, tgt.id, e, progress).await);
        }
        stop_if(opts, Phase::Fenced)?;
        if let Err((e, refused)) = flip(control, l, tgt.id).await {
            if refused {
                return Err(abandon(control, &s, l, src.id, tgt.id, e, progress).await);
            }
            // The connection failed: the flip may have committed. If it shows, carry on; if not,
            // the fence stays (safe either way) and running the move again settles it.
            let flipped = async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let c = connect(r.opts.control.expose(), timeout).await?;
                let row = c
                    .query_opt("SELECT phase FROM shard_moves WHERE logical = $1", &[&l])
                    .await
                    .map_err(db("reading shard_moves"))?;
                Ok::<_, DomainError>(
                    row.is_some_and(|r| r.get::<_, &str>(0) == Phase::Flipped.as_str()),
                )
            }
            .await;
            if !matches!(flipped, Ok(true)) {
                return Err(DomainError::new(
                    e.code,
                    format!(
                        "{} (writes to logical shard {l} stay fenced until the move is run again)",
                        e.message
                    ),
                ));
            }
        }
        if let Err(e) = r.refresh(true).await {
            progress(&format!(
                "reloading the map failed ({}); the map refresh will pick it up",
                e.message
            ));
        }
        set_fence(&s, l, "moved").await?;
        report.fenced = fenced_at.elapsed();
        progress(&format!(
            "flipped: logical shard {l} is on {} (writers held {} ms)",
            tgt.name,
            report.fenced.as_millis()
        ));
        stop_if(opts, Phase::Flipped)?;
    } else {
        set_fence(&s, l, "moved").await?;
        for (tr, tb) in report.tables.iter_mut().zip(&tables) {
            tr.rows = checksum(&t, tb, l, "target").await?.0 as u64;
        }
    }

    progress(&format!(
        "waiting {} ms for every node to reload the map",
        opts.grace.as_millis()
    ));
    tokio::time::sleep(opts.grace).await;
    for (tb, tr) in tables.iter().zip(report.tables.iter_mut()).rev() {
        let sql = format!(
            "DELETE FROM {0} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {0} WHERE shard = $1 LIMIT $2))",
            quote(tb.name)
        );
        let lim = opts.batch.max(1) as i64 * 5;
        loop {
            let n = s
                .execute(&sql, &[&l, &lim])
                .await
                .map_err(db(format!("deleting {} rows on the source", tb.name)))?;
            tr.cleaned += n;
            if n == 0 {
                break;
            }
        }
    }
    set_phase(control, l, src.id, tgt.id, Phase::Done).await?;
    report.total = started.elapsed();
    progress(&format!(
        "done: rows of logical shard {l} deleted from {}",
        src.name
    ));
    Ok(report)
}

/// A move that failed before its flip: lifts the fence (writers carry on at the source) and
/// records `failed`; if the fence cannot be lifted the record stays `fenced`, so running the
/// move again lifts it.
async fn abandon(
    control: &Client,
    s: &Client,
    l: i32,
    source: i32,
    target: i32,
    e: DomainError,
    progress: &dyn Fn(&str),
) -> DomainError {
    match lift_fence(s, l).await {
        Ok(()) => {
            let _ = set_phase(control, l, source, target, Phase::Failed).await;
            progress(&format!("move failed, fence lifted: {}", e.message));
            e
        }
        Err(lift) => DomainError::new(
            e.code,
            format!(
                "{}; lifting the fence failed too ({}): run the move again to lift it",
                e.message, lift.message
            ),
        ),
    }
}

/// Under the fence: copies what changed since the last pass, deletes on the target what the
/// source no longer has, and verifies every table. A write that raced the fence (task claims
/// take no fence) shows as a mismatch and gets another pass; three mismatches fail the move.
#[allow(clippy::too_many_arguments)]
async fn final_sync(
    s: &mut Client,
    t: &mut Client,
    l: i32,
    mut since: i64,
    tables: &[Table],
    opts: &MoveOptions,
    report: &mut MoveReport,
    progress: &dyn Fn(&str),
) -> StoreResult<()> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let (next, n) = copy_pass(
            s,
            t,
            l,
            Some(since),
            tables,
            opts.batch,
            &mut report.tables,
            progress,
        )
        .await?;
        report.passes += 1;
        since = next;
        progress(&format!("final pass: {n} rows"));
        let mut bad = Vec::new();
        for (tb, tr) in tables.iter().zip(report.tables.iter_mut()) {
            let (cs, mut ct) =
                tokio::try_join!(checksum(s, tb, l, "source"), checksum(t, tb, l, "target"))?;
            if ct.0 != cs.0 {
                let gone = delete_missing(s, t, tb, l, opts.batch).await?;
                if gone > 0 {
                    progress(&format!(
                        "  {:<14} {gone} rows deleted on the target (gone from the source)",
                        tb.name
                    ));
                }
                tr.removed += gone;
                ct = checksum(t, tb, l, "target").await?;
            }
            if cs != ct {
                bad.push(format!(
                    "{}: source {} rows, target {} rows{}",
                    tb.name,
                    cs.0,
                    ct.0,
                    if cs.0 == ct.0 {
                        " (checksums differ)"
                    } else {
                        ""
                    }
                ));
            }
            tr.rows = cs.0 as u64;
        }
        if bad.is_empty() {
            progress("verified: every table's count and checksum match");
            return Ok(());
        }
        if attempt == ATTEMPTS {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                format!(
                    "the copy of logical shard {l} does not match its source: {}",
                    bad.join("; ")
                ),
            ));
        }
        progress(&format!("mismatch ({}); another pass", bad.join("; ")));
    }
    Err(DomainError::internal())
}

/// Moves not finished (under way, or interrupted): `(logical, source, target, phase)`.
pub async fn unfinished(r: &Arc<Router>) -> StoreResult<Vec<(u16, String, String, Phase)>> {
    let c = super::router::get(&r.control, "control database").await?;
    let map = r.map();
    let name_of = |id: i32| {
        map.servers
            .get(&id)
            .map_or_else(|| format!("server #{id}"), |s| s.name.clone())
    };
    Ok(c.query(
        "SELECT logical, source_id, target_id, phase FROM shard_moves ORDER BY logical",
        &[],
    )
    .await
    .map_err(db("reading shard_moves"))?
    .iter()
    .filter_map(|row| {
        let phase = Phase::parse(row.get(3)).filter(|p| p.unfinished())?;
        Some((
            row.get::<_, i32>(0) as u16,
            name_of(row.get(1)),
            name_of(row.get(2)),
            phase,
        ))
    })
    .collect())
}

// ---------------------------------------------------------------- verify

/// What `confab shards verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub forums: usize,
    pub servers: usize,
    pub threads: i64,
    pub comments: i64,
    /// Unfinished moves: `(logical, source, target, phase)`.
    pub moves: Vec<(u16, String, String, String)>,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked {} forums on {} servers: {} threads, {} comments",
            self.forums, self.servers, self.threads, self.comments
        )?;
        for (l, s, t, p) in &self.moves {
            writeln!(
                f,
                "unfinished move: logical shard {l} from {s} to {t} (phase {p})"
            )?;
        }
        if self.problems.is_empty() {
            return write!(f, "no problems found");
        }
        writeln!(f, "{} problems:", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Checks the deployment without changing it: every logical shard's rows are on its owner only
/// (but for an unfinished move's two servers), thread comment counts and reply counts match the
/// approved comments, every comment's thread exists.
pub async fn verify(r: &Arc<Router>) -> StoreResult<VerifyReport> {
    const SHOW: i64 = 20;
    r.refresh(true).await?;
    let map = r.map();
    let timeout = Duration::from_millis(r.opts.connect_timeout_ms.max(1000));
    let control = connect(r.opts.control.expose(), timeout).await?;
    let name_of = |id: i32| {
        map.servers
            .get(&id)
            .map_or_else(|| format!("server #{id}"), |s| s.name.clone())
    };
    let forums: Vec<(i64, String, i32)> = control
        .query("SELECT id, name, shard FROM forums ORDER BY id", &[])
        .await
        .map_err(db("reading forums"))?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut rep = VerifyReport {
        forums: forums.len(),
        ..VerifyReport::default()
    };
    let mut moving: HashMap<u16, (i32, i32)> = HashMap::new();
    for row in control
        .query(
            "SELECT logical, source_id, target_id, phase FROM shard_moves ORDER BY logical",
            &[],
        )
        .await
        .map_err(db("reading shard_moves"))?
    {
        let (l, s, t, p): (i32, i32, i32, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if Phase::parse(&p).is_some_and(Phase::unfinished) {
            moving.insert(l as u16, (s, t));
            rep.moves.push((l as u16, name_of(s), name_of(t), p));
        }
    }
    let owner = |l: i32| LogicalShard::new(l as u16).and_then(|s| map.server_id(s));
    for (id, name, shard) in &forums {
        match owner(*shard) {
            Some(s) if map.servers.contains_key(&s) => {}
            _ => rep.problems.push(format!(
                "forum {name} (id {id}): logical shard {shard} has no server in the map"
            )),
        }
    }
    let servers = r.servers();
    rep.servers = servers.len();
    for server in servers {
        let c = match connect(&server.primary_dsn, timeout).await {
            Ok(c) => c,
            Err(e) => {
                rep.problems.push(format!(
                    "server {}: cannot check it: {}",
                    server.name, e.message
                ));
                continue;
            }
        };
        // A fence on a shard this server owns, with no move under way, fails every write to it.
        for row in c
            .query(
                "SELECT logical, state FROM shard_fence ORDER BY logical",
                &[],
            )
            .await
            .map_err(db(format!("reading fences on {}", server.name)))?
        {
            let (l, state): (i32, String) = (row.get(0), row.get(1));
            if owner(l) == Some(server.id) && !moving.contains_key(&(l as u16)) {
                rep.problems.push(format!(
                    "server {}: logical shard {l} is fenced ({state}) on the server that owns it: writes to it fail \
                     (a move left it? run the move again, or delete the shard_fence row)",
                    server.name
                ));
            }
        }
        // Rows of logical shards this server does not own.
        for (table, _) in SHARD_TABLES {
            for row in c
                .query(
                    &format!(
                        "SELECT shard, count(*) FROM {} GROUP BY shard ORDER BY shard",
                        quote(table)
                    ),
                    &[],
                )
                .await
                .map_err(db(format!("counting {table} on {}", server.name)))?
            {
                let (l, n): (i32, i64) = (row.get(0), row.get(1));
                if owner(l) == Some(server.id) {
                    continue;
                }
                if moving
                    .get(&(l as u16))
                    .is_some_and(|(s, t)| *s == server.id || *t == server.id)
                {
                    continue;
                }
                rep.problems.push(format!(
                    "server {}: {n} rows of logical shard {l} in {table}, but the shard belongs to {}",
                    server.name,
                    owner(l).map_or_else(|| "no server".to_string(), name_of)
                ));
            }
        }
        let owned: Vec<i32> = {
            let mut v: Vec<i32> = forums
                .iter()
                .map(|f| f.2)
                .filter(|l| owner(*l) == Some(server.id))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        if owned.is_empty() {
            continue;
        }
        let counts = c
            .query_one(
                "SELECT (SELECT count(*) FROM threads WHERE shard = ANY($1)), (SELECT count(*) FROM comments WHERE shard = ANY($1))",
                &[&owned],
            )
            .await
            .map_err(db(format!("counting on {}", server.name)))?;
        rep.threads += counts.get::<_, i64>(0);
        rep.comments += counts.get::<_, i64>(1);
        let checks: [(&str, String); 3] = [
            (
                "thread comment_count",
                "SELECT t.id, t.comment_count, coalesce(x.n, 0), count(*) OVER () FROM threads t \
                 LEFT JOIN (SELECT thread_id, count(*) AS n FROM comments WHERE shard = ANY($1) AND status = 'approved' GROUP BY thread_id) x \
                 ON x.thread_id = t.id WHERE t.shard = ANY($1) AND t.comment_count <> coalesce(x.n, 0) ORDER BY t.id LIMIT $2"
                    .to_string(),
            ),
            (
                "comment reply_count",
                "SELECT p.id, p.reply_count, coalesce(x.n, 0), count(*) OVER () FROM comments p \
                 LEFT JOIN (SELECT parent_id, count(*) AS n FROM comments WHERE shard = ANY($1) AND status = 'approved' \
                   AND parent_id IS NOT NULL GROUP BY parent_id) x \
                 ON x.parent_id = p.id WHERE p.shard = ANY($1) AND p.reply_count <> coalesce(x.n, 0) ORDER BY p.id LIMIT $2"
                    .to_string(),
            ),
            (
                "comment without its thread",
                "SELECT c.id, c.thread_id, 0::bigint, count(*) OVER () FROM comments c WHERE c.shard = ANY($1) \
                 AND NOT EXISTS (SELECT 1 FROM threads t WHERE t.id = c.thread_id) ORDER BY c.id LIMIT $2"
                    .to_string(),
            ),
        ];
        for (what, sql) in &checks {
            let rows = c
                .query(sql.as_str(), &[&owned, &SHOW])
                .await
                .map_err(db(format!("checking {what} on {}", server.name)))?;
            if let Some(first) = rows.first() {
                let total: i64 = first.get(3);
                let list: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        let (id, have, want): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
                        if *what == "comment without its thread" {
                            format!("{id} (thread {have})")
                        } else {
                            format!("{id} ({have}, counted {want})")
                        }
                    })
                    .collect();
                rep.problems.push(format!(
                    "server {}: {total} × {what}: {}{}",
                    server.name,
                    list.join(", "),
                    if total > SHOW { ", …" } else { "" }
                ));
            }
        }
    }
    Ok(rep)
}

//! `confab migrate-data`: copies an embedded SQLite database into a sharded PostgreSQL
//! deployment (migrated, with its servers registered and the map covering every forum's shard).
//!
//! Forums, accounts, moderators, bans and feature switches go to the control database with their ids (the
//! sequences are moved past them); every shard table's rows go to the server that owns their
//! logical shard. SQLite rows of `votes`, `flags`, `idempotency` and `task_effects` carry no
//! shard: it comes from the comment or task id, which carries it; `mod_log` rows take their
//! forum's. SQLite numbers moderation-log entries 1, 2, 3…: in PostgreSQL they get sharded ids
//! like `confab_next_id()` makes, derived from the entry's time, shard and SQLite id, so a second
//! run writes the same ids. Reply-mail subscription addresses are lower-cased.
//!
//! Every write is an upsert, so running it again (after an interruption, or to pick up what the
//! embedded server wrote meanwhile) is safe. It refuses a control database holding a forum the
//! SQLite file does not have under the same id and name: that is another deployment.

use super::moves::{connect, db, upsert, Table};
use super::router::Router;
use super::schema::SHARD_TABLES;
use crate::StoreResult;
use confab_core::id::{self, IdParts, LogicalShard};
use confab_core::{DomainError, ErrorCode};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Rows per SQLite read and per PostgreSQL write.
const BATCH: usize = 1000;

/// The control tables, in copy order, with their primary keys.
const CONTROL_TABLES: &[(&str, &str)] = &[
    ("forums", "id"),
    ("accounts", "id"),
    ("forum_moderators", "forum_id, account_id"),
    ("bans", "id"),
    ("switches", "name, forum_id"),
];

/// Rows copied per table.
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    pub tables: Vec<(String, u64)>,
    /// Rows left out, with why (e.g. moderation-log entries of a forum that no longer exists).
    pub skipped: Vec<String>,
}

fn sqlite_err(what: &str) -> impl Fn(rusqlite::Error) -> DomainError + '_ {
    move |e| {
        DomainError::new(
            ErrorCode::Internal,
            format!("reading the SQLite database ({what}): {e}"),
        )
    }
}

fn to_json(v: Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => i.into(),
        Value::Real(f) => serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Text(s) => s.into(),
        // Bytes (pictures) go as PostgreSQL's hex form, which a `bytea` column reads back.
        Value::Blob(b) => {
            let mut hex = String::with_capacity(2 + 2 * b.len());
            hex.push_str("\\x");
            for byte in b {
                hex.push_str(&format!("{byte:02x}"));
            }
            hex.into()
        }
    }
}

/// A keyset-paged reader of one SQLite table.
struct Reader {
    table: &'static str,
    pk: Vec<String>,
    last: Option<Vec<Value>>,
}

impl Reader {
    fn new(table: &'static str, pk: &str) -> Reader {
        Reader {
            table,
            pk: pk.split(',').map(|s| s.trim().to_string()).collect(),
            last: None,
        }
    }

    /// The next batch of rows as `(column, value)` maps; empty at the end.
    fn next(
        &mut self,
        c: &Connection,
    ) -> StoreResult<Vec<serde_json::Map<String, serde_json::Value>>> {
        let order = self.pk.join(", ");
        let sql = match &self.last {
            None => format!(
                "SELECT * FROM {} ORDER BY {order} LIMIT {BATCH}",
                self.table
            ),
            Some(_) => format!(
                "SELECT * FROM {} WHERE ({order}) > ({}) ORDER BY {order} LIMIT {BATCH}",
                self.table,
                vec!["?"; self.pk.len()].join(", ")
            ),
        };
        let mut st = c.prepare_cached(&sql).map_err(sqlite_err(self.table))?;
        let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
        let pk_idx: Vec<usize> = self
            .pk
            .iter()
            .map(|k| {
                names
                    .iter()
                    .position(|n| n == k)
                    .ok_or_else(DomainError::internal)
            })
            .collect::<StoreResult<_>>()?;
        let params: Vec<Value> = self.last.clone().unwrap_or_default();
        let mut rows = st
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(sqlite_err(self.table))?;
        let mut out = Vec::new();
        let mut last = None;
        while let Some(r) = rows.next().map_err(sqlite_err(self.table))? {
            let vals: Vec<Value> = (0..names.len())
                .map(|i| r.get::<_, Value>(i))
                .collect::<Result<_, _>>()
                .map_err(sqlite_err(self.table))?;
            last = Some(pk_idx.iter().map(|i| vals[*i].clone()).collect());
            out.push(
                names
                    .iter()
                    .cloned()
                    .zip(vals.into_iter().map(to_json))
                    .collect(),
            );
        }
        if last.is_some() {
            self.last = last;
        }
        Ok(out)
    }
}

fn has_table(c: &Connection, name: &str) -> StoreResult<bool> {
    c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(sqlite_err("tables"))
}

fn int(m: &serde_json::Map<String, serde_json::Value>, k: &str) -> Option<i64> {
    m.get(k).and_then(|v| v.as_i64())
}

/// A moderation-log entry's id in PostgreSQL: the layout of `confab_next_id()` at the entry's
/// time, with the SQLite id's low bits as the sequence (deterministic, so a re-run upserts).
fn mod_log_id(created_at: i64, shard: LogicalShard, sqlite_id: i64) -> i64 {
    id::pack(IdParts {
        ms_since_epoch: (created_at - id::EPOCH_MS).max(0) as u64,
        shard,
        seq: (sqlite_id & 0x7ff) as u16,
    })
}

/// Copies the SQLite database at `path` into the deployment `r` routes to.
pub async fn migrate_data(
    r: &Arc<Router>,
    path: &Path,
    progress: impl Fn(&str),
) -> StoreResult<MigrateReport> {
    if !path.is_file() {
        return Err(DomainError::not_found(&format!(
            "SQLite database {}",
            path.display()
        )));
    }
    let lite = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err("opening"))?;
    lite.busy_timeout(Duration::from_secs(10))
        .map_err(sqlite_err("opening"))?;
    if !has_table(&lite, "forums")? {
        return Err(DomainError::invalid(format!(
            "{} is not a Confab database (no forums table)",
            path.display()
        )));
    }
    let timeout = Duration::from_millis(r.opts.connect_timeout_ms.max(1000));
    r.refresh(true).await?;
    let map = r.map();

    // The SQLite forums: id → (name, shard).
    let mut forums: HashMap<i64, (String, i32)> = HashMap::new();
    {
        let mut st = lite
            .prepare("SELECT id, name, shard FROM forums")
            .map_err(sqlite_err("forums"))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(sqlite_err("forums"))?;
        for row in rows {
            let (id, name, shard) = row.map_err(sqlite_err("forums"))?;
            forums.insert(id, (name, shard as i32));
        }
    }
    let mut control = connect(r.opts.control.expose(), timeout).await?;
    for row in control
        .query("SELECT id, name FROM forums ORDER BY id", &[])
        .await
        .map_err(db("reading forums"))?
    {
        let (id, name): (i64, String) = (row.get(0), row.get(1));
        if forums.get(&id).map(|f| f.0.as_str()) != Some(name.as_str()) {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                format!(
                    "the PostgreSQL deployment has forum {name} (id {id}), which {} does not have under that id: \
                     refusing to mix two deployments",
                    path.display()
                ),
            ));
        }
    }
    for (id, (name, shard)) in &forums {
        let owner = LogicalShard::new(*shard as u16).and_then(|s| map.server_id(s));
        if owner.is_none_or(|o| !map.servers.contains_key(&o)) {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                format!("forum {name} (id {id}) is on logical shard {shard}, which has no server in the map (add one: confab shards add)"),
            ));
        }
    }
    let mut report = MigrateReport::default();

    // Control tables, in one transaction.
    {
        let tx = control
            .transaction()
            .await
            .map_err(db("copying control tables"))?;
        for (name, pk) in CONTROL_TABLES {
            let meta = Table::load(&tx, name, pk).await?;
            let sql = meta.upsert_sql();
            let mut reader = Reader::new(name, pk);
            let mut n = 0;
            loop {
                let batch = reader.next(&lite)?;
                if batch.is_empty() {
                    break;
                }
                let texts: Vec<String> = batch
                    .iter()
                    .map(|m| serde_json::Value::Object(m.clone()).to_string())
                    .collect();
                n += upsert(&tx, &sql, &texts).await?;
            }
            progress(&format!("{name:<16} {n} rows"));
            report.tables.push((name.to_string(), n));
        }
        for seq_table in ["forums", "accounts", "bans"] {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{seq_table}', 'id'), coalesce((SELECT max(id) FROM {seq_table}), 0) + 1, false)"
                ),
                &[],
            )
            .await
            .map_err(db(format!("moving the {seq_table} id sequence")))?;
        }
        tx.commit().await.map_err(db("copying control tables"))?;
    }

    // Shard tables, each row to the server that owns its logical shard.
    let mut conns: HashMap<i32, (tokio_postgres::Client, Vec<Table>)> = HashMap::new();
    for s in r.servers() {
        let c = connect(&s.primary_dsn, timeout).await?;
        let tables = Table::all(&c).await?;
        conns.insert(s.id, (c, tables));
    }
    for (ti, (name, pk)) in SHARD_TABLES.iter().enumerate() {
        if !has_table(&lite, name)? {
            report.tables.push((name.to_string(), 0));
            continue;
        }
        let sqlite_pk = if *name == "mod_log" { "id" } else { pk };
        let mut reader = Reader::new(name, sqlite_pk);
        let mut pending: HashMap<i32, Vec<String>> = HashMap::new();
        let (mut n, mut skipped) = (0u64, 0u64);
        loop {
            let batch = reader.next(&lite)?;
            if batch.is_empty() {
                break;
            }
            for mut m in batch {
                let shard = match *name {
                    "votes" | "flags" | "idempotency" | "reply_notify" => {
                        int(&m, "comment_id").map(|i| i64::from(id::unpack(i).shard.get()))
                    }
                    "task_effects" => {
                        int(&m, "task_id").map(|i| i64::from(id::unpack(i).shard.get()))
                    }
                    "mod_log" => int(&m, "forum_id")
                        .and_then(|f| forums.get(&f))
                        .map(|f| i64::from(f.1)),
                    _ => None,
                };
                let shard = match int(&m, "shard").or(shard) {
                    Some(s) => s,
                    None => {
                        skipped += 1;
                        continue;
                    }
                };
                let Some(ls) =
                    LogicalShard::new(shard as u16).filter(|_| (0..4096).contains(&shard))
                else {
                    skipped += 1;
                    continue;
                };
                m.insert("shard".into(), shard.into());
                if *name == "mod_log" {
                    let old = int(&m, "id").unwrap_or(0);
                    let created = int(&m, "created_at").unwrap_or(0);
                    m.insert("id".into(), mod_log_id(created, ls, old).into());
                }
                if *name == "subscriptions" {
                    if let Some(e) = m
                        .get("email")
                        .and_then(|v| v.as_str())
                        .map(crate::rules::email_key)
                    {
                        m.insert("email".into(), e.into());
                    }
                }
                let Some(server) = map.server_id(ls) else {
                    skipped += 1;
                    continue;
                };
                let buf = pending.entry(server).or_default();
                buf.push(serde_json::Value::Object(m).to_string());
                if buf.len() >= BATCH {
                    let rows = std::mem::take(buf);
                    let (c, tables) = conns.get(&server).ok_or_else(DomainError::internal)?;
                    n += upsert(c, &tables[ti].upsert_sql(), &rows).await?;
                }
            }
        }
        for (server, rows) in pending {
            let (c, tables) = conns.get(&server).ok_or_else(DomainError::internal)?;
            n += upsert(c, &tables[ti].upsert_sql(), &rows).await?;
        }
        progress(&format!(
            "{name:<16} {n} rows{}",
            if skipped > 0 {
                format!(" ({skipped} skipped)")
            } else {
                String::new()
            }
        ));
        if skipped > 0 {
            report.skipped.push(format!(
                "{name}: {skipped} rows whose logical shard could not be told or has no server"
            ));
        }
        report.tables.push((name.to_string(), n));
    }
    Ok(report)
}

//! Operator work on the sharded deployment: migrations, adding servers, the shard map.

use super::router::{self, Router, Server};
use super::{pg_err, schema, PgOptions};
use crate::StoreResult;
use confab_core::id::LOGICAL_SHARDS;
use confab_core::DomainError;
use deadpool_postgres::GenericClient;
use std::sync::Arc;

/// Advisory lock key taken while migrating, so nodes starting together migrate once.
const MIGRATE_LOCK: i64 = 0x00c0_fab0_0001;

async fn migrate_on(
    c: &mut deadpool_postgres::Object,
    migrations: &[(i64, &str)],
) -> StoreResult<Vec<i64>> {
    let mut applied = Vec::new();
    let tx = c.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(pg_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await
    .map_err(pg_err)?;
    for (version, sql) in migrations {
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await
            .map_err(pg_err)?;
        if done.is_some() {
            continue;
        }
        tx.batch_execute(sql).await.map_err(pg_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &confab_core::now_ms()],
        )
        .await
        .map_err(pg_err)?;
        applied.push(*version);
    }
    tx.commit().await.map_err(pg_err)?;
    Ok(applied)
}

/// Applies pending control-database migrations.
pub async fn migrate_control(r: &Router) -> StoreResult<Vec<i64>> {
    let mut c = router::get(&r.control, "control database").await?;
    migrate_on(&mut c, schema::CONTROL).await
}

/// Applies pending shard-database migrations on one server's primary.
pub async fn migrate_shard(s: &Server, _opts: &PgOptions) -> StoreResult<Vec<i64>> {
    let mut c = s.primary().await?;
    migrate_on(&mut c, schema::SHARD).await
}

/// Bumps the map's version so every node reloads it.
pub async fn bump_version<C: GenericClient + Sync>(c: &C) -> StoreResult<i64> {
    Ok(c.query_one(
        "UPDATE shard_map_version SET version = version + 1 RETURNING version",
        &[],
    )
    .await
    .map_err(pg_err)?
    .get(0))
}

/// Registers a physical shard server (migrating its database first). The first server added
/// gets all 4096 logical shards; later ones get none until shards are moved to them
/// (`confab shards move`) or the map is spread with [`spread_ranges`].
pub async fn add_server(
    r: &Router,
    name: &str,
    primary: &str,
    replicas: &[String],
) -> StoreResult<i32> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(DomainError::invalid(
            "server names are 1-64 letters, digits, '-' or '_'",
        ));
    }
    // Migrate the new server before it can be routed to.
    let probe = Server::probe(primary, &r.opts)?;
    migrate_shard(&probe, &r.opts).await?;
    let mut c = router::get(&r.control, "control database").await?;
    let tx = c.transaction().await.map_err(pg_err)?;
    let id: i32 = tx
        .query_one(
            "INSERT INTO shard_servers (name, primary_dsn, replica_dsns, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET primary_dsn = excluded.primary_dsn, replica_dsns = excluded.replica_dsns \
             RETURNING id",
            &[&name, &primary, &replicas, &confab_core::now_ms()],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    let ranges = tx
        .query_one("SELECT count(*) FROM shard_ranges", &[])
        .await
        .map_err(pg_err)?
        .get::<_, i64>(0);
    if ranges == 0 {
        tx.execute(
            "INSERT INTO shard_ranges (lo, hi, server_id) VALUES (0, $1, $2)",
            &[&(i32::from(LOGICAL_SHARDS) - 1), &id],
        )
        .await
        .map_err(pg_err)?;
    }
    bump_version(&tx).await?;
    tx.commit().await.map_err(pg_err)?;
    r.refresh(true).await?;
    Ok(id)
}

/// Splits the 4096 logical shards into equal ranges over `servers` (by name), for a new
/// deployment with no data yet. Refuses once any forum exists: moving data is `shards move`.
pub async fn spread_ranges(r: &Router, servers: &[String]) -> StoreResult<()> {
    if servers.is_empty() {
        return Err(DomainError::invalid("name at least one server"));
    }
    let mut c = router::get(&r.control, "control database").await?;
    let tx = c.transaction().await.map_err(pg_err)?;
    let forums: i64 = tx
        .query_one("SELECT count(*) FROM forums", &[])
        .await
        .map_err(pg_err)?
        .get(0);
    if forums > 0 {
        return Err(DomainError::new(
            confab_core::ErrorCode::Conflict,
            "forums exist already; move logical shards with `confab shards move` instead",
        ));
    }
    let mut ids = Vec::new();
    for name in servers {
        let row = tx
            .query_opt("SELECT id FROM shard_servers WHERE name = $1", &[name])
            .await
            .map_err(pg_err)?;
        ids.push(
            row.ok_or_else(|| DomainError::not_found(&format!("server {name}")))?
                .get::<_, i32>(0),
        );
    }
    tx.execute("DELETE FROM shard_overrides", &[])
        .await
        .map_err(pg_err)?;
    tx.execute("DELETE FROM shard_ranges", &[])
        .await
        .map_err(pg_err)?;
    let total = i32::from(LOGICAL_SHARDS);
    let k = ids.len() as i32;
    for (i, id) in ids.iter().enumerate() {
        let i = i as i32;
        let (lo, hi) = (total * i / k, total * (i + 1) / k - 1);
        tx.execute(
            "INSERT INTO shard_ranges (lo, hi, server_id) VALUES ($1, $2, $3)",
            &[&lo, &hi, id],
        )
        .await
        .map_err(pg_err)?;
    }
    bump_version(&tx).await?;
    tx.commit().await.map_err(pg_err)?;
    r.refresh(true).await?;
    Ok(())
}

/// One server's row in `confab shards list`.
#[derive(Debug, Clone)]
pub struct ServerReport {
    pub id: i32,
    pub name: String,
    pub primary: String,
    pub up: bool,
    /// Logical shards mapped here.
    pub logical: usize,
    pub forums: i64,
    pub threads: i64,
    pub comments: i64,
    pub bytes: i64,
    /// Per replica: DSN (password hidden), lag in bytes (None: not answering), left out for lag.
    pub replicas: Vec<(String, Option<u64>, bool)>,
}

/// The map and each server's sizes and replica lag.
pub async fn report(
    r: &Arc<Router>,
) -> StoreResult<(
    i64,
    Vec<(u16, u16, i32)>,
    Vec<(u16, i32)>,
    Vec<ServerReport>,
)> {
    r.refresh(true).await?;
    let map = r.map();
    let c = router::get(&r.control, "control database").await?;
    let forum_shards: Vec<i32> = c
        .query("SELECT shard FROM forums", &[])
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    // Let the replica poller take one reading.
    tokio::time::sleep(std::time::Duration::from_millis(r.opts.replica_poll_ms * 3)).await;
    for s in r.servers() {
        let logical = (0..LOGICAL_SHARDS)
            .filter(|l| {
                confab_core::id::LogicalShard::new(*l).and_then(|ls| map.server_id(ls))
                    == Some(s.id)
            })
            .count();
        let forums = forum_shards
            .iter()
            .filter(|l| {
                confab_core::id::LogicalShard::new(**l as u16).and_then(|ls| map.server_id(ls))
                    == Some(s.id)
            })
            .count() as i64;
        let (up, threads, comments, bytes) = match s.primary().await {
            Ok(c) => {
                let row = c
                    .query_one(
                        "SELECT (SELECT count(*) FROM threads), (SELECT count(*) FROM comments), pg_database_size(current_database())",
                        &[],
                    )
                    .await
                    .map_err(pg_err)?;
                (true, row.get(0), row.get(1), row.get(2))
            }
            Err(_) => (false, 0, 0, 0),
        };
        out.push(ServerReport {
            id: s.id,
            name: s.name.clone(),
            primary: router::redact(&s.primary_dsn),
            up,
            logical,
            forums,
            threads,
            comments,
            bytes,
            replicas: s.replica_status(),
        });
    }
    let mut overrides: Vec<(u16, i32)> = map.overrides.iter().map(|(k, v)| (*k, *v)).collect();
    overrides.sort_unstable();
    Ok((map.version, map.ranges.clone(), overrides, out))
}

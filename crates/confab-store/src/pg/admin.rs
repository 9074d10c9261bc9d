//! Operator work on the sharded deployment: migrations, adding servers, the shard map.

use super::router::{self, redact, Router, Server};
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

/// This deployment's identity (control migration 5 made it).
pub async fn deployment_id(r: &Router) -> StoreResult<String> {
    let c = router::get(&r.control, "control database").await?;
    Ok(c.query_one("SELECT id FROM deployment", &[])
        .await
        .map_err(pg_err)?
        .get(0))
}

/// Who owns a shard database: `(deployment id, server name)`, `None` when nobody has claimed
/// it (a new database, or one from before deployments had identities).
async fn owner<C: GenericClient + Sync>(c: &C) -> StoreResult<Option<(String, String)>> {
    let table: Option<String> = c
        .query_one("SELECT to_regclass('deployment_owner')::text", &[])
        .await
        .map_err(pg_err)?
        .get(0);
    if table.is_none() {
        return Ok(None);
    }
    Ok(c.query_opt(
        "SELECT deployment_id, server_name FROM deployment_owner",
        &[],
    )
    .await
    .map_err(pg_err)?
    .map(|row| (row.get(0), row.get(1))))
}

/// Records `deployment` as the owner of a (migrated) shard database: always with `take`, else
/// only when nobody owns it. Returns the owner it found before.
async fn claim<C: GenericClient + Sync>(
    c: &C,
    deployment: &str,
    name: &str,
    take: bool,
) -> StoreResult<Option<(String, String)>> {
    let before = owner(c).await?;
    if take || before.is_none() {
        c.execute(
            "INSERT INTO deployment_owner (deployment_id, server_name, claimed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (one) DO UPDATE SET deployment_id = excluded.deployment_id, \
             server_name = excluded.server_name, claimed_at = excluded.claimed_at",
            &[&deployment, &name, &confab_core::now_ms()],
        )
        .await
        .map_err(pg_err)?;
    }
    Ok(before)
}

/// Marks every registered server that has no owner yet as this deployment's (servers added
/// before deployments had identities); logs one that another deployment owns.
pub async fn claim_unowned(r: &Router) -> StoreResult<()> {
    let me = deployment_id(r).await?;
    for s in r.servers() {
        let c = s.primary().await?;
        match claim(&c, &me, &s.name, false).await? {
            Some((d, _)) if d != me => tracing::error!(
                server = %s.name,
                owner = %d,
                "this shard server's database belongs to another Confab deployment: two deployments write the same shard tables"
            ),
            _ => {}
        }
    }
    Ok(())
}

/// What `confab shards add` checks before it registers a server, and what `--force` skips.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddChecks {
    /// Register even if the primary's database belongs to another deployment (it is taken
    /// over), is registered here under another name, or a replica cannot be reached or is not
    /// a replica of the primary.
    pub force: bool,
}

/// One statement on a connection of its own (not pooled), bounded by the connect and statement
/// timeouts: for servers that are not registered yet.
async fn probe_query(dsn: &str, opts: &PgOptions, sql: &str) -> StoreResult<tokio_postgres::Row> {
    let c = super::moves::connect(
        dsn,
        std::time::Duration::from_millis(opts.connect_timeout_ms),
    )
    .await?;
    let q = c.query_one(sql, &[]);
    match tokio::time::timeout(
        std::time::Duration::from_millis(opts.statement_timeout_ms),
        q,
    )
    .await
    {
        Ok(r) => r.map_err(super::moves::db("PostgreSQL")),
        Err(_) => Err(super::unavailable(&format!(
            "no answer within {} ms",
            opts.statement_timeout_ms
        ))),
    }
}

const IDENTITY: &str =
    "SELECT pg_is_in_recovery(), (SELECT system_identifier FROM pg_control_system())::text";

fn refuse(why: String) -> DomainError {
    DomainError::new(
        confab_core::ErrorCode::Conflict,
        format!("{why}; nothing was recorded (--force registers it anyway)"),
    )
}

/// The checks of [`add_server`]: the primary answers, is a primary, and is not another
/// deployment's (or another server's of this one); each replica answers and replays this
/// primary. Returns the claim to record.
async fn check_new_server(
    r: &Router,
    probe: &Server,
    name: &str,
    primary: &str,
    replicas: &[String],
    checks: AddChecks,
) -> StoreResult<String> {
    let me = deployment_id(r).await?;
    let at = |dsn: &str| redact(dsn);
    let c = probe.primary().await?;
    let row = c.query_one(IDENTITY, &[]).await.map_err(pg_err)?;
    let (in_recovery, system): (bool, String) = (row.get(0), row.get(1));
    if in_recovery && !checks.force {
        return Err(refuse(format!(
            "the primary {} is in recovery (a replica): give its primary",
            at(primary)
        )));
    }
    match owner(&c).await? {
        Some((d, _)) if d != me && !checks.force => {
            return Err(refuse(format!(
                "the database at {} already belongs to another Confab deployment (deployment {d}, this one is {me}); two deployments must never write the same shard tables",
                at(primary)
            )))
        }
        Some((d, other)) if d == me && other != name && !checks.force => {
            // Claimed under another name that this deployment still has (a claim whose
            // registration never finished does not count).
            let c = router::get(&r.control, "control database").await?;
            let known = c
                .query_opt("SELECT 1 FROM shard_servers WHERE name = $1", &[&other])
                .await
                .map_err(pg_err)?
                .is_some();
            if known {
                return Err(refuse(format!(
                    "the database at {} is already registered in this deployment as server {other}",
                    at(primary)
                )));
            }
        }
        _ => {}
    }
    for dsn in replicas {
        let problem = match probe_query(dsn, &r.opts, IDENTITY).await {
            Err(e) => Some(format!("cannot check replica {}: {}", at(dsn), e.reason())),
            Ok(row) => {
                let (rec, sys): (bool, String) = (row.get(0), row.get(1));
                if !rec {
                    Some(format!(
                        "{} is not a replica: it is not in recovery (a primary of its own)",
                        at(dsn)
                    ))
                } else if sys != system {
                    Some(format!(
                        "{} is not a replica of {}: its system identifier is {sys}, the primary's is {system}",
                        at(dsn),
                        at(primary)
                    ))
                } else {
                    None
                }
            }
        };
        match problem {
            Some(p) if checks.force => {
                tracing::warn!(server = name, problem = %p, "registering anyway (--force)")
            }
            Some(p) => return Err(refuse(p)),
            None => {}
        }
    }
    Ok(me)
}

/// Registers a physical shard server (migrating its database first). The first server added
/// gets all 4096 logical shards; later ones get none until shards are moved to them
/// (`confab shards move`) or the map is spread with [`spread_ranges`]. Refused, with nothing
/// recorded, when the primary is another deployment's (or this one's under another name) or a
/// replica cannot be reached or does not replay this primary, unless `checks.force`. Adding
/// the same server again under the same name updates its DSNs.
pub async fn add_server(
    r: &Router,
    name: &str,
    primary: &str,
    replicas: &[String],
    checks: AddChecks,
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
    let probe = Server::probe(name, primary, &r.opts)?;
    let me = check_new_server(r, &probe, name, primary, replicas, checks).await?;
    // Migrate the new server before it can be routed to.
    migrate_shard(&probe, &r.opts).await?;
    claim(&probe.primary().await?, &me, name, true).await?;
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
    /// Why the primary does not answer, when it does not.
    pub down: Option<String>,
    /// Logical shards mapped here.
    pub logical: usize,
    pub forums: i64,
    pub threads: i64,
    pub comments: i64,
    pub bytes: i64,
    pub replicas: Vec<super::ReplicaStatus>,
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
        let mut down = None;
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
            Err(e) => {
                down = Some(e.reason().to_string());
                (false, 0, 0, 0)
            }
        };
        out.push(ServerReport {
            id: s.id,
            name: s.name.clone(),
            primary: router::redact(&s.primary_dsn),
            up,
            down,
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

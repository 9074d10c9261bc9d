//! Routing: the shard map (logical shard → physical server), bounded connection pools per
//! server, and which copy of a shard a read may use.
//!
//! Every node caches the map and polls its version in the control database, reloading on change
//! (and at once when a write finds its shard moved). Every node also polls each server's primary
//! WAL position and each replica's replay position; a replica that stops answering, or stays
//! behind the primary's position of a poll ago for longer than the lag bound, is left out until
//! it catches up. Reads use a replica that has replayed past the reader's pin, else the primary;
//! when the primary is down they use the best replica left (stale beats unavailable for reads;
//! writes to that shard get 503).

use super::cause::{describe, pool_failed, Bounds, Target as Endpoint};
use super::{pg_err, unavailable, PgOptions};
use crate::{
    Counter, ReadFrom, ReadPin, ShardCounts, ShardStatements, StoreResult, Target, WritePos,
};
use confab_core::id::LogicalShard;
use confab_core::DomainError;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// A bounded connection pool for one server, and where it points (errors name it).
#[derive(Clone)]
pub struct PgPool {
    pool: Pool,
    at: Endpoint,
    bounds: Bounds,
}

/// Builds a bounded pool for one server.
pub fn pool(dsn: &str, opts: &PgOptions, size: usize) -> StoreResult<PgPool> {
    let mut cfg: tokio_postgres::Config = dsn
        .parse()
        .map_err(|e| DomainError::invalid(format!("bad PostgreSQL DSN {}: {e}", redact(dsn))))?;
    let at = Endpoint::of(&cfg);
    cfg.application_name("confab");
    cfg.connect_timeout(Duration::from_millis(opts.connect_timeout_ms));
    cfg.options(format!(
        "-c statement_timeout={} -c lock_timeout={}",
        opts.statement_timeout_ms, opts.statement_timeout_ms
    ));
    cfg.keepalives_idle(Duration::from_secs(30));
    let mgr = Manager::from_connect(
        cfg,
        Connector { at: at.clone() },
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(mgr)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_millis(opts.pool_wait_ms)))
        .create_timeout(Some(Duration::from_millis(opts.connect_timeout_ms)))
        .recycle_timeout(Some(Duration::from_millis(opts.connect_timeout_ms)))
        .build()
        .map_err(|e| {
            tracing::error!(error = %e, "building a PostgreSQL pool");
            DomainError::internal()
        })?;
    Ok(PgPool {
        pool,
        at,
        bounds: Bounds {
            connect_ms: opts.connect_timeout_ms,
            wait_ms: opts.pool_wait_ms,
            size: size.max(1),
        },
    })
}

/// Opens pooled connections (as deadpool's own connector does) and runs each connection's task,
/// logging why it ended in words an operator can act on (deadpool's says only `db error`).
struct Connector {
    at: Endpoint,
}

type Connected =
    Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>;

impl deadpool_postgres::Connect for Connector {
    fn connect(
        &self,
        cfg: &tokio_postgres::Config,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Connected> + Send + '_>> {
        let cfg = cfg.clone();
        Box::pin(async move {
            let (client, connection) = cfg.connect(NoTls).await?;
            let addr = self.at.addr.clone();
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(cause = %format!("PostgreSQL at {addr}: {}", describe(&e, None)), "PostgreSQL connection ended");
                }
            });
            Ok((client, task))
        })
    }
}

impl PgPool {
    /// A connection, or why there is none (`cannot connect to PostgreSQL at db1:5432:
    /// connection refused`).
    pub async fn try_get(&self) -> Result<Object, String> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_failed(&self.at, self.bounds, &e))
    }

    /// Where the pool connects (`host:port`).
    pub fn addr(&self) -> &str {
        &self.at.addr
    }

    pub fn inner(&self) -> &Pool {
        &self.pool
    }
}

/// Takes a connection, mapping pool failures (server down, pool exhausted) to 503 with the
/// cause for operators.
pub async fn get(pool: &PgPool, what: &str) -> StoreResult<Object> {
    pool.try_get().await.map_err(|cause| {
        tracing::warn!(server = what, cause = %cause, "no PostgreSQL connection");
        unavailable(&format!("{what} is unavailable, retry shortly")).with_cause(cause)
    })
}

pub struct Replica {
    pub dsn: String,
    pool: PgPool,
    /// Why the last poll failed (None: it answered).
    last_error: Mutex<Option<String>>,
    /// Replay position at the last poll.
    replay: AtomicU64,
    up: AtomicBool,
    lagging: AtomicBool,
    behind_since: Mutex<Option<Instant>>,
}

impl Replica {
    pub fn usable(&self) -> bool {
        self.up.load(Ordering::Relaxed) && !self.lagging.load(Ordering::Relaxed)
    }
    pub fn replay_lsn(&self) -> u64 {
        self.replay.load(Ordering::Relaxed)
    }
}

/// One physical shard server: a primary and its replicas.
pub struct Server {
    pub id: i32,
    pub name: String,
    pub primary_dsn: String,
    primary: PgPool,
    primary_up: AtomicBool,
    /// Why the primary did not answer the last poll (None: it answered).
    primary_error: Mutex<Option<String>>,
    /// The primary's insert position at the last poll, and the poll before it.
    primary_lsn: AtomicU64,
    prev_primary_lsn: AtomicU64,
    /// This node's latest commit on this server (the floor for [`ReadPin::Fresh`]).
    floor: AtomicU64,
    pub replicas: Vec<Replica>,
    rr: AtomicUsize,
    /// Statements run here (kept by the router per server name, across map reloads).
    counts: Arc<ShardCounts>,
    /// The primary's queue of posts for group commit, started by the first post, and its
    /// bounds: posts per transaction, transactions at once.
    group: std::sync::OnceLock<super::group::Committer>,
    group_bounds: (usize, usize),
}

impl Server {
    fn new(
        id: i32,
        name: String,
        primary_dsn: String,
        replica_dsns: Vec<String>,
        opts: &PgOptions,
        counts: Arc<ShardCounts>,
    ) -> StoreResult<Server> {
        let primary = pool(&primary_dsn, opts, opts.pool_size)?;
        let replicas = replica_dsns
            .into_iter()
            .map(|dsn| {
                Ok(Replica {
                    pool: pool(&dsn, opts, opts.pool_size)?,
                    dsn,
                    last_error: Mutex::new(None),
                    replay: AtomicU64::new(0),
                    up: AtomicBool::new(false),
                    lagging: AtomicBool::new(false),
                    behind_since: Mutex::new(None),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Server {
            id,
            name,
            primary_dsn,
            primary,
            primary_up: AtomicBool::new(true),
            primary_error: Mutex::new(None),
            primary_lsn: AtomicU64::new(0),
            prev_primary_lsn: AtomicU64::new(0),
            floor: AtomicU64::new(0),
            replicas,
            rr: AtomicUsize::new(0),
            counts,
            group: std::sync::OnceLock::new(),
            // A quarter of the pool: four groups in flight of the default 16 measured best
            // over a fresh and a filled database on 2 cores (two starved the filled one, eight
            // made groups too small); the rest of the pool is for reads and the general path.
            group_bounds: (opts.group_commit.max(1), (opts.pool_size / 4).max(1)),
        })
    }

    /// A server not (yet) in the map, to migrate or inspect it.
    pub fn probe(name: &str, primary: &str, opts: &PgOptions) -> StoreResult<Server> {
        Server::new(
            0,
            name.into(),
            primary.into(),
            Vec::new(),
            opts,
            Arc::default(),
        )
    }

    /// A counter for one call's statements on this server's primary or a replica.
    pub fn counter(&self, target: Target) -> Counter {
        self.counts.counter(target)
    }

    pub async fn primary(&self) -> StoreResult<Object> {
        match get(&self.primary, &format!("shard server {}", self.name)).await {
            Ok(c) => {
                self.primary_up.store(true, Ordering::Relaxed);
                Ok(c)
            }
            Err(e) => {
                self.primary_up.store(false, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Posts per group at most, groups in flight at once (see [`super::group`]).
    pub(super) fn group_bounds(&self) -> (usize, usize) {
        self.group_bounds
    }

    /// The primary's queue of posts (see [`super::group`]).
    pub(super) fn committer(&self) -> &super::group::Committer {
        self.group.get_or_init(|| {
            super::group::Committer::start(
                self.primary.clone(),
                self.name.clone(),
                self.counts.clone(),
                self.group_bounds,
            )
        })
    }

    pub fn primary_pool(&self) -> &PgPool {
        &self.primary
    }

    pub fn primary_up(&self) -> bool {
        self.primary_up.load(Ordering::Relaxed)
    }

    /// Why the primary did not answer the last poll, if it did not.
    pub fn primary_down(&self) -> Option<String> {
        self.primary_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records a commit of this node; returns its position.
    pub fn committed(&self, lsn: u64) -> WritePos {
        self.floor.fetch_max(lsn, Ordering::Relaxed);
        WritePos {
            server: self.id,
            lsn,
        }
    }

    /// A replica that has replayed at least `need`, round robin among those that qualify.
    fn replica_at(&self, need: u64) -> Option<usize> {
        let n = self.replicas.len();
        if n == 0 {
            return None;
        }
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.replicas[i].usable() && self.replicas[i].replay_lsn() >= need)
    }

    /// The replica furthest ahead that answers (lagging or not), for when the primary is down.
    fn best_replica(&self) -> Option<usize> {
        (0..self.replicas.len())
            .filter(|&i| self.replicas[i].up.load(Ordering::Relaxed))
            .max_by_key(|&i| self.replicas[i].replay_lsn())
    }

    /// Polls the primary's position and every replica's replay position once.
    async fn poll(&self, lag_bound: Duration) {
        let polled = poll_lsn(
            &self.primary,
            "SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint",
        )
        .await;
        *self.primary_error.lock().unwrap_or_else(|p| p.into_inner()) = polled.clone().err();
        match polled {
            Ok(lsn) => {
                if !self.primary_up.swap(true, Ordering::Relaxed) {
                    tracing::info!(server = %self.name, "shard primary answering");
                }
                let prev = self.primary_lsn.swap(lsn, Ordering::Relaxed);
                self.prev_primary_lsn.store(prev, Ordering::Relaxed);
            }
            Err(cause) => {
                if self.primary_up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(server = %self.name, cause = %cause, "shard primary not answering");
                }
            }
        }
        let target = self.prev_primary_lsn.load(Ordering::Relaxed);
        for r in &self.replicas {
            let polled = poll_lsn(
                &r.pool,
                "SELECT (coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn()) - '0/0')::bigint",
            )
            .await;
            *r.last_error.lock().unwrap_or_else(|p| p.into_inner()) = polled.clone().err();
            match polled {
                Ok(lsn) => {
                    r.replay.store(lsn, Ordering::Relaxed);
                    if !r.up.swap(true, Ordering::Relaxed) {
                        tracing::info!(server = %self.name, replica = %redact(&r.dsn), "replica answering");
                    }
                    // Behind what the primary had one poll ago: how long has that lasted?
                    let mut since = r.behind_since.lock().unwrap_or_else(|p| p.into_inner());
                    if lsn >= target {
                        *since = None;
                    } else if since.is_none() {
                        *since = Some(Instant::now());
                    }
                    let lagging = since.is_some_and(|t| t.elapsed() > lag_bound);
                    if r.lagging.swap(lagging, Ordering::Relaxed) != lagging {
                        tracing::warn!(server = %self.name, replica = %redact(&r.dsn), lagging, "replica lag state changed");
                    }
                }
                Err(cause) => {
                    if r.up.swap(false, Ordering::Relaxed) {
                        tracing::warn!(server = %self.name, replica = %redact(&r.dsn), cause = %cause, "replica not answering; reads leave it");
                    }
                }
            }
        }
    }

    /// Each replica as the last polls saw it.
    pub fn replica_status(&self) -> Vec<ReplicaStatus> {
        let p = self.primary_lsn.load(Ordering::Relaxed);
        self.replicas
            .iter()
            .map(|r| {
                let up = r.up.load(Ordering::Relaxed);
                ReplicaStatus {
                    dsn: redact(&r.dsn),
                    lag: up.then(|| p.saturating_sub(r.replay_lsn())),
                    lagging: r.lagging.load(Ordering::Relaxed),
                    error: if up {
                        None
                    } else {
                        r.last_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .clone()
                    },
                }
            })
            .collect()
    }
}

/// One replica in `confab shards list`.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// The DSN, password hidden.
    pub dsn: String,
    /// Bytes behind the primary's last polled position (None: not answering).
    pub lag: Option<u64>,
    /// Left out of reads for lag.
    pub lagging: bool,
    /// Why it does not answer, when it does not.
    pub error: Option<String>,
}

/// One poll of a position, bounded: the value, or why there is none.
async fn poll_lsn(pool: &PgPool, sql: &str) -> Result<u64, String> {
    const POLL_TIMEOUT: Duration = Duration::from_secs(1);
    let read = async {
        let c = pool.try_get().await?;
        let row = c
            .query_one(sql, &[])
            .await
            .map_err(|e| format!("PostgreSQL at {}: {}", pool.addr(), describe(&e, None)))?;
        Ok(row.get::<_, i64>(0) as u64)
    };
    match tokio::time::timeout(POLL_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "PostgreSQL at {}: no answer within {} ms",
            pool.addr(),
            POLL_TIMEOUT.as_millis()
        )),
    }
}

/// A DSN without its password, for logs and `confab shards list`: the same rule as every
/// configured secret ([`confab_core::secret::redact`]).
pub fn redact(dsn: &str) -> String {
    confab_core::secret::redact(dsn)
}

/// Which replica a read went to.
pub struct ReplicaRef {
    server: Arc<Server>,
    index: usize,
}

/// The map as loaded from the control database.
pub struct ShardMap {
    pub version: i64,
    /// `(lo, hi, server)`, sorted by `lo`.
    pub ranges: Vec<(u16, u16, i32)>,
    pub overrides: HashMap<u16, i32>,
    pub servers: HashMap<i32, Arc<Server>>,
}

impl ShardMap {
    pub fn server_id(&self, shard: LogicalShard) -> Option<i32> {
        let l = shard.get();
        if let Some(s) = self.overrides.get(&l) {
            return Some(*s);
        }
        let i = self.ranges.partition_point(|r| r.0 <= l);
        let (lo, hi, s) = *self.ranges.get(i.checked_sub(1)?)?;
        (lo <= l && l <= hi).then_some(s)
    }
}

/// Read counters (for the bench and for operators).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStats {
    pub primary: u64,
    pub replica: u64,
}

pub struct Router {
    pub opts: PgOptions,
    pub control: PgPool,
    map: RwLock<Arc<ShardMap>>,
    reload: tokio::sync::Mutex<()>,
    /// Statements on the control database, and on each shard server by name (never removed,
    /// so totals only move up; a server's name is unique in the map).
    control_counts: Arc<ShardCounts>,
    counts: Mutex<BTreeMap<String, Arc<ShardCounts>>>,
    reads_primary: AtomicU64,
    reads_replica: AtomicU64,
}

impl Router {
    pub async fn open(opts: PgOptions) -> StoreResult<Arc<Router>> {
        let control = pool(opts.control.expose(), &opts, opts.pool_size)?;
        let r = Arc::new(Router {
            opts,
            control,
            map: RwLock::new(Arc::new(ShardMap {
                version: 0,
                ranges: Vec::new(),
                overrides: HashMap::new(),
                servers: HashMap::new(),
            })),
            reload: tokio::sync::Mutex::new(()),
            control_counts: Arc::default(),
            counts: Mutex::new(BTreeMap::new()),
            reads_primary: AtomicU64::new(0),
            reads_replica: AtomicU64::new(0),
        });
        Ok(r)
    }

    pub fn map(&self) -> Arc<ShardMap> {
        self.map.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A counter for one call's statements on the control database.
    pub fn control_counter(&self) -> Counter {
        self.control_counts.counter(Target::Primary)
    }

    /// The statement counts of the server named `name` (made on first use).
    fn counts_for(&self, name: &str) -> Arc<ShardCounts> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Statements so far: the control database's, then each shard server's by name.
    pub fn statements(&self) -> Vec<ShardStatements> {
        let row = |shard: &str, c: &ShardCounts| {
            let (primary, replica) = c.get();
            ShardStatements {
                shard: shard.to_string(),
                primary,
                replica,
            }
        };
        let mut out = vec![row("control", &self.control_counts)];
        out.extend(
            self.counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(name, c)| row(name, c)),
        );
        out
    }

    pub fn read_stats(&self) -> ReadStats {
        ReadStats {
            primary: self.reads_primary.load(Ordering::Relaxed),
            replica: self.reads_replica.load(Ordering::Relaxed),
        }
    }

    /// Reloads the map if its version changed (or `force`). Pools of unchanged servers are kept.
    pub async fn refresh(&self, force: bool) -> StoreResult<bool> {
        let _g = self.reload.lock().await;
        let c = get(&self.control, "control database").await?;
        let version: i64 = c
            .query_one("SELECT version FROM shard_map_version", &[])
            .await
            .map_err(pg_err)?
            .get(0);
        let old = self.map();
        if version == old.version && !force {
            return Ok(false);
        }
        let mut servers = HashMap::new();
        for row in c
            .query(
                "SELECT id, name, primary_dsn, replica_dsns FROM shard_servers ORDER BY id",
                &[],
            )
            .await
            .map_err(pg_err)?
        {
            let (id, name, primary, replicas): (i32, String, String, Vec<String>) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let keep = old.servers.get(&id).filter(|s| {
                s.primary_dsn == primary && s.replicas.iter().map(|r| &r.dsn).eq(replicas.iter())
            });
            let server = match keep {
                Some(s) => s.clone(),
                None => {
                    let counts = self.counts_for(&name);
                    Arc::new(Server::new(
                        id, name, primary, replicas, &self.opts, counts,
                    )?)
                }
            };
            servers.insert(id, server);
        }
        let mut ranges: Vec<(u16, u16, i32)> = c
            .query(
                "SELECT lo, hi, server_id FROM shard_ranges ORDER BY lo",
                &[],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| {
                (
                    r.get::<_, i32>(0) as u16,
                    r.get::<_, i32>(1) as u16,
                    r.get::<_, i32>(2),
                )
            })
            .collect();
        ranges.sort_unstable();
        let overrides = c
            .query("SELECT logical, server_id FROM shard_overrides", &[])
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| (r.get::<_, i32>(0) as u16, r.get::<_, i32>(1)))
            .collect();
        let map = ShardMap {
            version,
            ranges,
            overrides,
            servers,
        };
        if old.version != 0 {
            tracing::info!(from = old.version, to = version, "shard map reloaded");
        }
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
        Ok(true)
    }

    /// The server that owns a logical shard now.
    pub fn server_for(&self, shard: LogicalShard) -> StoreResult<Arc<Server>> {
        let map = self.map();
        map.server_id(shard)
            .and_then(|id| map.servers.get(&id).cloned())
            .ok_or_else(|| {
                tracing::error!(
                    shard = shard.get(),
                    "logical shard has no server in the shard map"
                );
                unavailable("this forum's shard has no server")
            })
    }

    /// Every server (for work that visits all shards: tasks, pruning).
    pub fn servers(&self) -> Vec<Arc<Server>> {
        let mut v: Vec<_> = self.map().servers.values().cloned().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// A connection to read `shard` from, as `from` and the current task's pin allow, which
    /// replica it is on (None: the primary), and the counter of its statements.
    pub async fn read_conn(
        &self,
        shard: LogicalShard,
        from: ReadFrom,
    ) -> StoreResult<(Object, Option<ReplicaRef>, Counter)> {
        let server = self.server_for(shard)?;
        if from == ReadFrom::Replica && !server.replicas.is_empty() {
            let need = match crate::pin::read_pin() {
                Some(ReadPin::At(p)) if p.server == server.id => p.lsn,
                Some(ReadPin::At(_)) => 0,
                Some(ReadPin::Fresh) => server.floor.load(Ordering::Relaxed),
                None => 0,
            };
            // A replica that has seen what this read must see; failing that, an unpinned read
            // takes the replica furthest ahead while the primary is down. A pinned read never
            // does: it tries the primary (the poller may think it down only because it was slow
            // to answer), and reaches a replica below only if the primary really fails.
            let pick = match server.replica_at(need) {
                Some(i) => Some(i),
                None if need == 0 && !server.primary_up() => server.best_replica(),
                None => None,
            };
            if let Some(i) = pick {
                if let Ok(c) = server.replicas[i].pool.try_get().await {
                    self.reads_replica.fetch_add(1, Ordering::Relaxed);
                    return Ok((
                        c,
                        Some(ReplicaRef {
                            server: server.clone(),
                            index: i,
                        }),
                        server.counter(Target::Replica),
                    ));
                }
                server.replicas[i].up.store(false, Ordering::Relaxed);
            }
        }
        match server.primary().await {
            Ok(c) => {
                self.reads_primary.fetch_add(1, Ordering::Relaxed);
                Ok((c, None, server.counter(Target::Primary)))
            }
            Err(e) if from == ReadFrom::Replica => {
                // The primary is down: any replica that answers.
                for (i, r) in server
                    .replicas
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.up.load(Ordering::Relaxed))
                {
                    if let Ok(c) = r.pool.try_get().await {
                        self.reads_replica.fetch_add(1, Ordering::Relaxed);
                        return Ok((
                            c,
                            Some(ReplicaRef {
                                server: server.clone(),
                                index: i,
                            }),
                            server.counter(Target::Replica),
                        ));
                    }
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// A read on a replica failed for want of the replica: leave it out until the poller
    /// hears from it again, and give the caller the primary instead.
    pub async fn replica_failed(&self, r: &ReplicaRef) -> StoreResult<(Object, Counter)> {
        if r.server.replicas[r.index].up.swap(false, Ordering::Relaxed) {
            tracing::warn!(server = %r.server.name, replica = %redact(&r.server.replicas[r.index].dsn), "replica read failed; reads leave it");
        }
        let c = r.server.primary().await?;
        self.reads_primary.fetch_add(1, Ordering::Relaxed);
        Ok((c, r.server.counter(Target::Primary)))
    }

    /// Starts the background loops: map refresh and replica polling. They stop when the router
    /// is dropped.
    pub fn spawn_background(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = Duration::from_millis(self.opts.map_refresh_ms.max(50));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(r) = weak.upgrade() else { return };
                if let Err(e) = r.refresh(false).await {
                    tracing::debug!(error = %e.reason(), "shard map refresh failed; keeping the cached map");
                }
            }
        });
        let weak = Arc::downgrade(self);
        let every = Duration::from_millis(self.opts.replica_poll_ms.max(10));
        let bound = Duration::from_millis(self.opts.replica_max_lag_ms);
        tokio::spawn(async move {
            loop {
                let Some(r) = weak.upgrade() else { return };
                let servers = r.servers();
                drop(r);
                futures_util::future::join_all(servers.iter().map(|s| s.poll(bound))).await;
                tokio::time::sleep(every).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(ranges: Vec<(u16, u16, i32)>, overrides: &[(u16, i32)]) -> ShardMap {
        ShardMap {
            version: 1,
            ranges,
            overrides: overrides.iter().copied().collect(),
            servers: HashMap::new(),
        }
    }

    fn at(m: &ShardMap, l: u16) -> Option<i32> {
        m.server_id(LogicalShard::new(l).unwrap_or_else(|| LogicalShard::for_name("")))
    }

    #[test]
    fn ranges_route_every_logical_shard_and_overrides_win() {
        let m = map(vec![(0, 2047, 1), (2048, 4095, 2)], &[(7, 3), (3000, 1)]);
        assert_eq!(at(&m, 0), Some(1));
        assert_eq!(at(&m, 2047), Some(1));
        assert_eq!(at(&m, 2048), Some(2));
        assert_eq!(at(&m, 4095), Some(2));
        assert_eq!(at(&m, 7), Some(3), "an override takes one shard elsewhere");
        assert_eq!(at(&m, 8), Some(1));
        assert_eq!(at(&m, 3000), Some(1));
    }

    #[test]
    fn gaps_in_the_ranges_route_nowhere() {
        let m = map(vec![(10, 19, 1), (30, 39, 2)], &[]);
        assert_eq!(at(&m, 9), None);
        assert_eq!(at(&m, 10), Some(1));
        assert_eq!(at(&m, 19), Some(1));
        assert_eq!(at(&m, 20), None);
        assert_eq!(at(&m, 35), Some(2));
        assert_eq!(at(&m, 40), None);
        assert_eq!(at(&map(vec![], &[]), 0), None);
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("postgres://confab:s3cret@db1:5432/confab"),
            "postgres://confab:***@db1:5432/confab"
        );
        assert_eq!(
            redact("postgres://confab@db1/confab"),
            "postgres://confab@db1/confab"
        );
        assert_eq!(redact("host=db1 user=confab"), "host=db1 user=confab");
        assert_eq!(
            redact("host=db1 user=confab password=s3cret"),
            "host=db1 user=confab password=***"
        );
    }
}

//! Which storage the suite runs on. `CONFAB_TEST_BACKEND=postgres` (with `CONFAB_TEST_PG` naming
//! the `cluster.json` that `scripts/pg-cluster.sh` wrote) runs every test against sharded
//! PostgreSQL: each test gets fresh databases (a control database and one database on each
//! shard server, so two shard servers, one with a streaming replica), its logical shards spread
//! over them. Otherwise tests use the embedded SQLite file in their data directory.
//!
//! A data directory remembers its PostgreSQL databases (`pg-control` in it), so processes
//! started on the same directory (two nodes, a worker, a restart) share them.

use confab_store::pg::{admin, PgOptions, PgStore};
use confab_store::sqlite::SqliteStore;
use confab_store::Store;
use serde::Deserialize;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    pub control: String,
    pub shards: Vec<ClusterShard>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClusterShard {
    pub name: String,
    pub primary: String,
    pub replicas: Vec<String>,
}

/// The shared cluster when the suite runs on PostgreSQL.
pub fn cluster() -> Option<&'static Cluster> {
    static C: OnceLock<Option<Cluster>> = OnceLock::new();
    C.get_or_init(|| {
        if std::env::var("CONFAB_TEST_BACKEND").ok().as_deref() != Some("postgres") {
            return None;
        }
        let path = std::env::var("CONFAB_TEST_PG")
            .expect("CONFAB_TEST_BACKEND=postgres needs CONFAB_TEST_PG (scripts/pg-cluster.sh)");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        Some(serde_json::from_str(&text).expect("cluster.json"))
    })
    .as_ref()
}

#[allow(dead_code)]
pub fn is_postgres() -> bool {
    cluster().is_some()
}

/// `dsn` with its database name replaced by `db`.
pub fn with_db(dsn: &str, db: &str) -> String {
    let (base, query) = match dsn.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (dsn, String::new()),
    };
    let cut = base.rfind('/').expect("a DSN with a database");
    format!("{}/{db}{query}", &base[..cut])
}

/// Options for tests: small pools, quick polling.
pub fn options(control: &str) -> PgOptions {
    let mut o = PgOptions::new(control);
    o.pool_size = 4;
    o.map_refresh_ms = 200;
    o.replica_poll_ms = 20;
    o.replica_max_lag_ms = 2_000;
    o
}

async fn create_db(maintenance: &str, db: &str) {
    let (client, conn) = tokio_postgres::connect(maintenance, tokio_postgres::NoTls)
        .await
        .expect("connect to test PostgreSQL");
    let h = tokio::spawn(conn);
    client
        // A UTF-8 locale, as production databases usually have: rules that must not depend on
        // the locale (case folding of addresses) are tested where it would show.
        .batch_execute(&format!(
            "CREATE DATABASE {db} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'"
        ))
        .await
        .expect("create database");
    drop(client);
    let _ = h.await;
}

/// Waits (up to 20 s) until a connection to `dsn` opens: a database just created on a primary
/// appears on its replicas once they replay it.
async fn wait_for_db(dsn: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match tokio_postgres::connect(dsn, tokio_postgres::NoTls).await {
            Ok(_) => return,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{dsn} never answered: {e:?}"),
        }
    }
}

/// Fresh databases for one test; returns the control DSN, servers registered and ranges spread.
pub async fn provision(c: &Cluster) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let db = format!(
        "t{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        confab_core::now_ms() % 100_000
    );
    create_db(&c.control, &db).await;
    for s in &c.shards {
        create_db(&s.primary, &db).await;
    }
    let control = with_db(&c.control, &db);
    let store = PgStore::open(options(&control))
        .await
        .expect("open control");
    let mut names = Vec::new();
    for s in &c.shards {
        let replicas: Vec<String> = s.replicas.iter().map(|r| with_db(r, &db)).collect();
        // `shards add` checks each replica, so it must have replayed the new database.
        for r in &replicas {
            wait_for_db(r).await;
        }
        admin::add_server(
            store.router(),
            &s.name,
            &with_db(&s.primary, &db),
            &replicas,
            admin::AddChecks::default(),
        )
        .await
        .expect("add server");
        names.push(s.name.clone());
    }
    admin::spread_ranges(store.router(), &names)
        .await
        .expect("spread ranges");
    control
}

/// The store for a test's data directory: PostgreSQL databases of its own when the suite runs
/// on PostgreSQL (made on first use), else the SQLite file in it.
pub async fn open_store(dir: &Path) -> Arc<dyn Store> {
    match cluster() {
        None => Arc::new(SqliteStore::open(&dir.join("confab.sqlite3"), 4).expect("open store")),
        Some(c) => {
            let control = match std::fs::read_to_string(dir.join("pg-control")) {
                Ok(s) => s,
                Err(_) => {
                    let s = provision(c).await;
                    std::fs::write(dir.join("pg-control"), &s).expect("write pg-control");
                    s
                }
            };
            Arc::new(
                PgStore::open(options(&control))
                    .await
                    .expect("open PostgreSQL store"),
            )
        }
    }
}

/// Environment for a `confab serve` process on `dir`: its databases when on PostgreSQL.
pub fn process_env(dir: &Path) -> Vec<(String, String)> {
    let Some(c) = cluster() else {
        return Vec::new();
    };
    std::fs::create_dir_all(dir).expect("data dir");
    let path = dir.join("pg-control");
    let control = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(_) => {
            let c = c.clone();
            // Callers may be inside a runtime: provision on a thread with its own.
            let s = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(provision(&c))
            })
            .join()
            .expect("provision");
            std::fs::write(&path, &s).expect("write pg-control");
            s
        }
    };
    vec![
        ("CONFAB_POSTGRES__CONTROL".into(), control),
        ("CONFAB_POSTGRES__POOL_SIZE".into(), "4".into()),
        ("CONFAB_POSTGRES__MAP_REFRESH_MS".into(), "200".into()),
        ("CONFAB_POSTGRES__REPLICA_POLL_MS".into(), "20".into()),
    ]
}

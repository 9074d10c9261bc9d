//! `confab shards …` (the sharded PostgreSQL deployment's map, servers, moves and checks) and
//! `confab migrate-data` (embedded SQLite into PostgreSQL).

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use confab_server::config::Config;
use confab_store::pg::moves::{self, MoveOptions};
use confab_store::pg::{admin, migrate_data, PgStore};
use confab_store::prelude::*;
use std::time::Duration;

#[derive(Subcommand)]
pub enum ShardsCmd {
    /// The shard map (ranges, overrides), and each server's logical shards, forums, rows, size
    /// and replicas.
    List,
    /// Register a shard server (its database is migrated first). The first server gets every
    /// logical shard; later ones none until shards move to them.
    Add {
        /// Server name: letters, digits, '-' or '_'.
        name: String,
        /// The primary's DSN.
        #[arg(long)]
        primary: String,
        /// A streaming replica's DSN, repeatable.
        #[arg(long = "replica")]
        replicas: Vec<String>,
        /// Register even when a check fails: the primary's database belongs to another Confab
        /// deployment (this one takes it over: the other must no longer use it) or is
        /// registered here under another name, the primary is in recovery, or a replica cannot
        /// be reached or does not replicate this primary.
        #[arg(long)]
        force: bool,
    },
    /// Split the 4096 logical shards evenly over these servers, in order (only while no forum
    /// exists: after that, move shards).
    Spread {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Move a logical shard to another server, online (writers to it wait a moment). Run the
    /// same command again to finish a move that was interrupted.
    Move(MoveArgs),
    /// Check every shard's rows are on its server only and the counters add up (exit status 1
    /// on problems).
    Verify,
}

#[derive(Args)]
pub struct MoveArgs {
    /// The logical shard (0-4095); with --forum, the target server instead.
    #[arg(value_name = "LOGICAL")]
    logical: String,
    /// The server to move it to (by name).
    #[arg(value_name = "TARGET")]
    target: Option<String>,
    /// Move the logical shard of this forum.
    #[arg(long)]
    forum: Option<String>,
    /// Wait between the flip and deleting the source's rows, so every node has reloaded the
    /// map (default: 3 × postgres.map_refresh_ms).
    #[arg(long)]
    grace_ms: Option<u64>,
}

#[derive(Args)]
pub struct MigrateDataArgs {
    /// The control database's DSN.
    #[arg(long)]
    to: String,
    /// `NAME=PRIMARY_DSN`, repeatable: shard servers to register if the control database has
    /// none yet (their logical shards are spread evenly when there are no forums yet).
    #[arg(long = "server")]
    servers: Vec<String>,
}

fn need_postgres(config: &Config) -> Result<()> {
    if config.postgres.control.is_empty() {
        bail!(
            "this command works on a sharded PostgreSQL deployment: set [postgres] control in the configuration \
             (or CONFAB_POSTGRES__CONTROL=postgres://user@host/db)"
        );
    }
    Ok(())
}

async fn open(config: &Config) -> Result<PgStore> {
    PgStore::open(config.postgres.clone())
        .await
        .context("opening PostgreSQL")
}

fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub async fn run(config: Config, cmd: ShardsCmd) -> Result<()> {
    need_postgres(&config)?;
    let store = open(&config).await?;
    let r = store.router().clone();
    match cmd {
        ShardsCmd::List => {
            let (version, ranges, overrides, servers) = admin::report(&r).await?;
            let name = |id: i32| {
                servers
                    .iter()
                    .find(|s| s.id == id)
                    .map_or_else(|| format!("#{id}"), |s| s.name.clone())
            };
            println!("shard map version {version}");
            if ranges.is_empty() {
                println!("no servers yet: confab shards add NAME --primary DSN");
            }
            for (lo, hi, s) in &ranges {
                println!("  logical {lo:>4}-{hi:<4} -> {}", name(*s));
            }
            for (l, s) in &overrides {
                println!("  logical {l:>4}      -> {} (moved)", name(*s));
            }
            for (l, from, to, phase) in moves::unfinished(&r).await? {
                println!("  logical {l:>4}: move from {from} to {to} unfinished (phase {phase}): confab shards move {l} {to}");
            }
            println!();
            println!(
                "{:<12} {:>4} {:<5} {:>7} {:>7} {:>9} {:>10} {:>10}  primary",
                "server", "id", "up", "logical", "forums", "threads", "comments", "size"
            );
            for s in &servers {
                println!(
                    "{:<12} {:>4} {:<5} {:>7} {:>7} {:>9} {:>10} {:>10}  {}",
                    s.name,
                    s.id,
                    if s.up { "yes" } else { "NO" },
                    s.logical,
                    s.forums,
                    s.threads,
                    s.comments,
                    size(s.bytes),
                    s.primary
                );
                if let Some(why) = &s.down {
                    println!("{:<12} primary DOWN: {why}", "");
                }
                for rep in &s.replicas {
                    let dsn = &rep.dsn;
                    match (rep.lag, &rep.error) {
                        (Some(b), _) => println!(
                            "{:<12} replica {dsn}: up, {b} bytes behind{}",
                            "",
                            if rep.lagging {
                                ", LAGGING (no reads)"
                            } else {
                                ""
                            }
                        ),
                        (None, Some(why)) => println!("{:<12} replica {dsn}: DOWN: {why}", ""),
                        (None, None) => println!("{:<12} replica {dsn}: DOWN", ""),
                    }
                }
            }
        }
        ShardsCmd::Add {
            name,
            primary,
            replicas,
            force,
        } => {
            let checks = admin::AddChecks { force };
            let id = admin::add_server(&r, &name, &primary, &replicas, checks).await?;
            println!("server {name} registered (id {id}), database migrated");
        }
        ShardsCmd::Spread { names } => {
            admin::spread_ranges(&r, &names).await?;
            println!(
                "the 4096 logical shards are spread over {}",
                names.join(", ")
            );
        }
        ShardsCmd::Move(args) => {
            let (logical, target) = match (&args.forum, &args.logical, &args.target) {
                (Some(forum), target, None) => {
                    let f = store
                        .forums()
                        .await?
                        .into_iter()
                        .find(|f| &f.name == forum)
                        .ok_or_else(|| anyhow!("no forum named {forum}"))?;
                    println!("forum {forum} is on logical shard {}", f.shard.get());
                    (f.shard.get(), target.clone())
                }
                (None, logical, Some(target)) => {
                    (logical.parse::<u16>().with_context(|| format!("{logical} is not a logical shard number"))?, target.clone())
                }
                (Some(_), _, Some(_)) => bail!("with --forum, name only the target server: confab shards move --forum NAME TARGET"),
                (None, _, None) => bail!("name the target server: confab shards move LOGICAL TARGET (or --forum NAME TARGET)"),
            };
            let grace = args.grace_ms.unwrap_or(3 * config.postgres.map_refresh_ms);
            let opts = MoveOptions {
                grace: Duration::from_millis(grace),
                ..MoveOptions::default()
            };
            let report = moves::move_shard(&r, logical, &target, opts, |m| println!("{m}")).await?;
            println!("{report}");
        }
        ShardsCmd::Verify => verify(&r).await?,
    }
    Ok(())
}

async fn verify(r: &std::sync::Arc<confab_store::pg::Router>) -> Result<()> {
    let v = moves::verify(r).await?;
    println!("{v}");
    if !v.ok() {
        bail!("verification found {} problems", v.problems.len());
    }
    Ok(())
}

pub async fn migrate_data(mut config: Config, args: MigrateDataArgs) -> Result<()> {
    let sqlite = crate::db_path(&config);
    if !sqlite.is_file() {
        bail!(
            "no SQLite database at {} (give the data directory with --data)",
            sqlite.display()
        );
    }
    let mut servers = Vec::new();
    for s in &args.servers {
        let (name, dsn) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("--server takes NAME=PRIMARY_DSN, not {s}"))?;
        servers.push((name.to_string(), dsn.to_string()));
    }
    config.postgres.control = args.to.as_str().into();
    let store = open(&config).await?;
    let r = store.router().clone();
    if r.servers().is_empty() {
        if servers.is_empty() {
            bail!("the control database has no shard servers: name them with --server NAME=PRIMARY_DSN");
        }
        for (name, dsn) in &servers {
            let id = admin::add_server(&r, name, dsn, &[], admin::AddChecks::default()).await?;
            println!("server {name} registered (id {id})");
        }
        if servers.len() > 1 && store.forums().await?.is_empty() {
            let names: Vec<String> = servers.iter().map(|s| s.0.clone()).collect();
            admin::spread_ranges(&r, &names).await?;
            println!(
                "the 4096 logical shards are spread over {}",
                names.join(", ")
            );
        }
    } else if !servers.is_empty() {
        let known: Vec<String> = r.servers().iter().map(|s| s.name.clone()).collect();
        println!(
            "the control database has servers already ({}): --server ignored",
            known.join(", ")
        );
    }
    println!("copying {} into PostgreSQL", sqlite.display());
    let report = migrate_data::migrate_data(&r, &sqlite, |m| println!("  {m}")).await?;
    for s in &report.skipped {
        println!("skipped: {s}");
    }
    let total: u64 = report.tables.iter().map(|t| t.1).sum();
    println!("copied {total} rows");
    verify(&r).await
}

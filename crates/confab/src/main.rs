//! `confab`: one binary for every role.
//!
//! - `serve`: the HTTP API and the task worker (embedded default: SQLite in `./confab-data`,
//!   nothing else to run); `--role api` or `--role worker` runs one of the two.
//! - `tasks`: list the task outbox; `tasks retry ID` queues a parked task again.
//! - `migrate`: apply schema migrations.
//! - `admin`: forums, accounts and roles from the command line.
//! - `switches`: feature switches (list, set, reset).
//! - `import`: comments from another system (`import disqus FILE --forum F`).
//! - `threads`: threads moved to new addresses (`threads remap FILE.csv --forum F`).
//! - `export`: a forum written out (`export --forum F --format disqus|json [--output FILE]`);
//!   `backup`: a consistent copy of the embedded SQLite database while the server runs.
//! - `bench`: the load generator Confab is measured with.
//! - `shards`: the sharded PostgreSQL deployment (list, add, spread, move, verify);
//!   `migrate-data`: copy the embedded SQLite database into one.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod bench;
mod export;
mod forum_settings;
mod import;
mod settings;
mod shards;
mod switches;
mod tasks;
mod threads;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use confab_server::config::{Config, LogFormat};
use confab_server::Server;
use confab_store::pg::PgStore;
use confab_store::sqlite::SqliteStore;
use confab_store::Store;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "confab",
    version,
    about = "Threaded, moderated comments for any web page"
)]
struct Cli {
    /// TOML configuration file (every key documented in confab.example.toml).
    #[arg(long, global = true, env = "CONFAB_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite file, generated secret). Overrides `data_dir`.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve {
        /// Address to listen on. Overrides `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// `off` disables write rate limits (benchmarks and load tests).
        #[arg(long, value_parser = ["on", "off"])]
        rate_limit: Option<String>,
        /// `all`: HTTP and the task worker; `api`: HTTP only; `worker`: the task worker only.
        #[arg(long, value_parser = ["all", "api", "worker"], default_value = "all")]
        role: String,
    },
    /// List the task outbox, or queue a parked task again (`confab tasks retry ID`).
    Tasks(tasks::TasksArgs),
    /// Apply pending schema migrations and exit.
    Migrate,
    /// Manage forums and accounts.
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
    /// Feature switches: list, set (`set NAME on|off [--percent N] [--forum F] [--staff]`), reset.
    Switches {
        #[command(subcommand)]
        cmd: switches::SwitchesCmd,
    },
    /// Load-test a running server.
    Bench(Box<bench::BenchArgs>),
    /// The sharded PostgreSQL deployment: map, servers, online shard moves, checks.
    Shards {
        #[command(subcommand)]
        cmd: shards::ShardsCmd,
    },
    /// Copy the embedded SQLite database (in --data) into a PostgreSQL deployment.
    MigrateData(shards::MigrateDataArgs),
    /// Import comments from another system: `confab import disqus|wordpress|isso|remark42 FILE --forum F`.
    Import {
        #[command(subcommand)]
        cmd: import::ImportCmd,
    },
    /// Threads moved to new addresses: `confab threads remap FILE.csv --forum F`.
    Threads {
        #[command(subcommand)]
        cmd: threads::ThreadsCmd,
    },
    /// Write a forum out: `confab export --forum F --format disqus|json [--output FILE]`.
    Export(export::ExportArgs),
    /// Copy the embedded SQLite database into DIR while the server runs (PostgreSQL
    /// deployments use pg_dump or pg_basebackup: see the README).
    Backup(export::BackupArgs),
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create a forum (a site).
    CreateForum {
        name: String,
        #[arg(long)]
        title: Option<String>,
        /// Allowed origin, repeatable: --origin https://blog.example.com
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// none, pre or links.
        #[arg(long)]
        moderation: Option<String>,
        /// Disallow guest comments.
        #[arg(long)]
        no_guests: bool,
    },
    /// Create an account, optionally staff or moderator of forums.
    CreateAccount {
        username: String,
        /// Password; read from CONFAB_PASSWORD when omitted.
        #[arg(long, env = "CONFAB_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        staff: bool,
        /// Forum to moderate, repeatable.
        #[arg(long = "moderator-of")]
        moderator_of: Vec<String>,
    },
    /// List forums.
    ListForums,
    /// Make an account a moderator of a forum (on) or no longer (off: its sessions end).
    SetModerator {
        /// Username.
        account: String,
        forum: String,
        #[arg(value_parser = ["on", "off"])]
        value: String,
    },
    /// Make an account staff (on) or no longer (off: its sessions end).
    SetStaff {
        /// Username.
        account: String,
        #[arg(value_parser = ["on", "off"])]
        value: String,
    },
    /// Change a forum's settings (what is not given stays); also `confab admin forum NAME …`.
    #[command(alias = "forum")]
    EditForum {
        name: String,
        #[arg(long)]
        title: Option<String>,
        /// Allowed origin, repeatable; replaces the whole list.
        #[arg(long = "origin", conflicts_with_all = ["add_origins", "remove_origins"])]
        origins: Vec<String>,
        /// Add an allowed origin to the forum's list, repeatable.
        #[arg(long = "add-origin")]
        add_origins: Vec<String>,
        /// Remove an allowed origin from the forum's list, repeatable.
        #[arg(long = "remove-origin")]
        remove_origins: Vec<String>,
        /// none, pre or links.
        #[arg(long)]
        moderation: Option<String>,
        /// Guest comments: on or off.
        #[arg(long, value_parser = ["on", "off"])]
        guests: Option<String>,
        /// Any setting `PATCH /api/v1/forums/{forum}` takes, as KEY=VALUE with a JSON value (a
        /// value that is not JSON is a string), repeatable: --set max_links=3
        /// --set 'words={"block":["casino"],"hold":[]}' --set flags_to_hold=null.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Set or remove the secret a forum's own site signs SSO tokens with (`remote_auth_s3`
    /// as Disqus defines it, or an HS256 JWT; see the README's "SSO from your site").
    Sso {
        forum: String,
        /// The secret (16-256 printable ASCII characters; your Disqus API secret key works);
        /// read from CONFAB_SSO_SECRET when omitted.
        #[arg(
            long,
            env = "CONFAB_SSO_SECRET",
            hide_env_values = true,
            conflicts_with = "clear",
            required_unless_present = "clear"
        )]
        secret: Option<String>,
        /// Remove the secret: SSO sign-in for the forum stops.
        #[arg(long)]
        clear: bool,
    },
}

/// mimalloc rather than glibc's malloc: a request makes many small, short-lived allocations on
/// whichever worker thread runs it, and glibc's arenas spent ~14 % of the server's CPU on them
/// (consolidating and unlinking chunks).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The config is read before logging starts (it says the log format); `bench` has none.
    let config = match cli.cmd {
        Cmd::Bench(_) => None,
        _ => Some(settings::load(cli.config.as_deref(), std::env::vars())?),
    };
    let format = config.as_ref().map_or(LogFormat::Text, |c| c.log_format);
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("CONFAB_LOG").unwrap_or_else(|_| "info".into())
    };
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter())
            .with_current_span(false)
            .init(),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli, config))
}

async fn run(cli: Cli, config: Option<Config>) -> Result<()> {
    if let Cmd::Bench(args) = cli.cmd {
        return bench::run(*args).await;
    }
    let Some(mut config) = config else {
        anyhow::bail!("no configuration");
    };
    if let Some(d) = cli.data {
        config.data_dir = d;
    }
    match cli.cmd {
        Cmd::Serve {
            listen,
            rate_limit,
            role,
        } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            if let Some(r) = rate_limit {
                config.rate_limit.enabled = r == "on";
                if r != "on" {
                    // A load test is one machine playing every client.
                    config.connections.max_per_ip = usize::MAX;
                }
            }
            match role.as_str() {
                "worker" => tasks::run_worker(config).await,
                "api" => {
                    config.tasks.in_process = false;
                    serve(config).await
                }
                _ => serve(config).await,
            }
        }
        Cmd::Tasks(args) => tasks::run(config, args).await,
        Cmd::Migrate => {
            std::fs::create_dir_all(&config.data_dir)?;
            if config.postgres.control.is_empty() {
                let applied = SqliteStore::migrate_file(&db_path(&config))?;
                println!("applied migrations: {applied:?}");
            } else {
                // Opening migrates the control database and every registered shard server.
                PgStore::open(config.postgres.clone()).await?;
                println!("control database and every shard server are migrated");
            }
            Ok(())
        }
        Cmd::Admin { cmd } => admin(config, cmd).await,
        Cmd::Switches { cmd } => switches::run(config, cmd).await,
        Cmd::Bench(_) => Ok(()),
        Cmd::Shards { cmd } => shards::run(config, cmd).await,
        Cmd::MigrateData(args) => shards::migrate_data(config, args).await,
        Cmd::Import { cmd } => {
            config.demo_forum = false;
            let (server, _) = open(&config).await?;
            let svc = server.service();
            let out = import::run(svc, cmd).await;
            // What was written is announced even when a later batch failed.
            announced(svc).await;
            out
        }
        Cmd::Threads { cmd } => {
            config.demo_forum = false;
            let (server, _) = open(&config).await?;
            let svc = server.service();
            let out = threads::run(svc, cmd).await;
            announced(svc).await;
            out
        }
        Cmd::Export(args) => {
            config.demo_forum = false;
            let (server, _) = open(&config).await?;
            export::run(server.service(), args).await
        }
        Cmd::Backup(args) => {
            if !config.postgres.control.is_empty() {
                anyhow::bail!("{}", confab_store::pg::BACKUP_REFUSED);
            }
            let db = db_path(&config);
            if !db.exists() {
                anyhow::bail!(
                    "no database at {}: give the data directory with --data (or data_dir in the configuration)",
                    db.display()
                );
            }
            config.demo_forum = false;
            let (server, _) = open(&config).await?;
            export::backup(server.service(), args).await
        }
    }
}

/// Prints a command's result to standard output; a reader that went away (`| head`) is not
/// an error (and never a panic, as `println!` would make it).
pub(crate) fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Into::into),
    }
}

fn db_path(config: &Config) -> PathBuf {
    config.data_dir.join("confab.sqlite3")
}

/// The configured secret, or one generated on first start and kept in the data directory.
fn secret(config: &Config) -> Result<Vec<u8>> {
    if !config.secret.is_empty() {
        return Ok(config.secret.expose().as_bytes().to_vec());
    }
    let path = config.data_dir.join("secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if s.trim().len() >= 32 {
            return Ok(s.trim().as_bytes().to_vec());
        }
    }
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    let s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    write_private(&path, &s).with_context(|| format!("writing {}", path.display()))?;
    Ok(s.into_bytes())
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

/// The configured store: sharded PostgreSQL when `postgres.control` is set, else the embedded
/// SQLite file in the data directory.
pub(crate) async fn open_store(config: &Config) -> Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    if config.postgres.control.is_empty() {
        let s = SqliteStore::open(&db_path(config), config.sqlite.readers)
            .context("opening database")?;
        return Ok(Arc::new(s));
    }
    let s = PgStore::open(config.postgres.clone())
        .await
        .context("opening PostgreSQL")?;
    Ok(Arc::new(s))
}

pub(crate) async fn open(config: &Config) -> Result<(Server, Vec<u8>)> {
    let store = open_store(config).await?;
    let key = secret(config)?;
    let server = Server::new(config.clone(), store, &key).await?;
    Ok((server, key))
}

/// A listening socket with a deep accept queue (4096, or the kernel's `somaxconn` if lower):
/// a burst of connections waits there for the accept loop instead of having its SYNs dropped
/// (a dropped SYN costs its client a one-second retransmit).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn serve(config: Config) -> Result<()> {
    let listener =
        listen(config.listen).with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (server, _) = open(&config).await?;
    // A node signs with the fleet's secret or does not serve (the CLI's other commands sign
    // nothing a node checks, and need not claim it).
    server.service().claim_secret().await?;
    if let Some(r) = server.reporter() {
        // Panics outside requests (the worker, background tasks) are reported too.
        r.report_other_panics();
    }
    tracing::info!(
        data = %config.data_dir.display(),
        rate_limits = config.rate_limit.enabled,
        "Confab is up: open http://{addr}/ in a browser (API at http://{addr}/api/v1, docs at http://{addr}/api/openapi.json)"
    );
    let drain = server.drainer();
    let drain_secs = config.connections.drain_secs;
    server
        .serve(listener, async move {
            shutdown_signal().await;
            if drain_secs > 0 {
                drain();
                tracing::info!(
                    drain_secs,
                    "draining: /readyz answers 503 and live clients are told to reconnect; still serving (a second signal stops now)"
                );
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(drain_secs)) => {}
                    _ = shutdown_signal() => tracing::info!("second signal: stopping now"),
                }
            }
        })
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn admin(mut config: Config, cmd: AdminCmd) -> Result<()> {
    config.demo_forum = false;
    let (server, _) = open(&config).await?;
    let svc = server.service();
    admin_cmd(svc, cmd).await?;
    announced(svc).await;
    Ok(())
}

/// Before a command that changed something exits: waits (up to 5 s) until its change
/// announcements are on the bus, so running nodes apply them at once.
pub(crate) async fn announced(svc: &confab_server::service::Service) {
    if !svc.announced(std::time::Duration::from_secs(5)).await {
        eprintln!("warning: the bus did not take the change announcement; running nodes see it within their periodic reload (5 s)");
    }
}

async fn admin_cmd(svc: &Arc<confab_server::service::Service>, cmd: AdminCmd) -> Result<()> {
    match cmd {
        AdminCmd::CreateForum {
            name,
            title,
            origins,
            moderation,
            no_guests,
        } => {
            let moderation = parse_moderation(moderation.as_deref())?;
            let name = confab_core::input::ForumName::parse(&name).map_err(|e| anyhow!("{e}"))?;
            let f = svc
                .create_forum(confab_server::service::NewForum {
                    name,
                    title,
                    allowed_origins: Some(origins),
                    moderation,
                    guest_posting: Some(!no_guests),
                    edit_window_secs: None,
                })
                .await?;
            println!("created forum {} (logical shard {})", f.name, f.shard.get());
        }
        AdminCmd::CreateAccount {
            username,
            password,
            email,
            staff,
            moderator_of,
        } => {
            let a = svc
                .create_account(&username, email.as_deref(), &password, None, staff)
                .await?;
            for f in &moderator_of {
                svc.set_moderator(&a, f, true).await?;
            }
            println!(
                "created account {} (id {}){}{}",
                a.username,
                a.id,
                if staff { ", staff" } else { "" },
                if moderator_of.is_empty() {
                    String::new()
                } else {
                    format!(", moderator of {}", moderator_of.join(", "))
                }
            );
        }
        AdminCmd::ListForums => {
            println!(
                "{:<24} {:>6}  {:<6} {:<6} origins",
                "name", "shard", "mod", "guests"
            );
            for f in svc.all_forums() {
                println!(
                    "{:<24} {:>6}  {:<6} {:<6} {}",
                    f.name,
                    f.shard.get(),
                    f.settings.moderation.as_str(),
                    f.settings.guest_posting,
                    f.settings.allowed_origins.join(" ")
                );
            }
        }
        AdminCmd::SetModerator {
            account,
            forum,
            value,
        } => {
            let a = svc.account_by_username(&account).await?;
            let on = value == "on";
            svc.set_moderator(&a, &forum, on).await?;
            println!(
                "{} {} a moderator of {forum}{}",
                a.username,
                if on { "is now" } else { "is no longer" },
                if on { "" } else { " (their sessions ended)" }
            );
        }
        AdminCmd::SetStaff { account, value } => {
            let a = svc.account_by_username(&account).await?;
            let on = value == "on";
            svc.set_staff(&a, on).await?;
            println!(
                "{} {} staff{}",
                a.username,
                if on { "is now" } else { "is no longer" },
                if on { "" } else { " (their sessions ended)" }
            );
        }
        AdminCmd::EditForum {
            name,
            title,
            origins,
            add_origins,
            remove_origins,
            moderation,
            guests,
            set,
        } => {
            let mut patch = forum_settings::patch_from_sets(&set)?;
            let mut flag = |key: &str, value: serde_json::Value| -> Result<()> {
                if patch.insert(key.to_string(), value).is_some() {
                    return Err(anyhow!(
                        "{key} is given twice (by its own option and by --set)"
                    ));
                }
                Ok(())
            };
            if let Some(t) = title {
                flag("title", t.into())?;
            }
            if let Some(m) = moderation {
                flag("moderation", m.into())?;
            }
            if let Some(g) = guests {
                flag("guest_posting", (g == "on").into())?;
            }
            if !origins.is_empty() {
                flag("allowed_origins", origins.into())?;
            } else if !add_origins.is_empty() || !remove_origins.is_empty() {
                let now = svc.forum(&name)?.settings.allowed_origins.clone();
                let list = forum_settings::edit_origins(&name, now, &add_origins, &remove_origins)?;
                flag("allowed_origins", list.into())?;
            }
            // The error names the setting (`max_links: -1 is out of range`).
            let changes: confab_server::http::requests::ForumPatch =
                serde_path_to_error::deserialize(serde_json::Value::Object(patch))
                    .map_err(|e| anyhow!("forum {name}: {e}"))?;
            let changes = changes.into_changes()?;
            let f = svc.edit_forum(&name, changes).await?;
            println!(
                "forum {}: title {:?}, moderation {}, guests {}, origins {}",
                f.name,
                f.settings.title,
                f.settings.moderation.as_str(),
                if f.settings.guest_posting {
                    "on"
                } else {
                    "off"
                },
                f.settings.allowed_origins.join(" ")
            );
        }
        AdminCmd::Sso {
            forum,
            secret,
            clear,
        } => {
            let f = svc.forum(&forum)?;
            let secret = match (secret, clear) {
                (_, true) => None,
                (Some(s), false) => {
                    Some(confab_core::sso::SsoSecret::parse(s.trim()).map_err(|e| anyhow!("{e}"))?)
                }
                (None, false) => return Err(anyhow!("give --secret S or --clear")),
            };
            let on = secret.is_some();
            svc.set_sso_secret(&f, secret).await?;
            if on {
                println!("forum {}: SSO secret set (readers signed in at its site sign in here through POST /api/v1/sessions/sso)", f.name);
            } else {
                println!("forum {}: SSO secret removed (SSO sign-in is off)", f.name);
            }
        }
    }
    Ok(())
}

fn parse_moderation(m: Option<&str>) -> Result<Option<confab_core::model::ModerationMode>> {
    m.map(|m| {
        confab_core::model::ModerationMode::parse(m)
            .ok_or_else(|| anyhow!("moderation must be none, pre or links"))
    })
    .transpose()
}

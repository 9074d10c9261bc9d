//! Throwaway PostgreSQL servers for the tests that need servers of their own (stop a primary,
//! pause a replica). Same settings as `scripts/lib/pg.sh`, with fsync off: each server has its
//! own temp dir under /tmp (data in `data/`, log in `log`, unix socket in the dir itself), a free
//! 127.0.0.1 port and trust auth for user `postgres`. PostgreSQL refuses to run as root, so as
//! root its programs run as the `postgres` OS user (`runuser -u postgres --`) and the temp dir is
//! chowned to it. Every call is blocking and bounded (about 30 s); call from async code with
//! `tokio::task::spawn_blocking`.
#![allow(dead_code)]

use crate::process::free_port;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The server programs: `$PG_BIN`, /usr/lib/postgresql/15/bin, the newest
/// /usr/lib/postgresql/*/bin, or `pg_config --bindir` (often client-only), whichever has initdb.
fn bindir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PG_BIN")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        dirs.push("/usr/lib/postgresql/15/bin".into());
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
            .collect();
        versions.sort();
        dirs.extend(versions.into_iter().rev().map(|(_, d)| d));
        if let Ok(o) = Command::new("pg_config").arg("--bindir").output() {
            dirs.push(String::from_utf8_lossy(&o.stdout).trim().into());
        }
        dirs.into_iter().find(|d| {
            ["initdb", "pg_ctl", "postgres", "pg_basebackup"]
                .iter()
                .all(|b| d.join(b).is_file())
        })
    })
    .as_deref()
}

/// Whether PostgreSQL's server programs are installed (tests skip themselves otherwise).
pub fn pg_available() -> bool {
    bindir().is_some()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `timeout 40 [runuser -u postgres --] BINDIR/PROGRAM`, run from `/`.
fn pg(program: &str) -> Command {
    let path = bindir()
        .expect("PostgreSQL server binaries not found")
        .join(program);
    let mut cmd = Command::new("timeout");
    cmd.arg((TIMEOUT.as_secs() + 10).to_string())
        .current_dir("/");
    cmd.args(if is_root() {
        &["runuser", "-u", "postgres", "--"][..]
    } else {
        &[]
    })
    .arg(path);
    cmd
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn temp_dir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("confab-pg-{name}-"))
        .tempdir_in("/tmp")
        .unwrap();
    if is_root() {
        run(
            Command::new("chown").arg("postgres:").arg(dir.path()),
            "chown",
        );
    }
    dir
}

pub struct PgServer {
    dir: tempfile::TempDir,
    name: String,
    port: u16,
}

impl PgServer {
    /// initdb + start a new primary.
    pub fn start(name: &str) -> PgServer {
        let server = PgServer {
            dir: temp_dir(name),
            name: name.into(),
            port: free_port(),
        };
        run(
            pg("initdb")
                .args([
                    "--no-sync",
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-D",
                ])
                .arg(server.data()),
            "initdb",
        );
        server.configure();
        server.start_again();
        server
    }

    /// A streaming replica of this server (`pg_basebackup -R -X stream`), started; returns once
    /// this server's `pg_stat_replication` shows it streaming.
    pub fn replica(&self, name: &str) -> PgServer {
        let replica = PgServer {
            dir: temp_dir(name),
            name: name.into(),
            port: free_port(),
        };
        run(
            pg("pg_basebackup")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "-D",
                ])
                .arg(replica.data()),
            "pg_basebackup",
        );
        replica.configure();
        replica.start_again();
        let sql =
            format!("select state from pg_stat_replication where application_name = '{name}'");
        let deadline = Instant::now() + TIMEOUT;
        while self.try_sql("postgres", &sql).as_deref() != Ok("streaming") {
            assert!(
                Instant::now() < deadline,
                "replica {name} is not streaming from {}:\n{}",
                self.name,
                replica.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        replica
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dsn(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `pg_ctl stop -m fast`: the server is down, its data kept.
    pub fn stop(&self) {
        run(
            &mut self.pg_ctl(&["-m", "fast", "-w", "-t", "30", "stop"]),
            "pg_ctl stop",
        );
    }

    /// Starts the server (again) and waits until it accepts connections. Retried for a while,
    /// since after `kill` the old backends may take a moment to let go of shared memory.
    pub fn start_again(&self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let log = self.dir.path().join("log");
            if self
                .pg_ctl(&["-w", "-t", "30", "start", "-l", &log.to_string_lossy()])
                .output()
                .unwrap()
                .status
                .success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        while !pg("pg_isready")
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-p",
                &self.port.to_string(),
            ])
            .status()
            .unwrap()
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "{} is not ready:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs the postmaster and every backend at once (the server process tree crashing,
    /// with transactions in flight), and waits until the postmaster is gone.
    pub fn crash(&self) {
        let Some(pid) = self.postmaster_pid() else {
            return;
        };
        // Its children, from /proc: each stat line is "pid (comm) state ppid ...".
        let backends: Vec<String> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter_map(|stat| {
                let (head, rest) = stat.rsplit_once(") ")?;
                let ppid = rest.split_whitespace().nth(1)?;
                (ppid == pid.to_string()).then(|| head.split(' ').next().unwrap_or("").to_string())
            })
            .filter(|p| !p.is_empty())
            .collect();
        // The backends first, then (before it can react) the postmaster.
        let _ = Command::new("kill").arg("-9").args(&backends).status();
        self.kill();
    }

    /// SIGKILLs the postmaster (a crash) and waits until it is gone (or a zombie nobody reaped).
    pub fn kill(&self) {
        let Some(pid) = self.postmaster_pid() else {
            return;
        };
        run(
            Command::new("kill").args(["-9", &pid.to_string()]),
            "kill -9",
        );
        let deadline = Instant::now() + TIMEOUT;
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.contains(") Z "))
        {
            assert!(
                Instant::now() < deadline,
                "postmaster {pid} survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs SQL with psql (-Atq) as postgres on database `db`; its output, trimmed.
    pub fn try_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        let psql = bindir()
            .map(|d| d.join("psql"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| "/usr/bin/psql".into());
        let out = Command::new("timeout")
            .arg("20")
            .arg(psql)
            .args([
                "-X",
                "-Atq",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &self.port.to_string(),
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .map_err(|e| e.to_string())?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        if out.status.success() {
            Ok(text(&out.stdout))
        } else {
            Err(text(&out.stderr))
        }
    }

    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|e| panic!("{} on {}: {e}", sql, self.name))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut cmd = pg("pg_ctl");
        cmd.args(args).arg("-D").arg(self.data());
        cmd
    }

    fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Our settings, appended last so they win over initdb's (or, on a replica, its primary's).
    fn configure(&self) {
        let (port, sock, name) = (self.port, self.dir.path().display(), &self.name);
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sock}'\ncluster_name = '{name}'\n\
             wal_level = replica\nmax_wal_senders = 10\nmax_replication_slots = 10\nhot_standby = on\n\
             max_connections = 300\nshared_buffers = 64MB\nfsync = off\nlog_line_prefix = '%m [%p] {name} '\n"
        );
        let hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n\
                   local replication all trust\nhost replication all 127.0.0.1/32 trust\n";
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        std::fs::write(self.data().join("pg_hba.conf"), hba).unwrap();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.postmaster_pid().is_some() {
            let _ = self
                .pg_ctl(&["-m", "immediate", "-w", "-t", "10", "stop"])
                .output();
        }
    }
}

#[test]
fn starts_primary_and_replica() {
    if !pg_available() {
        return eprintln!("skipped: no PostgreSQL server binaries (initdb)");
    }
    let primary = PgServer::start("p");
    let replica = primary.replica("r");
    assert_eq!(replica.sql("postgres", "select pg_is_in_recovery()"), "t");
    primary.sql(
        "postgres",
        "create table t (x int); insert into t values (42)",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while replica.try_sql("postgres", "select x from t").as_deref() != Ok("42") {
        assert!(Instant::now() < deadline, "row not replicated within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        replica
            .try_sql("postgres", "insert into t values (1)")
            .is_err(),
        "the replica accepted a write"
    );
}

#[test]
fn stops_restarts_and_survives_kill() {
    if !pg_available() {
        return eprintln!("skipped: no PostgreSQL server binaries (initdb)");
    }
    let server = PgServer::start("k");
    server.sql(
        "postgres",
        "create table t (x int); insert into t values (1)",
    );
    server.stop();
    assert!(
        server.try_sql("postgres", "select 1").is_err(),
        "still up after stop"
    );
    server.start_again();
    server.sql("postgres", "insert into t values (2)");
    server.kill();
    assert!(
        server.try_sql("postgres", "select 1").is_err(),
        "still up after kill"
    );
    server.start_again();
    assert_eq!(server.sql("postgres", "select count(*) from t"), "2");
}

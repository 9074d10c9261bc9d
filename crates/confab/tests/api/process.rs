//! Real `confab serve` processes for the tests that need one (kill -9, two nodes, workers).

use reqwest::StatusCode;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on, for a server about to start. Taken below the kernel's ephemeral
/// range: a port from `bind(:0)` is an ephemeral one, which an outgoing connection (a client,
/// `pg_basebackup`, a replica's WAL stream) can be given before the server binds it. Never the
/// same port twice in one test process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (first, span) = if low > 12_000 {
        (10_000, low - 10_000)
    } else {
        (low.saturating_sub(2_000).max(1024), 1_000)
    };
    // Each test binary starts at its own place, so parallel binaries rarely meet.
    let base = std::process::id().wrapping_mul(7919);
    for _ in 0..span {
        let p = first + (base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))) % span;
        if std::net::TcpListener::bind(("127.0.0.1", p as u16)).is_ok() {
            return p as u16;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process, killed (SIGKILL) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `confab serve --rate-limit off --listen 127.0.0.1:PORT --data DATA ARGS...` with `env`.
pub fn serve(data: &Path, port: u16, args: &[&str], env: &[(&str, String)]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab"));
    cmd.args([
        "serve",
        "--rate-limit",
        "off",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data",
    ])
    .arg(data)
    .args(args)
    .env("CONFAB_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    for (k, v) in crate::backend::process_env(data) {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().expect("spawn confab"))
}

/// Waits until `base/readyz` answers 200.
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not become ready");
}

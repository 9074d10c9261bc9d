//! The command line of `confab bench`.

use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Confab's `/api/v1`.
    Confab,
    /// Isso (read-hot and post only), for comparisons with peers.
    Isso,
}

/// How `fanout` subscribers listen.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Server-Sent Events (`/api/v1/threads/live`).
    Sse,
    /// WebSocket (`/api/v1/threads/live/ws`).
    Ws,
}

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Scenarios: read-hot, read-many, counts, post, mixed, render, url, bus-latency, fanout, spike; or `all`.\n\
Output: a table, or with --json one JSON object per line per scenario with keys\n\
scenario, name, requests, errors, rps, p50_ms, p90_ms, p99_ms, p999_ms (and more)."
)]
pub struct BenchArgs {
    /// Base URL of the server under test.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Another node of the same site (repeatable): the workers are spread over `--target` and
    /// these, and the store statements reported are those of every node together.
    #[arg(long = "node", value_name = "URL")]
    pub nodes: Vec<String>,
    /// Comma-separated scenarios, or `all`.
    #[arg(long, default_value = "read-hot")]
    pub scenario: String,
    /// Measured time per scenario, e.g. 10s, 500ms, 1m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unrecorded warm-up before each measurement.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Workers, each with one keep-alive connection.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Open loop at this many requests per second in total (default: closed loop).
    #[arg(long)]
    pub rate: Option<f64>,
    /// One JSON object per line per scenario instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Forum the benchmark threads live in.
    #[arg(long, default_value = "demo")]
    pub forum: String,
    /// API of the server under test.
    #[arg(long, value_enum, default_value = "confab")]
    pub flavor: Flavor,
    /// Full URL for the `url` scenario.
    #[arg(long)]
    pub url: Option<String>,
    /// `Origin` header sent to Isso (default: the target's origin).
    #[arg(long)]
    pub origin: Option<String>,
    /// Renders per input in the `render` scenario.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Name of the row in the output (default: the scenario, with `@<rate>/s` in open loop).
    #[arg(long)]
    pub label: Option<String>,
    /// Don't seed; measure whatever the server holds.
    #[arg(long)]
    pub no_seed: bool,
    /// Process id of the server (repeatable; its child processes count too): reports the CPU
    /// it used, and warns when other processes competed for the CPUs (Linux).
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// Live connections for the `fanout` scenario.
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: usize,
    /// How the `fanout` subscribers listen.
    #[arg(long, value_enum, default_value = "sse")]
    pub transport: Transport,
    /// Source addresses the `fanout` subscribers connect from, 127.0.0.1 up (a loopback target
    /// only; each address has ~28,000 ephemeral ports). Default: one per 25,000 subscribers.
    #[arg(long)]
    pub sources: Option<u8>,
    /// Posts timed in the `fanout` scenario.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// The `spike` scenario's read rates, one step each (`--duration` long), req/s.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,5000,10000,20000"
    )]
    pub spike_rates: Vec<f64>,
    /// Redis URL for the `bus-latency` scenario (e.g. redis://127.0.0.1:6379/).
    #[arg(long)]
    pub redis: Option<String>,
    /// Instead of benchmarking: print the table of a file of --json lines (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// With --report: print the rps ratio of two rows by name, `A/B` (repeatable).
    #[arg(long, value_name = "A/B")]
    pub ratio: Vec<String>,
}

/// Parses `10s`, `500ms`, `1.5s`, `2m`, `100us`; a bare number is seconds.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration `{s}` (try 10s or 500ms)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("unknown unit `{u}` in `{s}` (use ms, s, m)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("bad duration `{s}`"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }
}

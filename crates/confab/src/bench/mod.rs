//! `confab bench`: the load generator Confab is measured with (README.md, "Benchmark").
//!
//! Each worker owns one persistent HTTP/1.1 keep-alive connection (TCP_NODELAY) and reconnects
//! when it breaks. Closed loop by default: a worker sends its next request as soon as the
//! previous one is answered. With `--rate R` the load is open loop: every request has an
//! intended start time on a fixed schedule (R/s in total, split across the workers) and its
//! latency is measured from that intended time, so a stalled server is charged for the requests
//! it kept the generator from sending (no coordinated omission). Tokio's timer has millisecond
//! granularity, so workers wake up to 1 ms early; a request sent before its intended time is
//! measured from when it was sent.
//!
//! Latencies are recorded in microseconds in one HDR histogram per worker, merged at the end.
//! Errors are transport errors and statuses other than 2xx/304 (for posts: other than 201).
//! `rps` counts successful responses only: in closed loop those that arrive within the
//! `--duration` window, in open loop those of the requests scheduled in it. Each measurement
//! is preceded by an unrecorded warm-up (`--warmup`, 1 s), and requests still in flight at the
//! end are waited for, never abandoned.
//!
//! Scenarios seed their data through the API first, and only what is missing: see
//! [`SCENARIOS`].
//!
//! # Layout
//! - `args.rs`    the command line ([`BenchArgs`]).
//! - `client.rs`  HTTP plumbing: endpoints, prebuilt requests, keep-alive connections.
//! - `cpu.rs`     CPU use from /proc over a measurement.
//! - `report.rs`  table rows, warnings, and `--report FILE`.
//! - `measure.rs` the workers, their tallies, and a run's summary row.
//! - `seed.rs`    seeding each HTTP scenario's data and building its request plan.
//! - `render.rs`  the `render` scenario (markdown, in-process).
//! - `live.rs`    the `bus-latency` and `fanout` scenarios.
//! - `spike.rs`   the `spike` scenario: read-hot at rising rates while the thread takes posts.
//!
//! Imports flow one way: `args`, `client`, `cpu` and `report` at the bottom, `measure` on them,
//! the scenarios (`seed`, `render`, `live`) on top, and `run` here.

mod args;
mod client;
mod cpu;
mod live;
mod measure;
mod render;
mod report;
mod seed;
mod spike;

pub use args::BenchArgs;

use anyhow::{bail, Context, Result};
use args::Flavor;
use measure::measure;
use report::{table_header, table_row, warn_about};
use seed::Seeder;

/// Every scenario, in the order `all` runs them (`url` only when --url is given).
const SCENARIOS: &[(&str, &str)] = &[
    ("read-hot", "GET one page (limit 50) of a 200-comment thread (bench/read-hot)"),
    ("read-many", "GET the page of a random one of 10,000 one-comment threads (bench/many/<i>)"),
    ("counts", "GET /api/v1/counts for 50 random read-many threads"),
    ("post", "POST a comment on a random one of 1,000 threads (bench/post/<i>), unique Idempotency-Key"),
    ("mixed", "95% read-many reads, 5% posts on the read-many threads"),
    ("render", "no server: render each pathological 10,000-char markdown input --iterations times"),
    ("url", "GET --url repeatedly (e.g. nginx serving a static file)"),
    ("bus-latency", "no server: bus send→receive round trips in process, and over Redis with --redis URL"),
    ("fanout", "--subscribers SSE (or --transport ws) clients on one thread; time from each post's 201 to delivery at every one, and the server's memory per connection (--server-pid)"),
    ("spike", "read-hot at each of --spike-rates in turn, over every --node, while a comment is posted to the thread every 100 ms; store statements/s per step"),
];

pub async fn run(args: BenchArgs) -> Result<()> {
    if let Some(path) = &args.report {
        return report::report(path, &args.ratio);
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0) {
            bail!("--rate must be a positive number of requests per second");
        }
    }
    let scenarios = expand_scenarios(&args)?;
    let mut bench = Seeder::new(&args).await?;
    let mut printed_header = false;
    for s in &scenarios {
        if s == "render" {
            render::render_scenario(&args).await?;
            printed_header = false;
            continue;
        }
        if s == "spike" {
            spike::spike(&args, &mut bench).await?;
            printed_header = false;
            continue;
        }
        if s == "bus-latency" || s == "fanout" {
            if s == "fanout" {
                live::fanout(&args).await?;
            } else {
                live::bus_latency(&args).await?;
            }
            printed_header = false;
            continue;
        }
        let plan = bench
            .plan(s)
            .await
            .with_context(|| format!("preparing scenario {s}"))?;
        let summary = measure(&args, plan).await;
        let row = summary.to_json(s, &args);
        if args.json {
            println!("{row}");
        } else {
            if !printed_header {
                println!("{}", table_header());
                printed_header = true;
            }
            println!("{}", table_row(&row));
        }
        warn_about(&row);
    }
    Ok(())
}

fn expand_scenarios(args: &BenchArgs) -> Result<Vec<String>> {
    let known: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for s in args
        .scenario
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if s == "all" {
            match args.flavor {
                Flavor::Confab => {
                    out.extend(
                        ["read-hot", "read-many", "counts", "post", "mixed", "render"]
                            .map(String::from),
                    );
                    if args.url.is_some() {
                        out.push("url".into());
                    }
                }
                Flavor::Isso => out.extend(["read-hot", "post"].map(String::from)),
            }
        } else if known.contains(&s) {
            out.push(s.to_string());
        } else {
            let list: Vec<String> = SCENARIOS
                .iter()
                .map(|(n, d)| format!("  {n}: {d}"))
                .collect();
            bail!("unknown scenario `{s}`; known:\n{}", list.join("\n"));
        }
    }
    if out.is_empty() {
        bail!("no scenario given");
    }
    if args.flavor == Flavor::Isso {
        if let Some(s) = out
            .iter()
            .find(|s| !matches!(s.as_str(), "read-hot" | "post" | "render" | "url"))
        {
            bail!("scenario {s} is not available with --flavor isso (only read-hot and post)");
        }
    }
    if out.iter().any(|s| s == "url") && args.url.is_none() {
        bail!("scenario url needs --url");
    }
    Ok(out)
}

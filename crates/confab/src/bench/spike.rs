//! The `spike` scenario: a hot thread's reads climb through `--spike-rates` (open loop, spread
//! over `--target` and every `--node`) while a comment is posted to that same thread every
//! 100 ms, so its cached page keeps being replaced under the load. Each step is one row; its
//! `store_queries_per_s` (every node's store statements, from `/statz`) shows whether the
//! database work stays flat as the reads grow, as it should when a fresh page is rendered once
//! per change for the whole fleet and every other read is served from a cache.

use super::args::BenchArgs;
use super::live::post_once;
use super::measure::measure;
use super::report::{table_header, table_row, warn_about};
use super::seed::{Seeder, HOT_IDENT};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the thread takes a comment during every step.
const POST_EVERY: Duration = Duration::from_millis(100);

pub(super) async fn spike(args: &BenchArgs, seeder: &mut Seeder) -> Result<()> {
    if args.spike_rates.is_empty()
        || args
            .spike_rates
            .iter()
            .any(|r| !(r.is_finite() && *r > 0.0))
    {
        bail!("--spike-rates must be positive numbers of requests per second");
    }
    let url: hyper::Uri = args.target.parse().context("--target")?;
    let auth = url
        .authority()
        .ok_or_else(|| anyhow!("--target needs a host"))?
        .clone();
    let addr = tokio::net::lookup_host((auth.host(), auth.port_u16().unwrap_or(80)))
        .await?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {}", auth.host()))?;
    // Seeds the hot thread (only what is missing) before the poster starts on it.
    let mut plan = Some(seeder.plan("read-hot").await?);
    let posted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let poster = {
        let (posted, failed, forum, host) = (
            posted.clone(),
            failed.clone(),
            args.forum.clone(),
            auth.to_string(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POST_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for i in 0u64.. {
                tick.tick().await;
                let body = json!({"forum": forum, "ident": HOT_IDENT,
                    "body": format!("spike comment {i}"), "author_name": "bench"});
                match post_once(addr, &host, &body.to_string()).await {
                    Ok((201, _)) => posted.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    if !args.json {
        println!("{}", table_header());
    }
    let mut result = Ok(());
    for &rate in &args.spike_rates {
        let step = BenchArgs {
            rate: Some(rate),
            label: Some(format!("spike@{rate}/s")),
            ..args.clone()
        };
        let p = match plan.take() {
            Some(p) => p,
            None => seeder.plan("read-hot").await?,
        };
        let (p0, f0) = (
            posted.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        let summary = measure(&step, p).await;
        let mut row = summary.to_json("spike", &step);
        row["posts"] = json!(posted.load(Ordering::Relaxed) - p0);
        row["post_errors"] = json!(failed.load(Ordering::Relaxed) - f0);
        if args.json {
            println!("{row}");
        } else {
            println!(
                "{}   store {} statements/s, {} posts",
                table_row(&row),
                row["store_queries_per_s"],
                row["posts"]
            );
        }
        warn_about(&row);
        if row["post_errors"].as_u64().unwrap_or(0) > 0 {
            result = Err(anyhow!(
                "{} posts failed during spike@{rate}/s",
                row["post_errors"]
            ));
        }
    }
    poster.abort();
    result
}

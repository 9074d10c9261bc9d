//! The realtime benchmarks of `confab bench`:
//! - `bus-latency`: send→receive round trips on one bus channel, in process and (with
//!   `--redis URL`) over Redis.
//! - `fanout`: `--subscribers N` SSE connections to one thread of the target server; each of
//!   `--rounds` posts is timed from its 201 to the moment every subscriber has the event.

use super::args::BenchArgs;
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use confab_bus::{Bus, BusConfig, BusError, InProcessBus, RedisBus};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn print(args: &BenchArgs, row: serde_json::Value) {
    if args.json {
        println!("{row}");
    } else {
        let f = |k: &str| {
            row[k]
                .as_f64()
                .map_or("-".to_string(), |v| format!("{v:.3}"))
        };
        println!(
            "{:<28} {:>9} {:>10} {:>10} {:>10} {:>10}",
            row["name"].as_str().unwrap_or(""),
            row["samples"],
            f("p50_ms"),
            f("p99_ms"),
            f("max_ms"),
            row["errors"]
        );
    }
}

fn header(args: &BenchArgs) {
    if !args.json {
        println!(
            "{:<28} {:>9} {:>10} {:>10} {:>10} {:>10}",
            "scenario", "samples", "p50 ms", "p99 ms", "max ms", "errors"
        );
    }
}

pub async fn bus_latency(args: &BenchArgs) -> Result<()> {
    let n = args.iterations.max(1000);
    header(args);
    let mut buses: Vec<(&str, Arc<dyn Bus>)> = vec![(
        "bus-latency:in-process",
        Arc::new(InProcessBus::new(BusConfig::default())),
    )];
    if let Some(url) = &args.redis {
        let bus = RedisBus::connect(url, BusConfig::default())
            .await
            .with_context(|| format!("redis {url}"))?;
        buses.push(("bus-latency:redis", Arc::new(bus)));
    }
    for (name, bus) in buses {
        let mut lat = measure_latency(bus, n).await.context(name)?;
        lat.sort();
        let row = json!({
            "scenario": "bus-latency", "name": name, "samples": lat.len(), "errors": 0,
            "p50_ms": ms(percentile(&lat, 50.0)), "p90_ms": ms(percentile(&lat, 90.0)),
            "p99_ms": ms(percentile(&lat, 99.0)), "p999_ms": ms(percentile(&lat, 99.9)),
            "max_ms": ms(lat.last().copied().unwrap_or_default()),
        });
        print(args, row);
    }
    Ok(())
}

/// One SSE subscriber: connects, waits for `hello`, then reports each `comment.created` it reads.
async fn subscriber(
    addr: std::net::SocketAddr,
    host: String,
    path: String,
    ready: tokio::sync::mpsc::Sender<()>,
    seen: tokio::sync::mpsc::UnboundedSender<(usize, Instant)>,
) -> Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut text = String::new();
    let mut said_ready = false;
    let mut round = 0usize;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("server closed the stream");
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if !said_ready {
            if text.starts_with("HTTP/1.1 503") {
                bail!("server refused the connection (503)");
            }
            if text.contains("event: hello") {
                said_ready = true;
                let _ = ready.send(()).await;
            }
        }
        while let Some(i) = text.find("event: comment.created") {
            let _ = seen.send((round, Instant::now()));
            round += 1;
            text.drain(..i + 22);
        }
        if text.len() > 256 * 1024 {
            let keep = text.len() - 64;
            text.drain(..keep);
        }
    }
}

pub async fn fanout(args: &BenchArgs) -> Result<()> {
    let url: hyper::Uri = args.target.parse().context("--target")?;
    let auth = url
        .authority()
        .ok_or_else(|| anyhow!("--target needs a host"))?
        .clone();
    let addr = tokio::net::lookup_host((auth.host(), auth.port_u16().unwrap_or(80)))
        .await?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {}", auth.host()))?;
    let ident = format!("bench/fanout/{}", rand::random::<u32>());
    let path = format!(
        "/api/v1/threads/live?forum={}&ident={}",
        args.forum,
        ident.replace('/', "%2F")
    );
    let n = args.subscribers.max(1);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(n);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    let connect_start = Instant::now();
    for i in 0..n {
        let (host, path, ready, seen) = (
            auth.to_string(),
            path.clone(),
            ready_tx.clone(),
            seen_tx.clone(),
        );
        tasks.spawn(async move { subscriber(addr, host, path, ready, seen).await });
        if i % 500 == 499 {
            tokio::task::yield_now().await;
        }
    }
    drop(ready_tx);
    for got in 0..n {
        match tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await {
            Ok(Some(())) => {}
            _ => {
                let err = match tasks.try_join_next() {
                    Some(Ok(Err(e))) => e.to_string(),
                    _ => "timed out".into(),
                };
                bail!("only {got} of {n} subscribers connected: {err}");
            }
        }
    }
    if !args.json {
        eprintln!(
            "fanout: {n} subscribers connected in {:.1} s",
            connect_start.elapsed().as_secs_f64()
        );
    }
    let mut worst = Vec::new();
    let mut every = Vec::new();
    let mut errors = 0usize;
    for round in 0..args.rounds.max(1) {
        let body = json!({"forum": args.forum, "ident": ident, "body": format!("fan-out round {round}"), "author_name": "bench"});
        let (status, acked) = post_once(addr, auth.as_str(), &body.to_string()).await?;
        if status != 201 {
            bail!("posting returned {status}");
        }
        let mut got = 0usize;
        let mut last = acked;
        let deadline = Instant::now() + Duration::from_secs(30);
        while got < n {
            match tokio::time::timeout_at(deadline.into(), seen_rx.recv()).await {
                Ok(Some((r, t))) if r == round => {
                    got += 1;
                    let d = t.saturating_duration_since(acked);
                    every.push(d);
                    last = last.max(t);
                }
                Ok(Some(_)) => {}
                _ => {
                    errors += n - got;
                    break;
                }
            }
        }
        worst.push(last.saturating_duration_since(acked));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tasks.abort_all();
    every.sort();
    worst.sort();
    let row = json!({
        "scenario": "fanout", "name": format!("fanout:{n}"), "subscribers": n, "rounds": args.rounds,
        "samples": every.len(), "errors": errors,
        "p50_ms": ms(percentile(&every, 50.0)), "p90_ms": ms(percentile(&every, 90.0)),
        "p99_ms": ms(percentile(&every, 99.0)), "p999_ms": ms(percentile(&every, 99.9)),
        "max_ms": ms(every.last().copied().unwrap_or_default()),
        "last_subscriber_ms": worst.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
    });
    header(args);
    print(args, row);
    Ok(())
}

/// A one-shot POST of a comment; returns the status and the instant the response head arrived.
async fn post_once(addr: std::net::SocketAddr, host: &str, body: &str) -> Result<(u16, Instant)> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "POST /api/v1/comments HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await?;
    let at = Instant::now();
    let head = String::from_utf8_lossy(&buf[..n]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad response: {head}"))?;
    Ok((status, at))
}

/// `n` send→receive latencies on one fresh channel, measured from just before `send` to the
/// moment `receive` returns in another task (so it includes the receiver's wake-up). Sends are
/// paced one at a time so queueing does not inflate the numbers. Both ends run in this process,
/// which lets the payload carry the send time.
async fn measure_latency(bus: Arc<dyn Bus>, n: usize) -> Result<Vec<Duration>, BusError> {
    let channel = bus.new_channel("latency");
    let base = Instant::now();
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::channel::<Result<Duration, BusError>>(1);
    let (rx_bus, rx_channel) = (Arc::clone(&bus), channel.clone());
    let receiver = tokio::spawn(async move {
        for _ in 0..n {
            let got = rx_bus
                .receive(&rx_channel, Duration::from_secs(5))
                .await
                .map(|msg| {
                    let mut sent = [0u8; 8];
                    if let Some(b) = msg.get(..8) {
                        sent.copy_from_slice(b);
                    }
                    base.elapsed()
                        .saturating_sub(Duration::from_nanos(u64::from_be_bytes(sent)))
                });
            let stop = got.is_err();
            if ack_tx.send(got).await.is_err() || stop {
                return;
            }
        }
    });
    let mut out = Vec::with_capacity(n);
    let mut failed = None;
    for _ in 0..n {
        let sent = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if let Err(e) = bus
            .send(&channel, Bytes::copy_from_slice(&sent.to_be_bytes()))
            .await
        {
            failed = Some(e);
            break;
        }
        match ack_rx.recv().await {
            Some(Ok(lat)) => out.push(lat),
            Some(Err(e)) => failed = Some(e),
            None => failed = Some(BusError::Unavailable("latency receiver stopped".into())),
        }
        if failed.is_some() {
            break;
        }
    }
    receiver.abort();
    failed.map_or(Ok(out), Err)
}

/// `p`-th percentile (0..=100) of already-sorted samples; zero when empty.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

//! The realtime benchmarks of `confab bench`:
//! - `bus-latency`: send→receive round trips on one bus channel, in process and (with
//!   `--redis URL`) over Redis.
//! - `fanout`: `--subscribers N` live connections (`--transport sse|ws`, from `--sources`
//!   loopback addresses) to one thread of the target server; each of `--rounds` posts is timed
//!   from its 201 to the moment every subscriber has the event. With `--server-pid` it also
//!   reports the server's resident memory per idle connection.

use super::args::{BenchArgs, Transport};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use confab_bus::{Bus, BusConfig, BusError, InProcessBus, RedisBus};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// Opens a TCP connection to `addr`, from `source` when given (port chosen by the kernel).
async fn connect_from(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding to {ip}"))?;
    }
    let s = sock.connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Where a subscriber connects, and where it reports.
struct Sub {
    addr: SocketAddr,
    source: Option<IpAddr>,
    host: String,
    path: String,
    ready: tokio::sync::mpsc::Sender<()>,
    seen: tokio::sync::mpsc::UnboundedSender<(usize, Instant)>,
}

/// One SSE subscriber: connects, waits for `hello`, then reports each `comment.created` it reads.
async fn sse_subscriber(sub: Sub, handshake: OwnedSemaphorePermit) -> Result<()> {
    let mut s = connect_from(sub.addr, sub.source).await?;
    s.write_all(
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            sub.path, sub.host
        )
        .as_bytes(),
    )
    .await?;
    // Small buffers: 50,000 of these run in one process.
    let mut buf = vec![0u8; 2048];
    let mut text = String::new();
    let mut handshake = Some(handshake);
    let mut round = 0usize;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("server closed the stream");
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if handshake.is_some() {
            if text.starts_with("HTTP/1.1 503") {
                bail!("server refused the connection (503)");
            }
            if text.contains("event: hello") {
                handshake = None;
                let _ = sub.ready.send(()).await;
            }
        }
        while let Some(i) = text.find("event: comment.created") {
            let _ = sub.seen.send((round, Instant::now()));
            round += 1;
            text.drain(..i + 22);
        }
        // Only the tail can hold the start of an event name.
        if text.len() > 64 {
            let mut keep = text.len() - 64;
            while !text.is_char_boundary(keep) {
                keep += 1;
            }
            text.drain(..keep);
        }
    }
}

/// One WebSocket subscriber: the same, over `/api/v1/threads/live/ws`.
async fn ws_subscriber(sub: Sub, handshake: OwnedSemaphorePermit) -> Result<()> {
    use futures_util::StreamExt;
    let s = connect_from(sub.addr, sub.source).await?;
    let url = format!(
        "ws://{}{}",
        sub.host,
        sub.path.replacen("/live?", "/live/ws?", 1)
    );
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, s, Some(config))
        .await
        .map_err(|e| anyhow!("websocket handshake: {e}"))?;
    let mut handshake = Some(handshake);
    let mut round = 0usize;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        let Ok(text) = msg.to_text() else { continue };
        if handshake.is_some() && text.contains("\"type\":\"hello\"") {
            handshake = None;
            let _ = sub.ready.send(()).await;
        } else if text.contains("\"type\":\"comment.created\"") {
            let _ = sub.seen.send((round, Instant::now()));
            round += 1;
        }
    }
    bail!("server closed the websocket")
}

/// Resident memory of the server's processes (Linux, from /proc), in bytes.
fn server_rss(pids: &[u32]) -> Option<u64> {
    let mut total = 0;
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        total += kb * 1024;
    }
    (!pids.is_empty()).then_some(total)
}

/// The source addresses for `n` subscribers: 127.0.0.1 up, for a loopback IPv4 target.
fn sources(args: &BenchArgs, addr: SocketAddr, n: usize) -> Vec<Option<IpAddr>> {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            let k = args
                .sources
                .map_or(n.div_ceil(25_000).max(1), usize::from)
                .max(1);
            (1..=k.min(254))
                .map(|i| Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, i as u8))))
                .collect()
        }
        _ => vec![None],
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
    // One descriptor per subscriber, here as on the server.
    let fds = confab_server::conn::raise_fd_limit();
    let n = args.subscribers.max(1);
    if let Some(fds) = fds {
        if (n as u64) + 64 > fds {
            bail!("{n} subscribers need {n}+ open files; this process may open {fds} (raise the hard limit: ulimit -Hn)");
        }
    }
    let ident = format!("bench/fanout/{}", rand::random::<u32>());
    let path = format!(
        "/api/v1/threads/live?forum={}&ident={}",
        args.forum,
        ident.replace('/', "%2F")
    );
    let srcs = sources(args, addr, n);
    let n_sources = srcs.len();
    let pids = super::cpu::with_children(&args.server_pids);
    // Before any subscriber: the server's memory with the thread's topic not yet open.
    let rss_before = server_rss(&pids);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(n);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    // At most this many handshakes in flight: a burst of 50,000 SYNs overflows the listen
    // backlog, and a dropped SYN costs a second.
    let handshakes = Arc::new(Semaphore::new(512));
    let connect_start = Instant::now();
    let spawner = {
        let (host, path, transport) = (auth.to_string(), path.clone(), args.transport);
        let handshakes = Arc::clone(&handshakes);
        let seen_tx = seen_tx.clone();
        let ready_tx = ready_tx.clone();
        let mut tasks_tx = Vec::with_capacity(n);
        async move {
            for i in 0..n {
                // The semaphore is never closed.
                let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                    break;
                };
                let sub = Sub {
                    addr,
                    source: srcs[i % srcs.len()],
                    host: host.clone(),
                    path: path.clone(),
                    ready: ready_tx.clone(),
                    seen: seen_tx.clone(),
                };
                tasks_tx.push(match transport {
                    Transport::Sse => tokio::spawn(sse_subscriber(sub, permit)),
                    Transport::Ws => tokio::spawn(ws_subscriber(sub, permit)),
                });
            }
            tasks_tx
        }
    };
    drop(ready_tx);
    let spawned = tokio::spawn(spawner);
    for got in 0..n {
        match tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await {
            Ok(Some(())) => {}
            _ => bail!("only {got} of {n} subscribers connected within 60 s of each other"),
        }
    }
    let handles = spawned.await?;
    for h in handles {
        tasks.spawn(async move { h.await.map_err(anyhow::Error::from)? });
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    if !args.json {
        eprintln!("fanout: {n} subscribers connected in {connect_secs:.1} s");
    }
    // Idle for a moment (heartbeat timers armed, buffers settled), then the memory they hold.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = server_rss(&pids);
    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / n as f64),
        _ => None,
    };
    if let Some(Ok(Err(e))) = tasks.try_join_next() {
        bail!("a subscriber failed: {e}");
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
    let transport = match args.transport {
        Transport::Sse => "sse",
        Transport::Ws => "ws",
    };
    let row = json!({
        "scenario": "fanout", "name": format!("fanout:{transport}:{n}"), "subscribers": n, "rounds": args.rounds,
        "transport": transport, "sources": n_sources, "connect_s": (connect_secs * 10.0).round() / 10.0,
        "samples": every.len(), "errors": errors,
        "p50_ms": ms(percentile(&every, 50.0)), "p90_ms": ms(percentile(&every, 90.0)),
        "p99_ms": ms(percentile(&every, 99.0)), "p999_ms": ms(percentile(&every, 99.9)),
        "max_ms": ms(every.last().copied().unwrap_or_default()),
        "last_subscriber_ms": worst.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "server_rss_before_mb": rss_before.map(|b| b / (1 << 20)),
        "server_rss_after_mb": rss_after.map(|b| b / (1 << 20)),
        "server_bytes_per_conn": per_conn.map(|b| b.round()),
    });
    header(args);
    print(args, row);
    if !args.json {
        match per_conn {
            Some(b) => println!(
                "server memory per idle connection: {:.1} KB (RSS {} → {} MB)",
                b / 1024.0,
                rss_before.unwrap_or(0) >> 20,
                rss_after.unwrap_or(0) >> 20
            ),
            None => println!("server memory per connection: pass --server-pid PID to measure it"),
        }
    }
    Ok(())
}

/// A one-shot POST of a comment; returns the status and the instant the response head arrived.
pub(super) async fn post_once(
    addr: std::net::SocketAddr,
    host: &str,
    body: &str,
) -> Result<(u16, Instant)> {
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

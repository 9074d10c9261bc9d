//! Confab's message bus: channel-layer messaging (after Django Channels) and
//! pub/sub fan-out for realtime. It knows nothing of HTTP or comments.
//!
//! # Layout
//! - `lib.rs`       the `Bus` trait (the contract), name checks, `measure_latency`.
//! - `config.rs`    `BusConfig` limits and the capacity glob patterns.
//! - `error.rs`     `BusError`.
//! - `fanout.rs`    `Subscription`/`SubEvent` and the per-node broadcast hub both backends use.
//! - `inprocess.rs` `InProcessBus`: the embedded single-node backend.
//! - `redis_bus/`   `RedisBus`: the scaled backend (key layout and Lua scripts in `scripts.rs`,
//!   the per-node blocking receiver in `receiver.rs`, the pub/sub connection in `pubsub.rs`).
//! - `tests/conformance.rs` one suite, instantiated for both backends.
//!
//! # Semantics (both backends)
//! At-most-once: a message is delivered once or not at all, never twice; nothing is retried or
//! persisted. FIFO per channel. Bounded everywhere: per-channel capacity (`ChannelFull`), message
//! expiry, group-membership expiry, a payload size limit, and fixed per-topic pub/sub rings.
//! Callers that need must-happen delivery use the task outbox, not the bus.
//!
//! # Why messages are `Bytes`
//! The bus is transport: it never looks inside a message, the size limit is a byte count, Redis
//! stores bytes, and fan-out to thousands of local subscribers clones a `Bytes` by bumping a
//! reference count instead of cloning a JSON tree. Callers pick the encoding (realtime sends
//! pre-serialized JSON events, so a node serializes an event once, not once per client).

mod config;
mod error;
mod fanout;
mod inprocess;
mod redis_bus;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rand::distributions::{Alphanumeric, DistString};

pub use config::{glob_match, BusConfig};
pub use error::BusError;
pub use fanout::{SubEvent, Subscription};
pub use inprocess::InProcessBus;
pub use redis_bus::RedisBus;

/// The channel-layer contract. Object-safe: the server holds an `Arc<dyn Bus>` and does not know
/// which backend it talks to.
#[async_trait]
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Queues `msg` on `channel`. Fails with `ChannelFull` at capacity, `TooLarge` over the size
    /// limit; never blocks waiting for room.
    async fn send(&self, channel: &str, msg: Bytes) -> Result<(), BusError>;

    /// Takes the oldest unexpired message of `channel`, waiting up to `timeout` for one
    /// (`Err(Timeout)` then). Concurrent receivers on one channel each get different messages.
    async fn receive(&self, channel: &str, timeout: Duration) -> Result<Bytes, BusError>;

    /// A fresh channel name `prefix!<random>` for a receiver in this process (a reply channel).
    fn new_channel(&self, prefix: &str) -> String {
        format!(
            "{prefix}!{}",
            Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
        )
    }

    /// Adds `channel` to `group`, or renews its membership for another `group_expiry`.
    async fn group_add(&self, group: &str, channel: &str) -> Result<(), BusError>;

    /// Removes `channel` from `group` (no error if it was not a member).
    async fn group_discard(&self, group: &str, channel: &str) -> Result<(), BusError>;

    /// Sends `msg` to every current member's channel. A member whose channel is full is skipped
    /// (at-most-once), not an error. Returns how many members it was queued for.
    async fn group_send(&self, group: &str, msg: Bytes) -> Result<usize, BusError>;

    /// Drops every channel, message and group (tests and resets; not for production traffic).
    async fn flush(&self) -> Result<(), BusError>;

    /// Realtime fan-out: delivers `msg` to every subscriber of `topic` on every node. Over Redis
    /// this is one PUBLISH, whatever the number of subscribers. Returns the number of receivers
    /// the backend reports (local subscribers in process, subscribed nodes over Redis).
    async fn publish(&self, topic: &str, msg: Bytes) -> Result<usize, BusError>;

    /// Subscribes to `topic`. When this returns `Ok`, later publishes are delivered. Fails with
    /// `Unavailable` while the backend is unreachable (callers fall back to polling).
    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError>;

    /// The limits this bus enforces.
    fn config(&self) -> &BusConfig;
}

/// Names are keys (Redis) and log fields: keep them short, printable and space-free.
pub(crate) fn check_name(name: &str) -> Result<(), BusError> {
    if name.is_empty() || name.len() > 200 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BusError::InvalidName(name.chars().take(64).collect()));
    }
    Ok(())
}

pub(crate) fn check_size(cfg: &BusConfig, msg: &Bytes) -> Result<(), BusError> {
    if msg.len() > cfg.max_message_size {
        return Err(BusError::TooLarge {
            size: msg.len(),
            max: cfg.max_message_size,
        });
    }
    Ok(())
}

/// `n` send→receive latencies on one fresh channel, measured from just before `send` to the
/// moment `receive` returns in another task (so it includes the receiver's wake-up). Sends are
/// paced one at a time so queueing does not inflate the numbers. Both ends run in this process,
/// which lets the payload carry the send time.
pub async fn measure_latency(bus: Arc<dyn Bus>, n: usize) -> Result<Vec<Duration>, BusError> {
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
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

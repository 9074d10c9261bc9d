//! Confab's message bus: channel-layer messaging (after Django Channels) and
//! pub/sub fan-out for realtime. It knows nothing of HTTP or comments.
//!
//! # Layout
//! - `lib.rs`       the `Bus` trait (the contract), name checks.
//! - `config.rs`    `BusConfig` limits and the capacity glob patterns.
//! - `error.rs`     `BusError`.
//! - `fanout.rs`    `Subscription`/`SubEvent` and the per-node broadcast hub both backends use.
//! - `inprocess.rs` `InProcessBus`: the embedded single-node backend.
//! - `stamp.rs`     publish stamps (delivery latency) and the delivery metrics.
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

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod error;
mod fanout;
mod inprocess;
mod redis_bus;
mod stamp;

use std::time::Duration;

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

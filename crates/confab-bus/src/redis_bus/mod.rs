//! The scaled backend: channels, groups and pub/sub in one Redis shared by every node.
//!
//! Three kinds of connection per node, each for a reason:
//! - a `ConnectionManager` (multiplexed, reconnects itself) for every short command: send,
//!   group ops, publish, the non-blocking receive fast path;
//! - one dedicated connection running the node's blocking receiver (`receiver.rs`): a single
//!   BLMPOP over every channel some local task is waiting on, demultiplexed to those tasks, so a
//!   thousand waiting receivers cost one connection, not a thousand;
//! - one pub/sub connection (`pubsub.rs`): one SUBSCRIBE per topic per node, fanned out locally.
//!
//! Every Redis call is bounded by `redis_timeout`; failures and timeouts become
//! `BusError::Unavailable` so callers never hang on a dead Redis. The node keeps working in a
//! degraded way while Redis is down and picks up by itself when it returns.

mod pubsub;
mod receiver;
mod scripts;

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rand::distributions::{Alphanumeric, DistString};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;

use crate::config::glob_to_lua;
use crate::fanout::{Hub, Subscription};
use crate::{check_name, check_size, Bus, BusConfig, BusError};

/// Redis-backed bus. Construct with [`RedisBus::connect`]; dropping it stops its background tasks.
pub struct RedisBus {
    inner: Arc<Inner>,
    /// Never sent on: background tasks watch for it to close, which happens when the bus drops.
    _shutdown: watch::Sender<()>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("node", &self.inner.node)
            .field("prefix", &self.inner.cfg.redis_key_prefix)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    cfg: BusConfig,
    client: redis::Client,
    /// Random id of this bus instance; names its wake key.
    node: String,
    /// Created lazily so a node can start while Redis is down; then it reconnects by itself.
    manager: Mutex<Option<ConnectionManager>>,
    connect_gate: tokio::sync::Mutex<()>,
    /// `channel_capacities` as (anchored Lua pattern, capacity), for the group_send script.
    lua_capacities: Vec<(String, usize)>,
    local: Mutex<receiver::Local>,
    hub: Arc<Hub>,
    pubsub: pubsub::Slot,
}

impl RedisBus {
    /// Starts a bus on `url` (e.g. `redis://127.0.0.1:6379/`). Fails only for a malformed URL: if
    /// Redis is down, operations report `Unavailable` until it is reachable. Waits up to
    /// `redis_timeout` for the pub/sub connection so a freshly started node can subscribe at once.
    pub async fn connect(url: &str, cfg: BusConfig) -> Result<RedisBus, BusError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let lua_capacities = cfg
            .channel_capacities
            .iter()
            .map(|(p, c)| (glob_to_lua(p), *c))
            .collect();
        let inner = Arc::new(Inner {
            hub: Hub::new(cfg.subscriber_buffer, false),
            cfg,
            client,
            node: Alphanumeric.sample_string(&mut rand::thread_rng(), 16),
            manager: Mutex::new(None),
            connect_gate: tokio::sync::Mutex::new(()),
            lua_capacities,
            local: Mutex::new(receiver::Local::default()),
            pubsub: pubsub::Slot::default(),
        });
        let (shutdown, shutdown_rx) = watch::channel(());
        tokio::spawn(receiver::run(Arc::clone(&inner), shutdown_rx.clone()));
        let mut up = inner.pubsub.up.subscribe();
        tokio::spawn(pubsub::run(Arc::clone(&inner), shutdown_rx));
        let t = inner.cfg.redis_timeout;
        let _ = tokio::time::timeout(t, up.wait_for(|up| *up)).await;
        if let Err(e) = inner.conn().await {
            tracing::warn!(error = %e, "redis bus starting without redis");
        }
        Ok(RedisBus {
            inner,
            _shutdown: shutdown,
        })
    }

    /// True while the pub/sub connection is up (what realtime cares about).
    pub fn is_connected(&self) -> bool {
        *self.inner.pubsub.up.borrow()
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        // Background tasks stop when `_shutdown` drops; subscribers learn the stream ended.
        self.inner.hub.close();
    }
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// A Redis failure as an operator reads it: `Redis at 127.0.0.1:6379: connection refused`,
/// `Redis at nohost.invalid:6379: unknown host`, or Redis's own words. URLs (with their
/// passwords) never appear: `addr` is `host:port`.
pub(crate) fn redis_cause(addr: &str, e: &redis::RedisError) -> String {
    let text = e.to_string();
    let why = if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else if let Some(why) = text.strip_prefix("failed to lookup address information: ") {
        if why.contains("not known") || why.contains("No address associated") {
            "unknown host".to_string()
        } else {
            format!("cannot resolve host: {why}")
        }
    } else if e.is_connection_dropped() {
        format!("connection lost ({})", strip_os(&text))
    } else {
        strip_os(&text).to_string()
    };
    format!("Redis at {addr}: {why}")
}

/// `Connection refused (os error 111)` → `Connection refused`.
fn strip_os(s: &str) -> &str {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => s,
    }
}

/// Wall clock in milliseconds: the receiver compares it with deadlines written from Redis `TIME`,
/// so the nodes' clocks must be roughly in sync with Redis (NTP), as with any TTL.
pub(crate) fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

impl Inner {
    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.cfg.redis_key_prefix)
    }

    fn local(&self) -> MutexGuard<'_, receiver::Local> {
        // Only plain map operations happen under this lock; a poisoned one is still consistent.
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where Redis is (`host:port`), for errors.
    fn addr(&self) -> String {
        self.client.get_connection_info().addr.to_string()
    }

    /// A Redis failure with where and why ([`redis_cause`]).
    pub(crate) fn cause(&self, e: &redis::RedisError) -> String {
        redis_cause(&self.addr(), e)
    }

    /// A call that outlived `redis_timeout`.
    pub(crate) fn timed_out(&self) -> String {
        format!(
            "Redis at {}: no answer within {} ms",
            self.addr(),
            self.cfg.redis_timeout.as_millis()
        )
    }

    /// Bounds any Redis future by `redis_timeout` and maps every failure to `Unavailable`,
    /// naming the server and the cause.
    async fn timed<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BusError> {
        match tokio::time::timeout(self.cfg.redis_timeout, fut).await {
            Ok(r) => r.map_err(|e| BusError::Unavailable(self.cause(&e))),
            Err(_) => Err(BusError::Unavailable(self.timed_out())),
        }
    }

    /// The shared command connection, connecting on first use.
    async fn conn(&self) -> Result<ConnectionManager, BusError> {
        let cached = || {
            self.manager
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        if let Some(c) = cached() {
            return Ok(c);
        }
        let _gate = self.connect_gate.lock().await;
        if let Some(c) = cached() {
            return Ok(c);
        }
        let t = self.cfg.redis_timeout;
        // No retry loop inside the manager: a failing command fails fast (and triggers the next
        // reconnect attempt) instead of waiting out an exponential backoff.
        let mcfg = ConnectionManagerConfig::new()
            .set_connection_timeout(t)
            .set_response_timeout(t)
            .set_number_of_retries(0);
        let m = self
            .timed(ConnectionManager::new_with_config(
                self.client.clone(),
                mcfg,
            ))
            .await?;
        *self.manager.lock().unwrap_or_else(PoisonError::into_inner) = Some(m.clone());
        Ok(m)
    }

    /// Pushes a token on this node's wake list so the blocking receiver re-reads its channel set.
    async fn wake_receiver(&self) -> Result<(), BusError> {
        let mut c = self.conn().await?;
        let key = self.key("wake", &self.node);
        let mut pipe = redis::pipe();
        pipe.rpush(&key, 1).ignore().pexpire(&key, 60_000).ignore();
        self.timed(pipe.query_async::<()>(&mut c)).await
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn send(&self, channel: &str, msg: Bytes) -> Result<(), BusError> {
        check_name(channel)?;
        check_size(&self.inner.cfg, &msg)?;
        let inner = &self.inner;
        let mut c = inner.conn().await?;
        let expiry = inner.cfg.expiry.as_millis() as u64;
        let mut inv = scripts::SEND.key(inner.key("ch", channel));
        inv.arg(msg.as_ref())
            .arg(inner.cfg.capacity_for(channel))
            .arg(expiry);
        match inner.timed(inv.invoke_async::<i64>(&mut c)).await? {
            1 => Ok(()),
            _ => Err(BusError::ChannelFull),
        }
    }

    async fn receive(&self, channel: &str, timeout: Duration) -> Result<Bytes, BusError> {
        check_name(channel)?;
        let deadline = Instant::now() + timeout;
        let inner = &self.inner;
        if let Some(msg) = inner.take_stashed(channel) {
            return Ok(msg);
        }
        // When the blocking receiver already watches this channel, anything queued would already
        // be on its way to us, so the extra round trip is skipped.
        if !inner.is_watched(channel) {
            let mut c = inner.conn().await?;
            let got = inner
                .timed(
                    scripts::POP
                        .key(inner.key("ch", channel))
                        .invoke_async::<Option<Vec<u8>>>(&mut c),
                )
                .await?;
            if let Some(msg) = got {
                return Ok(Bytes::from(msg));
            }
        }
        let (mut waiter, need_wake) = match receiver::Waiter::register(inner, channel) {
            Ok(registered) => registered,
            Err(stashed) => return Ok(stashed),
        };
        if need_wake {
            if let Err(e) = inner.wake_receiver().await {
                inner.wake_failed();
                return Err(e);
            }
        }
        waiter.wait(deadline).await
    }

    async fn group_add(&self, group: &str, channel: &str) -> Result<(), BusError> {
        check_name(group)?;
        check_name(channel)?;
        let inner = &self.inner;
        let mut c = inner.conn().await?;
        let mut inv = scripts::GROUP_ADD.key(inner.key("gr", group));
        inv.arg(channel)
            .arg(inner.cfg.group_expiry.as_millis() as u64);
        inner
            .timed(inv.invoke_async::<i64>(&mut c))
            .await
            .map(|_| ())
    }

    async fn group_discard(&self, group: &str, channel: &str) -> Result<(), BusError> {
        check_name(group)?;
        check_name(channel)?;
        let inner = &self.inner;
        let mut c = inner.conn().await?;
        let cmd = redis::cmd("ZREM")
            .arg(inner.key("gr", group))
            .arg(channel)
            .clone();
        inner
            .timed(cmd.query_async::<i64>(&mut c))
            .await
            .map(|_| ())
    }

    async fn group_send(&self, group: &str, msg: Bytes) -> Result<usize, BusError> {
        check_name(group)?;
        check_size(&self.inner.cfg, &msg)?;
        let inner = &self.inner;
        let mut c = inner.conn().await?;
        let mut inv = scripts::GROUP_SEND.key(inner.key("gr", group));
        inv.arg(msg.as_ref())
            .arg(inner.cfg.expiry.as_millis() as u64)
            .arg(inner.key("ch", ""))
            .arg(inner.cfg.capacity);
        for (pattern, cap) in &inner.lua_capacities {
            inv.arg(pattern).arg(*cap);
        }
        let sent = inner.timed(inv.invoke_async::<i64>(&mut c)).await?;
        Ok(usize::try_from(sent).unwrap_or(0))
    }

    async fn flush(&self) -> Result<(), BusError> {
        let inner = &self.inner;
        let mut c = inner.conn().await?;
        let mut pattern = String::new();
        for ch in inner.cfg.redis_key_prefix.chars() {
            if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(ch);
        }
        pattern.push('*');
        let mut cursor: u64 = 0;
        loop {
            let scan = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .clone();
            let (next, keys): (u64, Vec<Vec<u8>>) = inner.timed(scan.query_async(&mut c)).await?;
            if !keys.is_empty() {
                let unlink = redis::cmd("UNLINK").arg(keys).clone();
                inner.timed(unlink.query_async::<i64>(&mut c)).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        inner.local().stash.clear();
        Ok(())
    }

    async fn publish(&self, topic: &str, msg: Bytes) -> Result<usize, BusError> {
        check_name(topic)?;
        check_size(&self.inner.cfg, &msg)?;
        let inner = &self.inner;
        let mut c = inner.conn().await?;
        let cmd = redis::cmd("PUBLISH")
            .arg(inner.key("ps", topic))
            .arg(crate::stamp::stamp(&msg))
            .clone();
        let n = inner.timed(cmd.query_async::<i64>(&mut c)).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError> {
        check_name(topic)?;
        pubsub::subscribe(&self.inner, topic).await
    }

    fn config(&self) -> &BusConfig {
        &self.inner.cfg
    }
}

#[cfg(test)]
mod cause_tests {
    use super::redis_cause;
    use std::io;

    #[test]
    fn redis_failures_name_the_server_and_the_cause() {
        let e = |io: io::Error| redis::RedisError::from(io);
        assert_eq!(
            redis_cause("127.0.0.1:6390", &e(io::Error::from_raw_os_error(111))),
            "Redis at 127.0.0.1:6390: connection refused"
        );
        assert_eq!(
            redis_cause(
                "nohost.invalid:6379",
                &e(io::Error::other(
                    "failed to lookup address information: Name or service not known"
                ))
            ),
            "Redis at nohost.invalid:6379: unknown host"
        );
        assert_eq!(
            redis_cause("r:6379", &e(io::Error::new(io::ErrorKind::TimedOut, "x"))),
            "Redis at r:6379: timed out"
        );
        assert_eq!(
            redis_cause("r:6379", &e(io::Error::from_raw_os_error(104))),
            "Redis at r:6379: connection lost (Connection reset by peer)"
        );
    }
}

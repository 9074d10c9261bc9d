//! `Tier::get_or_fill`: read-through caching that keeps a stampede off the database.
//!
//! 1. **Single flight per node.** Concurrent callers for one key on one `Tier` share one
//!    attempt: the first becomes the leader, the others wait on its `watch` channel and get its
//!    value or its error. The flight is removed when the leader finishes or is cancelled (its
//!    waiters then start over; one of them leads).
//! 2. **Envelope.** A stored value is `b"CF"`, version `1`, the logical expiry (unix ms, `u64`
//!    big-endian), the last fill's duration `delta` (ms, `u32` big-endian), then the payload.
//!    The server keeps it for `2 * ttl`, so after its logical expiry it can still be served
//!    stale while one node refreshes it.
//! 3. **XFetch** (Vattani, Chierichetti, Lowenstein, "Optimal Probabilistic Cache Stampede
//!    Prevention", VLDB 2015): a hit for which `now - delta * beta * ln(rand()) >= expiry` is
//!    refreshed early by the caller that drew it, if it gets the fill lock; everyone else keeps
//!    getting the cached value.
//! 4. **Fill lock across nodes.** On a miss or an expired value the leader takes `lock:<key>`
//!    on the key's server (Redis `SET NX PX`, memcached `add`, expiry `lock_ttl`). The holder
//!    fills, stores, and deletes the lock. A node without it serves the stale value when there
//!    is one; otherwise it polls for the holder's value, first after 1 ms and then twice as
//!    long each time up to every 16 ms (a page renders in a few ms: the first polls find it),
//!    up to `lock_wait`, then fills (and stores) itself.
//! 5. **The tier is never in the way.** When the key's server cannot be reached at any step,
//!    the leader just runs `fill`.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::watch;

use crate::{bump, looked, safe_key, Tier};

/// A flight's outcome as its waiters see it: the value, or the fill's error (type-erased; the
/// waiters downcast it back to their `E`).
type Outcome = Result<Bytes, Arc<dyn Any + Send + Sync>>;

/// A flight in progress: waiters clone the receiver.
pub(crate) type Flight = watch::Receiver<Option<Outcome>>;

const MAGIC: &[u8; 2] = b"CF";
const VERSION: u8 = 1;
const HEADER: usize = 2 + 1 + 8 + 4;
/// The first wait for another node's fill, and the longest (each wait doubles the last).
const POLL_FIRST: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_millis(16);

pub(crate) struct Envelope {
    /// Logical expiry, unix ms.
    expiry: u64,
    /// How long the fill took, ms.
    delta: u32,
    payload: Bytes,
}

fn encode(expiry: u64, delta: u32, payload: &Bytes) -> Bytes {
    let mut b = BytesMut::with_capacity(HEADER + payload.len());
    b.put_slice(MAGIC);
    b.put_u8(VERSION);
    b.put_u64(expiry);
    b.put_u32(delta);
    b.put_slice(payload);
    b.freeze()
}

fn decode(raw: Bytes) -> Option<Envelope> {
    if raw.len() < HEADER || &raw[0..2] != MAGIC || raw[2] != VERSION {
        return None;
    }
    let expiry = u64::from_be_bytes(raw[3..11].try_into().ok()?);
    let delta = u32::from_be_bytes(raw[11..15].try_into().ok()?);
    Some(Envelope {
        expiry,
        delta,
        payload: raw.slice(HEADER..),
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// XFetch: should this hit be refreshed before its expiry?
fn xfetch_early(env: &Envelope, now: u64, beta: f64) -> bool {
    if beta <= 0.0 || env.delta == 0 {
        return now >= env.expiry;
    }
    let r: f64 = rand::random::<f64>().max(f64::MIN_POSITIVE);
    now as f64 - f64::from(env.delta) * beta * r.ln() >= env.expiry as f64
}

/// Removes the flight when its leader finishes or is dropped.
struct FlightGuard<'a> {
    tier: &'a Tier,
    key: &'a str,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut flights) = self.tier.flights.lock() {
            flights.remove(self.key);
        }
    }
}

enum Joined {
    Leader(watch::Sender<Option<Outcome>>),
    Waiter(Flight),
}

pub(crate) async fn get_or_fill<E, F, Fut>(
    tier: &Tier,
    key: &str,
    ttl: Duration,
    fill: F,
) -> Result<Bytes, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Bytes, E>>,
    E: Clone + Send + Sync + 'static,
{
    let key = safe_key(key).into_owned();
    loop {
        // The map's lock is held only in this block, never across an await.
        let joined = match tier.flights.lock() {
            Ok(mut flights) => Some(match flights.get(&key) {
                Some(rx) => Joined::Waiter(rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    flights.insert(key.clone(), rx);
                    Joined::Leader(tx)
                }
            }),
            Err(_) => None,
        };
        // A poisoned map (a panic elsewhere): no single flight, but still the cache.
        let Some(joined) = joined else {
            return fill_through(tier, &key, ttl, fill).await;
        };
        match joined {
            Joined::Leader(tx) => {
                let _guard = FlightGuard { tier, key: &key };
                let result = fill_through(tier, &key, ttl, fill).await;
                let shared: Outcome = match &result {
                    Ok(v) => Ok(v.clone()),
                    Err(e) => Err(Arc::new(e.clone())),
                };
                let _ = tx.send(Some(shared));
                return result;
            }
            Joined::Waiter(mut rx) => {
                let outcome = match rx.wait_for(Option::is_some).await {
                    Ok(seen) => seen.clone(),
                    // The leader was cancelled before it had an outcome: start over.
                    Err(_) => continue,
                };
                match outcome {
                    Some(Ok(v)) => return Ok(v),
                    Some(Err(e)) => match e.downcast_ref::<E>() {
                        Some(e) => return Err(e.clone()),
                        // Another call site's error type on the same key: fill for ourselves.
                        None => return fill_through(tier, &key, ttl, fill).await,
                    },
                    None => continue,
                }
            }
        }
    }
}

/// The leader's work for a (sanitized) key.
async fn fill_through<E, F, Fut>(tier: &Tier, key: &str, ttl: Duration, fill: F) -> Result<Bytes, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Bytes, E>>,
{
    let c = &tier.counters;
    let Some(idx) = tier.route(key) else {
        return run_fill(tier, fill).await.map(|(v, _)| v);
    };
    let server = &tier.servers[idx];
    let Some(raw) = tier.call(idx, server.get_many(&[key])).await else {
        return run_fill(tier, fill).await.map(|(v, _)| v);
    };
    let cached = raw.into_iter().next().flatten().and_then(decode);
    let now = now_ms();
    match cached {
        Some(env) if now < env.expiry => {
            if !xfetch_early(&env, now, tier.cfg.xfetch_beta) {
                looked(c, true);
                return Ok(env.payload);
            }
            match lock(tier, idx, key).await {
                Some(true) => {
                    bump(&c.early_refreshes);
                    fill_locked(tier, idx, key, ttl, fill).await
                }
                // Someone else refreshes it (or the server just failed): the value is still good.
                _ => {
                    looked(c, true);
                    Ok(env.payload)
                }
            }
        }
        Some(env) => match lock(tier, idx, key).await {
            Some(true) => {
                looked(c, false);
                fill_locked(tier, idx, key, ttl, fill).await
            }
            Some(false) => {
                bump(&c.stale_served);
                Ok(env.payload)
            }
            None => run_fill(tier, fill).await.map(|(v, _)| v),
        },
        None => {
            looked(c, false);
            match lock(tier, idx, key).await {
                Some(true) => fill_locked(tier, idx, key, ttl, fill).await,
                None => run_fill(tier, fill).await.map(|(v, _)| v),
                Some(false) => {
                    if let Some(v) = wait_for_fill(tier, idx, key).await {
                        looked(c, true);
                        return Ok(v);
                    }
                    bump(&c.lock_waits);
                    let (value, delta) = run_fill(tier, fill).await?;
                    store(tier, idx, key, ttl, delta, &value).await;
                    Ok(value)
                }
            }
        }
    }
}

/// Takes the fill lock of `key` on its server: `Some(true)` taken, `Some(false)` held by
/// another, `None` the server failed.
async fn lock(tier: &Tier, idx: usize, key: &str) -> Option<bool> {
    let token = format!("{:016x}", rand::random::<u64>());
    tier.call(
        idx,
        tier.servers[idx].add(&lock_key(key), token.as_bytes(), tier.cfg.lock_ttl),
    )
    .await
}

fn lock_key(key: &str) -> String {
    format!("lock:{key}")
}

/// Polls for another node's fill, backing off from [`POLL_FIRST`] to [`POLL_MAX`], up to
/// `lock_wait`.
async fn wait_for_fill(tier: &Tier, idx: usize, key: &str) -> Option<Bytes> {
    let deadline = Instant::now() + tier.cfg.lock_wait;
    let mut pause = POLL_FIRST;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(POLL_MAX);
        let raw = tier.call(idx, tier.servers[idx].get_many(&[key])).await?;
        if let Some(env) = raw.into_iter().next().flatten().and_then(decode) {
            return Some(env.payload);
        }
    }
}

/// Runs the fill as the lock holder, stores its value, releases the lock (also on error).
async fn fill_locked<E, F, Fut>(
    tier: &Tier,
    idx: usize,
    key: &str,
    ttl: Duration,
    fill: F,
) -> Result<Bytes, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Bytes, E>>,
{
    let result = run_fill(tier, fill).await;
    if let Ok((value, delta)) = &result {
        store(tier, idx, key, ttl, *delta, value).await;
    }
    tier.call(idx, tier.servers[idx].delete(&lock_key(key)))
        .await;
    result.map(|(v, _)| v)
}

/// Runs `fill`, counting it and timing it (ms).
async fn run_fill<E, F, Fut>(tier: &Tier, fill: F) -> Result<(Bytes, u32), E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Bytes, E>>,
{
    bump(&tier.counters.fills);
    let t0 = Instant::now();
    let value = fill().await?;
    let delta = u32::try_from(t0.elapsed().as_millis()).unwrap_or(u32::MAX);
    Ok((value, delta))
}

/// Stores an envelope for `2 * ttl`, best effort (too large: not stored, and the old one
/// deleted).
async fn store(tier: &Tier, idx: usize, key: &str, ttl: Duration, delta: u32, value: &Bytes) {
    let expiry = now_ms().saturating_add(ttl.as_millis() as u64);
    let env = encode(expiry, delta, value);
    if env.len() > tier.cfg.max_value_bytes {
        tracing::debug!(
            key,
            size = env.len(),
            "cache: filled value too large, not stored"
        );
        tier.call(idx, tier.servers[idx].delete(key)).await;
        return;
    }
    tier.call(idx, tier.servers[idx].set(key, &env, ttl.saturating_mul(2)))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip() {
        let payload = Bytes::from_static(b"hello");
        let raw = encode(1_700_000_000_123, 42, &payload);
        assert_eq!(raw.len(), HEADER + 5);
        let env = decode(raw).unwrap();
        assert_eq!(
            (env.expiry, env.delta, env.payload),
            (1_700_000_000_123, 42, payload)
        );
        assert!(decode(Bytes::from_static(b"hello")).is_none());
        assert!(decode(Bytes::from_static(b"CF\x02012345678901234")).is_none());
    }

    #[test]
    fn xfetch_refreshes_only_near_expiry() {
        let env = |expiry, delta| Envelope {
            expiry,
            delta,
            payload: Bytes::new(),
        };
        // Far from expiry compared with delta: (practically) never early.
        let far = (0..1000)
            .filter(|_| xfetch_early(&env(1_000_000, 10), 0, 1.0))
            .count();
        assert_eq!(far, 0);
        // Right at expiry: always.
        assert!(xfetch_early(&env(1000, 10), 1000, 1.0));
        // One delta before expiry: P = exp(-1) ~ 0.37.
        let near = (0..10_000)
            .filter(|_| xfetch_early(&env(1100, 100), 1000, 1.0))
            .count();
        assert!((3000..4400).contains(&near), "{near}");
        // beta 0: only at expiry.
        assert!(!xfetch_early(&env(1001, 1000), 1000, 0.0));
    }
}

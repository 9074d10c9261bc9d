//! The node's blocking receiver: one connection, one BLMPOP, many local waiters.
//!
//! A blocking pop occupies its connection, so one BLPOP per waiting `receive` would need a
//! connection per waiter. Instead every waiting `receive` registers a oneshot here, and a single
//! task BLMPOPs over the union of their channels (plus this node's wake list) and hands each
//! popped message to the oldest live waiter of its channel. When a `receive` needs a channel that
//! the in-flight BLMPOP does not cover, it pushes a wake token so the task re-issues the command.
//!
//! Process-local channels (`prefix!random`, from `new_channel`) stay watched for a few seconds
//! after a receive registered on them ("linger"), so a task looping on its reply channel does not
//! pay a wake round trip per message. Entries popped with no live waiter (it timed out, or the
//! channel was only lingering) are pushed back to the head of their list, so FIFO holds and other
//! nodes' capacity checks still count them. Only a message that reached a waiter's oneshot just as
//! that waiter gave up is kept locally, in a small stash the next local `receive` drains first.
//! Either way a message is delivered at most once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use super::scripts::parse_entry;
use super::{now_ms, Inner};
use crate::BusError;

/// How long one BLMPOP blocks before the task refreshes its channel set anyway.
const BLOCK_SECS: f64 = 2.0;
/// How long a `!` channel stays watched after a receive registered on it.
const LINGER: Duration = Duration::from_secs(5);
/// Most entries taken by one BLMPOP.
const MAX_BATCH: usize = 64;

type Delivery = Result<(u64, Bytes), BusError>;

#[derive(Default)]
pub(crate) struct Local {
    /// channel -> waiting receives, oldest first.
    waiters: HashMap<String, VecDeque<(u64, oneshot::Sender<Delivery>)>>,
    /// channel -> (deadline ms, payload) that reached a waiter just as it gave up; drained first.
    pub(crate) stash: HashMap<String, VecDeque<(u64, Bytes)>>,
    /// Channels covered by the BLMPOP in flight (or about to be sent).
    watching: HashSet<String>,
    linger: HashMap<String, Instant>,
    /// A wake token is already queued; more would only cause spurious wake-ups.
    wake_pending: bool,
    next_id: u64,
}

impl Inner {
    pub(crate) fn take_stashed(&self, channel: &str) -> Option<Bytes> {
        take_stashed(&mut self.local(), channel)
    }

    /// A wake that failed to reach Redis must not block the next one.
    pub(crate) fn wake_failed(&self) {
        self.local().wake_pending = false;
    }

    pub(crate) fn is_watched(&self, channel: &str) -> bool {
        self.local().watching.contains(channel)
    }

    /// Hands popped entries to waiters, oldest waiter first. Returns the live entries nobody was
    /// waiting for (raw, deadline included) so the caller can put them back at the list's head:
    /// keeping them locally would hide them from the capacity check that other nodes' `send`s do.
    fn dispatch(&self, channel: &str, entries: Vec<Vec<u8>>) -> Vec<Bytes> {
        let now = now_ms();
        let mut local = self.local();
        let mut unclaimed = Vec::new();
        for raw in entries {
            let raw = Bytes::from(raw);
            let Some((deadline, msg)) = parse_entry(raw.clone()) else {
                tracing::warn!(channel, "dropping malformed bus entry");
                continue;
            };
            if deadline <= now {
                continue;
            }
            let mut item = Some((deadline, msg));
            if let Some(queue) = local.waiters.get_mut(channel) {
                while let Some(it) = item.take() {
                    let Some((_, tx)) = queue.pop_front() else {
                        item = Some(it);
                        break;
                    };
                    // A send fails only if that waiter gave up: offer the message to the next.
                    if let Err(Ok(it)) = tx.send(Ok(it)) {
                        item = Some(it);
                    }
                }
                if queue.is_empty() {
                    local.waiters.remove(channel);
                }
            }
            if item.is_some() {
                unclaimed.push(raw);
            }
        }
        if !unclaimed.is_empty() {
            // Stop watching a lingering channel that has messages but no receiver, or the next
            // BLMPOP would pop them straight back. The next receive finds them by its fast path.
            local.linger.remove(channel);
        }
        unclaimed
    }

    /// Picks the channels for the next BLMPOP and how many entries it may take.
    fn snapshot(&self) -> (Vec<String>, usize) {
        let now = Instant::now();
        let now_ms = now_ms();
        let mut local = self.local();
        local.wake_pending = false;
        local.linger.retain(|_, until| *until > now);
        local.stash.retain(|_, q| {
            while q.front().is_some_and(|(d, _)| *d <= now_ms) {
                q.pop_front();
            }
            !q.is_empty()
        });
        local.waiters.retain(|_, q| {
            q.retain(|(_, tx)| !tx.is_closed());
            !q.is_empty()
        });
        let waiting: usize = local.waiters.values().map(VecDeque::len).sum();
        let watching: HashSet<String> = local
            .waiters
            .keys()
            .chain(local.linger.keys())
            .cloned()
            .collect();
        let keys = watching.iter().cloned().collect();
        local.watching = watching;
        (keys, waiting.clamp(1, MAX_BATCH))
    }

    /// Connection lost: nobody should wait out their timeout on a dead Redis.
    fn fail_waiters(&self, err: &BusError) {
        let mut local = self.local();
        local.watching.clear();
        for (_, queue) in local.waiters.drain() {
            for (_, tx) in queue {
                let _ = tx.send(Err(err.clone()));
            }
        }
    }
}

fn take_stashed(local: &mut Local, channel: &str) -> Option<Bytes> {
    let queue = local.stash.get_mut(channel)?;
    let now = now_ms();
    let mut found = None;
    while let Some((deadline, msg)) = queue.pop_front() {
        if deadline > now {
            found = Some(msg);
            break;
        }
    }
    if queue.is_empty() {
        local.stash.remove(channel);
    }
    found
}

/// One registered `receive`. Dropping it (timeout, cancellation) unregisters, and a message that
/// raced into its oneshot goes back to the stash instead of being lost.
pub(crate) struct Waiter<'a> {
    inner: &'a Inner,
    channel: &'a str,
    id: u64,
    rx: oneshot::Receiver<Delivery>,
}

impl<'a> Waiter<'a> {
    /// Registers, unless the receiver task stashed a message for the channel since the caller
    /// last looked (checked under the same lock as registration, so nothing slips between).
    /// The bool says the receiver task must be woken to start watching the channel.
    pub(crate) fn register(
        inner: &'a Inner,
        channel: &'a str,
    ) -> Result<(Waiter<'a>, bool), Bytes> {
        let mut local = inner.local();
        if let Some(msg) = take_stashed(&mut local, channel) {
            return Err(msg);
        }
        let (tx, rx) = oneshot::channel();
        local.next_id += 1;
        let id = local.next_id;
        local
            .waiters
            .entry(channel.to_string())
            .or_default()
            .push_back((id, tx));
        if channel.contains('!') {
            local
                .linger
                .insert(channel.to_string(), Instant::now() + LINGER);
        }
        let need_wake = !local.watching.contains(channel) && !local.wake_pending;
        if need_wake {
            local.wake_pending = true;
        }
        drop(local);
        Ok((
            Waiter {
                inner,
                channel,
                id,
                rx,
            },
            need_wake,
        ))
    }

    pub(crate) async fn wait(&mut self, deadline: Instant) -> Result<Bytes, BusError> {
        match tokio::time::timeout_at(deadline.into(), &mut self.rx).await {
            Ok(Ok(delivery)) => delivery.map(|(_, msg)| msg),
            Ok(Err(_)) => Err(BusError::Unavailable("bus receiver stopped".into())),
            Err(_) => {
                self.unregister();
                // Delivered between the timer firing and unregistering: take it after all.
                match self.rx.try_recv() {
                    Ok(delivery) => delivery.map(|(_, msg)| msg),
                    Err(_) => Err(BusError::Timeout),
                }
            }
        }
    }

    fn unregister(&self) {
        let mut local = self.inner.local();
        if let Some(queue) = local.waiters.get_mut(self.channel) {
            queue.retain(|(id, _)| *id != self.id);
            if queue.is_empty() {
                local.waiters.remove(self.channel);
            }
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.unregister();
        if let Ok(Ok(item)) = self.rx.try_recv() {
            self.inner
                .local()
                .stash
                .entry(self.channel.to_string())
                .or_default()
                .push_front(item);
        }
    }
}

/// The receiver task: (re)connects, then BLMPOPs and dispatches until shutdown.
pub(crate) async fn run(inner: Arc<Inner>, mut shutdown: watch::Receiver<()>) {
    let mut backoff = Duration::from_millis(50);
    let wake_key = inner.key("wake", &inner.node);
    let block_for = Duration::from_secs_f64(BLOCK_SECS) + inner.cfg.redis_timeout;
    let expiry_ms = i64::try_from(inner.cfg.expiry.as_millis() + 1000).unwrap_or(i64::MAX);
    loop {
        let connect = tokio::time::timeout(
            inner.cfg.redis_timeout,
            inner.client.get_multiplexed_async_connection(),
        );
        let mut conn = tokio::select! {
            _ = shutdown.changed() => return,
            c = connect => match c {
                Ok(Ok(conn)) => conn,
                failed => {
                    let why = match failed { Ok(Err(e)) => inner.cause(&e), _ => inner.timed_out() };
                    tracing::debug!(error = %why, "bus receiver cannot connect to redis");
                    inner.fail_waiters(&BusError::Unavailable(why));
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
        };
        backoff = Duration::from_millis(50);
        loop {
            let (channels, count) = inner.snapshot();
            let mut cmd = redis::cmd("BLMPOP");
            cmd.arg(BLOCK_SECS).arg(channels.len() + 1);
            for ch in &channels {
                cmd.arg(inner.key("ch", ch));
            }
            cmd.arg(&wake_key).arg("LEFT").arg("COUNT").arg(count);
            // A BLMPOP that outlives its own block time means the connection is stuck.
            let popped = tokio::select! {
                _ = shutdown.changed() => return,
                r = tokio::time::timeout(block_for, cmd.query_async::<Option<(String, Vec<Vec<u8>>)>>(&mut conn)) => r,
            };
            match popped {
                Ok(Ok(Some((key, entries)))) => {
                    if key == wake_key {
                        continue;
                    }
                    let channel = key.strip_prefix(&inner.key("ch", "")).unwrap_or(&key);
                    let unclaimed = inner.dispatch(channel, entries);
                    if !unclaimed.is_empty() {
                        // Back to the head in original order, so FIFO and capacity hold.
                        let mut pipe = redis::pipe();
                        pipe.cmd("LPUSH").arg(&key);
                        for raw in unclaimed.iter().rev() {
                            pipe.arg(raw.as_ref());
                        }
                        pipe.ignore().pexpire(&key, expiry_ms).ignore();
                        let put_back = tokio::time::timeout(
                            inner.cfg.redis_timeout,
                            pipe.query_async::<()>(&mut conn),
                        );
                        if !matches!(put_back.await, Ok(Ok(()))) {
                            tracing::warn!(
                                channel,
                                n = unclaimed.len(),
                                "bus could not requeue unclaimed messages"
                            );
                        }
                    }
                }
                Ok(Ok(None)) => {}
                failed => {
                    let why = match failed {
                        Ok(Err(e)) => inner.cause(&e),
                        _ => inner.timed_out(),
                    };
                    tracing::warn!(error = %why, "bus receiver lost redis; reconnecting");
                    inner.fail_waiters(&BusError::Unavailable(why));
                    break;
                }
            }
        }
    }
}

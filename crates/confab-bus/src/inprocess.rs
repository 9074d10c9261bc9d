//! The embedded backend: everything in this process's memory.
//!
//! One `std::sync::Mutex` guards all channels and groups. Critical sections are a few queue
//! operations with no `.await` inside, so a plain mutex is cheaper than an async one and keeps
//! send→receive in the tens of microseconds. A receiver that finds its channel empty waits on the
//! channel's `Notify`; every `send` does `notify_one`, which leaves a permit when nobody is waiting
//! yet, so a send landing between "queue was empty" and "I am waiting" is not lost. Several sends
//! in that gap leave only one permit, so a receiver that pops a message and sees more queued
//! passes a wake-up on; each message thus wakes someone. Expired messages and members
//! are dropped lazily when touched, plus a sweep at most once a second so channels nobody reads
//! any more do not accumulate.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;

use crate::fanout::{Hub, SubEvent, Subscription};
use crate::{check_name, check_size, Bus, BusConfig, BusError};

/// Single-node bus. Cheap to share as `Arc<dyn Bus>`.
#[derive(Debug)]
pub struct InProcessBus {
    cfg: BusConfig,
    state: Mutex<State>,
    hub: Arc<Hub>,
}

#[derive(Debug)]
struct State {
    channels: HashMap<String, Chan>,
    /// group -> channel -> membership deadline.
    groups: HashMap<String, HashMap<String, Instant>>,
    last_sweep: Instant,
}

#[derive(Debug)]
struct Chan {
    /// (expiry deadline, payload), oldest first. Deadlines are non-decreasing because every
    /// message gets the same lifetime, so expired messages are always at the front.
    queue: VecDeque<(Instant, Bytes)>,
    notify: Arc<Notify>,
    /// Receivers currently waiting; a channel with none and no messages is removed.
    waiting: usize,
}

impl Chan {
    fn new() -> Chan {
        Chan {
            queue: VecDeque::new(),
            notify: Arc::new(Notify::new()),
            waiting: 0,
        }
    }

    fn drop_expired(&mut self, now: Instant) {
        while self
            .queue
            .front()
            .is_some_and(|(deadline, _)| *deadline <= now)
        {
            self.queue.pop_front();
        }
    }
}

impl State {
    /// Appends to a channel if it has room. Shared by `send` and `group_send`.
    fn push(
        &mut self,
        cfg: &BusConfig,
        channel: &str,
        msg: Bytes,
        now: Instant,
    ) -> Result<(), BusError> {
        let chan = self
            .channels
            .entry(channel.to_string())
            .or_insert_with(Chan::new);
        chan.drop_expired(now);
        if chan.queue.len() >= cfg.capacity_for(channel) {
            return Err(BusError::ChannelFull);
        }
        chan.queue.push_back((now + cfg.expiry, msg));
        chan.notify.notify_one();
        Ok(())
    }

    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) < Duration::from_secs(1) {
            return;
        }
        self.last_sweep = now;
        self.channels.retain(|_, chan| {
            chan.drop_expired(now);
            !chan.queue.is_empty() || chan.waiting > 0
        });
        self.groups.retain(|_, members| {
            members.retain(|_, deadline| *deadline > now);
            !members.is_empty()
        });
    }
}

impl InProcessBus {
    pub fn new(cfg: BusConfig) -> InProcessBus {
        let hub = Hub::new(cfg.subscriber_buffer, true);
        let state = State {
            channels: HashMap::new(),
            groups: HashMap::new(),
            last_sweep: Instant::now(),
        };
        InProcessBus {
            cfg,
            state: Mutex::new(state),
            hub,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation leaves the maps consistent between statements, so a poisoned lock (a
        // panic elsewhere while holding it) is still safe to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decrements a channel's waiter count when a receive ends (however it ends, including being
    /// cancelled), and removes the channel if that leaves it empty.
    fn unwait(&self, channel: &str) {
        let mut st = self.lock();
        if let Some(chan) = st.channels.get_mut(channel) {
            chan.waiting = chan.waiting.saturating_sub(1);
            if chan.waiting == 0 && chan.queue.is_empty() {
                st.channels.remove(channel);
            }
        }
    }
}

impl Drop for InProcessBus {
    fn drop(&mut self) {
        self.hub.close();
    }
}

struct WaitGuard<'a> {
    bus: &'a InProcessBus,
    channel: &'a str,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.bus.unwait(self.channel);
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn send(&self, channel: &str, msg: Bytes) -> Result<(), BusError> {
        check_name(channel)?;
        check_size(&self.cfg, &msg)?;
        let now = Instant::now();
        let mut st = self.lock();
        st.sweep(now);
        st.push(&self.cfg, channel, msg, now)
    }

    async fn receive(&self, channel: &str, timeout: Duration) -> Result<Bytes, BusError> {
        check_name(channel)?;
        let deadline = Instant::now() + timeout;
        let mut registered: Option<WaitGuard<'_>> = None;
        loop {
            let notify = {
                let mut st = self.lock();
                let now = Instant::now();
                let chan = st
                    .channels
                    .entry(channel.to_string())
                    .or_insert_with(Chan::new);
                chan.drop_expired(now);
                if let Some((_, msg)) = chan.queue.pop_front() {
                    if !chan.queue.is_empty() {
                        // More left: pass the wake-up on (see the module note on permits).
                        chan.notify.notify_one();
                    }
                    if registered.is_none() && chan.queue.is_empty() && chan.waiting == 0 {
                        st.channels.remove(channel);
                    }
                    return Ok(msg);
                }
                if now >= deadline {
                    if registered.is_none() && chan.waiting == 0 {
                        st.channels.remove(channel);
                    }
                    return Err(BusError::Timeout);
                }
                if registered.is_none() {
                    chan.waiting += 1;
                }
                Arc::clone(&chan.notify)
            };
            if registered.is_none() {
                registered = Some(WaitGuard { bus: self, channel });
            }
            let _ = tokio::time::timeout_at(deadline.into(), notify.notified()).await;
        }
    }

    async fn group_add(&self, group: &str, channel: &str) -> Result<(), BusError> {
        check_name(group)?;
        check_name(channel)?;
        let deadline = Instant::now() + self.cfg.group_expiry;
        self.lock()
            .groups
            .entry(group.to_string())
            .or_default()
            .insert(channel.to_string(), deadline);
        Ok(())
    }

    async fn group_discard(&self, group: &str, channel: &str) -> Result<(), BusError> {
        check_name(group)?;
        check_name(channel)?;
        let mut st = self.lock();
        if let Some(members) = st.groups.get_mut(group) {
            members.remove(channel);
            if members.is_empty() {
                st.groups.remove(group);
            }
        }
        Ok(())
    }

    async fn group_send(&self, group: &str, msg: Bytes) -> Result<usize, BusError> {
        check_name(group)?;
        check_size(&self.cfg, &msg)?;
        let now = Instant::now();
        let mut st = self.lock();
        st.sweep(now);
        let members: Vec<String> = match st.groups.get_mut(group) {
            Some(members) => {
                members.retain(|_, deadline| *deadline > now);
                members.keys().cloned().collect()
            }
            None => return Ok(0),
        };
        let mut sent = 0;
        for member in members {
            // A full member is skipped: one slow consumer must not stop the others.
            if st.push(&self.cfg, &member, msg.clone(), now).is_ok() {
                sent += 1;
            }
        }
        Ok(sent)
    }

    async fn flush(&self) -> Result<(), BusError> {
        let mut st = self.lock();
        // Keep channels that have waiting receivers (their guards still point at them), empty.
        st.channels.retain(|_, chan| {
            chan.queue.clear();
            chan.waiting > 0
        });
        st.groups.clear();
        Ok(())
    }

    async fn publish(&self, topic: &str, msg: Bytes) -> Result<usize, BusError> {
        check_name(topic)?;
        check_size(&self.cfg, &msg)?;
        // Delivered in this call: counted, with no latency to measure.
        crate::stamp::received("inprocess", None);
        Ok(self.hub.deliver(topic, SubEvent::Message(msg)))
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError> {
        check_name(topic)?;
        Ok(self.hub.subscribe(topic).0)
    }

    fn config(&self) -> &BusConfig {
        &self.cfg
    }
}

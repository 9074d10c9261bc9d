//! Local pub/sub fan-out: one `tokio::sync::broadcast` ring per topic.
//!
//! Both backends deliver through a `Hub`; over Redis the node receives ONE message per publish
//! and the hub fans it out to every local subscriber. A broadcast ring is shared by all of a
//! topic's subscribers and bounded (`subscriber_buffer`): publishing never waits, and a subscriber
//! that falls behind by more than the ring gets `SubEvent::Lagged` and skips ahead. Memory per
//! topic is therefore fixed no matter how slow a client is; the realtime layer decides whether a
//! lagged client is resynced or dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::{broadcast, Notify};

/// What a subscriber sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubEvent {
    /// A published payload.
    Message(Bytes),
    /// This subscriber fell behind and `n` events were overwritten before it read them. Anything
    /// built from the stream (a client's view of a thread) must resync.
    Lagged(u64),
    /// The node lost its connection to the shared backend; messages published meanwhile are lost.
    /// The subscription stays registered and resumes by itself.
    Disconnected,
    /// The connection is back and the subscription is live again (resync now: the gap between
    /// `Disconnected` and this event was not delivered).
    Reconnected,
}

/// A live subscription to one topic. Dropping it unsubscribes (the topic is torn down once its
/// last subscriber is gone).
#[derive(Debug)]
pub struct Subscription {
    topic: String,
    rx: Option<broadcast::Receiver<SubEvent>>,
    hub: Arc<Hub>,
}

impl Subscription {
    /// The next event; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<SubEvent> {
        let rx = self.rx.as_mut()?;
        match rx.recv().await {
            Ok(ev) => Some(ev),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(SubEvent::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Non-waiting variant of `recv`: `None` if nothing is queued (or the bus is gone).
    pub fn try_recv(&mut self) -> Option<SubEvent> {
        let rx = self.rx.as_mut()?;
        match rx.try_recv() {
            Ok(ev) => Some(ev),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(SubEvent::Lagged(n)),
            Err(_) => None,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Drop the receiver first so the hub sees the real receiver count.
        self.rx = None;
        self.hub.release(&self.topic);
    }
}

/// Topic name -> broadcast sender, plus how idle topics are reclaimed.
#[derive(Debug)]
pub(crate) struct Hub {
    topics: Mutex<HashMap<String, broadcast::Sender<SubEvent>>>,
    buffer: usize,
    /// In-process: an idle topic is removed on the spot. Redis: removal must go together with an
    /// UNSUBSCRIBE on the pub/sub connection, so the last subscriber only pokes `idle`.
    remove_on_release: bool,
    pub(crate) idle: Notify,
}

impl Hub {
    pub(crate) fn new(buffer: usize, remove_on_release: bool) -> Arc<Hub> {
        Arc::new(Hub {
            topics: Mutex::new(HashMap::new()),
            buffer: buffer.max(1),
            remove_on_release,
            idle: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<SubEvent>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a local subscriber; the bool says the topic is new on this node (Redis must SUBSCRIBE).
    pub(crate) fn subscribe(self: &Arc<Self>, topic: &str) -> (Subscription, bool) {
        let mut topics = self.lock();
        let (rx, new) = match topics.get(topic) {
            Some(tx) => (tx.subscribe(), false),
            None => {
                let (tx, rx) = broadcast::channel(self.buffer);
                topics.insert(topic.to_string(), tx);
                (rx, true)
            }
        };
        let sub = Subscription {
            topic: topic.to_string(),
            rx: Some(rx),
            hub: Arc::clone(self),
        };
        (sub, new)
    }

    /// Local fan-out of one event; returns how many subscribers it was queued for.
    pub(crate) fn deliver(&self, topic: &str, ev: SubEvent) -> usize {
        let tx = self.lock().get(topic).cloned();
        tx.map_or(0, |tx| tx.send(ev).unwrap_or(0))
    }

    /// Sends a connection-state marker to every topic.
    pub(crate) fn deliver_all(&self, ev: SubEvent) {
        let senders: Vec<_> = self.lock().values().cloned().collect();
        for tx in senders {
            let _ = tx.send(ev.clone());
        }
    }

    /// Drops every topic's sender, so subscribers see the end of their stream (bus dropped).
    pub(crate) fn close(&self) {
        self.lock().clear();
    }

    pub(crate) fn topic_names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Removes and returns topics nobody subscribes to any more.
    pub(crate) fn take_idle(&self) -> Vec<String> {
        let mut topics = self.lock();
        let idle: Vec<String> = topics
            .iter()
            .filter(|(_, tx)| tx.receiver_count() == 0)
            .map(|(k, _)| k.clone())
            .collect();
        for t in &idle {
            topics.remove(t);
        }
        idle
    }

    /// Removes one topic if it is idle (used when a Redis SUBSCRIBE for a new topic failed).
    pub(crate) fn remove_if_idle(&self, topic: &str) {
        let mut topics = self.lock();
        if topics.get(topic).is_some_and(|tx| tx.receiver_count() == 0) {
            topics.remove(topic);
        }
    }

    fn release(&self, topic: &str) {
        if self.remove_on_release {
            self.remove_if_idle(topic);
        } else if self
            .lock()
            .get(topic)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            self.idle.notify_one();
        }
    }
}

//! One site on many nodes: every change a node's caches depend on is announced on the bus, and
//! every node applies what the others announce.
//!
//! A change is applied on the node that made it at once ([`Service::changed`]), then published
//! on one bus topic ([`TOPIC`]) by the node's change publisher, in order. A publish that fails
//! (the bus is down) is kept and sent again until it goes through: applying a change twice is
//! harmless, missing one is not. The queue is bounded; past it, the pending changes collapse
//! into one `Everything` (every node forgets all it caches). Each node subscribes to the topic at
//! start and applies what other nodes send: a thread's pages and count get a new version (its
//! fills read with the writer's commit position as their pin, so a replica that has not
//! replayed the write is not used), an account, a forum's mail flag or (after a new ban) whom
//! the node knew to be unbanned is forgotten, the forum
//! registry and the switches are reloaded.
//!
//! The bus is at-most-once. When the subscription reports a gap (`Lagged`) or the node loses
//! the bus (`Disconnected`, or subscribing fails), the node withdraws its [`Trust`]: from then
//! on its cached entries are believed only while younger than `[cache] degraded_ttl_ms`, and the
//! registries are reloaded every second. When the subscription is live again, everything cached
//! is forgotten once (what was missed is unknown) and trust is restored.
//!
//! With the in-process bus (one node) nothing is published: the node's own changes are all
//! there is.

use super::Service;
use crate::cache::Trust;
use bytes::Bytes;
use confab_bus::SubEvent;
use confab_core::id::{AccountId, ForumId};
use confab_store::WritePos;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The bus topic every node listens on for changes made elsewhere.
pub const TOPIC: &str = "confab.changes";

/// A change other nodes' caches must hear of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Change {
    /// A thread's comments, counts or state changed (`at`: the write's commit position).
    Thread {
        forum: ForumId,
        ident: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
        /// The thread's new token in the shared tier, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<u64>,
    },
    /// An account's roles, sessions, name or address changed.
    Account { id: AccountId },
    /// A forum was created or its settings changed.
    Forums,
    /// Whether a forum's moderators have mail may have changed.
    ModMail { forum: ForumId },
    /// A ban was made: whoever was found not banned must be checked again.
    Bans,
    /// A feature switch changed.
    Switches,
    /// Changes were lost before they could be announced: forget everything.
    Everything,
}

/// A change as it travels: who sent it (a node skips its own) and what it is.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    node: String,
    #[serde(flatten)]
    change: Change,
}

impl Change {
    pub fn thread(forum: ForumId, ident: &str, at: Option<WritePos>, token: Option<u64>) -> Change {
        Change::Thread {
            forum,
            ident: ident.to_string(),
            at: at.map(|p| p.encode()),
            token,
        }
    }
}

/// Announcements waiting for the publisher; past this (or [`PENDING_MAX`] unsent) they collapse.
const QUEUE: usize = 4096;
/// Changes kept while the bus is down before they collapse into one `Everything`.
const PENDING_MAX: usize = 10_000;

/// Starts this node's change publisher: one task that publishes announcements in order and
/// keeps the ones that fail until the bus takes them. Returns its queue and the flag that says
/// the queue overflowed (an `Everything` is then sent in place of what was dropped).
pub(crate) fn start_publisher(
    bus: Arc<dyn confab_bus::Bus>,
    node: String,
    unsent: Arc<AtomicUsize>,
) -> (tokio::sync::mpsc::Sender<Bytes>, Arc<AtomicBool>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let flag = overflow.clone();
    let everything = move || {
        serde_json::to_vec(&Wire {
            node: node.clone(),
            change: Change::Everything,
        })
        .map(Bytes::from)
        .unwrap_or_default()
    };
    tokio::spawn(async move {
        let mut pending: VecDeque<Bytes> = VecDeque::new();
        let mut failing = false;
        loop {
            if pending.is_empty() {
                match rx.recv().await {
                    Some(m) => pending.push_back(m),
                    None => return,
                }
            }
            while let Ok(m) = rx.try_recv() {
                pending.push_back(m);
            }
            if flag.swap(false, Ordering::AcqRel) || pending.len() > PENDING_MAX {
                // What is dropped counts as sent: the `Everything` stands for it.
                unsent.store(rx.len() + 1, Ordering::Release);
                pending.clear();
                pending.push_back(everything());
            }
            while let Some(m) = pending.front() {
                let sent = bus.publish(TOPIC, m.clone()).await;
                crate::http::metrics::bus_publish("fleet", sent.is_ok());
                match sent {
                    Ok(_) => {
                        pending.pop_front();
                        let _ = unsent.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                            Some(n.saturating_sub(1))
                        });
                        if failing {
                            failing = false;
                            tracing::info!("announcing changes to other nodes again");
                        }
                    }
                    Err(e) => {
                        if !failing {
                            failing = true;
                            tracing::warn!(error = %e, "cannot announce changes to other nodes; keeping them until the bus is back");
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                }
            }
        }
    });
    (tx, overflow)
}

/// A fresh id for this node's messages.
pub(crate) fn node_id() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 12)
}

impl Service {
    /// Applies a change on this node and announces it to the others.
    pub(crate) async fn changed(self: &Arc<Self>, change: Change) {
        self.apply(&change).await;
        self.announce(change);
    }

    /// Announces a change already applied on this node (see [`Service::changed`]).
    pub(crate) fn announce(&self, change: Change) {
        if !self.fleet {
            return;
        }
        let wire = Wire {
            node: self.node.clone(),
            change,
        };
        match serde_json::to_vec(&wire) {
            Ok(msg) => {
                self.changes_unsent.fetch_add(1, Ordering::AcqRel);
                // In the request's record when it queues it (the publisher task sends it).
                confab_record::add(confab_record::Field::BusPublishes, 1);
                if self.changes_out.try_send(Bytes::from(msg)).is_err() {
                    // The publisher is far behind: tell every node to forget everything.
                    self.changes_overflow.store(true, Ordering::Release);
                }
            }
            Err(e) => tracing::error!(error = %e, "encoding a change"),
        }
    }

    /// Makes this node's caches agree with a change.
    async fn apply(self: &Arc<Self>, change: &Change) {
        match change {
            Change::Thread {
                forum,
                ident,
                at,
                token,
            } => {
                let at = at.as_deref().and_then(WritePos::decode);
                self.invalidate_thread(*forum, ident, at, *token);
            }
            Change::Account { id } => self.accounts.forget(id).await,
            Change::Forums => {
                if let Err(e) = self.refresh_forums().await {
                    tracing::warn!(error = %e, "reloading forums after a change");
                }
            }
            Change::ModMail { forum } => self.mod_mail.forget(forum).await,
            Change::Bans => self.unbanned.forget_all().await,
            Change::Switches => {
                if let Err(e) = self.refresh_switches().await {
                    tracing::warn!(error = %e, "reloading switches after a change");
                }
            }
            Change::Everything => self.forget_all().await,
        }
    }

    /// Forgets everything cached on this node and reloads the registries (after changes may
    /// have been missed).
    async fn forget_all(self: &Arc<Self>) {
        self.pages.forget_all();
        self.accounts.forget_all().await;
        self.mod_mail.forget_all().await;
        self.unbanned.forget_all().await;
        self.reload_registries().await;
    }

    /// Forgets every cached page when another process wrote to the store since the last look
    /// (`Store::outside_writes`: a `confab import` beside an embedded server; with no bus between
    /// two processes, this is how the server learns of it, at its periodic reload).
    pub(crate) async fn check_outside_writes(&self) {
        match self.store.outside_writes().await {
            Ok(Some(v)) => {
                let before = self.outside_version.swap(v, Ordering::AcqRel);
                if before != i64::MIN && before != v {
                    tracing::info!("another process wrote to the database: cached pages forgotten");
                    self.pages.forget_all();
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "checking for other processes' writes"),
        }
    }

    /// Reloads the forum registry and the switches.
    pub(crate) async fn reload_registries(&self) {
        if let Err(e) = self.refresh_forums().await {
            tracing::warn!(error = %e, "refreshing forums failed");
        }
        if let Err(e) = self.refresh_switches().await {
            tracing::warn!(error = %e, "refreshing switches failed");
        }
    }

    /// Waits until every change this node made has been published (or `limit` passes):
    /// a short-lived process (`confab admin`, `confab switches`) calls it before exiting.
    /// Returns whether everything went out.
    pub async fn announced(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.changes_unsent.load(Ordering::Acquire) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Whether this node hears every change (see [`Trust`]).
    pub fn trusted(&self) -> bool {
        self.trust.is_trusted()
    }
}

/// Subscribes to [`TOPIC`] and applies other nodes' changes for as long as the service lives.
pub(crate) fn start_listener(svc: &Arc<Service>, trust: Arc<Trust>) {
    let weak: Weak<Service> = Arc::downgrade(svc);
    let bus = svc.bus.clone();
    let me = svc.node.clone();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let mut sub = match bus.subscribe(TOPIC).await {
                Ok(s) => s,
                Err(e) => {
                    if trust.withdraw() {
                        tracing::warn!(error = %e, "cannot hear other nodes' changes: caches are trusted only briefly until the bus is back");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if weak.strong_count() == 0 {
                        return;
                    }
                    continue;
                }
            };
            if trust.restore() || !first {
                let Some(svc) = weak.upgrade() else { return };
                svc.forget_all().await;
                tracing::info!("hearing other nodes' changes again; caches were emptied");
            }
            first = false;
            while let Some(ev) = sub.recv().await {
                let Some(svc) = weak.upgrade() else { return };
                match ev {
                    SubEvent::Message(msg) => match serde_json::from_slice::<Wire>(&msg) {
                        Ok(w) if w.node == me => {}
                        Ok(w) => svc.apply(&w.change).await,
                        Err(e) => tracing::warn!(error = %e, "undecodable change on the bus"),
                    },
                    SubEvent::Lagged(n) => {
                        tracing::warn!(
                            missed = n,
                            "fell behind other nodes' changes; caches emptied"
                        );
                        svc.forget_all().await;
                    }
                    SubEvent::Disconnected => {
                        if trust.withdraw() {
                            tracing::warn!(
                                "lost the bus: caches are trusted only briefly until it is back"
                            );
                        }
                    }
                    SubEvent::Reconnected => {
                        svc.forget_all().await;
                        trust.restore();
                        tracing::info!("bus back: caches emptied, trusted again");
                    }
                }
            }
            // The bus dropped the subscription (it is shutting down): subscribe again.
            trust.withdraw();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_the_wire_form() {
        let c = Change::thread(
            ForumId(7),
            "/blog/a b",
            Some(WritePos { server: 2, lsn: 99 }),
            Some(5),
        );
        let w = Wire {
            node: "n1".into(),
            change: c.clone(),
        };
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(
            json,
            r#"{"node":"n1","k":"thread","forum":"7","ident":"/blog/a b","at":"2.99","token":5}"#
        );
        let back: Wire = serde_json::from_str(&json).unwrap();
        assert_eq!(back.change, c);
        let s: Wire = serde_json::from_str(r#"{"node":"x","k":"switches"}"#).unwrap();
        assert_eq!(s.change, Change::Switches);
    }
}

//! One site on many nodes: every change a node's caches depend on is announced on the bus, and
//! every node applies what the others announce.
//!
//! A change is applied on the node that made it at once ([`Service::changed`]), then published
//! on one bus topic ([`TOPIC`]) through the node's single publisher (the one live events use, so
//! a thread's invalidation leaves before its live event). Each node subscribes to the topic at
//! start and applies what other nodes send: a thread's pages and count get a new version (its
//! fills read with the writer's commit position as their pin, so a replica that has not
//! replayed the write is not used), an account or a forum's mail flag is forgotten, the forum
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
    },
    /// An account's roles, sessions, name or address changed.
    Account { id: AccountId },
    /// A forum was created or its settings changed.
    Forums,
    /// Whether a forum's moderators have mail may have changed.
    ModMail { forum: ForumId },
    /// A feature switch changed.
    Switches,
}

/// A change as it travels: who sent it (a node skips its own) and what it is.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    node: String,
    #[serde(flatten)]
    change: Change,
}

impl Change {
    pub fn thread(forum: ForumId, ident: &str, at: Option<WritePos>) -> Change {
        Change::Thread {
            forum,
            ident: ident.to_string(),
            at: at.map(|p| p.encode()),
        }
    }
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
                if self
                    .live_out
                    .try_send((TOPIC.to_string(), Bytes::from(msg)))
                    .is_err()
                {
                    // Other nodes will not hear of it: their entries expire by TTL (and the
                    // shared tier's versions, when configured, still move).
                    tracing::warn!("change not announced: the publish queue is full");
                }
            }
            Err(e) => tracing::error!(error = %e, "encoding a change"),
        }
    }

    /// Waits (at most 2 s) until every change announced so far has been handed to the bus: a
    /// short-lived process (`confab switches`, `confab admin`) calls it before it exits.
    pub async fn flush(&self) {
        if !self.fleet {
            return;
        }
        let done = self.flushed.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        if self
            .live_out
            .send((String::new(), Bytes::new()))
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
        }
    }

    /// Makes this node's caches agree with a change.
    async fn apply(self: &Arc<Self>, change: &Change) {
        match change {
            Change::Thread { forum, ident, at } => {
                let at = at.as_deref().and_then(WritePos::decode);
                self.invalidate_thread(*forum, ident, at);
            }
            Change::Account { id } => self.accounts.forget(id).await,
            Change::Forums => {
                if let Err(e) = self.refresh_forums().await {
                    tracing::warn!(error = %e, "reloading forums after a change");
                }
            }
            Change::ModMail { forum } => self.mod_mail.forget(forum).await,
            Change::Switches => {
                if let Err(e) = self.refresh_switches().await {
                    tracing::warn!(error = %e, "reloading switches after a change");
                }
            }
        }
    }

    /// Forgets everything cached on this node and reloads the registries (after changes may
    /// have been missed).
    async fn forget_all(self: &Arc<Self>) {
        self.pages.forget_all();
        self.accounts.forget_all().await;
        self.mod_mail.forget_all().await;
        self.reload_registries().await;
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
        );
        let w = Wire {
            node: "n1".into(),
            change: c.clone(),
        };
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(
            json,
            r#"{"node":"n1","k":"thread","forum":"7","ident":"/blog/a b","at":"2.99"}"#
        );
        let back: Wire = serde_json::from_str(&json).unwrap();
        assert_eq!(back.change, c);
        let s: Wire = serde_json::from_str(r#"{"node":"x","k":"switches"}"#).unwrap();
        assert_eq!(s.change, Change::Switches);
    }
}

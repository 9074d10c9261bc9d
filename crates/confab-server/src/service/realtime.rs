//! Realtime: what a thread's live subscribers are told, and on which bus topic.
//!
//! Every change to a thread is published once to the topic of that thread; each node fans it
//! out to its own SSE and WebSocket clients (over Redis: one PUBLISH per change, whatever the
//! number of subscribers). Delivery is at-most-once, so every event carries the thread's
//! sequence number (`threads.seq`, bumped in the same transaction as the change): a client that
//! sees a gap, or is told it lagged, re-reads the thread from the API. Hidden changes (a pending
//! comment) are published as `thread.changed` with only the sequence number, so the public
//! sees no content but no false gap either.

use super::{check_origin, Access, Caller, Service};
use crate::views::CommentView;
use bytes::Bytes;
use confab_core::id::{CommentId, ForumId};
use confab_core::ident::Ident;
use confab_core::model::Forum;
use confab_core::DomainError;
use confab_store::ReadFrom;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The bus topic of a thread, known before the thread exists (a page can listen before the
/// first comment): forum id and a hash of the normalized identifier.
pub fn topic(forum: ForumId, ident: &Ident) -> String {
    let d = Sha256::digest(ident.as_str().as_bytes());
    let h: String = d.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("thread.{}.{h}", forum.0)
}

/// One change, as live clients receive it (the SSE `data`, or a WebSocket text message).
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum LiveEvent {
    /// A comment became visible (posted, or approved by a moderator).
    #[serde(rename = "comment.created")]
    Created {
        thread_seq: i64,
        comment: CommentView,
    },
    /// A visible comment's text changed.
    #[serde(rename = "comment.updated")]
    Updated {
        thread_seq: i64,
        comment: CommentView,
    },
    /// A comment stopped being visible (deleted, spam).
    #[serde(rename = "comment.removed")]
    Removed { thread_seq: i64, id: CommentId },
    #[serde(rename = "comment.voted")]
    Voted {
        thread_seq: i64,
        id: CommentId,
        likes: i64,
        dislikes: i64,
    },
    /// A comment's reactions changed (`reactions`: the counts by name, those above zero).
    #[serde(rename = "comment.reacted")]
    Reacted {
        thread_seq: i64,
        id: CommentId,
        reactions: std::collections::BTreeMap<String, i64>,
    },
    /// The page's own reactions changed.
    #[serde(rename = "thread.reacted")]
    ThreadReacted {
        thread_seq: i64,
        reactions: std::collections::BTreeMap<String, i64>,
    },
    /// The thread was closed, reopened or retitled.
    #[serde(rename = "thread.updated")]
    ThreadUpdated {
        thread_seq: i64,
        closed: bool,
        title: Option<String>,
    },
    /// Something only moderators or an author can see changed; only the sequence moves.
    #[serde(rename = "thread.changed")]
    Changed { thread_seq: i64 },
}

impl LiveEvent {
    pub fn seq(&self) -> i64 {
        match self {
            LiveEvent::Created { thread_seq, .. }
            | LiveEvent::Updated { thread_seq, .. }
            | LiveEvent::Removed { thread_seq, .. }
            | LiveEvent::Voted { thread_seq, .. }
            | LiveEvent::Reacted { thread_seq, .. }
            | LiveEvent::ThreadReacted { thread_seq, .. }
            | LiveEvent::ThreadUpdated { thread_seq, .. }
            | LiveEvent::Changed { thread_seq } => *thread_seq,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Created { .. } => "comment.created",
            LiveEvent::Updated { .. } => "comment.updated",
            LiveEvent::Removed { .. } => "comment.removed",
            LiveEvent::Voted { .. } => "comment.voted",
            LiveEvent::Reacted { .. } => "comment.reacted",
            LiveEvent::ThreadReacted { .. } => "thread.reacted",
            LiveEvent::ThreadUpdated { .. } => "thread.updated",
            LiveEvent::Changed { .. } => "thread.changed",
        }
    }
}

/// A published event as it travels on the bus: already the Server-Sent Events frame
/// (`id`, `event`, `data` lines), so a node forwards the same bytes to every SSE client
/// (a reference-count bump each) and does no per-client work but the write.
pub fn encode(ev: &LiveEvent) -> Option<Bytes> {
    let json = serde_json::to_string(ev).ok()?;
    Some(Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {json}\n\n",
        ev.seq(),
        ev.name()
    )))
}

/// The parts of an encoded event: sequence, event name, JSON text (for WebSocket clients).
pub fn decode(msg: &[u8]) -> Option<(i64, &str, &str)> {
    let text = std::str::from_utf8(msg).ok()?;
    let rest = text.strip_prefix("id: ")?;
    let (seq, rest) = rest.split_once('\n')?;
    let rest = rest.strip_prefix("event: ")?;
    let (name, rest) = rest.split_once('\n')?;
    let json = rest.strip_prefix("data: ")?.strip_suffix("\n\n")?;
    Some((seq.parse().ok()?, name, json))
}

impl Service {
    /// Publishes a change to the thread's live subscribers on every node. Fire and forget:
    /// realtime is at-most-once and never holds up the write that caused it.
    ///
    /// Events go through one queue per node to one publishing task, so they leave in the order
    /// they were made; when the queue is full (the bus is slow), events are dropped, and the
    /// next one's sequence gap makes clients re-read.
    pub(crate) fn publish(&self, forum: ForumId, ident: &Ident, ev: LiveEvent) {
        let Some(msg) = encode(&ev) else { return };
        if self.live_out.try_send((topic(forum, ident), msg)).is_err() {
            tracing::debug!("live event dropped: publish queue full");
        } else {
            // In the request's record when it queues it (the publisher task sends it).
            confab_record::add(confab_record::Field::BusPublishes, 1);
        }
    }
}

/// A thread a caller may follow live: its forum exists and the caller's page may embed it.
#[derive(Debug, Clone)]
pub struct LiveThread {
    forum: Arc<Forum>,
    ident: Ident,
}

impl LiveThread {
    /// The thread's forum.
    pub fn forum(&self) -> &Arc<Forum> {
        &self.forum
    }
}

/// A live subscription to a thread's changes.
pub struct Live {
    /// `None` when the bus could not be reached (clients poll meanwhile).
    pub sub: Option<confab_bus::Subscription>,
    /// The thread's sequence number once subscribed: changes up to it are already in what a
    /// client reads from the API.
    pub seq: i64,
}

impl Service {
    /// Checks that `caller` may follow thread `ident` of `forum` live: the forum exists and
    /// the caller's page (its origin) may embed it; then the identifier is parsed.
    pub fn live_thread(
        &self,
        caller: &Caller,
        forum: &str,
        ident: &str,
    ) -> Result<LiveThread, DomainError> {
        let forum = self.forum(forum)?;
        check_origin(caller, &forum, Access::Embed)?;
        let ident = Ident::parse(ident)?;
        Ok(LiveThread { forum, ident })
    }

    /// Subscribes to a thread's changes, then reads its sequence number (in that order, so no
    /// change can fall between the two).
    pub async fn open_live(&self, t: &LiveThread) -> Result<Live, DomainError> {
        let sub = self.bus.subscribe(&topic(t.forum.id, &t.ident)).await.ok();
        let seq = self
            .store
            .thread_by_ident(&t.forum, &t.ident, ReadFrom::Primary)
            .await?
            .map_or(0, |t| t.seq);
        Ok(Live { sub, seq })
    }
}

/// Bound of a node's queue of events waiting to be published.
pub const PUBLISH_QUEUE: usize = 4096;

/// The node's publishing task: takes events in order and publishes them one by one.
pub fn start_publisher(
    bus: Arc<dyn confab_bus::Bus>,
) -> tokio::sync::mpsc::Sender<(String, Bytes)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Bytes)>(PUBLISH_QUEUE);
    tokio::spawn(async move {
        while let Some((topic, msg)) = rx.recv().await {
            let sent = bus.publish(&topic, msg).await;
            crate::http::metrics::bus_publish("live", sent.is_ok());
            if let Err(e) = sent {
                tracing::debug!(error = %e, topic, "live event not published");
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_wire_form() {
        let ev = LiveEvent::Voted {
            thread_seq: 7,
            id: CommentId(42),
            likes: 3,
            dislikes: 1,
        };
        let msg = encode(&ev).unwrap();
        let (seq, name, json) = decode(&msg).unwrap();
        assert_eq!((seq, name), (7, "comment.voted"));
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["type"], "comment.voted");
        assert_eq!(v["id"], "42");
        assert_eq!(v["thread_seq"], 7);
        assert!(decode(b"garbage").is_none());
    }

    #[test]
    fn topics_are_per_forum_and_ident_and_bus_safe() {
        let a = topic(ForumId(1), &Ident::parse("/a").unwrap());
        assert_eq!(
            a,
            topic(
                ForumId(1),
                &Ident::parse("https://x.example/a?utm_source=y").unwrap()
            )
        );
        assert_ne!(a, topic(ForumId(2), &Ident::parse("/a").unwrap()));
        assert_ne!(a, topic(ForumId(1), &Ident::parse("/b").unwrap()));
        assert!(a.len() < 60 && a.bytes().all(|b| b.is_ascii_graphic()));
    }
}

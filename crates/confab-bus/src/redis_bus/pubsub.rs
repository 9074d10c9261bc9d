//! The node's pub/sub connection: one Redis SUBSCRIBE per topic per node, local fan-out via the
//! hub, and connection-loss reporting.
//!
//! A publish is one PUBLISH; Redis sends it once to each subscribed node, and the node's hub hands
//! the same `Bytes` to every local subscriber. When the connection drops (Redis restart, network)
//! every subscriber gets `Disconnected`; the task reconnects with backoff, re-subscribes every
//! topic that still has subscribers, and sends `Reconnected`. A PING every few seconds catches
//! connections that die without a TCP reset.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use redis::aio::PubSubSink;
use tokio::sync::watch;

use super::Inner;
use crate::fanout::{SubEvent, Subscription};
use crate::BusError;

const PING_EVERY: Duration = Duration::from_secs(3);

/// The live sink (None while disconnected). Its mutex also serializes topic creation/removal with
/// the matching SUBSCRIBE/UNSUBSCRIBE, so a topic never exists locally without being subscribed
/// (a subscriber is not told "subscribed" before Redis confirmed it) and an UNSUBSCRIBE can never
/// overtake a newer SUBSCRIBE of the same topic.
pub(crate) struct Slot {
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    pub(crate) up: watch::Sender<bool>,
    /// Why the last connection attempt failed (None once connected).
    last_error: std::sync::Mutex<Option<String>>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            sink: tokio::sync::Mutex::new(None),
            up: watch::Sender::new(false),
            last_error: std::sync::Mutex::new(None),
        }
    }
}

pub(crate) async fn subscribe(inner: &Inner, topic: &str) -> Result<Subscription, BusError> {
    let mut slot = inner.pubsub.sink.lock().await;
    let Some(sink) = slot.as_mut() else {
        let why = inner
            .pubsub
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        return Err(BusError::Unavailable(match why {
            Some(why) => format!("redis pub/sub is not connected: {why}"),
            None => "redis pub/sub is not connected".into(),
        }));
    };
    let (sub, new) = inner.hub.subscribe(topic);
    if new {
        if let Err(e) = inner.timed(sink.subscribe(inner.key("ps", topic))).await {
            drop(sub);
            inner.hub.remove_if_idle(topic);
            return Err(e);
        }
    }
    Ok(sub)
}

pub(crate) async fn run(inner: std::sync::Arc<Inner>, mut shutdown: watch::Receiver<()>) {
    let prefix = inner.key("ps", "");
    let mut backoff = Duration::from_millis(50);
    let mut was_connected = false;
    loop {
        let connect = async {
            let (sink, stream) = inner.timed(inner.client.get_async_pubsub()).await?.split();
            // Re-subscribe under the slot lock so no subscribe() can interleave.
            let mut slot = inner.pubsub.sink.lock().await;
            let topics: Vec<String> = inner
                .hub
                .topic_names()
                .iter()
                .map(|t| format!("{prefix}{t}"))
                .collect();
            // One command per topic: Redis answers a multi-channel (UN)SUBSCRIBE with one reply
            // per channel, and the sink matches replies to requests one to one. Sent all at once,
            // so re-subscribing many topics costs about one round trip.
            let each = topics.into_iter().map(|t| {
                let mut sink = sink.clone();
                async move { sink.subscribe(t).await }
            });
            inner
                .timed(futures_util::future::try_join_all(each))
                .await?;
            *slot = Some(sink.clone());
            Ok::<_, BusError>((sink, stream))
        };
        let connected = tokio::select! {
            _ = shutdown.changed() => return,
            c = connect => c,
        };
        let (mut sink, mut stream) = match connected {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "bus pub/sub cannot connect to redis");
                *inner
                    .pubsub
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(match &e {
                    BusError::Unavailable(why) => why.clone(),
                    other => other.to_string(),
                });
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        *inner
            .pubsub
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        inner.pubsub.up.send_replace(true);
        if was_connected {
            tracing::info!("bus pub/sub reconnected to redis");
            inner.hub.deliver_all(SubEvent::Reconnected);
        }
        was_connected = true;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                msg = stream.next() => match msg {
                    Some(msg) => deliver(&inner, &prefix, &msg),
                    None => break,
                },
                _ = inner.hub.idle.notified() => {
                    let _slot = inner.pubsub.sink.lock().await;
                    let each = inner.hub.take_idle().into_iter().map(|t| {
                        let mut sink = sink.clone();
                        let key = format!("{prefix}{t}");
                        async move { sink.unsubscribe(key).await }
                    });
                    {
                        if let Err(e) = inner.timed(futures_util::future::try_join_all(each)).await {
                            tracing::warn!(error = %e, "bus pub/sub unsubscribe failed; reconnecting");
                            break;
                        }
                    }
                    // Messages Redis sent before the UNSUBSCRIBE reply are already queued. Drain
                    // them while still holding the slot, or a subscriber re-creating the topic
                    // right after would receive messages published before it subscribed.
                    let mut ended = false;
                    while let Some(next) = stream.next().now_or_never() {
                        match next {
                            Some(msg) => deliver(&inner, &prefix, &msg),
                            None => {
                                ended = true;
                                break;
                            }
                        }
                    }
                    if ended {
                        break;
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = inner.timed(sink.ping::<redis::Value>()).await {
                        tracing::warn!(error = %e, "bus pub/sub ping failed; reconnecting");
                        break;
                    }
                }
            }
        }
        *inner.pubsub.sink.lock().await = None;
        inner.pubsub.up.send_replace(false);
        tracing::warn!("bus pub/sub lost redis; subscribers told to resync");
        inner.hub.deliver_all(SubEvent::Disconnected);
    }
}

fn deliver(inner: &Inner, prefix: &str, msg: &redis::Msg) {
    let topic = msg
        .get_channel_name()
        .strip_prefix(prefix)
        .unwrap_or_default();
    let (payload, latency) = crate::stamp::unstamp(msg.get_payload_bytes());
    crate::stamp::received("redis", latency);
    // One copy out of the connection buffer; the local fan-out shares it.
    let payload = Bytes::copy_from_slice(payload);
    inner.hub.deliver(topic, SubEvent::Message(payload));
}

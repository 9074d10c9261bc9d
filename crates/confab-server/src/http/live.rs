//! Live threads: `GET /api/v1/threads/live` as Server-Sent Events, and the same events over a
//! WebSocket at `/api/v1/threads/live/ws`.
//!
//! A connection subscribes to its thread's bus topic (see `service::realtime`); the node fans
//! each published change out to its local connections. Bounds: a per-node connection limit
//! (503 with `Retry-After` past it), the bus's fixed per-topic ring (a client too slow to keep
//! up is told to re-sync, never buffered without limit), a send timeout on WebSockets, and a
//! heartbeat so dead peers are noticed. On shutdown every connection is told to reconnect
//! (to another node) and closed.
//!
//! Control events besides the changes themselves:
//! - `hello` `{"thread_seq"}`: the thread's sequence number when the connection started.
//! - `resync` `{"reason"}`: events may have been missed; re-read the thread from the API.
//! - `degraded` `{"poll_ms"}`: the bus is unreachable; poll the API until `resync` arrives.
//! - `reconnect` `{"retry_ms"}`: this node is going away; reconnect.
//! - `poll` `{"poll_ms", "retry_ms"}`: the `realtime` feature switch is off for this reader
//!   (now, or since the stream opened): poll the API every `poll_ms`, and try a live stream
//!   again after `retry_ms`. The stream ends after it.

use super::caller::Who;
use super::error::{ApiError, Query};
use super::AppState;
use crate::openapi::errors::*;
use crate::service::realtime::{decode, Live};
use crate::service::LiveSwitch;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use confab_bus::{SubEvent, Subscription};
use confab_core::{DomainError, ErrorCode};
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit};

/// How long clients wait before polling again while the bus is down.
const POLL_MS: u64 = 15_000;
const HEARTBEAT: Duration = Duration::from_secs(15);
/// A WebSocket client that can't take a message within this long is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// While `realtime` is off: how often clients poll, and when they try a live stream again.
const SWITCHED_OFF_POLL_MS: u64 = 15_000;
const SWITCHED_OFF_RETRY_MS: u64 = 60_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    pub forum: String,
    pub ident: String,
}

/// What a new connection starts with.
struct Start {
    sub: Option<Subscription>,
    /// The sequence `hello` announced: changes up to it are already in what the client reads.
    seq: i64,
    first: Vec<Out>,
    /// `None` when the stream only says `poll` and ends (no slot taken).
    permit: Option<OwnedSemaphorePermit>,
    /// The `realtime` switch of this connection: the stream ends with `poll` when it goes off.
    switch: LiveSwitch,
}

/// Validates the request, takes a connection slot, subscribes, and works out the opening events.
async fn start(
    app: &AppState,
    caller: &crate::service::Caller,
    q: &LiveQuery,
    last_event_id: Option<i64>,
) -> Result<Start, ApiError> {
    let thread = app.svc.live_thread(caller, &q.forum, &q.ident)?;
    let switch = app.svc.live_switch(caller, &thread).await;
    if !switch.on() {
        return Ok(Start {
            sub: None,
            seq: 0,
            first: vec![poll()],
            permit: None,
            switch,
        });
    }
    let permit = app.live.clone().try_acquire_owned().map_err(|_| ApiError {
        err: DomainError::new(
            ErrorCode::Unavailable,
            "too many live connections on this node",
        ),
        retry_after: Some(5),
    })?;
    // Subscribed before the sequence is read, so nothing can fall between the two.
    let Live { sub, seq } = app.svc.open_live(&thread).await?;
    // `hello` carries the id, so a reconnecting EventSource sends it back as Last-Event-ID.
    let mut first = vec![Out::Frame(bytes::Bytes::from(format!(
        "id: {seq}\nevent: hello\ndata: {{\"thread_seq\":{seq}}}\n\n"
    )))];
    if last_event_id.is_some_and(|l| l != seq) {
        first.push(Out::Control("resync", "{\"reason\":\"missed\"}".into()));
    }
    if sub.is_none() {
        first.push(degraded());
    }
    Ok(Start {
        sub,
        seq,
        first,
        permit: Some(permit),
        switch,
    })
}

/// Something to tell a live client.
enum Out {
    /// A published change, already encoded as an SSE frame (shared by every client).
    Frame(bytes::Bytes),
    /// A control event of this connection: name and JSON data.
    Control(&'static str, String),
}

impl Out {
    fn sse(self) -> bytes::Bytes {
        match self {
            Out::Frame(b) => b,
            Out::Control(name, data) => {
                bytes::Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
            }
        }
    }

    fn ws(self) -> Option<String> {
        match self {
            Out::Frame(b) => decode(&b).map(|(_, name, json)| ws_text(name, json)),
            Out::Control(name, data) => Some(ws_text(name, &data)),
        }
    }

    fn ends(&self) -> bool {
        matches!(self, Out::Control("reconnect" | "poll", _))
    }
}

fn reconnect() -> Out {
    Out::Control("reconnect", "{\"retry_ms\":1000}".into())
}

fn poll() -> Out {
    Out::Control(
        "poll",
        format!("{{\"poll_ms\":{SWITCHED_OFF_POLL_MS},\"retry_ms\":{SWITCHED_OFF_RETRY_MS}}}"),
    )
}

fn degraded() -> Out {
    Out::Control("degraded", format!("{{\"poll_ms\":{POLL_MS}}}"))
}

/// The next thing to tell a client, or `None` when the connection should end. Changes at or
/// below `floor` (the `hello` sequence) are skipped: the subscription starts before the sequence
/// is read, so a change made just before the read can still arrive after `hello`.
async fn next(
    sub: &mut Option<Subscription>,
    floor: i64,
    shutdown: &mut watch::Receiver<bool>,
    switch: &mut LiveSwitch,
) -> Option<Out> {
    let Some(s) = sub.as_mut() else {
        // No bus when this connection started: the client polls meanwhile. After a while it is
        // told to reconnect, and the new connection subscribes again (and re-syncs).
        tokio::select! {
            _ = shutdown.wait_for(|v| *v) => {}
            _ = switch.turned_off() => return Some(poll()),
            _ = tokio::time::sleep(Duration::from_millis(2 * POLL_MS)) => {}
        }
        return Some(reconnect());
    };
    loop {
        return tokio::select! {
            _ = shutdown.wait_for(|v| *v) => Some(reconnect()),
            _ = switch.turned_off() => Some(poll()),
            ev = s.recv() => match ev? {
                SubEvent::Message(b) => match decode(&b) {
                    Some((seq, _, _)) if seq <= floor => continue,
                    Some(_) => Some(Out::Frame(b)),
                    None => Some(Out::Control("resync", "{\"reason\":\"bad event\"}".into())),
                },
                SubEvent::Lagged(_) => Some(Out::Control("resync", "{\"reason\":\"lagged\"}".into())),
                SubEvent::Reconnected => Some(Out::Control("resync", "{\"reason\":\"reconnected\"}".into())),
                SubEvent::Disconnected => Some(degraded()),
            },
        };
    }
}

/// Server-Sent Events of a thread's changes. Send `Last-Event-ID` to resume: if the thread
/// moved on meanwhile, the first events include `resync`.
#[utoipa::path(get, path = "/api/v1/threads/live", tag = "widget",
    params(LiveQuery, ("Last-Event-ID" = Option<String>, Header, description = "The last event id seen, to resume")),
    responses((status = 200, description = "Server-Sent Events of the thread", content_type = "text/event-stream", body = crate::views::LiveEventView),
        BadRequest, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn live_sse(
    State(app): State<AppState>,
    Who(caller): Who,
    headers: HeaderMap,
    Query(q): Query<LiveQuery>,
) -> Result<Response, ApiError> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let Start {
        sub,
        seq,
        first,
        permit,
        switch,
    } = start(&app, &caller, &q, last).await?;
    struct St {
        sub: Option<Subscription>,
        floor: i64,
        queue: VecDeque<Out>,
        shutdown: watch::Receiver<bool>,
        switch: LiveSwitch,
        beat: tokio::time::Interval,
        ended: bool,
        _permit: Option<OwnedSemaphorePermit>,
    }
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.reset();
    let st = St {
        sub,
        floor: seq,
        queue: first.into(),
        shutdown: app.shutdown.clone(),
        switch,
        beat,
        ended: false,
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if st.ended {
            return None;
        }
        let out = match st.queue.pop_front() {
            Some(o) => o,
            None => tokio::select! {
                o = next(&mut st.sub, st.floor, &mut st.shutdown, &mut st.switch) => o?,
                // A comment line keeps proxies from timing the stream out and finds dead peers.
                _ = st.beat.tick() => return Some((Ok::<_, Infallible>(bytes::Bytes::from_static(b":\n\n")), st)),
            },
        };
        st.ended = out.ends();
        Some((Ok(out.sse()), st))
    });
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    h.insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(resp)
}

/// The same events over a WebSocket: each message is the JSON of one event (`type` says which).
/// A request that is not a WebSocket upgrade gets 400 (426 on a connection that cannot be
/// upgraded), in the API's error shape.
#[utoipa::path(get, path = "/api/v1/threads/live/ws", tag = "widget",
    params(LiveQuery, ("Connection" = String, Header), ("Upgrade" = String, Header), ("Sec-WebSocket-Version" = String, Header),
        ("Sec-WebSocket-Key" = String, Header, description = "Any key; the answer's `Sec-WebSocket-Accept` is derived from it")),
    responses((status = 101, description = "WebSocket of thread events"), BadRequest, Forbidden, NotFound, PayloadTooLarge, UpgradeRequired,
        Internal, Unavailable))]
pub async fn live_ws(
    State(app): State<AppState>,
    Who(caller): Who,
    Query(q): Query<LiveQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            let mut resp = ApiError::new(ErrorCode::BadRequest, r.body_text()).into_response();
            *resp.status_mut() = r.status();
            return Ok(resp);
        }
    };
    let Start {
        sub,
        seq,
        first,
        permit,
        switch,
    } = start(&app, &caller, &q, None).await?;
    let shutdown = app.shutdown.clone();
    // Clients only send pings and closes: a small read buffer (tungstenite's default is
    // 128 KiB a connection, most of an idle WebSocket's memory), and every message is written
    // through at once rather than gathered.
    Ok(ws
        .max_message_size(4096)
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| ws_loop(socket, sub, seq, first, shutdown, switch, permit)))
}

/// Control events become `{"type": name, ...data}` on a WebSocket; changes already carry `type`.
fn ws_text(name: &str, data: &str) -> String {
    if data.starts_with("{\"type\"") {
        return data.to_string();
    }
    let inner = data.trim_start_matches('{');
    if inner == "}" {
        format!("{{\"type\":\"{name}\"}}")
    } else {
        format!("{{\"type\":\"{name}\",{inner}")
    }
}

async fn ws_loop(
    mut socket: WebSocket,
    mut sub: Option<Subscription>,
    floor: i64,
    first: Vec<Out>,
    mut shutdown: watch::Receiver<bool>,
    mut switch: LiveSwitch,
    _permit: Option<OwnedSemaphorePermit>,
) {
    async fn send(socket: &mut WebSocket, text: String) -> bool {
        matches!(
            tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
            Ok(Ok(()))
        )
    }
    for out in first {
        let last = out.ends();
        let Some(text) = out.ws() else { continue };
        if !send(&mut socket, text).await {
            return;
        }
        if last {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    }
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    loop {
        tokio::select! {
            ev = next(&mut sub, floor, &mut shutdown, &mut switch) => {
                let Some(out) = ev else { break };
                let last = out.ends();
                let Some(text) = out.ws() else { continue };
                if !send(&mut socket, text).await || last {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = beat.tick() => {
                if !matches!(tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Vec::new().into()))).await, Ok(Ok(()))) {
                    break;
                }
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_events_become_typed_json() {
        assert_eq!(
            super::ws_text("hello", "{\"thread_seq\":3}"),
            "{\"type\":\"hello\",\"thread_seq\":3}"
        );
        assert_eq!(
            super::ws_text("comment.voted", "{\"type\":\"comment.voted\",\"id\":\"1\"}"),
            "{\"type\":\"comment.voted\",\"id\":\"1\"}"
        );
    }

    #[tokio::test]
    async fn changes_up_to_the_hello_sequence_are_not_sent_again() {
        use crate::service::realtime::{encode, LiveEvent};
        use confab_bus::{Bus, BusConfig, InProcessBus};
        let bus = InProcessBus::new(BusConfig::default());
        let mut sub = Some(bus.subscribe("t").await.unwrap());
        for seq in 1..=3 {
            bus.publish(
                "t",
                encode(&LiveEvent::Changed { thread_seq: seq }).unwrap(),
            )
            .await
            .unwrap();
        }
        let (_tx, mut shutdown) = tokio::sync::watch::channel(false);
        let mut switch = crate::service::LiveSwitch::always_on();
        let Some(super::Out::Frame(b)) = super::next(&mut sub, 2, &mut shutdown, &mut switch).await
        else {
            panic!("expected a change")
        };
        assert_eq!(
            super::decode(&b).unwrap().0,
            3,
            "1 and 2 were in hello's sequence"
        );
    }
}

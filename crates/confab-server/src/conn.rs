//! Connections: the accept loop, with caps and read timeouts, under every request.
//!
//! A client must not be able to hold sockets by sending nothing, or half a request:
//! - the request line and headers must arrive within `header_timeout_secs` (hyper's header read
//!   timer, which also closes a kept-alive connection that waits that long for its next
//!   request, and a bare connect that never sends a byte);
//! - a request body must arrive within `body_timeout_secs` (408 past it; `http/mod.rs`);
//! - a node holds at most `max` connections, and one client address at most `max_per_ip`
//!   (trusted proxies excepted: they carry many clients); past the address cap the connection
//!   gets a 503 with `Retry-After` and is closed, without reading anything. At the node cap the
//!   oldest connection that has not yet sent a whole request is closed to make room (a
//!   slow-sending crowd from many addresses cannot keep everyone else out); only when every
//!   connection is serving a request does a new one get the 503;
//! - at start the open-file limit is raised to the hard limit where the OS allows, and `max`
//!   is kept below it so that accepting never fails for want of descriptors.
//!
//! Responses are not timed: a live stream (SSE) or an upgraded WebSocket runs for as long as
//! its client stays.

use crate::config::ConnectionsConfig;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// Descriptors kept back from the connection cap for database pools, files and the like.
const RESERVED_FDS: u64 = 128;

/// Raises this process's open-file soft limit to its hard limit and returns the soft limit now
/// in force (None where the platform has no such limit).
pub fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The connection cap in force: the configured one, kept below the open-file limit.
pub fn effective_max(configured: usize, fd_limit: Option<u64>) -> usize {
    match fd_limit {
        Some(fds) => configured.min(fds.saturating_sub(RESERVED_FDS).max(16) as usize),
        None => configured,
    }
}

/// A connection's place under the node cap: given back when the connection ends, or taken
/// from it when it is evicted.
type Place = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// Connections that have not yet sent a whole request, oldest first: the ones closed to make
/// room when the node is at its cap.
#[derive(Default)]
struct Unserved {
    next: std::sync::atomic::AtomicU64,
    waiting: Mutex<std::collections::BTreeMap<u64, (Arc<tokio::sync::Notify>, Place)>>,
}

/// A connection's entry in [`Unserved`]: removed on its first request, or when it ends.
struct UnservedSlot {
    table: Arc<Unserved>,
    seq: u64,
}

impl Unserved {
    fn enter(self: &Arc<Self>, place: Place) -> (UnservedSlot, Arc<tokio::sync::Notify>) {
        let seq = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let evict = Arc::new(tokio::sync::Notify::new());
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(seq, (evict.clone(), place));
        (
            UnservedSlot {
                table: self.clone(),
                seq,
            },
            evict,
        )
    }

    /// Takes the place of the oldest connection still waiting for its first request, and tells
    /// it to close. None when there is none.
    fn evict_oldest(&self) -> Option<OwnedSemaphorePermit> {
        loop {
            let (evict, place) = self
                .waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_first()?
                .1;
            let taken = place.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(permit) = taken {
                evict.notify_one();
                return Some(permit);
            }
        }
    }
}

impl UnservedSlot {
    fn served(&self) {
        self.table
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.seq);
    }
}

impl Drop for UnservedSlot {
    fn drop(&mut self) {
        self.served();
    }
}

/// Open connections per client address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerIp`], given back when the connection ends.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// What a refused connection is told, before it is closed.
fn refusal(message: &str) -> Vec<u8> {
    let body =
        serde_json::json!({"error": {"code": "unavailable", "message": message}}).to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn refuse(mut stream: TcpStream, message: &'static str) {
    // Bounded: a client that does not read its refusal is dropped all the same.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(&refusal(message)).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets every open connection
/// finish its request (live streams are ended by the app itself) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &ConnectionsConfig,
    trusted_proxies: &[IpAddr],
    max: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(max));
    let per_ip = Arc::new(PerIp::default());
    let unserved = Arc::new(Unserved::default());
    let header_timeout = Duration::from_secs(cfg.header_timeout_secs.max(1));
    // Every connection task holds a receiver; shutdown is seen by all, and the loop waits
    // until the last one is dropped.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // rather than spin (the cap normally keeps this from happening).
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let ip_slot = if trusted_proxies.contains(&peer.ip()) {
            None
        } else {
            match per_ip.take(peer.ip(), cfg.max_per_ip) {
                Some(s) => Some(s),
                None => {
                    tokio::spawn(refuse(
                        stream,
                        "too many open connections from your address",
                    ));
                    continue;
                }
            }
        };
        // A place now; or, at the cap, the place of the oldest connection that has sent nothing
        // whole yet, which is told to close.
        let Some(permit) = slots
            .clone()
            .try_acquire_owned()
            .ok()
            .or_else(|| unserved.evict_oldest())
        else {
            tokio::spawn(refuse(
                stream,
                "this server has too many open connections; try again shortly",
            ));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let place: Place = Arc::new(Mutex::new(Some(permit)));
        let (waiting, evict) = unserved.enter(place.clone());
        tokio::spawn(async move {
            let _held = (place, ip_slot);
            let waiting = Arc::new(waiting);
            let first_request = waiting.clone();
            let svc = TowerToHyperService::new(app.map_request(
                move |mut req: axum::http::Request<Incoming>| {
                    first_request.served();
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req.map(axum::body::Body::new)
                },
            ));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                // Closed to make room (it had not sent a whole request): dropping it closes it.
                () = evict.notified() => return,
                _ = stop.wait_for(|s| *s) => {}
            }
            // Shutting down: finish the request in flight, then close.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_slots_are_given_back() {
        let t = Arc::new(PerIp::default());
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = t.take(ip, 2).unwrap();
        let _b = t.take(ip, 2).unwrap();
        assert!(t.take(ip, 2).is_none());
        assert!(t.take([10, 0, 0, 2].into(), 2).is_some());
        drop(a);
        assert!(t.take(ip, 2).is_some());
    }

    #[tokio::test]
    async fn the_oldest_unserved_connection_gives_up_its_place() {
        let slots = Arc::new(Semaphore::new(3));
        let t = Arc::new(Unserved::default());
        let place =
            || -> Place { Arc::new(Mutex::new(Some(slots.clone().try_acquire_owned().unwrap()))) };
        let (a, ea) = t.enter(place());
        let (b, eb) = t.enter(place());
        let (_c, ec) = t.enter(place());
        assert!(slots.clone().try_acquire_owned().is_err(), "full");
        a.served(); // a sent a request: not evictable
        let taken = t.evict_oldest().expect("b's place");
        // b, the oldest still waiting, was told; c and a were not.
        tokio::time::timeout(Duration::from_millis(100), eb.notified())
            .await
            .expect("b evicted");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), ec.notified())
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(20), ea.notified())
                .await
                .is_err()
        );
        drop(b);
        assert!(t.evict_oldest().is_some(), "c is next");
        assert!(t.evict_oldest().is_none(), "none left");
        drop(taken);
        assert!(
            slots.clone().try_acquire_owned().is_ok(),
            "a taken place is given back when its new holder ends"
        );
    }

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(
            effective_max(12_000, Some(1024)),
            1024 - RESERVED_FDS as usize
        );
        assert_eq!(effective_max(500, Some(1_048_576)), 500);
        assert_eq!(effective_max(500, None), 500);
    }

    #[test]
    fn refusal_is_a_complete_response() {
        let r = String::from_utf8(refusal("busy")).unwrap();
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(body.contains("\"unavailable\""));
    }
}

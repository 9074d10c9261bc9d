//! Publish stamps: a message published over Redis carries the time it was published, so the
//! node that receives it can tell how long delivery took (`confab_bus_delivery_seconds`).
//!
//! A stamped message is `STAMP_MAGIC`, the publish time (microseconds since the Unix epoch, 8
//! bytes big-endian), then the payload. The magic starts with a NUL byte, which never starts
//! a message Confab publishes (JSON, SSE frames) and so cannot be mistaken for one; an
//! unstamped message (from a node before stamps) is delivered as it is, without a latency.
//! Latency across nodes is only as good as their clocks' agreement (NTP keeps it to about a
//! millisecond); a negative one (the receiver's clock behind) counts as zero.

use std::time::{SystemTime, UNIX_EPOCH};

const STAMP_MAGIC: &[u8; 4] = b"\0cf1";
const HEADER: usize = STAMP_MAGIC.len() + 8;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `payload` with the current time in front.
pub(crate) fn stamp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(STAMP_MAGIC);
    out.extend_from_slice(&now_us().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a received message, and how long ago it was published (seconds) if it was
/// stamped.
pub(crate) fn unstamp(raw: &[u8]) -> (&[u8], Option<f64>) {
    match raw.strip_prefix(STAMP_MAGIC.as_slice()) {
        Some(rest) if rest.len() >= 8 => {
            let (at, payload) = rest.split_at(8);
            let mut b = [0u8; 8];
            b.copy_from_slice(at);
            let age = now_us().saturating_sub(u64::from_be_bytes(b));
            (payload, Some(age as f64 / 1e6))
        }
        _ => (raw, None),
    }
}

/// A message reached this node: counted (`bus`: which backend), with its delivery latency
/// when it carried a stamp.
pub(crate) fn received(bus: &'static str, latency: Option<f64>) {
    metrics::counter!("confab_bus_deliveries_total", "bus" => bus).increment(1);
    if let Some(s) = latency {
        metrics::histogram!("confab_bus_delivery_seconds", "bus" => bus).record(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_messages_round_trip_and_plain_ones_pass() {
        let s = stamp(b"{\"a\":1}");
        let (payload, age) = unstamp(&s);
        assert_eq!(payload, b"{\"a\":1}");
        let age = age.unwrap();
        assert!((0.0..1.0).contains(&age), "{age}");
        // A message from a node before stamps.
        assert_eq!(unstamp(b"id: 1\n"), (&b"id: 1\n"[..], None));
        // Too short to hold a time: taken as it is.
        assert_eq!(unstamp(b"\0cf1abc"), (&b"\0cf1abc"[..], None));
        assert_eq!(unstamp(b""), (&b""[..], None));
    }
}

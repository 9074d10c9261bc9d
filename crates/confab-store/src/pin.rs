//! Read-your-writes (ARCHITECTURE.md, "Read-your-writes"): where a write committed, and what a
//! later read must see.
//!
//! A write records its commit position ([`WritePos`]: the physical shard server and the WAL
//! position after commit) into the caller's [`track_writes`] scope; the HTTP layer signs it
//! into a short-lived pin for the client. A later read by that client runs inside
//! [`reading_with`]`(ReadPin::At(pos))`: a replicated backend serves it from a replica only
//! if that replica has replayed past `pos` (from the replica positions it polls), otherwise
//! from the primary. Cache fills run with [`ReadPin::Fresh`]: at least this node's own latest
//! write on that server, so a shared cache entry is never filled from a replica that has not
//! yet seen the write that invalidated it. The embedded backend has one copy and ignores pins.

use std::sync::{Arc, Mutex};

/// A commit position: the physical shard server (its id in the shard map) and the WAL
/// position after the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WritePos {
    pub server: i32,
    pub lsn: u64,
}

impl WritePos {
    /// `server.lsn` in decimal, the form signed into pins.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.server, self.lsn)
    }
    pub fn decode(s: &str) -> Option<WritePos> {
        let (a, b) = s.split_once('.')?;
        Some(WritePos {
            server: a.parse().ok()?,
            lsn: b.parse().ok()?,
        })
    }
}

/// What a replica read must have seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPin {
    /// This client's last write: replicas that replayed past it, or the primary.
    At(WritePos),
    /// This node's own latest write on each server (for filling shared caches).
    Fresh,
}

tokio::task_local! {
    static READ_PIN: ReadPin;
    static WRITES: Arc<Mutex<Option<WritePos>>>;
}

/// Runs `f` with reads pinned by `pin`.
pub async fn reading_with<F: std::future::Future>(pin: ReadPin, f: F) -> F::Output {
    READ_PIN.scope(pin, f).await
}

/// The pin the current task reads with, if any.
pub fn read_pin() -> Option<ReadPin> {
    READ_PIN.try_with(|p| *p).ok()
}

/// Runs `f` and returns the position of the last write it committed, if it wrote.
pub async fn track_writes<F: std::future::Future>(f: F) -> (F::Output, Option<WritePos>) {
    let slot = Arc::new(Mutex::new(None));
    let out = WRITES.scope(slot.clone(), f).await;
    let pos = *slot.lock().unwrap_or_else(|p| p.into_inner());
    (out, pos)
}

/// The position of the last write committed so far inside the current [`track_writes`] scope.
pub fn last_write() -> Option<WritePos> {
    WRITES
        .try_with(|slot| *slot.lock().unwrap_or_else(|p| p.into_inner()))
        .ok()
        .flatten()
}

/// Called by a backend after a commit.
pub(crate) fn record_write(pos: WritePos) {
    let _ = WRITES.try_with(|slot| {
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(pos);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let p = WritePos {
            server: 3,
            lsn: 0x1_6B37_4D48,
        };
        assert_eq!(WritePos::decode(&p.encode()), Some(p));
        assert_eq!(WritePos::decode("3"), None);
        assert_eq!(WritePos::decode("x.1"), None);
    }

    #[tokio::test]
    async fn scopes_carry_pins_and_record_writes() {
        assert_eq!(read_pin(), None);
        let inner = reading_with(ReadPin::Fresh, async { read_pin() }).await;
        assert_eq!(inner, Some(ReadPin::Fresh));
        let ((), pos) = track_writes(async {
            record_write(WritePos { server: 1, lsn: 5 });
            record_write(WritePos { server: 2, lsn: 7 });
        })
        .await;
        assert_eq!(
            pos,
            Some(WritePos { server: 2, lsn: 7 }),
            "the last write wins"
        );
        let (seen, _) = track_writes(async {
            record_write(WritePos { server: 3, lsn: 9 });
            last_write()
        })
        .await;
        assert_eq!(seen, Some(WritePos { server: 3, lsn: 9 }));
        assert_eq!(last_write(), None);
        record_write(WritePos { server: 1, lsn: 1 }); // outside a scope: ignored
    }
}

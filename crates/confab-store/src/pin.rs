//! Read-your-writes (ARCHITECTURE.md, "Read-your-writes"): where a write committed, and what a
//! later read must see.
//!
//! A write a client may read back returns its commit position ([`Written::at`], a [`WritePos`]:
//! the physical shard server and the WAL position after commit); the HTTP layer signs it
//! into a short-lived pin for the client. A later read by that client runs inside
//! [`reading_with`]`(ReadPin::At(pos))`: a replicated backend serves it from a replica only
//! if that replica has replayed past `pos` (from the replica positions it polls), otherwise
//! from the primary. Cache fills run with [`ReadPin::Fresh`]: at least this node's own latest
//! write on that server, so a shared cache entry is never filled from a replica that has not
//! yet seen the write that invalidated it. The embedded backend has one copy and ignores pins.

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
}

/// Runs `f` with reads pinned by `pin`.
pub async fn reading_with<F: std::future::Future>(pin: ReadPin, f: F) -> F::Output {
    READ_PIN.scope(pin, f).await
}

/// The pin the current task reads with, if any.
pub fn read_pin() -> Option<ReadPin> {
    READ_PIN.try_with(|p| *p).ok()
}

/// What a write a client may read back returns: its result, and where it committed (`None` on
/// the embedded backend, which has one copy). The service hands the position on with its own
/// result, and the HTTP layer signs it into the client's pin.
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    pub value: T,
    pub at: Option<WritePos>,
}

impl<T> Written<T> {
    /// A write on a backend with one copy: nothing to pin.
    pub fn here(value: T) -> Written<T> {
        Written { value, at: None }
    }
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
    async fn scopes_carry_pins() {
        assert_eq!(read_pin(), None);
        let inner = reading_with(ReadPin::Fresh, async { read_pin() }).await;
        assert_eq!(inner, Some(ReadPin::Fresh));
        assert_eq!(read_pin(), None);
    }
}

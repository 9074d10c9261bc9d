//! A small memcached client: the text protocol over a tokio `TcpStream`, with a bounded pool of
//! connections per server. Only what the tier needs: get (one or many keys), set, add, delete,
//! incr.
//!
//! Why not a crate: the async clients on crates.io did not fit. `async-memcached` (the best
//! kept) drives one connection through `&mut self`, so it needs a pool around it anyway, and it
//! pulls in proc-macro stacks (`async-stream`, `pin-project`, `futures` with its macros) plus
//! `nom` and `url`; `memcache`'s tokio client sits in its experimental `exp` module; `rsmc-tokio`
//! has not been released since 2021. The subset of the protocol used here is a few lines per
//! command, and the tier bounds every call with its own timeout anyway.
//!
//! Time limits are the caller's: a call cancelled by a timeout drops the connection it was
//! using (it is never put back into the pool half-read), so a pooled connection is always
//! between commands.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections per server, at most (idle plus in use).
const MAX_CONNECTIONS: usize = 8;
/// memcached reads an exptime above 30 days as a unix timestamp.
const RELATIVE_EXPTIME_MAX: u64 = 60 * 60 * 24 * 30;
/// Keys per `get` command (memcached takes more, but a bounded line keeps its buffers small).
const KEYS_PER_GET: usize = 100;
/// A value longer than this in a reply is a protocol error (memcached's item limit is 1 MiB by
/// default, 1 GiB at most).
const MAX_VALUE: usize = 1 << 30;
/// A reply line longer than this is a protocol error (keys are at most 250 bytes).
const MAX_LINE: usize = 1024;

type Conn = BufStream<TcpStream>;

/// One memcached server: its address and pool.
#[derive(Debug)]
pub(crate) struct Memcache {
    addr: String,
    idle: Mutex<Vec<Conn>>,
    slots: Arc<Semaphore>,
}

/// A connection checked out of the pool, with its pool slot.
struct Lease<'a> {
    pool: &'a Memcache,
    conn: Option<Conn>,
    _permit: OwnedSemaphorePermit,
}

impl Lease<'_> {
    fn conn(&mut self) -> io::Result<&mut Conn> {
        self.conn
            .as_mut()
            .ok_or_else(|| io::Error::other("connection already returned"))
    }

    /// Puts the connection back for the next caller (only after a complete exchange).
    fn done(mut self) {
        if let Some(conn) = self.conn.take() {
            if let Ok(mut idle) = self.pool.idle.lock() {
                idle.push(conn);
            }
        }
    }
}

impl Memcache {
    pub(crate) fn new(addr: String) -> Memcache {
        Memcache {
            addr,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }
    }

    async fn lease(&self) -> io::Result<Lease<'_>> {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let stream = TcpStream::connect(&self.addr).await?;
                stream.set_nodelay(true)?;
                BufStream::new(stream)
            }
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }

    /// Drops every idle connection (after a failure: they may point at a dead server).
    pub(crate) fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// `get k1 k2 ...`: the value of each key, in the order asked (`None` for a miss). Long
    /// lists go as several commands of at most `KEYS_PER_GET` keys on one connection.
    pub(crate) async fn get_many(&self, keys: &[&str]) -> io::Result<Vec<Option<Bytes>>> {
        let mut out = vec![None; keys.len()];
        if keys.is_empty() {
            return Ok(out);
        }
        let mut lease = self.lease().await?;
        let conn = lease.conn()?;
        for (chunk_no, chunk) in keys.chunks(KEYS_PER_GET).enumerate() {
            let mut cmd = Vec::with_capacity(5 + chunk.iter().map(|k| k.len() + 1).sum::<usize>());
            cmd.extend_from_slice(b"get");
            for k in chunk {
                cmd.push(b' ');
                cmd.extend_from_slice(k.as_bytes());
            }
            cmd.extend_from_slice(b"\r\n");
            conn.write_all(&cmd).await?;
            conn.flush().await?;
            let base = chunk_no * KEYS_PER_GET;
            loop {
                let line = read_line(conn).await?;
                if line == "END" {
                    break;
                }
                // VALUE <key> <flags> <bytes>
                let mut parts = line.split(' ');
                let (Some("VALUE"), Some(key), Some(_flags), Some(len)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(server_error(&line));
                };
                let len: usize = len.parse().map_err(|_| server_error(&line))?;
                if len > MAX_VALUE {
                    return Err(server_error(&line));
                }
                let mut data = vec![0u8; len + 2];
                conn.read_exact(&mut data).await?;
                if !data.ends_with(b"\r\n") {
                    return Err(io::Error::other("memcached: value not followed by CRLF"));
                }
                data.truncate(len);
                let value = Bytes::from(data);
                for (slot, k) in out[base..].iter_mut().zip(chunk) {
                    if *k == key {
                        *slot = Some(value.clone());
                    }
                }
            }
        }
        lease.done();
        Ok(out)
    }

    /// `set`: stores unconditionally.
    pub(crate) async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> io::Result<()> {
        match self.store("set", key, value, ttl).await?.as_str() {
            "STORED" => Ok(()),
            other => Err(server_error(other)),
        }
    }

    /// `add`: stores only when the key is absent. `Ok(false)` when it was there.
    pub(crate) async fn add(&self, key: &str, value: &[u8], ttl: Duration) -> io::Result<bool> {
        match self.store("add", key, value, ttl).await?.as_str() {
            "STORED" => Ok(true),
            "NOT_STORED" => Ok(false),
            other => Err(server_error(other)),
        }
    }

    async fn store(
        &self,
        verb: &str,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> io::Result<String> {
        let mut lease = self.lease().await?;
        let conn = lease.conn()?;
        let head = format!("{verb} {key} 0 {} {}\r\n", exptime(ttl), value.len());
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(value).await?;
        conn.write_all(b"\r\n").await?;
        conn.flush().await?;
        let reply = read_line(conn).await?;
        lease.done();
        Ok(reply)
    }

    /// `delete`: `Ok` whether or not the key was there.
    pub(crate) async fn delete(&self, key: &str) -> io::Result<()> {
        match self.command(&format!("delete {key}\r\n")).await?.as_str() {
            "DELETED" | "NOT_FOUND" => Ok(()),
            other => Err(server_error(other)),
        }
    }

    /// `incr key 1`: the new value, `None` when the key is absent.
    pub(crate) async fn incr(&self, key: &str) -> io::Result<Option<u64>> {
        let reply = self.command(&format!("incr {key} 1\r\n")).await?;
        if reply == "NOT_FOUND" {
            return Ok(None);
        }
        reply.parse().map(Some).map_err(|_| server_error(&reply))
    }

    async fn command(&self, cmd: &str) -> io::Result<String> {
        let mut lease = self.lease().await?;
        let conn = lease.conn()?;
        conn.write_all(cmd.as_bytes()).await?;
        conn.flush().await?;
        let reply = read_line(conn).await?;
        lease.done();
        Ok(reply)
    }
}

/// memcached's exptime for a time to live: whole seconds rounded up (0 would mean "never"), as
/// an absolute unix time past memcached's 30-day limit for relative times.
pub(crate) fn exptime(ttl: Duration) -> u64 {
    let secs = ttl.as_millis().div_ceil(1000).max(1) as u64;
    if secs <= RELATIVE_EXPTIME_MAX {
        return secs;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    now + secs
}

async fn read_line(conn: &mut Conn) -> io::Result<String> {
    let mut line = Vec::with_capacity(64);
    let n = (&mut *conn)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::other("memcached: reply line too long or cut"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(io::Error::other)
}

fn server_error(reply: &str) -> io::Error {
    io::Error::other(format!(
        "memcached: unexpected reply {:?}",
        reply.chars().take(80).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_rounds_up_and_goes_absolute_past_30_days() {
        assert_eq!(exptime(Duration::from_millis(1)), 1);
        assert_eq!(exptime(Duration::from_millis(1500)), 2);
        assert_eq!(exptime(Duration::from_secs(2)), 2);
        assert_eq!(exptime(Duration::ZERO), 1);
        let long = exptime(Duration::from_secs(RELATIVE_EXPTIME_MAX + 1));
        assert!(long > 1_600_000_000);
    }
}

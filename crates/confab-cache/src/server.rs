//! One cache server (Redis or memcached) behind the operations the tier uses, and its health:
//! consecutive failures and ejection. Calls here are not time-bounded; the tier wraps each in
//! its timeout.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;

use crate::memcache::Memcache;
use crate::CacheError;

/// Why a server call failed (the tier only counts and logs it).
pub(crate) type CallError = String;

pub(crate) enum Backend {
    /// One multiplexed connection, opened on first use and again after any failure.
    Redis {
        client: redis::Client,
        conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    },
    Memcache(Memcache),
}

pub(crate) struct Server {
    /// `host:port`, the ring's name for it.
    pub(crate) name: String,
    pub(crate) backend: Backend,
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    failures: u32,
    ejected_until: Option<Instant>,
    /// Why the last call failed, until one succeeds.
    last_error: Option<String>,
}

/// What a failure or success changed, for the tier to log and count.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    Ejected,
    Returned,
}

impl Server {
    /// Parses `redis://host:port[/db]` or `memcache://host:port`. Connects nothing.
    pub(crate) fn parse(url: &str) -> Result<Server, CacheError> {
        let bad = |why: &str| CacheError::BadServer(format!("{url}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let (hostport, path) = match rest.split_once('/') {
            Some((h, p)) => (h, p),
            None => (rest, ""),
        };
        let default_port = match scheme {
            "redis" => 6379,
            "memcache" | "memcached" => 11211,
            _ => return Err(bad("unknown scheme (redis:// or memcache://)")),
        };
        if hostport.is_empty() || hostport.contains('@') {
            return Err(bad("expected host:port"));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.ends_with(':') => {
                (h, p.parse::<u16>().map_err(|_| bad("bad port"))?)
            }
            _ => (hostport, default_port),
        };
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("bad host"));
        }
        let name = format!("{host}:{port}");
        let backend = if scheme == "redis" {
            let path = path.trim_end_matches('/');
            if !path.is_empty() && path.parse::<u32>().is_err() {
                return Err(bad("the path must be a database number"));
            }
            let db = if path.is_empty() { "0" } else { path };
            let client = redis::Client::open(format!("redis://{name}/{db}"))
                .map_err(|e| bad(&e.to_string()))?;
            Backend::Redis {
                client,
                conn: tokio::sync::Mutex::new(None),
            }
        } else {
            if !path.trim_end_matches('/').is_empty() {
                return Err(bad("memcache:// takes no path"));
            }
            Backend::Memcache(Memcache::new(name.clone()))
        };
        Ok(Server {
            name,
            backend,
            health: Mutex::new(Health::default()),
        })
    }

    /// Not ejected (or its ejection is over: the next call tries it again).
    pub(crate) fn is_live(&self, now: Instant) -> bool {
        self.health
            .lock()
            .map(|h| h.ejected_until.is_none_or(|t| now >= t))
            .unwrap_or(true)
    }

    /// Ejected right now (for stats).
    pub(crate) fn is_ejected(&self) -> bool {
        !self.is_live(Instant::now())
    }

    pub(crate) fn record_success(&self) -> Change {
        let Ok(mut h) = self.health.lock() else {
            return Change::None;
        };
        let was_ejected = h.ejected_until.is_some();
        h.failures = 0;
        h.last_error = None;
        h.ejected_until = None;
        if was_ejected {
            Change::Returned
        } else {
            Change::None
        }
    }

    pub(crate) fn set_last_error(&self, why: &str) {
        if let Ok(mut h) = self.health.lock() {
            h.last_error = Some(why.to_string());
        }
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.health.lock().ok().and_then(|h| h.last_error.clone())
    }

    pub(crate) fn record_failure(&self, limit: u32, retry: Duration) -> Change {
        self.reset();
        let Ok(mut h) = self.health.lock() else {
            return Change::None;
        };
        let now = Instant::now();
        h.failures = h.failures.saturating_add(1);
        let ejected_now = h.ejected_until.is_some_and(|t| now < t);
        if h.failures >= limit.max(1) && !ejected_now {
            h.ejected_until = Some(now + retry);
            return Change::Ejected;
        }
        Change::None
    }

    async fn redis(&self) -> Result<MultiplexedConnection, CallError> {
        let Backend::Redis { client, conn } = &self.backend else {
            return Err("not a redis server".into());
        };
        let mut slot = conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = client
            .get_multiplexed_async_connection_with_config(&AsyncConnectionConfig::new())
            .await
            .map_err(|e| self.cause(&e))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// A Redis failure with where and why ([`redis_cause`]).
    fn cause(&self, e: &redis::RedisError) -> CallError {
        redis_cause(&self.name, e)
    }

    /// A memcached failure with where and why ([`memcache_cause`]).
    fn io_cause(&self, e: &io::Error) -> CallError {
        memcache_cause(&self.name, e)
    }

    /// Forgets the Redis connection after a failure or timeout (the next call opens a new one).
    fn reset(&self) {
        match &self.backend {
            Backend::Redis { conn, .. } => {
                // try_lock: a call that is connecting right now keeps its fresh connection.
                if let Ok(mut slot) = conn.try_lock() {
                    *slot = None;
                }
            }
            Backend::Memcache(m) => m.clear(),
        }
    }

    pub(crate) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, CallError> {
        match &self.backend {
            Backend::Redis { .. } => {
                let mut c = self.redis().await?;
                let mut cmd = redis::cmd("MGET");
                for k in keys {
                    cmd.arg(*k);
                }
                let vals: Vec<Option<Vec<u8>>> =
                    cmd.query_async(&mut c).await.map_err(|e| self.cause(&e))?;
                Ok(vals.into_iter().map(|v| v.map(Bytes::from)).collect())
            }
            Backend::Memcache(m) => m.get_many(keys).await.map_err(|e| self.io_cause(&e)),
        }
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), CallError> {
        match &self.backend {
            Backend::Redis { .. } => {
                let mut c = self.redis().await?;
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async::<()>(&mut c)
                    .await
                    .map_err(|e| self.cause(&e))
            }
            Backend::Memcache(m) => m.set(key, value, ttl).await.map_err(|e| self.io_cause(&e)),
        }
    }

    /// Stores only if absent (`SET NX PX` / `add`): `Ok(true)` when this call stored it.
    pub(crate) async fn add(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CallError> {
        match &self.backend {
            Backend::Redis { .. } => {
                let mut c = self.redis().await?;
                let r: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async(&mut c)
                    .await
                    .map_err(|e| self.cause(&e))?;
                Ok(r.is_some())
            }
            Backend::Memcache(m) => m.add(key, value, ttl).await.map_err(|e| self.io_cause(&e)),
        }
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), CallError> {
        match &self.backend {
            Backend::Redis { .. } => {
                let mut c = self.redis().await?;
                redis::cmd("DEL")
                    .arg(key)
                    .query_async::<()>(&mut c)
                    .await
                    .map_err(|e| self.cause(&e))
            }
            Backend::Memcache(m) => m.delete(key).await.map_err(|e| self.io_cause(&e)),
        }
    }

    /// Adds one to a counter, creating it at 1 with `ttl` when missing.
    pub(crate) async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CallError> {
        match &self.backend {
            Backend::Redis { .. } => {
                let mut c = self.redis().await?;
                // One transaction: create at 0 with the ttl if absent, then INCR.
                let (n,): (u64,) = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(key)
                    .arg(0)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .ignore()
                    .cmd("INCR")
                    .arg(key)
                    .query_async(&mut c)
                    .await
                    .map_err(|e| self.cause(&e))?;
                Ok(n)
            }
            Backend::Memcache(m) => {
                // incr; when missing, add "1" (with the ttl); when another node added it first,
                // incr again. Bounded: a key that keeps vanishing is an error, not a loop.
                for _ in 0..3 {
                    if let Some(n) = m.incr(key).await.map_err(|e| self.io_cause(&e))? {
                        return Ok(n);
                    }
                    if m.add(key, b"1", ttl).await.map_err(|e| self.io_cause(&e))? {
                        return Ok(1);
                    }
                }
                Err(format!("memcached: counter {key} kept vanishing"))
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// A Redis failure as an operator reads it: `Redis at 127.0.0.1:6379: connection refused`,
/// `Redis at nohost.invalid:6379: unknown host`, or Redis's own words. URLs (with their
/// passwords) never appear: `addr` is `host:port`.
pub(crate) fn redis_cause(addr: &str, e: &redis::RedisError) -> String {
    let text = e.to_string();
    let why = if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else if let Some(why) = text.strip_prefix("failed to lookup address information: ") {
        if why.contains("not known") || why.contains("No address associated") {
            "unknown host".to_string()
        } else {
            format!("cannot resolve host: {why}")
        }
    } else if e.is_connection_dropped() {
        format!("connection lost ({})", strip_os(&text))
    } else {
        strip_os(&text).to_string()
    };
    format!("Redis at {addr}: {why}")
}

/// `Connection refused (os error 111)` → `Connection refused`.
fn strip_os(s: &str) -> &str {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => s,
    }
}

/// A memcached failure as an operator reads it: `memcached at 10.0.0.7:11211: connection
/// refused`.
pub(crate) fn memcache_cause(addr: &str, e: &io::Error) -> String {
    let text = e.to_string();
    let why = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => match text.strip_prefix("failed to lookup address information: ") {
            Some(w) if w.contains("not known") || w.contains("No address associated") => {
                "unknown host".to_string()
            }
            Some(w) => format!("cannot resolve host: {w}"),
            None => strip_os(&text).to_string(),
        },
    };
    format!("memcached at {addr}: {why}")
}

#[cfg(test)]
mod cause_tests {
    use super::{memcache_cause, redis_cause};
    use std::io;

    #[test]
    fn redis_failures_name_the_server_and_the_cause() {
        let e = |io: io::Error| redis::RedisError::from(io);
        assert_eq!(
            redis_cause("127.0.0.1:6390", &e(io::Error::from_raw_os_error(111))),
            "Redis at 127.0.0.1:6390: connection refused"
        );
        assert_eq!(
            redis_cause(
                "nohost.invalid:6379",
                &e(io::Error::other(
                    "failed to lookup address information: Name or service not known"
                ))
            ),
            "Redis at nohost.invalid:6379: unknown host"
        );
        assert_eq!(
            redis_cause("r:6379", &e(io::Error::new(io::ErrorKind::TimedOut, "x"))),
            "Redis at r:6379: timed out"
        );
        assert_eq!(
            redis_cause("r:6379", &e(io::Error::from_raw_os_error(104))),
            "Redis at r:6379: connection lost (Connection reset by peer)"
        );
    }

    #[test]
    fn memcached_failures_name_the_server_and_the_cause() {
        assert_eq!(
            memcache_cause("127.0.0.1:11299", &io::Error::from_raw_os_error(111)),
            "memcached at 127.0.0.1:11299: connection refused"
        );
        assert_eq!(
            memcache_cause("m:11211", &io::Error::other("unexpected reply: ERROR")),
            "memcached at m:11211: unexpected reply: ERROR"
        );
    }
}

//! What went wrong with PostgreSQL, in words an operator can act on. tokio-postgres's own
//! `Display` is often only `db error` or `error connecting to server`: the cause is in the
//! server's error fields (message, detail, SQLSTATE) or in the I/O error under it (connection
//! refused, an unknown host, a timeout). Every PostgreSQL error the store reports is described
//! here, once; callers add what they were doing. DSNs never appear: a target is `host:port`.

use deadpool_postgres::PoolError;
use std::error::Error as _;
use std::io;

/// Where a connection goes, as an operator names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` (several, comma-separated, when the DSN lists several hosts), or a socket
    /// directory's `/dir/.s.PGSQL.port`.
    pub addr: String,
    /// The first host name, for "unknown host".
    pub host: Option<String>,
}

impl Target {
    pub fn of(cfg: &tokio_postgres::Config) -> Target {
        use tokio_postgres::config::Host;
        let ports = cfg.get_ports();
        let port = |i: usize| {
            ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432)
        };
        let mut host = None;
        let addrs: Vec<String> = cfg
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| match h {
                Host::Tcp(name) => {
                    host.get_or_insert_with(|| name.clone());
                    if name.contains(':') {
                        format!("[{name}]:{}", port(i))
                    } else {
                        format!("{name}:{}", port(i))
                    }
                }
                #[cfg(unix)]
                Host::Unix(dir) => format!("{}/.s.PGSQL.{}", dir.display(), port(i)),
            })
            .collect();
        Target {
            addr: if addrs.is_empty() {
                format!("localhost:{}", port(0))
            } else {
                addrs.join(",")
            },
            host,
        }
    }
}

/// The cause of a failed statement or connection: the server's message with its detail and
/// SQLSTATE, else the I/O failure underneath, else the driver's own words.
pub fn describe(e: &tokio_postgres::Error, host: Option<&str>) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let mut s = db.message().to_string();
        // The detail of a data or integrity error quotes the row's values: not for logs.
        if let Some(d) = db
            .detail()
            .filter(|_| !code.starts_with("22") && !code.starts_with("23"))
        {
            s.push_str(&format!(" ({d})"));
        }
        s.push_str(&format!(" [SQLSTATE {code}]"));
        return s;
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return describe_io(io, host);
        }
        source = s.source();
    }
    match e.to_string().as_str() {
        "connection closed" => "the server closed the connection".to_string(),
        other => other.to_string(),
    }
}

/// An I/O failure as an operator would say it.
pub fn describe_io(e: &io::Error, host: Option<&str>) -> String {
    use io::ErrorKind::*;
    let text = e.to_string();
    if let Some(why) = text.strip_prefix("failed to lookup address information: ") {
        let h = host.unwrap_or("?");
        return if why.contains("not known") || why.contains("No address associated") {
            format!("unknown host \"{h}\"")
        } else {
            format!("cannot resolve host \"{h}\": {why}")
        };
    }
    match e.kind() {
        ConnectionRefused => "connection refused".to_string(),
        TimedOut => "timed out".to_string(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
            format!("connection lost ({})", strip_os(&text))
        }
        _ => strip_os(&text).to_string(),
    }
}

/// `Connection refused (os error 111)` → `Connection refused`.
fn strip_os(s: &str) -> &str {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => s,
    }
}

/// A connection that could not be opened.
pub fn connect_failed(at: &Target, e: &tokio_postgres::Error) -> String {
    format!(
        "cannot connect to PostgreSQL at {}: {}",
        at.addr,
        describe(e, at.host.as_deref())
    )
}

/// The bounds a pool works within, for saying which one was hit.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub connect_ms: u64,
    pub wait_ms: u64,
    pub size: usize,
}

/// A pooled connection that could not be had.
pub fn pool_failed(at: &Target, b: Bounds, e: &PoolError) -> String {
    use deadpool_postgres::TimeoutType;
    match e {
        PoolError::Backend(e) => connect_failed(at, e),
        PoolError::Timeout(TimeoutType::Create) => format!(
            "cannot connect to PostgreSQL at {}: no answer within {} ms",
            at.addr, b.connect_ms
        ),
        PoolError::Timeout(TimeoutType::Recycle) => format!(
            "PostgreSQL at {}: no answer within {} ms checking a pooled connection",
            at.addr, b.connect_ms
        ),
        PoolError::Timeout(TimeoutType::Wait) => format!(
            "PostgreSQL at {}: all {} pooled connections stayed busy for {} ms",
            at.addr, b.size, b.wait_ms
        ),
        other => format!("PostgreSQL at {}: {other}", at.addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dsn: &str) -> Target {
        Target::of(&dsn.parse().unwrap())
    }

    #[test]
    fn targets_name_host_and_port_never_the_password() {
        let t = target("postgres://confab:hunter2@db1.internal:6543/confab");
        assert_eq!(t.addr, "db1.internal:6543");
        assert_eq!(t.host.as_deref(), Some("db1.internal"));
        assert_eq!(target("postgres://u@127.0.0.1/x").addr, "127.0.0.1:5432");
        assert_eq!(
            target("host=a,b port=1,2 user=u password=hunter2").addr,
            "a:1,b:2"
        );
        assert_eq!(
            target("host=/run/postgresql port=5433 user=u").addr,
            "/run/postgresql/.s.PGSQL.5433"
        );
    }

    #[test]
    fn io_failures_say_what_happened() {
        let refused = io::Error::from_raw_os_error(111);
        assert_eq!(describe_io(&refused, Some("h")), "connection refused");
        let dns =
            io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(
            describe_io(&dns, Some("nohost.invalid")),
            "unknown host \"nohost.invalid\""
        );
        let dns_down = io::Error::other(
            "failed to lookup address information: Temporary failure in name resolution",
        );
        assert_eq!(
            describe_io(&dns_down, Some("db1")),
            "cannot resolve host \"db1\": Temporary failure in name resolution"
        );
        let slow = io::Error::new(io::ErrorKind::TimedOut, "connection timed out");
        assert_eq!(describe_io(&slow, None), "timed out");
        let reset = io::Error::from_raw_os_error(104);
        assert_eq!(
            describe_io(&reset, None),
            "connection lost (Connection reset by peer)"
        );
    }

    #[test]
    fn pool_timeouts_name_the_bound_that_was_hit() {
        let at = target("postgres://u:hunter2@db2:5432/x");
        let b = Bounds {
            connect_ms: 2000,
            wait_ms: 500,
            size: 16,
        };
        let create = PoolError::Timeout(deadpool_postgres::TimeoutType::Create);
        assert_eq!(
            pool_failed(&at, b, &create),
            "cannot connect to PostgreSQL at db2:5432: no answer within 2000 ms"
        );
        let wait = PoolError::Timeout(deadpool_postgres::TimeoutType::Wait);
        assert_eq!(
            pool_failed(&at, b, &wait),
            "PostgreSQL at db2:5432: all 16 pooled connections stayed busy for 500 ms"
        );
        assert!(!pool_failed(&at, b, &wait).contains("hunter2"));
    }
}

//! Typed configuration, built once by the binary and passed down; never a global.
//!
//! Every key has a default here and a line in `confab.example.toml`; the binary reads the TOML
//! file and lets any key be overridden by a `CONFAB_*` environment variable.

pub use confab_core::secret::Secret;
pub use confab_worker::config::{MailConfig, MailTls, TasksConfig, WebhooksConfig};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the SQLite file and the generated secret.
    pub data_dir: PathBuf,
    /// Key for sessions, tokens and IP hashing. Empty: generated once and kept in `data_dir/secret`.
    pub secret: Secret,
    /// Peers whose `X-Forwarded-For` is believed (HAProxy, nginx). Others' is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Create the `demo` forum (localhost origins) at start if it does not exist.
    pub demo_forum: bool,
    pub limits: Limits,
    pub rate_limit: RateLimit,
    pub cache: CacheConfig,
    pub sqlite: SqliteConfig,
    /// Sharded PostgreSQL instead of the embedded SQLite file (when `control` is set).
    pub postgres: confab_store::pg::PgOptions,
    /// The task outbox's worker.
    pub tasks: TasksConfig,
    /// Outgoing mail (reply notifications, notices to moderators).
    pub mail: MailConfig,
    /// Forums' webhooks.
    pub webhooks: WebhooksConfig,
    /// The message bus that carries realtime events between nodes.
    pub bus: BusSettings,
    /// Live thread connections (SSE and WebSocket).
    pub realtime: RealtimeConfig,
    /// Client connections: caps and read timeouts.
    pub connections: ConnectionsConfig,
    /// Log lines as `text` (for people) or `json` (one object a line, for log collectors).
    pub log_format: LogFormat,
    /// Error reporting to a Sentry-compatible service.
    pub errors: ErrorsConfig,
    /// Exports uploaded in the dashboard.
    pub import: ImportConfig,
    /// Sign-in with OpenID Connect providers and GitHub (`crate::auth_config`).
    pub auth: crate::auth_config::AuthConfig,
    /// The outside spam check (Akismet or a compatible service) forums can turn on.
    pub spam: SpamConfig,
    /// Pictures readers attach to comments (on forums whose `images` setting is on).
    pub images: ImagesConfig,
}

/// `[images]`: what an upload may be, and how much decoding a node does at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesConfig {
    /// The largest upload accepted, in bytes (413 past it, before it is read whole).
    pub max_bytes: usize,
    /// The most pixels (width x height) a picture may declare; a larger one is refused from
    /// its header, before anything is decoded (decompression bombs).
    pub max_pixels: u64,
    /// Pictures decoded at once on this node (each decode runs on a blocking thread); others
    /// wait for a slot up to `queue_wait_ms`, then get 503.
    pub max_concurrent_decodes: usize,
    /// How long an upload waits for a decode slot.
    pub queue_wait_ms: u64,
    /// Pictures one comment may carry.
    pub max_per_comment: usize,
    /// Uploads not attached to a comment within this many hours are deleted.
    pub unattached_hours: u64,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            max_bytes: 5 * 1024 * 1024,
            max_pixels: 24_000_000,
            max_concurrent_decodes: 2,
            queue_wait_ms: 5_000,
            max_per_comment: 4,
            unattached_hours: 24,
        }
    }
}

/// `[spam]`: where the Akismet-compatible checker is and how long it may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpamConfig {
    /// The REST API's base: `https://rest.akismet.com/1.1/` (the key goes as the `api_key`
    /// field), or with `{key}` in the host (`https://{key}.rest.akismet.com/1.1/`).
    pub akismet_url: String,
    /// How long a post waits for the checker (then the forum's `when_unavailable` applies and
    /// the comment is checked again in the background).
    pub timeout_ms: u64,
    /// How long a background call (re-check, submit-ham, submit-spam) may take.
    pub background_timeout_ms: u64,
    /// Consecutive failures or timeouts that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker stops calls before one trial call.
    pub breaker_cooldown_secs: u64,
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            akismet_url: "https://rest.akismet.com/1.1/".to_string(),
            timeout_ms: 500,
            background_timeout_ms: 10_000,
            breaker_failures: 5,
            breaker_cooldown_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    /// Largest export the dashboard accepts, in MiB (413 past it; the partial file is deleted).
    pub max_upload_mb: u64,
    /// Where uploads are written while they are imported (deleted when the import ends).
    /// Default: `<data_dir>/imports`, or the temp directory when `data_dir` is empty.
    pub upload_dir: Option<PathBuf>,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            max_upload_mb: 256,
            upload_dir: None,
        }
    }
}

impl ImportConfig {
    /// The upload limit in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb.saturating_mul(1024 * 1024)
    }

    /// The directory uploads go to.
    pub fn dir(&self, data_dir: &std::path::Path) -> PathBuf {
        match &self.upload_dir {
            Some(d) => d.clone(),
            None if data_dir.as_os_str().is_empty() => std::env::temp_dir().join("confab-imports"),
            None => data_dir.join("imports"),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorsConfig {
    /// A Sentry DSN (`https://KEY@host/PROJECT`): 5xx answers and panics while answering a
    /// request are reported there, with the request id. Empty: nothing is reported.
    pub sentry_dsn: Secret,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionsConfig {
    /// Seconds a client has to send a request's line and headers; also how long a kept-alive
    /// connection may wait idle for its next request, and a new one for its first byte.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body (408 past it).
    pub body_timeout_secs: u64,
    /// Connections this node holds at most (kept below the open-file limit); past it, 503.
    pub max: usize,
    /// Connections one client address holds at most (trusted proxies excepted); past it, 503.
    pub max_per_ip: usize,
    /// On SIGTERM (or Ctrl-C), seconds the node keeps serving while `/readyz` answers 503
    /// `draining`, so a load balancer's health check takes it out before it stops accepting
    /// (make it longer than the balancer's check interval times its fall count). A second
    /// signal cuts it short. 0: stop accepting at once.
    pub drain_secs: u64,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            header_timeout_secs: 10,
            body_timeout_secs: 10,
            max: 20_000,
            max_per_ip: 256,
            drain_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    /// `redis://host:port/` to share realtime events between nodes; empty: in-process (one node).
    pub redis_url: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Live connections this node holds at most; past it, 503 with Retry-After.
    pub max_connections: usize,
    /// Events buffered per thread per node; a client further behind is told to re-sync.
    pub subscriber_buffer: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            max_connections: 10_000,
            subscriber_buffer: 1024,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./confab-data"),
            secret: Secret::default(),
            trusted_proxies: Vec::new(),
            demo_forum: true,
            limits: Limits::default(),
            rate_limit: RateLimit::default(),
            cache: CacheConfig::default(),
            sqlite: SqliteConfig::default(),
            postgres: confab_store::pg::PgOptions::default(),
            tasks: TasksConfig::default(),
            mail: MailConfig::default(),
            webhooks: WebhooksConfig::default(),
            bus: BusSettings::default(),
            realtime: RealtimeConfig::default(),
            connections: ConnectionsConfig::default(),
            log_format: LogFormat::Text,
            errors: ErrorsConfig::default(),
            import: ImportConfig::default(),
            spam: SpamConfig::default(),
            images: ImagesConfig::default(),
            auth: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest comment body, in characters.
    pub max_body_chars: usize,
    /// Longest author or display name, in characters.
    pub max_name_chars: usize,
    /// Largest JSON request body, in bytes (413 past it, before reading more).
    pub max_json_bytes: usize,
    /// Deepest reply level stored; deeper replies attach to the deepest allowed ancestor.
    pub max_depth: i32,
    /// Reply levels nested into a page (more via `/comments/{id}/replies`).
    pub display_depth: usize,
    /// Replies shown per comment per level before a "more replies" cursor.
    pub replies_per_parent: usize,
    /// Top-level comments per page when the client does not say.
    pub page_default: usize,
    /// Most top-level comments per page.
    pub page_max: usize,
    /// Most idents per `/counts` request.
    pub counts_max: usize,
    /// Requests slower than this many milliseconds are logged as a warning with what they did
    /// (statements run, duration); 0: never.
    pub slow_request_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_chars: 10_000,
            max_name_chars: 100,
            max_json_bytes: 64 * 1024,
            max_depth: 5,
            display_depth: 3,
            replies_per_parent: 5,
            page_default: 50,
            page_max: 100,
            counts_max: 100,
            slow_request_ms: 500,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Off for benchmarks and load tests (`confab serve --rate-limit off`).
    pub enabled: bool,
    /// Writes (comments, edits, votes, flags) per minute per client IP.
    pub writes_per_minute_ip: u32,
    /// Writes per minute per signed-in account.
    pub writes_per_minute_account: u32,
    /// Sign-up and log-in attempts per minute per client IP.
    pub auth_per_minute_ip: u32,
    /// Log-in attempts per minute for one login name, from anywhere (password guessing spread
    /// over many addresses); past it, 429 with Retry-After, and the allowance comes back
    /// steadily: attempts are slowed, the account is never locked.
    pub logins_per_minute_account: u32,
    /// Votes and flags per hour per guest IP (on top of the write limits).
    pub votes_per_hour_ip: u32,
    /// Votes and flags per hour per signed-in account.
    pub votes_per_hour_account: u32,
    /// Previews (the compose box's "Preview") per minute per guest IP; an allowance of their
    /// own, so previewing never uses up the posts a reader may make.
    pub previews_per_minute_ip: u32,
    /// Previews per minute per signed-in account.
    pub previews_per_minute_account: u32,
    /// Picture uploads per hour per guest IP, and per signed-in account (on top of the write
    /// limits: each decode is expensive work).
    pub images_per_hour_ip: u32,
    pub images_per_hour_account: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            enabled: true,
            writes_per_minute_ip: 30,
            writes_per_minute_account: 60,
            auth_per_minute_ip: 10,
            logins_per_minute_account: 5,
            votes_per_hour_ip: 300,
            votes_per_hour_account: 600,
            previews_per_minute_ip: 60,
            previews_per_minute_account: 120,
            images_per_hour_ip: 60,
            images_per_hour_account: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Memory for rendered thread pages, in MiB.
    pub page_mib: u64,
    /// Seconds a rendered page or a comment count may live (writes replace it at once on this node).
    pub page_ttl_secs: u64,
    /// While this node cannot hear other nodes' changes (its bus connection is down), cached
    /// entries are believed only this many milliseconds.
    pub degraded_ttl_ms: u64,
    /// The shared cache tier: `redis://host:port/` and `memcache://host:port` servers on a
    /// ketama ring (empty: none, each node caches alone).
    pub servers: Vec<String>,
    /// Every call to a tier server is bounded by this.
    pub timeout_ms: u64,
    /// Consecutive failures after which a tier server is ejected from the ring...
    pub failure_limit: u32,
    /// ...for this many seconds (its keys fall to the next server meanwhile).
    pub retry_secs: u64,
    /// How often a node reads a thread's version token from the tier again, in the background
    /// (a node that missed a change announcement unnoticed is correct again within this).
    pub version_check_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            page_mib: 64,
            page_ttl_secs: 300,
            degraded_ttl_ms: 1000,
            servers: Vec::new(),
            timeout_ms: 150,
            failure_limit: 3,
            retry_secs: 5,
            version_check_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// Reader connections (reads run in parallel; writes go through one writer).
    pub readers: usize,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig { readers: 4 }
    }
}

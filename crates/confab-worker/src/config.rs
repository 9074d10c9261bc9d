//! The `[tasks]`, `[mail]` and `[webhooks]` sections of Confab's configuration (embedded in
//! `confab_server::config::Config`; every key is documented in `confab.example.toml`).

use confab_core::secret::Secret;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TasksConfig {
    /// Run the task worker inside `confab serve`. `confab serve --role api` turns it off;
    /// `confab serve --role worker` runs only the worker.
    pub in_process: bool,
    /// Tasks run at once by one worker.
    pub concurrency: usize,
    /// Attempts before a failing task is parked.
    pub max_attempts: i64,
    /// Delay before the first retry, in ms; it doubles with every attempt (with jitter).
    pub backoff_base_ms: u64,
    /// Longest delay between retries, in seconds.
    pub backoff_max_secs: u64,
    /// How long a claimed task belongs to its worker, in seconds. A run is cut off at three
    /// quarters of it; after it, another worker may claim the task (its worker died).
    pub lease_secs: u64,
    /// How often an idle worker looks for due tasks, in ms.
    pub poll_ms: u64,
    /// Hours a done task is kept before it is deleted.
    pub keep_done_hours: u64,
}

impl Default for TasksConfig {
    fn default() -> Self {
        TasksConfig {
            in_process: true,
            concurrency: 4,
            max_attempts: 8,
            backoff_base_ms: 5_000,
            backoff_max_secs: 3_600,
            lease_secs: 120,
            poll_ms: 1_000,
            keep_done_hours: 168,
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain text (a local relay, or tests).
    None,
    /// STARTTLS, required (submission, port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP server. Empty: Confab sends no mail (no mail tasks are written).
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: MailTls,
    /// SMTP login; empty for none.
    pub username: String,
    pub password: Secret,
    /// The sender, `Name <address>` or `address`.
    pub from: String,
    /// Base of the links in mail (`https://comments.example.com`). Empty: `http://` + `listen`.
    pub public_url: String,
    /// Seconds for each step of an SMTP conversation.
    pub timeout_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_host: String::new(),
            smtp_port: 587,
            tls: MailTls::Starttls,
            username: String::new(),
            password: Secret::default(),
            from: "Confab <confab@localhost>".to_string(),
            public_url: String::new(),
            timeout_secs: 30,
        }
    }
}

impl MailConfig {
    /// Whether mail is sent at all.
    pub fn enabled(&self) -> bool {
        !self.smtp_host.trim().is_empty()
    }

    /// The base of links, without a trailing slash.
    pub fn base_url(&self, listen: SocketAddr) -> String {
        let u = self.public_url.trim().trim_end_matches('/');
        if u.is_empty() {
            format!("http://{listen}")
        } else {
            u.to_string()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Seconds for one delivery (connecting, sending, and the receiver's answer).
    pub timeout_secs: u64,
    /// Deliver to loopback, private and link-local addresses too. Off, a forum's moderators
    /// cannot make the server call into its own network.
    pub allow_private_targets: bool,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            timeout_secs: 10,
            allow_private_targets: false,
        }
    }
}

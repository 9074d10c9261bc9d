//! Confab's background work: a small worker that runs the task outbox, and the handlers for
//! the tasks Confab writes.
//!
//! Layout:
//! - [`Worker`] (in `runner`): the claim / run / retry loop. It knows tasks only by kind and
//!   payload: it claims due tasks with a lease, runs each under a deadline shorter than the
//!   lease, completes it, or queues it again with exponential backoff and jitter, and parks it
//!   after `max_attempts`. A task whose worker was killed is claimed again when its lease runs
//!   out. Shutdown is a [`CancellationToken`]: no new claims, in-flight tasks get a grace period.
//! - [`kinds`]: the task kinds and their payloads, as the services write them.
//! - [`mail`]: e-mail over SMTP (lettre): reply notifications with double opt-in and one-click
//!   unsubscribe, and notices to moderators with signed approve / spam links.
//! - [`webhook`]: signed JSON POSTs of comment events to a forum's endpoints.
//! - [`links`]: the signed tokens inside the links that mails carry.
//! - [`config`]: the `[tasks]`, `[mail]` and `[webhooks]` configuration sections.
//!
//! Delivery is at least once; handlers are idempotent by task id. A handler records each
//! external effect (one per mail recipient) after the far side acknowledged it, and a re-run
//! skips what was recorded. What cannot be made exactly once (the far side acknowledged, then
//! the worker died before recording it) is repeated with the same identity: the same
//! `Message-ID` for a mail, the same `X-Confab-Delivery` for a webhook, so receivers see one
//! message.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod kinds;
pub mod links;
pub mod mail;
mod runner;
pub mod webhook;

pub use runner::{backoff, Handler, TaskError, Worker, WorkerOptions};
pub use tokio_util::sync::CancellationToken;

use confab_core::sign::Signer;
use confab_store::Store;
use std::sync::Arc;

/// The worker with every handler Confab has, configured from the `[tasks]`, `[mail]` and
/// `[webhooks]` sections. `listen` is the server's address, the base of links when
/// `mail.public_url` is empty.
pub fn standard(
    store: Arc<dyn Store>,
    signer: Signer,
    tasks: &config::TasksConfig,
    mail_cfg: &config::MailConfig,
    hooks: &config::WebhooksConfig,
    listen: std::net::SocketAddr,
) -> Worker {
    let mut w = Worker::new(store.clone(), WorkerOptions::from(tasks));
    let mailer = match mail::Mailer::new(mail_cfg) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "[mail] is invalid: mail tasks will be parked until it is fixed");
            None
        }
    };
    if mailer.is_none() {
        tracing::warn!(
            "mail is not configured ([mail] smtp_host is empty): no mail is sent, and a mail task that \
             reaches this worker is parked (`confab tasks retry ID` once mail works)"
        );
    }
    let base = mail_cfg.base_url(listen);
    let mail = Arc::new(mail::MailHandlers::new(store.clone(), signer, mailer, base));
    for kind in [
        kinds::MAIL_CONFIRM,
        kinds::MAIL_REPLY,
        kinds::MAIL_MODERATORS,
        kinds::MAIL_ACCOUNT_EMAIL,
        kinds::MAIL_PASSWORD_RESET,
        kinds::MAIL_READER_DATA,
    ] {
        w.register(kind, mail.clone());
    }
    match webhook::Webhooks::new(store, hooks) {
        Ok(h) => w.register(kinds::WEBHOOK, Arc::new(h)),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; webhook tasks wait in the outbox")
        }
    }
    w
}

//! E-mail: the SMTP sender and the mail tasks.
//!
//! - `mail.confirm`: the double opt-in request, with a signed confirmation link. Sent while the
//!   address's subscription is pending, at most once an hour per address and forum (re-runs of
//!   the same task excepted), so a form cannot be used to flood someone's inbox.
//! - `mail.reply`: a published comment, to the parent's author if they asked for replies (only
//!   if their address is confirmed, and it is not their own reply), to those it `@mentions` who
//!   allow it, and to the readers who follow its thread: one mail per address. Carries
//!   a signed one-click unsubscribe link and the RFC 8058 headers `List-Unsubscribe` and
//!   `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
//! - `mail.moderators`: a new or pending comment, to each moderator of the forum who has an
//!   address, with signed approve / spam (pending) or spam / delete (published) links.
//! - `mail.account_email`: an account's new address (at sign-up, or a change its owner asked
//!   for), with a signed link that adds it.
//! - `mail.password_reset`: a signed link, good for an hour and once, that sets a new password.
//! - `mail.reader_data`: a guest's signed link to download or erase what their address posted
//!   on a forum (an hour; the erasure once).
//!
//! Every message has a `Message-ID` made from the task id and the recipient
//! (`<confab.TASK.N@DOMAIN>`), so a re-run after a crash sends the same message again, never a
//! new one; and each recipient is recorded as a task effect once the SMTP server accepted the
//! message, so a re-run skips them.

pub mod compose;

use crate::config::{MailConfig, MailTls};
use crate::kinds::{
    self, AccountEmailPayload, ConfirmPayload, ModeratorsPayload, Notice, PasswordResetPayload,
    ReaderDataPayload, ReplyPayload,
};
use crate::links::{self, ModAction};
use crate::{Handler, TaskError};
use async_trait::async_trait;
use compose::Composed;
use compose::Why;
use confab_core::model::{Author, Comment, CommentStatus, Forum, ModeratorMail};
use confab_core::sign::Signer;
use confab_store::notify::{MAX_FOLLOWERS, MAX_THREAD_AUTHORS};
use confab_store::rules::email_key;
use confab_store::{ReadFrom, Store, SubState, Task, ThreadAuthor};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Confirmation requests to one address for one forum: at most one per this many ms.
pub const CONFIRM_INTERVAL_MS: i64 = 3600 * 1000;
/// Most moderators one notice goes to.
const MAX_MODERATORS: usize = 50;

/// Sends messages over SMTP (one connection per message; mail is not a hot path).
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of Message-IDs.
    domain: String,
    timeout: Duration,
}

impl Mailer {
    /// The sender `[mail]` describes, or `None` when mail is off (no `smtp_host`).
    pub fn new(cfg: &MailConfig) -> Result<Option<Mailer>, String> {
        if !cfg.enabled() {
            return Ok(None);
        }
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("[mail] from = {:?} is not an address: {e}", cfg.from))?;
        let host = cfg.smtp_host.trim();
        let builder = match cfg.tls {
            MailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            MailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| format!("[mail] tls: {e}"))?,
            MailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| format!("[mail] tls: {e}"))?,
        };
        let step = Duration::from_secs(cfg.timeout_secs.clamp(1, 600));
        let mut builder = builder.port(cfg.smtp_port).timeout(Some(step));
        if !cfg.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                cfg.username.clone(),
                cfg.password.expose().to_string(),
            ));
        }
        let domain = from.email.domain().to_string();
        // A whole conversation is a handful of steps.
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            domain,
            timeout: step * 6,
        }))
    }

    /// The stable Message-ID of task `task`'s message to recipient number `n`.
    pub fn message_id(&self, task: i64, n: i64) -> String {
        format!("<confab.{task}.{n}@{}>", self.domain)
    }

    /// Sends one message. A permanent SMTP refusal parks the task; anything else is retried.
    pub async fn send(
        &self,
        to: &str,
        msg: &Composed,
        message_id: String,
        unsubscribe: Option<&str>,
    ) -> Result<(), TaskError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| TaskError::Park(format!("recipient {to:?} is not an address: {e}")))?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.clone())
            .date_now()
            .message_id(Some(message_id))
            .raw_header(raw("Auto-Submitted", "auto-generated"));
        if let Some(u) = unsubscribe {
            b = b
                .raw_header(raw("List-Unsubscribe", &format!("<{u}>")))
                .raw_header(raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"));
        }
        let m = b
            .multipart(MultiPart::alternative_plain_html(
                msg.text.clone(),
                msg.html.clone(),
            ))
            .map_err(|e| TaskError::Park(format!("cannot build the message: {e}")))?;
        match tokio::time::timeout(self.timeout, self.transport.send(m)).await {
            Err(_) => Err(TaskError::Retry(format!(
                "SMTP timed out after {} s",
                self.timeout.as_secs()
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => {
                Err(TaskError::Park(format!("SMTP refused the message: {e}")))
            }
            Ok(Err(e)) => Err(TaskError::Retry(format!("SMTP: {e}"))),
        }
    }
}

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

/// The handlers of the three mail kinds.
pub struct MailHandlers {
    store: Arc<dyn Store>,
    signer: Signer,
    mailer: Option<Mailer>,
    /// Base of links, no trailing slash.
    base: String,
}

fn payload<T: serde::de::DeserializeOwned>(task: &Task) -> Result<T, TaskError> {
    serde_json::from_str(&task.payload).map_err(|e| TaskError::Park(format!("bad payload: {e}")))
}

fn retry(e: confab_core::DomainError) -> TaskError {
    TaskError::Retry(format!("store: {e}"))
}

/// A recipient's number in its message's `Message-ID`: the same address always gets the same
/// one (a re-run sends the same message), and none is 0 (the reply's own recipient).
fn n_of(email: &str) -> i64 {
    let h = email_key(email)
        .bytes()
        .fold(1_469_598_103_934_665_603u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
        });
    i64::try_from(h >> 2).unwrap_or(1).max(1)
}

/// The thread's page, if it is on one of the forum's own sites (a URL a poster supplied is
/// not put in mail otherwise), pointing at `comment`.
fn read_url(forum: &Forum, url: Option<&str>, comment: &Comment) -> Option<String> {
    let u = url?;
    let parsed = reqwest::Url::parse(u).ok()?;
    let origin = parsed.origin().ascii_serialization();
    forum.settings.origin_allowed(&origin).then(|| {
        let mut p = parsed;
        p.set_fragment(Some(&format!("confab-c-{}", comment.id)));
        p.to_string()
    })
}

impl MailHandlers {
    pub fn new(
        store: Arc<dyn Store>,
        signer: Signer,
        mailer: Option<Mailer>,
        base: String,
    ) -> MailHandlers {
        MailHandlers {
            store,
            signer,
            mailer,
            base,
        }
    }

    async fn forum(&self, id: confab_core::id::ForumId) -> Result<Option<Forum>, TaskError> {
        Ok(self
            .store
            .forums()
            .await
            .map_err(retry)?
            .into_iter()
            .find(|f| f.id == id))
    }

    /// Who wrote `c`: a display name and an address, if known.
    async fn author(&self, c: &Comment) -> Result<(String, Option<String>), TaskError> {
        Ok(match &c.author {
            Author::Guest { name, email, .. } => (name.clone(), email.clone()),
            Author::Account(id) => match self.store.account(*id).await.map_err(retry)? {
                Some(a) => (a.display_name, a.email),
                None => ("a former user".to_string(), None),
            },
        })
    }

    /// Sends to one recipient unless a run of this task already did (effect `key`), then
    /// records it.
    #[allow(clippy::too_many_arguments)]
    async fn send_once(
        &self,
        mailer: &Mailer,
        task: &Task,
        done: &[String],
        key: &str,
        n: i64,
        to: &str,
        msg: &Composed,
        unsubscribe: Option<&str>,
    ) -> Result<(), TaskError> {
        if done.iter().any(|d| d == key) {
            tracing::info!(
                task = task.id,
                effect = key,
                "already sent by an earlier run; skipped"
            );
            return Ok(());
        }
        mailer
            .send(to, msg, mailer.message_id(task.id, n), unsubscribe)
            .await?;
        self.store
            .record_task_effect(task.id, key)
            .await
            .map_err(retry)
    }

    async fn confirm(&self, mailer: &Mailer, task: &Task) -> Result<(), TaskError> {
        let p: ConfirmPayload = payload(task)?;
        let Some(forum) = self.forum(p.forum_id).await? else {
            return Ok(());
        };
        let sub = self
            .store
            .subscription(forum.id, &p.email)
            .await
            .map_err(retry)?;
        let needed = sub.is_some_and(|s| {
            s.state == SubState::Pending || (s.state == SubState::Confirmed && s.owner != p.owner)
        });
        if !needed {
            tracing::info!(task = task.id, "subscription is confirmed for this owner, or was withdrawn; no confirmation needed");
            return Ok(());
        }
        let done = self.store.task_effects(task.id).await.map_err(retry)?;
        if !done.iter().any(|d| d == "mail")
            && !self
                .store
                .claim_confirmation(forum.id, &p.email, &p.owner, task.id, CONFIRM_INTERVAL_MS)
                .await
                .map_err(retry)?
        {
            tracing::info!(
                task = task.id,
                "a confirmation went to this address within the hour; not sending another"
            );
            return Ok(());
        }
        let token = links::confirm_token(
            &self.signer,
            forum.id,
            &p.email,
            &p.owner,
            confab_core::now_ms(),
        );
        let msg = compose::confirm(
            &forum.settings.title,
            &links::url(&self.base, links::CONFIRM_PATH, &token),
        );
        self.send_once(mailer, task, &done, "mail", 0, &p.email, &msg, None)
            .await
    }

    /// The address a new account signed up with: a link that adds it to the account, or,
    /// when another account holds it, a word to that account's owner.
    async fn account_email(&self, mailer: &Mailer, task: &Task) -> Result<(), TaskError> {
        let p: AccountEmailPayload = payload(task)?;
        let Some(new) = self.store.account(p.account_id).await.map_err(retry)? else {
            return Ok(());
        };
        if new.email.is_some() && !p.change {
            return Ok(());
        }
        let holder = self
            .store
            .credentials(&p.email)
            .await
            .map_err(retry)?
            .map(|(a, _)| a)
            .filter(|a| {
                a.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&p.email))
            });
        let site = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, h)| h)
            .to_string();
        let msg = match holder {
            // A change to the address the account has, or one another account holds: nothing
            // to confirm (the answer to the owner's request was the same either way).
            Some(_) if p.change => return Ok(()),
            Some(h) => compose::account_exists(&site, &h.username),
            None if p.change => {
                let token = links::account_email_token(
                    &self.signer,
                    new.id,
                    &p.email,
                    confab_core::now_ms(),
                );
                compose::account_email_change(
                    &site,
                    &new.username,
                    &links::url(&self.base, links::ACCOUNT_EMAIL_PATH, &token),
                )
            }
            None => {
                let token = links::account_email_token(
                    &self.signer,
                    new.id,
                    &p.email,
                    confab_core::now_ms(),
                );
                compose::account_email(
                    &site,
                    &new.username,
                    &links::url(&self.base, links::ACCOUNT_EMAIL_PATH, &token),
                )
            }
        };
        let done = self.store.task_effects(task.id).await.map_err(retry)?;
        self.send_once(mailer, task, &done, "mail", 0, &p.email, &msg, None)
            .await
    }

    /// A link that sets a new password, to the account's address (an account without one, or
    /// without a password, gets nothing). The link is made now, bound to the current hash.
    async fn password_reset(&self, mailer: &Mailer, task: &Task) -> Result<(), TaskError> {
        let p: PasswordResetPayload = payload(task)?;
        let Some(account) = self.store.account(p.account_id).await.map_err(retry)? else {
            return Ok(());
        };
        let Some(email) = account.email.clone() else {
            return Ok(());
        };
        let Some((_, hash)) = self
            .store
            .credentials(&account.username)
            .await
            .map_err(retry)?
            .filter(|(a, h)| a.id == account.id && !h.is_empty())
        else {
            return Ok(());
        };
        let site = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, h)| h)
            .to_string();
        let token =
            links::password_reset_token(&self.signer, account.id, &hash, confab_core::now_ms());
        let msg = compose::password_reset(
            &site,
            &account.username,
            &links::url(&self.base, links::PASSWORD_RESET_PATH, &token),
        );
        let done = self.store.task_effects(task.id).await.map_err(retry)?;
        self.send_once(mailer, task, &done, "mail", 0, &email, &msg, None)
            .await
    }

    /// A guest's data link, to the address they asked with (the service sends the task only
    /// when that address commented on the forum).
    async fn reader_data(&self, mailer: &Mailer, task: &Task) -> Result<(), TaskError> {
        let p: ReaderDataPayload = payload(task)?;
        let Some(forum) = self
            .store
            .forums()
            .await
            .map_err(retry)?
            .into_iter()
            .find(|f| f.id == p.forum_id)
        else {
            return Ok(());
        };
        let site = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, h)| h)
            .to_string();
        let token = links::reader_data_token(
            &self.signer,
            forum.id,
            &p.email,
            task.id,
            confab_core::now_ms(),
        );
        let msg = compose::reader_data(
            &site,
            &forum.settings.title,
            &links::url(&self.base, links::READER_DATA_PATH, &token),
        );
        let done = self.store.task_effects(task.id).await.map_err(retry)?;
        self.send_once(mailer, task, &done, "mail", 0, &p.email, &msg, None)
            .await
    }

    /// A published comment: mailed to the parent's author if they asked for replies, to those
    /// it mentions who allow it, and to the thread's followers; one mail per address, for the
    /// first reason that applies ([`compose::Why`]), never to the comment's own author.
    async fn reply(&self, mailer: &Mailer, task: &Task) -> Result<(), TaskError> {
        let p: ReplyPayload = payload(task)?;
        let Some(reply) = self
            .store
            .comment(p.comment_id, ReadFrom::Primary)
            .await
            .map_err(retry)?
        else {
            return Ok(());
        };
        // A pending comment is mailed when it is approved (approval writes its own task).
        if reply.status != CommentStatus::Approved {
            return Ok(());
        }
        let Some(forum) = self.forum(reply.forum_id).await? else {
            return Ok(());
        };
        let (author, author_email) = self.author(&reply).await?;
        let author_account = match reply.author {
            Author::Account(a) => Some(a),
            Author::Guest { .. } => None,
        };
        // Addresses already given a reason (the author's own first: never mailed).
        let mut seen: HashSet<String> = author_email.iter().map(|e| email_key(e)).collect();
        let mut to: Vec<(String, Why, String)> = Vec::new();
        let forum_unsubscribe = |email: &str| {
            links::url(
                &self.base,
                links::UNSUBSCRIBE_PATH,
                &links::unsubscribe_token(&self.signer, forum.id, email),
            )
        };

        if let Some(parent) = reply.parent_id {
            if let Some(watcher) = self.store.reply_watcher(parent).await.map_err(retry)? {
                let sub = self
                    .store
                    .subscription(forum.id, &watcher.email)
                    .await
                    .map_err(retry)?;
                // Mailed only when whoever asked with this comment is the one who confirmed the
                // address: typing someone else's address into the form never mails them.
                if sub.is_some_and(|s| s.state == SubState::Confirmed && s.owner == watcher.owner) {
                    if seen.insert(email_key(&watcher.email)) {
                        let u = forum_unsubscribe(&watcher.email);
                        to.push((watcher.email, Why::Reply, u));
                    }
                } else {
                    tracing::debug!(
                        task = task.id,
                        "the parent's author is not (or no longer) subscribed at this address"
                    );
                }
            }
        }

        for email in self.mentioned(&reply, &forum, author_account).await? {
            if seen.insert(email_key(&email)) {
                let u = forum_unsubscribe(&email);
                to.push((email, Why::Mention, u));
            }
        }

        let followers = self
            .store
            .followers(reply.thread_id, MAX_FOLLOWERS)
            .await
            .map_err(retry)?;
        let followers: Vec<_> = followers
            .into_iter()
            .filter(|a| Some(*a) != author_account)
            .collect();
        if !followers.is_empty() {
            for a in self.store.accounts(&followers).await.map_err(retry)? {
                let Some(email) = a.email else { continue };
                if seen.insert(email_key(&email)) {
                    let u = links::url(
                        &self.base,
                        links::UNSUBSCRIBE_PATH,
                        &links::unfollow_token(
                            &self.signer,
                            forum.id,
                            reply.thread_id,
                            a.id,
                            &email,
                        ),
                    );
                    to.push((email, Why::Follow, u));
                }
            }
        }
        if to.is_empty() {
            return Ok(());
        }

        let Some(thread) = self
            .store
            .thread(reply.thread_id, ReadFrom::Primary)
            .await
            .map_err(retry)?
        else {
            return Ok(());
        };
        let read = read_url(&forum, thread.url.as_deref(), &reply);
        let done = self.store.task_effects(task.id).await.map_err(retry)?;
        for (email, why, unsubscribe) in &to {
            let msg = compose::reply(&compose::Reply {
                forum_title: &forum.settings.title,
                thread_title: thread.title.as_deref().unwrap_or(thread.ident.as_str()),
                author: &author,
                body: &reply.body_md,
                read_url: read.as_deref(),
                unsubscribe_url: unsubscribe,
                why: *why,
            });
            // The reply's own recipient keeps the effect key mail.reply always had; the others
            // are keyed by address, so a re-run skips exactly those already sent.
            let (key, n) = match why {
                Why::Reply => ("mail".to_string(), 0),
                _ => (format!("mail:{}", email_key(email)), n_of(email)),
            };
            self.send_once(mailer, task, &done, &key, n, email, &msg, Some(unsubscribe))
                .await?;
        }
        Ok(())
    }

    /// The addresses of those `c` mentions who allow mention mail: an account with an address,
    /// unless that address unsubscribed from the forum's mail; a guest whose address has a
    /// confirmed subscription to the forum's reply mail. Only authors of the thread's published
    /// comments are looked for, at most [`confab_core::mention::MAX_MENTIONS`] addresses.
    async fn mentioned(
        &self,
        c: &Comment,
        forum: &Forum,
        author: Option<confab_core::id::AccountId>,
    ) -> Result<Vec<String>, TaskError> {
        use confab_core::mention::{self, MAX_MENTIONS};
        let names = mention::mentioned(&c.body_md);
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let authors = self
            .store
            .thread_authors(c.thread_id, MAX_THREAD_AUTHORS)
            .await
            .map_err(retry)?;
        let ids: Vec<_> = authors
            .iter()
            .filter_map(|a| match a {
                ThreadAuthor::Account(id) if Some(*id) != author => Some(*id),
                _ => None,
            })
            .collect();
        let accounts = if ids.is_empty() {
            Vec::new()
        } else {
            self.store.accounts(&ids).await.map_err(retry)?
        };
        // (address, whether it must have a confirmed subscription: guests)
        let mut found: Vec<(String, bool)> = Vec::new();
        for name in &names {
            for a in &accounts {
                if mention::key(&a.username) == *name || mention::key(&a.display_name) == *name {
                    if let Some(e) = &a.email {
                        found.push((e.clone(), false));
                    }
                }
            }
            for a in &authors {
                if let ThreadAuthor::Guest {
                    name: n,
                    email: Some(e),
                } = a
                {
                    if mention::key(n) == *name {
                        found.push((e.clone(), true));
                    }
                }
            }
        }
        let mut out: Vec<String> = Vec::new();
        for (email, guest) in found {
            if out.len() == MAX_MENTIONS {
                break;
            }
            if out.iter().any(|o| email_key(o) == email_key(&email)) {
                continue;
            }
            let state = self
                .store
                .subscription(forum.id, &email)
                .await
                .map_err(retry)?
                .map(|s| s.state);
            let allowed = if guest {
                state == Some(SubState::Confirmed)
            } else {
                state != Some(SubState::Unsubscribed)
            };
            if allowed {
                out.push(email);
            }
        }
        Ok(out)
    }

    async fn moderators(&self, mailer: &Mailer, task: &Task) -> Result<(), TaskError> {
        let p: ModeratorsPayload = payload(task)?;
        let Some(c) = self
            .store
            .comment(p.comment_id, ReadFrom::Primary)
            .await
            .map_err(retry)?
        else {
            return Ok(());
        };
        // Already moderated (or removed) before the notice went out: nothing to ask.
        let wanted = match p.notice {
            Notice::Pending => CommentStatus::Pending,
            Notice::New => CommentStatus::Approved,
        };
        if c.status != wanted {
            return Ok(());
        }
        let Some(forum) = self.forum(c.forum_id).await? else {
            return Ok(());
        };
        match (forum.settings.moderator_mail, p.notice) {
            (ModeratorMail::None, _) | (ModeratorMail::Pending, Notice::New) => return Ok(()),
            _ => {}
        }
        let mods: Vec<_> = self
            .store
            .forum_moderators(forum.id)
            .await
            .map_err(retry)?
            .into_iter()
            .filter(|m| m.email.is_some() && Some(m.id) != c.account_id())
            .take(MAX_MODERATORS)
            .collect();
        if mods.is_empty() {
            return Ok(());
        }
        let Some(thread) = self
            .store
            .thread(c.thread_id, ReadFrom::Primary)
            .await
            .map_err(retry)?
        else {
            return Ok(());
        };
        let (author, _) = self.author(&c).await?;
        let read = read_url(&forum, thread.url.as_deref(), &c);
        let done = self.store.task_effects(task.id).await.map_err(retry)?;
        let now = confab_core::now_ms();
        let dashboard = format!("{}/admin", self.base);
        for m in mods {
            let Some(to) = m.email.as_deref() else {
                continue;
            };
            let link = |a: ModAction| {
                links::url(
                    &self.base,
                    links::MODERATE_PATH,
                    &links::moderate_token(&self.signer, c.id, m.id, a, now),
                )
            };
            let actions = match p.notice {
                Notice::Pending => vec![
                    ("Approve", link(ModAction::Approve)),
                    ("Mark as spam", link(ModAction::Spam)),
                ],
                Notice::New => vec![
                    ("Mark as spam", link(ModAction::Spam)),
                    ("Delete", link(ModAction::Delete)),
                ],
            };
            let msg = compose::moderator(&compose::ModNotice {
                forum_title: &forum.settings.title,
                thread_title: thread.title.as_deref().unwrap_or(thread.ident.as_str()),
                author: &author,
                author_email: c.guest_email(),
                body: &c.body_md,
                pending: p.notice == Notice::Pending,
                read_url: read.as_deref(),
                actions,
                dashboard_url: &dashboard,
            });
            self.send_once(
                mailer,
                task,
                &done,
                &format!("mail:{}", m.id.0),
                m.id.0,
                to,
                &msg,
                None,
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Handler for MailHandlers {
    async fn run(&self, task: &Task) -> Result<(), TaskError> {
        let Some(mailer) = &self.mailer else {
            return Err(TaskError::Park(
                "mail is not configured on this worker ([mail] smtp_host is empty)".into(),
            ));
        };
        match task.kind.as_str() {
            kinds::MAIL_CONFIRM => self.confirm(mailer, task).await,
            kinds::MAIL_ACCOUNT_EMAIL => self.account_email(mailer, task).await,
            kinds::MAIL_PASSWORD_RESET => self.password_reset(mailer, task).await,
            kinds::MAIL_READER_DATA => self.reader_data(mailer, task).await,
            kinds::MAIL_REPLY => self.reply(mailer, task).await,
            kinds::MAIL_MODERATORS => self.moderators(mailer, task).await,
            other => Err(TaskError::Park(format!("no mail handler for {other}"))),
        }
    }
}

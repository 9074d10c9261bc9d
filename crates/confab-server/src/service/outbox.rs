//! What follows a change, as tasks written in the change's own transaction (the outbox), and
//! the actions behind the signed links in Confab's mail.
//!
//! | change | tasks |
//! |---|---|
//! | comment posted | `webhook` per endpoint taking `comment.created`; `mail.moderators` (pending or new, per the forum's `moderator_mail`, if it has moderators with an address); `mail.reply` if it is published (the parent's subscribed author, mentioned readers and the thread's followers are found when it runs); `mail.confirm` if the author asked for reply mail and their address is not confirmed |
//! | comment approved | `webhook` per endpoint taking `comment.approved`; `mail.reply` if it was pending (first publication: its mentions are resolved then) |
//! | comment deleted | `webhook` per endpoint taking `comment.deleted` |
//!
//! With mail off (`[mail] smtp_host` empty) no mail task is written.

use super::Service;
use confab_core::id::{AccountId, CommentId, ForumId, ThreadId};
use confab_core::model::{Comment, CommentStatus, Forum, ModeratorMail, WebhookEvent};
use confab_core::{now_ms, DomainError, ErrorCode};
use confab_store::{NewTask, ReadFrom, ReplyWatch, SubState, TaskWhen, WritePos, Written};
use confab_worker::kinds::{self, Notice};
use confab_worker::links::{self, ModAction, Unsubscribe};
use std::sync::Arc;

/// What became of a request for reply mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// The address is confirmed: replies will be mailed.
    Subscribed,
    /// A confirmation link is mailed (at most once an hour); replies are mailed once it is followed.
    PendingConfirmation,
    /// This server sends no mail.
    Unavailable,
}

/// A valid moderation link, as its page shows it.
#[derive(Debug, Clone)]
pub struct ModLink {
    pub forum: Arc<Forum>,
    pub comment: Comment,
    pub account: AccountId,
    pub action: ModAction,
    /// The comment already has the status the action gives.
    pub already: bool,
    /// Where following the link committed its change, for the moderator's read-your-writes pin.
    pub at: Option<WritePos>,
}

fn bad_link() -> DomainError {
    DomainError::new(
        ErrorCode::NotFound,
        "this link is not valid, or it has expired",
    )
}

impl Service {
    /// The task worker with every handler, woken by this service's writes; links in its mail
    /// start with `[mail] public_url`, or `http://` + `listen` when that is empty.
    pub fn task_worker(self: &Arc<Self>, listen: std::net::SocketAddr) -> confab_worker::Worker {
        let c = &self.config;
        let mut w = confab_worker::standard(
            self.store.clone(),
            self.signer.clone(),
            &c.tasks,
            &c.mail,
            &c.webhooks,
            listen,
        );
        let spam = Arc::new(super::spam::SpamTasks(self.clone()));
        for kind in [
            super::spam::KIND_CHECK,
            super::spam::KIND_HAM,
            super::spam::KIND_SPAM,
        ] {
            w.register(kind, spam.clone());
        }
        w.with_waker(self.tasks_wake.clone())
    }

    /// Lets the in-process worker know a task was written.
    pub(crate) fn wake_worker(&self) {
        self.tasks_wake.notify_one();
    }

    /// Whether any moderator of `forum` has an address (cached for a minute), so comments on
    /// forums nobody would be mailed about write no notice task.
    async fn moderators_have_mail(&self, forum: ForumId) -> Result<bool, DomainError> {
        if let Some(v) = self.mod_mail.get(&forum).await {
            return Ok(v);
        }
        let epoch = self.mod_mail.epoch();
        let v = self
            .store
            .forum_moderators(forum)
            .await?
            .iter()
            .any(|a| a.email.is_some());
        self.mod_mail.put(epoch, vec![(forum, v)]).await;
        Ok(v)
    }

    /// Forgets whether a forum's moderators have addresses, after its moderators changed.
    pub(crate) async fn forget_moderators(self: &Arc<Self>, forum: ForumId) {
        self.changed(super::fleet::Change::ModMail { forum }).await;
    }

    fn hooks(forum: &Forum, event: WebhookEvent) -> impl Iterator<Item = &str> {
        forum
            .settings
            .webhooks
            .iter()
            .filter(move |h| h.events.contains(&event))
            .map(|h| h.url.as_str())
    }

    /// The tasks of a new comment (the store fills in its id).
    pub(crate) async fn post_tasks(
        &self,
        forum: &Forum,
        status: CommentStatus,
    ) -> Result<Vec<NewTask>, DomainError> {
        let mut out: Vec<NewTask> = Self::hooks(forum, WebhookEvent::CommentCreated)
            .map(|u| kinds::webhook(WebhookEvent::CommentCreated, u, forum.id, None))
            .collect();
        if !self.config.mail.enabled() {
            return Ok(out);
        }
        // Who hears of a published comment (its parent's author, those it mentions, the
        // thread's followers) is decided when the task runs.
        if status == CommentStatus::Approved {
            out.push(kinds::mail_reply(None));
        }
        let notice = match status {
            CommentStatus::Pending => Some(Notice::Pending),
            CommentStatus::Approved => Some(Notice::New),
            _ => None,
        };
        let wanted = match (forum.settings.moderator_mail, notice) {
            (ModeratorMail::All, Some(n)) | (ModeratorMail::Pending, Some(n @ Notice::Pending)) => {
                Some(n)
            }
            _ => None,
        };
        if let Some(n) = wanted {
            if self.moderators_have_mail(forum.id).await? {
                out.push(kinds::mail_moderators(n));
            }
        }
        Ok(out)
    }

    /// The tasks of a status change of `ids`; each is written only if its comment's status
    /// really changed.
    pub(crate) fn status_tasks(
        &self,
        forum: &Forum,
        ids: &[CommentId],
        status: CommentStatus,
    ) -> Vec<NewTask> {
        let event = match status {
            CommentStatus::Approved => Some(WebhookEvent::CommentApproved),
            CommentStatus::Deleted => Some(WebhookEvent::CommentDeleted),
            _ => None,
        };
        let mut out = Vec::new();
        for &id in ids {
            if let Some(ev) = event {
                for url in Self::hooks(forum, ev) {
                    out.push(
                        kinds::webhook(ev, url, forum.id, Some(id)).when(TaskWhen::Changed(id)),
                    );
                }
            }
            out.extend(Self::spam_feedback_tasks(forum, id, status));
            if status == CommentStatus::Approved && self.config.mail.enabled() {
                // A comment held for moderation is mailed (replies, mentions, follows) when it is
                // first published.
                out.push(
                    kinds::mail_reply(Some(id))
                        .when(TaskWhen::ChangedFrom(id, CommentStatus::Pending)),
                );
            }
        }
        out
    }

    /// A request for reply mail at `email`: the address to record with the comment, what the
    /// client is told, and the confirmation task if the address is not confirmed yet.
    pub(crate) async fn notify_request(
        &self,
        forum: &Forum,
        email: &str,
        owner: &str,
    ) -> Result<(Option<ReplyWatch>, NotifyOutcome, Option<NewTask>), DomainError> {
        if !self.config.mail.enabled() {
            return Ok((None, NotifyOutcome::Unavailable, None));
        }
        let watch = ReplyWatch {
            email: email.to_string(),
            owner: owner.to_string(),
        };
        // "subscribed" only to the one who confirmed the address: anyone else is answered as for
        // an address never seen (and a confirmation goes to it, at most once an hour).
        let sub = self.store.subscription(forum.id, email).await?;
        Ok(match sub {
            Some(s) if s.state == SubState::Confirmed && s.owner == owner => {
                (Some(watch), NotifyOutcome::Subscribed, None)
            }
            _ => (
                Some(watch),
                NotifyOutcome::PendingConfirmation,
                Some(kinds::mail_confirm(forum.id, email, owner)),
            ),
        })
    }

    /// The forum and address a confirmation link is for.
    pub fn confirm_link(&self, token: &str) -> Result<(Arc<Forum>, String), DomainError> {
        let (forum, email, _) =
            links::verify_confirm(&self.signer, token, now_ms()).ok_or_else(bad_link)?;
        Ok((self.forums.by_id(forum).ok_or_else(bad_link)?, email))
    }

    /// Follows a confirmation link: the address is subscribed to the forum's reply mail.
    pub async fn confirm_subscription(
        &self,
        token: &str,
    ) -> Result<(Arc<Forum>, String), DomainError> {
        let (forum, email, owner) =
            links::verify_confirm(&self.signer, token, now_ms()).ok_or_else(bad_link)?;
        let forum = self.forums.by_id(forum).ok_or_else(bad_link)?;
        self.store
            .set_subscription(&forum, &email, SubState::Confirmed, Some(&owner))
            .await?;
        tracing::info!(forum = %forum.name, "reply mail subscription confirmed");
        Ok((forum, email))
    }

    /// The forum and address an unsubscribe link is for, and the thread when it is a followed
    /// thread's link (which unfollows).
    pub fn unsubscribe_link(
        &self,
        token: &str,
    ) -> Result<(Arc<Forum>, String, Option<ThreadId>), DomainError> {
        let (forum, email, thread) =
            match links::verify_any_unsubscribe(&self.signer, token).ok_or_else(bad_link)? {
                Unsubscribe::Forum { forum, email } => (forum, email, None),
                Unsubscribe::Thread {
                    forum,
                    thread,
                    email,
                    ..
                } => (forum, email, Some(thread)),
            };
        Ok((
            self.forums.by_id(forum).ok_or_else(bad_link)?,
            email,
            thread,
        ))
    }

    /// Follows an unsubscribe link (RFC 8058 one-click or the page's button). Idempotent. A
    /// forum's link stops its reply and mention mail to the address; a followed thread's link
    /// unfollows that thread.
    pub async fn unsubscribe(
        &self,
        token: &str,
    ) -> Result<(Arc<Forum>, String, Option<ThreadId>), DomainError> {
        let link = links::verify_any_unsubscribe(&self.signer, token).ok_or_else(bad_link)?;
        let (forum, email, thread) = self.unsubscribe_link(token)?;
        match link {
            Unsubscribe::Forum { .. } => {
                self.store
                    .set_subscription(&forum, &email, SubState::Unsubscribed, None)
                    .await?;
                tracing::info!(forum = %forum.name, "reply mail unsubscribed");
            }
            Unsubscribe::Thread {
                thread, account, ..
            } => {
                self.store
                    .set_follow(&forum, thread, account, false)
                    .await?;
                tracing::info!(forum = %forum.name, "thread unfollowed by mail link");
            }
        }
        Ok((forum, email, thread))
    }

    /// What a moderation link would do, checked against the account's rights now.
    pub async fn moderation_link(&self, token: &str) -> Result<ModLink, DomainError> {
        let (id, account, action) =
            links::verify_moderate(&self.signer, token, now_ms()).ok_or_else(bad_link)?;
        let comment = self
            .store
            .comment(id, ReadFrom::Primary)
            .await?
            .ok_or_else(bad_link)?;
        let forum = self.forums.by_id(comment.forum_id).ok_or_else(bad_link)?;
        let acct = self.account(account).await?.ok_or_else(bad_link)?;
        if !acct.can_moderate(forum.id) {
            return Err(DomainError::forbidden(
                "the account this link was sent to no longer moderates this forum",
            ));
        }
        let already = comment.status == link_status(action);
        Ok(ModLink {
            forum,
            comment,
            account,
            action,
            already,
            at: None,
        })
    }

    /// Follows a moderation link: the same change, tasks and log entry as the dashboard's.
    pub async fn moderate_by_link(self: &Arc<Self>, token: &str) -> Result<ModLink, DomainError> {
        let mut link = self.moderation_link(token).await?;
        if link.already {
            return Ok(link);
        }
        let status = link_status(link.action);
        let ids = [link.comment.id];
        let tasks = self.status_tasks(&link.forum, &ids, status);
        let Written {
            value: mut changes,
            at,
        } = self
            .store
            .set_status(
                &link.forum,
                &ids,
                status,
                Some(link.account),
                link.action.as_str(),
                tasks,
            )
            .await?;
        self.wake_worker();
        self.touch_thread(&link.forum, link.comment.thread_id, at)
            .await?;
        if let Some(ch) = changes.pop() {
            link.comment = ch.comment;
        }
        link.at = at;
        Ok(link)
    }
}

fn link_status(a: ModAction) -> CommentStatus {
    match a {
        ModAction::Approve => CommentStatus::Approved,
        ModAction::Spam => CommentStatus::Spam,
        ModAction::Delete => CommentStatus::Deleted,
    }
}

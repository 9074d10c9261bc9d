//! The tasks Confab writes: kinds, payloads, and constructors for the services.
//!
//! Payloads name what to act on; handlers load the rest when they run, so a payload stays
//! small and a task acts on the state at its run (a reply deleted meanwhile is not mailed).
//! The store adds `comment_id` to the tasks written with a new comment.

use confab_core::id::{AccountId, CommentId, ForumId};
use confab_core::model::WebhookEvent;
use confab_store::{NewTask, TaskWhen};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// POST a comment event to one of a forum's webhooks.
pub const WEBHOOK: &str = "webhook";
/// Mail a confirmation link to an address that asked for reply notifications.
pub const MAIL_CONFIRM: &str = "mail.confirm";
/// Mail the author of a comment's parent about the reply, if they subscribed.
pub const MAIL_REPLY: &str = "mail.reply";
/// Mail a forum's moderators about a new comment.
pub const MAIL_MODERATORS: &str = "mail.moderators";
/// At sign-up: mail the address a link that gives it to the new account, or, when another
/// account holds it, tell that account's owner (the sign-up's answer is the same either way).
pub const MAIL_ACCOUNT_EMAIL: &str = "mail.account_email";
/// Someone asked to reset an account's password: mail the account's address a link (made when
/// the task runs, bound to the password hash of that moment) that sets a new one.
pub const MAIL_PASSWORD_RESET: &str = "mail.password_reset";
/// A guest asked for their data on a forum: mail the address a link (made when the task runs,
/// good for an hour, its erasure once) to download or erase what it posted there.
pub const MAIL_READER_DATA: &str = "mail.reader_data";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub event: WebhookEvent,
    /// The endpoint, as configured when the event happened (looked up again at delivery).
    pub url: String,
    pub forum_id: ForumId,
    pub comment_id: CommentId,
    /// Unix ms.
    pub occurred_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmPayload {
    pub forum_id: ForumId,
    pub email: String,
    /// Who asked (tasks written before owners were kept have none).
    #[serde(default)]
    pub owner: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplyPayload {
    /// The reply.
    pub comment_id: CommentId,
}

/// Which notice moderators get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notice {
    /// The comment waits for approval: approve and spam links.
    Pending,
    /// The comment is published: spam and delete links.
    New,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModeratorsPayload {
    pub notice: Notice,
    pub comment_id: CommentId,
}

/// A webhook delivery of `event` about `comment` (`None` for a new comment: the store fills it).
pub fn webhook(
    event: WebhookEvent,
    url: &str,
    forum: ForumId,
    comment: Option<CommentId>,
) -> NewTask {
    let mut p = json!({"event": event, "url": url, "forum_id": forum, "occurred_at": confab_core::now_ms()});
    if let Some(c) = comment {
        p["comment_id"] = json!(c);
    }
    NewTask::new(WEBHOOK, p)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountEmailPayload {
    pub account_id: AccountId,
    pub email: String,
    /// The account's owner asked to change its address (signed in, with the password): the
    /// link is mailed even though the account has an address already.
    #[serde(default)]
    pub change: bool,
}

pub fn mail_account_email(account: AccountId, email: &str) -> NewTask {
    NewTask::new(
        MAIL_ACCOUNT_EMAIL,
        json!({"account_id": account, "email": email}),
    )
}

/// A signed-in account's owner asked to change its address to `email`.
pub fn mail_account_email_change(account: AccountId, email: &str) -> NewTask {
    NewTask::new(
        MAIL_ACCOUNT_EMAIL,
        json!({"account_id": account, "email": email, "change": true}),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordResetPayload {
    pub account_id: AccountId,
}

pub fn mail_password_reset(account: AccountId) -> NewTask {
    NewTask::new(MAIL_PASSWORD_RESET, json!({"account_id": account}))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReaderDataPayload {
    pub forum_id: ForumId,
    pub email: String,
}

pub fn mail_reader_data(forum: ForumId, email: &str) -> NewTask {
    NewTask::new(MAIL_READER_DATA, json!({"forum_id": forum, "email": email}))
}

pub fn mail_confirm(forum: ForumId, email: &str, owner: &str) -> NewTask {
    NewTask::new(
        MAIL_CONFIRM,
        json!({"forum_id": forum, "email": email, "owner": owner}),
    )
}

/// A reply notification about `comment` (`None` for a new comment).
pub fn mail_reply(comment: Option<CommentId>) -> NewTask {
    let mut p = json!({});
    if let Some(c) = comment {
        p["comment_id"] = json!(c);
    }
    NewTask::new(MAIL_REPLY, p)
}

/// A notice to moderators about a new comment (the store fills its id).
pub fn mail_moderators(notice: Notice) -> NewTask {
    NewTask::new(MAIL_MODERATORS, json!({"notice": notice}))
}

/// Sets when a task given to `set_status` is written.
pub fn when(task: NewTask, when: TaskWhen) -> NewTask {
    task.when(when)
}

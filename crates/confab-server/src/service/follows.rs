//! Following a thread: a signed-in reader with an address is mailed every new published
//! comment in it (what Disqus's "Subscribe" on a discussion does), by the same `mail.reply`
//! task that mails replies and mentions (one mail per reader per comment). The mail's
//! unsubscribe link unfollows (`links::Unsubscribe::Thread`); so does the widget's toggle.

use super::{Caller, Service};
use confab_core::id::ThreadId;
use confab_core::model::{Account, Forum};
use confab_core::{DomainError, ErrorCode};
use confab_store::ReadFrom;
use std::sync::Arc;

/// Whether the caller follows a thread, and whether this server can mail them at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Following {
    pub thread: ThreadId,
    pub following: bool,
}

impl Service {
    /// The signed-in caller, the thread, and its forum (checked against the caller's origin).
    async fn follow_target(
        &self,
        caller: &Caller,
        thread: ThreadId,
    ) -> Result<(Arc<Account>, Arc<Forum>), DomainError> {
        let account = self.caller_account(caller).await?.ok_or_else(|| {
            DomainError::new(ErrorCode::Unauthorized, "sign in to follow a discussion")
        })?;
        let t = self
            .store
            .thread(thread, ReadFrom::Primary)
            .await?
            .ok_or_else(|| DomainError::not_found("thread"))?;
        let forum = self
            .forums
            .by_id(t.forum_id)
            .ok_or_else(|| DomainError::not_found("thread"))?;
        self.check_origin(caller, &forum)?;
        Ok((account, forum))
    }

    /// Whether the signed-in caller follows `thread`.
    pub async fn following(
        &self,
        caller: &Caller,
        thread: ThreadId,
    ) -> Result<Following, DomainError> {
        let (account, _) = self.follow_target(caller, thread).await?;
        Ok(Following {
            thread,
            following: self.store.follows(thread, account.id).await?,
        })
    }

    /// Starts or ends following `thread`. Following needs an address on the account and a
    /// server that sends mail (400 otherwise); unfollowing always works. Idempotent.
    pub async fn set_following(
        &self,
        caller: &Caller,
        thread: ThreadId,
        follow: bool,
    ) -> Result<Following, DomainError> {
        let (account, forum) = self.follow_target(caller, thread).await?;
        if follow {
            if !self.config.mail.enabled() {
                return Err(DomainError::invalid("this server sends no e-mail"));
            }
            if account.email.is_none() {
                return Err(DomainError::invalid(
                    "add an e-mail address to your account to follow a discussion",
                ));
            }
            self.check_posting(caller, Some(forum.id)).await?;
        }
        self.store
            .set_follow(&forum, thread, account.id, follow)
            .await?;
        Ok(Following {
            thread,
            following: follow,
        })
    }
}

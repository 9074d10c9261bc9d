//! Admission: the one gate a text passes to be shown, whether it is a new comment or an edit.
//!
//! `Service::post` and `Service::edit` both call [`Service::admit`], so a rule added here (a
//! ban, a closed thread, the forum's moderation mode, later spam checks) holds for both: an
//! edit cannot carry past a moderator what a new comment could not.

use super::{Caller, Service};
use confab_core::model::{Account, BanSubject, CommentStatus, Forum};
use confab_core::render::Rendered;
use confab_core::{now_ms, DomainError, ErrorCode};

/// Who a text is admitted for.
pub(crate) struct Applicant<'a> {
    pub caller: &'a Caller,
    /// The signed-in account, if any.
    pub account: Option<&'a Account>,
    /// The author's e-mail (the account's, or the one a guest gave), for e-mail bans.
    pub email: Option<&'a str>,
}

impl Service {
    /// Whether `who` may act on `forum` at all (bans by account, e-mail or address). Writes
    /// that are not texts (votes, flags) check this alone.
    pub(crate) async fn check_not_banned(
        &self,
        forum: &Forum,
        caller: &Caller,
        email: Option<&str>,
    ) -> Result<(), DomainError> {
        let who = BanSubject {
            email: email.map(str::to_string),
            ip_hash: Some(self.ip_hash(caller)),
            account: caller.account,
        };
        if self.store.is_banned(forum.id, &who, now_ms()).await? {
            return Err(DomainError::new(
                ErrorCode::Banned,
                "you are banned from commenting on this site",
            ));
        }
        Ok(())
    }

    /// Runs admission for a new or edited text: refuses banned authors and closed threads, and
    /// says whether the text is public at once or waits for a moderator. A moderator of the
    /// forum is neither held nor refused for a closed thread.
    pub(crate) async fn admit(
        &self,
        forum: &Forum,
        who: &Applicant<'_>,
        rendered: &Rendered,
        thread_closed: bool,
    ) -> Result<CommentStatus, DomainError> {
        let is_mod = who.account.is_some_and(|a| a.can_moderate(forum.id));
        if is_mod {
            return Ok(CommentStatus::Approved);
        }
        if thread_closed {
            return Err(DomainError::new(
                ErrorCode::ThreadClosed,
                "this thread is closed",
            ));
        }
        self.check_not_banned(forum, who.caller, who.email).await?;
        use confab_core::model::ModerationMode;
        Ok(match forum.settings.moderation {
            ModerationMode::Pre => CommentStatus::Pending,
            ModerationMode::Links if rendered.has_links => CommentStatus::Pending,
            _ => CommentStatus::Approved,
        })
    }
}

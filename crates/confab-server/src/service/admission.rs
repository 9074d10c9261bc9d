//! Admission: the one gate a text passes to be shown, whether it is a new comment or an edit.
//!
//! `Service::post` and `Service::edit` both call [`Service::admit`], so a rule added here (a
//! ban, a closed thread, the forum's moderation mode, its word lists and link limit) holds for
//! both: an edit cannot carry past a moderator what a new comment could not. The rules that
//! judge an author's history (new commenters held, the same text posted again and again, a
//! shadow ban) judge new comments only. What each rule decides is `confab_core::modrules`;
//! this file gathers the facts it needs (one store read per rule that is on). A guest's new
//! comment on a forum that asks for one must carry a solved proof-of-work challenge
//! (`service/challenge.rs`): checked first, spent last, once the text is admitted.

use super::spam::{SpamOutcome, SpamSubject};
use super::{Caller, Service};
use confab_core::model::{Account, BanState, BanSubject, CommentStatus, Forum, ModerationMode};
use confab_core::modrules::{self, Facts, Rules, Verdict};
use confab_core::render::Rendered;
use confab_core::{now_ms, DomainError, ErrorCode};
use confab_store::AuthorKey;

/// Most earlier comments the duplicate rule compares a new one with.
const DUPLICATE_SCAN: u32 = 200;

/// Who a text is admitted for.
pub(crate) struct Applicant<'a> {
    pub caller: &'a Caller,
    /// The signed-in account, if any.
    pub account: Option<&'a Account>,
    /// The author's e-mail (the account's, or the one a guest gave), for e-mail bans.
    pub email: Option<&'a str>,
    /// A guest's solved proof-of-work challenge, as the new comment carried it.
    pub challenge: Option<&'a confab_core::challenge::Solution>,
    /// What identifies this request for a retry with its `Idempotency-Key` (the key and the
    /// request's contents), if it has one.
    pub retry: Option<&'a str>,
    /// What the forum's outside spam check is told about the author and page.
    pub spam: SpamSubject,
}

/// What admission decided for a text.
#[derive(Debug, Clone)]
pub(crate) struct Admitted {
    pub status: CommentStatus,
    /// Why it is hidden (for moderators), when it is.
    pub held_reason: Option<String>,
    /// The outside spam check did not answer in time: check again in the background.
    pub recheck: bool,
}

impl Service {
    /// Whether `who` may act on `forum` at all (bans by account, e-mail or address). Writes
    /// that are not texts (votes, flags) check this alone; a shadow ban refuses nothing (the
    /// author must not notice it). An IP ban never stops a moderator of the forum (`account`,
    /// signed in): a shared network must not lock out the people who lift bans. The banned
    /// are told until when, and why.
    pub(crate) async fn check_not_banned(
        &self,
        forum: &Forum,
        caller: &Caller,
        account: Option<&Account>,
        email: Option<&str>,
    ) -> Result<BanState, DomainError> {
        let moderator = account.is_some_and(|a| a.can_moderate(forum.id));
        let who = BanSubject {
            email: email.map(str::to_string),
            ip_hash: (!moderator).then(|| self.ip_hash(caller)),
            account: caller.account,
        };
        let key = (forum.id, who);
        if self.unbanned.get(&key).await.is_some() {
            return Ok(BanState::None);
        }
        let epoch = self.unbanned.epoch();
        let state = self.store.ban_state(forum.id, &key.1, now_ms()).await?;
        if state == BanState::None {
            self.unbanned.put(epoch, vec![(key, ())]).await;
        }
        if let BanState::Banned { until, reason } = &state {
            return Err(DomainError::new(
                ErrorCode::Banned,
                confab_core::bans::banned_message(*until, reason.as_deref()),
            ));
        }
        Ok(state)
    }

    /// Runs admission for a new text (`edit: false`) or an edited one: refuses banned authors,
    /// closed threads and blocked words, and says whether the text is public at once, waits
    /// for a moderator, or is spam (with why). A moderator of the forum is neither held nor
    /// refused.
    pub(crate) async fn admit(
        &self,
        forum: &Forum,
        who: &Applicant<'_>,
        text: &str,
        rendered: &Rendered,
        thread_closed: bool,
        edit: bool,
    ) -> Result<Admitted, DomainError> {
        let is_mod = who.account.is_some_and(|a| a.can_moderate(forum.id));
        if is_mod {
            return Ok(Admitted {
                status: CommentStatus::Approved,
                held_reason: None,
                recheck: false,
            });
        }
        // A guest's new comment: the challenge is checked before anything is read (scripts
        // that did not solve one cost nothing more).
        let proof = if edit || who.account.is_some() {
            None
        } else {
            self.check_challenge(forum, who.challenge)?
        };
        if thread_closed {
            return Err(DomainError::new(
                ErrorCode::ThreadClosed,
                "this thread is closed",
            ));
        }
        let ban = self
            .check_not_banned(forum, who.caller, who.account, who.email)
            .await?;
        let s = &forum.settings;
        let rules = Rules {
            words: &s.words,
            max_links: s.max_links,
            hold_first: if edit { 0 } else { s.trust.hold_first },
            duplicates: if edit {
                Default::default()
            } else {
                s.duplicates
            },
            mode_holds: match s.moderation {
                ModerationMode::Pre => Some("pre"),
                ModerationMode::Links if rendered.has_links => Some("links"),
                _ => None,
            },
        };
        // A blocked word refuses before anything is read.
        if let Some(w) = modrules::find_word(text, &s.words.block) {
            tracing::info!(forum = %forum.name, word = w, "text refused for a blocked word");
            return Err(DomainError::new(
                ErrorCode::BlockedWord,
                "your comment contains a word this site does not allow",
            ));
        }
        let shadow = !edit && ban == BanState::Shadow;
        let earlier_duplicates = if !shadow && rules.duplicates.count >= 2 {
            let since = now_ms() - i64::from(rules.duplicates.minutes) * 60_000;
            let key = modrules::duplicate_key(text);
            let ip_hash = self.ip_hash(who.caller);
            let texts = self
                .store
                .recent_texts(
                    forum,
                    who.account.map(|a| a.id),
                    &ip_hash,
                    since,
                    DUPLICATE_SCAN,
                )
                .await?;
            let same = texts
                .iter()
                .filter(|t| modrules::duplicate_key(t) == key)
                .count();
            u32::try_from(same).unwrap_or(u32::MAX)
        } else {
            0
        };
        let approved = if !shadow && rules.hold_first > 0 {
            let author = match (who.account, who.email) {
                (Some(a), _) => Some(AuthorKey::Account(a.id)),
                (None, Some(e)) => Some(AuthorKey::GuestEmail(e.to_string())),
                (None, None) => None,
            };
            match author {
                Some(a) => Some(self.store.approved_by(forum, &a, rules.hold_first).await?),
                None => None,
            }
        } else {
            Some(0)
        };
        let facts = Facts {
            text,
            html: &rendered.html,
            shadow,
            earlier_duplicates,
            approved,
        };
        let verdict = modrules::decide(&rules, &facts);
        if let Verdict::Blocked(_) = verdict {
            return Err(DomainError::new(
                ErrorCode::BlockedWord,
                "your comment contains a word this site does not allow",
            ));
        }
        // Spent only once the text is admitted: a refused text can be fixed and sent again
        // with the same solution.
        if let Some(v) = &proof {
            self.spend_challenge(v, who.retry).await?;
        }
        let admitted = match verdict {
            Verdict::Publish => Admitted {
                status: CommentStatus::Approved,
                held_reason: None,
                recheck: false,
            },
            Verdict::Hold(why) => Admitted {
                status: CommentStatus::Pending,
                held_reason: Some(why),
                recheck: false,
            },
            Verdict::Spam(why) => Admitted {
                status: CommentStatus::Spam,
                held_reason: Some(why),
                recheck: false,
            },
            Verdict::Blocked(_) => return Err(DomainError::internal()),
        };
        self.outside_check(forum, who, text, admitted).await
    }

    /// The forum's outside spam check (`spam.rs`), after its own rules: spam wins; no answer
    /// in time applies `when_unavailable` and asks for a background re-check.
    async fn outside_check(
        &self,
        forum: &Forum,
        who: &Applicant<'_>,
        text: &str,
        mut admitted: Admitted,
    ) -> Result<Admitted, DomainError> {
        if admitted.status == CommentStatus::Spam {
            return Ok(admitted);
        }
        match self.spam_check(forum, who.caller, &who.spam, text).await {
            None | Some(SpamOutcome::Ham) => {}
            Some(SpamOutcome::Spam) => {
                admitted = Admitted {
                    status: CommentStatus::Spam,
                    held_reason: Some(confab_core::spam::REASON_SPAM.to_string()),
                    recheck: false,
                }
            }
            Some(SpamOutcome::Unavailable) => {
                admitted.recheck = true;
                if forum.settings.spam.when_unavailable == confab_core::spam::WhenUnavailable::Hold
                    && admitted.status == CommentStatus::Approved
                {
                    admitted.status = CommentStatus::Pending;
                    admitted.held_reason = Some(confab_core::spam::REASON_UNAVAILABLE.to_string());
                }
            }
        }
        Ok(admitted)
    }
}

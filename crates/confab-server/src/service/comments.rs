//! Writing comments: post, edit, delete, vote, flag; and comment counts.

use super::admission::Applicant;
use super::outbox::NotifyOutcome;
use super::realtime::LiveEvent;
use super::spam::SpamSubject;
use super::{token, Caller, Service};
use crate::views::CommentView;
use confab_core::id::CommentId;
use confab_core::ident::Ident;
use confab_core::input::{AuthorName, CommentBody, Email, WebUrl};
use confab_core::model::{Author, Comment, CommentStatus, Forum};
use confab_core::reaction::Reaction;
use confab_core::render::render_markdown;
use confab_core::{now_ms, DomainError, ErrorCode};
use confab_store::pin::{read_pin, reading_with, ReadPin, WritePos, Written};
use confab_store::{CommentEdit, Idempotency, NewComment, ReadFrom};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// Most comment ids one `my_votes` call looks up (a page of the widget is fewer).
pub const VOTES_MAX: usize = 200;

/// A new comment, its fields parsed by the handler from the request (in the order the API
/// documents its refusals: identifier, text, page URL, title, idempotency key, then the
/// guest's name, address and site).
#[derive(Debug, Clone)]
pub struct PostComment {
    /// From [`Service::forum_for_write`]: it exists and the caller's page may write to it.
    pub forum: Arc<Forum>,
    pub ident: Ident,
    /// The page's URL, recorded with the thread on its first comment.
    pub url: Option<WebUrl>,
    /// The page's title (empty is none), recorded with the thread on its first comment.
    pub title: Option<String>,
    pub parent_id: Option<CommentId>,
    pub body: CommentBody,
    /// Who a guest says they are; `None` for a signed-in caller (an account's comment is
    /// signed with the account: whatever author fields came with it are not read).
    pub guest: Option<GuestAuthor>,
    /// Mail replies to this comment to the author (double opt-in).
    pub notify: bool,
    /// Uploaded pictures to attach (ids), in order.
    pub images: Vec<i64>,
    pub idempotency: Option<IdempotencyKey>,
    /// A guest's solved proof-of-work challenge (`service/challenge.rs`), when sent.
    pub challenge: Option<confab_core::challenge::Solution>,
}

/// What a guest says about themselves.
#[derive(Debug, Clone, Default)]
pub struct GuestAuthor {
    /// `None`: "Anonymous".
    pub name: Option<AuthorName>,
    pub email: Option<Email>,
    pub url: Option<WebUrl>,
}

impl GuestAuthor {
    /// A guest's name, address and site as given (blank is none), on a forum that takes
    /// comments from guests: a forum that doesn't refuses before any of them is read.
    pub fn parse(
        forum: &Forum,
        name: Option<&str>,
        email: Option<&str>,
        url: Option<&str>,
        max_name_chars: usize,
    ) -> Result<GuestAuthor, DomainError> {
        check_guest_posting(forum)?;
        let name = name
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|n| AuthorName::parse(n, max_name_chars))
            .transpose()?;
        let email = email
            .filter(|s| !s.trim().is_empty())
            .map(Email::parse)
            .transpose()?;
        // Named as the form names it: the page's own `url` is a different field.
        let url = url
            .filter(|s| !s.trim().is_empty())
            .map(|u| {
                WebUrl::parse(u).map_err(|mut e| {
                    e.message = format!("your website: {}", e.message.replacen("url", "it", 1));
                    e
                })
            })
            .transpose()?;
        Ok(GuestAuthor { name, email, url })
    }
}

pub(crate) fn check_guest_posting(forum: &Forum) -> Result<(), DomainError> {
    if forum.settings.guest_posting {
        Ok(())
    } else {
        Err(DomainError::new(
            ErrorCode::GuestPostingDisabled,
            "sign in to comment on this site",
        ))
    }
}

/// An `Idempotency-Key` and what the request it came with says (a retry with the key
/// replays the first result only if it says the same).
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    key: String,
    fingerprint: String,
}

impl IdempotencyKey {
    /// `key` as sent (1 to 200 bytes), and `fingerprint`, a text of every field of the request.
    pub fn parse(key: String, fingerprint: String) -> Result<IdempotencyKey, DomainError> {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(DomainError::invalid(format!(
                "Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} bytes"
            )));
        }
        Ok(IdempotencyKey { key, fingerprint })
    }
}

/// A posted comment (or, for a retry with its idempotency key, the first one).
#[derive(Debug, Clone)]
pub struct Posted {
    pub comment: CommentView,
    /// For guests: lets this client edit or delete the comment within the edit window.
    pub edit_token: Option<String>,
    /// For clients without an identity yet: the anonymous-client token made for them.
    pub anon_token: Option<String>,
    /// Set when the comment asked for reply mail: what happens next.
    pub notify: Option<NotifyOutcome>,
    /// Where the comment committed, for the client's read-your-writes pin.
    pub at: Option<WritePos>,
}

/// The threads a counts request asks about: 1 to `counts_max` identifiers, each kept as the
/// client wrote it (the answer is keyed by it) and as parsed.
#[derive(Debug, Clone)]
pub struct CountRequest {
    idents: Vec<(String, Ident)>,
}

impl CountRequest {
    pub fn parse(raw: Vec<String>, max: usize) -> Result<CountRequest, DomainError> {
        if raw.is_empty() || raw.len() > max {
            return Err(DomainError::invalid(format!(
                "give 1 to {max} ident parameters"
            )));
        }
        let mut idents = Vec::with_capacity(raw.len());
        for r in raw {
            let i = Ident::parse(&r)?;
            idents.push((r, i));
        }
        Ok(CountRequest { idents })
    }
}

/// A vote: like, dislike, or withdraw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteValue(i64);

impl VoteValue {
    pub fn parse(value: i64) -> Result<VoteValue, DomainError> {
        if !(-1..=1).contains(&value) {
            return Err(DomainError::invalid("value must be 1, -1 or 0"));
        }
        Ok(VoteValue(value))
    }
}

/// A reader's own votes (1 or -1 per comment id) and reactions (per comment or thread id).
#[derive(Debug, Clone, Default)]
pub struct MyVotes {
    pub votes: BTreeMap<CommentId, i64>,
    pub reactions: BTreeMap<i64, Vec<Reaction>>,
}

/// A comment's likes and dislikes after a vote, and the voter's vote.
#[derive(Debug, Clone)]
pub struct Voted {
    pub likes: i64,
    pub dislikes: i64,
    pub mine: i64,
    /// For a caller without an identity: the token of its address for the day.
    pub anon_token: Option<String>,
    /// Where the vote committed, for the client's read-your-writes pin.
    pub at: Option<WritePos>,
}

/// Why a reader flags a comment: at most 200 characters, no control characters (trimmed;
/// may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagReason(String);

impl FlagReason {
    pub fn parse(reason: Option<&str>) -> Result<FlagReason, DomainError> {
        let reason = reason.unwrap_or("").trim();
        if reason.chars().count() > 200 {
            return Err(DomainError::invalid("reason is longer than 200 characters"));
        }
        if reason.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "reason must not contain control characters",
            ));
        }
        Ok(FlagReason(reason.to_string()))
    }
}

/// A comment flagged.
#[derive(Debug, Clone)]
pub struct Flagged {
    /// For a caller without an identity: the token of its address for the day.
    pub anon_token: Option<String>,
    /// Where the flag committed, for the client's read-your-writes pin.
    pub at: Option<WritePos>,
}

/// Proof that a caller may change a comment (its author within the edit window, or a
/// moderator, calling from one of its forum's sites), with the comment as it was read. Made
/// only by [`Service::editing`].
#[derive(Debug, Clone)]
pub struct Editing {
    comment: Comment,
    forum: Arc<Forum>,
}

impl Service {
    /// The forum named `name`, if the caller's page may write to it (a write names its forum
    /// first: it is looked up and the origin checked before the rest of the request is read).
    pub fn forum_for_write(&self, caller: &Caller, name: &str) -> Result<Arc<Forum>, DomainError> {
        let forum = self.forum(name)?;
        self.check_origin(caller, &forum)?;
        Ok(forum)
    }

    /// Posts a comment (creating the thread on its first comment).
    pub async fn post(
        self: &Arc<Self>,
        caller: &Caller,
        cmd: PostComment,
    ) -> Result<Posted, DomainError> {
        let limits = &self.config.limits;
        let PostComment {
            forum,
            ident,
            url,
            title,
            parent_id,
            body: text,
            guest,
            notify,
            images,
            idempotency,
            challenge,
        } = cmd;
        self.check_origin(caller, &forum)?;
        self.check_posting(caller, Some(forum.id)).await?;
        let ip_hash = self.ip_hash(caller);

        let account = match caller.account {
            Some(_) => Some(self.caller_account(caller).await?.ok_or_else(|| {
                DomainError::new(
                    ErrorCode::Unauthorized,
                    "your session names no account; sign in again",
                )
            })?),
            None => None,
        };
        let (author, ban_email) = match &account {
            Some(a) => (Author::Account(a.id), a.email.clone()),
            None => {
                check_guest_posting(&forum)?;
                let GuestAuthor { name, email, url } = guest.unwrap_or_default();
                let name = name.map_or_else(|| "Anonymous".to_string(), |n| n.as_str().to_string());
                let email = email.map(|e| e.as_str().to_string());
                let url = url.map(|u| u.as_str().to_string());
                (
                    Author::Guest {
                        name,
                        email: email.clone(),
                        url,
                    },
                    email,
                )
            }
        };
        let images = self
            .attachable_images(&forum, caller, account.as_ref().map(|a| a.id), &images)
            .await?;
        let rendered = confab_record::Timer::start(confab_record::Field::RenderMicros)
            .during(|| render_markdown(text.as_str()));
        // The thread's closed flag is checked by the store, in the comment's transaction.
        let retry = idempotency
            .as_ref()
            .map(|k| format!("{}\n{}", k.key, k.fingerprint));
        let permalink = url
            .as_ref()
            .map(|u| u.as_str().to_string())
            .or_else(|| caller.hints.referrer.clone())
            .unwrap_or_default();
        let spam_subject = match (&account, &author) {
            (Some(a), _) => SpamSubject {
                author_name: a.display_name.clone(),
                author_email: a.email.clone().unwrap_or_default(),
                ..Default::default()
            },
            (None, Author::Guest { name, email, url }) => SpamSubject {
                author_name: name.clone(),
                author_email: email.clone().unwrap_or_default(),
                author_url: url.clone().unwrap_or_default(),
                ..Default::default()
            },
            (None, Author::Account(_)) => SpamSubject::default(),
        };
        let spam_subject = SpamSubject {
            reply: parent_id.is_some(),
            permalink: permalink.clone(),
            ..spam_subject
        };
        let applicant = Applicant {
            caller,
            account: account.as_deref(),
            email: ban_email.as_deref(),
            challenge: challenge.as_ref(),
            retry: retry.as_deref(),
            spam: spam_subject,
        };
        let admitted = self
            .admit(&forum, &applicant, text.as_str(), &rendered, false, false)
            .await?;
        let status = admitted.status;

        // Guests without an identity get one now, so they can see their pending comments.
        let (anon_id, anon_token) = match (&account, &caller.anon) {
            (Some(_), _) => (None, None),
            (None, Some(a)) => (Some(a.clone()), None),
            (None, None) => {
                let (id, tok) = self.new_anon_token();
                (Some(id), Some(tok))
            }
        };
        let scope = match (&account, &caller.anon) {
            (Some(a), _) => format!("a:{}", a.id.0),
            (None, Some(a)) => format!("t:{a}"),
            (None, None) => format!("i:{ip_hash}"),
        };

        // The outbox: what must follow this comment, written in its transaction.
        let mut tasks = self.post_tasks(&forum, status).await?;
        if admitted.recheck {
            tasks.push(Self::spam_recheck_task(
                &forum,
                caller,
                &applicant.spam,
                status,
            ));
        }
        let (notify_watch, notify) = if notify {
            // The account's address, or the guest's.
            let address = ban_email.clone().ok_or_else(|| {
                DomainError::invalid("notify needs an e-mail address: give author_email (or add one to your account)")
            })?;
            // Whoever asks: the account, or the guest's anonymous token (made above if needed).
            let owner = match (&account, &anon_id) {
                (Some(a), _) => format!("a:{}", a.id.0),
                (None, Some(t)) => format!("t:{t}"),
                (None, None) => return Err(DomainError::internal()),
            };
            let (email, status, confirm) = self.notify_request(&forum, &address, &owner).await?;
            tasks.extend(confirm);
            (email, Some(status))
        } else {
            (None, None)
        };
        let new = NewComment {
            forum: forum.clone(),
            ident: ident.clone(),
            url: url.map(|u| u.as_str().to_string()),
            title,
            parent_id,
            author,
            anon_id,
            body_md: text.as_str().to_string(),
            body_html: rendered.html,
            status,
            held_reason: admitted.held_reason,
            ip_hash,
            created_at: now_ms(),
            idempotency: idempotency.map(|k| Idempotency {
                scope,
                key: k.key,
                request_hash: self.signer.keyed_hash("idempotency", &k.fingerprint),
            }),
            max_depth: limits.max_depth,
            tasks,
            notify: notify_watch,
            spam_facts: self.spam_facts(&forum, caller, &permalink),
            images,
        };
        let Written { value: posted, at } = self.store.post_comment(new).await?;
        if !posted.replayed {
            // The thread's own ident and its aliases (the request may have named either).
            self.after_thread_write(&forum, &posted.thread, at);
            self.wake_worker();
        }
        let c = posted.comment;
        let edit_token = c
            .account_id()
            .is_none()
            .then(|| self.edit_token(&forum, &c));
        let visible = c.status == CommentStatus::Approved;
        let comment = self.comment_view(&forum, c).await?;
        if !posted.replayed {
            let thread_seq = posted.thread.seq;
            let ev = if visible {
                LiveEvent::Created {
                    thread_seq,
                    comment: comment.clone(),
                }
            } else {
                LiveEvent::Changed { thread_seq }
            };
            self.publish(forum.id, &ident, ev);
        }
        Ok(Posted {
            comment,
            edit_token,
            anon_token,
            notify,
            at,
        })
    }

    /// A guest's token to edit or delete `c` until the forum's edit window closes.
    fn edit_token(&self, forum: &Forum, c: &Comment) -> String {
        let exp = c.created_at + forum.settings.edit_window_secs * 1000;
        self.signer.sign(token::EDIT, &format!("{}|{exp}", c.id.0))
    }

    /// Loads a comment for a write by `caller`: it must exist, and the call must come from one
    /// of its forum's sites.
    pub(super) async fn comment_for_write(
        &self,
        caller: &Caller,
        id: CommentId,
    ) -> Result<(Comment, Arc<Forum>), DomainError> {
        let c = self
            .store
            .comment(id, ReadFrom::Primary)
            .await?
            .ok_or_else(|| DomainError::not_found("comment"))?;
        let forum = self
            .forums
            .by_id(c.forum_id)
            .ok_or_else(|| DomainError::not_found("comment"))?;
        self.check_origin(caller, &forum)?;
        // Every reader write to a comment (edit, delete, vote, flag) comes through here.
        self.check_posting(caller, Some(forum.id)).await?;
        Ok((c, forum))
    }

    /// The author (within the edit window) or a moderator may change a comment.
    async fn authorize_change(
        &self,
        caller: &Caller,
        forum: &Forum,
        c: &Comment,
    ) -> Result<(), DomainError> {
        if let Some(acct) = self.caller_account(caller).await? {
            if acct.can_moderate(forum.id) {
                return Ok(());
            }
            if c.account_id() == Some(acct.id) {
                return if now_ms() <= c.created_at + forum.settings.edit_window_secs * 1000 {
                    Ok(())
                } else {
                    Err(DomainError::new(
                        ErrorCode::EditWindowClosed,
                        "the time to edit this comment has passed",
                    ))
                };
            }
        }
        if c.account_id().is_none() {
            if let Some(payload) = caller
                .edit_token
                .as_deref()
                .and_then(|t| self.signer.verify(token::EDIT, t))
            {
                let (id, exp) = payload.split_once('|').unwrap_or(("", ""));
                if id == c.id.0.to_string() {
                    // The token's end, or the forum's window now if it was shortened since.
                    let exp: i64 = exp
                        .parse::<i64>()
                        .unwrap_or(0)
                        .min(c.created_at + forum.settings.edit_window_secs * 1000);
                    return if now_ms() <= exp {
                        Ok(())
                    } else {
                        Err(DomainError::new(
                            ErrorCode::EditWindowClosed,
                            "the time to edit this comment has passed",
                        ))
                    };
                }
            }
        }
        if caller.account.is_none() && caller.edit_token.is_none() {
            return Err(DomainError::new(
                ErrorCode::Unauthorized,
                "sign in or present the comment's edit token",
            ));
        }
        Err(DomainError::forbidden(
            "only the author or a moderator may change this comment",
        ))
    }

    /// Checks that `caller` may change comment `id`: it exists and is not deleted, the call
    /// comes from one of its forum's sites, and the caller is its author within the edit
    /// window (signed in, or with the comment's edit token) or a moderator of the forum.
    pub async fn editing(&self, caller: &Caller, id: CommentId) -> Result<Editing, DomainError> {
        let (comment, forum) = self.comment_for_write(caller, id).await?;
        if comment.status == CommentStatus::Deleted {
            return Err(DomainError::not_found("comment"));
        }
        self.authorize_change(caller, &forum, &comment).await?;
        Ok(Editing { comment, forum })
    }

    /// Replaces a comment's text. The new text passes admission as a new comment would: a
    /// banned author or a closed thread is refused, and a text the forum holds (moderation
    /// mode, links) takes a public comment back to the queue. A moderator's edit of someone
    /// else's comment is logged with the old text.
    pub async fn edit(
        self: &Arc<Self>,
        caller: &Caller,
        editing: Editing,
        text: CommentBody,
    ) -> Result<Written<CommentView>, DomainError> {
        let Editing { comment: c, forum } = editing;
        let id = c.id;
        let rendered = confab_record::Timer::start(confab_record::Field::RenderMicros)
            .during(|| render_markdown(text.as_str()));
        let account = self.caller_account(caller).await?;
        let thread = self
            .store
            .thread(c.thread_id, ReadFrom::Primary)
            .await?
            .ok_or_else(|| DomainError::not_found("comment"))?;
        let email = match &c.author {
            Author::Guest { email, .. } => email.clone(),
            Author::Account(_) => account.as_ref().and_then(|a| a.email.clone()),
        };
        let spam_subject = match &c.author {
            Author::Guest { name, email, url } => SpamSubject {
                author_name: name.clone(),
                author_email: email.clone().unwrap_or_default(),
                author_url: url.clone().unwrap_or_default(),
                ..Default::default()
            },
            Author::Account(_) => SpamSubject {
                author_name: account
                    .as_ref()
                    .map(|a| a.display_name.clone())
                    .unwrap_or_default(),
                author_email: email.clone().unwrap_or_default(),
                ..Default::default()
            },
        };
        let spam_subject = SpamSubject {
            reply: c.parent_id.is_some(),
            permalink: thread
                .url
                .clone()
                .or_else(|| caller.hints.referrer.clone())
                .unwrap_or_default(),
            ..spam_subject
        };
        let applicant = Applicant {
            caller,
            account: account.as_deref(),
            email: email.as_deref(),
            challenge: None,
            retry: None,
            spam: spam_subject,
        };
        let admitted = self
            .admit(
                &forum,
                &applicant,
                text.as_str(),
                &rendered,
                thread.closed,
                true,
            )
            .await?;
        let moderator_of_other = account
            .as_ref()
            .filter(|a| a.can_moderate(forum.id) && c.account_id() != Some(a.id));
        let edit = CommentEdit {
            body_md: text.as_str().to_string(),
            body_html: rendered.html,
            now: now_ms(),
            hold: admitted.status != CommentStatus::Approved,
            spam: admitted.status == CommentStatus::Spam,
            logged_by: moderator_of_other.map(|a| (forum.id, a.id)),
            held_reason: admitted.held_reason,
        };
        let Written {
            value: (updated, thread_seq),
            at,
        } = self.store.edit_comment(id, &edit).await?;
        self.after_thread_write(&forum, &thread, at);
        if admitted.recheck {
            self.spam_recheck_edit(&forum, caller, &applicant.spam, &updated)
                .await;
        }
        let was_visible = c.status == CommentStatus::Approved;
        let visible = updated.status == CommentStatus::Approved;
        let view = self.comment_view(&forum, updated).await?;
        let ev = match (was_visible, visible) {
            (_, true) => LiveEvent::Updated {
                thread_seq,
                comment: view.clone(),
            },
            (true, false) => LiveEvent::Removed { thread_seq, id },
            (false, false) => LiveEvent::Changed { thread_seq },
        };
        self.publish(forum.id, &thread.ident, ev);
        Ok(Written { value: view, at })
    }

    pub async fn delete(
        self: &Arc<Self>,
        caller: &Caller,
        id: CommentId,
    ) -> Result<Written<CommentView>, DomainError> {
        let Editing { comment: c, forum } = self.editing(caller, id).await?;
        let tasks = self.status_tasks(&forum, &[id], CommentStatus::Deleted);
        let Written {
            value: mut changes,
            at,
        } = self
            .store
            .set_status(
                &forum,
                &[id],
                CommentStatus::Deleted,
                caller.account,
                "delete",
                tasks,
            )
            .await?;
        self.wake_worker();
        let change = changes.pop();
        if let (Some(t), Some(thread_seq)) = (
            self.touch_thread(&forum, c.thread_id, at).await?,
            change.as_ref().and_then(|ch| ch.thread_seq),
        ) {
            self.publish(forum.id, &t.ident, LiveEvent::Removed { thread_seq, id });
        }
        let c = change.map_or(c, |ch| ch.comment);
        Ok(Written {
            value: self.comment_view(&forum, c).await?,
            at,
        })
    }

    pub async fn vote(
        self: &Arc<Self>,
        caller: &Caller,
        id: CommentId,
        value: VoteValue,
    ) -> Result<Voted, DomainError> {
        let value = value.0;
        let (_, forum) = self.comment_for_write(caller, id).await?;
        self.check_actor_not_banned(&forum, caller).await?;
        let (voter, anon_token) = self.voter(caller);
        let Written { value: counts, at } = self.store.vote(id, &voter, value).await?;
        let thread = self.touch_thread(&forum, counts.thread_id, at).await?;
        if let (Some(t), Some(thread_seq)) = (thread, counts.thread_seq) {
            let ev = LiveEvent::Voted {
                thread_seq,
                id,
                likes: counts.likes,
                dislikes: counts.dislikes,
            };
            self.publish(forum.id, &t.ident, ev);
        }
        Ok(Voted {
            likes: counts.likes,
            dislikes: counts.dislikes,
            mine: counts.mine,
            anon_token,
            at,
        })
    }

    pub async fn flag(
        self: &Arc<Self>,
        caller: &Caller,
        id: CommentId,
        reason: &FlagReason,
    ) -> Result<Flagged, DomainError> {
        let reason = reason.0.as_str();
        let (_, forum) = self.comment_for_write(caller, id).await?;
        self.check_actor_not_banned(&forum, caller).await?;
        let (flagger, anon_token) = self.voter(caller);
        let hold_at = forum.settings.flags_to_hold;
        let Written { value: flagged, at } = self.store.flag(id, &flagger, reason, hold_at).await?;
        if let Some(held) = flagged.held {
            // Held by readers: gone from the public page until a moderator decides.
            if let (Some(t), Some(thread_seq)) = (
                self.touch_thread(&forum, flagged.thread_id, at).await?,
                held.thread_seq,
            ) {
                self.publish(forum.id, &t.ident, LiveEvent::Removed { thread_seq, id });
            }
        }
        Ok(Flagged { anon_token, at })
    }

    /// Visible comment counts for up to `counts_max` idents of one forum: from the count cache
    /// where a thread has not changed since its count was read, the rest in one query.
    pub async fn counts(
        &self,
        forum: &Forum,
        req: CountRequest,
    ) -> Result<BTreeMap<String, i64>, DomainError> {
        let parsed = req.idents;
        let mut unique: Vec<Ident> = parsed.iter().map(|(_, i)| i.clone()).collect();
        unique.sort();
        unique.dedup();
        // A client reading past its own write asks the store, as it does for pages.
        if matches!(read_pin(), Some(ReadPin::At(_))) {
            let found: HashMap<Ident, i64> = self
                .store
                .counts(forum, &unique)
                .await?
                .into_iter()
                .collect();
            return Ok(parsed
                .into_iter()
                .map(|(raw, i)| (raw, found.get(&i).copied().unwrap_or(0)))
                .collect());
        }
        let mut found = HashMap::with_capacity(unique.len());
        let mut misses = Vec::new();
        for ident in unique {
            let key: Arc<str> = Arc::from(ident.as_str());
            match self.pages.count(forum.id, &key) {
                Ok(n) => {
                    found.insert(ident, n);
                }
                Err(version) => misses.push((ident, key, version)),
            }
        }
        // Then the shared tier, for the threads whose token this node knows.
        if let Some(shared) = self.shared.as_ref().filter(|_| !misses.is_empty()) {
            let tokened: Vec<(&str, u64)> = misses
                .iter()
                .filter_map(|(i, _, v)| Some((i.as_str(), v.token?)))
                .collect();
            let kept = shared.counts(forum.id, &tokened).await;
            let kept: HashMap<String, i64> = tokened
                .iter()
                .zip(kept)
                .filter_map(|((i, _), n)| Some((i.to_string(), n?)))
                .collect();
            misses.retain(|(ident, key, v)| match kept.get(ident.as_str()) {
                Some(&n) => {
                    self.pages.put_count(forum.id, key.clone(), v.n, n);
                    found.insert(ident.clone(), n);
                    false
                }
                None => true,
            });
        }
        if !misses.is_empty() {
            let want: Vec<Ident> = misses.iter().map(|(i, _, _)| i.clone()).collect();
            let read = self.store.counts(forum, &want);
            // Threads written since they were cached are counted past the latest of those
            // writes (one forum: one shard server), as their pages are filled.
            let pins = misses.iter().filter_map(|(_, _, v)| v.pin);
            let pin = pins.fold(None, |acc: Option<ReadPin>, p| match (acc, p) {
                (Some(ReadPin::At(a)), ReadPin::At(b)) if a.lsn >= b.lsn => acc,
                (Some(ReadPin::At(_)), ReadPin::Fresh) => acc,
                _ => Some(p),
            });
            let rows: HashMap<Ident, i64> = match pin {
                Some(pin) => reading_with(pin, read).await?,
                None => read.await?,
            }
            .into_iter()
            .collect();
            let mut to_tier = Vec::new();
            for (ident, key, version) in misses {
                let n = rows.get(&ident).copied().unwrap_or(0);
                self.pages.put_count(forum.id, key, version.n, n);
                if let Some(token) = version.token {
                    to_tier.push((ident.as_str().to_string(), token, n));
                }
                found.insert(ident, n);
            }
            if let Some(shared) = &self.shared {
                shared.put_counts(forum.id, to_tier);
            }
        }
        Ok(parsed
            .into_iter()
            .map(|(raw, i)| (raw, found.get(&i).copied().unwrap_or(0)))
            .collect())
    }

    /// The caller as a voter (or flagger): its account, else its anonymous token. A caller with
    /// neither gets the token of its address for the day (returned too, for the client to
    /// keep): a keyed hash of the address and the date, so requests that drop their token count
    /// as one voter per address per day instead of a new voter each.
    pub(super) fn voter(&self, caller: &Caller) -> (String, Option<String>) {
        match Self::known_voter(caller) {
            Some(v) => (v, None),
            None => {
                let day = now_ms() / (24 * 3600 * 1000);
                let id: String = self
                    .signer
                    .keyed_hash("anon-by-address", &format!("{}|{day}", caller.ip))
                    .chars()
                    .take(24)
                    .collect();
                let tok = self.signer.sign(token::ANON, &id);
                (format!("t:{id}"), Some(tok))
            }
        }
    }

    /// Votes and flags are refused to a banned account or address.
    pub(super) async fn check_actor_not_banned(
        &self,
        forum: &Forum,
        caller: &Caller,
    ) -> Result<(), DomainError> {
        let account = self.caller_account(caller).await?;
        let email = account.as_ref().and_then(|a| a.email.clone());
        self.check_not_banned(forum, caller, account.as_deref(), email.as_deref())
            .await
            .map(|_| ())
    }

    pub(super) fn known_voter(caller: &Caller) -> Option<String> {
        match (&caller.account, &caller.anon) {
            (Some(a), _) => Some(format!("a:{}", a.0)),
            (None, Some(t)) => Some(format!("t:{t}")),
            (None, None) => None,
        }
    }

    /// The caller's votes and reactions among up to `VOTES_MAX` comments (and the thread, whose
    /// id may be among them: its page reactions), so a signed-in reader sees their likes on
    /// every device. A caller without account or token has none.
    pub async fn my_votes(
        &self,
        caller: &Caller,
        ids: &[CommentId],
    ) -> Result<MyVotes, DomainError> {
        if ids.is_empty() || ids.len() > VOTES_MAX {
            return Err(DomainError::invalid(format!(
                "give 1 to {VOTES_MAX} id parameters"
            )));
        }
        let Some(voter) = Self::known_voter(caller) else {
            return Ok(MyVotes::default());
        };
        let votes = self
            .store
            .votes_of(&voter, ids)
            .await?
            .into_iter()
            .collect();
        let targets: Vec<i64> = ids.iter().map(|i| i.0).collect();
        let mut reactions: BTreeMap<i64, Vec<Reaction>> = BTreeMap::new();
        for (t, r) in self.store.reactions_of(&voter, &targets).await? {
            reactions.entry(t).or_default().push(r);
        }
        for list in reactions.values_mut() {
            list.sort();
        }
        Ok(MyVotes { votes, reactions })
    }

    /// Marks a thread's cached pages stale after a change to one of its comments.
    /// Returns the thread as it is now (its `seq` numbers the change for live clients).
    pub(crate) async fn touch_thread(
        self: &Arc<Self>,
        forum: &Arc<Forum>,
        thread: confab_core::id::ThreadId,
        at: Option<WritePos>,
    ) -> Result<Option<confab_core::model::Thread>, DomainError> {
        let t = self.store.thread(thread, ReadFrom::Primary).await?;
        if let Some(t) = &t {
            self.after_thread_write(forum, t, at);
        }
        Ok(t)
    }
}

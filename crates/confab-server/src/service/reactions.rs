//! Readers' emoji reactions on comments and on whole threads, and moderators' featured
//! comments. Shaped like votes: the counts come with the comment and thread rows a page read
//! brings (no extra statement, the cached page stays shared), a reader's own reactions are read
//! separately (`Service::my_votes`), and every change makes the thread's cached pages stale and
//! is published on its live channel.

use super::realtime::LiveEvent;
use super::{Caller, Service};
use crate::service::pins::{WritePos, Written};
use crate::views::CommentView;
use confab_core::id::{CommentId, ThreadId};
use confab_core::reaction::{Reaction, ReactionCounts};
use confab_core::DomainError;
use confab_store::{Reacted, ReadFrom};
use std::sync::Arc;

/// One reader's change: a reaction of the set, set (`on`) or cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionChange {
    pub reaction: Reaction,
    pub on: bool,
}

impl ReactionChange {
    /// `emoji`: a reaction's name (`like`) or its emoji; `on` defaults to true.
    pub fn parse(emoji: &str, on: Option<bool>) -> Result<ReactionChange, DomainError> {
        Ok(ReactionChange {
            reaction: Reaction::parse(emoji)?,
            on: on.unwrap_or(true),
        })
    }
}

/// A comment's or thread's reactions after the caller's change.
#[derive(Debug, Clone)]
pub struct ReactedOutcome {
    pub counts: ReactionCounts,
    pub mine: Vec<Reaction>,
    /// For a caller without an identity: the token of its address for the day.
    pub anon_token: Option<String>,
    /// Where the change committed, for the client's read-your-writes pin.
    pub at: Option<WritePos>,
}

impl Service {
    /// Sets or clears the caller's reaction on an approved comment.
    pub async fn react_comment(
        self: &Arc<Self>,
        caller: &Caller,
        id: CommentId,
        change: ReactionChange,
    ) -> Result<ReactedOutcome, DomainError> {
        let (_, forum) = self.comment_for_write(caller, id).await?;
        self.check_actor_not_banned(&forum, caller).await?;
        let (reactor, anon_token) = self.voter(caller);
        let Written { value: r, at } = self
            .store
            .react_comment(id, &reactor, change.reaction, change.on)
            .await?;
        let thread = self.touch_thread(&forum, r.thread_id, at).await?;
        if let (Some(t), Some(thread_seq)) = (thread, r.thread_seq) {
            let ev = LiveEvent::Reacted {
                thread_seq,
                id,
                reactions: r.counts.to_map(),
            };
            self.publish(forum.id, &t.ident, ev);
        }
        Ok(outcome(r, anon_token, at))
    }

    /// Sets or clears the caller's reaction on a thread itself (the page's reactions).
    pub async fn react_thread(
        self: &Arc<Self>,
        caller: &Caller,
        id: ThreadId,
        change: ReactionChange,
    ) -> Result<ReactedOutcome, DomainError> {
        let thread = self
            .store
            .thread(id, ReadFrom::Primary)
            .await?
            .ok_or_else(|| DomainError::not_found("thread"))?;
        let forum = self
            .forums
            .by_id(thread.forum_id)
            .ok_or_else(|| DomainError::not_found("thread"))?;
        self.check_origin(caller, &forum)?;
        self.check_posting(caller, Some(forum.id)).await?;
        self.check_actor_not_banned(&forum, caller).await?;
        let (reactor, anon_token) = self.voter(caller);
        let Written { value: r, at } = self
            .store
            .react_thread(id, &reactor, change.reaction, change.on)
            .await?;
        let thread = self.touch_thread(&forum, id, at).await?;
        if let (Some(t), Some(thread_seq)) = (thread, r.thread_seq) {
            let ev = LiveEvent::ThreadReacted {
                thread_seq,
                reactions: r.counts.to_map(),
            };
            self.publish(forum.id, &t.ident, ev);
        }
        Ok(outcome(r, anon_token, at))
    }

    /// A moderator of the comment's forum features (`on`) or unfeatures an approved comment;
    /// logged in the moderation log. Returns the comment as the API shows it.
    pub async fn feature_comment(
        self: &Arc<Self>,
        caller: &Caller,
        id: CommentId,
        on: bool,
    ) -> Result<Written<CommentView>, DomainError> {
        let c = self
            .store
            .comment(id, ReadFrom::Primary)
            .await?
            .ok_or_else(|| DomainError::not_found("comment"))?;
        let forum = self
            .forums
            .by_id(c.forum_id)
            .ok_or_else(|| DomainError::not_found("comment"))?;
        let m = self.moderating(caller, forum).await?;
        let forum = m.forum().clone();
        let Written { value: ch, at } = self.store.feature(id, m.account().id, on).await?;
        let view = self.comment_view(&forum, ch.comment).await?;
        if let Some(thread_seq) = ch.thread_seq {
            if let Some(t) = self.touch_thread(&forum, view.thread_id, at).await? {
                let ev = LiveEvent::Updated {
                    thread_seq,
                    comment: view.clone(),
                };
                self.publish(forum.id, &t.ident, ev);
            }
        }
        Ok(Written { value: view, at })
    }
}

fn outcome(r: Reacted, anon_token: Option<String>, at: Option<WritePos>) -> ReactedOutcome {
    ReactedOutcome {
        counts: r.counts,
        mine: r.mine,
        anon_token,
        at,
    }
}

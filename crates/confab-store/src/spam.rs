//! The outside spam check's records: what the checker is told about the request a comment
//! came with (kept with the comment, so a moderator's later verdict can be reported), and the
//! checker's late verdict.

use crate::pin::Written;
use crate::{StatusChange, StoreResult};
use async_trait::async_trait;
use confab_core::id::CommentId;
use confab_core::model::{CommentStatus, Forum};

/// The request a comment came with, as the spam checker wants it (Akismet's `user_ip`,
/// `user_agent`, `referrer`, `permalink`, `blog_lang`). Kept only for forums with a spam
/// check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpamFacts {
    pub user_ip: String,
    pub user_agent: String,
    pub referrer: String,
    pub permalink: String,
    pub lang: String,
}

#[async_trait]
pub trait SpamStore {
    /// The request facts kept with a comment, if any.
    async fn spam_facts(&self, comment: CommentId) -> StoreResult<Option<SpamFacts>>;

    /// The checker's late verdict: the comment becomes spam with `reason`, logged as `spam`
    /// with no actor, in one transaction, only if its status is still `expect` (a moderator
    /// who acted meanwhile wins). `None`: nothing changed.
    async fn spam_verdict(
        &self,
        forum: &Forum,
        comment: CommentId,
        expect: CommentStatus,
        reason: &str,
    ) -> StoreResult<Written<Option<StatusChange>>>;

    /// Forgets the request facts of comments written before `before` (the reader's address is
    /// not kept longer than a moderator's verdict is likely to need it); how many went.
    async fn prune_spam_facts(&self, before: i64) -> StoreResult<u64>;
}

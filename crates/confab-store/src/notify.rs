//! What notifications beyond a reply need: readers who follow a thread (every new published
//! comment in it is mailed to them), and who commented in a thread (whom a `@name` mention
//! there can reach). Mail itself goes through the outbox's `mail.reply` task and the
//! subscriptions of [`crate::OutboxStore`]: a follow says *what* to mail, the subscription
//! of the follower's address whether mail may go to it at all.

use crate::StoreResult;
use async_trait::async_trait;
use confab_core::id::{AccountId, ThreadId};
use confab_core::model::Forum;

/// Most followers one comment is mailed to (the oldest follows first).
pub const MAX_FOLLOWERS: usize = 500;
/// Most distinct authors of a thread a mention is looked for among (the most recent ones).
pub const MAX_THREAD_AUTHORS: usize = 500;

/// Someone who has a published comment in a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadAuthor {
    Account(AccountId),
    /// A guest: their name and the address they gave (if any).
    Guest {
        name: String,
        email: Option<String>,
    },
}

#[async_trait]
pub trait NotifyStore {
    /// Starts (`true`) or ends following a thread of `forum`. Idempotent.
    async fn set_follow(
        &self,
        forum: &Forum,
        thread: ThreadId,
        account: AccountId,
        follow: bool,
    ) -> StoreResult<()>;

    /// Whether the account follows the thread.
    async fn follows(&self, thread: ThreadId, account: AccountId) -> StoreResult<bool>;

    /// The accounts following a thread, at most `limit`, oldest follow first.
    async fn followers(&self, thread: ThreadId, limit: usize) -> StoreResult<Vec<AccountId>>;

    /// The distinct authors of a thread's published comments, most recent first, at most
    /// `limit`: accounts, and guests by name and address.
    async fn thread_authors(
        &self,
        thread: ThreadId,
        limit: usize,
    ) -> StoreResult<Vec<ThreadAuthor>>;
}

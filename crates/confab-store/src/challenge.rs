//! Used proof-of-work challenges (`confab_core::challenge`): each is accepted once across a
//! fleet, so the record lives where every node reads and writes the same rows (SQLite's file;
//! on PostgreSQL the control database). Rows are kept until their challenge expires, then
//! pruned a bounded batch at a time by later spends, so the table holds at most the challenges
//! used in the last few minutes.

use crate::StoreResult;
use async_trait::async_trait;

/// Most expired rows one spend prunes (more than the one row it adds, so the table shrinks
/// back to the live ones).
pub const PRUNE_BATCH: i64 = 100;

/// What spending a challenge found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spend {
    /// Not used before: now it is.
    Fresh,
    /// Already used; with the retry tag its first use was recorded with, if any.
    Used { tag: Option<String> },
}

#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Records challenge `id` as used until `expires_at` (ms), with `tag` (what identifies the
    /// request that used it, so a retry of that request is recognised), unless it was used
    /// before; prunes up to [`PRUNE_BATCH`] rows expired by `now`.
    async fn spend_challenge(
        &self,
        id: &str,
        expires_at: i64,
        tag: Option<&str>,
        now: i64,
    ) -> StoreResult<Spend>;
}

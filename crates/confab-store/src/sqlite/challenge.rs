//! Used proof-of-work challenges, in the one file every request of the process shares.

use super::*;
use crate::challenge::{ChallengeStore, Spend, PRUNE_BATCH};

#[async_trait]
impl ChallengeStore for SqliteStore {
    async fn spend_challenge(
        &self,
        id: &str,
        expires_at: i64,
        tag: Option<&str>,
        now: i64,
    ) -> StoreResult<Spend> {
        let args = [int(expires_at), text(id), opt_text(tag)];
        self.pool
            .write(move |c, n| {
                exec(
                    c,
                    n,
                    "DELETE FROM used_challenges WHERE id IN \
                     (SELECT id FROM used_challenges WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
                    &[int(now), int(PRUNE_BATCH)],
                )?;
                let added = exec(
                    c,
                    n,
                    "INSERT INTO used_challenges (expires_at, id, tag) VALUES (?, ?, ?) \
                     ON CONFLICT (id) DO NOTHING",
                    &args,
                )?;
                if added == 1 {
                    return Ok(Spend::Fresh);
                }
                let tag = row(
                    c,
                    n,
                    "SELECT tag FROM used_challenges WHERE id = ?",
                    &args[1..2],
                    |r| r.get::<_, Option<String>>(0),
                )?
                .flatten();
                Ok(Spend::Used { tag })
            })
            .await
    }
}

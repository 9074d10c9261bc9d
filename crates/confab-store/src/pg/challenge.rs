//! Used proof-of-work challenges, in the control database: every node of a fleet writes the
//! same rows, so a challenge is accepted once whichever node it reaches.

use super::*;
use crate::challenge::{ChallengeStore, Spend, PRUNE_BATCH};

#[async_trait]
impl ChallengeStore for PgStore {
    async fn spend_challenge(
        &self,
        id: &str,
        expires_at: i64,
        tag: Option<&str>,
        now: i64,
    ) -> StoreResult<Spend> {
        control!(self, |c, n| {
            exec(
                &c,
                &n,
                "DELETE FROM used_challenges WHERE id IN \
                 (SELECT id FROM used_challenges WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
                &[&now, &PRUNE_BATCH],
            )
            .await?;
            // The row is the claim: of two nodes spending one challenge at once, one inserts.
            let added = exec(
                &c,
                &n,
                "INSERT INTO used_challenges (id, expires_at, tag) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
                &[&id, &expires_at, &tag],
            )
            .await?;
            if added == 1 {
                return Ok(Spend::Fresh);
            }
            let tag = row(
                &c,
                &n,
                "SELECT tag FROM used_challenges WHERE id = $1",
                &[&id],
            )
            .await?
            .and_then(|r| r.get::<_, Option<String>>(0));
            Ok(Spend::Used { tag })
        })
    }
}

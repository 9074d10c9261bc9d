//! Every node of a deployment signs with the same `secret`: sessions, edit and voter tokens,
//! read-your-writes pins and IP hashes made by one node are checked by another. A node whose
//! secret differs would refuse every token the others made (and they its), so it refuses to
//! start instead, saying why. The store keeps a keyed hash of the secret in use
//! ([`confab_store::ControlStore::claim_secret`]); `confab serve` claims it at start and every
//! minute (other commands sign nothing a node checks and do not claim it),
//! so a secret changed on the whole fleet (every node stopped, then started with the new one)
//! takes over once no node has claimed the old one for [`STALE_MS`].

use super::Service;
use confab_core::error::{DomainError, ErrorCode};
use std::time::Duration;

/// How long a recorded secret stays in force after the last node using it claimed it.
pub const STALE_MS: i64 = 180_000;
/// How often a running node claims it again.
pub const CLAIM_EVERY: Duration = Duration::from_secs(60);

impl Service {
    /// A keyed hash of this node's secret: equal for equal secrets, and says nothing of it.
    fn secret_check(&self) -> String {
        self.signer.keyed_hash("secret-check", "confab")
    }

    /// Claims the deployment's secret record for this node's secret; an error (conflict)
    /// when another secret is recorded and in use.
    pub async fn claim_secret(&self) -> Result<(), DomainError> {
        let now = confab_core::now_ms();
        let mine = self.secret_check();
        match self.store.claim_secret(&mine, now, now - STALE_MS).await? {
            None => Ok(()),
            Some(theirs) => Err(DomainError::new(
                ErrorCode::Conflict,
                format!(
                    "this node's `secret` differs from the one the other nodes of this deployment \
                     sign with (check {theirs} there, {mine} here): tokens made by one would be \
                     refused by the other. Set the same `secret` on every node. A new secret for \
                     the whole fleet is taken once no node has used the old one for {} minutes",
                    STALE_MS / 60_000
                ),
            )),
        }
    }
}

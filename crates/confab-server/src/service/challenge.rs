//! The proof-of-work challenge guests solve before posting (`confab_core::challenge` is the
//! format and its checks; this file issues challenges and spends solutions).
//!
//! Who: guests' new comments on a forum with `challenge.enabled`. Signed-in readers (password
//! accounts and SSO accounts alike) never solve one: an account is already a cost a script
//! must pay, and its comments can be banned or held by account. Edits never need one.
//!
//! Single use: a solution is remembered in the store (`ChallengeStore`: SQLite's file, or
//! PostgreSQL's control database) until its challenge expires. The shared cache tier would be
//! cheaper, but a cache node that dies or evicts forgets, and then one solution posts again
//! and again; the store is the one place every node reads the same, durably. The spend is one
//! small insert per guest post on a forum that turned the challenge on.
//!
//! Retries: a post retried with its `Idempotency-Key` (the widget does after a lost answer)
//! carries the same solution. Its first use is recorded with a keyed hash of the key and the
//! request, so the same request may present it again (and then replays the first result);
//! any other use is refused.

use super::{Caller, Service};
use confab_core::challenge::{self, Challenge, Solution, Verified};
use confab_core::model::Forum;
use confab_core::{now_ms, DomainError, ErrorCode};
use confab_store::Spend;
use rand::RngCore;

impl Service {
    /// A new challenge for a guest who will post on `forum`; `None` when this caller needs
    /// none (the forum has it off, or the caller is signed in).
    pub fn challenge_for(
        &self,
        caller: &Caller,
        forum_name: &str,
    ) -> Result<Option<Challenge>, DomainError> {
        let forum = self.forum(forum_name)?;
        let s = forum.settings.challenge;
        if !s.enabled || caller.account.is_some() {
            return Ok(None);
        }
        let mut rng = rand::thread_rng();
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        Ok(Some(challenge::issue(
            &self.signer,
            forum.id,
            s.difficulty,
            now_ms(),
            nonce,
            rng.next_u64(),
        )))
    }

    /// For a guest's new comment on `forum`: the solution it carries, checked (signature,
    /// forum, expiry, number) but not spent yet; `None` when the forum does not ask for one.
    pub(crate) fn check_challenge(
        &self,
        forum: &Forum,
        solution: Option<&Solution>,
    ) -> Result<Option<Verified>, DomainError> {
        if !forum.settings.challenge.enabled {
            return Ok(None);
        }
        let Some(sol) = solution else {
            return Err(DomainError::new(
                ErrorCode::ChallengeRequired,
                "this site asks guests to solve a challenge before posting: get one from GET /api/v1/challenge",
            ));
        };
        challenge::verify(&self.signer, sol, forum.id, now_ms())
            .map(Some)
            .map_err(|f| DomainError::new(ErrorCode::ChallengeFailed, f.message()))
    }

    /// Spends a checked solution: refused if it was used before, unless by this same request
    /// (`retry`: its idempotency key and contents, when it has a key).
    pub(crate) async fn spend_challenge(
        &self,
        v: &Verified,
        retry: Option<&str>,
    ) -> Result<(), DomainError> {
        let tag = retry.map(|r| self.signer.keyed_hash("challenge-retry", r));
        match self
            .store
            .spend_challenge(&v.id, v.expires_at, tag.as_deref(), now_ms())
            .await?
        {
            Spend::Fresh => Ok(()),
            Spend::Used { tag: Some(first) } if Some(&first) == tag.as_ref() => Ok(()),
            Spend::Used { .. } => Err(DomainError::new(
                ErrorCode::ChallengeFailed,
                "this challenge was already used; solve a new one",
            )),
        }
    }
}

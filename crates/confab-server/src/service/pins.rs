//! Read-your-writes pins (ARCHITECTURE.md, "Read-your-writes"): a request that commits a write is
//! given a signed pin naming the shard server and the commit's WAL position; a later request carrying a valid
//! pin reads from a replica only if that replica has replayed past it, else from the primary.
//! `http/pin.rs` carries the pin in a header and a cookie; this is the part that signs, checks
//! and applies it.

use super::Service;
use confab_store::pin::{reading_with, ReadPin};
pub use confab_store::pin::{WritePos, Written};
use std::future::Future;

const PIN_KIND: &str = "pin";
/// How long a pin holds: longer than any replica lag a replica is still used at.
pub const PIN_TTL_MS: i64 = 15_000;

impl Service {
    /// The write position a pin token names, if it is valid and unexpired.
    fn pin_of(&self, token: &str) -> Option<WritePos> {
        let payload = self.signer.verify(PIN_KIND, token)?;
        let (pos, until) = payload.rsplit_once('.')?;
        let until: i64 = until.parse().ok()?;
        (until > confab_core::now_ms()).then_some(())?;
        WritePos::decode(pos)
    }

    /// Runs one request's `work`, reading past the write the pin token `pin` names (when it
    /// is valid and unexpired).
    pub async fn reading_pinned<T>(&self, pin: Option<&str>, work: impl Future<Output = T>) -> T {
        match pin.and_then(|t| self.pin_of(t)) {
            Some(p) => reading_with(ReadPin::At(p), work).await,
            None => work.await,
        }
    }

    /// The pin token for a write that committed at `at` (service results carry it: see
    /// `Posted::at`, `Voted::at`, `Written::at`).
    pub fn pin_token(&self, at: WritePos) -> String {
        self.signer.sign(
            PIN_KIND,
            &format!("{}.{}", at.encode(), confab_core::now_ms() + PIN_TTL_MS),
        )
    }
}

//! Sign-in identities: an account at an OpenID provider or GitHub, named by (provider,
//! subject), linked to one Confab account. Control data (small, global).

use crate::StoreResult;
use async_trait::async_trait;
use confab_core::id::AccountId;
use confab_core::model::Account;

/// A new account for an identity no account is linked to yet.
#[derive(Debug, Clone)]
pub struct NewIdentityAccount {
    pub provider: String,
    pub subject: String,
    /// `ext~PROVIDER~HASH` ([`identity_username`]): a name no sign-up can take.
    pub username: String,
    /// What the provider calls the reader; made unique with [`display_name_candidates`].
    pub display_name: String,
    /// The address, when the provider says it is verified and no account has it.
    pub email: Option<String>,
}

/// Identities and their accounts.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The account (provider, subject) is linked to.
    async fn identity_account(&self, provider: &str, subject: &str)
        -> StoreResult<Option<Account>>;
    /// The account whose e-mail address is `email` (compared case-insensitively).
    async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>>;
    /// Links (provider, subject) to `account` unless it is linked already; answers the account
    /// it is linked to (another one when a concurrent sign-in linked it first).
    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        account: AccountId,
    ) -> StoreResult<Account>;
    /// Makes the account of a new identity and links it. The display name is the first of
    /// [`display_name_candidates`] no account has; the e-mail address is left off if an account
    /// took it meanwhile. A concurrent first sign-in of the same identity finds its account.
    async fn create_identity_account(&self, new: NewIdentityAccount) -> StoreResult<Account>;
}

/// The username of an identity's own account: `ext~PROVIDER~` and a hash of the subject.
pub fn identity_username(provider: &str, subject: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{provider}\n{subject}").as_bytes());
    let hex: String = h[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("ext~{provider}~{hex}")
}

/// Display names to try for a new account, in order: `base`, `base 2`, ... `base 20`, then
/// `base` with a suffix from the username (unique as the username is).
pub fn display_name_candidates(base: &str, username: &str) -> Vec<String> {
    let mut v = vec![base.to_string()];
    v.extend((2..=20).map(|i| format!("{base} {i}")));
    let tail: String = username.chars().rev().take(6).collect();
    v.push(format!("{base} {}", tail.chars().rev().collect::<String>()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_names() {
        let a = identity_username("acme", "123");
        assert!(a.starts_with("ext~acme~"));
        assert_eq!(a, identity_username("acme", "123"));
        assert_ne!(a, identity_username("acme", "124"));
        assert_ne!(a, identity_username("other", "123"));
        let c = display_name_candidates("Ann", &a);
        assert_eq!(c[0], "Ann");
        assert_eq!(c[1], "Ann 2");
        assert_eq!(c.len(), 21);
        assert!(c[20].starts_with("Ann "));
    }
}

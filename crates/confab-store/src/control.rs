//! Control data: forums, accounts with their roles, and bans. Small and global: on PostgreSQL
//! it lives in the control database, apart from the shards.

use crate::StoreResult;
use async_trait::async_trait;
use confab_core::id::{AccountId, CommentId, ForumId};
use confab_core::model::{Account, Ban, BanKind, BanState, BanSubject, Forum, ForumSettings};
use confab_core::sso::SsoSecret;
use confab_core::switch::{SwitchName, SwitchRecord};

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub email: Option<String>,
    pub display_name: String,
    pub password_hash: String,
    pub is_staff: bool,
}

/// The account of a forum site's user, as SSO signs it in (`confab_core::sso`).
#[derive(Debug, Clone)]
pub struct SsoAccount {
    /// `confab_core::sso::account_username(forum, site user id)`: one account per forum and
    /// site user, a name no sign-up can take.
    pub username: String,
    pub display_name: String,
    pub url: Option<String>,
    pub avatar_url: Option<String>,
}

/// A ban to record.
#[derive(Debug, Clone)]
pub struct BanRecord {
    pub kind: BanKind,
    /// The e-mail, the address's keyed hash, or the account id.
    pub value: String,
    pub reason: Option<String>,
    pub expires_at: Option<i64>,
    pub shadow: bool,
    /// The moderator making it.
    pub actor: Option<AccountId>,
    /// The comment it is made from.
    pub comment_id: Option<CommentId>,
    /// What moderators are shown it matches (see `Ban::shown`); the log entry says this too.
    pub shown: String,
}

/// Forums, accounts, moderators and bans.
#[async_trait]
pub trait ControlStore: Send + Sync {
    async fn create_forum(&self, name: &str, settings: &ForumSettings) -> StoreResult<Forum>;

    /// Every forum; services keep them in memory and refresh on change.
    async fn forums(&self) -> StoreResult<Vec<Forum>>;

    async fn update_forum(&self, id: ForumId, settings: &ForumSettings) -> StoreResult<Forum>;

    /// Sets a forum's SSO secret, or with `None` removes it.
    async fn set_sso_secret(&self, id: ForumId, secret: Option<&SsoSecret>) -> StoreResult<Forum>;

    /// The account `new.username` names, made (without e-mail or password, not staff) when it
    /// does not exist yet; either way its display name, URL and avatar become `new`'s. Roles
    /// are never touched.
    async fn sso_account(&self, new: SsoAccount) -> StoreResult<Account>;

    async fn create_account(&self, new: NewAccount) -> StoreResult<Account>;

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>>;

    /// Many accounts in one query (application-level join for a page's authors).
    async fn accounts(&self, ids: &[AccountId]) -> StoreResult<Vec<Account>>;

    /// An account and its password hash, by username or e-mail.
    async fn credentials(&self, login: &str) -> StoreResult<Option<(Account, String)>>;

    async fn set_moderator(&self, account: AccountId, forum: ForumId, on: bool) -> StoreResult<()>;

    /// Makes an account staff or not; `NotFound` when there is no such account.
    async fn set_staff(&self, account: AccountId, on: bool) -> StoreResult<()>;

    /// Every feature switch record (records of switches this version does not know are left
    /// out, so an older node runs beside a newer one). The rule that evaluates them is
    /// `confab_core::switch`; storage only stores.
    async fn switches(&self) -> StoreResult<Vec<SwitchRecord>>;

    /// Inserts or replaces the record of `(r.name, r.forum)`.
    async fn put_switch(&self, r: &SwitchRecord) -> StoreResult<()>;

    /// Deletes the record of `(name, forum)` (the switch goes back to what the wider scope or
    /// the default says); whether there was one.
    async fn delete_switch(&self, name: SwitchName, forum: Option<ForumId>) -> StoreResult<bool>;

    /// Every node of a deployment must sign with the same `secret`. Records `check` (a keyed
    /// hash of this node's secret) as the deployment's, with `now` as when it was last seen,
    /// when no check is recorded, the recorded one is `check`, or it was last seen before
    /// `stale_before` (no node has used it since: the whole fleet changed its secret). Otherwise
    /// records nothing and returns the recorded check. Nodes call it at start and then
    /// periodically. A store that only the processes of one data directory open (embedded
    /// SQLite: one secret file) has nothing to compare and always answers `None`.
    async fn claim_secret(
        &self,
        _check: &str,
        _now: i64,
        _stale_before: i64,
    ) -> StoreResult<Option<String>> {
        Ok(None)
    }

    /// Ends every session of an account (moves its session generation).
    async fn end_sessions(&self, account: AccountId) -> StoreResult<()>;

    /// Replaces an account's password hash with `new_hash` and ends its sessions (moves its
    /// session generation), in one statement, only while its hash is still `old_hash`: a
    /// password reset link, bound to the hash it was made for, works once. Whether it changed.
    async fn set_password(
        &self,
        account: AccountId,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool>;

    /// Gives an account an e-mail address (its owner confirmed it); `Conflict` when another
    /// account holds it.
    async fn set_account_email(&self, account: AccountId, email: &str) -> StoreResult<()>;

    /// Adds (or renews: same kind and value) a ban, with its moderation-log entry.
    async fn add_ban(&self, forum: ForumId, ban: &BanRecord) -> StoreResult<Ban>;

    async fn remove_ban(
        &self,
        forum: ForumId,
        ban: i64,
        actor: Option<AccountId>,
    ) -> StoreResult<bool>;

    async fn bans(&self, forum: ForumId) -> StoreResult<Vec<Ban>>;

    /// Whether a ban in force (by e-mail, address or account) applies to `who`, and which kind
    /// (a ban that is not a shadow ban wins, with until when and why). One indexed query.
    async fn ban_state(&self, forum: ForumId, who: &BanSubject, now: i64) -> StoreResult<BanState>;

    /// The accounts that moderate a forum (not staff at large), by id.
    async fn forum_moderators(&self, forum: ForumId) -> StoreResult<Vec<Account>>;
}

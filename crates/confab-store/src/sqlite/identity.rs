//! Sign-in identities (`crate::identity`) in the embedded file.

use super::*;
use crate::identity::{display_name_candidates, IdentityStore, NewIdentityAccount};

fn linked(c: &Connection, n: &Counter, provider: &str, subject: &str) -> StoreResult<Option<i64>> {
    row(
        c,
        n,
        "SELECT account_id FROM identities WHERE provider = ? AND subject = ?",
        &[text(provider), text(subject)],
        |r| r.get(0),
    )
}

fn link(
    c: &Connection,
    n: &Counter,
    provider: &str,
    subject: &str,
    account: i64,
) -> StoreResult<Account> {
    exec(
        c,
        n,
        "INSERT OR IGNORE INTO identities (provider, subject, account_id, created_at) VALUES (?, ?, ?, ?)",
        &[text(provider), text(subject), int(account), int(confab_core::now_ms())],
    )?;
    let id = linked(c, n, provider, subject)?.ok_or_else(DomainError::internal)?;
    load_account(c, n, AccountId(id))?.ok_or_else(DomainError::internal)
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn identity_account(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<Account>> {
        let (p, s) = (provider.to_string(), subject.to_string());
        self.pool
            .read(move |c, n| match linked(c, n, &p, &s)? {
                Some(id) => load_account(c, n, AccountId(id)),
                None => Ok(None),
            })
            .await
    }

    async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>> {
        let email = email.to_string();
        self.pool
            .read(move |c, n| {
                let id: Option<i64> = row(
                    c,
                    n,
                    "SELECT id FROM accounts WHERE email = ? COLLATE NOCASE LIMIT 1",
                    &[text(&email)],
                    |r| r.get(0),
                )?;
                match id {
                    Some(id) => load_account(c, n, AccountId(id)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        account: AccountId,
    ) -> StoreResult<Account> {
        let (p, s) = (provider.to_string(), subject.to_string());
        self.pool
            .write(move |c, n| link(c, n, &p, &s, account.0))
            .await
    }

    async fn create_identity_account(&self, new: NewIdentityAccount) -> StoreResult<Account> {
        self.pool
            .write(move |c, n| {
                // One writer: nothing changes between these reads and the inserts.
                if let Some(id) = linked(c, n, &new.provider, &new.subject)? {
                    return load_account(c, n, AccountId(id))?.ok_or_else(DomainError::internal);
                }
                let existing: Option<i64> = row(
                    c,
                    n,
                    "SELECT id FROM accounts WHERE username = ?",
                    &[text(&new.username)],
                    |r| r.get(0),
                )?;
                let id = match existing {
                    Some(id) => id,
                    None => {
                        let mut name = None;
                        for cand in display_name_candidates(&new.display_name, &new.username) {
                            let taken: Option<i64> = row(
                                c,
                                n,
                                "SELECT 1 FROM accounts WHERE display_name = ? COLLATE NOCASE LIMIT 1",
                                &[text(&cand)],
                                |r| r.get(0),
                            )?;
                            if taken.is_none() {
                                name = Some(cand);
                                break;
                            }
                        }
                        let name = name.unwrap_or_else(|| new.username.clone());
                        let email_free = match &new.email {
                            Some(e) => row(
                                c,
                                n,
                                "SELECT id FROM accounts WHERE email = ? COLLATE NOCASE LIMIT 1",
                                &[text(e)],
                                |r| r.get::<_, i64>(0),
                            )?
                            .is_none(),
                            None => false,
                        };
                        exec(
                            c,
                            n,
                            "INSERT INTO accounts (username, email, display_name, password_hash, is_staff, created_at) \
                             VALUES (?, ?, ?, ?, 0, ?)",
                            &[
                                text(&new.username),
                                opt_text(new.email.as_deref().filter(|_| email_free)),
                                text(&name),
                                text(confab_core::sso::NO_PASSWORD),
                                int(confab_core::now_ms()),
                            ],
                        )?;
                        c.last_insert_rowid()
                    }
                };
                link(c, n, &new.provider, &new.subject, id)
            })
            .await
    }
}

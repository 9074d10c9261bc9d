//! Sign-in identities (`crate::identity`) in the control database.

use super::*;
use crate::identity::{display_name_candidates, IdentityStore, NewIdentityAccount};

#[async_trait]
impl IdentityStore for PgStore {
    async fn identity_account(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<Account>> {
        control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!("SELECT {ACCOUNT_COLS} FROM identities i JOIN accounts a ON a.id = i.account_id WHERE i.provider = $1 AND i.subject = $2"),
                &[&provider, &subject],
            )
            .await?;
            Ok(r.map(|r| account_row(&r)))
        })
    }

    async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>> {
        control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!("SELECT {ACCOUNT_COLS} FROM accounts a WHERE lower(a.email COLLATE \"C\") = lower($1 COLLATE \"C\") LIMIT 1"),
                &[&email],
            )
            .await?;
            Ok(r.map(|r| account_row(&r)))
        })
    }

    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        account: AccountId,
    ) -> StoreResult<Account> {
        control!(self, |c, n| {
            exec(
                &c,
                &n,
                "INSERT INTO identities (provider, subject, account_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&provider, &subject, &account.0, &confab_core::now_ms()],
            )
            .await?;
            let r = row(
                &c,
                &n,
                &format!("SELECT {ACCOUNT_COLS} FROM identities i JOIN accounts a ON a.id = i.account_id WHERE i.provider = $1 AND i.subject = $2"),
                &[&provider, &subject],
            )
            .await?
            .ok_or_else(DomainError::internal)?;
            Ok(account_row(&r))
        })
    }

    async fn create_identity_account(&self, new: NewIdentityAccount) -> StoreResult<Account> {
        if let Some(a) = self.identity_account(&new.provider, &new.subject).await? {
            return Ok(a);
        }
        // The username is the identity's own: a concurrent first sign-in of the same identity
        // (on any node) conflicts on it and both link the one account.
        let id: i64 = control!(self, |c, n| {
            let found = row(
                &c,
                &n,
                "SELECT id FROM accounts WHERE lower(username COLLATE \"C\") = lower($1 COLLATE \"C\")",
                &[&new.username],
            )
            .await?;
            if let Some(r) = found {
                return Ok(r.get::<_, i64>(0));
            }
            let mut name = new.username.clone();
            for cand in display_name_candidates(&new.display_name, &new.username) {
                let taken = row(
                    &c,
                    &n,
                    "SELECT 1 FROM accounts WHERE lower(display_name COLLATE \"C\") = lower($1 COLLATE \"C\") LIMIT 1",
                    &[&cand],
                )
                .await?;
                if taken.is_none() {
                    name = cand;
                    break;
                }
            }
            let mut email = new.email.clone();
            for _ in 0..2 {
                let inserted = row(
                    &c,
                    &n,
                    "INSERT INTO accounts (username, email, display_name, password_hash, is_staff, created_at) \
                     VALUES ($1, $2, $3, $4, false, $5) RETURNING id",
                    &[&new.username, &email, &name, &confab_core::sso::NO_PASSWORD, &confab_core::now_ms()],
                )
                .await;
                match inserted {
                    Ok(Some(r)) => return Ok(r.get::<_, i64>(0)),
                    Ok(None) => return Err(DomainError::internal()),
                    Err(e) if e.code == ErrorCode::Conflict => {
                        let again = row(
                            &c,
                            &n,
                            "SELECT id FROM accounts WHERE lower(username COLLATE \"C\") = lower($1 COLLATE \"C\")",
                            &[&new.username],
                        )
                        .await?;
                        if let Some(r) = again {
                            return Ok(r.get::<_, i64>(0));
                        }
                        // The address was taken meanwhile: the account goes without it.
                        email = None;
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(DomainError::internal())
        })?;
        self.link_identity(&new.provider, &new.subject, AccountId(id))
            .await
    }
}

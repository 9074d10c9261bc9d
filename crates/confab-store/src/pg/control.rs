//! Control data: forums, accounts, moderators and bans.

use super::*;
use crate::rules::{switch_forum_id, switch_record};
use crate::{BanRecord, SsoAccount};
use confab_core::sso::SsoSecret;
use confab_core::switch::{SwitchName, SwitchRecord};

#[async_trait]
impl ControlStore for PgStore {
    async fn create_forum(&self, name: &str, settings: &ForumSettings) -> StoreResult<Forum> {
        let json = serde_json::to_string(settings).map_err(|_| DomainError::internal())?;
        let shard = LogicalShard::for_name(name);
        self.r.server_for(shard)?; // refuse a forum whose shard has no server
        let res: StoreResult<Forum> = control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!("INSERT INTO forums (name, shard, settings, created_at) VALUES ($1, $2, $3, $4) RETURNING {FORUM_COLS}"),
                &[&name, &sh(shard), &json, &confab_core::now_ms()],
            )
            .await?
            .ok_or_else(DomainError::internal)?;
            forum_row(&r)
        });
        match res {
            Err(e) if e.code == ErrorCode::Conflict => Err(DomainError::new(
                ErrorCode::Conflict,
                format!("forum {name} already exists"),
            )),
            other => other,
        }
    }

    async fn forums(&self) -> StoreResult<Vec<Forum>> {
        let forums: Vec<Forum> = control!(self, |c, n| {
            rows(
                &c,
                &n,
                &format!("SELECT {FORUM_COLS} FROM forums ORDER BY name"),
                &[],
            )
            .await?
            .iter()
            .map(forum_row)
            .collect()
        })?;
        let mut m = self.forum_shards.write().unwrap_or_else(|p| p.into_inner());
        for f in &forums {
            m.insert(f.id, f.shard);
        }
        Ok(forums)
    }

    async fn update_forum(&self, id: ForumId, settings: &ForumSettings) -> StoreResult<Forum> {
        let json = serde_json::to_string(settings).map_err(|_| DomainError::internal())?;
        control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!("UPDATE forums SET settings = $1 WHERE id = $2 RETURNING {FORUM_COLS}"),
                &[&json, &id.0],
            )
            .await?
            .ok_or_else(|| DomainError::not_found("forum"))?;
            forum_row(&r)
        })
    }

    async fn set_sso_secret(&self, id: ForumId, secret: Option<&SsoSecret>) -> StoreResult<Forum> {
        let secret = secret.map(|s| s.expose().to_string());
        control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!("UPDATE forums SET sso_secret = $1 WHERE id = $2 RETURNING {FORUM_COLS}"),
                &[&secret, &id.0],
            )
            .await?
            .ok_or_else(|| DomainError::not_found("forum"))?;
            forum_row(&r)
        })
    }

    async fn sso_account(&self, new: SsoAccount) -> StoreResult<Account> {
        // Update, else insert; an insert that loses a race to another node's first sign-in of
        // the same user finds the row on the second round.
        const UPDATE: &str = "UPDATE accounts SET display_name = $1, url = $2, avatar_url = $3 \
             WHERE lower(username COLLATE \"C\") = lower($4 COLLATE \"C\") RETURNING id";
        let mut id = None;
        for _ in 0..2 {
            let found: Option<i64> = control!(self, |c, n| {
                let r = row(
                    &c,
                    &n,
                    UPDATE,
                    &[&new.display_name, &new.url, &new.avatar_url, &new.username],
                )
                .await?;
                Ok(r.map(|r| r.get(0)))
            })?;
            if found.is_some() {
                id = found;
                break;
            }
            let inserted: StoreResult<Option<i64>> = control!(self, |c, n| {
                let r = row(
                    &c,
                    &n,
                    "INSERT INTO accounts (username, email, display_name, password_hash, is_staff, created_at, url, avatar_url) \
                     VALUES ($1, NULL, $2, $3, false, $4, $5, $6) RETURNING id",
                    &[
                        &new.username,
                        &new.display_name,
                        &confab_core::sso::NO_PASSWORD,
                        &confab_core::now_ms(),
                        &new.url,
                        &new.avatar_url,
                    ],
                )
                .await?;
                Ok(r.map(|r| r.get(0)))
            });
            match inserted {
                Err(e) if e.code == ErrorCode::Conflict => continue,
                other => {
                    id = other?;
                    break;
                }
            }
        }
        let id = id.ok_or_else(DomainError::internal)?;
        self.load_account(AccountId(id))
            .await?
            .ok_or_else(DomainError::internal)
    }

    async fn create_account(&self, new: NewAccount) -> StoreResult<Account> {
        let res: StoreResult<i64> = control!(self, |c, n| {
            Ok(row(
                &c,
                &n,
                "INSERT INTO accounts (username, email, display_name, password_hash, is_staff, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&new.username, &new.email, &new.display_name, &new.password_hash, &new.is_staff, &confab_core::now_ms()],
            )
            .await?
            .ok_or_else(DomainError::internal)?
            .get(0))
        });
        let id = match res {
            Err(e) if e.code == ErrorCode::Conflict => {
                return Err(DomainError::new(
                    ErrorCode::Conflict,
                    "username or email is already taken",
                ))
            }
            other => other?,
        };
        self.load_account(AccountId(id))
            .await?
            .ok_or_else(DomainError::internal)
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.load_account(id).await
    }

    async fn accounts(&self, ids: &[AccountId]) -> StoreResult<Vec<Account>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|a| a.0).collect();
        control!(self, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!("SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id = ANY($1)"),
                &[&ids],
            )
            .await?
            .iter()
            .map(account_row)
            .collect())
        })
    }

    async fn credentials(&self, login: &str) -> StoreResult<Option<(Account, String)>> {
        control!(self, |c, n| {
            let Some(r) = row(
                &c,
                &n,
                &format!("SELECT {ACCOUNT_COLS}, a.password_hash FROM accounts a WHERE lower(a.username COLLATE \"C\") = lower($1 COLLATE \"C\") OR lower(a.email COLLATE \"C\") = lower($1 COLLATE \"C\") LIMIT 1"),
                &[&login],
            )
            .await?
            else {
                return Ok(None);
            };
            Ok(Some((account_row(&r), r.get(10))))
        })
    }

    async fn set_moderator(&self, account: AccountId, forum: ForumId, on: bool) -> StoreResult<()> {
        let sql = if on {
            "INSERT INTO forum_moderators (forum_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM forum_moderators WHERE forum_id = $1 AND account_id = $2"
        };
        control!(self, |c, n| {
            exec(&c, &n, sql, &[&forum.0, &account.0]).await?;
            Ok(())
        })
    }

    async fn set_account_email(&self, account: AccountId, email: &str) -> StoreResult<()> {
        control!(self, |c, n| {
            match exec(
                &c,
                &n,
                "UPDATE accounts SET email = $1 WHERE id = $2",
                &[&email, &account.0],
            )
            .await
            {
                Err(e) if e.code == ErrorCode::Conflict => Err(DomainError::new(
                    ErrorCode::Conflict,
                    "that e-mail address belongs to another account",
                )),
                Err(e) => Err(e),
                Ok(0) => Err(DomainError::not_found("account")),
                Ok(_) => Ok(()),
            }
        })
    }

    async fn set_password(
        &self,
        account: AccountId,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        control!(self, |c, n| {
            let changed = exec(
                &c,
                &n,
                "UPDATE accounts SET password_hash = $1, session_gen = session_gen + 1 \
                 WHERE id = $2 AND password_hash = $3",
                &[&new_hash, &account.0, &old_hash],
            )
            .await?;
            Ok(changed == 1)
        })
    }

    async fn end_sessions(&self, account: AccountId) -> StoreResult<()> {
        control!(self, |c, n| {
            exec(
                &c,
                &n,
                "UPDATE accounts SET session_gen = session_gen + 1 WHERE id = $1",
                &[&account.0],
            )
            .await?;
            Ok(())
        })
    }

    async fn add_ban(&self, forum: ForumId, ban: &BanRecord) -> StoreResult<Ban> {
        let created_by = ban.actor.map(|a| a.0);
        let comment_id = ban.comment_id.map(|c| c.0);
        let saved = control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!(
                    "INSERT INTO bans (forum_id, kind, value, reason, expires_at, created_at, shadow, created_by, comment_id, shown) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (forum_id, kind, value) DO UPDATE SET reason = excluded.reason, \
                     expires_at = excluded.expires_at, created_at = excluded.created_at, shadow = excluded.shadow, \
                     created_by = excluded.created_by, comment_id = excluded.comment_id, shown = excluded.shown RETURNING {BAN_COLS}"
                ),
                &[&forum.0, &ban.kind.as_str(), &ban.value, &ban.reason, &ban.expires_at, &confab_core::now_ms(), &ban.shadow,
                  &created_by, &comment_id, &ban.shown],
            )
            .await?
            .ok_or_else(DomainError::internal)?;
            Ok(ban_row(&r))
        })?;
        // The ban lives in the control database and its log entry on the forum's shard: two
        // commits. The ban stands even if the log write fails (logged), never the reverse.
        if let Err(e) = self
            .log_control_action_on(
                forum,
                ban.actor,
                if ban.shadow { "shadow ban" } else { "ban" },
                ban.comment_id,
                &format!("{} {}", ban.kind.as_str(), ban.shown),
            )
            .await
        {
            tracing::warn!(error = %e.reason(), "ban recorded but its moderation-log entry was not");
        }
        Ok(saved)
    }

    async fn remove_ban(
        &self,
        forum: ForumId,
        ban: i64,
        actor: Option<AccountId>,
    ) -> StoreResult<bool> {
        let gone = control!(self, |c, n| {
            Ok(exec(
                &c,
                &n,
                "DELETE FROM bans WHERE forum_id = $1 AND id = $2",
                &[&forum.0, &ban],
            )
            .await?
                > 0)
        })?;
        if gone {
            if let Err(e) = self
                .log_control_action(forum, actor, "unban", &format!("ban {ban}"))
                .await
            {
                tracing::warn!(error = %e.reason(), "ban removed but its moderation-log entry was not");
            }
        }
        Ok(gone)
    }

    async fn bans(&self, forum: ForumId) -> StoreResult<Vec<Ban>> {
        control!(self, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!(
                    "SELECT {BAN_COLS} FROM bans WHERE forum_id = $1 ORDER BY id DESC LIMIT 1000"
                ),
                &[&forum.0],
            )
            .await?
            .iter()
            .map(ban_row)
            .collect())
        })
    }

    async fn ban_state(&self, forum: ForumId, who: &BanSubject, now: i64) -> StoreResult<BanState> {
        let account = who.account.map(|a| a.0.to_string());
        control!(self, |c, n| {
            let matches: Vec<(bool, Option<i64>, Option<String>)> = rows(
                &c,
                &n,
                "SELECT shadow, expires_at, reason FROM bans WHERE forum_id = $1 AND (expires_at IS NULL OR expires_at > $2) AND \
                 ((kind = 'email' AND lower(value COLLATE \"C\") = lower($3 COLLATE \"C\")) OR (kind = 'ip' AND value = $4) OR \
                  (kind = 'account' AND value = $5)) ORDER BY id DESC LIMIT 50",
                &[&forum.0, &now, &who.email, &who.ip_hash, &account],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
            Ok(BanState::from_matches(&matches))
        })
    }

    async fn forum_moderators(&self, forum: ForumId) -> StoreResult<Vec<Account>> {
        control!(self, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!(
                    "SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id IN \
                     (SELECT account_id FROM forum_moderators WHERE forum_id = $1) ORDER BY a.id LIMIT 100"
                ),
                &[&forum.0],
            )
            .await?
            .iter()
            .map(account_row)
            .collect())
        })
    }

    async fn set_staff(&self, account: AccountId, on: bool) -> StoreResult<()> {
        control!(self, |c, n| {
            if exec(
                &c,
                &n,
                "UPDATE accounts SET is_staff = $1 WHERE id = $2",
                &[&on, &account.0],
            )
            .await?
                == 0
            {
                return Err(DomainError::not_found("account"));
            }
            Ok(())
        })
    }

    async fn switches(&self) -> StoreResult<Vec<SwitchRecord>> {
        control!(self, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT name, forum_id, is_on, percent, staff, changed_by, changed_at \
                 FROM switches ORDER BY name, forum_id",
                &[],
            )
            .await?
            .iter()
            .filter_map(|r| {
                switch_record(
                    r.get::<_, &str>(0),
                    r.get(1),
                    r.get(2),
                    r.get::<_, Option<i16>>(3).map(i64::from),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect())
        })
    }

    async fn put_switch(&self, r: &SwitchRecord) -> StoreResult<()> {
        let name = r.name.as_str();
        let forum = switch_forum_id(r.forum);
        let percent: Option<i16> = r.percent.map(|p| i16::from(p.get()));
        control!(self, |c, n| {
            exec(
                &c,
                &n,
                "INSERT INTO switches (name, forum_id, is_on, percent, staff, changed_by, changed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (name, forum_id) DO UPDATE SET is_on = EXCLUDED.is_on, \
                 percent = EXCLUDED.percent, staff = EXCLUDED.staff, \
                 changed_by = EXCLUDED.changed_by, changed_at = EXCLUDED.changed_at",
                &[&name, &forum, &r.on, &percent, &r.staff, &r.changed_by, &r.changed_at],
            )
            .await?;
            Ok(())
        })
    }

    async fn delete_switch(&self, name: SwitchName, forum: Option<ForumId>) -> StoreResult<bool> {
        let forum = switch_forum_id(forum);
        control!(self, |c, n| {
            Ok(exec(
                &c,
                &n,
                "DELETE FROM switches WHERE name = $1 AND forum_id = $2",
                &[&name.as_str(), &forum],
            )
            .await?
                > 0)
        })
    }

    async fn claim_secret(
        &self,
        check: &str,
        now: i64,
        stale_before: i64,
    ) -> StoreResult<Option<String>> {
        control!(self, |c, n| {
            // One statement: the claim succeeds or leaves the row as it was.
            let claimed = exec(
                &c,
                &n,
                "UPDATE deployment SET secret_check = $1, secret_seen_at = $2 \
                 WHERE secret_check IS NULL OR secret_check = $1 OR secret_seen_at < $3",
                &[&check, &now, &stale_before],
            )
            .await?;
            if claimed > 0 {
                return Ok(None);
            }
            let r = row(&c, &n, "SELECT secret_check FROM deployment", &[]).await?;
            Ok(r.and_then(|r| r.get::<_, Option<String>>(0)))
        })
    }
}

//! Control data: forums, accounts, moderators and bans.

use super::*;
use crate::rules::{switch_forum_id, switch_record};
use crate::{BanRecord, SsoAccount};
use confab_core::sso::SsoSecret;
use confab_core::switch::{SwitchName, SwitchRecord};

#[async_trait]
impl ControlStore for SqliteStore {
    async fn create_forum(&self, name: &str, settings: &ForumSettings) -> StoreResult<Forum> {
        let name = name.to_string();
        let json = serde_json::to_string(settings).map_err(|_| DomainError::internal())?;
        self.pool
            .write(move |c, n| {
                let shard = LogicalShard::for_name(&name);
                let res = exec(
                    c,
                    n,
                    "INSERT INTO forums (name, shard, settings, created_at) VALUES (?, ?, ?, ?)",
                    &[
                        text(&name),
                        int(i64::from(shard.get())),
                        text(&json),
                        int(confab_core::now_ms()),
                    ],
                );
                match res {
                    Err(e) if e.code == ErrorCode::Conflict => {
                        return Err(DomainError::new(
                            ErrorCode::Conflict,
                            format!("forum {name} already exists"),
                        ))
                    }
                    other => other?,
                };
                let id = c.last_insert_rowid();
                row(
                    c,
                    n,
                    &format!("SELECT {FORUM_COLS} FROM forums WHERE id = ?"),
                    &[int(id)],
                    forum_row,
                )?
                .ok_or_else(DomainError::internal)
            })
            .await
    }

    async fn forums(&self) -> StoreResult<Vec<Forum>> {
        self.pool
            .read(|c, n| {
                rows(
                    c,
                    n,
                    &format!("SELECT {FORUM_COLS} FROM forums ORDER BY name"),
                    &[],
                    forum_row,
                )
            })
            .await
    }

    async fn update_forum(&self, id: ForumId, settings: &ForumSettings) -> StoreResult<Forum> {
        let json = serde_json::to_string(settings).map_err(|_| DomainError::internal())?;
        self.pool
            .write(move |c, n| {
                if exec(
                    c,
                    n,
                    "UPDATE forums SET settings = ? WHERE id = ?",
                    &[text(&json), int(id.0)],
                )? == 0
                {
                    return Err(DomainError::not_found("forum"));
                }
                row(
                    c,
                    n,
                    &format!("SELECT {FORUM_COLS} FROM forums WHERE id = ?"),
                    &[int(id.0)],
                    forum_row,
                )?
                .ok_or_else(DomainError::internal)
            })
            .await
    }

    async fn set_sso_secret(&self, id: ForumId, secret: Option<&SsoSecret>) -> StoreResult<Forum> {
        let secret = secret.map(|s| s.expose().to_string());
        self.pool
            .write(move |c, n| {
                if exec(
                    c,
                    n,
                    "UPDATE forums SET sso_secret = ? WHERE id = ?",
                    &[opt_text(secret.as_deref()), int(id.0)],
                )? == 0
                {
                    return Err(DomainError::not_found("forum"));
                }
                row(
                    c,
                    n,
                    &format!("SELECT {FORUM_COLS} FROM forums WHERE id = ?"),
                    &[int(id.0)],
                    forum_row,
                )?
                .ok_or_else(DomainError::internal)
            })
            .await
    }

    async fn sso_account(&self, new: SsoAccount) -> StoreResult<Account> {
        self.pool
            .write(move |c, n| {
                let profile = [
                    text(&new.display_name),
                    opt_text(new.url.as_deref()),
                    opt_text(new.avatar_url.as_deref()),
                    text(&new.username),
                ];
                let changed = exec(
                    c,
                    n,
                    "UPDATE accounts SET display_name = ?, url = ?, avatar_url = ? WHERE username = ?",
                    &profile,
                )?;
                if changed == 0 {
                    exec(
                        c,
                        n,
                        "INSERT INTO accounts (username, email, display_name, password_hash, is_staff, created_at, url, avatar_url) \
                         VALUES (?, NULL, ?, ?, 0, ?, ?, ?)",
                        &[
                            text(&new.username),
                            text(&new.display_name),
                            text(confab_core::sso::NO_PASSWORD),
                            int(confab_core::now_ms()),
                            opt_text(new.url.as_deref()),
                            opt_text(new.avatar_url.as_deref()),
                        ],
                    )?;
                }
                let id: Option<i64> = row(
                    c,
                    n,
                    "SELECT id FROM accounts WHERE username = ?",
                    &[text(&new.username)],
                    |r| r.get(0),
                )?;
                let id = id.ok_or_else(DomainError::internal)?;
                load_account(c, n, AccountId(id))?.ok_or_else(DomainError::internal)
            })
            .await
    }

    async fn create_account(&self, new: NewAccount) -> StoreResult<Account> {
        self.pool
            .write(move |c, n| {
                let res = exec(
                    c,
                    n,
                    "INSERT INTO accounts (username, email, display_name, password_hash, is_staff, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                    &[
                        text(&new.username),
                        opt_text(new.email.as_deref()),
                        text(&new.display_name),
                        text(&new.password_hash),
                        int(i64::from(new.is_staff)),
                        int(confab_core::now_ms()),
                    ],
                );
                match res {
                    Err(e) if e.code == ErrorCode::Conflict => {
                        return Err(DomainError::new(ErrorCode::Conflict, "username or email is already taken"))
                    }
                    other => other?,
                };
                load_account(c, n, AccountId(c.last_insert_rowid()))?.ok_or_else(DomainError::internal)
            })
            .await
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.pool.read(move |c, n| load_account(c, n, id)).await
    }

    async fn accounts(&self, ids: &[AccountId]) -> StoreResult<Vec<Account>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args: Vec<Value> = ids.iter().map(|a| int(a.0)).collect();
        self.pool
            .read(move |c, n| {
                let sql = format!(
                    "SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id IN ({})",
                    placeholders(args.len())
                );
                rows(c, n, &sql, &args, account_row)
            })
            .await
    }

    async fn credentials(&self, login: &str) -> StoreResult<Option<(Account, String)>> {
        let login = login.to_string();
        self.pool
            .read(move |c, n| {
                let found: Option<(i64, String)> = row(
                    c,
                    n,
                    "SELECT id, password_hash FROM accounts WHERE username = ?1 OR email = ?1",
                    &[text(&login)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let Some((id, hash)) = found else {
                    return Ok(None);
                };
                Ok(load_account(c, n, AccountId(id))?.map(|a| (a, hash)))
            })
            .await
    }

    async fn set_moderator(&self, account: AccountId, forum: ForumId, on: bool) -> StoreResult<()> {
        self.pool
            .write(move |c, n| {
                let sql = if on {
                    "INSERT OR IGNORE INTO forum_moderators (forum_id, account_id) VALUES (?, ?)"
                } else {
                    "DELETE FROM forum_moderators WHERE forum_id = ? AND account_id = ?"
                };
                exec(c, n, sql, &[int(forum.0), int(account.0)])?;
                Ok(())
            })
            .await
    }

    async fn set_account_email(&self, account: AccountId, email: &str) -> StoreResult<()> {
        let email = email.to_string();
        self.pool
            .write(move |c, n| {
                match exec(
                    c,
                    n,
                    "UPDATE accounts SET email = ? WHERE id = ?",
                    &[text(&email), int(account.0)],
                ) {
                    Err(e) if e.code == ErrorCode::Conflict => Err(DomainError::new(
                        ErrorCode::Conflict,
                        "that e-mail address belongs to another account",
                    )),
                    Err(e) => Err(e),
                    Ok(0) => Err(DomainError::not_found("account")),
                    Ok(_) => Ok(()),
                }
            })
            .await
    }

    async fn set_password(
        &self,
        account: AccountId,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        let (old_hash, new_hash) = (old_hash.to_string(), new_hash.to_string());
        self.pool
            .write(move |c, n| {
                let changed = exec(
                    c,
                    n,
                    "UPDATE accounts SET password_hash = ?, session_gen = session_gen + 1 \
                     WHERE id = ? AND password_hash = ?",
                    &[text(&new_hash), int(account.0), text(&old_hash)],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn end_sessions(&self, account: AccountId) -> StoreResult<()> {
        self.pool
            .write(move |c, n| {
                exec(
                    c,
                    n,
                    "UPDATE accounts SET session_gen = session_gen + 1 WHERE id = ?",
                    &[int(account.0)],
                )?;
                Ok(())
            })
            .await
    }

    async fn add_ban(&self, forum: ForumId, ban: &BanRecord) -> StoreResult<Ban> {
        let ban = ban.clone();
        self.pool
            .write(move |c, n| {
                let now = confab_core::now_ms();
                exec(
                    c,
                    n,
                    "INSERT INTO bans (forum_id, kind, value, reason, expires_at, created_at, shadow, created_by, comment_id, shown) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (forum_id, kind, value) DO UPDATE SET reason = excluded.reason, \
                     expires_at = excluded.expires_at, created_at = excluded.created_at, shadow = excluded.shadow, \
                     created_by = excluded.created_by, comment_id = excluded.comment_id, shown = excluded.shown",
                    &[
                        int(forum.0),
                        text(ban.kind.as_str()),
                        text(&ban.value),
                        opt_text(ban.reason.as_deref()),
                        ban.expires_at.map_or(Value::Null, int),
                        int(now),
                        int(i64::from(ban.shadow)),
                        ban.actor.map_or(Value::Null, |a| int(a.0)),
                        ban.comment_id.map_or(Value::Null, |c| int(c.0)),
                        text(&ban.shown),
                    ],
                )?;
                let row_ = row(
                    c,
                    n,
                    &format!("SELECT {BAN_COLS} FROM bans WHERE forum_id = ? AND kind = ? AND value = ?"),
                    &[int(forum.0), text(ban.kind.as_str()), text(&ban.value)],
                    ban_row,
                )?
                .ok_or_else(DomainError::internal)?;
                let what = if ban.shadow { "shadow ban" } else { "ban" };
                log_action(c, n, forum, ban.actor, what, ban.comment_id, &format!("{} {}", ban.kind.as_str(), ban.shown))?;
                Ok(row_)
            })
            .await
    }

    async fn remove_ban(
        &self,
        forum: ForumId,
        ban: i64,
        actor: Option<AccountId>,
    ) -> StoreResult<bool> {
        self.pool
            .write(move |c, n| {
                let gone = exec(
                    c,
                    n,
                    "DELETE FROM bans WHERE forum_id = ? AND id = ?",
                    &[int(forum.0), int(ban)],
                )? > 0;
                if gone {
                    log_action(c, n, forum, actor, "unban", None, &format!("ban {ban}"))?;
                }
                Ok(gone)
            })
            .await
    }

    async fn bans(&self, forum: ForumId) -> StoreResult<Vec<Ban>> {
        self.pool
            .read(move |c, n| {
                rows(
                    c,
                    n,
                    &format!("SELECT {BAN_COLS} FROM bans WHERE forum_id = ? ORDER BY id DESC LIMIT 1000"),
                    &[int(forum.0)],
                    ban_row,
                )
            })
            .await
    }

    async fn ban_state(&self, forum: ForumId, who: &BanSubject, now: i64) -> StoreResult<BanState> {
        let args = vec![
            int(forum.0),
            int(now),
            opt_text(who.email.as_deref()),
            opt_text(who.ip_hash.as_deref()),
            who.account.map_or(Value::Null, |a| text(&a.0.to_string())),
        ];
        self.pool
            .read(move |c, n| {
                let matches = rows(
                    c,
                    n,
                    "SELECT shadow, expires_at, reason FROM bans WHERE forum_id = ? AND (expires_at IS NULL OR expires_at > ?) AND \
                     ((kind = 'email' AND value = ? COLLATE NOCASE) OR (kind = 'ip' AND value = ?) OR \
                      (kind = 'account' AND value = ?)) ORDER BY id DESC LIMIT 50",
                    &args,
                    |r| Ok((r.get::<_, i64>(0)? != 0, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<String>>(2)?)),
                )?;
                Ok(BanState::from_matches(&matches))
            })
            .await
    }

    async fn forum_moderators(&self, forum: ForumId) -> StoreResult<Vec<Account>> {
        self.pool
            .read(move |c, n| outbox::forum_moderators(c, n, forum))
            .await
    }

    async fn set_staff(&self, account: AccountId, on: bool) -> StoreResult<()> {
        self.pool
            .write(move |c, n| {
                if exec(
                    c,
                    n,
                    "UPDATE accounts SET is_staff = ? WHERE id = ?",
                    &[int(i64::from(on)), int(account.0)],
                )? == 0
                {
                    return Err(DomainError::not_found("account"));
                }
                Ok(())
            })
            .await
    }

    async fn switches(&self) -> StoreResult<Vec<SwitchRecord>> {
        self.pool
            .read(|c, n| {
                let all = rows(
                    c,
                    n,
                    "SELECT name, forum_id, is_on, percent, staff, changed_by, changed_at \
                     FROM switches ORDER BY name, forum_id",
                    &[],
                    |r| {
                        Ok(switch_record(
                            &r.get::<_, String>(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ))
                    },
                )?;
                Ok(all.into_iter().flatten().collect())
            })
            .await
    }

    async fn put_switch(&self, r: &SwitchRecord) -> StoreResult<()> {
        let args = vec![
            text(r.name.as_str()),
            int(switch_forum_id(r.forum)),
            int(i64::from(r.on)),
            r.percent.map_or(Value::Null, |p| int(i64::from(p.get()))),
            int(i64::from(r.staff)),
            text(&r.changed_by),
            int(r.changed_at),
        ];
        self.pool
            .write(move |c, n| {
                exec(
                    c,
                    n,
                    "INSERT OR REPLACE INTO switches \
                     (name, forum_id, is_on, percent, staff, changed_by, changed_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    &args,
                )?;
                Ok(())
            })
            .await
    }

    async fn delete_switch(&self, name: SwitchName, forum: Option<ForumId>) -> StoreResult<bool> {
        let forum = switch_forum_id(forum);
        self.pool
            .write(move |c, n| {
                Ok(exec(
                    c,
                    n,
                    "DELETE FROM switches WHERE name = ? AND forum_id = ?",
                    &[text(name.as_str()), int(forum)],
                )? > 0)
            })
            .await
    }
}

//! The embedded backend: one SQLite file holds the control tables and every shard's tables.
//!
//! Rows keep their logical shard in a `shard` column even here, so `confab migrate-data` can
//! later copy them to a sharded PostgreSQL deployment shard by shard.

mod outbox;
mod pool;
mod schema;

use crate::{
    like_pattern, CommentEdit, ModQuery, NewAccount, NewComment, NewTask, Posted, Queue, ReadFrom,
    ReplyWatch, StatusChange, Store, StoreResult, SubState, Subscription, Task, TaskState,
    TaskWhen, ThreadPatch, Visibility, VoteCounts,
};
use async_trait::async_trait;
use confab_core::cursor::{Cursor, Sort};
use confab_core::id::{self, AccountId, CommentId, ForumId, IdGenerator, LogicalShard, ThreadId};
use confab_core::ident::Ident;
use confab_core::model::{
    Account, Author, Ban, BanKind, BanSubject, Comment, CommentStatus, Forum, ForumSettings,
    ModLogEntry, Thread,
};
use confab_core::{DomainError, ErrorCode};
use pool::{db_err, Counter, Pool};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::Arc;

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    pool: Pool,
    ids: Arc<IdGenerator>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path, readers: usize) -> StoreResult<SqliteStore> {
        let pool = Pool::open(path, readers, migrate)?;
        Ok(SqliteStore {
            pool,
            ids: Arc::new(IdGenerator::new()),
        })
    }

    /// Applies pending migrations to the file and returns the versions applied.
    pub fn migrate_file(path: &Path) -> StoreResult<Vec<i64>> {
        let mut conn = Connection::open(path).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        migrate_report(&mut conn)
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    migrate_report(conn).map(|_| ())
}

fn migrate_report(conn: &mut Connection) -> StoreResult<Vec<i64>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(db_err)?;
    let mut applied = Vec::new();
    for (version, sql) in schema::MIGRATIONS {
        let done: Option<i64> = conn
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?",
                [version],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        if done.is_some() {
            continue;
        }
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute_batch(sql).map_err(db_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
            params![version, confab_core::now_ms()],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        applied.push(*version);
    }
    Ok(applied)
}

// ---------------------------------------------------------------- row mapping

const COMMENT_COLS: &str = "id, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
    guest_email, guest_url, body_md, body_html, status, likes, dislikes, reply_count, flag_count, created_at, \
    edited_at, ip_hash";

fn comment_row(r: &Row<'_>) -> rusqlite::Result<Comment> {
    let account: Option<i64> = r.get(5)?;
    let author = match account {
        Some(a) => Author::Account(AccountId(a)),
        None => Author::Guest {
            name: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
            email: r.get(8)?,
            url: r.get(9)?,
        },
    };
    let status: String = r.get(12)?;
    Ok(Comment {
        id: CommentId(r.get(0)?),
        thread_id: ThreadId(r.get(1)?),
        forum_id: ForumId(r.get(2)?),
        parent_id: r.get::<_, Option<i64>>(3)?.map(CommentId),
        depth: r.get(4)?,
        author,
        anon_id: r.get(6)?,
        body_md: r.get(10)?,
        body_html: r.get(11)?,
        status: CommentStatus::parse(&status).unwrap_or(CommentStatus::Pending),
        likes: r.get(13)?,
        dislikes: r.get(14)?,
        reply_count: r.get(15)?,
        flag_count: r.get(16)?,
        created_at: r.get(17)?,
        edited_at: r.get(18)?,
        ip_hash: r.get(19)?,
    })
}

const THREAD_COLS: &str =
    "id, forum_id, ident, url, title, closed, comment_count, hidden_count, seq, created_at";

fn thread_row(r: &Row<'_>) -> rusqlite::Result<Thread> {
    Ok(Thread {
        id: ThreadId(r.get(0)?),
        forum_id: ForumId(r.get(1)?),
        ident: Ident::from_stored(r.get(2)?),
        url: r.get(3)?,
        title: r.get(4)?,
        closed: r.get(5)?,
        comment_count: r.get(6)?,
        hidden_count: r.get(7)?,
        seq: r.get(8)?,
        created_at: r.get(9)?,
    })
}

fn forum_row(r: &Row<'_>) -> rusqlite::Result<Forum> {
    let settings: String = r.get(3)?;
    let settings = serde_json::from_str(&settings).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let shard: u16 = r.get(2)?;
    Ok(Forum {
        id: ForumId(r.get(0)?),
        name: r.get(1)?,
        shard: LogicalShard::new(shard).unwrap_or_else(|| LogicalShard::for_name("")),
        settings,
        created_at: r.get(4)?,
    })
}

const ACCOUNT_COLS: &str = "a.id, a.username, a.email, a.display_name, a.is_staff, a.created_at, \
    (SELECT group_concat(m.forum_id) FROM forum_moderators m WHERE m.account_id = a.id), a.session_gen";

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    let mods: Option<String> = r.get(6)?;
    Ok(Account {
        id: AccountId(r.get(0)?),
        username: r.get(1)?,
        email: r.get(2)?,
        display_name: r.get(3)?,
        is_staff: r.get(4)?,
        created_at: r.get(5)?,
        session_gen: r.get(7)?,
        moderates: mods
            .unwrap_or_default()
            .split(',')
            .filter_map(|s| s.parse().ok())
            .map(ForumId)
            .collect(),
    })
}

fn ban_row(r: &Row<'_>) -> rusqlite::Result<Ban> {
    let kind: String = r.get(1)?;
    Ok(Ban {
        id: r.get(0)?,
        kind: BanKind::parse(&kind).unwrap_or(BanKind::Email),
        value: r.get(2)?,
        reason: r.get(3)?,
        expires_at: r.get(4)?,
        created_at: r.get(5)?,
    })
}

// ---------------------------------------------------------------- statement helpers

fn rows<T>(
    conn: &Connection,
    n: &Counter,
    sql: &str,
    args: &[Value],
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    n.add(1);
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    let it = st
        .query_map(params_from_iter(args.iter()), map)
        .map_err(db_err)?;
    it.collect::<rusqlite::Result<Vec<T>>>().map_err(db_err)
}

fn row<T>(
    conn: &Connection,
    n: &Counter,
    sql: &str,
    args: &[Value],
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Option<T>> {
    n.add(1);
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    st.query_row(params_from_iter(args.iter()), map)
        .optional()
        .map_err(db_err)
}

fn exec(conn: &Connection, n: &Counter, sql: &str, args: &[Value]) -> StoreResult<usize> {
    n.add(1);
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    st.execute(params_from_iter(args.iter())).map_err(db_err)
}

fn int(v: i64) -> Value {
    Value::Integer(v)
}
fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}
fn opt_text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, text)
}
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Appends the visibility condition for `vis`, pushing its arguments.
fn vis_sql(vis: &Visibility, args: &mut Vec<Value>) -> &'static str {
    match vis {
        Visibility::Public => "(status = 'approved' OR reply_count > 0)",
        Visibility::Author { account, anon } => {
            args.push(account.map_or(Value::Null, |a| int(a.0)));
            args.push(opt_text(anon.as_deref()));
            "(status = 'approved' OR reply_count > 0 OR \
             (status IN ('pending', 'spam') AND (account_id = ? OR anon_id = ?)))"
        }
        Visibility::Moderator => "(status <> 'deleted' OR reply_count > 0)",
    }
}

fn load_comment(conn: &Connection, n: &Counter, id: CommentId) -> StoreResult<Option<Comment>> {
    row(
        conn,
        n,
        &format!("SELECT {COMMENT_COLS} FROM comments WHERE id = ?"),
        &[int(id.0)],
        comment_row,
    )
}

fn load_thread(conn: &Connection, n: &Counter, id: ThreadId) -> StoreResult<Option<Thread>> {
    row(
        conn,
        n,
        &format!("SELECT {THREAD_COLS} FROM threads WHERE id = ?"),
        &[int(id.0)],
        thread_row,
    )
}

fn load_account(conn: &Connection, n: &Counter, id: AccountId) -> StoreResult<Option<Account>> {
    row(
        conn,
        n,
        &format!("SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id = ?"),
        &[int(id.0)],
        account_row,
    )
}

fn log_action(
    conn: &Connection,
    n: &Counter,
    forum: ForumId,
    actor: Option<AccountId>,
    action: &str,
    comment: Option<CommentId>,
    detail: &str,
) -> StoreResult<()> {
    exec(
        conn,
        n,
        "INSERT INTO mod_log (forum_id, actor, action, comment_id, detail, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        &[
            int(forum.0),
            actor.map_or(Value::Null, |a| int(a.0)),
            text(action),
            comment.map_or(Value::Null, |c| int(c.0)),
            text(detail),
            int(confab_core::now_ms()),
        ],
    )?;
    Ok(())
}

/// Moves a comment's contribution to its thread and parent counters from `old` to `new` status;
/// returns the thread as it is now (with its new sequence number).
fn shift_counters(
    conn: &Connection,
    n: &Counter,
    c: &Comment,
    old: CommentStatus,
    new: CommentStatus,
) -> StoreResult<Thread> {
    let approved = |s: CommentStatus| i64::from(s == CommentStatus::Approved);
    let hidden = |s: CommentStatus| i64::from(s.is_hidden());
    let d_app = approved(new) - approved(old);
    let d_hid = hidden(new) - hidden(old);
    let thread = row(
        conn,
        n,
        &format!(
            "UPDATE threads SET comment_count = comment_count + ?, hidden_count = hidden_count + ?, seq = seq + 1 \
             WHERE id = ? RETURNING {THREAD_COLS}"
        ),
        &[int(d_app), int(d_hid), int(c.thread_id.0)],
        thread_row,
    )?
    .ok_or_else(DomainError::internal)?;
    if let (Some(p), true) = (c.parent_id, d_app != 0) {
        exec(
            conn,
            n,
            "UPDATE comments SET reply_count = reply_count + ? WHERE id = ?",
            &[int(d_app), int(p.0)],
        )?;
    }
    Ok(thread)
}

/// Moves a thread's sequence number on by one and returns it (in the change's transaction, so
/// each change has its own number even under concurrent writes).
fn bump_seq(conn: &Connection, n: &Counter, thread: ThreadId) -> StoreResult<i64> {
    row(
        conn,
        n,
        "UPDATE threads SET seq = seq + 1 WHERE id = ? RETURNING seq",
        &[int(thread.0)],
        |r| r.get(0),
    )?
    .ok_or_else(DomainError::internal)
}

fn day_ms() -> i64 {
    86_400_000
}

#[async_trait]
impl Store for SqliteStore {
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
                    "SELECT id, name, shard, settings, created_at FROM forums WHERE id = ?",
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
                    "SELECT id, name, shard, settings, created_at FROM forums ORDER BY name",
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
                    "SELECT id, name, shard, settings, created_at FROM forums WHERE id = ?",
                    &[int(id.0)],
                    forum_row,
                )?
                .ok_or_else(DomainError::internal)
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

    async fn enqueue_task(&self, shard: LogicalShard, task: NewTask) -> StoreResult<()> {
        let ids = self.ids.clone();
        self.pool
            .write(move |c, n| {
                outbox::insert_task(c, n, &ids, shard, &task, &task.payload)?;
                Ok(())
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

    async fn add_ban(
        &self,
        forum: ForumId,
        kind: BanKind,
        value: &str,
        reason: Option<&str>,
        expires_at: Option<i64>,
        actor: Option<AccountId>,
    ) -> StoreResult<Ban> {
        let (value, reason) = (value.to_string(), reason.map(str::to_string));
        self.pool
            .write(move |c, n| {
                let now = confab_core::now_ms();
                exec(
                    c,
                    n,
                    "INSERT INTO bans (forum_id, kind, value, reason, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (forum_id, kind, value) DO UPDATE SET reason = excluded.reason, \
                     expires_at = excluded.expires_at, created_at = excluded.created_at",
                    &[
                        int(forum.0),
                        text(kind.as_str()),
                        text(&value),
                        opt_text(reason.as_deref()),
                        expires_at.map_or(Value::Null, int),
                        int(now),
                    ],
                )?;
                let ban = row(
                    c,
                    n,
                    "SELECT id, kind, value, reason, expires_at, created_at FROM bans \
                     WHERE forum_id = ? AND kind = ? AND value = ?",
                    &[int(forum.0), text(kind.as_str()), text(&value)],
                    ban_row,
                )?
                .ok_or_else(DomainError::internal)?;
                log_action(c, n, forum, actor, "ban", None, &format!("{} {}", kind.as_str(), value))?;
                Ok(ban)
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
                    "SELECT id, kind, value, reason, expires_at, created_at FROM bans WHERE forum_id = ? ORDER BY id DESC LIMIT 1000",
                    &[int(forum.0)],
                    ban_row,
                )
            })
            .await
    }

    async fn is_banned(&self, forum: ForumId, who: &BanSubject, now: i64) -> StoreResult<bool> {
        let args = vec![
            int(forum.0),
            int(now),
            opt_text(who.email.as_deref()),
            opt_text(who.ip_hash.as_deref()),
            who.account.map_or(Value::Null, |a| text(&a.0.to_string())),
        ];
        self.pool
            .read(move |c, n| {
                Ok(row(
                    c,
                    n,
                    "SELECT 1 FROM bans WHERE forum_id = ? AND (expires_at IS NULL OR expires_at > ?) AND \
                     ((kind = 'email' AND value = ? COLLATE NOCASE) OR (kind = 'ip' AND value = ?) OR \
                      (kind = 'account' AND value = ?)) LIMIT 1",
                    &args,
                    |r| r.get::<_, i64>(0),
                )?
                .is_some())
            })
            .await
    }

    async fn thread_by_ident(
        &self,
        forum: &Forum,
        ident: &Ident,
        _from: ReadFrom,
    ) -> StoreResult<Option<Thread>> {
        let args = vec![int(forum.id.0), text(ident.as_str())];
        self.pool
            .read(move |c, n| {
                row(
                    c,
                    n,
                    &format!("SELECT {THREAD_COLS} FROM threads WHERE forum_id = ? AND ident = ?"),
                    &args,
                    thread_row,
                )
            })
            .await
    }

    async fn thread(&self, id: ThreadId, _from: ReadFrom) -> StoreResult<Option<Thread>> {
        self.pool.read(move |c, n| load_thread(c, n, id)).await
    }

    async fn counts(&self, forum: &Forum, idents: &[Ident]) -> StoreResult<Vec<(Ident, i64)>> {
        if idents.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![int(forum.id.0)];
        args.extend(idents.iter().map(|i| text(i.as_str())));
        self.pool
            .read(move |c, n| {
                let sql = format!(
                    "SELECT ident, comment_count FROM threads WHERE forum_id = ? AND ident IN ({})",
                    placeholders(args.len() - 1)
                );
                rows(c, n, &sql, &args, |r| {
                    Ok((Ident::from_stored(r.get(0)?), r.get(1)?))
                })
            })
            .await
    }

    async fn update_thread(
        &self,
        forum: &Forum,
        id: ThreadId,
        patch: ThreadPatch,
        actor: Option<AccountId>,
    ) -> StoreResult<Thread> {
        let forum_id = forum.id;
        self.pool
            .write(move |c, n| {
                let t = load_thread(c, n, id)?
                    .filter(|t| t.forum_id == forum_id)
                    .ok_or_else(|| DomainError::not_found("thread"))?;
                let closed = patch.closed.unwrap_or(t.closed);
                let title = patch.title.clone().or_else(|| t.title.clone());
                if closed == t.closed && title == t.title {
                    return Ok(t); // Nothing changed: the sequence number does not move either.
                }
                exec(
                    c,
                    n,
                    "UPDATE threads SET closed = ?, title = ?, seq = seq + 1 WHERE id = ?",
                    &[
                        int(i64::from(closed)),
                        opt_text(title.as_deref()),
                        int(id.0),
                    ],
                )?;
                if closed != t.closed {
                    log_action(
                        c,
                        n,
                        forum_id,
                        actor,
                        if closed { "close" } else { "open" },
                        None,
                        &format!("thread {id} {}", t.ident.as_str()),
                    )?;
                }
                load_thread(c, n, id)?.ok_or_else(DomainError::internal)
            })
            .await
    }

    async fn top_level(
        &self,
        thread: &Thread,
        vis: &Visibility,
        sort: Sort,
        cursor: Option<Cursor>,
        limit: usize,
        _from: ReadFrom,
    ) -> StoreResult<Vec<Comment>> {
        let mut args = vec![int(thread.id.0)];
        let vis = vis_sql(vis, &mut args);
        let mut sql = format!("SELECT {COMMENT_COLS} FROM comments WHERE thread_id = ? AND parent_id IS NULL AND {vis}");
        let order = match sort {
            Sort::Best => {
                if let Some(c) = cursor {
                    sql.push_str(" AND (score < ? OR (score = ? AND id > ?))");
                    args.extend([int(c.score), int(c.score), int(c.id)]);
                }
                " ORDER BY score DESC, id ASC"
            }
            Sort::Newest => {
                if let Some(c) = cursor {
                    sql.push_str(" AND id < ?");
                    args.push(int(c.id));
                }
                " ORDER BY id DESC"
            }
            Sort::Oldest => {
                if let Some(c) = cursor {
                    sql.push_str(" AND id > ?");
                    args.push(int(c.id));
                }
                " ORDER BY id ASC"
            }
        };
        sql.push_str(order);
        sql.push_str(" LIMIT ?");
        args.push(int(limit as i64));
        self.pool
            .read(move |c, n| rows(c, n, &sql, &args, comment_row))
            .await
    }

    async fn replies(
        &self,
        thread: &Thread,
        parents: &[CommentId],
        vis: &Visibility,
        after: Option<CommentId>,
        per_parent: usize,
        _from: ReadFrom,
    ) -> StoreResult<Vec<Comment>> {
        if parents.is_empty() || per_parent == 0 {
            return Ok(Vec::new());
        }
        // One statement: a UNION ALL of per-parent index range scans, each with its own LIMIT,
        // so the cost is bounded by parents x per_parent whatever the thread's size.
        let mut args = Vec::with_capacity(parents.len() * 6);
        let mut parts = Vec::with_capacity(parents.len());
        for p in parents {
            args.push(int(thread.id.0));
            args.push(int(p.0));
            let v = vis_sql(vis, &mut args);
            let after_sql = if let Some(a) = after {
                args.push(int(a.0));
                " AND id > ?"
            } else {
                ""
            };
            args.push(int(per_parent as i64));
            parts.push(format!(
                "SELECT * FROM (SELECT {COMMENT_COLS} FROM comments WHERE thread_id = ? AND parent_id = ? AND {v}{after_sql} \
                 ORDER BY id LIMIT ?)"
            ));
        }
        let sql = parts.join(" UNION ALL ");
        self.pool
            .read(move |c, n| rows(c, n, &sql, &args, comment_row))
            .await
    }

    async fn comment(&self, id: CommentId, _from: ReadFrom) -> StoreResult<Option<Comment>> {
        self.pool.read(move |c, n| load_comment(c, n, id)).await
    }

    async fn has_hidden_by(&self, thread: &Thread, vis: &Visibility) -> StoreResult<bool> {
        let Visibility::Author { account, anon } = vis else {
            return Ok(false);
        };
        let args = vec![
            int(thread.id.0),
            account.map_or(Value::Null, |a| int(a.0)),
            opt_text(anon.as_deref()),
        ];
        self.pool
            .read(move |c, n| {
                Ok(row(
                    c,
                    n,
                    "SELECT 1 FROM comments WHERE thread_id = ? AND status IN ('pending', 'spam') \
                     AND (account_id = ? OR anon_id = ?) LIMIT 1",
                    &args,
                    |r| r.get::<_, i64>(0),
                )?
                .is_some())
            })
            .await
    }

    async fn post_comment(&self, new: NewComment) -> StoreResult<Posted> {
        let ids = self.ids.clone();
        self.pool
            .write(move |c, n| insert_comment(c, n, &ids, new))
            .await
    }

    async fn edit_comment(&self, id: CommentId, edit: &CommentEdit) -> StoreResult<(Comment, i64)> {
        let edit = edit.clone();
        self.pool
            .write(move |c, n| {
                let old = load_comment(c, n, id)?
                    .filter(|cm| cm.status != CommentStatus::Deleted)
                    .ok_or_else(|| DomainError::not_found("comment"))?;
                let status = edit.status_after(old.status);
                exec(
                    c,
                    n,
                    "UPDATE comments SET body_md = ?, body_html = ?, edited_at = ?, status = ? WHERE id = ?",
                    &[text(&edit.body_md), text(&edit.body_html), int(edit.now), text(status.as_str()), int(id.0)],
                )?;
                let seq = if status == old.status { bump_seq(c, n, old.thread_id)? } else { shift_counters(c, n, &old, old.status, status)?.seq };
                if let Some((forum, actor)) = edit.logged_by {
                    log_action(c, n, forum, Some(actor), "edit", Some(id), &old.body_md)?;
                }
                let cm = load_comment(c, n, id)?.ok_or_else(DomainError::internal)?;
                Ok((cm, seq))
            })
            .await
    }

    async fn set_status(
        &self,
        forum: &Forum,
        ids: &[CommentId],
        status: CommentStatus,
        actor: Option<AccountId>,
        action: &str,
        tasks: Vec<NewTask>,
    ) -> StoreResult<Vec<StatusChange>> {
        let (ids, action, forum_id, shard) =
            (ids.to_vec(), action.to_string(), forum.id, forum.shard);
        let idgen = self.ids.clone();
        self.pool
            .write(move |c, n| {
                let mut changes = Vec::new();
                for id in ids {
                    let Some(cm) = load_comment(c, n, id)?.filter(|cm| cm.forum_id == forum_id)
                    else {
                        return Err(DomainError::not_found(&format!("comment {id}")));
                    };
                    // Approving a comment also dismisses its flags (a moderator looked at it).
                    let dismiss = status == CommentStatus::Approved && cm.flag_count > 0;
                    if dismiss {
                        exec(
                            c,
                            n,
                            "UPDATE comments SET flag_count = 0 WHERE id = ?",
                            &[int(id.0)],
                        )?;
                        exec(c, n, "DELETE FROM flags WHERE comment_id = ?", &[int(id.0)])?;
                    }
                    if cm.status == status {
                        if dismiss {
                            log_action(
                                c,
                                n,
                                forum_id,
                                actor,
                                "dismiss_flags",
                                Some(id),
                                &format!("{} flags", cm.flag_count),
                            )?;
                            let old = cm.status;
                            changes.push(StatusChange {
                                comment: Comment {
                                    flag_count: 0,
                                    ..cm
                                },
                                old,
                                thread_seq: None,
                            });
                        }
                        continue;
                    }
                    exec(
                        c,
                        n,
                        "UPDATE comments SET status = ? WHERE id = ?",
                        &[text(status.as_str()), int(id.0)],
                    )?;
                    let seq = shift_counters(c, n, &cm, cm.status, status)?.seq;
                    log_action(
                        c,
                        n,
                        forum_id,
                        actor,
                        &action,
                        Some(id),
                        &format!("{} -> {}", cm.status.as_str(), status.as_str()),
                    )?;
                    let old = cm.status;
                    let mut comment = cm;
                    comment.status = status;
                    changes.push(StatusChange {
                        comment,
                        old,
                        thread_seq: Some(seq),
                    });
                }
                for t in &tasks {
                    let due = match t.when {
                        TaskWhen::Always => true,
                        TaskWhen::Changed(id) => changes.iter().any(|ch| ch.comment.id == id),
                        TaskWhen::ChangedFrom(id, from) => changes
                            .iter()
                            .any(|ch| ch.comment.id == id && ch.old == from),
                    };
                    if due {
                        outbox::insert_task(c, n, &idgen, shard, t, &t.payload)?;
                    }
                }
                Ok(changes)
            })
            .await
    }

    async fn vote(&self, id: CommentId, voter: &str, value: i64) -> StoreResult<VoteCounts> {
        let voter = voter.to_string();
        self.pool
            .write(move |c, n| {
                let found: Option<(String, i64)> =
                    row(c, n, "SELECT status, thread_id FROM comments WHERE id = ?", &[int(id.0)], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let thread_id = match found {
                    Some((s, t)) if s == "approved" => ThreadId(t),
                    _ => return Err(DomainError::not_found("comment")),
                };
                let old: i64 = row(c, n, "SELECT value FROM votes WHERE comment_id = ? AND voter = ?", &[int(id.0), text(&voter)], |r| r.get(0))?
                    .unwrap_or(0);
                if value == 0 {
                    exec(c, n, "DELETE FROM votes WHERE comment_id = ? AND voter = ?", &[int(id.0), text(&voter)])?;
                } else if value != old {
                    exec(
                        c,
                        n,
                        "INSERT INTO votes (comment_id, voter, value, created_at) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (comment_id, voter) DO UPDATE SET value = excluded.value",
                        &[int(id.0), text(&voter), int(value), int(confab_core::now_ms())],
                    )?;
                }
                let dl = i64::from(value == 1) - i64::from(old == 1);
                let dd = i64::from(value == -1) - i64::from(old == -1);
                let (likes, dislikes) = row(
                    c,
                    n,
                    "UPDATE comments SET likes = likes + ?1, dislikes = dislikes + ?2, score = score + ?1 - ?2 \
                     WHERE id = ?3 RETURNING likes, dislikes",
                    &[int(dl), int(dd), int(id.0)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .ok_or_else(DomainError::internal)?;
                let thread_seq = if dl != 0 || dd != 0 { Some(bump_seq(c, n, thread_id)?) } else { None };
                Ok(VoteCounts { likes, dislikes, mine: value, thread_id, thread_seq })
            })
            .await
    }

    async fn votes_of(&self, voter: &str, ids: &[CommentId]) -> StoreResult<Vec<(CommentId, i64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement whatever the number of ids (a JSON array), so the statement cache holds it.
        let list = format!(
            "[{}]",
            ids.iter()
                .map(|i| i.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let args = vec![text(voter), Value::Text(list)];
        self.pool
            .read(move |c, n| {
                let sql = "SELECT comment_id, value FROM votes WHERE voter = ? AND comment_id IN (SELECT value FROM json_each(?))";
                rows(c, n, sql, &args, |r| Ok((CommentId(r.get(0)?), r.get(1)?)))
            })
            .await
    }

    async fn flag(
        &self,
        id: CommentId,
        flagger: &str,
        reason: &str,
    ) -> StoreResult<(i64, ThreadId)> {
        let (flagger, reason) = (flagger.to_string(), reason.to_string());
        self.pool
            .write(move |c, n| {
                let cm = load_comment(c, n, id)?.filter(|cm| cm.status != CommentStatus::Deleted).ok_or_else(|| DomainError::not_found("comment"))?;
                let added = exec(
                    c,
                    n,
                    "INSERT OR IGNORE INTO flags (comment_id, flagger, reason, created_at) VALUES (?, ?, ?, ?)",
                    &[int(id.0), text(&flagger), text(&reason), int(confab_core::now_ms())],
                )?;
                if added == 0 {
                    return Ok((cm.flag_count, cm.thread_id));
                }
                let count = row(c, n, "UPDATE comments SET flag_count = flag_count + 1 WHERE id = ? RETURNING flag_count", &[int(id.0)], |r| r.get(0))?
                    .ok_or_else(DomainError::internal)?;
                Ok((count, cm.thread_id))
            })
            .await
    }

    async fn moderation_list(&self, forum: &Forum, q: &ModQuery) -> StoreResult<Vec<Comment>> {
        let mut args = vec![int(forum.id.0)];
        let mut sql = format!("SELECT {COMMENT_COLS} FROM comments WHERE forum_id = ?");
        match q.queue {
            Queue::Status(s) => {
                sql.push_str(" AND status = ?");
                args.push(text(s.as_str()));
            }
            Queue::Flagged => sql.push_str(" AND flag_count > 0 AND status <> 'deleted'"),
            Queue::All => {}
        }
        if let Some(b) = q.before {
            sql.push_str(" AND id < ?");
            args.push(int(b.0));
        }
        if let Some(s) = q.search.as_deref().filter(|s| !s.is_empty()) {
            let pat = like_pattern(s);
            sql.push_str(
                " AND (body_md LIKE ? ESCAPE '\\' OR guest_name LIKE ? ESCAPE '\\' OR guest_email LIKE ? ESCAPE '\\' \
                 OR ip_hash = ? OR account_id IN (SELECT id FROM accounts WHERE username LIKE ? ESCAPE '\\' \
                 OR display_name LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\'))",
            );
            args.extend([text(&pat), text(&pat), text(&pat), text(s.trim())]);
            args.extend([text(&pat), text(&pat), text(&pat)]);
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(int(q.limit as i64));
        self.pool
            .read(move |c, n| rows(c, n, &sql, &args, comment_row))
            .await
    }

    async fn mod_log(
        &self,
        forum: &Forum,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<ModLogEntry>> {
        let args = vec![
            int(forum.id.0),
            int(before.unwrap_or(i64::MAX)),
            int(limit as i64),
        ];
        self.pool
            .read(move |c, n| {
                rows(
                    c,
                    n,
                    "SELECT id, actor, action, comment_id, detail, created_at FROM mod_log \
                     WHERE forum_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                    &args,
                    |r| {
                        Ok(ModLogEntry {
                            id: r.get(0)?,
                            actor: r.get::<_, Option<i64>>(1)?.map(AccountId),
                            action: r.get(2)?,
                            comment_id: r.get::<_, Option<i64>>(3)?.map(CommentId),
                            detail: r.get(4)?,
                            created_at: r.get(5)?,
                        })
                    },
                )
            })
            .await
    }

    async fn daily_counts(
        &self,
        forum: &Forum,
        days: u32,
        now: i64,
    ) -> StoreResult<Vec<(i64, i64)>> {
        let since = (now / day_ms() - i64::from(days) + 1) * day_ms();
        // Ids are time-ordered: the smallest id at `since` bounds the index range scan.
        let min_id = id::pack(id::IdParts {
            ms_since_epoch: (since - id::EPOCH_MS).max(0) as u64,
            shard: LogicalShard::for_name(""),
            seq: 0,
        }) & !((1i64 << (id::SHARD_BITS + id::SEQ_BITS)) - 1);
        let args = vec![
            int(day_ms()),
            int(day_ms()),
            int(forum.id.0),
            int(min_id),
            int(since),
        ];
        self.pool
            .read(move |c, n| {
                rows(
                    c,
                    n,
                    "SELECT created_at / ? * ? AS day, count(*) FROM comments WHERE forum_id = ? AND id >= ? \
                     AND created_at >= ? GROUP BY day ORDER BY day",
                    &args,
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }

    async fn prune_idempotency(&self, before: i64) -> StoreResult<u64> {
        self.pool
            .write(move |c, n| {
                Ok(exec(
                    c,
                    n,
                    "DELETE FROM idempotency WHERE created_at < ?",
                    &[int(before)],
                )? as u64)
            })
            .await
    }

    async fn claim_tasks(
        &self,
        kinds: &[String],
        limit: usize,
        lease_ms: i64,
        max_attempts: i64,
    ) -> StoreResult<Vec<Task>> {
        let kinds = kinds.to_vec();
        self.pool
            .write(move |c, n| outbox::claim(c, n, &kinds, limit, lease_ms, max_attempts))
            .await
    }

    async fn next_task_due(&self, kinds: &[String]) -> StoreResult<Option<i64>> {
        let kinds = kinds.to_vec();
        self.pool
            .read(move |c, n| outbox::next_due(c, n, &kinds))
            .await
    }

    async fn complete_task(&self, id: i64, attempt: i64) -> StoreResult<bool> {
        self.pool
            .write(move |c, n| outbox::complete(c, n, id, attempt))
            .await
    }

    async fn fail_task(
        &self,
        id: i64,
        attempt: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> StoreResult<bool> {
        let error = error.to_string();
        self.pool
            .write(move |c, n| outbox::fail(c, n, id, attempt, &error, retry_at))
            .await
    }

    async fn task(&self, id: i64) -> StoreResult<Option<Task>> {
        self.pool.read(move |c, n| outbox::load(c, n, id)).await
    }

    async fn list_tasks(
        &self,
        state: Option<TaskState>,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<Task>> {
        self.pool
            .read(move |c, n| outbox::list(c, n, state, before, limit))
            .await
    }

    async fn retry_task(&self, id: i64) -> StoreResult<bool> {
        self.pool.write(move |c, n| outbox::retry(c, n, id)).await
    }

    async fn prune_tasks(&self, before: i64, limit: usize) -> StoreResult<u64> {
        self.pool
            .write(move |c, n| outbox::prune(c, n, before, limit))
            .await
    }

    async fn task_effects(&self, id: i64) -> StoreResult<Vec<String>> {
        self.pool.read(move |c, n| outbox::effects(c, n, id)).await
    }

    async fn record_task_effect(&self, id: i64, key: &str) -> StoreResult<()> {
        let key = key.to_string();
        self.pool
            .write(move |c, n| outbox::record_effect(c, n, id, &key))
            .await
    }

    async fn subscription(&self, forum: ForumId, email: &str) -> StoreResult<Option<Subscription>> {
        let email = email.to_string();
        self.pool
            .read(move |c, n| outbox::subscription(c, n, forum, &email))
            .await
    }

    async fn set_subscription(
        &self,
        forum: &Forum,
        email: &str,
        state: SubState,
        owner: Option<&str>,
    ) -> StoreResult<()> {
        let (email, id, shard, owner) = (
            email.to_string(),
            forum.id,
            forum.shard,
            owner.map(str::to_string),
        );
        self.pool
            .write(move |c, n| {
                outbox::set_subscription(c, n, id, shard, &email, state, owner.as_deref())
            })
            .await
    }

    async fn claim_confirmation(
        &self,
        forum: ForumId,
        email: &str,
        owner: &str,
        task: i64,
        min_interval_ms: i64,
    ) -> StoreResult<bool> {
        let (email, owner) = (email.to_string(), owner.to_string());
        self.pool
            .write(move |c, n| {
                outbox::claim_confirmation(c, n, forum, &email, &owner, task, min_interval_ms)
            })
            .await
    }

    async fn reply_watcher(&self, comment: CommentId) -> StoreResult<Option<ReplyWatch>> {
        self.pool
            .read(move |c, n| outbox::reply_watcher(c, n, comment))
            .await
    }

    async fn forum_moderators(&self, forum: ForumId) -> StoreResult<Vec<Account>> {
        self.pool
            .read(move |c, n| outbox::forum_moderators(c, n, forum))
            .await
    }

    fn query_count(&self) -> u64 {
        self.pool.statements()
    }
}

/// The write transaction of a new comment: thread on first comment, comment, counters,
/// idempotency record, all or nothing.
fn insert_comment(
    c: &Connection,
    n: &Counter,
    ids: &IdGenerator,
    new: NewComment,
) -> StoreResult<Posted> {
    if let Some(idem) = &new.idempotency {
        let prior: Option<(i64, String)> = row(
            c,
            n,
            "SELECT comment_id, request_hash FROM idempotency WHERE scope = ? AND key = ?",
            &[text(&idem.scope), text(&idem.key)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let Some((id, hash)) = prior {
            idem.check_replay(&hash)?;
            let comment = load_comment(c, n, CommentId(id))?.ok_or_else(DomainError::internal)?;
            let thread = load_thread(c, n, comment.thread_id)?.ok_or_else(DomainError::internal)?;
            return Ok(Posted {
                comment,
                thread,
                replayed: true,
            });
        }
    }
    let forum = &new.forum;
    let thread = row(
        c,
        n,
        &format!("SELECT {THREAD_COLS} FROM threads WHERE forum_id = ? AND ident = ?"),
        &[int(forum.id.0), text(new.ident.as_str())],
        thread_row,
    )?;
    let thread_id = match thread {
        Some(t) if t.closed => {
            return Err(DomainError::new(
                ErrorCode::ThreadClosed,
                "this thread is closed to new comments",
            ))
        }
        Some(t) => {
            if t.url.is_none() && new.url.is_some() || t.title.is_none() && new.title.is_some() {
                exec(
                    c,
                    n,
                    "UPDATE threads SET url = coalesce(url, ?), title = coalesce(title, ?) WHERE id = ?",
                    &[opt_text(new.url.as_deref()), opt_text(new.title.as_deref()), int(t.id.0)],
                )?;
            }
            t.id
        }
        None => {
            let id = ThreadId(ids.next(forum.shard));
            exec(
                c,
                n,
                "INSERT INTO threads (id, shard, forum_id, ident, url, title, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                &[
                    int(id.0),
                    int(i64::from(forum.shard.get())),
                    int(forum.id.0),
                    text(new.ident.as_str()),
                    opt_text(new.url.as_deref()),
                    opt_text(new.title.as_deref()),
                    int(new.created_at),
                ],
            )?;
            id
        }
    };
    // Replies past the depth cap attach to the deepest allowed ancestor.
    let (parent_id, depth) = match new.parent_id {
        None => (None, 0),
        Some(pid) => {
            let mut p = load_comment(c, n, pid)?
                .filter(|p| p.thread_id == thread_id && p.status != CommentStatus::Deleted)
                .ok_or_else(|| {
                    DomainError::new(
                        ErrorCode::NotFound,
                        "the comment replied to does not exist in this thread",
                    )
                })?;
            while p.depth >= new.max_depth {
                let Some(up) = p.parent_id else { break };
                p = load_comment(c, n, up)?.ok_or_else(DomainError::internal)?;
            }
            (Some(p.id), p.depth + 1)
        }
    };
    let id = CommentId(ids.next(forum.shard));
    let (account, gname, gemail, gurl) = match &new.author {
        Author::Account(a) => (Some(*a), None, None, None),
        Author::Guest { name, email, url } => {
            (None, Some(name.clone()), email.clone(), url.clone())
        }
    };
    exec(
        c,
        n,
        "INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
         guest_email, guest_url, body_md, body_html, status, created_at, ip_hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            int(id.0),
            int(i64::from(forum.shard.get())),
            int(thread_id.0),
            int(forum.id.0),
            parent_id.map_or(Value::Null, |p: CommentId| int(p.0)),
            int(i64::from(depth)),
            account.map_or(Value::Null, |a| int(a.0)),
            opt_text(new.anon_id.as_deref()),
            opt_text(gname.as_deref()),
            opt_text(gemail.as_deref()),
            opt_text(gurl.as_deref()),
            text(&new.body_md),
            text(&new.body_html),
            text(new.status.as_str()),
            int(new.created_at),
            text(&new.ip_hash),
        ],
    )?;
    let comment = new.inserted(id, thread_id, parent_id, depth);
    // A new comment moves from "nothing" (counted as deleted) to its status.
    let thread = shift_counters(c, n, &comment, CommentStatus::Deleted, new.status)?;
    if let Some(idem) = &new.idempotency {
        exec(
            c,
            n,
            "INSERT INTO idempotency (scope, key, comment_id, created_at, request_hash) VALUES (?, ?, ?, ?, ?)",
            &[text(&idem.scope), text(&idem.key), int(id.0), int(new.created_at), text(&idem.request_hash)],
        )?;
    }
    if let Some(watch) = &new.notify {
        outbox::request_notify(c, n, id, forum.id, forum.shard, watch)?;
    }
    // The outbox: the comment's tasks commit with it or not at all.
    for t in &new.tasks {
        let mut payload = t.payload.clone();
        if let Some(o) = payload.as_object_mut() {
            o.insert(
                "comment_id".into(),
                serde_json::Value::String(id.0.to_string()),
            );
        }
        outbox::insert_task(c, n, ids, forum.shard, t, &payload)?;
    }
    Ok(Posted {
        comment,
        thread,
        replayed: false,
    })
}

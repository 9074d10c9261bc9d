//! Column lists, row mapping, and the statements several concerns share.

use super::*;

// ---------------------------------------------------------------- row mapping

pub(super) const COMMENT_COLS: &str = "id, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
    guest_email, guest_url, body_md, body_html, status, likes, dislikes, reply_count, flag_count, created_at, \
    edited_at, ip_hash, held_reason, reactions, featured_at, images";

pub(super) fn comment_row(r: &Row<'_>) -> rusqlite::Result<Comment> {
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
        held_reason: r.get(20)?,
        reactions: ReactionCounts::from_json(
            r.get::<_, Option<String>>(21)?.as_deref().unwrap_or("{}"),
        ),
        featured: r.get::<_, Option<i64>>(22)?.is_some(),
        images: confab_core::media::decode_refs(r.get::<_, Option<String>>(23)?.as_deref()),
    })
}

pub(super) const THREAD_COLS: &str =
    "id, forum_id, ident, url, title, closed, comment_count, hidden_count, seq, created_at, aliased, pinned_id, reactions";

/// A thread by its ident or one of its aliases (`thread_aliases`), one statement: arguments
/// forum, ident, forum, ident.
pub(super) fn thread_by_ident_sql() -> String {
    format!(
        "SELECT {THREAD_COLS} FROM threads WHERE forum_id = ? AND ident = ? UNION ALL \
         SELECT {} FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
         WHERE a.forum_id = ? AND a.ident = ? LIMIT 1",
        THREAD_COLS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The thread with `ident` (or that alias) in `forum`.
pub(super) fn thread_by_ident(
    conn: &Connection,
    n: &Counter,
    forum: ForumId,
    ident: &Ident,
) -> StoreResult<Option<Thread>> {
    row(
        conn,
        n,
        &thread_by_ident_sql(),
        &[
            int(forum.0),
            text(ident.as_str()),
            int(forum.0),
            text(ident.as_str()),
        ],
        thread_row,
    )
}

pub(super) fn thread_row(r: &Row<'_>) -> rusqlite::Result<Thread> {
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
        aliased: r.get(10)?,
        pinned_id: r.get::<_, Option<i64>>(11)?.map(CommentId),
        reactions: ReactionCounts::from_json(
            r.get::<_, Option<String>>(12)?.as_deref().unwrap_or("{}"),
        ),
    })
}

pub(super) const FORUM_COLS: &str = "id, name, shard, settings, created_at, sso_secret";

pub(super) fn forum_row(r: &Row<'_>) -> rusqlite::Result<Forum> {
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
        sso_secret: r
            .get::<_, Option<String>>(5)?
            .and_then(|s| confab_core::sso::SsoSecret::parse(&s).ok()),
    })
}

pub(super) const ACCOUNT_COLS: &str = "a.id, a.username, a.email, a.display_name, a.is_staff, a.created_at, \
    (SELECT group_concat(m.forum_id) FROM forum_moderators m WHERE m.account_id = a.id), a.session_gen, \
    a.url, a.avatar_url";

pub(super) fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    let mods: Option<String> = r.get(6)?;
    Ok(Account {
        id: AccountId(r.get(0)?),
        username: r.get(1)?,
        email: r.get(2)?,
        display_name: r.get(3)?,
        is_staff: r.get(4)?,
        created_at: r.get(5)?,
        session_gen: r.get(7)?,
        url: r.get(8)?,
        avatar_url: r.get(9)?,
        moderates: mods
            .unwrap_or_default()
            .split(',')
            .filter_map(|s| s.parse().ok())
            .map(ForumId)
            .collect(),
    })
}

pub(super) const BAN_COLS: &str =
    "id, kind, value, reason, expires_at, created_at, shadow, created_by, comment_id, shown";

pub(super) fn ban_row(r: &Row<'_>) -> rusqlite::Result<Ban> {
    let kind: String = r.get(1)?;
    Ok(Ban {
        id: r.get(0)?,
        kind: BanKind::parse(&kind).unwrap_or(BanKind::Email),
        value: r.get(2)?,
        reason: r.get(3)?,
        expires_at: r.get(4)?,
        created_at: r.get(5)?,
        shadow: r.get::<_, i64>(6)? != 0,
        created_by: r.get::<_, Option<i64>>(7)?.map(AccountId),
        comment_id: r.get::<_, Option<i64>>(8)?.map(CommentId),
        shown: r.get(9)?,
    })
}

/// Appends the visibility condition for `vis`, pushing its arguments.
pub(super) fn vis_sql(vis: &Visibility, args: &mut Vec<Value>) -> &'static str {
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

pub(super) fn load_comment(
    conn: &Connection,
    n: &Counter,
    id: CommentId,
) -> StoreResult<Option<Comment>> {
    row(
        conn,
        n,
        &format!("SELECT {COMMENT_COLS} FROM comments WHERE id = ?"),
        &[int(id.0)],
        comment_row,
    )
}

pub(super) fn load_thread(
    conn: &Connection,
    n: &Counter,
    id: ThreadId,
) -> StoreResult<Option<Thread>> {
    row(
        conn,
        n,
        &format!("SELECT {THREAD_COLS} FROM threads WHERE id = ?"),
        &[int(id.0)],
        thread_row,
    )
}

pub(super) fn load_account(
    conn: &Connection,
    n: &Counter,
    id: AccountId,
) -> StoreResult<Option<Account>> {
    row(
        conn,
        n,
        &format!("SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id = ?"),
        &[int(id.0)],
        account_row,
    )
}

pub(super) fn log_action(
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

/// Moves a comment's contribution to its thread and parent counters (and its "Best" score, see
/// [`crate::rules::score_after`]) from `old` to `new` status;
/// returns the thread as it is now (with its new sequence number).
pub(super) fn shift_counters(
    conn: &Connection,
    n: &Counter,
    c: &Comment,
    old: CommentStatus,
    new: CommentStatus,
) -> StoreResult<Thread> {
    let d = crate::rules::counter_shift(old, new);
    let thread = row(
        conn,
        n,
        &format!(
            "UPDATE threads SET comment_count = comment_count + ?, hidden_count = hidden_count + ?, seq = seq + 1 \
             WHERE id = ? RETURNING {THREAD_COLS}"
        ),
        &[int(d.approved), int(d.hidden), int(c.thread_id.0)],
        thread_row,
    )?
    .ok_or_else(DomainError::internal)?;
    if let (Some(p), true) = (c.parent_id, d.approved != 0) {
        exec(
            conn,
            n,
            "UPDATE comments SET reply_count = reply_count + ? WHERE id = ?",
            &[int(d.approved), int(p.0)],
        )?;
    }
    if let Some(score) = crate::rules::score_after(c, old, new) {
        exec(
            conn,
            n,
            "UPDATE comments SET score = ? WHERE id = ?",
            &[int(score), int(c.id.0)],
        )?;
    }
    Ok(thread)
}

/// Moves a thread's sequence number on by one and returns it (in the change's transaction, so
/// each change has its own number even under concurrent writes).
pub(super) fn bump_seq(conn: &Connection, n: &Counter, thread: ThreadId) -> StoreResult<i64> {
    row(
        conn,
        n,
        "UPDATE threads SET seq = seq + 1 WHERE id = ? RETURNING seq",
        &[int(thread.0)],
        |r| r.get(0),
    )?
    .ok_or_else(DomainError::internal)
}

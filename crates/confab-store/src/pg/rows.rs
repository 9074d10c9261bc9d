//! Column lists, row mapping, and the statements several concerns share.

use super::*;

// ---------------------------------------------------------------- row mapping

pub(super) const COMMENT_COLS: &str = "id, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
    guest_email, guest_url, body_md, body_html, status, likes, dislikes, reply_count, flag_count, created_at, \
    edited_at, ip_hash, held_reason, reactions, featured_at, images";

pub(super) fn comment_row(r: &Row) -> Comment {
    let account: Option<i64> = r.get(5);
    let author = match account {
        Some(a) => Author::Account(AccountId(a)),
        None => Author::Guest {
            name: r.get::<_, Option<String>>(7).unwrap_or_default(),
            email: r.get(8),
            url: r.get(9),
        },
    };
    let status: &str = r.get(12);
    Comment {
        id: CommentId(r.get(0)),
        thread_id: ThreadId(r.get(1)),
        forum_id: ForumId(r.get(2)),
        parent_id: r.get::<_, Option<i64>>(3).map(CommentId),
        depth: r.get(4),
        author,
        anon_id: r.get(6),
        body_md: r.get(10),
        body_html: r.get(11),
        status: CommentStatus::parse(status).unwrap_or(CommentStatus::Pending),
        likes: r.get(13),
        dislikes: r.get(14),
        reply_count: r.get(15),
        flag_count: r.get(16),
        created_at: r.get(17),
        edited_at: r.get(18),
        ip_hash: r.get(19),
        held_reason: r.get(20),
        reactions: ReactionCounts::from_json(
            r.get::<_, Option<String>>(21).as_deref().unwrap_or("{}"),
        ),
        featured: r.get::<_, Option<i64>>(22).is_some(),
        images: confab_core::media::decode_refs(r.get::<_, Option<&str>>(23)),
    }
}

pub(super) const THREAD_COLS: &str =
    "id, forum_id, ident, url, title, closed, comment_count, hidden_count, seq, created_at, aliased, pinned_id, reactions";

pub(super) fn thread_row(r: &Row) -> Thread {
    Thread {
        id: ThreadId(r.get(0)),
        forum_id: ForumId(r.get(1)),
        ident: Ident::from_stored(r.get(2)),
        url: r.get(3),
        title: r.get(4),
        closed: r.get(5),
        comment_count: r.get(6),
        hidden_count: r.get(7),
        seq: r.get(8),
        created_at: r.get(9),
        aliased: r.get(10),
        pinned_id: r.get::<_, Option<i64>>(11).map(CommentId),
        reactions: ReactionCounts::from_json(
            r.get::<_, Option<String>>(12).as_deref().unwrap_or("{}"),
        ),
    }
}

pub(super) const FORUM_COLS: &str = "id, name, shard, settings, created_at, sso_secret";

pub(super) fn forum_row(r: &Row) -> StoreResult<Forum> {
    let settings: &str = r.get(3);
    let settings: ForumSettings = serde_json::from_str(settings).map_err(|e| {
        tracing::error!(error = %e, "stored forum settings do not parse");
        DomainError::internal()
    })?;
    let shard: i32 = r.get(2);
    Ok(Forum {
        id: ForumId(r.get(0)),
        name: r.get(1),
        shard: LogicalShard::new(shard as u16).ok_or_else(DomainError::internal)?,
        settings,
        created_at: r.get(4),
        sso_secret: r
            .get::<_, Option<String>>(5)
            .and_then(|s| confab_core::sso::SsoSecret::parse(&s).ok()),
    })
}

pub(super) const ACCOUNT_COLS: &str = "a.id, a.username, a.email, a.display_name, a.is_staff, a.created_at, \
    ARRAY(SELECT m.forum_id FROM forum_moderators m WHERE m.account_id = a.id ORDER BY m.forum_id), a.session_gen, \
    a.url, a.avatar_url";

pub(super) fn account_row(r: &Row) -> Account {
    let mods: Vec<i64> = r.get(6);
    Account {
        id: AccountId(r.get(0)),
        username: r.get(1),
        email: r.get(2),
        display_name: r.get(3),
        is_staff: r.get(4),
        created_at: r.get(5),
        session_gen: r.get(7),
        url: r.get(8),
        avatar_url: r.get(9),
        moderates: mods.into_iter().map(ForumId).collect(),
    }
}

pub(super) const BAN_COLS: &str =
    "id, kind, value, reason, expires_at, created_at, shadow, created_by, comment_id, shown";

pub(super) fn ban_row(r: &Row) -> Ban {
    let kind: &str = r.get(1);
    Ban {
        id: r.get(0),
        kind: BanKind::parse(kind).unwrap_or(BanKind::Email),
        value: r.get(2),
        reason: r.get(3),
        expires_at: r.get(4),
        created_at: r.get(5),
        shadow: r.get(6),
        created_by: r.get::<_, Option<i64>>(7).map(AccountId),
        comment_id: r.get::<_, Option<i64>>(8).map(CommentId),
        shown: r.get(9),
    }
}

/// The visibility condition for `vis`, with its parameters numbered from `first`.
pub(super) fn vis_sql(vis: &Visibility, first: usize) -> String {
    match vis {
        Visibility::Public => "(status = 'approved' OR reply_count > 0)".into(),
        Visibility::Author { .. } => format!(
            "(status = 'approved' OR reply_count > 0 OR \
             (status IN ('pending', 'spam') AND (account_id = ${first} OR anon_id = ${})))",
            first + 1
        ),
        Visibility::Moderator => "(status <> 'deleted' OR reply_count > 0)".into(),
    }
}

pub(super) fn vis_args(vis: &Visibility) -> (Option<i64>, Option<String>) {
    match vis {
        Visibility::Author { account, anon } => (account.map(|a| a.0), anon.clone()),
        _ => (None, None),
    }
}

// ---------------------------------------------------------------- transaction pieces

/// A thread by its ident or one of its aliases (`thread_aliases`), one statement.
pub(super) async fn thread_by_ident<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    forum: ForumId,
    ident: &Ident,
) -> StoreResult<Option<Thread>> {
    let aliased = THREAD_COLS
        .split(", ")
        .map(|col| format!("t.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(row(
        c,
        n,
        &format!(
            "SELECT {THREAD_COLS} FROM threads WHERE forum_id = $1 AND ident = $2 UNION ALL \
             SELECT {aliased} FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
             WHERE a.forum_id = $1 AND a.ident = $2 LIMIT 1"
        ),
        &[&forum.0, &ident.as_str()],
    )
    .await?
    .as_ref()
    .map(thread_row))
}

pub(super) async fn load_comment<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    id: CommentId,
) -> StoreResult<Option<Comment>> {
    Ok(row(
        c,
        n,
        &format!("SELECT {COMMENT_COLS} FROM comments WHERE id = $1"),
        &[&id.0],
    )
    .await?
    .as_ref()
    .map(comment_row))
}

pub(super) async fn load_thread<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    id: ThreadId,
) -> StoreResult<Option<Thread>> {
    Ok(row(
        c,
        n,
        &format!("SELECT {THREAD_COLS} FROM threads WHERE id = $1"),
        &[&id.0],
    )
    .await?
    .as_ref()
    .map(thread_row))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn log_action<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    shard: LogicalShard,
    forum: ForumId,
    actor: Option<AccountId>,
    action: &str,
    comment: Option<CommentId>,
    detail: &str,
) -> StoreResult<()> {
    exec(
        c,
        n,
        "INSERT INTO mod_log (id, shard, forum_id, actor, action, comment_id, detail, created_at) \
         VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6, $7)",
        &[
            &sh(shard),
            &forum.0,
            &actor.map(|a| a.0),
            &action,
            &comment.map(|c| c.0),
            &detail,
            &confab_core::now_ms(),
        ],
    )
    .await?;
    Ok(())
}

/// Moves a comment's contribution to its thread and parent counters (and its "Best" score, see
/// [`crate::rules::score_after`]) from `old` to `new`;
/// returns the thread as it is now (with its new sequence number).
pub(super) async fn shift_counters<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    cm: &Comment,
    old: CommentStatus,
    new: CommentStatus,
) -> StoreResult<Thread> {
    let d = crate::rules::counter_shift(old, new);
    // One batch: the thread's counters, the parent's reply count, the comment's score.
    let thread = async {
        row(
            c,
            n,
            &format!(
                "UPDATE threads SET comment_count = comment_count + $1, hidden_count = hidden_count + $2, seq = seq + 1 \
                 WHERE id = $3 RETURNING {THREAD_COLS}"
            ),
            &[&d.approved, &d.hidden, &cm.thread_id.0],
        )
        .await?
        .as_ref()
        .map(thread_row)
        .ok_or_else(DomainError::internal)
    };
    let replies = async {
        if let (Some(p), true) = (cm.parent_id, d.approved != 0) {
            exec(
                c,
                n,
                "UPDATE comments SET reply_count = reply_count + $1 WHERE id = $2",
                &[&d.approved, &p.0],
            )
            .await?;
        }
        Ok(())
    };
    let score = async {
        if let Some(score) = crate::rules::score_after(cm, old, new) {
            exec(
                c,
                n,
                "UPDATE comments SET score = $1 WHERE id = $2",
                &[&score, &cm.id.0],
            )
            .await?;
        }
        Ok(())
    };
    let (thread, (), ()) = tokio::try_join!(thread, replies, score)?;
    Ok(thread)
}

pub(super) async fn bump_seq<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    thread: ThreadId,
) -> StoreResult<i64> {
    Ok(row(
        c,
        n,
        "UPDATE threads SET seq = seq + 1 WHERE id = $1 RETURNING seq",
        &[&thread.0],
    )
    .await?
    .ok_or_else(DomainError::internal)?
    .get(0))
}

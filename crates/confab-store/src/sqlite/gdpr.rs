//! A reader's own data (see [`crate::gdpr`]), the twin of `pg/gdpr.rs`.

use super::*;
use crate::gdpr::{
    erased_username, gdpr_limit, Erase, ErasedComment, GdprStore, OwnMark, Owner, ERASED_AUTHOR,
};

fn mark_row(r: &Row<'_>) -> rusqlite::Result<OwnMark> {
    Ok(OwnMark {
        comment: CommentId(r.get(0)?),
        value: r.get(1)?,
        reason: r.get(2)?,
        created_at: r.get(3)?,
    })
}

/// Erases one comment inside the caller's transaction (shared by both backends' rules: the
/// statement list is the same, the SQL dialect differs).
pub(super) fn erase_one(
    c: &Connection,
    n: &Counter,
    cm: Comment,
    how: Erase,
    actor: Option<AccountId>,
) -> StoreResult<ErasedComment> {
    let to = crate::rules::erased_status(cm.status, how);
    let clear = how == Erase::Remove;
    exec(
        c,
        n,
        "UPDATE comments SET account_id = NULL, anon_id = NULL, guest_name = ?, guest_email = NULL, \
         guest_url = NULL, ip_hash = '', images = NULL, status = ?, \
         body_md = CASE WHEN ? THEN '' ELSE body_md END, body_html = CASE WHEN ? THEN '' ELSE body_html END \
         WHERE id = ?",
        &[
            text(ERASED_AUTHOR),
            text(to.as_str()),
            int(i64::from(clear)),
            int(i64::from(clear)),
            int(cm.id.0),
        ],
    )?;
    let seq = if to != cm.status {
        shift_counters(c, n, &cm, cm.status, to)?.seq
    } else {
        bump_seq(c, n, cm.thread_id)?
    };
    exec(
        c,
        n,
        "DELETE FROM reply_notify WHERE comment_id = ?",
        &[int(cm.id.0)],
    )?;
    // The request's address and user agent kept for the spam check's reports.
    exec(
        c,
        n,
        "DELETE FROM spam_facts WHERE comment_id = ?",
        &[int(cm.id.0)],
    )?;
    // The reader's pictures.
    exec(
        c,
        n,
        "DELETE FROM images WHERE comment_id = ?",
        &[int(cm.id.0)],
    )?;
    log_action(
        c,
        n,
        cm.forum_id,
        actor,
        "erase",
        Some(cm.id),
        crate::rules::erase_detail(how),
    )?;
    let old = cm.status;
    Ok(ErasedComment {
        comment: crate::rules::erased_comment(cm, how),
        old,
        thread_seq: seq,
    })
}

#[async_trait]
impl GdprStore for SqliteStore {
    async fn owned_comments(
        &self,
        forum: &Forum,
        owner: &Owner,
        after: Option<CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<Comment>> {
        let (f, after, limit) = (
            forum.id.0,
            after.map_or(i64::MIN, |c| c.0),
            gdpr_limit(limit) as i64,
        );
        let owner = owner.clone();
        self.pool
            .read(move |c, n| match &owner {
                Owner::Account(a) => rows(
                    c,
                    n,
                    &format!(
                        "SELECT {COMMENT_COLS} FROM comments INDEXED BY comments_forum_account_id \
                         WHERE forum_id = ? AND account_id = ? AND id > ? ORDER BY id LIMIT ?"
                    ),
                    &[int(f), int(a.0), int(after), int(limit)],
                    comment_row,
                ),
                Owner::GuestEmail(e) => rows(
                    c,
                    n,
                    &format!(
                        "SELECT {COMMENT_COLS} FROM comments WHERE forum_id = ? \
                         AND guest_email = ? COLLATE NOCASE AND account_id IS NULL AND id > ? ORDER BY id LIMIT ?"
                    ),
                    &[
                        int(f),
                        text(&crate::rules::email_key(e)),
                        int(after),
                        int(limit),
                    ],
                    comment_row,
                ),
            })
            .await
    }

    async fn owned_marks(
        &self,
        forum: &Forum,
        voter: &str,
        flags: bool,
        after: Option<CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<OwnMark>> {
        let (f, after, limit, voter) = (
            forum.id.0,
            after.map_or(i64::MIN, |c| c.0),
            gdpr_limit(limit) as i64,
            voter.to_string(),
        );
        let sql = if flags {
            "SELECT m.comment_id, 0, m.reason, m.created_at FROM flags m JOIN comments c ON c.id = m.comment_id \
             WHERE m.flagger = ? AND m.comment_id > ? AND c.forum_id = ? ORDER BY m.comment_id LIMIT ?"
        } else {
            "SELECT m.comment_id, m.value, '', m.created_at FROM votes m JOIN comments c ON c.id = m.comment_id \
             WHERE m.voter = ? AND m.comment_id > ? AND c.forum_id = ? ORDER BY m.comment_id LIMIT ?"
        };
        self.pool
            .read(move |c, n| {
                rows(
                    c,
                    n,
                    sql,
                    &[text(&voter), int(after), int(f), int(limit)],
                    mark_row,
                )
            })
            .await
    }

    async fn erase_comments(
        &self,
        forum: &Forum,
        ids: &[CommentId],
        how: Erase,
        actor: Option<AccountId>,
    ) -> StoreResult<Written<Vec<ErasedComment>>> {
        if ids.len() > crate::gdpr::GDPR_PAGE_MAX {
            return Err(DomainError::invalid("too many comments in one erasure"));
        }
        let (ids, forum_id) = (ids.to_vec(), forum.id);
        self.pool
            .write(move |c, n| {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let Some(cm) = load_comment(c, n, id)?.filter(|cm| cm.forum_id == forum_id)
                    else {
                        return Err(DomainError::not_found(&format!("comment {id}")));
                    };
                    out.push(erase_one(c, n, cm, how, actor)?);
                }
                Ok(out)
            })
            .await
            .map(Written::here)
    }

    async fn erase_subscription(&self, forum: &Forum, email: &str) -> StoreResult<bool> {
        let (f, email) = (forum.id.0, crate::rules::email_key(email));
        self.pool
            .write(move |c, n| {
                Ok(exec(
                    c,
                    n,
                    "DELETE FROM subscriptions WHERE forum_id = ? AND email = ? COLLATE NOCASE",
                    &[int(f), text(&email)],
                )? > 0)
            })
            .await
    }

    async fn erase_account(&self, account: AccountId) -> StoreResult<bool> {
        self.pool
            .write(move |c, n| {
                let found = exec(
                    c,
                    n,
                    "UPDATE accounts SET username = ?, email = NULL, display_name = ?, password_hash = '', \
                     is_staff = 0, url = NULL, avatar_url = NULL, session_gen = session_gen + 1 WHERE id = ?",
                    &[text(&erased_username(account)), text(ERASED_AUTHOR), int(account.0)],
                )?;
                exec(
                    c,
                    n,
                    "DELETE FROM forum_moderators WHERE account_id = ?",
                    &[int(account.0)],
                )?;
                // Its sign-in identities: the provider's next sign-in makes a new account.
                exec(
                    c,
                    n,
                    "DELETE FROM identities WHERE account_id = ?",
                    &[int(account.0)],
                )?;
                Ok(found > 0)
            })
            .await
    }

    async fn use_link(&self, key: &str, now: i64, expires_at: i64) -> StoreResult<bool> {
        let key = key.to_string();
        self.pool
            .write(move |c, n| {
                exec(
                    c,
                    n,
                    "DELETE FROM used_links WHERE key IN (SELECT key FROM used_links WHERE expires_at < ? LIMIT 100)",
                    &[int(now)],
                )?;
                Ok(exec(
                    c,
                    n,
                    "INSERT OR IGNORE INTO used_links (key, used_at, expires_at) VALUES (?, ?, ?)",
                    &[text(&key), int(now), int(expires_at)],
                )? == 1)
            })
            .await
    }
}

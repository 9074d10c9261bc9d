//! A reader's own data (see [`crate::gdpr`]), the twin of `sqlite/gdpr.rs`: comments, votes
//! and flags from the forum's shard; the account's tombstone and used links on the control
//! database.

use super::*;
use crate::gdpr::{
    erased_username, gdpr_limit, Erase, ErasedComment, GdprStore, OwnMark, Owner, ERASED_AUTHOR,
};

fn mark_row(r: &Row) -> OwnMark {
    OwnMark {
        comment: CommentId(r.get(0)),
        value: r.get::<_, i64>(1),
        reason: r.get(2),
        created_at: r.get(3),
    }
}

#[async_trait]
impl GdprStore for PgStore {
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
        read_on!(self, forum.shard, ReadFrom::Primary, |c, n| {
            let found = match owner {
                Owner::Account(a) => {
                    rows(
                        &c,
                        &n,
                        &format!(
                            "SELECT {COMMENT_COLS} FROM comments WHERE forum_id = $1 AND account_id = $2 \
                             AND id > $3 ORDER BY id LIMIT $4"
                        ),
                        &[&f, &a.0, &after, &limit],
                    )
                    .await?
                }
                Owner::GuestEmail(e) => {
                    let e = crate::rules::email_key(e);
                    rows(
                        &c,
                        &n,
                        &format!(
                            "SELECT {COMMENT_COLS} FROM comments WHERE forum_id = $1 AND lower(guest_email) = $2 \
                             AND account_id IS NULL AND id > $3 ORDER BY id LIMIT $4"
                        ),
                        &[&f, &e, &after, &limit],
                    )
                    .await?
                }
            };
            Ok(found.iter().map(comment_row).collect())
        })
    }

    async fn owned_marks(
        &self,
        forum: &Forum,
        voter: &str,
        flags: bool,
        after: Option<CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<OwnMark>> {
        let (f, after, limit) = (
            forum.id.0,
            after.map_or(i64::MIN, |c| c.0),
            gdpr_limit(limit) as i64,
        );
        let sql = if flags {
            "SELECT m.comment_id, 0::BIGINT, m.reason, m.created_at FROM flags m JOIN comments c ON c.id = m.comment_id \
             WHERE m.flagger = $1 AND m.comment_id > $2 AND c.forum_id = $3 ORDER BY m.comment_id LIMIT $4"
        } else {
            "SELECT m.comment_id, m.value::BIGINT, ''::TEXT, m.created_at FROM votes m JOIN comments c ON c.id = m.comment_id \
             WHERE m.voter = $1 AND m.comment_id > $2 AND c.forum_id = $3 ORDER BY m.comment_id LIMIT $4"
        };
        read_on!(self, forum.shard, ReadFrom::Primary, |c, n| {
            Ok(rows(&c, &n, sql, &[&voter, &after, &f, &limit])
                .await?
                .iter()
                .map(mark_row)
                .collect())
        })
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
        let (forum_id, shard) = (forum.id, forum.shard);
        if let Some(stray) = ids.iter().find(|i| shard_of(i.0) != shard) {
            return Err(DomainError::not_found(&format!("comment {stray}")));
        }
        let clear = how == Erase::Remove;
        write_tx!(self, shard, |tx, n| {
            let mut out = Vec::with_capacity(ids.len());
            for &id in ids {
                let Some(cm) = load_comment(tx, &n, id)
                    .await?
                    .filter(|cm| cm.forum_id == forum_id)
                else {
                    return Err(DomainError::not_found(&format!("comment {id}")));
                };
                let to = crate::rules::erased_status(cm.status, how);
                exec(
                    tx,
                    &n,
                    "UPDATE comments SET account_id = NULL, anon_id = NULL, guest_name = $1, guest_email = NULL, \
                     guest_url = NULL, ip_hash = '', images = NULL, status = $2, \
                     body_md = CASE WHEN $3 THEN '' ELSE body_md END, body_html = CASE WHEN $3 THEN '' ELSE body_html END \
                     WHERE id = $4",
                    &[&ERASED_AUTHOR, &to.as_str(), &clear, &id.0],
                )
                .await?;
                let seq = if to != cm.status {
                    shift_counters(tx, &n, &cm, cm.status, to).await?.seq
                } else {
                    bump_seq(tx, &n, cm.thread_id).await?
                };
                exec(
                    tx,
                    &n,
                    "DELETE FROM reply_notify WHERE comment_id = $1",
                    &[&id.0],
                )
                .await?;
                // The request's address and user agent kept for the spam check's reports.
                exec(
                    tx,
                    &n,
                    "DELETE FROM spam_facts WHERE comment_id = $1",
                    &[&id.0],
                )
                .await?;
                // The reader's pictures.
                exec(tx, &n, "DELETE FROM images WHERE comment_id = $1", &[&id.0]).await?;
                log_action(
                    tx,
                    &n,
                    shard,
                    forum_id,
                    actor,
                    "erase",
                    Some(id),
                    crate::rules::erase_detail(how),
                )
                .await?;
                let old = cm.status;
                out.push(ErasedComment {
                    comment: crate::rules::erased_comment(cm, how),
                    old,
                    thread_seq: seq,
                });
            }
            Ok(out)
        })
    }

    async fn erase_subscription(&self, forum: &Forum, email: &str) -> StoreResult<bool> {
        let (f, email) = (forum.id.0, crate::rules::email_key(email));
        write_value!(self, forum.shard, |tx, n| {
            Ok(exec(
                tx,
                &n,
                "DELETE FROM subscriptions WHERE forum_id = $1 AND email = $2",
                &[&f, &email],
            )
            .await?
                > 0)
        })
    }

    async fn erase_account(&self, account: AccountId) -> StoreResult<bool> {
        let name = erased_username(account);
        control!(self, |c, n| {
            let mut c = c;
            let tx = c.transaction().await.map_err(pg_err)?;
            let found = exec(
                &tx,
                &n,
                "UPDATE accounts SET username = $1, email = NULL, display_name = $2, password_hash = '', \
                 is_staff = false, url = NULL, avatar_url = NULL, session_gen = session_gen + 1 WHERE id = $3",
                &[&name, &ERASED_AUTHOR, &account.0],
            )
            .await?;
            exec(
                &tx,
                &n,
                "DELETE FROM forum_moderators WHERE account_id = $1",
                &[&account.0],
            )
            .await?;
            // Its sign-in identities: the provider's next sign-in makes a new account.
            exec(
                &tx,
                &n,
                "DELETE FROM identities WHERE account_id = $1",
                &[&account.0],
            )
            .await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(found > 0)
        })
    }

    async fn use_link(&self, key: &str, now: i64, expires_at: i64) -> StoreResult<bool> {
        control!(self, |c, n| {
            exec(
                &c,
                &n,
                "DELETE FROM used_links WHERE key IN (SELECT key FROM used_links WHERE expires_at < $1 LIMIT 100)",
                &[&now],
            )
            .await?;
            Ok(exec(
                &c,
                &n,
                "INSERT INTO used_links (key, used_at, expires_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
                &[&key, &now, &expires_at],
            )
            .await?
                == 1)
        })
    }
}

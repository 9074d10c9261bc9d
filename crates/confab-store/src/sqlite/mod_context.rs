//! A moderation queue's context: threads, flag reasons, authors' histories, queue sizes.

use super::*;
use crate::mod_context::fold_histories;
use crate::{Histories, ModContextStore, QueueCounts, MOD_COUNT_CAP};

#[async_trait]
impl ModContextStore for SqliteStore {
    async fn threads_by_ids(&self, forum: &Forum, ids: &[ThreadId]) -> StoreResult<Vec<Thread>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![int(forum.id.0)];
        args.extend(ids.iter().map(|t| int(t.0)));
        let sql = format!(
            "SELECT {THREAD_COLS} FROM threads WHERE forum_id = ? AND id IN ({})",
            placeholders(ids.len())
        );
        self.pool
            .read(move |c, n| rows(c, n, &sql, &args, thread_row))
            .await
    }

    async fn flag_reasons(
        &self,
        _forum: &Forum,
        ids: &[CommentId],
    ) -> StoreResult<Vec<(CommentId, String, i64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args: Vec<Value> = ids.iter().map(|c| int(c.0)).collect();
        let sql = format!(
            "SELECT comment_id, reason, count(*) FROM flags WHERE comment_id IN ({}) \
             GROUP BY comment_id, reason ORDER BY comment_id, count(*) DESC",
            placeholders(ids.len())
        );
        self.pool
            .read(move |c, n| {
                rows(c, n, &sql, &args, |r| {
                    Ok((CommentId(r.get(0)?), r.get(1)?, r.get(2)?))
                })
            })
            .await
    }

    async fn author_histories(
        &self,
        forum: &Forum,
        accounts: &[AccountId],
        emails: &[String],
    ) -> StoreResult<Histories> {
        let fid = forum.id.0;
        let accounts: Vec<i64> = accounts.iter().map(|a| a.0).collect();
        let emails: Vec<String> = emails.iter().map(|e| e.to_lowercase()).collect();
        self.pool
            .read(move |c, n| {
                let mut out = Histories::default();
                if !accounts.is_empty() {
                    let mut args = vec![int(fid)];
                    args.extend(accounts.iter().map(|a| int(*a)));
                    let sql = format!(
                        "SELECT account_id, status, count(*), min(created_at) FROM comments \
                         WHERE forum_id = ? AND account_id IN ({}) GROUP BY account_id, status",
                        placeholders(accounts.len())
                    );
                    let got = rows(c, n, &sql, &args, |r| {
                        Ok((AccountId(r.get(0)?), r.get(1)?, r.get(2)?, r.get(3)?))
                    })?;
                    out.accounts = fold_histories(got);
                }
                if !emails.is_empty() {
                    let mut args = vec![int(fid)];
                    args.extend(emails.iter().map(|e| text(e)));
                    let sql = format!(
                        "SELECT lower(guest_email), status, count(*), min(created_at) FROM comments \
                         WHERE forum_id = ? AND guest_email COLLATE NOCASE IN ({}) GROUP BY lower(guest_email), status",
                        placeholders(emails.len())
                    );
                    let got = rows(c, n, &sql, &args, |r| {
                        Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?;
                    out.emails = fold_histories(got);
                }
                Ok(out)
            })
            .await
    }

    async fn comment_threads(
        &self,
        forum: &Forum,
        ids: &[CommentId],
    ) -> StoreResult<Vec<(CommentId, ThreadId)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![int(forum.id.0)];
        args.extend(ids.iter().map(|c| int(c.0)));
        let sql = format!(
            "SELECT id, thread_id FROM comments WHERE forum_id = ? AND id IN ({})",
            placeholders(ids.len())
        );
        self.pool
            .read(move |c, n| {
                rows(c, n, &sql, &args, |r| {
                    Ok((CommentId(r.get(0)?), ThreadId(r.get(1)?)))
                })
            })
            .await
    }

    async fn queue_counts(&self, forum: &Forum) -> StoreResult<QueueCounts> {
        let args = vec![int(forum.id.0), int(MOD_COUNT_CAP)];
        self.pool
            .read(move |c, n| {
                let count = |cond: &str| -> StoreResult<i64> {
                    Ok(row(
                        c,
                        n,
                        &format!(
                            "SELECT count(*) FROM (SELECT 1 FROM comments WHERE forum_id = ? AND {cond} LIMIT ?)"
                        ),
                        &args,
                        |r| r.get(0),
                    )?
                    .unwrap_or(0))
                };
                Ok(QueueCounts {
                    pending: count("status = 'pending'")?,
                    flagged: count("flag_count > 0 AND status <> 'deleted'")?,
                    spam: count("status = 'spam'")?,
                })
            })
            .await
    }
}

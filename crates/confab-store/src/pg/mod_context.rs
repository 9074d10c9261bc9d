//! A moderation queue's context: threads, flag reasons, authors' histories, queue sizes. All
//! on the forum's shard, one statement each for a whole page.

use super::*;
use crate::mod_context::fold_histories;
use crate::{Histories, ModContextStore, QueueCounts, MOD_COUNT_CAP};

#[async_trait]
impl ModContextStore for PgStore {
    async fn threads_by_ids(&self, forum: &Forum, ids: &[ThreadId]) -> StoreResult<Vec<Thread>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|t| t.0).collect();
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!("SELECT {THREAD_COLS} FROM threads WHERE forum_id = $1 AND id = ANY($2)"),
                &[&forum.id.0, &ids],
            )
            .await?
            .iter()
            .map(thread_row)
            .collect())
        })
    }

    async fn flag_reasons(
        &self,
        forum: &Forum,
        ids: &[CommentId],
    ) -> StoreResult<Vec<(CommentId, String, i64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|c| c.0).collect();
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT comment_id, reason, count(*) FROM flags WHERE comment_id = ANY($1) \
                 GROUP BY comment_id, reason ORDER BY comment_id, count(*) DESC",
                &[&ids],
            )
            .await?
            .iter()
            .map(|r| (CommentId(r.get(0)), r.get(1), r.get(2)))
            .collect())
        })
    }

    async fn author_histories(
        &self,
        forum: &Forum,
        accounts: &[AccountId],
        emails: &[String],
    ) -> StoreResult<Histories> {
        let accounts: Vec<i64> = accounts.iter().map(|a| a.0).collect();
        let emails: Vec<String> = emails.iter().map(|e| e.to_lowercase()).collect();
        let mut out = Histories::default();
        if !accounts.is_empty() {
            let got: Vec<(AccountId, String, i64, i64)> =
                read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
                    Ok(rows(
                        &c,
                        &n,
                        "SELECT account_id, status, count(*), min(created_at) FROM comments \
                         WHERE forum_id = $1 AND account_id = ANY($2) GROUP BY account_id, status",
                        &[&forum.id.0, &accounts],
                    )
                    .await?
                    .iter()
                    .map(|r| (AccountId(r.get(0)), r.get(1), r.get(2), r.get(3)))
                    .collect())
                })?;
            out.accounts = fold_histories(got);
        }
        if !emails.is_empty() {
            let got: Vec<(String, String, i64, i64)> = read_on!(
                self,
                forum.shard,
                ReadFrom::Replica,
                |c, n| {
                    Ok(rows(
                        &c,
                        &n,
                        "SELECT lower(guest_email), status, count(*), min(created_at) FROM comments \
                         WHERE forum_id = $1 AND guest_email IS NOT NULL AND lower(guest_email) = ANY($2) \
                         GROUP BY lower(guest_email), status",
                        &[&forum.id.0, &emails],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                    .collect())
                }
            )?;
            out.emails = fold_histories(got);
        }
        Ok(out)
    }

    async fn comment_threads(
        &self,
        forum: &Forum,
        ids: &[CommentId],
    ) -> StoreResult<Vec<(CommentId, ThreadId)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|c| c.0).collect();
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT id, thread_id FROM comments WHERE forum_id = $1 AND id = ANY($2)",
                &[&forum.id.0, &ids],
            )
            .await?
            .iter()
            .map(|r| (CommentId(r.get(0)), ThreadId(r.get(1))))
            .collect())
        })
    }

    async fn queue_counts(&self, forum: &Forum) -> StoreResult<QueueCounts> {
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            let r = row(
                &c,
                &n,
                "SELECT \
                 (SELECT count(*) FROM (SELECT 1 FROM comments WHERE forum_id = $1 AND status = 'pending' LIMIT $2) p), \
                 (SELECT count(*) FROM (SELECT 1 FROM comments WHERE forum_id = $1 AND flag_count > 0 AND status <> 'deleted' LIMIT $2) f), \
                 (SELECT count(*) FROM (SELECT 1 FROM comments WHERE forum_id = $1 AND status = 'spam' LIMIT $2) s)",
                &[&forum.id.0, &MOD_COUNT_CAP],
            )
            .await?
            .ok_or_else(DomainError::internal)?;
            Ok(QueueCounts {
                pending: r.get(0),
                flagged: r.get(1),
                spam: r.get(2),
            })
        })
    }
}

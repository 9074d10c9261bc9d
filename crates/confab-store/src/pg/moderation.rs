//! Moderation: status changes with their counters, queues, the log, daily counts.

use super::*;
use crate::rules;

#[async_trait]
impl ModerationStore for PgStore {
    async fn set_status(
        &self,
        forum: &Forum,
        ids: &[CommentId],
        status: CommentStatus,
        actor: Option<AccountId>,
        action: &str,
        tasks: Vec<NewTask>,
    ) -> StoreResult<Written<Vec<StatusChange>>> {
        let (forum_id, shard) = (forum.id, forum.shard);
        if let Some(stray) = ids.iter().find(|i| shard_of(i.0) != shard) {
            return Err(DomainError::not_found(&format!("comment {stray}")));
        }
        write_tx!(self, shard, |tx, n| {
            let mut changes = Vec::new();
            for &id in ids {
                let Some(cm) = load_comment(tx, &n, id)
                    .await?
                    .filter(|cm| cm.forum_id == forum_id)
                else {
                    return Err(DomainError::not_found(&format!("comment {id}")));
                };
                let plan = rules::status_plan(&cm, status);
                if plan.dismiss_flags {
                    exec(
                        tx,
                        &n,
                        "UPDATE comments SET flag_count = 0 WHERE id = $1",
                        &[&id.0],
                    )
                    .await?;
                    exec(tx, &n, "DELETE FROM flags WHERE comment_id = $1", &[&id.0]).await?;
                }
                if !plan.change {
                    if plan.dismiss_flags {
                        let (what, detail) = rules::dismissed_log(&cm);
                        log_action(tx, &n, shard, forum_id, actor, what, Some(id), &detail).await?;
                        changes.push(rules::flags_dismissed(cm));
                    }
                    continue;
                }
                exec(
                    tx,
                    &n,
                    "UPDATE comments SET status = $1 WHERE id = $2",
                    &[&status.as_str(), &id.0],
                )
                .await?;
                let seq = shift_counters(tx, &n, &cm, cm.status, status).await?.seq;
                log_action(
                    tx,
                    &n,
                    shard,
                    forum_id,
                    actor,
                    action,
                    Some(id),
                    &rules::status_detail(cm.status, status),
                )
                .await?;
                changes.push(rules::status_changed(cm, status, seq));
            }
            for t in &tasks {
                if rules::task_due(t.when, &changes) {
                    insert_task(tx, &n, shard, t, &t.payload).await?;
                }
            }
            Ok(changes)
        })
    }

    async fn moderation_list(&self, forum: &Forum, q: &ModQuery) -> StoreResult<Vec<Comment>> {
        let search = q
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        // The application-level join: accounts matching the search come from the control
        // database first, then the shard query takes their ids.
        let (pat, accounts) = match &search {
            Some(s) => {
                let pat = like_pattern(s);
                let ids: Vec<i64> = control!(self, |c, n| {
                    Ok(rows(
                        &c,
                        &n,
                        "SELECT id FROM accounts WHERE username ILIKE $1 OR display_name ILIKE $1 OR email ILIKE $1 LIMIT 1000",
                        &[&pat],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect())
                })?;
                (Some(pat), ids)
            }
            None => (None, Vec::new()),
        };
        let status = match q.queue {
            Queue::Status(s) => Some(s.as_str()),
            _ => None,
        };
        let flagged = q.queue == Queue::Flagged;
        let before = q.before.map_or(i64::MAX, |b| b.0);
        let limit = q.limit as i64;
        let mut sql = format!(
            "SELECT {COMMENT_COLS} FROM comments WHERE forum_id = $1 AND id < $2 AND ($3::text IS NULL OR status = $3)"
        );
        if flagged {
            sql.push_str(" AND flag_count > 0 AND status <> 'deleted'");
        }
        sql.push_str(
            " AND ($4::text IS NULL OR body_md ILIKE $4 OR guest_name ILIKE $4 OR guest_email ILIKE $4 OR ip_hash = $5 \
             OR account_id = ANY($6)) ORDER BY id DESC LIMIT $7",
        );
        let term = search.clone().unwrap_or_default();
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                &sql,
                &[
                    &forum.id.0,
                    &before,
                    &status,
                    &pat,
                    &term,
                    &accounts,
                    &limit,
                ],
            )
            .await?
            .iter()
            .map(comment_row)
            .collect())
        })
    }

    async fn mod_log(
        &self,
        forum: &Forum,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<ModLogEntry>> {
        let before = before.unwrap_or(i64::MAX);
        let limit = limit as i64;
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT id, actor, action, comment_id, detail, created_at FROM mod_log \
                 WHERE forum_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                &[&forum.id.0, &before, &limit],
            )
            .await?
            .iter()
            .map(|r| ModLogEntry {
                id: r.get(0),
                actor: r.get::<_, Option<i64>>(1).map(AccountId),
                action: r.get(2),
                comment_id: r.get::<_, Option<i64>>(3).map(CommentId),
                detail: r.get(4),
                created_at: r.get(5),
            })
            .collect())
        })
    }

    async fn daily_counts(
        &self,
        forum: &Forum,
        days: u32,
        now: i64,
    ) -> StoreResult<Vec<(i64, i64)>> {
        const DAY: i64 = 86_400_000;
        let since = (now / DAY - i64::from(days) + 1) * DAY;
        let min_id = ((since - id::EPOCH_MS).max(0)) << (id::SHARD_BITS + id::SEQ_BITS);
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT created_at / $1 * $1 AS day, count(*) FROM comments WHERE forum_id = $2 AND id >= $3 \
                 AND created_at >= $4 GROUP BY day ORDER BY day",
                &[&DAY, &forum.id.0, &min_id, &since],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }
}

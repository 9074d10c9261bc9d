//! Moderation: status changes with their counters, queues, the log, daily counts.

use super::*;
use crate::rules;

pub(super) fn day_ms() -> i64 {
    86_400_000
}

#[async_trait]
impl ModerationStore for SqliteStore {
    async fn set_status(
        &self,
        forum: &Forum,
        ids: &[CommentId],
        status: CommentStatus,
        actor: Option<AccountId>,
        action: &str,
        tasks: Vec<NewTask>,
    ) -> StoreResult<Written<Vec<StatusChange>>> {
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
                    let plan = rules::status_plan(&cm, status);
                    if plan.dismiss_flags {
                        exec(
                            c,
                            n,
                            "UPDATE comments SET flag_count = 0 WHERE id = ?",
                            &[int(id.0)],
                        )?;
                        exec(c, n, "DELETE FROM flags WHERE comment_id = ?", &[int(id.0)])?;
                    }
                    if !plan.change {
                        if plan.dismiss_flags {
                            let (what, detail) = rules::dismissed_log(&cm);
                            log_action(c, n, forum_id, actor, what, Some(id), &detail)?;
                            changes.push(rules::flags_dismissed(cm));
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
                        &rules::status_detail(cm.status, status),
                    )?;
                    changes.push(rules::status_changed(cm, status, seq));
                }
                for t in &tasks {
                    if rules::task_due(t.when, &changes) {
                        outbox::insert_task(c, n, &idgen, shard, t, &t.payload)?;
                    }
                }
                Ok(changes)
            })
            .await
            .map(Written::here)
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
}

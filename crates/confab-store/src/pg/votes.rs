//! Votes and flags.

use super::*;
use crate::rules;

#[async_trait]
impl VoteStore for PgStore {
    async fn vote(
        &self,
        id: CommentId,
        voter: &str,
        value: i64,
    ) -> StoreResult<Written<VoteCounts>> {
        let shard = shard_of(id.0);
        write_tx!(self, shard, |tx, n| {
            // Lock the comment row: concurrent votes on it serialize here.
            let found = row(
                tx,
                &n,
                "SELECT status, thread_id FROM comments WHERE id = $1 FOR UPDATE",
                &[&id.0],
            )
            .await?;
            let found = found.ok_or_else(|| DomainError::not_found("comment"))?;
            rules::votable(CommentStatus::parse(found.get(0)).unwrap_or(CommentStatus::Deleted))?;
            let thread_id = ThreadId(found.get(1));
            let old: i64 = row(
                tx,
                &n,
                "SELECT value FROM votes WHERE comment_id = $1 AND voter = $2",
                &[&id.0, &voter],
            )
            .await?
            .map_or(0, |r| i64::from(r.get::<_, i32>(0)));
            if value == 0 {
                exec(
                    tx,
                    &n,
                    "DELETE FROM votes WHERE comment_id = $1 AND voter = $2",
                    &[&id.0, &voter],
                )
                .await?;
            } else if value != old {
                exec(
                    tx,
                    &n,
                    "INSERT INTO votes (comment_id, voter, shard, value, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (comment_id, voter) DO UPDATE SET value = excluded.value",
                    &[&id.0, &voter, &sh(shard), &(value as i32), &confab_core::now_ms()],
                )
                .await?;
            }
            let d = rules::vote_shift(old, value);
            let r = row(
                tx,
                &n,
                "UPDATE comments SET likes = likes + $1, dislikes = dislikes + $2, score = score + $1 - $2 \
                 WHERE id = $3 RETURNING likes, dislikes",
                &[&d.likes, &d.dislikes, &id.0],
            )
            .await?
            .ok_or_else(DomainError::internal)?;
            let thread_seq = if d.changed() {
                Some(bump_seq(tx, &n, thread_id).await?)
            } else {
                None
            };
            Ok(VoteCounts {
                likes: r.get(0),
                dislikes: r.get(1),
                mine: value,
                thread_id,
                thread_seq,
            })
        })
    }

    async fn votes_of(&self, voter: &str, ids: &[CommentId]) -> StoreResult<Vec<(CommentId, i64)>> {
        // Ids carry their shard: one statement per shard (a thread's comments share one).
        let mut by_shard: std::collections::BTreeMap<LogicalShard, Vec<i64>> = Default::default();
        for id in ids {
            by_shard.entry(shard_of(id.0)).or_default().push(id.0);
        }
        let mut out = Vec::new();
        for (shard, ids) in by_shard {
            let found = read_on!(self, shard, ReadFrom::Replica, |c, n| {
                rows(
                    &c,
                    &n,
                    "SELECT comment_id, value FROM votes WHERE voter = $1 AND comment_id = ANY($2)",
                    &[&voter, &ids],
                )
                .await
            })?;
            out.extend(
                found
                    .iter()
                    .map(|r| (CommentId(r.get(0)), i64::from(r.get::<_, i32>(1)))),
            );
        }
        Ok(out)
    }

    async fn flag(
        &self,
        id: CommentId,
        flagger: &str,
        reason: &str,
        hold_at: Option<u32>,
    ) -> StoreResult<Written<Flagged>> {
        let shard = shard_of(id.0);
        write_tx!(self, shard, |tx, n| {
            let cm = load_comment(tx, &n, id)
                .await?
                .filter(|cm| cm.status != CommentStatus::Deleted)
                .ok_or_else(|| DomainError::not_found("comment"))?;
            let added = exec(
                tx,
                &n,
                "INSERT INTO flags (comment_id, flagger, shard, reason, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&id.0, &flagger, &sh(shard), &reason, &confab_core::now_ms()],
            )
            .await?;
            if added == 0 {
                return Ok(Flagged {
                    count: cm.flag_count,
                    thread_id: cm.thread_id,
                    held: None,
                });
            }
            // The row lock this takes orders concurrent flags and status changes.
            let r = row(tx, &n, "UPDATE comments SET flag_count = flag_count + 1 WHERE id = $1 RETURNING flag_count, status", &[&id.0])
                .await?
                .ok_or_else(DomainError::internal)?;
            let count: i64 = r.get(0);
            let status = CommentStatus::parse(r.get(1)).unwrap_or(CommentStatus::Pending);
            let thread_id = cm.thread_id;
            let mut held = None;
            if rules::flag_holds(status, count, hold_at) {
                let why = confab_core::modrules::flagged_reason(count);
                exec(
                    tx,
                    &n,
                    "UPDATE comments SET status = 'pending', held_reason = $1 WHERE id = $2",
                    &[&why, &id.0],
                )
                .await?;
                let cm = Comment {
                    flag_count: count,
                    status,
                    ..cm
                };
                let seq = shift_counters(tx, &n, &cm, status, CommentStatus::Pending)
                    .await?
                    .seq;
                let detail = rules::status_detail(status, CommentStatus::Pending);
                log_action(tx, &n, shard, cm.forum_id, None, "hold", Some(id), &detail).await?;
                let cm = Comment {
                    held_reason: Some(why),
                    ..cm
                };
                held = Some(rules::status_changed(cm, CommentStatus::Pending, seq));
            }
            Ok(Flagged {
                count,
                thread_id,
                held,
            })
        })
    }
}

//! Votes and flags.

use super::*;
use crate::rules;

#[async_trait]
impl VoteStore for SqliteStore {
    async fn vote(
        &self,
        id: CommentId,
        voter: &str,
        value: i64,
    ) -> StoreResult<Written<VoteCounts>> {
        let voter = voter.to_string();
        self.pool
            .write(move |c, n| {
                let found: Option<(String, i64)> =
                    row(c, n, "SELECT status, thread_id FROM comments WHERE id = ?", &[int(id.0)], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let (status, thread) = found.ok_or_else(|| DomainError::not_found("comment"))?;
                rules::votable(CommentStatus::parse(&status).unwrap_or(CommentStatus::Deleted))?;
                let thread_id = ThreadId(thread);
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
                let d = rules::vote_shift(old, value);
                let (likes, dislikes) = row(
                    c,
                    n,
                    "UPDATE comments SET likes = likes + ?1, dislikes = dislikes + ?2, score = score + ?1 - ?2 \
                     WHERE id = ?3 RETURNING likes, dislikes",
                    &[int(d.likes), int(d.dislikes), int(id.0)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .ok_or_else(DomainError::internal)?;
                let thread_seq = if d.changed() { Some(bump_seq(c, n, thread_id)?) } else { None };
                Ok(VoteCounts { likes, dislikes, mine: value, thread_id, thread_seq })
            })
            .await
            .map(Written::here)
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
        hold_at: Option<u32>,
    ) -> StoreResult<Written<Flagged>> {
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
                    return Ok(Flagged { count: cm.flag_count, thread_id: cm.thread_id, held: None });
                }
                let count: i64 = row(c, n, "UPDATE comments SET flag_count = flag_count + 1 WHERE id = ? RETURNING flag_count", &[int(id.0)], |r| r.get(0))?
                    .ok_or_else(DomainError::internal)?;
                let thread_id = cm.thread_id;
                let mut held = None;
                if rules::flag_holds(cm.status, count, hold_at) {
                    let why = confab_core::modrules::flagged_reason(count);
                    exec(
                        c,
                        n,
                        "UPDATE comments SET status = 'pending', held_reason = ? WHERE id = ?",
                        &[text(&why), int(id.0)],
                    )?;
                    let seq = shift_counters(c, n, &cm, cm.status, CommentStatus::Pending)?.seq;
                    let detail = rules::status_detail(cm.status, CommentStatus::Pending);
                    log_action(c, n, cm.forum_id, None, "hold", Some(id), &detail)?;
                    let cm = Comment { flag_count: count, held_reason: Some(why), ..cm };
                    held = Some(rules::status_changed(cm, CommentStatus::Pending, seq));
                }
                Ok(Flagged { count, thread_id, held })
            })
            .await
            .map(Written::here)
    }
}

//! The spam check's records (`crate::spam`).

use super::*;
use crate::rules;
use crate::{SpamFacts, SpamStore, StatusChange};

pub(super) fn insert_facts(
    c: &Connection,
    n: &Counter,
    id: CommentId,
    shard: LogicalShard,
    f: &SpamFacts,
    now: i64,
) -> StoreResult<()> {
    exec(
        c,
        n,
        "INSERT INTO spam_facts (comment_id, shard, user_ip, user_agent, referrer, permalink, lang, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[int(id.0), int(i64::from(shard.get())), text(&f.user_ip), text(&f.user_agent), text(&f.referrer), text(&f.permalink), text(&f.lang), int(now)],
    )?;
    Ok(())
}

#[async_trait]
impl SpamStore for SqliteStore {
    async fn spam_facts(&self, comment: CommentId) -> StoreResult<Option<SpamFacts>> {
        self.pool
            .read(move |c, n| {
                row(
                    c,
                    n,
                    "SELECT user_ip, user_agent, referrer, permalink, lang FROM spam_facts WHERE comment_id = ?",
                    &[int(comment.0)],
                    |r| {
                        Ok(SpamFacts {
                            user_ip: r.get(0)?,
                            user_agent: r.get(1)?,
                            referrer: r.get(2)?,
                            permalink: r.get(3)?,
                            lang: r.get(4)?,
                        })
                    },
                )
            })
            .await
    }

    async fn spam_verdict(
        &self,
        forum: &Forum,
        comment: CommentId,
        expect: CommentStatus,
        reason: &str,
    ) -> StoreResult<Written<Option<StatusChange>>> {
        let (forum_id, reason) = (forum.id, reason.to_string());
        self.pool
            .write(move |c, n| {
                let Some(cm) = load_comment(c, n, comment)?.filter(|cm| cm.forum_id == forum_id)
                else {
                    return Ok(None);
                };
                if cm.status != expect {
                    return Ok(None);
                }
                let to = CommentStatus::Spam;
                exec(
                    c,
                    n,
                    "UPDATE comments SET status = ?, held_reason = ? WHERE id = ?",
                    &[text(to.as_str()), text(&reason), int(comment.0)],
                )?;
                let seq = shift_counters(c, n, &cm, cm.status, to)?.seq;
                log_action(
                    c,
                    n,
                    forum_id,
                    None,
                    "spam",
                    Some(comment),
                    &format!("{}: {reason}", rules::status_detail(cm.status, to)),
                )?;
                let mut change = rules::status_changed(cm, to, seq);
                change.comment.held_reason = Some(reason);
                Ok(Some(change))
            })
            .await
            .map(Written::here)
    }

    async fn prune_spam_facts(&self, before: i64) -> StoreResult<u64> {
        self.pool
            .write(move |c, n| {
                Ok(exec(
                    c,
                    n,
                    "DELETE FROM spam_facts WHERE created_at < ?",
                    &[int(before)],
                )? as u64)
            })
            .await
    }
}

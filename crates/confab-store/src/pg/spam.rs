//! The spam check's records (`crate::spam`).

use super::*;
use crate::rules;
use crate::{SpamFacts, SpamStore, StatusChange};

#[async_trait]
impl SpamStore for PgStore {
    async fn spam_facts(&self, comment: CommentId) -> StoreResult<Option<SpamFacts>> {
        read_on!(self, shard_of(comment.0), ReadFrom::Primary, |c, n| {
            Ok(row(
                &c,
                &n,
                "SELECT user_ip, user_agent, referrer, permalink, lang FROM spam_facts WHERE comment_id = $1",
                &[&comment.0],
            )
            .await?
            .map(|r| SpamFacts {
                user_ip: r.get(0),
                user_agent: r.get(1),
                referrer: r.get(2),
                permalink: r.get(3),
                lang: r.get(4),
            }))
        })
    }

    async fn spam_verdict(
        &self,
        forum: &Forum,
        comment: CommentId,
        expect: CommentStatus,
        reason: &str,
    ) -> StoreResult<Written<Option<StatusChange>>> {
        let (forum_id, shard) = (forum.id, forum.shard);
        if shard_of(comment.0) != shard {
            return Ok(Written {
                value: None,
                at: None,
            });
        }
        write_tx!(self, shard, |tx, n| {
            let Some(cm) = load_comment(tx, &n, comment)
                .await?
                .filter(|cm| cm.forum_id == forum_id)
            else {
                return Ok(None);
            };
            if cm.status != expect {
                return Ok(None);
            }
            let to = CommentStatus::Spam;
            exec(
                tx,
                &n,
                "UPDATE comments SET status = $1, held_reason = $2 WHERE id = $3",
                &[&to.as_str(), &reason, &comment.0],
            )
            .await?;
            let seq = shift_counters(tx, &n, &cm, cm.status, to).await?.seq;
            log_action(
                tx,
                &n,
                shard,
                forum_id,
                None,
                "spam",
                Some(comment),
                &format!("{}: {reason}", rules::status_detail(cm.status, to)),
            )
            .await?;
            let mut change = rules::status_changed(cm, to, seq);
            change.comment.held_reason = Some(reason.to_string());
            Ok(Some(change))
        })
    }

    async fn prune_spam_facts(&self, before: i64) -> StoreResult<u64> {
        let mut total = 0;
        for s in self.r.servers() {
            let c = s.primary().await?;
            let n = s.counter(crate::Target::Primary);
            total += exec(
                &c,
                &n,
                "DELETE FROM spam_facts WHERE created_at < $1",
                &[&before],
            )
            .await?;
        }
        Ok(total)
    }
}

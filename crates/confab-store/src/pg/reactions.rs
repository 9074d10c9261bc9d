//! Reactions and featured comments.

use super::*;
use crate::rules;

/// One reader's change on a row of `table` (`comments` or `threads`, whose `reactions` column
/// holds the counts), in the caller's transaction: the per-reader row, the count (`n = n + d`
/// inside the statement), and the reader's reactions after it. Returns (counts, mine, changed).
async fn react_on<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    table: &str,
    target: i64,
    reactor: &str,
    reaction: Reaction,
    on: bool,
) -> StoreResult<(ReactionCounts, Vec<Reaction>, bool)> {
    let name = reaction.as_str();
    let changed = if on {
        exec(
            c,
            n,
            "INSERT INTO reactions (target_id, reactor, emoji, shard, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
            &[&target, &reactor, &name, &sh(shard_of(target)), &confab_core::now_ms()],
        )
        .await?
    } else {
        exec(
            c,
            n,
            "DELETE FROM reactions WHERE target_id = $1 AND reactor = $2 AND emoji = $3",
            &[&target, &reactor, &name],
        )
        .await?
    } > 0;
    let d = rules::reaction_shift(changed, on);
    let sql = format!(
        "UPDATE {table} SET reactions = jsonb_set(reactions::jsonb, ARRAY[$1::text], \
         to_jsonb(coalesce((reactions::jsonb ->> $1::text)::bigint, 0) + $2::bigint))::text \
         WHERE id = $3 RETURNING reactions"
    );
    let counts: String = row(c, n, &sql, &[&name, &d, &target])
        .await?
        .ok_or_else(DomainError::internal)?
        .get(0);
    let mine = rows(
        c,
        n,
        "SELECT emoji FROM reactions WHERE target_id = $1 AND reactor = $2",
        &[&target, &reactor],
    )
    .await?;
    let mut mine: Vec<Reaction> = mine
        .iter()
        .filter_map(|r| Reaction::parse(r.get::<_, &str>(0)).ok())
        .collect();
    mine.sort();
    Ok((ReactionCounts::from_json(&counts), mine, changed))
}

#[async_trait]
impl ReactionStore for PgStore {
    async fn react_comment(
        &self,
        id: CommentId,
        reactor: &str,
        reaction: Reaction,
        on: bool,
    ) -> StoreResult<Written<Reacted>> {
        let shard = shard_of(id.0);
        write_tx!(self, shard, |tx, n| {
            // Lock the comment row: concurrent changes to it serialize here.
            let found = row(
                tx,
                &n,
                "SELECT status, thread_id FROM comments WHERE id = $1 FOR UPDATE",
                &[&id.0],
            )
            .await?
            .ok_or_else(|| DomainError::not_found("comment"))?;
            rules::votable(CommentStatus::parse(found.get(0)).unwrap_or(CommentStatus::Deleted))?;
            let thread_id = ThreadId(found.get(1));
            let (counts, mine, changed) =
                react_on(tx, &n, "comments", id.0, reactor, reaction, on).await?;
            let thread_seq = if changed {
                Some(bump_seq(tx, &n, thread_id).await?)
            } else {
                None
            };
            Ok(Reacted {
                counts,
                mine,
                thread_id,
                thread_seq,
            })
        })
    }

    async fn react_thread(
        &self,
        id: ThreadId,
        reactor: &str,
        reaction: Reaction,
        on: bool,
    ) -> StoreResult<Written<Reacted>> {
        let shard = shard_of(id.0);
        write_tx!(self, shard, |tx, n| {
            row(
                tx,
                &n,
                "SELECT id FROM threads WHERE id = $1 FOR UPDATE",
                &[&id.0],
            )
            .await?
            .ok_or_else(|| DomainError::not_found("thread"))?;
            let (counts, mine, changed) =
                react_on(tx, &n, "threads", id.0, reactor, reaction, on).await?;
            let thread_seq = if changed {
                Some(bump_seq(tx, &n, id).await?)
            } else {
                None
            };
            Ok(Reacted {
                counts,
                mine,
                thread_id: id,
                thread_seq,
            })
        })
    }

    async fn reactions_of(
        &self,
        reactor: &str,
        targets: &[i64],
    ) -> StoreResult<Vec<(i64, Reaction)>> {
        // Ids carry their shard: one statement per shard (a thread and its comments share one).
        let mut by_shard: std::collections::BTreeMap<LogicalShard, Vec<i64>> = Default::default();
        for t in targets {
            by_shard.entry(shard_of(*t)).or_default().push(*t);
        }
        let mut out = Vec::new();
        for (shard, ids) in by_shard {
            let found = read_on!(self, shard, ReadFrom::Replica, |c, n| {
                rows(
                    &c,
                    &n,
                    "SELECT target_id, emoji FROM reactions WHERE reactor = $1 AND target_id = ANY($2)",
                    &[&reactor, &ids],
                )
                .await
            })?;
            out.extend(found.iter().filter_map(|r| {
                Some((
                    r.get::<_, i64>(0),
                    Reaction::parse(r.get::<_, &str>(1)).ok()?,
                ))
            }));
        }
        Ok(out)
    }

    async fn feature(
        &self,
        id: CommentId,
        actor: AccountId,
        on: bool,
    ) -> StoreResult<Written<StatusChange>> {
        let shard = shard_of(id.0);
        write_tx!(self, shard, |tx, n| {
            let cm = row(
                tx,
                &n,
                &format!("SELECT {COMMENT_COLS} FROM comments WHERE id = $1 FOR UPDATE"),
                &[&id.0],
            )
            .await?
            .map(|r| comment_row(&r))
            .ok_or_else(|| DomainError::not_found("comment"))?;
            rules::votable(cm.status)?;
            if cm.featured == on {
                return Ok(StatusChange {
                    old: cm.status,
                    comment: cm,
                    thread_seq: None,
                });
            }
            let at = on.then(confab_core::now_ms);
            exec(
                tx,
                &n,
                "UPDATE comments SET featured_at = $1 WHERE id = $2",
                &[&at, &id.0],
            )
            .await?;
            let action = rules::feature_action(on);
            log_action(
                tx,
                &n,
                shard,
                cm.forum_id,
                Some(actor),
                action,
                Some(id),
                "",
            )
            .await?;
            let seq = bump_seq(tx, &n, cm.thread_id).await?;
            Ok(StatusChange {
                old: cm.status,
                comment: Comment { featured: on, ..cm },
                thread_seq: Some(seq),
            })
        })
    }
}

//! Reactions and featured comments.

use super::*;
use crate::rules;

/// One reader's change on a row of `table` (`comments` or `threads`, whose `reactions` column
/// holds the counts), in the caller's transaction: the per-reader row, the count (`n = n + d`
/// inside the statement), and the reader's reactions after it. Returns (counts, mine, changed).
fn react_on(
    c: &Connection,
    n: &Counter,
    table: &str,
    target: i64,
    reactor: &str,
    reaction: Reaction,
    on: bool,
) -> StoreResult<(ReactionCounts, Vec<Reaction>, bool)> {
    let changed = if on {
        exec(
            c,
            n,
            "INSERT OR IGNORE INTO reactions (target_id, reactor, emoji, shard, created_at) VALUES (?, ?, ?, ?, ?)",
            &[
                int(target),
                text(reactor),
                text(reaction.as_str()),
                int(i64::from(id::unpack(target).shard.get())),
                int(confab_core::now_ms()),
            ],
        )?
    } else {
        exec(
            c,
            n,
            "DELETE FROM reactions WHERE target_id = ? AND reactor = ? AND emoji = ?",
            &[int(target), text(reactor), text(reaction.as_str())],
        )?
    } > 0;
    let d = rules::reaction_shift(changed, on);
    let sql = format!(
        "UPDATE {table} SET reactions = json_set(reactions, ?1, coalesce(json_extract(reactions, ?1), 0) + ?2) \
         WHERE id = ?3 RETURNING reactions"
    );
    let counts: String = row(
        c,
        n,
        &sql,
        &[text(&reaction.json_path()), int(d), int(target)],
        |r| r.get(0),
    )?
    .ok_or_else(DomainError::internal)?;
    let mine = rows(
        c,
        n,
        "SELECT emoji FROM reactions WHERE target_id = ? AND reactor = ?",
        &[int(target), text(reactor)],
        |r| r.get::<_, String>(0),
    )?;
    let mut mine: Vec<Reaction> = mine
        .iter()
        .filter_map(|e| Reaction::parse(e).ok())
        .collect();
    mine.sort();
    Ok((ReactionCounts::from_json(&counts), mine, changed))
}

#[async_trait]
impl ReactionStore for SqliteStore {
    async fn react_comment(
        &self,
        id: CommentId,
        reactor: &str,
        reaction: Reaction,
        on: bool,
    ) -> StoreResult<Written<Reacted>> {
        let reactor = reactor.to_string();
        self.pool
            .write(move |c, n| {
                let found: Option<(String, i64)> = row(
                    c,
                    n,
                    "SELECT status, thread_id FROM comments WHERE id = ?",
                    &[int(id.0)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let (status, thread) = found.ok_or_else(|| DomainError::not_found("comment"))?;
                rules::votable(CommentStatus::parse(&status).unwrap_or(CommentStatus::Deleted))?;
                let thread_id = ThreadId(thread);
                let (counts, mine, changed) =
                    react_on(c, n, "comments", id.0, &reactor, reaction, on)?;
                let thread_seq = if changed {
                    Some(bump_seq(c, n, thread_id)?)
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
            .await
            .map(Written::here)
    }

    async fn react_thread(
        &self,
        id: ThreadId,
        reactor: &str,
        reaction: Reaction,
        on: bool,
    ) -> StoreResult<Written<Reacted>> {
        let reactor = reactor.to_string();
        self.pool
            .write(move |c, n| {
                load_thread(c, n, id)?.ok_or_else(|| DomainError::not_found("thread"))?;
                let (counts, mine, changed) =
                    react_on(c, n, "threads", id.0, &reactor, reaction, on)?;
                let thread_seq = if changed {
                    Some(bump_seq(c, n, id)?)
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
            .await
            .map(Written::here)
    }

    async fn reactions_of(
        &self,
        reactor: &str,
        targets: &[i64],
    ) -> StoreResult<Vec<(i64, Reaction)>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        // One statement whatever the number of ids (a JSON array), as `votes_of` does.
        let list = format!(
            "[{}]",
            targets
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let args = vec![text(reactor), Value::Text(list)];
        let found = self
            .pool
            .read(move |c, n| {
                let sql = "SELECT target_id, emoji FROM reactions WHERE reactor = ? AND target_id IN (SELECT value FROM json_each(?))";
                rows(c, n, sql, &args, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            })
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|(t, e)| Some((t, Reaction::parse(&e).ok()?)))
            .collect())
    }

    async fn feature(
        &self,
        id: CommentId,
        actor: AccountId,
        on: bool,
    ) -> StoreResult<Written<StatusChange>> {
        self.pool
            .write(move |c, n| {
                let cm =
                    load_comment(c, n, id)?.ok_or_else(|| DomainError::not_found("comment"))?;
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
                    c,
                    n,
                    "UPDATE comments SET featured_at = ? WHERE id = ?",
                    &[at.map_or(Value::Null, int), int(id.0)],
                )?;
                log_action(
                    c,
                    n,
                    cm.forum_id,
                    Some(actor),
                    rules::feature_action(on),
                    Some(id),
                    "",
                )?;
                let seq = bump_seq(c, n, cm.thread_id)?;
                Ok(StatusChange {
                    old: cm.status,
                    comment: Comment { featured: on, ..cm },
                    thread_seq: Some(seq),
                })
            })
            .await
            .map(Written::here)
    }
}

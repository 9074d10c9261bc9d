//! Imports: whole threads in one transaction on the forum's shard primary (see
//! [`crate::ImportStore`]); the twin of `sqlite/import.rs`.

use super::*;
use crate::import::{attach, ImportBatch, ImportStore, Imported, Placed, Tally};

fn placed_of(r: &Row) -> (Placed, i64) {
    (
        Placed {
            id: CommentId(r.get(0)),
            depth: r.get(1),
            parent: r.get::<_, Option<i64>>(2).map(CommentId),
        },
        r.get(3),
    )
}

async fn imported_before<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    forum: ForumId,
    source: &str,
    source_id: &str,
) -> StoreResult<Option<(Placed, i64)>> {
    Ok(row(
        c,
        n,
        "SELECT cm.id, cm.depth, cm.parent_id, cm.thread_id FROM imported i JOIN comments cm ON cm.id = i.comment_id \
         WHERE i.forum_id = $1 AND i.source = $2 AND i.source_id = $3",
        &[&forum.0, &source, &source_id],
    )
    .await?
    .as_ref()
    .map(placed_of))
}

async fn placed_by_id<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    id: CommentId,
) -> StoreResult<Option<Placed>> {
    Ok(row(
        c,
        n,
        "SELECT id, depth, parent_id, thread_id FROM comments WHERE id = $1",
        &[&id.0],
    )
    .await?
    .as_ref()
    .map(|r| placed_of(r).0))
}

async fn import_batch<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    forum: &Forum,
    batch: &ImportBatch,
) -> StoreResult<Imported> {
    let mut out = Imported::default();
    let mut tally = Tally::default();
    let shard = sh(forum.shard);
    let source = batch.source.as_str();
    let now = confab_core::now_ms();
    for t in &batch.threads {
        let mut found = None;
        for i in std::iter::once(&t.ident).chain(&t.aliases) {
            if let Some(th) = thread_by_ident(c, n, forum.id, i).await? {
                found = Some(th);
                break;
            }
        }
        let mut changed = false;
        let (thread_id, primary) = match found {
            Some(th) => {
                out.threads_existing += 1;
                if t.closed && !th.closed {
                    exec(
                        c,
                        n,
                        "UPDATE threads SET closed = true, seq = seq + 1 WHERE id = $1",
                        &[&th.id.0],
                    )
                    .await?;
                    changed = true;
                }
                (th.id, th.ident)
            }
            None => {
                let id: i64 = row(
                    c,
                    n,
                    "INSERT INTO threads (id, shard, forum_id, ident, url, title, closed, created_at) \
                     VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[&shard, &forum.id.0, &t.ident.as_str(), &t.url, &t.title, &t.closed, &t.created_at],
                )
                .await?
                .ok_or_else(DomainError::internal)?
                .get(0);
                out.threads_created += 1;
                changed = true;
                (ThreadId(id), t.ident.clone())
            }
        };
        for alias in std::iter::once(&t.ident).chain(&t.aliases) {
            if *alias == primary {
                continue;
            }
            match thread_by_ident(c, n, forum.id, alias).await? {
                Some(other) if other.id == thread_id => {}
                Some(_) => out.aliases_taken += 1,
                None => {
                    exec(
                        c,
                        n,
                        "INSERT INTO thread_aliases (forum_id, ident, thread_id, shard, created_at) VALUES ($1, $2, $3, $4, $5)",
                        &[&forum.id.0, &alias.as_str(), &thread_id.0, &shard, &now],
                    )
                    .await?;
                    exec(
                        c,
                        n,
                        "UPDATE threads SET aliased = true WHERE id = $1",
                        &[&thread_id.0],
                    )
                    .await?;
                    changed = true;
                }
            }
        }
        let mut by_source: HashMap<&str, Placed> = HashMap::new();
        let mut by_id: HashMap<CommentId, Placed> = HashMap::new();
        for cm in &t.comments {
            if imported_before(c, n, forum.id, source, &cm.source_id)
                .await?
                .is_some()
            {
                out.comments_present += 1;
                continue;
            }
            let parent = match &cm.parent_source_id {
                None => None,
                Some(ps) => match by_source.get(ps.as_str()) {
                    Some(p) => Some(*p),
                    None => imported_before(c, n, forum.id, source, ps)
                        .await?
                        .filter(|(_, th)| *th == thread_id.0)
                        .map(|(p, _)| p),
                },
            };
            if cm.parent_source_id.is_some() && parent.is_none() {
                out.orphans += 1;
            }
            // The depth cap's climb, with the ancestors this batch placed or loaded from the shard.
            let (parent_id, depth) = match parent {
                Some(p) if p.depth >= batch.max_depth => {
                    let mut chain = HashMap::new();
                    let mut cur = p;
                    while cur.depth >= batch.max_depth {
                        let Some(up) = cur.parent else { break };
                        let next = match by_id.get(&up) {
                            Some(q) => Some(*q),
                            None => placed_by_id(c, n, up).await?,
                        };
                        let Some(next) = next else { break };
                        chain.insert(up, next);
                        cur = next;
                    }
                    attach(Some(p), batch.max_depth, |id| Ok(chain.get(&id).copied()))?
                }
                p => attach(p, batch.max_depth, |_| Ok(None))?,
            };
            let (gname, gemail, gurl, account) = match &cm.author {
                Author::Account(a) => (None, None, None, Some(a.0)),
                Author::Guest { name, email, url } => {
                    (Some(name.as_str()), email.as_deref(), url.as_deref(), None)
                }
            };
            let id: i64 = row(
                c,
                n,
                "INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, guest_name, \
                 guest_email, guest_url, body_md, body_html, status, created_at, ip_hash) \
                 VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '') RETURNING id",
                &[
                    &shard,
                    &thread_id.0,
                    &forum.id.0,
                    &parent_id.map(|p| p.0),
                    &depth,
                    &account,
                    &gname,
                    &gemail,
                    &gurl,
                    &cm.body_md,
                    &cm.body_html,
                    &cm.status.as_str(),
                    &cm.created_at,
                ],
            )
            .await?
            .ok_or_else(DomainError::internal)?
            .get(0);
            let id = CommentId(id);
            exec(
                c,
                n,
                "INSERT INTO imported (forum_id, source, source_id, comment_id, shard) VALUES ($1, $2, $3, $4, $5)",
                &[&forum.id.0, &source, &cm.source_id, &id.0, &shard],
            )
            .await?;
            tally.comment(thread_id, parent_id, cm.status);
            let placed = Placed {
                id,
                depth,
                parent: parent_id,
            };
            by_source.insert(cm.source_id.as_str(), placed);
            by_id.insert(id, placed);
            out.comments_added += 1;
            changed = true;
        }
        if changed {
            let mut idents = vec![primary];
            idents.extend(
                rows(
                    c,
                    n,
                    "SELECT ident FROM thread_aliases WHERE thread_id = $1",
                    &[&thread_id.0],
                )
                .await?
                .iter()
                .map(|r| Ident::from_stored(r.get(0))),
            );
            out.changed.push((thread_id, idents));
        }
    }
    for (thread, (approved, hidden, seq)) in &tally.threads {
        exec(
            c,
            n,
            "UPDATE threads SET comment_count = comment_count + $1, hidden_count = hidden_count + $2, seq = seq + $3 WHERE id = $4",
            &[approved, hidden, seq, &thread.0],
        )
        .await?;
    }
    for (parent, replies) in &tally.parents {
        exec(
            c,
            n,
            "UPDATE comments SET reply_count = reply_count + $1 WHERE id = $2",
            &[replies, &parent.0],
        )
        .await?;
    }
    Ok(out)
}

#[async_trait]
impl ImportStore for PgStore {
    async fn thread_aliases(&self, thread: ThreadId) -> StoreResult<Vec<Ident>> {
        read_on!(self, shard_of(thread.0), ReadFrom::Primary, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT ident FROM thread_aliases WHERE thread_id = $1",
                &[&thread.0],
            )
            .await?
            .iter()
            .map(|r| Ident::from_stored(r.get(0)))
            .collect())
        })
    }

    async fn import_batch(
        &self,
        forum: &Forum,
        batch: ImportBatch,
    ) -> StoreResult<Written<Imported>> {
        write_tx!(self, forum.shard, |tx, n| {
            import_batch(&tx, &n, forum, &batch).await
        })
    }
}

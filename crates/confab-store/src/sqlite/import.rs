//! Imports: whole threads in one writer transaction (see [`crate::ImportStore`]).

use super::*;
use crate::import::{
    attach, ImportBatch, ImportRecord, ImportState, ImportStore, ImportUpdate, Imported, Moved,
    NewImportRecord, Placed, Tally, ThreadMove,
};
use std::collections::HashMap;

fn placed_row(r: &Row<'_>) -> rusqlite::Result<(Placed, i64)> {
    Ok((
        Placed {
            id: CommentId(r.get(0)?),
            depth: r.get(1)?,
            parent: r.get::<_, Option<i64>>(2)?.map(CommentId),
        },
        r.get(3)?,
    ))
}

/// A comment imported earlier from `source` (with its thread id).
fn imported_before(
    c: &Connection,
    n: &Counter,
    forum: ForumId,
    source: &str,
    source_id: &str,
) -> StoreResult<Option<(Placed, i64)>> {
    row(
        c,
        n,
        "SELECT cm.id, cm.depth, cm.parent_id, cm.thread_id FROM imported i JOIN comments cm ON cm.id = i.comment_id \
         WHERE i.forum_id = ? AND i.source = ? AND i.source_id = ?",
        &[int(forum.0), text(source), text(source_id)],
        placed_row,
    )
}

fn placed_by_id(c: &Connection, n: &Counter, id: CommentId) -> StoreResult<Option<Placed>> {
    Ok(row(
        c,
        n,
        "SELECT id, depth, parent_id, thread_id FROM comments WHERE id = ?",
        &[int(id.0)],
        placed_row,
    )?
    .map(|(p, _)| p))
}

pub(super) fn import_batch(
    c: &Connection,
    n: &Counter,
    ids: &IdGenerator,
    forum: &Forum,
    batch: ImportBatch,
) -> StoreResult<Imported> {
    let mut out = Imported::default();
    let mut tally = Tally::default();
    let shard = i64::from(forum.shard.get());
    let source = batch.source.as_str();
    for t in batch.threads {
        let mut found = None;
        for i in std::iter::once(&t.ident).chain(&t.aliases) {
            if let Some(th) = thread_by_ident(c, n, forum.id, i)? {
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
                        "UPDATE threads SET closed = 1, seq = seq + 1 WHERE id = ?",
                        &[int(th.id.0)],
                    )?;
                    changed = true;
                }
                (th.id, th.ident)
            }
            None => {
                let id = ThreadId(ids.next(forum.shard));
                exec(
                    c,
                    n,
                    "INSERT INTO threads (id, shard, forum_id, ident, url, title, closed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    &[
                        int(id.0),
                        int(shard),
                        int(forum.id.0),
                        text(t.ident.as_str()),
                        opt_text(t.url.as_deref()),
                        opt_text(t.title.as_deref()),
                        int(i64::from(t.closed)),
                        int(t.created_at),
                    ],
                )?;
                out.threads_created += 1;
                changed = true;
                (id, t.ident.clone())
            }
        };
        for alias in std::iter::once(&t.ident).chain(&t.aliases) {
            if *alias == primary {
                continue;
            }
            match thread_by_ident(c, n, forum.id, alias)? {
                Some(other) if other.id == thread_id => {}
                Some(_) => out.aliases_taken += 1,
                None => {
                    exec(
                        c,
                        n,
                        "INSERT INTO thread_aliases (forum_id, ident, thread_id, shard, created_at) VALUES (?, ?, ?, ?, ?)",
                        &[int(forum.id.0), text(alias.as_str()), int(thread_id.0), int(shard), int(confab_core::now_ms())],
                    )?;
                    exec(
                        c,
                        n,
                        "UPDATE threads SET aliased = 1 WHERE id = ?",
                        &[int(thread_id.0)],
                    )?;
                    changed = true;
                }
            }
        }
        // Comments of this batch by source id, and by id (to climb past the depth cap).
        let mut by_source: HashMap<String, Placed> = HashMap::new();
        let mut by_id: HashMap<CommentId, Placed> = HashMap::new();
        for cm in t.comments {
            if imported_before(c, n, forum.id, source, &cm.source_id)?.is_some() {
                out.comments_present += 1;
                continue;
            }
            let parent = match &cm.parent_source_id {
                None => None,
                Some(ps) => match by_source.get(ps) {
                    Some(p) => Some(*p),
                    None => imported_before(c, n, forum.id, source, ps)?
                        .filter(|(_, th)| *th == thread_id.0)
                        .map(|(p, _)| p),
                },
            };
            if cm.parent_source_id.is_some() && parent.is_none() {
                out.orphans += 1;
            }
            let (parent_id, depth) = attach(parent, batch.max_depth, |id| match by_id.get(&id) {
                Some(p) => Ok(Some(*p)),
                None => placed_by_id(c, n, id),
            })?;
            let id = CommentId(ids.next(forum.shard));
            let (gname, gemail, gurl, account) = match &cm.author {
                Author::Account(a) => (None, None, None, Some(a.0)),
                Author::Guest { name, email, url } => {
                    (Some(name.as_str()), email.as_deref(), url.as_deref(), None)
                }
            };
            exec(
                c,
                n,
                "INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, guest_name, \
                 guest_email, guest_url, body_md, body_html, status, created_at, ip_hash) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                &[
                    int(id.0),
                    int(shard),
                    int(thread_id.0),
                    int(forum.id.0),
                    parent_id.map_or(Value::Null, |p| int(p.0)),
                    int(i64::from(depth)),
                    account.map_or(Value::Null, int),
                    opt_text(gname),
                    opt_text(gemail),
                    opt_text(gurl),
                    text(&cm.body_md),
                    text(&cm.body_html),
                    text(cm.status.as_str()),
                    int(cm.created_at),
                ],
            )?;
            exec(
                c,
                n,
                "INSERT INTO imported (forum_id, source, source_id, comment_id, shard) VALUES (?, ?, ?, ?, ?)",
                &[int(forum.id.0), text(source), text(&cm.source_id), int(id.0), int(shard)],
            )?;
            tally.comment(thread_id, parent_id, cm.status);
            let placed = Placed {
                id,
                depth,
                parent: parent_id,
            };
            by_source.insert(cm.source_id, placed);
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
                    "SELECT ident FROM thread_aliases WHERE thread_id = ?",
                    &[int(thread_id.0)],
                    |r| r.get::<_, String>(0),
                )?
                .into_iter()
                .map(Ident::from_stored),
            );
            out.changed.push((thread_id, idents));
        }
    }
    for (thread, (approved, hidden, seq)) in tally.threads {
        exec(
            c,
            n,
            "UPDATE threads SET comment_count = comment_count + ?, hidden_count = hidden_count + ?, seq = seq + ? WHERE id = ?",
            &[int(approved), int(hidden), int(seq), int(thread.0)],
        )?;
    }
    for (parent, replies) in tally.parents {
        exec(
            c,
            n,
            "UPDATE comments SET reply_count = reply_count + ? WHERE id = ?",
            &[int(replies), int(parent.0)],
        )?;
    }
    Ok(out)
}

fn move_thread(c: &Connection, n: &Counter, forum: &Forum, m: &ThreadMove) -> StoreResult<Moved> {
    let Some(t) = thread_by_ident(c, n, forum.id, &m.from)? else {
        return Ok(Moved::NoThread);
    };
    let already = match thread_by_ident(c, n, forum.id, &m.to)? {
        Some(other) if other.id != t.id => return Ok(Moved::Taken(other)),
        Some(_) => true,
        None => false,
    };
    if !already {
        exec(
            c,
            n,
            "INSERT INTO thread_aliases (forum_id, ident, thread_id, shard, created_at) VALUES (?, ?, ?, ?, ?)",
            &[int(forum.id.0), text(m.to.as_str()), int(t.id.0), int(i64::from(forum.shard.get())), int(confab_core::now_ms())],
        )?;
        exec(
            c,
            n,
            "UPDATE threads SET aliased = 1 WHERE id = ?",
            &[int(t.id.0)],
        )?;
        log_action(
            c,
            n,
            forum.id,
            m.actor,
            "alias",
            None,
            &format!(
                "thread {} {}: also {}",
                t.id,
                t.ident.as_str(),
                m.to.as_str()
            ),
        )?;
    }
    if let Some(url) = m.url.as_deref().filter(|u| t.url.as_deref() != Some(*u)) {
        exec(
            c,
            n,
            "UPDATE threads SET url = ? WHERE id = ?",
            &[text(url), int(t.id.0)],
        )?;
    }
    let t = load_thread(c, n, t.id)?.ok_or_else(DomainError::internal)?;
    Ok(if already {
        Moved::Already(t)
    } else {
        Moved::Added(t)
    })
}

const IMPORT_COLS: &str = "id, forum_id, actor, format, file_name, bytes, state, posts_read, \
    comments_total, comments_written, summary, error, started_at, finished_at, updated_at";

fn import_row(r: &Row<'_>) -> rusqlite::Result<ImportRecord> {
    let state: String = r.get(6)?;
    Ok(ImportRecord {
        id: r.get(0)?,
        forum_id: ForumId(r.get(1)?),
        actor: r.get::<_, Option<i64>>(2)?.map(AccountId),
        format: r.get(3)?,
        file_name: r.get(4)?,
        bytes: r.get(5)?,
        // An unknown state (a newer node's) reads as failed rather than as running forever.
        state: ImportState::parse(&state).unwrap_or(ImportState::Failed),
        posts_read: r.get(7)?,
        comments_total: r.get(8)?,
        comments_written: r.get(9)?,
        summary: r.get(10)?,
        error: r.get(11)?,
        started_at: r.get(12)?,
        finished_at: r.get(13)?,
        updated_at: r.get(14)?,
    })
}

#[async_trait]
impl ImportStore for SqliteStore {
    async fn log_import(
        &self,
        forum: &Forum,
        actor: Option<AccountId>,
        detail: &str,
    ) -> StoreResult<()> {
        let (forum, detail) = (forum.id, detail.to_string());
        self.pool
            .write(move |c, n| log_action(c, n, forum, actor, "import", None, &detail))
            .await
    }

    async fn create_import(&self, new: NewImportRecord) -> StoreResult<ImportRecord> {
        self.pool
            .write(move |c, n| {
                let now = confab_core::now_ms();
                row(
                    c,
                    n,
                    &format!(
                        "INSERT INTO imports (forum_id, actor, format, file_name, state, started_at, updated_at) \
                         VALUES (?, ?, ?, ?, 'running', ?, ?) RETURNING {IMPORT_COLS}"
                    ),
                    &[
                        int(new.forum_id.0),
                        new.actor.map_or(Value::Null, |a| int(a.0)),
                        text(&new.format),
                        text(&new.file_name),
                        int(now),
                        int(now),
                    ],
                    import_row,
                )?
                .ok_or_else(DomainError::internal)
            })
            .await
    }

    async fn update_import(&self, id: i64, u: &ImportUpdate) -> StoreResult<()> {
        let u = u.clone();
        self.pool
            .write(move |c, n| {
                let now = confab_core::now_ms();
                let state = u.ended.unwrap_or(ImportState::Running);
                exec(
                    c,
                    n,
                    "UPDATE imports SET bytes = ?, state = ?, posts_read = ?, comments_total = ?, \
                     comments_written = ?, summary = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                    &[
                        int(u.bytes),
                        text(state.as_str()),
                        int(u.posts_read),
                        int(u.comments_total),
                        int(u.comments_written),
                        text(&u.summary),
                        text(&u.error),
                        int(now),
                        u.ended.map_or(Value::Null, |_| int(now)),
                        int(id),
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn imports(&self, forum: ForumId, limit: usize) -> StoreResult<Vec<ImportRecord>> {
        self.pool
            .read(move |c, n| {
                rows(
                    c,
                    n,
                    &format!(
                        "SELECT {IMPORT_COLS} FROM imports WHERE forum_id = ? ORDER BY id DESC LIMIT ?"
                    ),
                    &[int(forum.0), int(limit as i64)],
                    import_row,
                )
            })
            .await
    }

    async fn import_record(&self, forum: ForumId, id: i64) -> StoreResult<Option<ImportRecord>> {
        self.pool
            .read(move |c, n| {
                row(
                    c,
                    n,
                    &format!("SELECT {IMPORT_COLS} FROM imports WHERE forum_id = ? AND id = ?"),
                    &[int(forum.0), int(id)],
                    import_row,
                )
            })
            .await
    }

    async fn move_thread(&self, forum: &Forum, m: ThreadMove) -> StoreResult<Written<Moved>> {
        let forum = forum.clone();
        self.pool
            .write(move |c, n| move_thread(c, n, &forum, &m))
            .await
            .map(Written::here)
    }

    async fn thread_aliases(&self, thread: ThreadId) -> StoreResult<Vec<Ident>> {
        self.pool
            .read(move |c, n| {
                Ok(rows(
                    c,
                    n,
                    "SELECT ident FROM thread_aliases WHERE thread_id = ?",
                    &[int(thread.0)],
                    |r| r.get::<_, String>(0),
                )?
                .into_iter()
                .map(Ident::from_stored)
                .collect())
            })
            .await
    }

    async fn import_batch(
        &self,
        forum: &Forum,
        batch: ImportBatch,
    ) -> StoreResult<Written<Imported>> {
        let ids = self.ids.clone();
        let forum = forum.clone();
        self.pool
            .write(move |c, n| import_batch(c, n, &ids, &forum, batch))
            .await
            .map(Written::here)
    }
}

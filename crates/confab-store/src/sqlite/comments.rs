//! Threads and comments: reading pages, posting and editing.

use super::*;
use crate::rules;

/// The write transaction of a new comment: thread on first comment, comment, counters,
/// idempotency record, all or nothing.
pub(super) fn insert_comment(
    c: &Connection,
    n: &Counter,
    ids: &IdGenerator,
    new: NewComment,
) -> StoreResult<Posted> {
    if let Some(idem) = &new.idempotency {
        let prior: Option<(i64, String)> = row(
            c,
            n,
            "SELECT comment_id, request_hash FROM idempotency WHERE scope = ? AND key = ?",
            &[text(&idem.scope), text(&idem.key)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let Some((id, hash)) = prior {
            idem.check_replay(&hash)?;
            let comment = load_comment(c, n, CommentId(id))?.ok_or_else(DomainError::internal)?;
            let thread = load_thread(c, n, comment.thread_id)?.ok_or_else(DomainError::internal)?;
            return Ok(Posted {
                comment,
                thread,
                replayed: true,
            });
        }
    }
    let forum = &new.forum;
    let thread = thread_by_ident(c, n, forum.id, &new.ident)?;
    let thread_id = match thread {
        Some(t) => {
            crate::rules::thread_open(&t)?;
            if crate::rules::fills_thread(&t, &new) {
                exec(
                    c,
                    n,
                    "UPDATE threads SET url = coalesce(url, ?), title = coalesce(title, ?) WHERE id = ?",
                    &[opt_text(new.url.as_deref()), opt_text(new.title.as_deref()), int(t.id.0)],
                )?;
            }
            t.id
        }
        None => {
            let id = ThreadId(ids.next(forum.shard));
            exec(
                c,
                n,
                "INSERT INTO threads (id, shard, forum_id, ident, url, title, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                &[
                    int(id.0),
                    int(i64::from(forum.shard.get())),
                    int(forum.id.0),
                    text(new.ident.as_str()),
                    opt_text(new.url.as_deref()),
                    opt_text(new.title.as_deref()),
                    int(new.created_at),
                ],
            )?;
            id
        }
    };
    let (parent_id, depth) = match new.parent_id {
        None => (None, 0),
        Some(pid) => {
            let mut p = rules::reply_parent(load_comment(c, n, pid)?, thread_id)?;
            while let Some(up) = rules::climb(&p, new.max_depth) {
                p = load_comment(c, n, up)?.ok_or_else(DomainError::internal)?;
            }
            (Some(p.id), p.depth + 1)
        }
    };
    let id = CommentId(ids.next(forum.shard));
    let (account, gname, gemail, gurl) = match &new.author {
        Author::Account(a) => (Some(*a), None, None, None),
        Author::Guest { name, email, url } => {
            (None, Some(name.clone()), email.clone(), url.clone())
        }
    };
    exec(
        c,
        n,
        "INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
         guest_email, guest_url, body_md, body_html, status, created_at, ip_hash, held_reason, images) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            int(id.0),
            int(i64::from(forum.shard.get())),
            int(thread_id.0),
            int(forum.id.0),
            parent_id.map_or(Value::Null, |p: CommentId| int(p.0)),
            int(i64::from(depth)),
            account.map_or(Value::Null, |a| int(a.0)),
            opt_text(new.anon_id.as_deref()),
            opt_text(gname.as_deref()),
            opt_text(gemail.as_deref()),
            opt_text(gurl.as_deref()),
            text(&new.body_md),
            text(&new.body_html),
            text(new.status.as_str()),
            int(new.created_at),
            text(&new.ip_hash),
            opt_text(new.held_reason.as_deref()),
            opt_text(confab_core::media::encode_refs(&new.images).as_deref()),
        ],
    )?;
    super::media::attach(c, n, forum.id, id, &new.images)?;
    let comment = new.inserted(id, thread_id, parent_id, depth);
    let thread = shift_counters(c, n, &comment, rules::BEFORE_FIRST_STATUS, new.status)?;
    if let Some(idem) = &new.idempotency {
        exec(
            c,
            n,
            "INSERT INTO idempotency (scope, key, comment_id, created_at, request_hash) VALUES (?, ?, ?, ?, ?)",
            &[text(&idem.scope), text(&idem.key), int(id.0), int(new.created_at), text(&idem.request_hash)],
        )?;
    }
    if let Some(watch) = &new.notify {
        outbox::request_notify(c, n, id, forum.id, forum.shard, watch)?;
    }
    if let Some(f) = &new.spam_facts {
        super::spam::insert_facts(c, n, id, forum.shard, f, new.created_at)?;
    }
    // The outbox: the comment's tasks commit with it or not at all.
    for t in &new.tasks {
        let payload = crate::rules::comment_task_payload(t, id);
        outbox::insert_task(c, n, ids, forum.shard, t, &payload)?;
    }
    Ok(Posted {
        comment,
        thread,
        replayed: false,
    })
}

#[async_trait]
impl CommentStore for SqliteStore {
    async fn thread_by_ident(
        &self,
        forum: &Forum,
        ident: &Ident,
        _from: ReadFrom,
    ) -> StoreResult<Option<Thread>> {
        let (forum, ident) = (forum.id, ident.clone());
        self.pool
            .read(move |c, n| thread_by_ident(c, n, forum, &ident))
            .await
    }

    async fn thread(&self, id: ThreadId, _from: ReadFrom) -> StoreResult<Option<Thread>> {
        self.pool.read(move |c, n| load_thread(c, n, id)).await
    }

    async fn counts(&self, forum: &Forum, idents: &[Ident]) -> StoreResult<Vec<(Ident, i64)>> {
        if idents.is_empty() {
            return Ok(Vec::new());
        }
        // By ident, and by alias (`thread_aliases`): each answer names the ident asked for.
        let mut args = vec![int(forum.id.0)];
        args.extend(idents.iter().map(|i| text(i.as_str())));
        args.push(int(forum.id.0));
        args.extend(idents.iter().map(|i| text(i.as_str())));
        let k = idents.len();
        self.pool
            .read(move |c, n| {
                let sql = format!(
                    "SELECT ident, comment_count FROM threads WHERE forum_id = ? AND ident IN ({}) UNION ALL \
                     SELECT a.ident, t.comment_count FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
                     WHERE a.forum_id = ? AND a.ident IN ({})",
                    placeholders(k),
                    placeholders(k)
                );
                rows(c, n, &sql, &args, |r| {
                    Ok((Ident::from_stored(r.get(0)?), r.get(1)?))
                })
            })
            .await
    }

    async fn update_thread(
        &self,
        forum: &Forum,
        id: ThreadId,
        patch: ThreadPatch,
        actor: Option<AccountId>,
    ) -> StoreResult<Written<Thread>> {
        let forum_id = forum.id;
        self.pool
            .write(move |c, n| {
                let t = load_thread(c, n, id)?
                    .filter(|t| t.forum_id == forum_id)
                    .ok_or_else(|| DomainError::not_found("thread"))?;
                let closed = patch.closed.unwrap_or(t.closed);
                let title = patch.title.clone().or_else(|| t.title.clone());
                let pinned = patch.pinned.unwrap_or(t.pinned_id);
                if closed == t.closed && title == t.title && pinned == t.pinned_id {
                    return Ok(t); // Nothing changed: the sequence number does not move either.
                }
                exec(
                    c,
                    n,
                    "UPDATE threads SET closed = ?, title = ?, pinned_id = ?, seq = seq + 1 WHERE id = ?",
                    &[
                        int(i64::from(closed)),
                        opt_text(title.as_deref()),
                        pinned.map_or(Value::Null, |p| int(p.0)),
                        int(id.0),
                    ],
                )?;
                if pinned != t.pinned_id {
                    let (action, cid) = match pinned {
                        Some(p) => ("pin", Some(p)),
                        None => ("unpin", t.pinned_id),
                    };
                    log_action(c, n, forum_id, actor, action, cid, &format!("thread {id} {}", t.ident.as_str()))?;
                }
                if closed != t.closed {
                    log_action(
                        c,
                        n,
                        forum_id,
                        actor,
                        if closed { "close" } else { "open" },
                        None,
                        &format!("thread {id} {}", t.ident.as_str()),
                    )?;
                }
                load_thread(c, n, id)?.ok_or_else(DomainError::internal)
            })
            .await
            .map(Written::here)
    }

    async fn top_level(
        &self,
        thread: &Thread,
        vis: &Visibility,
        sort: Sort,
        cursor: Option<Cursor>,
        limit: usize,
        pinned: Option<CommentId>,
        _from: ReadFrom,
    ) -> StoreResult<(Vec<Comment>, Option<Comment>)> {
        let mut args = vec![int(thread.id.0)];
        let vis = vis_sql(vis, &mut args);
        // Featured: the thread's featured comments at any depth; otherwise its top level.
        let scope = if sort == Sort::Featured {
            "featured_at IS NOT NULL"
        } else {
            "parent_id IS NULL"
        };
        let mut sql = format!(
            "SELECT {COMMENT_COLS}, score, 0 AS pin_row FROM comments WHERE thread_id = ? AND {scope} AND {vis}"
        );
        let order = match sort {
            Sort::Best => {
                if let Some(c) = cursor {
                    sql.push_str(" AND (score < ? OR (score = ? AND id > ?))");
                    args.extend([int(c.score), int(c.score), int(c.id)]);
                }
                " ORDER BY score DESC, id ASC"
            }
            Sort::Newest | Sort::Featured => {
                if let Some(c) = cursor {
                    sql.push_str(" AND id < ?");
                    args.push(int(c.id));
                }
                " ORDER BY id DESC"
            }
            Sort::Oldest => {
                if let Some(c) = cursor {
                    sql.push_str(" AND id > ?");
                    args.push(int(c.id));
                }
                " ORDER BY id ASC"
            }
        };
        sql.push_str(order);
        sql.push_str(" LIMIT ?");
        args.push(int(limit as i64));
        if let Some(pin) = pinned {
            // The pinned comment joins the page's statement, after the page in the outer order.
            sql = format!(
                "SELECT * FROM ({sql}) UNION ALL \
                 SELECT {COMMENT_COLS}, score, 1 FROM comments WHERE id = ? AND thread_id = ? AND parent_id IS NULL \
                 ORDER BY pin_row,{}",
                order.trim_start_matches(" ORDER BY")
            );
            args.extend([int(pin.0), int(thread.id.0)]);
        }
        let got = self
            .pool
            .read(move |c, n| {
                rows(c, n, &sql, &args, |r| {
                    Ok((comment_row(r)?, r.get::<_, i64>(25)? == 1))
                })
            })
            .await?;
        Ok(crate::rules::split_pinned(got))
    }

    async fn replies(
        &self,
        thread: &Thread,
        parents: &[CommentId],
        vis: &Visibility,
        after: Option<CommentId>,
        per_parent: usize,
        _from: ReadFrom,
    ) -> StoreResult<Vec<Comment>> {
        if parents.is_empty() || per_parent == 0 {
            return Ok(Vec::new());
        }
        // One statement: a UNION ALL of per-parent index range scans, each with its own LIMIT,
        // so the cost is bounded by parents x per_parent whatever the thread's size.
        let mut args = Vec::with_capacity(parents.len() * 6);
        let mut parts = Vec::with_capacity(parents.len());
        for p in parents {
            args.push(int(thread.id.0));
            args.push(int(p.0));
            let v = vis_sql(vis, &mut args);
            let after_sql = if let Some(a) = after {
                args.push(int(a.0));
                " AND id > ?"
            } else {
                ""
            };
            args.push(int(per_parent as i64));
            parts.push(format!(
                "SELECT * FROM (SELECT {COMMENT_COLS} FROM comments WHERE thread_id = ? AND parent_id = ? AND {v}{after_sql} \
                 ORDER BY id LIMIT ?)"
            ));
        }
        let sql = parts.join(" UNION ALL ");
        self.pool
            .read(move |c, n| rows(c, n, &sql, &args, comment_row))
            .await
    }

    async fn comment(&self, id: CommentId, _from: ReadFrom) -> StoreResult<Option<Comment>> {
        self.pool.read(move |c, n| load_comment(c, n, id)).await
    }

    async fn has_hidden_by(&self, thread: &Thread, vis: &Visibility) -> StoreResult<bool> {
        let Visibility::Author { account, anon } = vis else {
            return Ok(false);
        };
        let args = vec![
            int(thread.id.0),
            account.map_or(Value::Null, |a| int(a.0)),
            opt_text(anon.as_deref()),
        ];
        self.pool
            .read(move |c, n| {
                Ok(row(
                    c,
                    n,
                    "SELECT 1 FROM comments WHERE thread_id = ? AND status IN ('pending', 'spam') \
                     AND (account_id = ? OR anon_id = ?) LIMIT 1",
                    &args,
                    |r| r.get::<_, i64>(0),
                )?
                .is_some())
            })
            .await
    }

    async fn post_comment(&self, new: NewComment) -> StoreResult<Written<Posted>> {
        let ids = self.ids.clone();
        self.pool
            .write(move |c, n| insert_comment(c, n, &ids, new))
            .await
            .map(Written::here)
    }

    async fn edit_comment(
        &self,
        id: CommentId,
        edit: &CommentEdit,
    ) -> StoreResult<Written<(Comment, i64)>> {
        let edit = edit.clone();
        self.pool
            .write(move |c, n| {
                let old = load_comment(c, n, id)?
                    .filter(|cm| cm.status != CommentStatus::Deleted)
                    .ok_or_else(|| DomainError::not_found("comment"))?;
                let status = edit.status_after(old.status);
                let reason = edit.reason_after(&old);
                exec(
                    c,
                    n,
                    "UPDATE comments SET body_md = ?, body_html = ?, edited_at = ?, status = ?, held_reason = ? WHERE id = ?",
                    &[text(&edit.body_md), text(&edit.body_html), int(edit.now), text(status.as_str()), opt_text(reason.as_deref()), int(id.0)],
                )?;
                let seq = if status == old.status { bump_seq(c, n, old.thread_id)? } else { shift_counters(c, n, &old, old.status, status)?.seq };
                if let Some((forum, actor)) = edit.logged_by {
                    log_action(c, n, forum, Some(actor), "edit", Some(id), &old.body_md)?;
                }
                let cm = load_comment(c, n, id)?.ok_or_else(DomainError::internal)?;
                Ok((cm, seq))
            })
            .await
            .map(Written::here)
    }

    async fn approved_by(&self, forum: &Forum, author: &AuthorKey, limit: u32) -> StoreResult<u32> {
        let (sql, key) = match author {
            AuthorKey::Account(a) => (
                "SELECT count(*) FROM (SELECT 1 FROM comments WHERE forum_id = ? AND account_id = ? \
                 AND status = 'approved' LIMIT ?)",
                int(a.0),
            ),
            AuthorKey::GuestEmail(e) => (
                "SELECT count(*) FROM (SELECT 1 FROM comments WHERE forum_id = ? \
                 AND guest_email = ? COLLATE NOCASE AND status = 'approved' LIMIT ?)",
                text(e),
            ),
        };
        let args = vec![int(forum.id.0), key, int(i64::from(limit))];
        self.pool
            .read(move |c, n| {
                let count: i64 = row(c, n, sql, &args, |r| r.get(0))?.unwrap_or(0);
                Ok(u32::try_from(count).unwrap_or(u32::MAX))
            })
            .await
    }

    async fn recent_texts(
        &self,
        forum: &Forum,
        account: Option<AccountId>,
        ip_hash: &str,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        let args = vec![
            int(forum.id.0),
            text(ip_hash),
            int(since),
            int(forum.id.0),
            account.map_or(Value::Null, |a| int(a.0)),
            int(since),
            int(i64::from(limit)),
        ];
        self.pool
            .read(move |c, n| {
                rows(
                    c,
                    n,
                    "SELECT body_md FROM (SELECT id, body_md FROM comments WHERE forum_id = ? AND ip_hash = ? AND created_at >= ? \
                     UNION SELECT id, body_md FROM comments WHERE forum_id = ? AND account_id = ? AND created_at >= ?) \
                     ORDER BY id DESC LIMIT ?",
                    &args,
                    |r| r.get(0),
                )
            })
            .await
    }

    async fn prune_idempotency(&self, before: i64) -> StoreResult<u64> {
        self.pool
            .write(move |c, n| {
                Ok(exec(
                    c,
                    n,
                    "DELETE FROM idempotency WHERE created_at < ?",
                    &[int(before)],
                )? as u64)
            })
            .await
    }
}

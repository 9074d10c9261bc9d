//! Threads and comments: reading pages, posting and editing.

use super::*;
use crate::rules;

/// The write transaction of a new comment: thread on first comment, comment, counters,
/// idempotency record, reply-mail request and tasks, all or nothing.
pub(super) async fn insert_comment<C: GenericClient + Sync>(
    tx: &C,
    n: &crate::Counter,
    new: &NewComment,
) -> StoreResult<Posted> {
    let forum = &new.forum;
    let shard = sh(forum.shard);
    if let Some(idem) = &new.idempotency {
        let (scope, key) = (&idem.scope, &idem.key);
        // Concurrent retries of one request queue here; the later one then finds the first's row.
        exec(
            tx,
            n,
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text || ' ' || $2::text, 20260101))",
            &[scope, key],
        )
        .await?;
        let prior = row(
            tx,
            n,
            "SELECT comment_id, request_hash FROM idempotency WHERE scope = $1 AND key = $2",
            &[scope, key],
        )
        .await?;
        if let Some(r) = prior {
            idem.check_replay(r.get(1))?;
            let comment = load_comment(tx, n, CommentId(r.get(0)))
                .await?
                .ok_or_else(DomainError::internal)?;
            let thread = load_thread(tx, n, comment.thread_id)
                .await?
                .ok_or_else(DomainError::internal)?;
            return Ok(Posted {
                comment,
                thread,
                replayed: true,
            });
        }
    }
    // The thread by its ident or an alias; else created on first comment (concurrent first
    // comments meet on the unique key).
    let existing = thread_by_ident(tx, n, forum.id, &new.ident).await?;
    let thread = match existing {
        Some(t) => Some(t),
        None => row(
        tx,
        n,
        &format!(
            "WITH ins AS (INSERT INTO threads (id, shard, forum_id, ident, url, title, created_at) \
               VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6) ON CONFLICT (forum_id, ident) DO NOTHING RETURNING {THREAD_COLS}) \
             SELECT {THREAD_COLS} FROM ins UNION ALL \
             SELECT {THREAD_COLS} FROM threads WHERE forum_id = $2 AND ident = $3 AND NOT EXISTS (SELECT 1 FROM ins)"
        ),
        &[&shard, &forum.id.0, &new.ident.as_str(), &new.url, &new.title, &new.created_at],
    )
        .await?
        .as_ref()
        .map(thread_row),
    };
    let t = match thread {
        Some(t) => t,
        // The other transaction's thread is not visible to this statement's snapshot yet.
        None => row(
            tx,
            n,
            &format!("SELECT {THREAD_COLS} FROM threads WHERE forum_id = $1 AND ident = $2"),
            &[&forum.id.0, &new.ident.as_str()],
        )
        .await?
        .as_ref()
        .map(thread_row)
        .ok_or_else(|| {
            DomainError::new(
                ErrorCode::Unavailable,
                "the thread is being created, retry shortly",
            )
        })?,
    };
    crate::rules::thread_open(&t)?;
    if crate::rules::fills_thread(&t, new) {
        exec(
            tx,
            n,
            "UPDATE threads SET url = coalesce(url, $1), title = coalesce(title, $2) WHERE id = $3",
            &[&new.url, &new.title, &t.id.0],
        )
        .await?;
    }
    let thread_id = t.id;
    let (parent_id, depth) = match new.parent_id {
        None => (None, 0),
        Some(pid) => {
            let mut p = rules::reply_parent(load_comment(tx, n, pid).await?, thread_id)?;
            while let Some(up) = rules::climb(&p, new.max_depth) {
                p = load_comment(tx, n, up)
                    .await?
                    .ok_or_else(DomainError::internal)?;
            }
            (Some(p.id), p.depth + 1)
        }
    };
    let (account, gname, gemail, gurl) = match &new.author {
        Author::Account(a) => (Some(a.0), None, None, None),
        Author::Guest { name, email, url } => {
            (None, Some(name.clone()), email.clone(), url.clone())
        }
    };
    let id: i64 = row(
        tx,
        n,
        "INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
         guest_email, guest_url, body_md, body_html, status, created_at, ip_hash, held_reason, images) \
         VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
        &[
            &shard,
            &thread_id.0,
            &forum.id.0,
            &parent_id.map(|p: CommentId| p.0),
            &depth,
            &account,
            &new.anon_id,
            &gname,
            &gemail,
            &gurl,
            &new.body_md,
            &new.body_html,
            &new.status.as_str(),
            &new.created_at,
            &new.ip_hash,
            &new.held_reason,
            &confab_core::media::encode_refs(&new.images),
        ],
    )
    .await?
    .ok_or_else(DomainError::internal)?
    .get(0);
    let id = CommentId(id);
    super::media::attach(tx, n, forum.id, id, &new.images).await?;
    let comment = new.inserted(id, thread_id, parent_id, depth);
    let thread = shift_counters(tx, n, &comment, rules::BEFORE_FIRST_STATUS, new.status).await?;
    if let Some(idem) = &new.idempotency {
        exec(
            tx,
            n,
            "INSERT INTO idempotency (scope, key, shard, comment_id, created_at, request_hash) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&idem.scope, &idem.key, &shard, &id.0, &new.created_at, &idem.request_hash],
        )
        .await?;
    }
    if let Some(watch) = &new.notify {
        let email = &watch.email;
        let now = confab_core::now_ms();
        exec(
            tx,
            n,
            "INSERT INTO reply_notify (comment_id, shard, forum_id, email, created_at, owner) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&id.0, &shard, &forum.id.0, email, &now, &watch.owner],
        )
        .await?;
        exec(
            tx,
            n,
            "INSERT INTO subscriptions (forum_id, email, shard, state, created_at, updated_at) VALUES ($1, $2, $3, 'pending', $4, $4) \
             ON CONFLICT (forum_id, email) DO UPDATE SET state = 'pending', updated_at = excluded.updated_at \
             WHERE subscriptions.state <> 'confirmed'",
            &[&forum.id.0, &crate::rules::email_key(email), &shard, &now],
        )
        .await?;
    }
    if let Some(f) = &new.spam_facts {
        super::spam::insert_facts(tx, n, id, shard, f, new.created_at).await?;
    }
    for t in &new.tasks {
        let payload = crate::rules::comment_task_payload(t, id);
        insert_task(tx, n, forum.shard, t, &payload).await?;
    }
    Ok(Posted {
        comment,
        thread,
        replayed: false,
    })
}

#[async_trait]
impl CommentStore for PgStore {
    async fn thread_by_ident(
        &self,
        forum: &Forum,
        ident: &Ident,
        from: ReadFrom,
    ) -> StoreResult<Option<Thread>> {
        read_on!(self, forum.shard, from, |c, n| {
            thread_by_ident(&c, &n, forum.id, ident).await
        })
    }

    async fn thread(&self, id: ThreadId, from: ReadFrom) -> StoreResult<Option<Thread>> {
        read_on!(self, shard_of(id.0), from, |c, n| {
            load_thread(&c, &n, id).await
        })
    }

    async fn counts(&self, forum: &Forum, idents: &[Ident]) -> StoreResult<Vec<(Ident, i64)>> {
        if idents.is_empty() {
            return Ok(Vec::new());
        }
        let idents: Vec<&str> = idents.iter().map(|i| i.as_str()).collect();
        read_on!(self, forum.shard, ReadFrom::Replica, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT ident, comment_count FROM threads WHERE forum_id = $1 AND ident = ANY($2) UNION ALL \
                 SELECT a.ident, t.comment_count FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
                 WHERE a.forum_id = $1 AND a.ident = ANY($2)",
                &[&forum.id.0, &idents],
            )
            .await?
            .iter()
            .map(|r| (Ident::from_stored(r.get(0)), r.get(1)))
            .collect())
        })
    }

    async fn update_thread(
        &self,
        forum: &Forum,
        id: ThreadId,
        patch: ThreadPatch,
        actor: Option<AccountId>,
    ) -> StoreResult<Written<Thread>> {
        let (forum_id, shard) = (forum.id, forum.shard);
        write_tx!(self, shard, |tx, n| {
            let t = load_thread(&tx, &n, id)
                .await?
                .filter(|t| t.forum_id == forum_id)
                .ok_or_else(|| DomainError::not_found("thread"))?;
            let closed = patch.closed.unwrap_or(t.closed);
            let title = patch.title.clone().or_else(|| t.title.clone());
            let pinned = patch.pinned.unwrap_or(t.pinned_id);
            if closed == t.closed && title == t.title && pinned == t.pinned_id {
                return Ok(t);
            }
            let pinned_raw = pinned.map(|p| p.0);
            exec(
                &tx,
                &n,
                "UPDATE threads SET closed = $1, title = $2, pinned_id = $3, seq = seq + 1 WHERE id = $4",
                &[&closed, &title, &pinned_raw, &id.0],
            )
            .await?;
            if pinned != t.pinned_id {
                let (action, cid) = match pinned {
                    Some(p) => ("pin", Some(p)),
                    None => ("unpin", t.pinned_id),
                };
                log_action(
                    &tx,
                    &n,
                    shard,
                    forum_id,
                    actor,
                    action,
                    cid,
                    &format!("thread {id} {}", t.ident.as_str()),
                )
                .await?;
            }
            if closed != t.closed {
                let action = if closed { "close" } else { "open" };
                log_action(
                    &tx,
                    &n,
                    shard,
                    forum_id,
                    actor,
                    action,
                    None,
                    &format!("thread {id} {}", t.ident.as_str()),
                )
                .await?;
            }
            load_thread(&tx, &n, id)
                .await?
                .ok_or_else(DomainError::internal)
        })
    }

    async fn top_level(
        &self,
        thread: &Thread,
        vis: &Visibility,
        sort: Sort,
        cursor: Option<Cursor>,
        limit: usize,
        pinned: Option<CommentId>,
        from: ReadFrom,
    ) -> StoreResult<(Vec<Comment>, Option<Comment>)> {
        let (va, vb) = vis_args(vis);
        let limit = limit as i64;
        let v = vis_sql(vis, 3);
        // Featured: the thread's featured comments at any depth; otherwise its top level.
        let scope = if sort == Sort::Featured {
            "featured_at IS NOT NULL"
        } else {
            "parent_id IS NULL"
        };
        let mut sql = format!(
            "SELECT {COMMENT_COLS}, score, 0 AS pin_row FROM comments WHERE thread_id = $1 AND {scope} AND {v}"
        );
        // Parameters: $1 thread, $2 limit, $3/$4 visibility, $5/$6 cursor.
        let (c1, c2) = match (sort, cursor) {
            (Sort::Best, Some(c)) => {
                sql.push_str(" AND (score < $5 OR (score = $5 AND id > $6))");
                (Some(c.score), Some(c.id))
            }
            (Sort::Newest | Sort::Featured, Some(c)) => {
                sql.push_str(" AND id < $5");
                (Some(c.id), None)
            }
            (Sort::Oldest, Some(c)) => {
                sql.push_str(" AND id > $5");
                (Some(c.id), None)
            }
            (_, None) => (None, None),
        };
        let order = match sort {
            Sort::Best => "score DESC, id ASC",
            Sort::Newest | Sort::Featured => "id DESC",
            Sort::Oldest => "id ASC",
        };
        sql.push_str(&format!(" ORDER BY {order} LIMIT $2"));
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&thread.id.0, &limit];
        if matches!(vis, Visibility::Author { .. }) {
            args.push(&va);
            args.push(&vb);
        } else if c1.is_some() {
            // Keep parameter numbers fixed: the visibility slots are unused, so renumber.
            sql = sql.replace("$5", "$3").replace("$6", "$4");
        }
        if let Some(x) = &c1 {
            args.push(x);
        }
        if let Some(x) = &c2 {
            args.push(x);
        }
        let pin = pinned.map(|p| p.0);
        if let Some(p) = &pin {
            // The pinned comment joins the page's statement, after the page in the outer order.
            args.push(p);
            sql = format!(
                "({sql}) UNION ALL (SELECT {COMMENT_COLS}, score, 1 FROM comments WHERE id = ${} \
                 AND thread_id = $1 AND parent_id IS NULL) ORDER BY pin_row, {order}",
                args.len()
            );
        }
        read_on!(self, shard_of(thread.id.0), from, |c, n| {
            Ok(crate::rules::split_pinned(
                rows(&c, &n, &sql, &args)
                    .await?
                    .iter()
                    .map(|r| (comment_row(r), r.get::<_, i32>(25) == 1))
                    .collect(),
            ))
        })
    }

    async fn replies(
        &self,
        thread: &Thread,
        parents: &[CommentId],
        vis: &Visibility,
        after: Option<CommentId>,
        per_parent: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<Comment>> {
        if parents.is_empty() || per_parent == 0 {
            return Ok(Vec::new());
        }
        // One statement: a lateral index range scan per parent, each with its own LIMIT, so the
        // cost is bounded by parents x per_parent whatever the thread's size.
        let parents: Vec<i64> = parents.iter().map(|p| p.0).collect();
        let (va, vb) = vis_args(vis);
        let after = after.map_or(0, |a| a.0);
        let per = per_parent as i64;
        let is_author = matches!(vis, Visibility::Author { .. });
        let v = vis_sql(vis, 5);
        let sql = format!(
            "SELECT c.* FROM unnest($2::bigint[]) WITH ORDINALITY AS p(id, ord) CROSS JOIN LATERAL \
             (SELECT {COMMENT_COLS} FROM comments WHERE thread_id = $1 AND parent_id = p.id AND id > $3 AND {v} \
              ORDER BY id LIMIT $4) c ORDER BY p.ord, c.id"
        );
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&thread.id.0, &parents, &after, &per];
        if is_author {
            args.push(&va);
            args.push(&vb);
        }
        read_on!(self, shard_of(thread.id.0), from, |c, n| {
            Ok(rows(&c, &n, &sql, &args)
                .await?
                .iter()
                .map(comment_row)
                .collect())
        })
    }

    async fn comment(&self, id: CommentId, from: ReadFrom) -> StoreResult<Option<Comment>> {
        read_on!(self, shard_of(id.0), from, |c, n| {
            load_comment(&c, &n, id).await
        })
    }

    async fn has_hidden_by(&self, thread: &Thread, vis: &Visibility) -> StoreResult<bool> {
        let Visibility::Author { account, anon } = vis else {
            return Ok(false);
        };
        let account = account.map(|a| a.0);
        read_on!(self, shard_of(thread.id.0), ReadFrom::Replica, |c, n| {
            Ok(row(
                &c,
                &n,
                "SELECT 1 FROM comments WHERE thread_id = $1 AND status IN ('pending', 'spam') \
                 AND (account_id = $2 OR anon_id = $3) LIMIT 1",
                &[&thread.id.0, &account, anon],
            )
            .await?
            .is_some())
        })
    }

    async fn post_comment(&self, new: NewComment) -> StoreResult<Written<Posted>> {
        let shard = new.forum.shard;
        write_tx!(self, shard, |tx, n| { insert_comment(&tx, &n, &new).await })
    }

    async fn edit_comment(
        &self,
        id: CommentId,
        edit: &CommentEdit,
    ) -> StoreResult<Written<(Comment, i64)>> {
        write_tx!(self, shard_of(id.0), |tx, n| {
            let old = row(
                &tx,
                &n,
                &format!("SELECT {COMMENT_COLS} FROM comments WHERE id = $1 FOR UPDATE"),
                &[&id.0],
            )
            .await?
            .as_ref()
            .map(comment_row)
            .filter(|cm| cm.status != CommentStatus::Deleted)
            .ok_or_else(|| DomainError::not_found("comment"))?;
            let status = edit.status_after(old.status);
            let reason = edit.reason_after(&old);
            exec(
                &tx,
                &n,
                "UPDATE comments SET body_md = $1, body_html = $2, edited_at = $3, status = $4, held_reason = $5 WHERE id = $6",
                &[&edit.body_md, &edit.body_html, &edit.now, &status.as_str(), &reason, &id.0],
            )
            .await?;
            let seq = if status == old.status {
                bump_seq(&tx, &n, old.thread_id).await?
            } else {
                shift_counters(&tx, &n, &old, old.status, status).await?.seq
            };
            if let Some((forum, actor)) = edit.logged_by {
                log_action(
                    &tx,
                    &n,
                    shard_of(id.0),
                    forum,
                    Some(actor),
                    "edit",
                    Some(id),
                    &old.body_md,
                )
                .await?;
            }
            let cm = load_comment(&tx, &n, id)
                .await?
                .ok_or_else(DomainError::internal)?;
            Ok((cm, seq))
        })
    }

    async fn approved_by(&self, forum: &Forum, author: &AuthorKey, limit: u32) -> StoreResult<u32> {
        let limit = i64::from(limit);
        // Comments live on the forum's shard: the count is within the forum.
        let count: i64 = read_on!(self, forum.shard, ReadFrom::Primary, |c, n| {
            let r = match author {
                AuthorKey::Account(a) => {
                    row(
                        &c,
                        &n,
                        "SELECT count(*) FROM (SELECT 1 FROM comments WHERE forum_id = $1 AND account_id = $2 \
                         AND status = 'approved' LIMIT $3) x",
                        &[&forum.id.0, &a.0, &limit],
                    )
                    .await?
                }
                AuthorKey::GuestEmail(e) => {
                    row(
                        &c,
                        &n,
                        "SELECT count(*) FROM (SELECT 1 FROM comments WHERE forum_id = $1 \
                         AND lower(guest_email) = lower($2) AND guest_email IS NOT NULL AND status = 'approved' LIMIT $3) x",
                        &[&forum.id.0, e, &limit],
                    )
                    .await?
                }
            };
            Ok(r.map_or(0, |r| r.get::<_, i64>(0)))
        })?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn recent_texts(
        &self,
        forum: &Forum,
        account: Option<AccountId>,
        ip_hash: &str,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        let (account, limit) = (account.map(|a| a.0), i64::from(limit));
        read_on!(self, forum.shard, ReadFrom::Primary, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT body_md FROM (SELECT id, body_md FROM comments WHERE forum_id = $1 AND ip_hash = $2 AND created_at >= $3 \
                 UNION SELECT id, body_md FROM comments WHERE forum_id = $1 AND account_id = $4 AND created_at >= $3) x \
                 ORDER BY id DESC LIMIT $5",
                &[&forum.id.0, &ip_hash, &since, &account, &limit],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    async fn prune_idempotency(&self, before: i64) -> StoreResult<u64> {
        let mut total = 0;
        for s in self.r.servers() {
            let c = s.primary().await?;
            let n = s.counter(crate::Target::Primary);
            total += exec(
                &c,
                &n,
                "DELETE FROM idempotency WHERE created_at < $1",
                &[&before],
            )
            .await?;
        }
        Ok(total)
    }
}

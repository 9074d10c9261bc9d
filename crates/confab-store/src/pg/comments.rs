//! Threads and comments: reading pages, posting and editing.

use super::*;
use crate::rules;

static POST_READ: std::sync::LazyLock<String> = std::sync::LazyLock::new(post_read_sql);
static POST_WRITE: std::sync::LazyLock<String> = std::sync::LazyLock::new(post_write_sql);

/// A task's payload as a post's statement writes it: the comment's id (`id`, an SQL expression)
/// added as `"comment_id"` (a decimal string) when the payload is an object, as
/// [`rules::comment_task_payload`] does.
pub(super) fn task_payload_sql(id: &str) -> String {
    format!(
        "CASE WHEN jsonb_typeof(u.payload::jsonb) = 'object' \
           THEN jsonb_set(u.payload::jsonb, '{{comment_id}}', to_jsonb(({id})::text))::text ELSE u.payload END"
    )
}

/// A new comment's values as both post statements bind them (here and in `post_one`).
pub(super) struct PostValues<'a> {
    pub shift: rules::CounterShift,
    pub account: Option<i64>,
    pub guest_name: Option<&'a str>,
    pub guest_email: Option<&'a str>,
    pub guest_url: Option<&'a str>,
    pub images: Option<String>,
    pub scope: Option<&'a str>,
    pub key: Option<&'a str>,
    pub request_hash: Option<&'a str>,
    pub now: i64,
    /// The outbox tasks, as `unnest` takes them; payloads without the comment's id, which
    /// the statement adds ([`task_payload_sql`]).
    pub kinds: Vec<&'a str>,
    pub payloads: Vec<String>,
    pub run_at: Vec<i64>,
    /// The spam facts: user_ip, user_agent, referrer, permalink, lang.
    pub facts: [Option<&'a str>; 5],
    pub watch_email: Option<&'a str>,
    pub watch_key: Option<String>,
    pub watch_owner: Option<&'a str>,
}

impl<'a> PostValues<'a> {
    pub(super) fn new(new: &'a NewComment) -> StoreResult<PostValues<'a>> {
        let (account, guest_name, guest_email, guest_url) = match &new.author {
            Author::Account(a) => (Some(a.0), None, None, None),
            Author::Guest { name, email, url } => {
                (None, Some(name.as_str()), email.as_deref(), url.as_deref())
            }
        };
        let now = confab_core::now_ms();
        let mut kinds = Vec::with_capacity(new.tasks.len());
        let mut payloads = Vec::with_capacity(new.tasks.len());
        let mut run_at = Vec::with_capacity(new.tasks.len());
        for t in &new.tasks {
            // The statement adds the comment's id: the bound is checked with the longest id.
            rules::task_row(t, &rules::comment_task_payload(t, CommentId(i64::MIN)), now)?;
            let r = rules::task_row(t, &t.payload, now)?;
            kinds.push(t.kind.as_str());
            payloads.push(r.payload);
            run_at.push(r.run_at);
        }
        let f = new.spam_facts.as_ref();
        let watch = new.notify.as_ref();
        Ok(PostValues {
            shift: rules::counter_shift(rules::BEFORE_FIRST_STATUS, new.status),
            account,
            guest_name,
            guest_email,
            guest_url,
            images: confab_core::media::encode_refs(&new.images),
            scope: new.idempotency.as_ref().map(|i| i.scope.as_str()),
            key: new.idempotency.as_ref().map(|i| i.key.as_str()),
            request_hash: new.idempotency.as_ref().map(|i| i.request_hash.as_str()),
            now,
            kinds,
            payloads,
            run_at,
            facts: [
                f.map(|f| f.user_ip.as_str()),
                f.map(|f| f.user_agent.as_str()),
                f.map(|f| f.referrer.as_str()),
                f.map(|f| f.permalink.as_str()),
                f.map(|f| f.lang.as_str()),
            ],
            watch_email: watch.map(|w| w.email.as_str()),
            watch_key: watch.map(|w| rules::email_key(&w.email)),
            watch_owner: watch.map(|w| w.owner.as_str()),
        })
    }
}

/// What a post reads before it writes, in one statement: the thread by its ident or an alias
/// (`THREAD_COLS`, null when the page has none yet), the new comment's id, and the idempotency
/// record of an earlier request with the same key.
fn post_read_sql() -> String {
    let t = THREAD_COLS
        .split(", ")
        .map(|col| format!("t.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {t}, confab_next_id($1), i.comment_id, i.request_hash FROM (SELECT 1) one \
         LEFT JOIN LATERAL (SELECT {THREAD_COLS} FROM threads WHERE forum_id = $2 AND ident = $3 UNION ALL \
           SELECT {t} FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
           WHERE a.forum_id = $2 AND a.ident = $3 LIMIT 1) t ON true \
         LEFT JOIN idempotency i ON i.scope = $4 AND i.key = $5"
    )
}

/// Every write of a post in one statement: the comment; the thread's counters (and its url and
/// title where it has none yet), returned; the parent's reply count; the idempotency record;
/// the outbox tasks; the request's spam facts; the reply-mail request and its subscription;
/// the pictures, returning those it could attach.
fn post_write_sql() -> String {
    let payload = task_payload_sql("$1::bigint");
    format!(
        "WITH c AS (INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, anon_id, \
           guest_name, guest_email, guest_url, body_md, body_html, status, created_at, ip_hash, held_reason, images) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)), \
         th AS (UPDATE threads SET comment_count = comment_count + $19, hidden_count = hidden_count + $20, \
           seq = seq + 1, url = coalesce(url, $21), title = coalesce(title, $22) WHERE id = $3 RETURNING {THREAD_COLS}), \
         p AS (UPDATE comments SET reply_count = reply_count + $19 WHERE id = $5 AND $19 <> 0), \
         i AS (INSERT INTO idempotency (scope, key, shard, comment_id, created_at, request_hash) \
           SELECT $23::text, $24::text, $2::int, $1::bigint, $15::bigint, $25::text WHERE $23::text IS NOT NULL), \
         k AS (INSERT INTO tasks (id, shard, kind, payload, state, run_at, attempts, created_at, updated_at) \
           SELECT confab_next_id($2::int), $2::int, u.kind, {payload}, 'queued', u.run_at, 0, $26::bigint, $26::bigint \
           FROM unnest($27::text[], $28::text[], $29::bigint[]) AS u(kind, payload, run_at)), \
         f AS (INSERT INTO spam_facts (comment_id, shard, user_ip, user_agent, referrer, permalink, lang, created_at) \
           SELECT $1::bigint, $2::int, $30::text, $31::text, $32::text, $33::text, $34::text, $15::bigint WHERE $30::text IS NOT NULL), \
         rn AS (INSERT INTO reply_notify (comment_id, shard, forum_id, email, created_at, owner) \
           SELECT $1::bigint, $2::int, $4::bigint, $35::text, $37::bigint, $38::text WHERE $35::text IS NOT NULL), \
         s AS (INSERT INTO subscriptions (forum_id, email, shard, state, created_at, updated_at) \
           SELECT $4::bigint, $36::text, $2::int, 'pending', $37::bigint, $37::bigint WHERE $36::text IS NOT NULL \
           ON CONFLICT (forum_id, email) DO UPDATE SET state = 'pending', updated_at = excluded.updated_at \
           WHERE subscriptions.state <> 'confirmed'), \
         im AS (UPDATE images SET comment_id = $1 WHERE id = ANY($39::bigint[]) AND forum_id = $4 AND comment_id IS NULL RETURNING id) \
         SELECT {THREAD_COLS}, ARRAY(SELECT id FROM im) FROM th"
    )
}

/// The write transaction of a new comment: thread on first comment, comment, counters,
/// idempotency record, reply-mail request and tasks, all or nothing.
///
/// A post is two statements: one reads what the writes depend on (sent with `BEGIN` and the
/// fence check, see [`super::tx`]), one writes everything; then `COMMIT`. A page's first
/// comment (creating its thread) and a reply past the depth limit (climbing to an ancestor)
/// take one more each. A concurrent request with the same idempotency key fails on the
/// record's key; [`CommentStore::post_comment`] then answers with the first one's comment.
pub(super) async fn insert_comment<C: GenericClient + Sync>(
    tx: &C,
    n: &crate::Counter,
    new: &NewComment,
) -> StoreResult<Posted> {
    let forum = &new.forum;
    let shard = sh(forum.shard);
    let v = PostValues::new(new)?;
    let read = async {
        row(
            tx,
            n,
            &POST_READ,
            &[&shard, &forum.id.0, &new.ident.as_str(), &v.scope, &v.key],
        )
        .await
    };
    let parent = async {
        match new.parent_id {
            Some(pid) => load_comment(tx, n, pid).await,
            None => Ok(None),
        }
    };
    let (read, parent) = tokio::try_join!(read, parent)?;
    let r = read.ok_or_else(DomainError::internal)?;
    let cols = THREAD_COLS.split(", ").count();
    if let (Some(idem), Some(prior)) = (&new.idempotency, r.get::<_, Option<i64>>(cols + 1)) {
        idem.check_replay(r.get(cols + 2))?;
        return replay(tx, n, CommentId(prior)).await;
    }
    let id = CommentId(r.get(cols));
    let t = match r.get::<_, Option<i64>>(0) {
        Some(_) => thread_row(&r),
        None => create_thread(tx, n, new).await?,
    };
    rules::thread_open(&t)?;
    let thread_id = t.id;
    let (parent_id, depth) = match new.parent_id {
        None => (None, 0),
        Some(_) => {
            let mut p = rules::reply_parent(parent, thread_id)?;
            while let Some(up) = rules::climb(&p, new.max_depth) {
                p = load_comment(tx, n, up)
                    .await?
                    .ok_or_else(DomainError::internal)?;
            }
            (Some(p.id), p.depth + 1)
        }
    };
    let comment = new.inserted(id, thread_id, parent_id, depth);
    let image_ids: Vec<i64> = new.images.iter().map(|i| i.id).collect();
    let written = row(
        tx,
        n,
        &POST_WRITE,
        &[
            &id.0,
            &shard,
            &thread_id.0,
            &forum.id.0,
            &parent_id.map(|p| p.0),
            &depth,
            &v.account,
            &new.anon_id,
            &v.guest_name,
            &v.guest_email,
            &v.guest_url,
            &new.body_md,
            &new.body_html,
            &new.status.as_str(),
            &new.created_at,
            &new.ip_hash,
            &new.held_reason,
            &v.images,
            &v.shift.approved,
            &v.shift.hidden,
            &new.url,
            &new.title,
            &v.scope,
            &v.key,
            &v.request_hash,
            &v.now,
            &v.kinds,
            &v.payloads,
            &v.run_at,
            &v.facts[0],
            &v.facts[1],
            &v.facts[2],
            &v.facts[3],
            &v.facts[4],
            &v.watch_email,
            &v.watch_key,
            &v.now,
            &v.watch_owner,
            &image_ids,
        ],
    )
    .await?
    .ok_or_else(DomainError::internal)?;
    let attached: Vec<i64> = written.get(cols);
    if let Some(taken) = image_ids.iter().find(|i| !attached.contains(i)) {
        return Err(rules::image_taken(*taken));
    }
    Ok(Posted {
        comment,
        thread: thread_row(&written),
        replayed: false,
    })
}

/// The comment an earlier request with the same idempotency key made, and its thread.
async fn replay<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    id: CommentId,
) -> StoreResult<Posted> {
    let comment = load_comment(c, n, id)
        .await?
        .ok_or_else(DomainError::internal)?;
    let thread = load_thread(c, n, comment.thread_id)
        .await?
        .ok_or_else(DomainError::internal)?;
    Ok(Posted {
        comment,
        thread,
        replayed: true,
    })
}

/// A page's first comment creates its thread; concurrent first comments meet on the unique key.
async fn create_thread<C: GenericClient + Sync>(
    tx: &C,
    n: &crate::Counter,
    new: &NewComment,
) -> StoreResult<Thread> {
    let forum = &new.forum;
    let created = row(
        tx,
        n,
        &format!(
            "WITH ins AS (INSERT INTO threads (id, shard, forum_id, ident, url, title, created_at) \
               VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6) ON CONFLICT (forum_id, ident) DO NOTHING RETURNING {THREAD_COLS}) \
             SELECT {THREAD_COLS} FROM ins UNION ALL \
             SELECT {THREAD_COLS} FROM threads WHERE forum_id = $2 AND ident = $3 AND NOT EXISTS (SELECT 1 FROM ins)"
        ),
        &[&sh(forum.shard), &forum.id.0, &new.ident.as_str(), &new.url, &new.title, &new.created_at],
    )
    .await?;
    if let Some(r) = created {
        return Ok(thread_row(&r));
    }
    // The other transaction's thread is not visible to this statement's snapshot yet.
    row(
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
            let t = load_thread(tx, &n, id)
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
                tx,
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
                    tx,
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
                    tx,
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
            load_thread(tx, &n, id)
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
        let server = self.r.server_for(new.forum.shard)?;
        let new = match super::group::post(&server, new).await? {
            Ok(done) => return Ok(done),
            Err(new) => new,
        };
        let shard = new.forum.shard;
        let posted = write_tx!(self, shard, |tx, n| { insert_comment(tx, &n, &new).await });
        match (posted, &new.idempotency) {
            // A concurrent request with the same key committed first: answer with its comment.
            (Err(e), Some(idem)) if e.code == ErrorCode::Conflict => {
                let prior = read_on!(self, shard, ReadFrom::Primary, |c, n| {
                    let Some(r) = row(
                        &c,
                        &n,
                        "SELECT comment_id, request_hash FROM idempotency WHERE scope = $1 AND key = $2",
                        &[&idem.scope, &idem.key],
                    )
                    .await?
                    else {
                        return Ok(None);
                    };
                    idem.check_replay(r.get(1))?;
                    replay(&c, &n, CommentId(r.get(0))).await.map(Some)
                })?;
                match prior {
                    Some(value) => Ok(Written { value, at: None }),
                    None => Err(e),
                }
            }
            (posted, _) => posted,
        }
    }

    async fn edit_comment(
        &self,
        id: CommentId,
        edit: &CommentEdit,
    ) -> StoreResult<Written<(Comment, i64)>> {
        write_tx!(self, shard_of(id.0), |tx, n| {
            let old = row(
                tx,
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
                tx,
                &n,
                "UPDATE comments SET body_md = $1, body_html = $2, edited_at = $3, status = $4, held_reason = $5 WHERE id = $6",
                &[&edit.body_md, &edit.body_html, &edit.now, &status.as_str(), &reason, &id.0],
            )
            .await?;
            let seq = if status == old.status {
                bump_seq(tx, &n, old.thread_id).await?
            } else {
                shift_counters(tx, &n, &old, old.status, status).await?.seq
            };
            if let Some((forum, actor)) = edit.logged_by {
                log_action(
                    tx,
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
            let cm = load_comment(tx, &n, id)
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

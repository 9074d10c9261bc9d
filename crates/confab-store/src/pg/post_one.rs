//! A post in one round trip.
//!
//! The common post (its page's thread exists and is open, a top-level comment or a reply within
//! the depth limit, no pictures, no earlier request with the same idempotency key) is one
//! statement in its own transaction: the fence check, the reads the writes depend on, and every
//! write, as data-modifying CTEs. The read of the commit's WAL position follows it in the same
//! flush. A post runs alone ([`solo`]) or with others queued for the same server in one
//! transaction ([`group`], see [`super::group`]). A post that is not the common case writes nothing here and takes the general path
//! ([`super::comments::insert_comment`] in a [`write_tx!`]), which gives it its answer: the
//! thread created, the ancestor climbed to, the earlier request's comment replayed, the error
//! that says why not. So does a post whose statement fails (a fence, a moved shard, a race on
//! its idempotency key): the general path waits, reloads the map or replays.
//!
//! The conditions here only decide which path runs; what a post may do is decided by the
//! general path's rules ([`crate::rules`]), which both backends share. They mirror those rules
//! (thread open, parent in the thread and not deleted, within the depth limit, key unseen): a
//! new rule on posting that this statement cannot check must make it step aside.

use super::comments::PostValues;
use super::*;
use deadpool_postgres::Client;

static POST_ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(sql);

/// The statement. Parameters are listed in [`post`].
fn sql() -> String {
    let returned = THREAD_COLS
        .split(", ")
        .map(|col| format!("threads.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    let th = THREAD_COLS
        .split(", ")
        .map(|col| format!("th.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    let payload = super::comments::task_payload_sql("go.id");
    format!(
        "WITH t AS (SELECT x.id, x.closed FROM (SELECT id, closed FROM threads WHERE forum_id = $2 AND ident = $3 UNION ALL \
           SELECT t.id, t.closed FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
           WHERE a.forum_id = $2 AND a.ident = $3 LIMIT 1) x), \
         par AS (SELECT c.id, c.depth FROM comments c, t WHERE c.id = $4 AND c.thread_id = t.id AND c.status <> 'deleted'), \
         go AS (SELECT t.id AS thread_id, confab_next_id($1) AS id, coalesce((SELECT depth + 1 FROM par), 0) AS depth \
           FROM (SELECT confab_write_shard($1)) fence, t \
           WHERE NOT t.closed \
             AND NOT EXISTS (SELECT 1 FROM idempotency WHERE scope = $22 AND key = $23) \
             AND ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM par WHERE par.depth < $5))), \
         c AS (INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
           guest_email, guest_url, body_md, body_html, status, created_at, ip_hash, held_reason, images) \
           SELECT go.id, $1, go.thread_id, $2, $4, go.depth, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 FROM go), \
         th AS (UPDATE threads SET comment_count = comment_count + $18, hidden_count = hidden_count + $19, seq = seq + 1, \
           url = coalesce(url, $20), title = coalesce(title, $21) FROM go WHERE threads.id = go.thread_id RETURNING {returned}), \
         p AS (UPDATE comments SET reply_count = reply_count + $18 FROM go WHERE comments.id = $4 AND $18 <> 0), \
         i AS (INSERT INTO idempotency (scope, key, shard, comment_id, created_at, request_hash) \
           SELECT $22, $23, $1, go.id, $14, $24 FROM go WHERE $22::text IS NOT NULL), \
         k AS (INSERT INTO tasks (id, shard, kind, payload, state, run_at, attempts, created_at, updated_at) \
           SELECT confab_next_id($1), $1, u.kind, \
             {payload}, \
             'queued', u.run_at, 0, $25, $25 \
           FROM go, unnest($26::text[], $27::text[], $28::bigint[]) AS u(kind, payload, run_at)), \
         f AS (INSERT INTO spam_facts (comment_id, shard, user_ip, user_agent, referrer, permalink, lang, created_at) \
           SELECT go.id, $1, $29, $30, $31, $32, $33, $14 FROM go WHERE $29::text IS NOT NULL), \
         rn AS (INSERT INTO reply_notify (comment_id, shard, forum_id, email, created_at, owner) \
           SELECT go.id, $1, $2, $34, $25, $36 FROM go WHERE $34::text IS NOT NULL), \
         s AS (INSERT INTO subscriptions (forum_id, email, shard, state, created_at, updated_at) \
           SELECT $2, $35, $1, 'pending', $25, $25 FROM go WHERE $35::text IS NOT NULL \
           ON CONFLICT (forum_id, email) DO UPDATE SET state = 'pending', updated_at = excluded.updated_at \
           WHERE subscriptions.state <> 'confirmed') \
         SELECT {th}, go.id, go.depth FROM th, go"
    )
}

/// One post's arguments to the statement, in its parameters' order.
pub(super) struct Bound<'a> {
    new: &'a NewComment,
    v: PostValues<'a>,
    shard: i32,
    ident: &'a str,
    parent: Option<i64>,
    status: &'a str,
}

impl<'a> Bound<'a> {
    pub(super) fn new(new: &'a NewComment) -> StoreResult<Bound<'a>> {
        Ok(Bound {
            new,
            v: PostValues::new(new)?,
            shard: sh(new.forum.shard),
            ident: new.ident.as_str(),
            parent: new.parent_id.map(|p| p.0),
            status: new.status.as_str(),
        })
    }

    fn args(&self) -> [&(dyn ToSql + Sync); 36] {
        let (new, v) = (self.new, &self.v);
        [
            &self.shard,
            &new.forum.id.0,
            &self.ident,
            &self.parent,
            &new.max_depth,
            &v.account,
            &new.anon_id,
            &v.guest_name,
            &v.guest_email,
            &v.guest_url,
            &new.body_md,
            &new.body_html,
            &self.status,
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
            &v.watch_owner,
        ]
    }

    /// The post the statement's row says was written.
    fn posted(&self, r: &tokio_postgres::Row) -> Posted {
        let cols = THREAD_COLS.split(", ").count();
        let thread = thread_row(r);
        let comment = self.new.inserted(
            CommentId(r.get(cols)),
            thread.id,
            self.new.parent_id,
            r.get(cols + 1),
        );
        Posted {
            comment,
            thread,
            replayed: false,
        }
    }
}

/// Whether a post may take this path at all (pictures are attached by the general path only).
pub(super) fn eligible(new: &NewComment) -> bool {
    new.images.is_empty()
}

/// What one post's run here came to.
pub(super) enum Outcome {
    /// Written and committed, at this WAL position.
    Done(Box<Posted>, u64),
    /// Not the common case, or its statement failed in a way the general path handles:
    /// nothing of it was written.
    Aside,
}

/// Posts one comment in its own transaction, in one round trip: the statement, and the read of
/// the WAL position after it. A connection that broke is an error: the outcome is unknown,
/// and a retry with the idempotency key is answered with the comment if it was written.
pub(super) async fn solo(conn: &Client, new: &NewComment) -> StoreResult<Outcome> {
    if !eligible(new) {
        return Ok(Outcome::Aside);
    }
    let b = Bound::new(new)?;
    let st = conn.prepare_cached(&POST_ONE).await.map_err(pg_err)?;
    let lsn = conn
        .prepare_cached(super::tx::WAL_POSITION)
        .await
        .map_err(pg_err)?;
    // The WAL position is read after the post's own Sync: its answer arriving proves the
    // post's transaction ended (committed, and flushed: synchronous_commit) before it ran.
    let args = b.args();
    let (posted, at) = tokio::join!(conn.query_opt(&st, &args), conn.query_one(&lsn, &[]));
    let r = match posted {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(Outcome::Aside),
        Err(e) if e.code().is_none() => return Err(pg_err(e)),
        Err(_) => return Ok(Outcome::Aside),
    };
    let at = at.map_err(pg_err)?.get::<_, i64>(0) as u64;
    Ok(Outcome::Done(Box::new(b.posted(&r)), at))
}

/// Why a group's transaction did not commit.
pub(super) enum Unwritten {
    /// A statement failed (or the commit did): the transaction rolled back and none of the
    /// posts was written; each is to be run again on its own.
    RolledBack,
    /// The connection broke: whether the transaction committed is unknown.
    Broken(DomainError),
}

static POST_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(group_sql);

/// The statement of a group: the same reads, rules and writes as [`sql`], for many posts at
/// once. Each post's values are an element of one array per column (`u`, numbered `n` in their
/// order); tasks are flat arrays with the number of their post. The threads' and parents'
/// counters move once per row by the sum of their posts, their rows locked in id order first,
/// so two groups never wait for each other in a cycle. Each post's row returns its thread as it
/// stood just after that post (counters and `seq` less what later posts of the group added).
/// A request sent twice with one key into the same group is written once, by its first copy;
/// the other takes the general path, which answers with that comment.
fn group_sql() -> String {
    let th = THREAD_COLS
        .split(", ")
        .map(|col| match col {
            "comment_count" => {
                "th.comment_count - coalesce(sum(u.approved) OVER later, 0)::bigint".to_string()
            }
            "hidden_count" => {
                "th.hidden_count - coalesce(sum(u.hidden) OVER later, 0)::bigint".to_string()
            }
            "seq" => "th.seq - count(*) OVER later".to_string(),
            col => format!("th.{col}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let returned = THREAD_COLS
        .split(", ")
        .map(|col| format!("threads.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    let payload = super::comments::task_payload_sql("go.id");
    format!(
        "WITH u AS (SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::bigint[], $5::int[], $6::bigint[], \
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], \
           $15::text[], $16::text[], $17::text[], $18::bigint[], $19::bigint[], $20::text[], $21::text[], $22::text[], \
           $23::text[], $24::text[], $25::bigint[], $26::text[], $27::text[], $28::text[], $29::text[], $30::text[], \
           $31::text[], $32::text[], $33::text[]) WITH ORDINALITY AS u(shard, forum_id, ident, parent, max_depth, account, \
           anon_id, guest_name, guest_email, guest_url, body_md, body_html, status, created_at, ip_hash, held_reason, \
           images, approved, hidden, url, title, scope, key, request_hash, now, user_ip, user_agent, referrer, \
           permalink, lang, watch_email, watch_key, watch_owner, n)), \
         fence AS MATERIALIZED (SELECT count(*) AS shards FROM (SELECT confab_write_shard(d.s) FROM \
           (SELECT DISTINCT shard FROM u ORDER BY shard) d(s)) x), \
         go AS (SELECT u.n, t.id AS thread_id, confab_next_id(u.shard) AS id, coalesce(par.depth + 1, 0) AS depth \
           FROM fence, u \
           JOIN LATERAL (SELECT x.id, x.closed FROM (SELECT id, closed FROM threads WHERE forum_id = u.forum_id AND ident = u.ident \
             UNION ALL SELECT t.id, t.closed FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
             WHERE a.forum_id = u.forum_id AND a.ident = u.ident LIMIT 1) x) t ON true \
           LEFT JOIN LATERAL (SELECT c.depth FROM comments c WHERE c.id = u.parent AND c.thread_id = t.id \
             AND c.status <> 'deleted' LIMIT 1) par ON true \
           LEFT JOIN LATERAL (SELECT true AS seen FROM idempotency WHERE scope = u.scope AND key = u.key LIMIT 1) i ON true \
           WHERE fence.shards > 0 AND NOT t.closed AND i.seen IS NULL \
             AND NOT EXISTS (SELECT 1 FROM u AS first WHERE first.scope = u.scope AND first.key = u.key AND first.n < u.n) \
             AND (u.parent IS NULL OR par.depth < u.max_depth)), \
         gu AS (SELECT go.id, go.thread_id, go.depth, u.* FROM go JOIN u USING (n)), \
         c AS (INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, anon_id, guest_name, \
           guest_email, guest_url, body_md, body_html, status, created_at, ip_hash, held_reason, images) \
           SELECT id, shard, thread_id, forum_id, parent, depth, account, anon_id, guest_name, guest_email, guest_url, \
           body_md, body_html, status, created_at, ip_hash, held_reason, images FROM gu), \
         agg AS (SELECT thread_id, sum(approved)::bigint AS approved, sum(hidden)::bigint AS hidden, count(*) AS posts, \
           (array_agg(url ORDER BY n) FILTER (WHERE url IS NOT NULL))[1] AS url, \
           (array_agg(title ORDER BY n) FILTER (WHERE title IS NOT NULL))[1] AS title FROM gu GROUP BY thread_id), \
         tl AS MATERIALIZED (SELECT count(*) AS n FROM (SELECT id FROM threads \
           WHERE id = ANY(ARRAY(SELECT thread_id FROM agg)) ORDER BY id FOR UPDATE) x), \
         th AS (UPDATE threads SET comment_count = comment_count + agg.approved, hidden_count = hidden_count + agg.hidden, \
           seq = seq + agg.posts, url = coalesce(threads.url, agg.url), title = coalesce(threads.title, agg.title) \
           FROM agg, tl WHERE threads.id = ANY(ARRAY(SELECT thread_id FROM agg)) AND threads.id = agg.thread_id \
           AND tl.n >= 0 RETURNING {returned}), \
         pa AS (SELECT parent, sum(approved)::bigint AS approved FROM gu WHERE parent IS NOT NULL AND approved <> 0 GROUP BY parent), \
         pl AS MATERIALIZED (SELECT count(*) AS n FROM (SELECT id FROM comments \
           WHERE id = ANY(ARRAY(SELECT parent FROM pa)) ORDER BY id FOR UPDATE) x), \
         p AS (UPDATE comments SET reply_count = reply_count + pa.approved FROM pa, pl \
           WHERE comments.id = ANY(ARRAY(SELECT parent FROM pa)) AND comments.id = pa.parent AND pl.n >= 0), \
         i AS (INSERT INTO idempotency (scope, key, shard, comment_id, created_at, request_hash) \
           SELECT scope, key, shard, id, created_at, request_hash FROM gu WHERE scope IS NOT NULL), \
         k AS (INSERT INTO tasks (id, shard, kind, payload, state, run_at, attempts, created_at, updated_at) \
           SELECT confab_next_id(go.shard), go.shard, u.kind, {payload}, 'queued', u.run_at, 0, go.now, go.now \
           FROM unnest($34::bigint[], $35::text[], $36::text[], $37::bigint[]) AS u(n, kind, payload, run_at) \
           JOIN gu go USING (n)), \
         f AS (INSERT INTO spam_facts (comment_id, shard, user_ip, user_agent, referrer, permalink, lang, created_at) \
           SELECT id, shard, user_ip, user_agent, referrer, permalink, lang, created_at FROM gu WHERE user_ip IS NOT NULL), \
         rn AS (INSERT INTO reply_notify (comment_id, shard, forum_id, email, created_at, owner) \
           SELECT id, shard, forum_id, watch_email, now, watch_owner FROM gu WHERE watch_email IS NOT NULL), \
         s AS (INSERT INTO subscriptions (forum_id, email, shard, state, created_at, updated_at) \
           SELECT DISTINCT ON (forum_id, watch_key) forum_id, watch_key, shard, 'pending', now, now FROM gu \
           WHERE watch_key IS NOT NULL ORDER BY forum_id, watch_key \
           ON CONFLICT (forum_id, email) DO UPDATE SET state = 'pending', updated_at = excluded.updated_at \
           WHERE subscriptions.state <> 'confirmed') \
         SELECT {th}, u.id, u.depth, u.n FROM gu u JOIN th ON th.id = u.thread_id \
         WINDOW later AS (PARTITION BY u.thread_id ORDER BY u.n ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
    )
}

/// A group's values, one array per column of [`group_sql`].
#[derive(Default)]
struct Columns<'a> {
    shard: Vec<i32>,
    forum: Vec<i64>,
    ident: Vec<&'a str>,
    parent: Vec<Option<i64>>,
    max_depth: Vec<i32>,
    account: Vec<Option<i64>>,
    anon_id: Vec<Option<&'a str>>,
    guest_name: Vec<Option<&'a str>>,
    guest_email: Vec<Option<&'a str>>,
    guest_url: Vec<Option<&'a str>>,
    body_md: Vec<&'a str>,
    body_html: Vec<&'a str>,
    status: Vec<&'a str>,
    created_at: Vec<i64>,
    ip_hash: Vec<&'a str>,
    held_reason: Vec<Option<&'a str>>,
    images: Vec<Option<&'a str>>,
    approved: Vec<i64>,
    hidden: Vec<i64>,
    url: Vec<Option<&'a str>>,
    title: Vec<Option<&'a str>>,
    scope: Vec<Option<&'a str>>,
    key: Vec<Option<&'a str>>,
    request_hash: Vec<Option<&'a str>>,
    now: Vec<i64>,
    facts: [Vec<Option<&'a str>>; 5],
    watch_email: Vec<Option<&'a str>>,
    watch_key: Vec<Option<&'a str>>,
    watch_owner: Vec<Option<&'a str>>,
    task_post: Vec<i64>,
    task_kind: Vec<&'a str>,
    task_payload: Vec<&'a str>,
    task_run_at: Vec<i64>,
}

impl<'a> Columns<'a> {
    /// Adds the post `b` as number `n` (from 1).
    fn push(&mut self, n: i64, b: &'a Bound<'a>) {
        let (new, v) = (b.new, &b.v);
        self.shard.push(b.shard);
        self.forum.push(new.forum.id.0);
        self.ident.push(b.ident);
        self.parent.push(b.parent);
        self.max_depth.push(new.max_depth);
        self.account.push(v.account);
        self.anon_id.push(new.anon_id.as_deref());
        self.guest_name.push(v.guest_name);
        self.guest_email.push(v.guest_email);
        self.guest_url.push(v.guest_url);
        self.body_md.push(&new.body_md);
        self.body_html.push(&new.body_html);
        self.status.push(b.status);
        self.created_at.push(new.created_at);
        self.ip_hash.push(&new.ip_hash);
        self.held_reason.push(new.held_reason.as_deref());
        self.images.push(v.images.as_deref());
        self.approved.push(v.shift.approved);
        self.hidden.push(v.shift.hidden);
        self.url.push(new.url.as_deref());
        self.title.push(new.title.as_deref());
        self.scope.push(v.scope);
        self.key.push(v.key);
        self.request_hash.push(v.request_hash);
        self.now.push(v.now);
        for (col, fact) in self.facts.iter_mut().zip(v.facts) {
            col.push(fact);
        }
        self.watch_email.push(v.watch_email);
        self.watch_key.push(v.watch_key.as_deref());
        self.watch_owner.push(v.watch_owner);
        for ((kind, payload), run_at) in v.kinds.iter().zip(&v.payloads).zip(&v.run_at) {
            self.task_post.push(n);
            self.task_kind.push(kind);
            self.task_payload.push(payload);
            self.task_run_at.push(*run_at);
        }
    }

    fn args(&self) -> [&(dyn ToSql + Sync); 37] {
        [
            &self.shard,
            &self.forum,
            &self.ident,
            &self.parent,
            &self.max_depth,
            &self.account,
            &self.anon_id,
            &self.guest_name,
            &self.guest_email,
            &self.guest_url,
            &self.body_md,
            &self.body_html,
            &self.status,
            &self.created_at,
            &self.ip_hash,
            &self.held_reason,
            &self.images,
            &self.approved,
            &self.hidden,
            &self.url,
            &self.title,
            &self.scope,
            &self.key,
            &self.request_hash,
            &self.now,
            &self.facts[0],
            &self.facts[1],
            &self.facts[2],
            &self.facts[3],
            &self.facts[4],
            &self.watch_email,
            &self.watch_key,
            &self.watch_owner,
            &self.task_post,
            &self.task_kind,
            &self.task_payload,
            &self.task_run_at,
        ]
    }
}

/// Posts `news` in ONE statement, its own transaction, in one round trip with the read of the
/// WAL position after it: the server runs the reads, the rules and the writes once for all of
/// them and makes them durable with one commit. A post that is not the common case writes
/// nothing and its place says [`Outcome::Aside`]; the others are written. A statement that
/// fails writes none of them ([`Unwritten::RolledBack`]).
pub(super) async fn group(conn: &Client, news: &[&NewComment]) -> Result<Vec<Outcome>, Unwritten> {
    let bound: Vec<Option<Bound<'_>>> = news
        .iter()
        .map(|n| eligible(n).then(|| Bound::new(n).ok()).flatten())
        .collect();
    let mut cols = Columns::default();
    for (i, b) in bound.iter().enumerate() {
        if let Some(b) = b {
            cols.push(i as i64 + 1, b);
        }
    }
    let broken = |e| Unwritten::Broken(pg_err(e));
    let st = conn.prepare_cached(&POST_MANY).await.map_err(broken)?;
    let lsn = conn
        .prepare_cached(super::tx::WAL_POSITION)
        .await
        .map_err(broken)?;
    let args = cols.args();
    let (rows, at) = tokio::join!(conn.query(&st, &args), conn.query_one(&lsn, &[]));
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) if e.code().is_none() => return Err(broken(e)),
        Err(_) => return Err(Unwritten::RolledBack),
    };
    let at = at.map_err(broken)?.get::<_, i64>(0) as u64;
    let mut out: Vec<Outcome> = news.iter().map(|_| Outcome::Aside).collect();
    let cols = THREAD_COLS.split(", ").count();
    for r in &rows {
        let n: i64 = r.get(cols + 2);
        let i = usize::try_from(n - 1).map_err(|_| Unwritten::Broken(DomainError::internal()))?;
        if let (Some(Some(b)), Some(slot)) = (bound.get(i), out.get_mut(i)) {
            *slot = Outcome::Done(Box::new(b.posted(r)), at);
        }
    }
    Ok(out)
}

//! A post in one round trip.
//!
//! The common post (its page's thread exists and is open, a top-level comment or a reply within
//! the depth limit, no pictures, no earlier request with the same idempotency key) is one
//! statement in its own transaction: the fence check, the reads the writes depend on, and every
//! write, as data-modifying CTEs. The read of the commit's WAL position follows it in the same
//! flush. A post that is not the common case writes nothing here and takes the general path
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

/// Posts `new` in one round trip when it is the common case: `None` when it is not, or when the
/// statement failed in a way the general path handles (nothing was written then).
pub(super) async fn post(
    store: &PgStore,
    new: &NewComment,
) -> StoreResult<Option<Written<Posted>>> {
    if !new.images.is_empty() {
        return Ok(None);
    }
    let forum = &new.forum;
    let shard = sh(forum.shard);
    let v = PostValues::new(new)?;

    let _db = confab_record::Timer::start(confab_record::Field::DbMicros);
    let server = store.r.server_for(forum.shard)?;
    let conn = server.primary().await?;
    let n = server.counter(crate::Target::Primary);
    n.add(1);
    let st = conn.prepare_cached(&POST_ONE).await.map_err(pg_err)?;
    let lsn = conn
        .prepare_cached(super::tx::WAL_POSITION)
        .await
        .map_err(pg_err)?;
    let args: Args<'_> = &[
        &shard,
        &forum.id.0,
        &new.ident.as_str(),
        &new.parent_id.map(|p| p.0),
        &new.max_depth,
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
        &v.watch_owner,
    ];
    // The WAL position is read after the post's own Sync: its answer arriving proves the
    // post's transaction ended (committed, and flushed: synchronous_commit) before it ran.
    let (posted, at) = tokio::join!(conn.query_opt(&st, args), conn.query_one(&lsn, &[]));
    let r = match posted {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        // A connection that broke: the outcome is unknown; the client retries (with its
        // idempotency key, a retry that did commit is answered with the same comment).
        Err(e) if e.code().is_none() => return Err(pg_err(e)),
        Err(_) => return Ok(None),
    };
    let at = at.map_err(pg_err)?.get::<_, i64>(0) as u64;
    let cols = THREAD_COLS.split(", ").count();
    let thread = thread_row(&r);
    let comment = new.inserted(
        CommentId(r.get(cols)),
        thread.id,
        new.parent_id,
        r.get(cols + 1),
    );
    Ok(Some(Written {
        value: Posted {
            comment,
            thread,
            replayed: false,
        },
        at: Some(server.committed(at)),
    }))
}

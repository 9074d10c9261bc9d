//! Imports: a batch of whole threads in one transaction on the forum's shard primary (see
//! [`crate::ImportStore`]), the twin of `sqlite/import.rs`. Where SQLite runs a statement per
//! row in process, a round trip per row would dominate here: the batch is written with a
//! fixed number of set-based statements (arrays through `unnest`), whatever its size.

use super::*;
use crate::import::{
    attach, ImportBatch, ImportRecord, ImportState, ImportStore, ImportUpdate, Imported, Moved,
    NewImportRecord, Placed, Tally, ThreadMove,
};

/// Rows per multi-row statement.
const CHUNK: usize = 5_000;
/// Ids drawn from `confab_next_id` in one statement (its sequence has 2,048 values per ms).
const ID_RUN: usize = 1_000;

fn aliased_cols() -> String {
    THREAD_COLS
        .split(", ")
        .map(|col| format!("t.{col}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Threads of `forum` by any of `idents` (their own ident or an alias): (ident asked, thread).
async fn threads_by_idents<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    forum: ForumId,
    idents: &[&str],
) -> StoreResult<HashMap<String, Thread>> {
    let sql = format!(
        "SELECT ident, {THREAD_COLS} FROM threads WHERE forum_id = $1 AND ident = ANY($2) UNION ALL \
         SELECT a.ident, {} FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
         WHERE a.forum_id = $1 AND a.ident = ANY($2)",
        aliased_cols()
    );
    let mut out = HashMap::new();
    for chunk in idents.chunks(CHUNK) {
        for r in rows(c, n, &sql, &[&forum.0, &chunk]).await? {
            let ident: String = r.get(0);
            // Columns after the first are the thread's, in THREAD_COLS order.
            let t = Thread {
                id: ThreadId(r.get(1)),
                forum_id: ForumId(r.get(2)),
                ident: Ident::from_stored(r.get(3)),
                url: r.get(4),
                title: r.get(5),
                closed: r.get(6),
                comment_count: r.get(7),
                hidden_count: r.get(8),
                seq: r.get(9),
                created_at: r.get(10),
                aliased: r.get(11),
                pinned_id: r.get::<_, Option<i64>>(12).map(CommentId),
                reactions: confab_core::reaction::ReactionCounts::from_json(
                    r.get::<_, Option<String>>(13).as_deref().unwrap_or("{}"),
                ),
            };
            out.entry(ident).or_insert(t);
        }
    }
    Ok(out)
}

async fn placed_by_id<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    id: CommentId,
) -> StoreResult<Option<Placed>> {
    Ok(row(
        c,
        n,
        "SELECT id, depth, parent_id FROM comments WHERE id = $1",
        &[&id.0],
    )
    .await?
    .map(|r| Placed {
        id: CommentId(r.get(0)),
        depth: r.get(1),
        parent: r.get::<_, Option<i64>>(2).map(CommentId),
    }))
}

async fn import_batch<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    forum: &Forum,
    batch: &ImportBatch,
) -> StoreResult<Imported> {
    let mut out = Imported::default();
    let shard = sh(forum.shard);
    let source = batch.source.as_str();
    let now = confab_core::now_ms();

    // 1. Threads: found by any of their idents, else created (one statement each way).
    let all: Vec<&str> = batch
        .threads
        .iter()
        .flat_map(|t| std::iter::once(&t.ident).chain(&t.aliases))
        .map(Ident::as_str)
        .collect();
    let mut known = threads_by_idents(c, n, forum.id, &all).await?;
    let found = |known: &HashMap<String, Thread>, t: &crate::ImportThread| {
        std::iter::once(&t.ident)
            .chain(&t.aliases)
            .find_map(|i| known.get(i.as_str()).cloned())
    };
    let mut changed: HashMap<ThreadId, bool> = HashMap::new();
    let missing: Vec<&crate::ImportThread> = batch
        .threads
        .iter()
        .filter(|t| found(&known, t).is_none())
        .collect();
    if !missing.is_empty() {
        let idents: Vec<&str> = missing.iter().map(|t| t.ident.as_str()).collect();
        let urls: Vec<Option<&str>> = missing.iter().map(|t| t.url.as_deref()).collect();
        let titles: Vec<Option<&str>> = missing.iter().map(|t| t.title.as_deref()).collect();
        let closed: Vec<bool> = missing.iter().map(|t| t.closed).collect();
        let created: Vec<i64> = missing.iter().map(|t| t.created_at).collect();
        let made = exec(
            c,
            n,
            "INSERT INTO threads (id, shard, forum_id, ident, url, title, closed, created_at) \
             SELECT confab_next_id($1), $1, $2, x.i, x.u, x.t, x.c, x.ca \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::bool[], $7::bigint[]) AS x(i, u, t, c, ca) \
             ON CONFLICT (forum_id, ident) DO NOTHING",
            &[&shard, &forum.id.0, &idents, &urls, &titles, &closed, &created],
        )
        .await?;
        out.threads_created += made;
        known = threads_by_idents(c, n, forum.id, &all).await?;
        for t in &missing {
            if let Some(th) = known.get(t.ident.as_str()) {
                changed.insert(th.id, true);
            }
        }
    }
    out.threads_existing = batch.threads.len() as u64 - out.threads_created;

    // 2. Per thread: closed, aliases (set-based), and which thread each batch thread is.
    let mut targets: Vec<Thread> = Vec::with_capacity(batch.threads.len());
    let mut close: Vec<i64> = Vec::new();
    let (mut alias_idents, mut alias_threads): (Vec<&str>, Vec<i64>) = (Vec::new(), Vec::new());
    for t in &batch.threads {
        let th = found(&known, t).ok_or_else(|| {
            DomainError::new(
                ErrorCode::Unavailable,
                "a thread is being created, retry shortly",
            )
        })?;
        if t.closed && !th.closed {
            close.push(th.id.0);
            changed.insert(th.id, true);
        }
        for alias in std::iter::once(&t.ident).chain(&t.aliases) {
            if *alias == th.ident {
                continue;
            }
            match known.get(alias.as_str()) {
                Some(other) if other.id == th.id => {}
                Some(_) => out.aliases_taken += 1,
                None => {
                    if !alias_idents.contains(&alias.as_str()) {
                        alias_idents.push(alias.as_str());
                        alias_threads.push(th.id.0);
                        changed.insert(th.id, true);
                    }
                }
            }
        }
        targets.push(th);
    }
    if !close.is_empty() {
        exec(
            c,
            n,
            "UPDATE threads SET closed = true, seq = seq + 1 WHERE id = ANY($1)",
            &[&close],
        )
        .await?;
    }
    if !alias_idents.is_empty() {
        exec(
            c,
            n,
            "INSERT INTO thread_aliases (forum_id, ident, thread_id, shard, created_at) \
             SELECT $1, x.i, x.t, $2, $3 FROM unnest($4::text[], $5::bigint[]) AS x(i, t) \
             ON CONFLICT (forum_id, ident) DO NOTHING",
            &[&forum.id.0, &shard, &now, &alias_idents, &alias_threads],
        )
        .await?;
        exec(
            c,
            n,
            "UPDATE threads SET aliased = true WHERE id = ANY($1)",
            &[&alias_threads],
        )
        .await?;
    }

    // 3. Comments imported before (and parents imported before), in one statement per chunk.
    let mut asked: Vec<&str> = Vec::new();
    for t in &batch.threads {
        for cm in &t.comments {
            asked.push(&cm.source_id);
            if let Some(p) = &cm.parent_source_id {
                asked.push(p);
            }
        }
    }
    let mut before: HashMap<String, (Placed, i64)> = HashMap::new();
    for chunk in asked.chunks(CHUNK) {
        for r in rows(
            c,
            n,
            "SELECT i.source_id, cm.id, cm.depth, cm.parent_id, cm.thread_id FROM imported i \
             JOIN comments cm ON cm.id = i.comment_id \
             WHERE i.forum_id = $1 AND i.source = $2 AND i.source_id = ANY($3)",
            &[&forum.id.0, &source, &chunk],
        )
        .await?
        {
            before.insert(
                r.get(0),
                (
                    Placed {
                        id: CommentId(r.get(1)),
                        depth: r.get(2),
                        parent: r.get::<_, Option<i64>>(3).map(CommentId),
                    },
                    r.get(4),
                ),
            );
        }
    }
    let fresh: usize = batch
        .threads
        .iter()
        .flat_map(|t| &t.comments)
        .filter(|cm| !before.contains_key(&cm.source_id))
        .count();
    // Ids from the shard database, as posted comments get them. An id holds 11 bits of sequence
    // per millisecond: at most ID_RUN ids are drawn at once, and the next run waits for the next
    // millisecond, so a batch never wraps the sequence within one.
    let mut ids: Vec<i64> = Vec::with_capacity(fresh);
    while ids.len() < fresh {
        if !ids.is_empty() {
            exec(c, n, "SELECT pg_sleep(0.001)", &[]).await?;
        }
        let k = (fresh - ids.len()).min(ID_RUN) as i64;
        ids.extend(
            rows(
                c,
                n,
                "SELECT confab_next_id($1) FROM generate_series(1, $2::bigint)",
                &[&shard, &k],
            )
            .await?
            .iter()
            .map(|r| r.get::<_, i64>(0)),
        );
    }
    ids.sort_unstable();
    let mut ids = ids.into_iter();

    // 4. Placement in memory (parents first within a thread), then the rows in bulk.
    let mut tally = Tally::default();
    let mut cols = Rows::default();
    for (t, th) in batch.threads.iter().zip(&targets) {
        let mut by_source: HashMap<&str, Placed> = HashMap::new();
        let mut by_id: HashMap<CommentId, Placed> = HashMap::new();
        for cm in &t.comments {
            if before.contains_key(&cm.source_id) {
                out.comments_present += 1;
                continue;
            }
            let parent = match &cm.parent_source_id {
                None => None,
                Some(ps) => match by_source.get(ps.as_str()) {
                    Some(p) => Some(*p),
                    None => before
                        .get(ps)
                        .filter(|(_, thread)| *thread == th.id.0)
                        .map(|(p, _)| *p),
                },
            };
            if cm.parent_source_id.is_some() && parent.is_none() {
                out.orphans += 1;
            }
            // Ancestors past the depth cap that this batch did not place are read (rare:
            // only under parents imported before, at the cap).
            let mut chain = HashMap::new();
            if let Some(p) = parent {
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
            }
            let (parent_id, depth) =
                attach(parent, batch.max_depth, |id| Ok(chain.get(&id).copied()))?;
            let id = CommentId(ids.next().ok_or_else(DomainError::internal)?);
            cols.push(id, th.id, parent_id, depth, cm);
            tally.comment(th.id, parent_id, cm.status);
            let placed = Placed {
                id,
                depth,
                parent: parent_id,
            };
            by_source.insert(cm.source_id.as_str(), placed);
            by_id.insert(id, placed);
            out.comments_added += 1;
            changed.insert(th.id, true);
        }
    }
    cols.write(c, n, forum, shard, source).await?;
    for (thread, (approved, hidden, seq)) in &tally.threads {
        exec(
            c,
            n,
            "UPDATE threads SET comment_count = comment_count + $1, hidden_count = hidden_count + $2, seq = seq + $3 WHERE id = $4",
            &[approved, hidden, seq, &thread.0],
        )
        .await?;
    }
    let (parents, replies): (Vec<i64>, Vec<i64>) =
        tally.parents.iter().map(|(p, r)| (p.0, *r)).unzip();
    for (p, r) in parents.chunks(CHUNK).zip(replies.chunks(CHUNK)) {
        exec(
            c,
            n,
            "UPDATE comments SET reply_count = reply_count + x.r FROM unnest($1::bigint[], $2::bigint[]) AS x(id, r) \
             WHERE comments.id = x.id",
            &[&p, &r],
        )
        .await?;
    }

    // 5. Every ident of every changed thread (theirs and their aliases).
    let changed_ids: Vec<i64> = changed.keys().map(|t| t.0).collect();
    if !changed_ids.is_empty() {
        let mut idents: HashMap<ThreadId, Vec<Ident>> = HashMap::new();
        for th in &targets {
            if changed.contains_key(&th.id) {
                idents
                    .entry(th.id)
                    .or_insert_with(|| vec![th.ident.clone()]);
            }
        }
        for r in rows(
            c,
            n,
            "SELECT thread_id, ident FROM thread_aliases WHERE thread_id = ANY($1)",
            &[&changed_ids],
        )
        .await?
        {
            let list = idents.entry(ThreadId(r.get(0))).or_default();
            let i = Ident::from_stored(r.get(1));
            if !list.contains(&i) {
                list.push(i);
            }
        }
        out.changed = idents.into_iter().collect();
    }
    Ok(out)
}

/// The columns of the comments a batch inserts, for one `unnest` statement per chunk.
#[derive(Default)]
struct Rows<'a> {
    id: Vec<i64>,
    thread: Vec<i64>,
    parent: Vec<Option<i64>>,
    depth: Vec<i32>,
    account: Vec<Option<i64>>,
    name: Vec<Option<&'a str>>,
    email: Vec<Option<&'a str>>,
    url: Vec<Option<&'a str>>,
    md: Vec<&'a str>,
    html: Vec<&'a str>,
    status: Vec<&'static str>,
    created: Vec<i64>,
    source_id: Vec<&'a str>,
}

impl<'a> Rows<'a> {
    fn push(
        &mut self,
        id: CommentId,
        thread: ThreadId,
        parent: Option<CommentId>,
        depth: i32,
        cm: &'a crate::ImportComment,
    ) {
        let (account, name, email, url) = match &cm.author {
            Author::Account(a) => (Some(a.0), None, None, None),
            Author::Guest { name, email, url } => {
                (None, Some(name.as_str()), email.as_deref(), url.as_deref())
            }
        };
        self.id.push(id.0);
        self.thread.push(thread.0);
        self.parent.push(parent.map(|p| p.0));
        self.depth.push(depth);
        self.account.push(account);
        self.name.push(name);
        self.email.push(email);
        self.url.push(url);
        self.md.push(&cm.body_md);
        self.html.push(&cm.body_html);
        self.status.push(cm.status.as_str());
        self.created.push(cm.created_at);
        self.source_id.push(&cm.source_id);
    }

    async fn write<C: GenericClient + Sync>(
        &self,
        c: &C,
        n: &crate::Counter,
        forum: &Forum,
        shard: i32,
        source: &str,
    ) -> StoreResult<()> {
        let mut at = 0;
        while at < self.id.len() {
            let r = at..(at + CHUNK).min(self.id.len());
            exec(
                c,
                n,
                "INSERT INTO comments (id, shard, thread_id, forum_id, parent_id, depth, account_id, guest_name, \
                 guest_email, guest_url, body_md, body_html, status, created_at, ip_hash) \
                 SELECT x.id, $1, x.th, $2, x.p, x.d, x.a, x.nm, x.em, x.u, x.md, x.h, x.s, x.ca, '' \
                 FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::int[], $7::bigint[], $8::text[], \
                             $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[]) \
                   AS x(id, th, p, d, a, nm, em, u, md, h, s, ca)",
                &[
                    &shard,
                    &forum.id.0,
                    &&self.id[r.clone()],
                    &&self.thread[r.clone()],
                    &&self.parent[r.clone()],
                    &&self.depth[r.clone()],
                    &&self.account[r.clone()],
                    &&self.name[r.clone()],
                    &&self.email[r.clone()],
                    &&self.url[r.clone()],
                    &&self.md[r.clone()],
                    &&self.html[r.clone()],
                    &&self.status[r.clone()],
                    &&self.created[r.clone()],
                ],
            )
            .await?;
            exec(
                c,
                n,
                "INSERT INTO imported (forum_id, source, source_id, comment_id, shard) \
                 SELECT $1, $2, x.s, x.c, $3 FROM unnest($4::text[], $5::bigint[]) AS x(s, c)",
                &[
                    &forum.id.0,
                    &source,
                    &shard,
                    &&self.source_id[r.clone()],
                    &&self.id[r.clone()],
                ],
            )
            .await?;
            at = r.end;
        }
        Ok(())
    }
}

async fn move_thread<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    forum: &Forum,
    m: &ThreadMove,
) -> StoreResult<Moved> {
    let Some(t) = thread_by_ident(c, n, forum.id, &m.from).await? else {
        return Ok(Moved::NoThread);
    };
    let already = match thread_by_ident(c, n, forum.id, &m.to).await? {
        Some(other) if other.id != t.id => return Ok(Moved::Taken(other)),
        Some(_) => true,
        None => false,
    };
    if !already {
        exec(
            c,
            n,
            "INSERT INTO thread_aliases (forum_id, ident, thread_id, shard, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &forum.id.0,
                &m.to.as_str(),
                &t.id.0,
                &sh(forum.shard),
                &confab_core::now_ms(),
            ],
        )
        .await?;
        exec(
            c,
            n,
            "UPDATE threads SET aliased = true WHERE id = $1",
            &[&t.id.0],
        )
        .await?;
        log_action(
            c,
            n,
            forum.shard,
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
        )
        .await?;
    }
    if let Some(url) = m.url.as_deref().filter(|u| t.url.as_deref() != Some(*u)) {
        exec(
            c,
            n,
            "UPDATE threads SET url = $1 WHERE id = $2",
            &[&url, &t.id.0],
        )
        .await?;
    }
    let t = load_thread(c, n, t.id)
        .await?
        .ok_or_else(DomainError::internal)?;
    Ok(if already {
        Moved::Already(t)
    } else {
        Moved::Added(t)
    })
}

const IMPORT_COLS: &str = "id, forum_id, actor, format, file_name, bytes, state, posts_read, \
    comments_total, comments_written, summary, error, started_at, finished_at, updated_at";

fn import_row(r: &tokio_postgres::Row) -> ImportRecord {
    let state: String = r.get(6);
    ImportRecord {
        id: r.get(0),
        forum_id: ForumId(r.get(1)),
        actor: r.get::<_, Option<i64>>(2).map(AccountId),
        format: r.get(3),
        file_name: r.get(4),
        bytes: r.get(5),
        // An unknown state (a newer node's) reads as failed rather than as running forever.
        state: ImportState::parse(&state).unwrap_or(ImportState::Failed),
        posts_read: r.get(7),
        comments_total: r.get(8),
        comments_written: r.get(9),
        summary: r.get(10),
        error: r.get(11),
        started_at: r.get(12),
        finished_at: r.get(13),
        updated_at: r.get(14),
    }
}

#[async_trait]
impl ImportStore for PgStore {
    async fn log_import(
        &self,
        forum: &Forum,
        actor: Option<AccountId>,
        detail: &str,
    ) -> StoreResult<()> {
        self.log_control_action(forum.id, actor, "import", detail)
            .await
    }

    async fn create_import(&self, new: NewImportRecord) -> StoreResult<ImportRecord> {
        let now = confab_core::now_ms();
        control!(self, |c, n| {
            let r = row(
                &c,
                &n,
                &format!(
                    "INSERT INTO imports (forum_id, actor, format, file_name, state, started_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'running', $5, $5) RETURNING {IMPORT_COLS}"
                ),
                &[
                    &new.forum_id.0,
                    &new.actor.map(|a| a.0),
                    &new.format,
                    &new.file_name,
                    &now,
                ],
            )
            .await?
            .ok_or_else(DomainError::internal)?;
            Ok(import_row(&r))
        })
    }

    async fn update_import(&self, id: i64, u: &ImportUpdate) -> StoreResult<()> {
        let now = confab_core::now_ms();
        let state = u.ended.unwrap_or(ImportState::Running).as_str();
        let finished = u.ended.map(|_| now);
        control!(self, |c, n| {
            exec(
                &c,
                &n,
                "UPDATE imports SET bytes = $1, state = $2, posts_read = $3, comments_total = $4, \
                 comments_written = $5, summary = $6, error = $7, updated_at = $8, finished_at = $9 WHERE id = $10",
                &[
                    &u.bytes,
                    &state,
                    &u.posts_read,
                    &u.comments_total,
                    &u.comments_written,
                    &u.summary,
                    &u.error,
                    &now,
                    &finished,
                    &id,
                ],
            )
            .await?;
            Ok(())
        })
    }

    async fn imports(&self, forum: ForumId, limit: usize) -> StoreResult<Vec<ImportRecord>> {
        let limit = limit as i64;
        control!(self, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!(
                    "SELECT {IMPORT_COLS} FROM imports WHERE forum_id = $1 ORDER BY id DESC LIMIT $2"
                ),
                &[&forum.0, &limit],
            )
            .await?
            .iter()
            .map(import_row)
            .collect())
        })
    }

    async fn import_record(&self, forum: ForumId, id: i64) -> StoreResult<Option<ImportRecord>> {
        control!(self, |c, n| {
            Ok(row(
                &c,
                &n,
                &format!("SELECT {IMPORT_COLS} FROM imports WHERE forum_id = $1 AND id = $2"),
                &[&forum.0, &id],
            )
            .await?
            .as_ref()
            .map(import_row))
        })
    }

    async fn move_thread(&self, forum: &Forum, m: ThreadMove) -> StoreResult<Written<Moved>> {
        write_tx!(self, forum.shard, |tx, n| {
            move_thread(tx, &n, forum, &m).await
        })
    }

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
            import_batch(tx, &n, forum, &batch).await
        })
    }
}

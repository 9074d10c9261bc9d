//! Exports in keyset pages from the forum's shard (see [`crate::ExportStore`]), the twin of
//! `sqlite/export.rs`. Backups are PostgreSQL's own business (`pg_dump`, `pg_basebackup`).

use super::*;
use crate::export::{
    page_limit, ExportComment, ExportSource, ExportStore, ExportThread, SourceKey,
};
use std::path::Path;

/// What `confab backup` says on a PostgreSQL deployment.
pub const BACKUP_REFUSED: &str = "confab backup copies the embedded SQLite database; this deployment runs on PostgreSQL: \
     back up the control database and every shard primary with pg_dump (or pg_basebackup with WAL archiving), \
     as the README's \"Backups and export\" says";

/// Where the columns after [`COMMENT_COLS`] start (it grows with migrations).
static AFTER_COMMENT: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| COMMENT_COLS.split(',').count());

#[async_trait]
impl ExportStore for PgStore {
    async fn export_threads(
        &self,
        forum: &Forum,
        after: Option<ThreadId>,
        limit: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<ExportThread>> {
        let after = after.map_or(i64::MIN, |t| t.0);
        let limit = page_limit(limit) as i64;
        let f = forum.id.0;
        read_on!(self, forum.shard, from, |c, n| {
            let threads: Vec<Thread> = rows(
                &c,
                &n,
                &format!(
                    "SELECT {THREAD_COLS} FROM threads WHERE forum_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ),
                &[&f, &after, &limit],
            )
            .await?
            .iter()
            .map(thread_row)
            .collect();
            let aliased: Vec<i64> = threads
                .iter()
                .filter(|t| t.aliased)
                .map(|t| t.id.0)
                .collect();
            let mut aliases: HashMap<ThreadId, Vec<Ident>> = HashMap::new();
            if !aliased.is_empty() {
                for r in rows(
                    &c,
                    &n,
                    "SELECT thread_id, ident FROM thread_aliases WHERE thread_id = ANY($1) ORDER BY thread_id, ident",
                    &[&aliased],
                )
                .await?
                {
                    aliases
                        .entry(ThreadId(r.get(0)))
                        .or_default()
                        .push(Ident::from_stored(r.get(1)));
                }
            }
            Ok(threads
                .into_iter()
                .map(|thread| ExportThread {
                    aliases: aliases.remove(&thread.id).unwrap_or_default(),
                    thread,
                })
                .collect())
        })
    }

    async fn export_comments(
        &self,
        forum: &Forum,
        after: Option<CommentId>,
        limit: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<ExportComment>> {
        let after = after.map_or(i64::MIN, |c| c.0);
        let limit = page_limit(limit) as i64;
        let f = forum.id.0;
        read_on!(self, forum.shard, from, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!(
                    "SELECT {COMMENT_COLS}, score, EXISTS (SELECT 1 FROM comments r \
                     WHERE r.thread_id = c.thread_id AND r.parent_id = c.id AND (r.status <> 'deleted' \
                     OR EXISTS (SELECT 1 FROM comments r2 WHERE r2.thread_id = r.thread_id AND r2.parent_id = r.id))) \
                     FROM comments c WHERE forum_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ),
                &[&f, &after, &limit],
            )
            .await?
            .iter()
            .map(|r| ExportComment {
                comment: comment_row(r),
                score: r.get(*AFTER_COMMENT),
                has_replies: r.get(*AFTER_COMMENT + 1),
            })
            .collect())
        })
    }

    async fn export_sources(
        &self,
        forum: &Forum,
        after: Option<SourceKey>,
        limit: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<ExportSource>> {
        let limit = page_limit(limit) as i64;
        let f = forum.id.0;
        read_on!(self, forum.shard, from, |c, n| {
            let found =
                match &after {
                    None => rows(
                        &c,
                        &n,
                        "SELECT source, source_id, comment_id FROM imported WHERE forum_id = $1 \
                         ORDER BY source, source_id LIMIT $2",
                        &[&f, &limit],
                    )
                    .await?,
                    Some((source, source_id)) => rows(
                        &c,
                        &n,
                        "SELECT source, source_id, comment_id FROM imported WHERE forum_id = $1 \
                         AND (source, source_id) > ($2, $3) ORDER BY source, source_id LIMIT $4",
                        &[&f, source, source_id, &limit],
                    )
                    .await?,
                };
            Ok(found
                .iter()
                .map(|r| ExportSource {
                    source: r.get(0),
                    source_id: r.get(1),
                    comment: CommentId(r.get(2)),
                })
                .collect())
        })
    }

    async fn backup_into(&self, _path: &Path) -> StoreResult<u64> {
        Err(DomainError::new(ErrorCode::BadRequest, BACKUP_REFUSED))
    }
}

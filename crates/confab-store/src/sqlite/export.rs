//! Exports in keyset pages, and `VACUUM INTO` backups (see [`crate::ExportStore`]).

use super::*;
use crate::export::{
    page_limit, ExportComment, ExportSource, ExportStore, ExportThread, SourceKey,
};
use rusqlite::OpenFlags;
use std::collections::HashMap;
use std::path::PathBuf;

fn export_threads(
    c: &Connection,
    n: &Counter,
    forum: ForumId,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<ExportThread>> {
    // `+forum_id`: walk the primary key from `after` (the unique (forum_id, ident) index
    // would read every thread of the forum and sort them, on every page).
    let threads = rows(
        c,
        n,
        &format!(
            "SELECT {THREAD_COLS} FROM threads WHERE +forum_id = ? AND id > ? ORDER BY id LIMIT ?"
        ),
        &[int(forum.0), int(after), int(limit as i64)],
        thread_row,
    )?;
    let aliased: Vec<Value> = threads
        .iter()
        .filter(|t| t.aliased)
        .map(|t| int(t.id.0))
        .collect();
    let mut aliases: HashMap<ThreadId, Vec<Ident>> = HashMap::new();
    if !aliased.is_empty() {
        let found = rows(
            c,
            n,
            &format!(
                "SELECT thread_id, ident FROM thread_aliases WHERE thread_id IN ({}) ORDER BY thread_id, ident",
                placeholders(aliased.len())
            ),
            &aliased,
            |r| Ok((ThreadId(r.get(0)?), r.get::<_, String>(1)?)),
        )?;
        for (t, ident) in found {
            aliases
                .entry(t)
                .or_default()
                .push(Ident::from_stored(ident));
        }
    }
    Ok(threads
        .into_iter()
        .map(|thread| ExportThread {
            aliases: aliases.remove(&thread.id).unwrap_or_default(),
            thread,
        })
        .collect())
}

/// Where the columns after [`COMMENT_COLS`] start (it grows with migrations).
static AFTER_COMMENT: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| COMMENT_COLS.split(',').count());

fn export_comment_row(r: &Row<'_>) -> rusqlite::Result<ExportComment> {
    Ok(ExportComment {
        comment: comment_row(r)?,
        score: r.get(*AFTER_COMMENT)?,
        has_replies: r.get(*AFTER_COMMENT + 1)?,
    })
}

fn export_comments(
    c: &Connection,
    n: &Counter,
    forum: ForumId,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<ExportComment>> {
    rows(
        c,
        n,
        &format!(
            "SELECT {COMMENT_COLS}, score, EXISTS (SELECT 1 FROM comments r \
             WHERE r.thread_id = c.thread_id AND r.parent_id = c.id AND (r.status <> 'deleted' \
             OR EXISTS (SELECT 1 FROM comments r2 WHERE r2.thread_id = r.thread_id AND r2.parent_id = r.id))) \
             FROM comments c WHERE forum_id = ? AND id > ? ORDER BY id LIMIT ?"
        ),
        &[int(forum.0), int(after), int(limit as i64)],
        export_comment_row,
    )
}

fn export_sources(
    c: &Connection,
    n: &Counter,
    forum: ForumId,
    after: Option<SourceKey>,
    limit: usize,
) -> StoreResult<Vec<ExportSource>> {
    let map = |r: &Row<'_>| -> rusqlite::Result<ExportSource> {
        Ok(ExportSource {
            source: r.get(0)?,
            source_id: r.get(1)?,
            comment: CommentId(r.get(2)?),
        })
    };
    match after {
        None => rows(
            c,
            n,
            "SELECT source, source_id, comment_id FROM imported WHERE forum_id = ? \
             ORDER BY source, source_id LIMIT ?",
            &[int(forum.0), int(limit as i64)],
            map,
        ),
        Some((source, source_id)) => rows(
            c,
            n,
            "SELECT source, source_id, comment_id FROM imported WHERE forum_id = ? \
             AND (source, source_id) > (?, ?) ORDER BY source, source_id LIMIT ?",
            &[
                int(forum.0),
                text(&source),
                text(&source_id),
                int(limit as i64),
            ],
            map,
        ),
    }
}

fn io_failed(what: String) -> impl FnOnce(std::io::Error) -> DomainError {
    move |e| DomainError::internal().with_cause(format!("{what}: {e}"))
}

/// `VACUUM INTO` a temporary file beside `dst` on a connection of its own (one read
/// transaction: a consistent copy of every committed write, while the writer goes on), checked,
/// made durable, then renamed to `dst`.
fn backup(src: &Path, dst: &Path) -> StoreResult<u64> {
    if dst.exists() {
        return Err(DomainError::new(
            ErrorCode::Conflict,
            format!("{} exists already", dst.display()),
        ));
    }
    let mut tmp = dst.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let failed =
        |what: &str, e: rusqlite::Error| DomainError::internal().with_cause(format!("{what}: {e}"));
    let out = (|| {
        let conn = Connection::open_with_flags(
            src,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| failed(&format!("opening {}", src.display()), e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| failed("setting the busy timeout", e))?;
        let target = tmp.to_str().ok_or_else(|| {
            DomainError::invalid(format!("{} is not a UTF-8 path", tmp.display()))
        })?;
        conn.execute("VACUUM INTO ?1", [target])
            .map_err(|e| failed(&format!("copying the database into {target}"), e))?;
        drop(conn);
        let copy = Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| failed(&format!("opening the copy {target}"), e))?;
        let check: String = copy
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| failed(&format!("checking the copy {target}"), e))?;
        drop(copy);
        if check != "ok" {
            return Err(DomainError::internal()
                .with_cause(format!("the copy {target} fails its check: {check}")));
        }
        // The copy holds what the database holds (password hashes, e-mail addresses).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .map_err(io_failed(format!("restricting {target} to its owner")))?;
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_failed(format!("syncing {target}")))?;
        std::fs::rename(&tmp, dst)
            .map_err(io_failed(format!("renaming {target} to {}", dst.display())))?;
        if let Some(dir) = dst.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(io_failed(format!("syncing {}", dir.display())))?;
        }
        std::fs::metadata(dst)
            .map(|m| m.len())
            .map_err(io_failed(format!("reading {}", dst.display())))
    })();
    if out.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    out
}

#[async_trait]
impl ExportStore for SqliteStore {
    async fn export_threads(
        &self,
        forum: &Forum,
        after: Option<ThreadId>,
        limit: usize,
        _from: ReadFrom,
    ) -> StoreResult<Vec<ExportThread>> {
        let (f, after, limit) = (forum.id, after.map_or(i64::MIN, |t| t.0), page_limit(limit));
        self.pool
            .read(move |c, n| export_threads(c, n, f, after, limit))
            .await
    }

    async fn export_comments(
        &self,
        forum: &Forum,
        after: Option<CommentId>,
        limit: usize,
        _from: ReadFrom,
    ) -> StoreResult<Vec<ExportComment>> {
        let (f, after, limit) = (forum.id, after.map_or(i64::MIN, |c| c.0), page_limit(limit));
        self.pool
            .read(move |c, n| export_comments(c, n, f, after, limit))
            .await
    }

    async fn export_sources(
        &self,
        forum: &Forum,
        after: Option<SourceKey>,
        limit: usize,
        _from: ReadFrom,
    ) -> StoreResult<Vec<ExportSource>> {
        let (f, limit) = (forum.id, page_limit(limit));
        self.pool
            .read(move |c, n| export_sources(c, n, f, after, limit))
            .await
    }

    async fn backup_into(&self, path: &Path) -> StoreResult<u64> {
        let (src, dst) = (self.path.clone(), path.to_path_buf());
        tokio::task::spawn_blocking(move || backup(&src, &dst))
            .await
            .map_err(|e| DomainError::internal().with_cause(format!("the backup stopped: {e}")))?
    }
}

//! The dashboard's imports: an export uploaded by staff is streamed to a file
//! (`[import] upload_dir`, default `<data_dir>/imports/<id>.upload`), then imported in the
//! background on the node that received it, through the same pipeline as `confab import`.
//!
//! - Bounded: at most `[import] max_upload_mb` MiB per upload (past it the partial file is
//!   deleted), and one import at a time per node (a second upload gets `conflict`).
//! - Its record (control data: any node reads it, so a dashboard's poll may reach any node)
//!   says how far it is, updated at most once a second, at the change of pass and at the end,
//!   and at least every [`HEARTBEAT`] while it runs; a record left `running` for
//!   [`confab_store::IMPORT_STALE_MS`] reads as interrupted (its node stopped).
//! - When it ends the file is deleted, and its summary (or its error) is written into the
//!   forum's moderation log.

use super::{ImportFormat, ImportInput, ImportProgress, Summary};
use crate::service::{Service, Staff};
use confab_core::id::AccountId;
use confab_core::model::Forum;
use confab_core::{DomainError, ErrorCode};
use confab_store::{ImportRecord, ImportState, ImportUpdate, NewImportRecord};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A record is written at most this often while its numbers move.
const TICK: Duration = Duration::from_secs(1);
/// ... and at least this often while nothing moves (so it does not read as interrupted).
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Imports a forum's list shows.
pub const IMPORTS_LISTED: usize = 20;
/// Bytes gathered before they are written to the file (off the async threads).
const FLUSH_AT: usize = 1024 * 1024;
/// Longest file name kept in a record (characters).
const MAX_FILE_NAME: usize = 200;

/// This node's import slot: 0 free, -1 taken by an upload whose record is being made, else the
/// id of the import that holds it.
#[derive(Debug, Default)]
pub struct ImportSlot(AtomicI64);

/// Holds the node's slot; frees it when dropped.
struct SlotGuard(Arc<Service>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.import_slot.0.store(0, Ordering::SeqCst);
    }
}

/// A file name as the record keeps it: its last path component, printable, bounded.
fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILE_NAME)
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        "upload".to_string()
    } else {
        clean.to_string()
    }
}

/// A size for people: KiB under a MiB, else MiB.
fn size(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// An upload being received. Dropped before [`Upload::start`] (the body failed, was too
/// large, the client went away), it deletes its partial file and marks its record failed.
pub struct Upload {
    svc: Arc<Service>,
    forum: Arc<Forum>,
    actor: AccountId,
    format: ImportFormat,
    record: ImportRecord,
    path: PathBuf,
    file: Option<std::fs::File>,
    /// Received, not yet written to the file.
    pending: Vec<u8>,
    bytes: u64,
    max: u64,
    written_at: Instant,
    /// Why the upload stopped, for its record (set by [`Upload::fail`]).
    failure: Option<String>,
    slot: Option<SlotGuard>,
}

impl Upload {
    /// The import's record as it was made.
    pub fn record(&self) -> &ImportRecord {
        &self.record
    }

    /// Appends a piece of the body to the file; past the limit, `payload_too_large` (the
    /// caller drops the upload, which deletes the file).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), DomainError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.max {
            let why = format!(
                "the file is over the upload limit of {} MiB ([import] max_upload_mb)",
                self.svc.config.import.max_upload_mb
            );
            self.failure = Some(why.clone());
            return Err(DomainError::new(ErrorCode::PayloadTooLarge, why));
        }
        self.pending.extend_from_slice(chunk);
        if self.pending.len() >= FLUSH_AT {
            self.flush().await?;
        }
        if self.written_at.elapsed() >= TICK {
            self.written_at = Instant::now();
            let u = ImportUpdate {
                bytes: self.bytes as i64,
                ..ImportUpdate::default()
            };
            if let Err(e) = self.svc.store.update_import(self.record.id, &u).await {
                tracing::warn!(error = %e.reason(), "an import's record was not updated");
            }
        }
        Ok(())
    }

    /// Writes what was received to the file, on a blocking thread.
    async fn flush(&mut self) -> Result<(), DomainError> {
        use std::io::Write;
        let mut file = self.file.take().ok_or_else(DomainError::internal)?;
        let buf = std::mem::take(&mut self.pending);
        let (file, buf, res) = tokio::task::spawn_blocking(move || {
            let res = file.write_all(&buf);
            (file, buf, res)
        })
        .await
        .map_err(|_| DomainError::internal())?;
        self.file = Some(file);
        self.pending = buf;
        self.pending.clear();
        if let Err(e) = res {
            tracing::error!(error = %e, path = %self.path.display(), "writing an upload");
            self.failure = Some(format!(
                "the upload could not be written on the server: {e}"
            ));
            return Err(DomainError::new(
                ErrorCode::Internal,
                "the upload could not be written on the server",
            ));
        }
        Ok(())
    }

    /// Says why the upload stopped (its record's error); the upload is then dropped.
    pub fn fail(mut self, why: &str) {
        self.failure = Some(why.to_string());
    }

    /// The whole file is here: the import starts in the background. Returns its record.
    pub async fn start(mut self) -> Result<ImportRecord, DomainError> {
        self.flush().await?;
        drop(self.file.take());
        let u = ImportUpdate {
            bytes: self.bytes as i64,
            ..ImportUpdate::default()
        };
        self.svc.store.update_import(self.record.id, &u).await?;
        let mut record = self.record.clone();
        record.bytes = self.bytes as i64;
        let run = Run {
            svc: self.svc.clone(),
            forum: self.forum.clone(),
            actor: self.actor,
            format: self.format,
            id: record.id,
            file_name: record.file_name.clone(),
            path: self.path.clone(),
            bytes: self.bytes,
            slot: self.slot.take(),
        };
        // Handed over: dropping `self` now deletes nothing.
        self.path = PathBuf::new();
        tokio::spawn(run.go());
        Ok(record)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, path = %self.path.display(), "an upload's partial file was not deleted");
            }
        }
        let why = self
            .failure
            .take()
            .unwrap_or_else(|| "the upload did not finish".to_string());
        let (svc, id, bytes) = (self.svc.clone(), self.record.id, self.bytes as i64);
        // The slot is freed as this returns (before the record says failed).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let u = ImportUpdate {
                    bytes,
                    ended: Some(ImportState::Failed),
                    error: why,
                    ..ImportUpdate::default()
                };
                if let Err(e) = svc.store.update_import(id, &u).await {
                    tracing::warn!(error = %e.reason(), "an import's record was not updated");
                }
            });
        }
    }
}

/// How far a running import is, as the pipeline tells it.
#[derive(Default)]
struct Counters {
    posts: AtomicU64,
    total: AtomicU64,
    written: AtomicU64,
    /// Woken at the change of pass (the record is written at once).
    phase: tokio::sync::Notify,
}

impl ImportProgress for Counters {
    fn reading(&self, posts: u64) {
        self.posts.store(posts, Ordering::Relaxed);
    }
    fn writing(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.phase.notify_one();
    }
    fn wrote(&self, done: u64) {
        self.written.store(done, Ordering::Relaxed);
    }
}

impl Counters {
    fn update(&self, bytes: u64) -> ImportUpdate {
        ImportUpdate {
            bytes: bytes as i64,
            posts_read: self.posts.load(Ordering::Relaxed) as i64,
            comments_total: self.total.load(Ordering::Relaxed) as i64,
            comments_written: self.written.load(Ordering::Relaxed) as i64,
            ..ImportUpdate::default()
        }
    }
}

/// An import running in the background.
struct Run {
    svc: Arc<Service>,
    forum: Arc<Forum>,
    actor: AccountId,
    format: ImportFormat,
    id: i64,
    file_name: String,
    path: PathBuf,
    bytes: u64,
    slot: Option<SlotGuard>,
}

impl Run {
    async fn go(self) {
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let ticker = tokio::spawn(tick(
            self.svc.clone(),
            self.id,
            self.bytes,
            counters.clone(),
            stopped,
        ));
        let result = self
            .svc
            .import(
                &self.forum.name,
                self.format,
                ImportInput::Path(self.path.clone()),
                counters.clone(),
            )
            .await;
        // The ticker ends between two writes, so none of its lands after the last one.
        let _ = stop.send(());
        let _ = ticker.await;
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(error = %e, path = %self.path.display(), "an imported upload was not deleted");
        }
        let mut u = counters.update(self.bytes);
        let what = format!(
            "{} export {} ({})",
            self.format.source(),
            self.file_name,
            size(self.bytes)
        );
        let line = match &result {
            Ok(s) => {
                u.ended = Some(ImportState::Done);
                u.summary = s.to_string();
                u.posts_read = s.posts_read as i64;
                u.comments_written = u.comments_total;
                tracing::info!(forum = %self.forum.name, import = self.id, "import done");
                format!("import {}: {what}: {}", self.id, log_line(s))
            }
            Err(e) => {
                u.ended = Some(ImportState::Failed);
                // Named by the file's name, not by where this server keeps it.
                u.error = e
                    .to_string()
                    .replace(&self.path.display().to_string(), &self.file_name);
                tracing::warn!(forum = %self.forum.name, import = self.id, error = %e, "import failed");
                format!("import {} failed: {what}: {}", self.id, u.error)
            }
        };
        if let Err(e) = self
            .svc
            .store
            .log_import(&self.forum, Some(self.actor), &line)
            .await
        {
            tracing::error!(error = %e.reason(), import = self.id, "an import's moderation-log entry was not written");
        }
        // Free before the record says it ended: whoever reads that may upload again at once.
        drop(self.slot);
        if let Err(e) = self.svc.store.update_import(self.id, &u).await {
            tracing::error!(error = %e.reason(), import = self.id, "an import's last record was not written");
        }
    }
}

/// Writes the record while the import runs: at most once a [`TICK`] when its numbers moved,
/// at once when the second pass starts, at least every [`HEARTBEAT`].
async fn tick(
    svc: Arc<Service>,
    id: i64,
    bytes: u64,
    counters: Arc<Counters>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut last = counters.update(bytes);
    let mut last_at = Instant::now();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(TICK) => {}
            _ = counters.phase.notified() => {}
        }
        let now = counters.update(bytes);
        if now == last && last_at.elapsed() < HEARTBEAT {
            continue;
        }
        if let Err(e) = svc.store.update_import(id, &now).await {
            tracing::warn!(error = %e.reason(), import = id, "an import's record was not updated");
        }
        last = now;
        last_at = Instant::now();
    }
}

/// A summary on one line, for the moderation log.
fn log_line(s: &Summary) -> String {
    let d = &s.done;
    let mut out = format!(
        "{} threads created, {} already there; {} comments added, {} imported before",
        d.threads_created, d.threads_existing, d.comments_added, d.comments_present
    );
    if d.orphans > 0 {
        out.push_str(&format!(
            "; {} replies whose parent is not in the export made top-level",
            d.orphans
        ));
    }
    if d.aliases_taken > 0 {
        out.push_str(&format!(
            "; {} aliases held by another thread",
            d.aliases_taken
        ));
    }
    if s.skipped.is_empty() {
        out.push_str("; skipped: none");
    } else {
        let parts: Vec<String> = s
            .skipped
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        out.push_str(&format!("; skipped: {}", parts.join(", ")));
    }
    out.push_str(&format!("; {:.1} s", s.seconds));
    out
}

impl Service {
    /// Starts receiving an upload for `forum` (staff): refused at once when the declared size
    /// is over the limit, when this node runs an import already, or when the forum does not
    /// exist. The returned [`Upload`] takes the body piece by piece, then starts the import.
    pub async fn begin_upload(
        self: &Arc<Self>,
        staff: &Staff,
        forum: &str,
        format: ImportFormat,
        file_name: &str,
        declared: Option<u64>,
    ) -> Result<Upload, DomainError> {
        let forum = self.forum(forum)?;
        let cfg = &self.config.import;
        let max = cfg.max_upload_bytes();
        if declared.is_some_and(|n| n > max) {
            return Err(DomainError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the file is over the upload limit of {} MiB ([import] max_upload_mb)",
                    cfg.max_upload_mb
                ),
            ));
        }
        if let Err(held) =
            self.import_slot
                .0
                .compare_exchange(0, -1, Ordering::SeqCst, Ordering::SeqCst)
        {
            let which = if held > 0 {
                format!(" (import {held})")
            } else {
                String::new()
            };
            return Err(DomainError::new(
                ErrorCode::Conflict,
                format!(
                    "this server is already running an import{which}; one runs at a time: \
                     upload again when it has ended"
                ),
            ));
        }
        let slot = SlotGuard(self.clone());
        let record = self
            .store
            .create_import(NewImportRecord {
                forum_id: forum.id,
                actor: Some(staff.account().id),
                format: format.source().to_string(),
                file_name: clean_file_name(file_name),
            })
            .await?;
        self.import_slot.0.store(record.id, Ordering::SeqCst);
        let mut upload = Upload {
            svc: self.clone(),
            forum,
            actor: staff.account().id,
            format,
            path: PathBuf::new(),
            file: None,
            pending: Vec::new(),
            bytes: 0,
            max,
            written_at: Instant::now(),
            failure: None,
            slot: Some(slot),
            record,
        };
        let dir = cfg.dir(&self.config.data_dir);
        let path = dir.join(format!("{}.upload", upload.record.id));
        let opened = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
        });
        match opened {
            Ok(f) => {
                upload.path = path;
                upload.file = Some(f);
                Ok(upload)
            }
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "an upload's file could not be made");
                let why = format!("the upload's file could not be made on the server: {e}");
                let u = ImportUpdate {
                    ended: Some(ImportState::Failed),
                    error: why,
                    ..ImportUpdate::default()
                };
                let _ = self.store.update_import(upload.record.id, &u).await;
                Err(DomainError::new(
                    ErrorCode::Internal,
                    "the upload's file could not be made on the server",
                ))
            }
        }
    }

    /// A forum's latest imports (staff), newest first.
    pub async fn imports(
        &self,
        _staff: &Staff,
        forum: &str,
    ) -> Result<Vec<ImportRecord>, DomainError> {
        let forum = self.forum(forum)?;
        let now = confab_core::now_ms();
        Ok(self
            .store
            .imports(forum.id, IMPORTS_LISTED)
            .await?
            .into_iter()
            .map(|r| r.as_of(now))
            .collect())
    }

    /// One import of a forum (staff).
    pub async fn import_record(
        &self,
        _staff: &Staff,
        forum: &str,
        id: i64,
    ) -> Result<ImportRecord, DomainError> {
        let forum = self.forum(forum)?;
        self.store
            .import_record(forum.id, id)
            .await?
            .map(|r| r.as_of(confab_core::now_ms()))
            .ok_or_else(|| DomainError::not_found("import"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_offers_every_format() {
        for f in ImportFormat::ALL {
            assert_eq!(ImportFormat::parse_name(f.source()), Some(*f));
        }
        // Names of formats Confab reads or is about to: any that parses must be offered.
        for name in [
            "disqus",
            "wordpress",
            "isso",
            "remark42",
            "commento",
            "hyvor",
        ] {
            if let Some(f) = ImportFormat::parse_name(name) {
                assert!(
                    ImportFormat::ALL.contains(&f),
                    "add {name} to ImportFormat::ALL"
                );
            }
        }
    }

    #[test]
    fn file_names_keep_their_last_part_printable_and_bounded() {
        assert_eq!(clean_file_name("disqus.xml"), "disqus.xml");
        assert_eq!(
            clean_file_name("C:\\Users\\me\\export.xml.gz"),
            "export.xml.gz"
        );
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("a\u{0}b\nc"), "abc");
        assert_eq!(clean_file_name(""), "upload");
        assert_eq!(clean_file_name("dir/"), "upload");
        assert_eq!(clean_file_name(&"x".repeat(500)).len(), MAX_FILE_NAME);
    }
}

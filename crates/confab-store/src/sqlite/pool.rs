//! Connections: a bounded pool of readers and one writer thread that commits in groups.
//!
//! Why one writer: SQLite allows one writer at a time anyway, and funnelling every write through
//! one thread lets it wrap many requests in one transaction, so one fsync (`synchronous=FULL`)
//! makes a whole group durable before any of them is acknowledged. Each request runs inside its
//! own SAVEPOINT, so one failing request never spoils the others in its group.
//!
//! A third kind of thread checkpoints: it copies committed WAL frames into the database file
//! every `CHECKPOINT_EVERY`, so the writer doesn't stop committing to do it (a checkpoint
//! fsyncs the database file). The writer still checkpoints by itself past
//! `WRITER_CHECKPOINT_PAGES`, should the checkpointer fall behind.

pub use crate::Counter;
use crate::{ShardCounts, Target};
use confab_core::{DomainError, ErrorCode};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// Most requests committed together.
const MAX_GROUP: usize = 512;
/// Writes waiting for the writer; past this, callers wait (bounded backpressure).
const WRITE_QUEUE: usize = 8192;
/// How long a caller waits for its write before giving up with 503.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the checkpointer runs a PASSIVE checkpoint (never blocks readers or the writer).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// WAL pages past which the writer checkpoints itself (SQLite's default is 1,000).
const WRITER_CHECKPOINT_PAGES: i64 = 10_000;

/// Maps a SQLite failure to a domain error, logging the cause.
pub fn db_err(e: rusqlite::Error) -> DomainError {
    use rusqlite::ErrorCode as C;
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            C::DatabaseBusy | C::DatabaseLocked => {
                confab_record::note_cause(&format_args!("sqlite: {e}"));
                return DomainError::new(ErrorCode::Unavailable, "database busy, retry shortly");
            }
            C::ConstraintViolation => {
                return DomainError::new(ErrorCode::Conflict, "already exists")
            }
            _ => {}
        }
    }
    tracing::error!(error = %e, "sqlite error");
    confab_record::note_cause(&format_args!("sqlite: {e}"));
    DomainError::internal()
}

/// Sends a job's result once its group's commit is known.
type Completion = Box<dyn FnOnce(Result<(), DomainError>) + Send>;
/// Runs inside the group's transaction; `Ok` keeps its changes, `Err` rolls back its savepoint.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

pub struct Pool {
    readers: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
    writer: mpsc::Sender<Job>,
    counts: Arc<ShardCounts>,
    /// Dropped with the pool, which ends the checkpointer.
    _checkpointer: std::sync::mpsc::Sender<()>,
}

fn configure(conn: &Connection, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    if !writer {
        conn.pragma_update(None, "query_only", true)?;
    }
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

impl Pool {
    /// Opens the file, runs `init` on the writer connection (migrations), then starts the writer.
    pub fn open(
        path: &Path,
        readers: usize,
        init: impl FnOnce(&mut Connection) -> Result<(), DomainError>,
    ) -> Result<Pool, DomainError> {
        let mut w = Connection::open(path).map_err(db_err)?;
        configure(&w, true).map_err(db_err)?;
        w.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .map_err(db_err)?;
        init(&mut w)?;
        let cp = Connection::open(path).map_err(db_err)?;
        configure(&cp, true).map_err(db_err)?;
        let mut rs = Vec::with_capacity(readers);
        for _ in 0..readers.max(1) {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(db_err)?;
            configure(&r, false).map_err(db_err)?;
            rs.push(r);
        }
        let n = rs.len();
        let (tx, rx) = mpsc::channel::<Job>(WRITE_QUEUE);
        spawn_thread("confab-sqlite-writer", move || writer_loop(w, rx))?;
        let (stop, stopped) = std::sync::mpsc::channel();
        spawn_thread("confab-sqlite-checkpoint", move || {
            checkpoint_loop(cp, stopped)
        })?;
        Ok(Pool {
            readers: Arc::new(Mutex::new(rs)),
            permits: Arc::new(Semaphore::new(n)),
            writer: tx,
            counts: Arc::default(),
            _checkpointer: stop,
        })
    }

    /// Statements executed so far (all on the one file: "primary").
    pub fn statements(&self) -> u64 {
        self.counts.get().0
    }

    fn counter(&self) -> Counter {
        self.counts.counter(Target::Primary)
    }

    /// Runs `f` on a reader connection, off the async threads.
    pub async fn read<R, F>(&self, f: F) -> Result<R, DomainError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Counter) -> Result<R, DomainError> + Send + 'static,
    {
        let _db = confab_record::Timer::start(confab_record::Field::DbMicros);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DomainError::new(ErrorCode::Unavailable, "store is shutting down"))?;
        let counter = self.counter();
        let readers = self.readers.clone();
        // The connection and its permit travel into the blocking task and are given back there,
        // so a request cancelled while it waits (the client hung up) never loses a connection.
        let joined = tokio::task::spawn_blocking(move || {
            let _slot = Slot(Some(permit));
            let conn = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some(conn) = conn else {
                return Err(DomainError::internal());
            };
            let r = confab_record::on_thread(counter.record(), || f(&conn, &counter));
            readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            r
        })
        .await;
        joined.unwrap_or_else(|e| {
            // The reader panicked: its connection is gone and `Slot` forgot its permit to match,
            // so one fewer read runs at a time from now on.
            tracing::error!(error = %e, "reader task failed");
            Err(DomainError::internal())
        })
    }

    /// Runs `f` in the writer's next group transaction and waits for the group to commit.
    pub async fn write<R, F>(&self, f: F) -> Result<R, DomainError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Counter) -> Result<R, DomainError> + Send + 'static,
    {
        let _db = confab_record::Timer::start(confab_record::Field::DbMicros);
        let (tx, rx) = oneshot::channel::<Result<R, DomainError>>();
        let counter = self.counter();
        let job: Job = Box::new(move |conn: &Connection| {
            let r = confab_record::on_thread(counter.record(), || f(conn, &counter));
            let ok = r.is_ok();
            let completion: Completion = Box::new(move |commit: Result<(), DomainError>| {
                let _ = tx.send(commit.and(r));
            });
            (ok, completion)
        });
        let unavailable =
            || DomainError::new(ErrorCode::Unavailable, "write timed out, retry shortly");
        tokio::time::timeout(WRITE_TIMEOUT, async {
            self.writer.send(job).await.map_err(|_| unavailable())?;
            rx.await.map_err(|_| unavailable())?
        })
        .await
        .map_err(|_| unavailable())?
    }
}

/// A reader's permit, given back when the read ends, and forgotten if the read panicked (its
/// connection was lost with it, so capacity must shrink by one).
struct Slot(Option<OwnedSemaphorePermit>);

impl Drop for Slot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(p) = self.0.take() {
                p.forget();
            }
        }
    }
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), DomainError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|e| {
            tracing::error!(error = %e, thread = name, "cannot start thread");
            DomainError::internal()
        })
}

/// Copies committed WAL frames into the database file until the pool is dropped.
fn checkpoint_loop(conn: Connection, stop: std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "wal checkpoint failed");
        }
    }
}

/// Runs a statement that takes no parameters and returns no rows, from the statement cache.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        if let Err(e) = run_cached(&conn, "BEGIN IMMEDIATE") {
            // Run nothing: dropping the jobs drops their reply channels, and every caller of the
            // group gets 503 to retry.
            db_err(e);
            batch.clear();
            continue;
        }
        for job in batch.drain(..) {
            // Prepared once and kept in the connection's statement cache: a savepoint per job
            // costs no parsing.
            let sp = run_cached(&conn, "SAVEPOINT job");
            let (ok, completion) = job(&conn);
            if sp.is_ok() {
                let end = if ok {
                    run_cached(&conn, "RELEASE job")
                } else {
                    run_cached(&conn, "ROLLBACK TO job")
                        .and_then(|()| run_cached(&conn, "RELEASE job"))
                };
                if let Err(e) = end {
                    tracing::error!(error = %e, "savepoint end failed");
                }
            }
            completions.push(completion);
        }
        let commit = run_cached(&conn, "COMMIT").map_err(db_err);
        if commit.is_err() {
            let _ = run_cached(&conn, "ROLLBACK");
        }
        for c in completions {
            c(commit.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads whose callers go away mid-read (a client hung up) give their connection back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_reads_do_not_lose_connections() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::open(&dir.path().join("t.sqlite3"), 2, |_| Ok(())).unwrap();
        for _ in 0..10 {
            let slow = pool.read(|c, _| {
                std::thread::sleep(Duration::from_millis(30));
                c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                    .map_err(db_err)
            });
            assert!(
                tokio::time::timeout(Duration::from_millis(2), slow)
                    .await
                    .is_err(),
                "cancelled mid-read"
            );
        }
        for _ in 0..4 {
            let v = pool
                .read(|c, _| {
                    c.query_row("SELECT 41 + 1", [], |r| r.get::<_, i64>(0))
                        .map_err(db_err)
                })
                .await;
            assert_eq!(v, Ok(42));
        }
    }

    /// Committed data reaches the database file without the writer checkpointing (it would
    /// only past 10,000 WAL pages; this writes about 600).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpointer_moves_commits_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let pool = Pool::open(&path, 1, |c| {
            c.execute_batch("CREATE TABLE t (b BLOB)").map_err(db_err)
        })
        .unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        for _ in 0..10 {
            pool.write(|c, _| {
                c.execute("INSERT INTO t SELECT randomblob(250000)", [])
                    .map(|_| ())
                    .map_err(db_err)
            })
            .await
            .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() < before + 2_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file never grew: nothing was checkpointed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

//! The write transaction's connection, and its round trips.
//!
//! A write transaction is opened without waiting for `BEGIN`: `BEGIN`, the fence check and the
//! body's first statements leave in one flush (tokio-postgres pipelines requests that are in
//! flight together on one connection), and `COMMIT` goes out together with the read of the
//! commit's WAL position. The server still runs them one after another, each as if sent alone;
//! only the waiting between them is gone. A post is three round trips this way (see
//! `comments::insert_comment`).
//!
//! Because the transaction is not tokio-postgres's `Transaction` (whose drop sends `ROLLBACK`),
//! [`OpenTx`] keeps the rule itself: a connection goes back to the pool only once its
//! transaction has ended. One dropped while open (a request cancelled mid-write) is closed
//! instead, and the server rolls the transaction back.

use super::{pg_err, StoreResult};
use confab_core::DomainError;
use deadpool_postgres::{Client, GenericClient, Object};

/// The statement that reads the primary's WAL insert position after a commit.
pub(super) const WAL_POSITION: &str = "SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint";

/// A pooled connection inside a transaction it opened.
pub(super) struct OpenTx {
    conn: Option<Object>,
    open: bool,
}

impl OpenTx {
    /// Takes `conn` for a transaction; nothing is sent until [`OpenTx::begin`] is polled.
    pub(super) fn new(conn: Object) -> OpenTx {
        OpenTx {
            conn: Some(conn),
            open: true,
        }
    }

    /// The connection (held until drop: the error cannot happen).
    pub(super) fn client(&self) -> StoreResult<&Client> {
        self.conn.as_ref().ok_or_else(DomainError::internal)
    }

    /// Sends `BEGIN`; runs ahead of whatever is polled after it on the same connection.
    pub(super) async fn begin(&self) -> StoreResult<()> {
        self.client()?.batch_execute("BEGIN").await.map_err(pg_err)
    }

    /// Commits, and reads the WAL position the commit reached, in one round trip. The position
    /// is `None` when it could not be read (the commit itself succeeded).
    pub(super) async fn commit(&mut self) -> StoreResult<Option<u64>> {
        let c = self.client()?;
        let lsn = c.prepare_cached(WAL_POSITION).await.map_err(pg_err)?;
        let (done, at) = tokio::join!(c.batch_execute("COMMIT"), c.query_one(&lsn, &[]));
        done.map_err(pg_err)?;
        self.open = false;
        Ok(at.ok().map(|r| r.get::<_, i64>(0) as u64))
    }

    /// Rolls back. Should that fail, the connection is closed on drop (the server then rolls
    /// back itself).
    pub(super) async fn rollback(&mut self) {
        if let Ok(c) = self.client() {
            if c.batch_execute("ROLLBACK").await.is_ok() {
                self.open = false;
            }
        }
    }
}

impl Drop for OpenTx {
    fn drop(&mut self) {
        if self.open {
            if let Some(conn) = self.conn.take() {
                // Out of the pool's count, and closed when dropped here.
                drop(Object::take(conn));
            }
        }
    }
}

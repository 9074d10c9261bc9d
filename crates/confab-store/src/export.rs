//! Reading a whole forum out (`confab export`) and copying the embedded database (`confab
//! backup`). Every read is one page, keyset-paged by id (or by key), so an export of any size
//! holds one page at a time.

use crate::{ReadFrom, StoreResult};
use async_trait::async_trait;
use confab_core::id::{CommentId, ThreadId};
use confab_core::ident::Ident;
use confab_core::model::{Comment, Forum, Thread};
use std::path::Path;

/// Most rows one export read returns (a larger `limit` is cut to it).
pub const EXPORT_PAGE_MAX: usize = 1_000;

/// A thread with every ident it answers to besides its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportThread {
    pub thread: Thread,
    /// Sorted; empty unless [`Thread::aliased`].
    pub aliases: Vec<Ident>,
}

/// A comment as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportComment {
    pub comment: Comment,
    /// The sort key of `best` (likes less dislikes, as the vote rules keep it).
    pub score: i64,
    /// A reply answers it that is not deleted, or that is deleted and answered itself. An
    /// export that keeps a deleted comment only when this holds keeps the parent of every
    /// comment it keeps (a kept deleted reply is answered, so its parent holds this too), and
    /// leaves out deleted comments that nothing, or only deleted comments nothing answers,
    /// answers.
    pub has_replies: bool,
}

/// A comment imported from another system: where it came from ([`crate::ImportStore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSource {
    pub source: String,
    pub source_id: String,
    pub comment: CommentId,
}

/// Where a page of [`ExportStore::export_sources`] starts: after this (source, source id).
pub type SourceKey = (String, String);

/// Reads for exports and backups.
#[async_trait]
pub trait ExportStore: Send + Sync {
    /// The forum's threads with ids above `after`, by id, at most `limit`
    /// ([`EXPORT_PAGE_MAX`]), each with its aliases.
    async fn export_threads(
        &self,
        forum: &Forum,
        after: Option<ThreadId>,
        limit: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<ExportThread>>;

    /// The forum's comments (every status) with ids above `after`, by id, at most `limit`
    /// ([`EXPORT_PAGE_MAX`]).
    async fn export_comments(
        &self,
        forum: &Forum,
        after: Option<CommentId>,
        limit: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<ExportComment>>;

    /// The source ids of the forum's imported comments after `after`, by (source, source id),
    /// at most `limit` ([`EXPORT_PAGE_MAX`]).
    async fn export_sources(
        &self,
        forum: &Forum,
        after: Option<SourceKey>,
        limit: usize,
        from: ReadFrom,
    ) -> StoreResult<Vec<ExportSource>>;

    /// Writes a consistent copy of the whole database to `path` (which must not exist) while
    /// the store keeps serving, and returns its size in bytes. The embedded SQLite file only:
    /// a PostgreSQL deployment refuses (its databases are copied with PostgreSQL's tools).
    async fn backup_into(&self, path: &Path) -> StoreResult<u64>;
}

/// `limit` within `1..=EXPORT_PAGE_MAX`.
pub fn page_limit(limit: usize) -> usize {
    limit.clamp(1, EXPORT_PAGE_MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages_are_bounded() {
        assert_eq!(super::page_limit(0), 1);
        assert_eq!(super::page_limit(500), 500);
        assert_eq!(super::page_limit(usize::MAX), super::EXPORT_PAGE_MAX);
    }
}

//! Importing comments from another system (`confab import`): whole threads written in bulk,
//! each comment remembering where it came from so that importing again adds only what is new.

use crate::pin::Written;
use crate::StoreResult;
use async_trait::async_trait;
use confab_core::id::{AccountId, CommentId, ForumId, ThreadId};
use confab_core::ident::Ident;
use confab_core::model::{Author, CommentStatus, Forum, Thread};
use std::collections::HashMap;

/// One thread of an export, with the comments of it that a batch carries.
#[derive(Debug, Clone)]
pub struct ImportThread {
    /// The ident a new thread is created with (the site's identifier, else its link).
    pub ident: Ident,
    /// Other idents the thread answers to (its link, when `ident` is an identifier).
    pub aliases: Vec<Ident>,
    pub url: Option<String>,
    pub title: Option<String>,
    pub closed: bool,
    pub created_at: i64,
    /// Parents before their replies (a comment whose parent is neither earlier here nor
    /// imported before becomes top-level, counted in [`Imported::orphans`]).
    pub comments: Vec<ImportComment>,
}

/// One comment of an export, rendered and sanitized by the service.
#[derive(Debug, Clone)]
pub struct ImportComment {
    /// The comment's id in the source system (unique per forum and source).
    pub source_id: String,
    pub parent_source_id: Option<String>,
    pub author: Author,
    pub body_md: String,
    pub body_html: String,
    pub status: CommentStatus,
    pub created_at: i64,
}

/// A batch of threads from one source (`"disqus"`, ...) for one forum.
#[derive(Debug, Clone)]
pub struct ImportBatch {
    pub source: String,
    pub threads: Vec<ImportThread>,
    /// Replies deeper than this attach to the deepest allowed ancestor, as posted ones do.
    pub max_depth: i32,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub threads_created: u64,
    /// Threads that existed (found by their ident or an alias) and took the new comments.
    pub threads_existing: u64,
    pub comments_added: u64,
    /// Comments imported before (same forum, source and source id): left as they are.
    pub comments_present: u64,
    /// Comments whose parent was nowhere (not in the export, not imported): made top-level.
    pub orphans: u64,
    /// Idents already held by another thread, so not added as aliases.
    pub aliases_taken: u64,
    /// Every ident (and alias) of every thread that changed: their cached pages are stale.
    pub changed: Vec<(ThreadId, Vec<Ident>)>,
}

impl Imported {
    pub fn add(&mut self, other: Imported) {
        self.threads_created += other.threads_created;
        self.threads_existing += other.threads_existing;
        self.comments_added += other.comments_added;
        self.comments_present += other.comments_present;
        self.orphans += other.orphans;
        self.aliases_taken += other.aliases_taken;
        self.changed.extend(other.changed);
    }
}

/// A thread moved to a new address (`confab threads remap`, the dashboard): the thread found
/// by `from` (its ident or an alias) answers to `to` as well.
#[derive(Debug, Clone)]
pub struct ThreadMove {
    pub from: Ident,
    pub to: Ident,
    /// The thread's new link (when `to` was given as an absolute URL).
    pub url: Option<String>,
    /// Who did it (the moderation log's actor; none from the command line).
    pub actor: Option<AccountId>,
}

/// What [`ImportStore::move_thread`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// `to` is now an alias of the thread (as it is after the change).
    Added(Thread),
    /// The thread answered to `to` already (its url updated when given).
    Already(Thread),
    /// No thread answers to `from`.
    NoThread,
    /// Another thread answers to `to` already (it is left as it is).
    Taken(Thread),
}

/// Where an import started in the dashboard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportState {
    Running,
    Done,
    Failed,
    /// Left `running` with no update for [`IMPORT_STALE_MS`]: the node running it stopped.
    Interrupted,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Running => "running",
            ImportState::Done => "done",
            ImportState::Failed => "failed",
            ImportState::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<ImportState> {
        Some(match s {
            "running" => ImportState::Running,
            "done" => ImportState::Done,
            "failed" => ImportState::Failed,
            "interrupted" => ImportState::Interrupted,
            _ => return None,
        })
    }
}

/// A running import's record is updated at least this often (a heartbeat while nothing moves);
/// one left `running` longer than this without an update reads as interrupted.
pub const IMPORT_STALE_MS: i64 = 120_000;

/// The record of an import started in the dashboard (control data: any node reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    pub id: i64,
    pub forum_id: ForumId,
    /// Who uploaded it.
    pub actor: Option<AccountId>,
    pub format: String,
    /// The file's name as the browser gave it (for the record only).
    pub file_name: String,
    /// Bytes received.
    pub bytes: i64,
    pub state: ImportState,
    /// Posts parsed so far (the first pass).
    pub posts_read: i64,
    /// Comments to write (known once the first pass ends).
    pub comments_total: i64,
    pub comments_written: i64,
    /// What it did, when it is done.
    pub summary: String,
    /// Why it stopped, when it failed.
    pub error: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

impl ImportRecord {
    /// The record as it reads at `now`: `running` with no update for [`IMPORT_STALE_MS`] is
    /// [`ImportState::Interrupted`] (the node died; importing the file again is safe).
    pub fn as_of(mut self, now: i64) -> ImportRecord {
        if self.state == ImportState::Running && now - self.updated_at > IMPORT_STALE_MS {
            self.state = ImportState::Interrupted;
        }
        self
    }
}

/// A new import's record (state `running`).
#[derive(Debug, Clone)]
pub struct NewImportRecord {
    pub forum_id: ForumId,
    pub actor: Option<AccountId>,
    pub format: String,
    pub file_name: String,
}

/// How far an import is: every field of its record that moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportUpdate {
    pub bytes: i64,
    /// `None`: still running. Otherwise its end (`finished_at` is set).
    pub ended: Option<ImportState>,
    pub posts_read: i64,
    pub comments_total: i64,
    pub comments_written: i64,
    pub summary: String,
    pub error: String,
}

/// Bulk writes of imported threads (shard data: one forum per batch), and the records of the
/// dashboard's imports (control data).
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Writes a batch in one transaction: threads found by any of their idents or created,
    /// aliases added, comments not imported before inserted with their counters, reply counts
    /// and sequence numbers moved as if each had been posted.
    async fn import_batch(
        &self,
        forum: &Forum,
        batch: ImportBatch,
    ) -> StoreResult<Written<Imported>>;

    /// Makes the thread found by `m.from` answer to `m.to` as well (an alias; its url set when
    /// given), logged in the forum's moderation log.
    async fn move_thread(&self, forum: &Forum, m: ThreadMove) -> StoreResult<Written<Moved>>;

    /// The idents a thread answers to besides its own (read only for threads marked
    /// [`confab_core::model::Thread::aliased`]).
    async fn thread_aliases(&self, thread: ThreadId) -> StoreResult<Vec<Ident>>;

    /// Writes an import's entry (action `import`, no comment) into the forum's moderation log.
    async fn log_import(
        &self,
        forum: &Forum,
        actor: Option<AccountId>,
        detail: &str,
    ) -> StoreResult<()>;

    /// Records a dashboard import that starts now (state `running`).
    async fn create_import(&self, new: NewImportRecord) -> StoreResult<ImportRecord>;

    /// Moves an import's record (its `updated_at` to now; `finished_at` too when it ended).
    async fn update_import(&self, id: i64, u: &ImportUpdate) -> StoreResult<()>;

    /// A forum's latest imports, newest first (as stored: see [`ImportRecord::as_of`]).
    async fn imports(&self, forum: ForumId, limit: usize) -> StoreResult<Vec<ImportRecord>>;

    /// One import of a forum.
    async fn import_record(&self, forum: ForumId, id: i64) -> StoreResult<Option<ImportRecord>>;
}

/// Where a comment of a batch sits: its id, depth and parent (to climb past the depth cap).
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub id: CommentId,
    pub depth: i32,
    pub parent: Option<CommentId>,
}

/// The parent a reply is attached to: its source parent, climbed to the deepest ancestor within
/// `max_depth` (the rule [`crate::rules::climb`] applies to posted replies). `lookup` finds a
/// comment placed earlier (in this batch, or imported before).
pub fn attach(
    parent: Option<Placed>,
    max_depth: i32,
    mut lookup: impl FnMut(CommentId) -> StoreResult<Option<Placed>>,
) -> StoreResult<(Option<CommentId>, i32)> {
    let Some(mut p) = parent else {
        return Ok((None, 0));
    };
    while p.depth >= max_depth {
        let Some(up) = p.parent else { break };
        match lookup(up)? {
            Some(q) => p = q,
            None => break,
        }
    }
    Ok((Some(p.id), p.depth + 1))
}

/// Counter moves accumulated over a batch, applied with one statement per thread and parent.
#[derive(Debug, Default)]
pub struct Tally {
    /// thread → (approved, hidden, sequence numbers used)
    pub threads: HashMap<ThreadId, (i64, i64, i64)>,
    /// parent → approved replies added
    pub parents: HashMap<CommentId, i64>,
}

impl Tally {
    /// A comment inserted with `status` under `parent` (counted as if posted:
    /// [`crate::rules::counter_shift`] from before its first status).
    pub fn comment(&mut self, thread: ThreadId, parent: Option<CommentId>, status: CommentStatus) {
        let d = crate::rules::counter_shift(crate::rules::BEFORE_FIRST_STATUS, status);
        let t = self.threads.entry(thread).or_default();
        t.0 += d.approved;
        t.1 += d.hidden;
        t.2 += 1;
        if let (Some(p), true) = (parent, d.approved != 0) {
            *self.parents.entry(p).or_default() += d.approved;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_as_posting_does() {
        let (t, p) = (ThreadId(1), CommentId(9));
        let mut tally = Tally::default();
        tally.comment(t, None, CommentStatus::Approved);
        tally.comment(t, Some(p), CommentStatus::Approved);
        tally.comment(t, Some(p), CommentStatus::Spam);
        tally.comment(t, Some(p), CommentStatus::Deleted);
        assert_eq!(tally.threads[&t], (2, 1, 4));
        assert_eq!(tally.parents[&p], 1);
    }

    #[test]
    fn a_running_import_with_no_update_for_two_minutes_reads_as_interrupted() {
        let r = ImportRecord {
            id: 1,
            forum_id: ForumId(1),
            actor: None,
            format: "disqus".into(),
            file_name: "x.xml".into(),
            bytes: 10,
            state: ImportState::Running,
            posts_read: 0,
            comments_total: 0,
            comments_written: 0,
            summary: String::new(),
            error: String::new(),
            started_at: 0,
            finished_at: None,
            updated_at: 1_000,
        };
        let at = |now| r.clone().as_of(now).state;
        assert_eq!(at(1_000 + IMPORT_STALE_MS), ImportState::Running);
        assert_eq!(at(1_001 + IMPORT_STALE_MS), ImportState::Interrupted);
        let done = ImportRecord {
            state: ImportState::Done,
            ..r.clone()
        };
        assert_eq!(done.as_of(i64::MAX).state, ImportState::Done);
        for s in ["running", "done", "failed", "interrupted"] {
            assert_eq!(ImportState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(ImportState::parse("paused"), None);
    }

    #[test]
    fn deep_replies_climb_to_the_cap() {
        let chain: Vec<Placed> = (0..5)
            .map(|d| Placed {
                id: CommentId(d + 1),
                depth: d as i32,
                parent: (d > 0).then_some(CommentId(d)),
            })
            .collect();
        let look = |id: CommentId| Ok(chain.iter().copied().find(|p| p.id == id));
        // Under the deepest (depth 4) with a cap of 2: attached to the depth-1 ancestor.
        let (p, depth) = attach(Some(chain[4]), 2, look).unwrap();
        assert_eq!((p, depth), (Some(CommentId(2)), 2));
        let (p, depth) = attach(Some(chain[0]), 2, look).unwrap();
        assert_eq!((p, depth), (Some(CommentId(1)), 1));
        assert_eq!(attach(None, 2, look).unwrap(), (None, 0));
    }
}

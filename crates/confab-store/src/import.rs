//! Importing comments from another system (`confab import`): whole threads written in bulk,
//! each comment remembering where it came from so that importing again adds only what is new.

use crate::pin::Written;
use crate::StoreResult;
use async_trait::async_trait;
use confab_core::id::{AccountId, CommentId, ThreadId};
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

/// Bulk writes of imported threads (shard data: one forum per batch).
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

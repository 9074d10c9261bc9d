//! Moderation with context: a queue item's thread (title, address, a link to the comment in
//! place), why readers flagged it, its author's history on the forum; the queues' sizes; the
//! log with names and thread titles instead of ids. Everything for a page is read in a few
//! batched queries on the forum's shard (and one on the control data for names), never one
//! per comment.

use super::Service;
use crate::views::{AuthorHistoryView, FlagReasonView, ModThreadView, QueueCountsView};
use confab_core::id::{AccountId, CommentId, ThreadId};
use confab_core::model::{Author, Comment, Forum, ModLogEntry, Thread};
use confab_core::{rfc3339, DomainError};
use confab_store::{AuthorHistory, MOD_COUNT_CAP};
use std::collections::HashMap;

/// A queue item's context.
pub(crate) struct CommentContext {
    pub thread: ModThreadView,
    pub link: Option<String>,
    pub flag_reasons: Vec<FlagReasonView>,
    pub author_history: Option<AuthorHistoryView>,
}

/// A log entry's names.
#[derive(Debug, Clone, Default)]
pub struct LogContext {
    pub actor_name: Option<String>,
    pub thread_title: Option<String>,
    pub link: Option<String>,
}

/// The address of a comment in place: its thread's address with `#comment-<id>` (the anchor
/// the widget scrolls to).
pub(crate) fn comment_link(thread_url: Option<&str>, id: CommentId) -> Option<String> {
    let url = thread_url?;
    let base = url.split('#').next().unwrap_or(url);
    Some(format!("{base}#comment-{id}"))
}

fn history_view(h: &AuthorHistory) -> AuthorHistoryView {
    AuthorHistoryView {
        approved: h.approved,
        pending: h.pending,
        spam: h.spam,
        deleted: h.deleted,
        first_seen: rfc3339(h.first_seen),
    }
}

impl Service {
    /// The context of a page of a queue, in the order of `rows`: four shard reads for the
    /// whole page (threads, flags, account and guest histories).
    pub(crate) async fn queue_context(
        &self,
        f: &Forum,
        rows: &[Comment],
    ) -> Result<Vec<CommentContext>, DomainError> {
        let mut thread_ids: Vec<ThreadId> = rows.iter().map(|c| c.thread_id).collect();
        thread_ids.sort_unstable_by_key(|t| t.0);
        thread_ids.dedup();
        let threads: HashMap<ThreadId, Thread> = self
            .store
            .threads_by_ids(f, &thread_ids)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        let flagged: Vec<CommentId> = rows
            .iter()
            .filter(|c| c.flag_count > 0)
            .map(|c| c.id)
            .collect();
        let mut reasons: HashMap<CommentId, Vec<FlagReasonView>> = HashMap::new();
        for (id, reason, count) in self.store.flag_reasons(f, &flagged).await? {
            reasons
                .entry(id)
                .or_default()
                .push(FlagReasonView { reason, count });
        }
        let mut accounts: Vec<AccountId> = Vec::new();
        let mut emails: Vec<String> = Vec::new();
        for c in rows {
            match &c.author {
                Author::Account(a) if !accounts.contains(a) => accounts.push(*a),
                Author::Guest { email: Some(e), .. } => {
                    let e = e.to_lowercase();
                    if !emails.contains(&e) {
                        emails.push(e);
                    }
                }
                _ => {}
            }
        }
        let histories = self.store.author_histories(f, &accounts, &emails).await?;
        let by_account: HashMap<AccountId, AuthorHistory> =
            histories.accounts.into_iter().collect();
        let by_email: HashMap<String, AuthorHistory> = histories.emails.into_iter().collect();
        Ok(rows
            .iter()
            .map(|c| {
                let t = threads.get(&c.thread_id);
                let url = t.and_then(|t| t.url.clone());
                CommentContext {
                    link: comment_link(url.as_deref(), c.id),
                    thread: ModThreadView {
                        id: c.thread_id,
                        title: t.and_then(|t| t.title.clone()),
                        url,
                        ident: t.map(|t| t.ident.as_str().to_string()).unwrap_or_default(),
                    },
                    flag_reasons: reasons.remove(&c.id).unwrap_or_default(),
                    author_history: match &c.author {
                        Author::Account(a) => by_account.get(a).map(history_view),
                        Author::Guest { email: Some(e), .. } => {
                            by_email.get(&e.to_lowercase()).map(history_view)
                        }
                        Author::Guest { .. } => None,
                    },
                }
            })
            .collect())
    }

    pub(crate) async fn queue_counts(&self, f: &Forum) -> Result<QueueCountsView, DomainError> {
        let q = self.store.queue_counts(f).await?;
        Ok(QueueCountsView {
            pending: q.pending,
            flagged: q.flagged,
            spam: q.spam,
            cap: MOD_COUNT_CAP,
        })
    }

    /// Names for a page of the log: moderators (one control read), the comments' threads
    /// (two shard reads).
    pub(crate) async fn log_context(
        &self,
        f: &Forum,
        entries: Vec<ModLogEntry>,
    ) -> Result<Vec<(ModLogEntry, LogContext)>, DomainError> {
        let mut actors: Vec<AccountId> = entries.iter().filter_map(|e| e.actor).collect();
        actors.sort_unstable_by_key(|a| a.0);
        actors.dedup();
        let names = self.accounts_by_id(&actors).await?;
        let mut comments: Vec<CommentId> = entries.iter().filter_map(|e| e.comment_id).collect();
        comments.sort_unstable_by_key(|c| c.0);
        comments.dedup();
        let of: HashMap<CommentId, ThreadId> = self
            .store
            .comment_threads(f, &comments)
            .await?
            .into_iter()
            .collect();
        let mut thread_ids: Vec<ThreadId> = of.values().copied().collect();
        thread_ids.sort_unstable_by_key(|t| t.0);
        thread_ids.dedup();
        let threads: HashMap<ThreadId, Thread> = self
            .store
            .threads_by_ids(f, &thread_ids)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        Ok(entries
            .into_iter()
            .map(|e| {
                let t = e
                    .comment_id
                    .and_then(|c| of.get(&c))
                    .and_then(|t| threads.get(t));
                let cx = LogContext {
                    actor_name: e
                        .actor
                        .and_then(|a| names.get(&a))
                        .map(|a| a.display_name.clone()),
                    thread_title: t.map(|t| {
                        t.title
                            .clone()
                            .unwrap_or_else(|| t.ident.as_str().to_string())
                    }),
                    link: match (t, e.comment_id) {
                        (Some(t), Some(c)) => comment_link(t.url.as_deref(), c),
                        _ => None,
                    },
                };
                (e, cx)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_replace_a_fragment() {
        assert_eq!(
            comment_link(Some("https://blog.example/p#top"), CommentId(7)).as_deref(),
            Some("https://blog.example/p#comment-7")
        );
        assert_eq!(comment_link(None, CommentId(7)), None);
    }
}

//! The domain rules both backends apply, written once.
//!
//! A backend file holds SQL and driver code; whatever decides *what* a write does lives here:
//! how a status change moves a thread's counters, how a vote moves a comment's, where a reply
//! past the depth cap attaches, when a thread takes new comments, what a task row holds and when
//! a task follows a status change, and how e-mail addresses are compared.

use crate::{NewComment, NewTask, StatusChange, StoreResult, TaskWhen, MAX_TASK_PAYLOAD};
use confab_core::id::{CommentId, ThreadId};
use confab_core::model::{Comment, CommentStatus, Thread};
use confab_core::{DomainError, ErrorCode};

/// How a comment's move from one status to another changes its thread's counters (and, for
/// `approved`, its parent's reply count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterShift {
    /// Change to `threads.comment_count` and to the parent's `reply_count`.
    pub approved: i64,
    /// Change to `threads.hidden_count` (pending and spam comments).
    pub hidden: i64,
}

/// A new comment moves from "nothing", counted as deleted, to its first status.
pub const BEFORE_FIRST_STATUS: CommentStatus = CommentStatus::Deleted;

/// A page's rows and the pinned comment's row read by the same statement (`top_level`), each
/// flagged by its backend as the pinned one or not: the page in its order, and the pinned row.
pub fn split_pinned(rows: Vec<(Comment, bool)>) -> (Vec<Comment>, Option<Comment>) {
    let mut pinned = None;
    let mut page = Vec::with_capacity(rows.len());
    for (c, is_pin) in rows {
        if is_pin {
            pinned = Some(c);
        } else {
            page.push(c);
        }
    }
    (page, pinned)
}

/// The counter changes of a comment moving from `old` to `new`.
pub fn counter_shift(old: CommentStatus, new: CommentStatus) -> CounterShift {
    let approved = |s: CommentStatus| i64::from(s == CommentStatus::Approved);
    let hidden = |s: CommentStatus| i64::from(s.is_hidden());
    CounterShift {
        approved: approved(new) - approved(old),
        hidden: hidden(new) - hidden(old),
    }
}

/// What a moderation action setting `to` does to one comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusPlan {
    /// Approving a flagged comment also dismisses its flags (a moderator looked at it).
    pub dismiss_flags: bool,
    /// The status really changes (counters move, the thread gets a sequence number).
    pub change: bool,
}

/// The plan for setting `to` on `cm`.
pub fn status_plan(cm: &Comment, to: CommentStatus) -> StatusPlan {
    StatusPlan {
        dismiss_flags: to == CommentStatus::Approved && cm.flag_count > 0,
        change: cm.status != to,
    }
}

/// Whether a flag that brought a comment to `flags` distinct flaggers holds it for a
/// moderator: the forum holds at `hold_at` flags, and the comment is published (a moderator who
/// approves it again dismisses its flags, so it is held again only by new ones).
pub fn flag_holds(status: CommentStatus, flags: i64, hold_at: Option<u32>) -> bool {
    status == CommentStatus::Approved && hold_at.is_some_and(|n| flags >= i64::from(n))
}

/// The moderation log's detail for a status change.
pub fn status_detail(from: CommentStatus, to: CommentStatus) -> String {
    format!("{} -> {}", from.as_str(), to.as_str())
}

/// The moderation log's action and detail when only flags were dismissed.
pub fn dismissed_log(cm: &Comment) -> (&'static str, String) {
    ("dismiss_flags", format!("{} flags", cm.flag_count))
}

/// The change to report when only flags were dismissed (no sequence number: the page is the same).
pub fn flags_dismissed(cm: Comment) -> StatusChange {
    StatusChange {
        old: cm.status,
        comment: Comment {
            flag_count: 0,
            ..cm
        },
        thread_seq: None,
    }
}

/// The change to report when `cm` moved to `to`, given the thread sequence number it got.
pub fn status_changed(cm: Comment, to: CommentStatus, seq: i64) -> StatusChange {
    let old = cm.status;
    let mut comment = cm;
    comment.status = to;
    StatusChange {
        comment,
        old,
        thread_seq: Some(seq),
    }
}

/// The "Best" score (`comments.score`, which the sort's index orders by) a comment takes when it
/// moves from `old` to `new`, if that changes it. A deleted comment is a placeholder with no
/// votes to show or rank by: its score is 0, so it sorts among unvoted comments by its own
/// time instead of by the votes its text once had; leaving that state gives them back.
pub fn score_after(cm: &Comment, old: CommentStatus, new: CommentStatus) -> Option<i64> {
    let votes = cm.likes - cm.dislikes;
    let deleted = |s: CommentStatus| s == CommentStatus::Deleted;
    match (deleted(old), deleted(new)) {
        (false, true) if votes != 0 => Some(0),
        (true, false) if votes != 0 => Some(votes),
        _ => None,
    }
}

/// How a vote moves a comment's likes and dislikes (`score` moves by `likes - dislikes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteShift {
    pub likes: i64,
    pub dislikes: i64,
}

impl VoteShift {
    /// Whether the vote changed anything (the thread's sequence number moves only then).
    pub fn changed(&self) -> bool {
        self.likes != 0 || self.dislikes != 0
    }
}

/// The counter changes of a voter's vote going from `old` to `new` (each -1, 0 or 1): a repeated
/// vote changes nothing, a reversed one moves one count down and the other up.
pub fn vote_shift(old: i64, new: i64) -> VoteShift {
    VoteShift {
        likes: i64::from(new == 1) - i64::from(old == 1),
        dislikes: i64::from(new == -1) - i64::from(old == -1),
    }
}

/// Only approved comments take votes.
pub fn votable(status: CommentStatus) -> StoreResult<()> {
    if status == CommentStatus::Approved {
        Ok(())
    } else {
        Err(DomainError::not_found("comment"))
    }
}

/// How one reader's reaction change moves its count: `changed` is whether the reader's row was
/// added (`on`) or removed (not `on`); a repeated reaction or clearing one not set moves nothing.
pub fn reaction_shift(changed: bool, on: bool) -> i64 {
    match (changed, on) {
        (false, _) => 0,
        (true, true) => 1,
        (true, false) => -1,
    }
}

/// The moderation log's action for featuring (`on`) or unfeaturing a comment.
pub fn feature_action(on: bool) -> &'static str {
    if on {
        "feature"
    } else {
        "unfeature"
    }
}

/// A thread takes new comments unless it is closed.
pub fn thread_open(t: &Thread) -> StoreResult<()> {
    if t.closed {
        return Err(DomainError::new(
            ErrorCode::ThreadClosed,
            "this thread is closed to new comments",
        ));
    }
    Ok(())
}

/// The first comment that knows a thread's URL or title fills it in.
pub fn fills_thread(t: &Thread, new: &NewComment) -> bool {
    t.url.is_none() && new.url.is_some() || t.title.is_none() && new.title.is_some()
}

/// The comment a reply names, as loaded: it must exist in the same thread and not be deleted.
pub fn reply_parent(loaded: Option<Comment>, thread: ThreadId) -> StoreResult<Comment> {
    loaded
        .filter(|p| p.thread_id == thread && p.status != CommentStatus::Deleted)
        .ok_or_else(|| {
            DomainError::new(
                ErrorCode::NotFound,
                "the comment replied to does not exist in this thread",
            )
        })
}

/// Replies deeper than `max_depth` attach to the deepest allowed ancestor: while this returns
/// an id, load that ancestor and ask again; a reply attaches under the comment for which it
/// returns `None`, at that comment's depth + 1.
pub fn climb(parent: &Comment, max_depth: i32) -> Option<CommentId> {
    if parent.depth >= max_depth {
        parent.parent_id
    } else {
        None
    }
}

/// A task as its row is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub payload: String,
    pub run_at: i64,
    pub now: i64,
}

/// Checks a task's kind and payload against their bounds and says when it runs. A task out of
/// bounds is a bug in the caller: it is logged and the write fails (internal error).
pub fn task_row(task: &NewTask, payload: &serde_json::Value, now: i64) -> StoreResult<TaskRow> {
    let json = serde_json::to_string(payload).map_err(|_| DomainError::internal())?;
    if json.len() > MAX_TASK_PAYLOAD || task.kind.is_empty() || task.kind.len() > 64 {
        tracing::error!(kind = %task.kind, bytes = json.len(), "task refused: kind or payload out of bounds");
        return Err(DomainError::internal());
    }
    Ok(TaskRow {
        payload: json,
        run_at: now.saturating_add(task.delay_ms.max(0)),
        now,
    })
}

/// A task written with a new comment gets the comment's id as `"comment_id"` (a decimal string).
pub fn comment_task_payload(task: &NewTask, id: CommentId) -> serde_json::Value {
    let mut payload = task.payload.clone();
    if let Some(o) = payload.as_object_mut() {
        o.insert(
            "comment_id".into(),
            serde_json::Value::String(id.0.to_string()),
        );
    }
    payload
}

/// Whether a task given to a status change is written, as its [`TaskWhen`] says, given the
/// changes that really happened.
pub fn task_due(when: TaskWhen, changes: &[StatusChange]) -> bool {
    match when {
        TaskWhen::Always => true,
        TaskWhen::Changed(id) => changes.iter().any(|ch| ch.comment.id == id),
        TaskWhen::ChangedFrom(id, from) => changes
            .iter()
            .any(|ch| ch.comment.id == id && ch.old == from),
    }
}

/// A task effect's key (a handler's name for one external effect, e.g. one mail recipient).
pub fn effect_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > 200 {
        return Err(DomainError::invalid("effect keys are 1-200 bytes"));
    }
    Ok(())
}

/// The form an e-mail address is compared and keyed in: ASCII letters folded to lower case,
/// every other character as written. Both backends compare this way (SQLite's `NOCASE`,
/// PostgreSQL's `lower(x COLLATE "C")`), so which addresses are the same never depends on the
/// backend or the database's locale.
pub fn email_key(email: &str) -> String {
    email.to_ascii_lowercase()
}

/// A thread's distinct authors from its comments' `(account_id, guest_name, guest_email)`, in
/// the order given (most recent first), at most `limit`: an account once, a guest once per name
/// and address (compared as mentions and addresses compare).
pub fn thread_authors(
    raw: Vec<(Option<i64>, Option<String>, Option<String>)>,
    limit: usize,
) -> Vec<crate::ThreadAuthor> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (account, name, email) in raw {
        if out.len() == limit {
            break;
        }
        let (key, author) = match (account, name) {
            (Some(a), _) => (
                format!("a:{a}"),
                crate::ThreadAuthor::Account(confab_core::id::AccountId(a)),
            ),
            (None, Some(name)) => (
                format!(
                    "g:{}\n{}",
                    confab_core::mention::key(&name),
                    email.as_deref().map(email_key).unwrap_or_default()
                ),
                crate::ThreadAuthor::Guest { name, email },
            ),
            (None, None) => continue,
        };
        if seen.insert(key) {
            out.push(author);
        }
    }
    out
}

/// A stored switch row as a record: forum 0 is the global record; a name or percent this
/// version does not know is left out (`None`), so an older node runs beside a newer one.
#[allow(clippy::too_many_arguments)]
pub fn switch_record(
    name: &str,
    forum_id: i64,
    on: bool,
    percent: Option<i64>,
    staff: bool,
    changed_by: String,
    changed_at: i64,
) -> Option<confab_core::switch::SwitchRecord> {
    use confab_core::switch::{Percent, SwitchName, SwitchRecord};
    Some(SwitchRecord {
        name: SwitchName::parse(name).ok()?,
        forum: (forum_id != 0).then_some(confab_core::id::ForumId(forum_id)),
        on,
        percent: match percent {
            Some(p) => Some(Percent::parse(p).ok()?),
            None => None,
        },
        staff,
        changed_by,
        changed_at,
    })
}

/// The stored forum column of a switch record's scope (0: global).
pub fn switch_forum_id(forum: Option<confab_core::id::ForumId>) -> i64 {
    forum.map_or(0, |f| f.0)
}

// ---------------------------------------------------------------- erasure (`crate::gdpr`)

/// The status an erased comment takes: removal deletes it, anonymizing keeps its status.
pub fn erased_status(old: CommentStatus, how: crate::gdpr::Erase) -> CommentStatus {
    match how {
        crate::gdpr::Erase::Anonymize => old,
        crate::gdpr::Erase::Remove => CommentStatus::Deleted,
    }
}

/// The moderation log's detail for an erasure (no name, address or text).
pub fn erase_detail(how: crate::gdpr::Erase) -> &'static str {
    match how {
        crate::gdpr::Erase::Anonymize => "author's data erased, text kept",
        crate::gdpr::Erase::Remove => "author's data erased, comment removed",
    }
}

/// A comment as erasing left it (what the backends' UPDATE wrote).
pub fn erased_comment(mut cm: Comment, how: crate::gdpr::Erase) -> Comment {
    cm.status = erased_status(cm.status, how);
    cm.author = confab_core::model::Author::Guest {
        name: crate::gdpr::ERASED_AUTHOR.to_string(),
        email: None,
        url: None,
    };
    cm.anon_id = None;
    cm.ip_hash = String::new();
    if how == crate::gdpr::Erase::Remove {
        cm.body_md = String::new();
        cm.body_html = String::new();
    }
    // A reader's pictures are theirs: erasing a comment, either way, removes them.
    cm.images = Vec::new();
    cm
}

/// A picture a post names that is no longer this forum's unattached upload (another comment
/// took it meanwhile, or it was pruned): the post fails whole.
pub fn image_taken(id: i64) -> DomainError {
    DomainError::new(
        ErrorCode::Conflict,
        format!("picture {id} is not available: upload it again"),
    )
}

/// A comment's pictures without `image`; `None` when it has no such picture.
pub fn without_image(
    images: &[confab_core::media::ImageRef],
    image: i64,
) -> Option<Vec<confab_core::media::ImageRef>> {
    images
        .iter()
        .any(|i| i.id == image)
        .then(|| images.iter().filter(|i| i.id != image).cloned().collect())
}

#[cfg(test)]
mod tests {

    #[test]
    fn thread_authors_are_distinct_and_bounded() {
        use crate::ThreadAuthor;
        let g = |n: &str, e: Option<&str>| (None, Some(n.to_string()), e.map(str::to_string));
        let raw = vec![
            (Some(7), None, None),
            g("Ann Lee", Some("Ann@x.example")),
            (Some(7), None, None),
            g("annlee", Some("ann@X.example")),
            g("Bob", None),
            (None, None, None),
            (Some(8), None, None),
        ];
        let got = thread_authors(raw.clone(), 10);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], ThreadAuthor::Account(confab_core::id::AccountId(7)));
        assert_eq!(thread_authors(raw, 2).len(), 2);
    }
    use super::*;

    #[test]
    fn a_deleted_comment_ranks_without_its_votes() {
        let mut cm = comment(1, None, 0, Approved);
        cm.likes = 5;
        cm.dislikes = 1;
        assert_eq!(score_after(&cm, Approved, Deleted), Some(0));
        assert_eq!(score_after(&cm, Pending, Deleted), Some(0));
        assert_eq!(score_after(&cm, Deleted, Approved), Some(4));
        assert_eq!(score_after(&cm, Approved, Spam), None);
        assert_eq!(score_after(&cm, Deleted, Deleted), None);
        // A new comment (from "nothing", counted as deleted) has no votes: no extra statement.
        let new = comment(2, None, 0, Approved);
        assert_eq!(score_after(&new, BEFORE_FIRST_STATUS, Approved), None);
        assert_eq!(score_after(&new, Approved, Deleted), None);
    }

    #[test]
    fn flags_hold_published_comments_at_the_threshold() {
        assert!(!flag_holds(CommentStatus::Approved, 2, Some(3)));
        assert!(flag_holds(CommentStatus::Approved, 3, Some(3)));
        assert!(flag_holds(CommentStatus::Approved, 4, Some(3)));
        assert!(!flag_holds(CommentStatus::Pending, 5, Some(3)));
        assert!(!flag_holds(CommentStatus::Spam, 5, Some(3)));
        assert!(!flag_holds(CommentStatus::Approved, 100, None));
    }
    use confab_core::id::{ForumId, ThreadId};
    use confab_core::model::Author;
    use CommentStatus::*;

    fn comment(id: i64, parent: Option<i64>, depth: i32, status: CommentStatus) -> Comment {
        Comment {
            id: CommentId(id),
            thread_id: ThreadId(1),
            forum_id: ForumId(1),
            parent_id: parent.map(CommentId),
            depth,
            author: Author::Guest {
                name: "g".into(),
                email: None,
                url: None,
            },
            anon_id: None,
            body_md: String::new(),
            body_html: String::new(),
            status,
            likes: 0,
            dislikes: 0,
            reply_count: 0,
            flag_count: 0,
            created_at: 0,
            edited_at: None,
            ip_hash: String::new(),
            held_reason: None,
            reactions: Default::default(),
            featured: false,
            images: Vec::new(),
        }
    }

    #[test]
    fn removing_a_picture_keeps_the_others_in_order() {
        use confab_core::media::{ImageRef, StoredFormat};
        let img = |id| ImageRef {
            id,
            hash: "0".repeat(32),
            width: 1,
            height: 1,
            format: StoredFormat::Png,
        };
        let all = vec![img(1), img(2), img(3)];
        assert_eq!(without_image(&all, 2), Some(vec![img(1), img(3)]));
        assert_eq!(without_image(&all, 9), None);
        assert_eq!(without_image(&[], 1), None);
    }

    #[test]
    fn counters_follow_status_changes_and_sum_to_nothing_over_a_round_trip() {
        assert_eq!(
            counter_shift(BEFORE_FIRST_STATUS, Approved),
            CounterShift {
                approved: 1,
                hidden: 0
            }
        );
        assert_eq!(
            counter_shift(BEFORE_FIRST_STATUS, Pending),
            CounterShift {
                approved: 0,
                hidden: 1
            }
        );
        assert_eq!(
            counter_shift(Pending, Spam),
            CounterShift {
                approved: 0,
                hidden: 0
            }
        );
        assert_eq!(
            counter_shift(Approved, Deleted),
            CounterShift {
                approved: -1,
                hidden: 0
            }
        );
        let all = [Approved, Pending, Spam, Deleted];
        for a in all {
            for b in all {
                let (x, y) = (counter_shift(a, b), counter_shift(b, a));
                assert_eq!((x.approved + y.approved, x.hidden + y.hidden), (0, 0));
            }
        }
    }

    #[test]
    fn approving_dismisses_flags_and_only_real_changes_count() {
        let mut flagged = comment(1, None, 0, Approved);
        flagged.flag_count = 2;
        let p = status_plan(&flagged, Approved);
        assert_eq!((p.dismiss_flags, p.change), (true, false));
        let d = flags_dismissed(flagged.clone());
        assert_eq!((d.comment.flag_count, d.thread_seq), (0, None));
        assert_eq!(dismissed_log(&flagged).1, "2 flags");
        let p = status_plan(&flagged, Spam);
        assert_eq!((p.dismiss_flags, p.change), (false, true));
        let c = status_changed(flagged, Spam, 9);
        assert_eq!(
            (c.old, c.comment.status, c.thread_seq),
            (Approved, Spam, Some(9))
        );
        assert_eq!(status_detail(Approved, Spam), "approved -> spam");
    }

    #[test]
    fn reactions_never_double_count() {
        assert_eq!(reaction_shift(true, true), 1);
        assert_eq!(reaction_shift(true, false), -1);
        assert_eq!(reaction_shift(false, true), 0);
        assert_eq!(reaction_shift(false, false), 0);
    }

    #[test]
    fn votes_never_double_count() {
        assert!(!vote_shift(1, 1).changed());
        assert_eq!(
            vote_shift(0, 1),
            VoteShift {
                likes: 1,
                dislikes: 0
            }
        );
        assert_eq!(
            vote_shift(1, -1),
            VoteShift {
                likes: -1,
                dislikes: 1
            }
        );
        assert_eq!(
            vote_shift(-1, 0),
            VoteShift {
                likes: 0,
                dislikes: -1
            }
        );
        assert!(votable(Approved).is_ok());
        assert!(votable(Pending).is_err());
    }

    #[test]
    fn deep_replies_climb_to_the_deepest_allowed_ancestor() {
        let deep = comment(3, Some(2), 2, Approved);
        assert_eq!(climb(&deep, 2), Some(CommentId(2)));
        assert_eq!(climb(&deep, 3), None);
        // A top-level comment never climbs, whatever the cap.
        assert_eq!(climb(&comment(1, None, 0, Approved), 0), None);
        assert!(reply_parent(Some(comment(1, None, 0, Approved)), ThreadId(1)).is_ok());
        assert!(reply_parent(Some(comment(1, None, 0, Deleted)), ThreadId(1)).is_err());
        assert!(reply_parent(Some(comment(1, None, 0, Approved)), ThreadId(2)).is_err());
        assert!(reply_parent(None, ThreadId(1)).is_err());
    }

    #[test]
    fn task_rows_are_bounded_and_comment_tasks_name_their_comment() {
        let t = NewTask::new("mail.reply", serde_json::json!({"a": 1}));
        let row = task_row(&t, &t.payload, 1000).unwrap();
        assert_eq!((row.run_at, row.now), (1000, 1000));
        let big = NewTask::new("k", serde_json::json!({"a": "x".repeat(MAX_TASK_PAYLOAD)}));
        assert!(task_row(&big, &big.payload, 0).is_err());
        assert!(task_row(
            &NewTask::new("", serde_json::json!({})),
            &serde_json::json!({}),
            0
        )
        .is_err());
        let p = comment_task_payload(&t, CommentId(42));
        assert_eq!(p["comment_id"], "42");
        assert_eq!(p["a"], 1);
    }

    #[test]
    fn tasks_follow_only_the_changes_that_happened() {
        let ch = StatusChange {
            comment: comment(7, None, 0, Approved),
            old: Pending,
            thread_seq: Some(1),
        };
        let changes = [ch];
        assert!(task_due(TaskWhen::Always, &[]));
        assert!(task_due(TaskWhen::Changed(CommentId(7)), &changes));
        assert!(!task_due(TaskWhen::Changed(CommentId(8)), &changes));
        assert!(task_due(
            TaskWhen::ChangedFrom(CommentId(7), Pending),
            &changes
        ));
        assert!(!task_due(
            TaskWhen::ChangedFrom(CommentId(7), Spam),
            &changes
        ));
    }

    #[test]
    fn email_keys_fold_ascii_only() {
        assert_eq!(email_key("Zoë.Ünal@Example.ORG"), "zoë.Ünal@example.org");
        assert_ne!(email_key("ZOË@x.org"), email_key("zoë@x.org"));
    }

    #[test]
    fn switch_rows_map_to_records_and_unknown_ones_are_left_out() {
        let r = switch_record("posting", 0, false, None, false, "cli:x".into(), 5).unwrap();
        assert_eq!(r.forum, None);
        assert!(!r.on);
        let r = switch_record("realtime", 7, true, Some(10), true, "a".into(), 5).unwrap();
        assert_eq!(r.forum, Some(confab_core::id::ForumId(7)));
        assert_eq!(r.percent.map(|p| p.get()), Some(10));
        assert_eq!(switch_forum_id(r.forum), 7);
        assert!(switch_record("from_the_future", 0, true, None, false, "a".into(), 5).is_none());
        assert!(switch_record("posting", 0, true, Some(0), false, "a".into(), 5).is_none());
    }

    #[test]
    fn erasure_keeps_or_removes_the_text_and_never_the_author() {
        use crate::gdpr::Erase;
        assert_eq!(
            erased_status(CommentStatus::Pending, Erase::Anonymize),
            CommentStatus::Pending
        );
        assert_eq!(
            erased_status(CommentStatus::Approved, Erase::Remove),
            CommentStatus::Deleted
        );
        assert_ne!(erase_detail(Erase::Anonymize), erase_detail(Erase::Remove));
    }
}

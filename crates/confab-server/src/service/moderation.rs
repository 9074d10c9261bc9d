//! Moderation: forums and their settings, queues, status changes, bans, the log, stats.

use super::realtime::LiveEvent;
use super::{Caller, Service};
use crate::views::{ModCommentView, ModListView};
use confab_core::id::{AccountId, CommentId, ThreadId};
use confab_core::input::{parse_title, ForumName};
use confab_core::model::{
    Account, Author, CommentStatus, Forum, ForumSettings, ModLogEntry, ModerationMode,
    ModeratorMail, Thread, Webhook,
};
use confab_core::{now_ms, DomainError, ErrorCode};
use confab_store::{ModQuery, Queue, ReadFrom, ThreadPatch, Written};
use std::collections::HashSet;
use std::sync::Arc;

/// Most comments one moderation request may change.
const MAX_BULK: usize = 100;

fn validate_settings(s: &ForumSettings) -> Result<(), DomainError> {
    if s.title.trim().is_empty() || s.title.chars().count() > 200 {
        return Err(DomainError::invalid("title must be 1-200 characters"));
    }
    if s.allowed_origins.len() > 50 {
        return Err(DomainError::invalid("at most 50 allowed origins"));
    }
    for o in &s.allowed_origins {
        let (scheme, rest) = o
            .split_once("://")
            .ok_or_else(|| DomainError::invalid(format!("origin {o:?} needs a scheme")))?;
        let ok = matches!(scheme, "http" | "https")
            && !rest.is_empty()
            && rest.len() <= 253
            && !rest.contains('/')
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]*".contains(&b));
        if !ok {
            return Err(DomainError::invalid(format!(
                "origin {o:?} must look like https://example.com[:port]"
            )));
        }
    }
    if !(0..=7 * 24 * 3600).contains(&s.edit_window_secs) {
        return Err(DomainError::invalid(
            "edit_window_secs must be between 0 and 604800",
        ));
    }
    confab_core::modrules::validate(
        &s.words,
        s.max_links,
        &s.trust,
        s.flags_to_hold,
        &s.duplicates,
    )
    .map_err(DomainError::invalid)?;
    s.challenge.validate().map_err(DomainError::invalid)?;
    validate_webhooks(&s.webhooks)
}

/// Most webhooks per forum.
const MAX_WEBHOOKS: usize = 10;

fn validate_webhooks(hooks: &[confab_core::model::Webhook]) -> Result<(), DomainError> {
    if hooks.len() > MAX_WEBHOOKS {
        return Err(DomainError::invalid(format!(
            "at most {MAX_WEBHOOKS} webhooks"
        )));
    }
    let mut seen = HashSet::new();
    for h in hooks {
        let bad_url = || {
            DomainError::invalid(format!(
                "webhook url {:?} must be an absolute http(s) URL of at most 500 characters",
                h.url
            ))
        };
        let u = url::Url::parse(&h.url).map_err(|_| bad_url())?;
        if h.url.chars().count() > 500
            || !matches!(u.scheme(), "http" | "https")
            || u.host_str().is_none()
            || !u.username().is_empty()
            || u.password().is_some()
        {
            return Err(bad_url());
        }
        if !seen.insert(h.url.as_str()) {
            return Err(DomainError::invalid(format!(
                "webhook url {:?} is listed twice",
                h.url
            )));
        }
        let n = h.secret.chars().count();
        if !(16..=200).contains(&n) || h.secret.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "a webhook secret is 16-200 characters",
            ));
        }
        if h.events.is_empty() || h.events.len() > 3 {
            return Err(DomainError::invalid(
                "a webhook takes 1-3 events: comment.created, comment.approved, comment.deleted",
            ));
        }
    }
    Ok(())
}

/// The dashboard's own calls (the forum list, creating forums) come from this server only.
fn require_same_origin(caller: &Caller) -> Result<(), DomainError> {
    match &caller.foreign_origin {
        Some(o) => Err(DomainError::new(
            ErrorCode::OriginNotAllowed,
            format!("origin {o} may not do this; use this server's dashboard"),
        )),
        None => Ok(()),
    }
}

/// Which comments of a forum a moderator lists: a queue, an optional search (at most 200
/// characters, no control characters), comments below `before`, at most `limit`.
#[derive(Debug, Clone)]
pub struct ModListFilter {
    queue: Queue,
    search: Option<String>,
    before: Option<CommentId>,
    limit: usize,
}

impl ModListFilter {
    pub fn parse(
        queue: Option<&str>,
        search: Option<String>,
        before: Option<CommentId>,
        limit: usize,
    ) -> Result<ModListFilter, DomainError> {
        let queue = match queue.unwrap_or("pending") {
            "flagged" => Queue::Flagged,
            "all" => Queue::All,
            s => Queue::Status(CommentStatus::parse(s).ok_or_else(|| {
                DomainError::invalid(
                    "queue must be pending, approved, spam, deleted, flagged or all",
                )
            })?),
        };
        if search.as_ref().is_some_and(|s| s.chars().count() > 200) {
            return Err(DomainError::invalid("search is longer than 200 characters"));
        }
        if search
            .as_ref()
            .is_some_and(|s| s.chars().any(char::is_control))
        {
            return Err(DomainError::invalid(
                "search must not contain control characters",
            ));
        }
        Ok(ModListFilter {
            queue,
            search,
            before,
            limit,
        })
    }
}

/// Proof that a caller moderates a forum: a signed-in account that moderates it, calling from
/// this server (the dashboard) or from one of the forum's own sites. Only
/// [`Service::moderate`] (or [`Service::moderate_thread`]) makes one, and every moderation
/// method takes one instead of checking again.
#[derive(Debug, Clone)]
pub struct Moderating {
    forum: Arc<Forum>,
    account: Arc<Account>,
}

impl Moderating {
    /// The forum moderated.
    pub fn forum(&self) -> &Arc<Forum> {
        &self.forum
    }
    /// The moderator.
    pub fn account(&self) -> &Account {
        &self.account
    }
}

/// Proof that a caller moderates the forum of a thread, with the thread as it was read.
#[derive(Debug, Clone)]
pub struct ModeratedThread {
    moderating: Moderating,
    thread: Thread,
}

impl ModeratedThread {
    /// The thread's forum.
    pub fn forum(&self) -> &Arc<Forum> {
        &self.moderating.forum
    }
}

/// Proof that a caller is staff, calling from this server (the dashboard). Made only by
/// [`Service::staff`].
#[derive(Debug, Clone)]
pub struct Staff {
    account: Arc<Account>,
}

impl Staff {
    pub fn account(&self) -> &Account {
        &self.account
    }
}

/// A new forum: its name, and the settings that differ from a new forum's defaults.
#[derive(Debug, Clone)]
pub struct NewForum {
    pub name: ForumName,
    /// Default: the name.
    pub title: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub moderation: Option<ModerationMode>,
    pub guest_posting: Option<bool>,
    pub edit_window_secs: Option<i64>,
}

/// Changes to a forum's settings (what is `None` stays). The settings they make are checked
/// as a whole.
#[derive(Debug, Clone, Default)]
pub struct ForumChanges {
    pub title: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub moderation: Option<ModerationMode>,
    pub guest_posting: Option<bool>,
    pub edit_window_secs: Option<i64>,
    pub moderator_mail: Option<ModeratorMail>,
    /// Replaces the webhooks; an empty secret keeps the one stored for the same URL.
    pub webhooks: Option<Vec<Webhook>>,
    pub gravatar: Option<bool>,
    /// Readers may attach pictures.
    pub images: Option<bool>,
    /// Replaces the word lists.
    pub words: Option<confab_core::modrules::WordLists>,
    /// `Some(None)` removes the link limit.
    pub max_links: Option<Option<u32>>,
    pub trust: Option<confab_core::modrules::Trust>,
    /// `Some(None)`: flags never hold a comment.
    pub flags_to_hold: Option<Option<u32>>,
    pub duplicates: Option<confab_core::modrules::Duplicates>,
    /// Guests solve a proof-of-work challenge before posting.
    pub challenge: Option<confab_core::challenge::ChallengeSettings>,
    /// Changes the outside spam check.
    pub spam: Option<confab_core::spam::SpamPatch>,
    /// `Some(None)` removes the SSO secret.
    pub sso_secret: Option<Option<confab_core::sso::SsoSecret>>,
}

/// What a moderator does to comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModerationAction {
    Approve,
    Restore,
    Spam,
    Delete,
}

impl ModerationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationAction::Approve => "approve",
            ModerationAction::Restore => "restore",
            ModerationAction::Spam => "spam",
            ModerationAction::Delete => "delete",
        }
    }

    fn status(self) -> CommentStatus {
        match self {
            ModerationAction::Approve | ModerationAction::Restore => CommentStatus::Approved,
            ModerationAction::Spam => CommentStatus::Spam,
            ModerationAction::Delete => CommentStatus::Deleted,
        }
    }
}

/// One action on up to 100 comments of a forum.
#[derive(Debug, Clone)]
pub struct StatusChange {
    ids: Vec<CommentId>,
    action: ModerationAction,
}

impl StatusChange {
    /// 1 to 100 comment ids, and one of approve, spam, delete, restore (checked in that order).
    pub fn parse(ids: Vec<CommentId>, action: &str) -> Result<StatusChange, DomainError> {
        if ids.is_empty() || ids.len() > MAX_BULK {
            return Err(DomainError::invalid(format!("give 1 to {MAX_BULK} ids")));
        }
        let action = match action {
            "approve" => ModerationAction::Approve,
            "restore" => ModerationAction::Restore,
            "spam" => ModerationAction::Spam,
            "delete" => ModerationAction::Delete,
            _ => {
                return Err(DomainError::invalid(
                    "action must be approve, spam, delete or restore",
                ))
            }
        };
        Ok(StatusChange { ids, action })
    }
}

/// Changes to a thread (what is `None` stays).
#[derive(Debug, Clone, Default)]
pub struct ThreadChanges {
    pub closed: Option<bool>,
    /// A title as `parse_title` takes it.
    pub title: Option<String>,
    /// Pin a comment (`Some(Some)`) or unpin (`Some(None)`).
    pub pinned: Option<Option<CommentId>>,
}

impl ThreadChanges {
    /// `pinned`: a comment id to pin, or `""` to unpin.
    pub fn parse(
        closed: Option<bool>,
        title: Option<&str>,
        pinned: Option<&str>,
    ) -> Result<ThreadChanges, DomainError> {
        let pinned = match pinned.map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(p) => Some(Some(CommentId(confab_core::id::parse_id(p).ok_or_else(
                || DomainError::invalid("pinned must be a comment id, or empty to unpin"),
            )?))),
        };
        Ok(ThreadChanges {
            closed,
            title: title.map(parse_title).transpose()?,
            pinned,
        })
    }
}

/// A page of the moderation log, newest first.
#[derive(Debug, Clone)]
pub struct ModLogPage {
    /// Each entry with its names (see `LogContext`).
    pub entries: Vec<(ModLogEntry, super::mod_context::LogContext)>,
    /// Where the next (older) page starts.
    pub next_before: Option<String>,
}

/// Comments of one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayTotal {
    /// The day's start, in ms since the epoch.
    pub day: i64,
    pub count: i64,
}

/// How many days of comment counts to show: 1 to 365.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsDays(u32);

impl StatsDays {
    pub fn parse(days: u32) -> Result<StatsDays, DomainError> {
        if !(1..=365).contains(&days) {
            return Err(DomainError::invalid("days must be between 1 and 365"));
        }
        Ok(StatsDays(days))
    }
}

impl Service {
    /// Checks that `caller` moderates the forum named `forum`: the forum exists, the call
    /// comes from this server or one of the forum's sites (reads too, since a moderator's
    /// cookie goes with a request from any page, and the answers hold e-mails, IP hashes and
    /// settings), and the caller is signed in as one of its moderators. In that order.
    pub async fn moderate(&self, caller: &Caller, forum: &str) -> Result<Moderating, DomainError> {
        let forum = self.forum(forum)?;
        self.moderating(caller, forum).await
    }

    /// Checks that `caller` moderates the forum of thread `id` (which must exist), as
    /// [`Service::moderate`] does.
    pub async fn moderate_thread(
        &self,
        caller: &Caller,
        id: ThreadId,
    ) -> Result<ModeratedThread, DomainError> {
        let thread = self
            .store
            .thread(id, ReadFrom::Primary)
            .await?
            .ok_or_else(|| DomainError::not_found("thread"))?;
        let forum = self
            .forums
            .by_id(thread.forum_id)
            .ok_or_else(|| DomainError::not_found("thread"))?;
        let moderating = self.moderating(caller, forum).await?;
        Ok(ModeratedThread { moderating, thread })
    }

    pub(crate) async fn moderating(
        &self,
        caller: &Caller,
        forum: Arc<Forum>,
    ) -> Result<Moderating, DomainError> {
        self.check_origin(caller, &forum)?;
        let account = self
            .caller_account(caller)
            .await?
            .ok_or_else(|| DomainError::new(ErrorCode::Unauthorized, "sign in as a moderator"))?;
        if !account.can_moderate(forum.id) {
            return Err(DomainError::forbidden("you do not moderate this forum"));
        }
        Ok(Moderating { forum, account })
    }

    /// Checks that `caller` is staff, calling from this server (the dashboard).
    pub async fn staff(&self, caller: &Caller) -> Result<Staff, DomainError> {
        require_same_origin(caller)?;
        let account = self
            .caller_account(caller)
            .await?
            .ok_or_else(|| DomainError::new(ErrorCode::Unauthorized, "sign in"))?;
        if !account.is_staff {
            return Err(DomainError::forbidden("only staff may do this"));
        }
        Ok(Staff { account })
    }

    /// Creates a forum (staff through the API, or the operator through `confab admin`).
    pub async fn create_forum(self: &Arc<Self>, body: NewForum) -> Result<Arc<Forum>, DomainError> {
        let name = body.name;
        let mut s = ForumSettings::new(body.title.as_deref().unwrap_or(name.as_str()));
        if let Some(o) = body.allowed_origins {
            s.allowed_origins = o;
        }
        if let Some(m) = body.moderation {
            s.moderation = m;
        }
        if let Some(g) = body.guest_posting {
            s.guest_posting = g;
        }
        if let Some(w) = body.edit_window_secs {
            s.edit_window_secs = w;
        }
        validate_settings(&s)?;
        self.store.create_forum(name.as_str(), &s).await?;
        self.forums_changed().await;
        self.forum(name.as_str())
    }

    /// Creates a forum for a staff member of the API.
    pub async fn create_forum_as(
        self: &Arc<Self>,
        _staff: &Staff,
        body: NewForum,
    ) -> Result<Arc<Forum>, DomainError> {
        self.create_forum(body).await
    }

    /// The forums the caller moderates (staff: all).
    pub async fn my_forums(&self, caller: &Caller) -> Result<Vec<Arc<Forum>>, DomainError> {
        require_same_origin(caller)?;
        let acct = self
            .caller_account(caller)
            .await?
            .ok_or_else(|| DomainError::new(ErrorCode::Unauthorized, "sign in"))?;
        Ok(self
            .forums
            .all()
            .iter()
            .filter(|f| acct.can_moderate(f.id))
            .cloned()
            .collect())
    }

    /// Changes a forum's settings, for one of its moderators (or staff) through the API.
    pub async fn update_forum(
        self: &Arc<Self>,
        m: &Moderating,
        patch: ForumChanges,
    ) -> Result<Forum, DomainError> {
        self.change_forum(&m.forum, patch).await
    }

    /// Changes a forum's settings from `confab admin edit-forum` (the operator).
    pub async fn edit_forum(
        self: &Arc<Self>,
        name: &str,
        patch: ForumChanges,
    ) -> Result<Forum, DomainError> {
        let f = self.forum(name)?;
        self.change_forum(&f, patch).await
    }

    /// The one way a forum's settings change: checked as a whole, stored, then reloaded on
    /// every node.
    async fn change_forum(
        self: &Arc<Self>,
        f: &Arc<Forum>,
        patch: ForumChanges,
    ) -> Result<Forum, DomainError> {
        let mut s = f.settings.clone();
        if let Some(t) = patch.title {
            s.title = t;
        }
        if let Some(o) = patch.allowed_origins {
            s.allowed_origins = o;
        }
        if let Some(m) = patch.moderation {
            s.moderation = m;
        }
        if let Some(g) = patch.guest_posting {
            s.guest_posting = g;
        }
        if let Some(w) = patch.edit_window_secs {
            s.edit_window_secs = w;
        }
        if let Some(m) = patch.moderator_mail {
            s.moderator_mail = m;
        }
        if let Some(g) = patch.gravatar {
            s.gravatar = g;
        }
        if let Some(i) = patch.images {
            s.images = i;
        }
        if let Some(mut w) = patch.words {
            // Checked as sent (the sizes the API documents), then kept less surrounding spaces
            // and repeats.
            confab_core::modrules::validate(
                &w,
                None,
                &Default::default(),
                None,
                &Default::default(),
            )
            .map_err(DomainError::invalid)?;
            for list in [&mut w.block, &mut w.hold] {
                for e in list.iter_mut() {
                    *e = e.trim().to_string();
                }
                let mut seen = HashSet::new();
                list.retain(|e| seen.insert(confab_core::modrules::normalize(e)));
            }
            s.words = w;
        }
        if let Some(m) = patch.max_links {
            s.max_links = m;
        }
        if let Some(t) = patch.trust {
            s.trust = t;
        }
        if let Some(f) = patch.flags_to_hold {
            s.flags_to_hold = f;
        }
        if let Some(d) = patch.duplicates {
            s.duplicates = d;
        }
        if let Some(c) = patch.challenge {
            s.challenge = c;
        }
        if let Some(p) = &patch.spam {
            s.spam = s.spam.apply(p).map_err(DomainError::invalid)?;
        }
        if let Some(mut hooks) = patch.webhooks {
            for h in &mut hooks {
                h.events.sort_by_key(|e| e.as_str());
                h.events.dedup();
                // Secrets are never shown, so a client sending its webhooks back sends them
                // empty: an empty secret keeps the one stored for that URL.
                if h.secret.is_empty() {
                    if let Some(old) = f.settings.webhooks.iter().find(|o| o.url == h.url) {
                        h.secret = old.secret.clone();
                    }
                }
            }
            s.webhooks = hooks;
        }
        validate_settings(&s)?;
        let mut updated = self.store.update_forum(f.id, &s).await?;
        if let Some(secret) = patch.sso_secret {
            let on = secret.is_some();
            updated = self.store.set_sso_secret(f.id, secret.as_ref()).await?;
            tracing::info!(forum = %f.name, sso = on, "SSO secret changed");
        }
        self.forums_changed().await;
        Ok(updated)
    }

    pub async fn mod_list(
        &self,
        m: &Moderating,
        filter: ModListFilter,
    ) -> Result<ModListView, DomainError> {
        let f = &m.forum;
        let limit = filter.limit;
        let mut rows = self
            .store
            .moderation_list(
                f,
                &ModQuery {
                    queue: filter.queue,
                    search: filter.search,
                    before: filter.before,
                    limit: limit + 1,
                },
            )
            .await?;
        let next_before = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|c| c.id)
        } else {
            None
        };
        let mut comments = Vec::with_capacity(rows.len());
        let ids: Vec<AccountId> = rows.iter().filter_map(|c| c.account_id()).collect();
        let accounts = self.accounts_by_id(&ids).await?;
        let mut context = self.queue_context(f, &rows).await?.into_iter();
        for c in rows {
            let author_email = match &c.author {
                Author::Guest { email, .. } => email.clone(),
                Author::Account(id) => accounts.get(id).and_then(|a| a.email.clone()),
            };
            let (ip_hash, flag_count) = (c.ip_hash.clone(), c.flag_count);
            let (status, held_reason) = (c.status, c.held_reason.clone());
            let held_reason = held_reason.filter(|_| status.is_hidden());
            // Moderators see the text of deleted comments too.
            let (md, html) = (c.body_md.clone(), c.body_html.clone());
            let mut view = self.comment_view(f, c).await?;
            view.body = md;
            view.body_html = html;
            // Moderators see a shadow-banned comment as what it is.
            view.status = status;
            let cx = context.next().ok_or_else(DomainError::internal)?;
            comments.push(ModCommentView {
                comment: view,
                forum: f.name.clone(),
                author_email,
                ip_hash,
                flag_count,
                held_reason,
                thread: cx.thread,
                link: cx.link,
                flag_reasons: cx.flag_reasons,
                author_history: cx.author_history,
            });
        }
        Ok(ModListView {
            comments,
            next_before,
            counts: self.queue_counts(f).await?,
        })
    }

    /// Applies one action to up to 100 comments of a forum; returns how many changed.
    pub async fn moderate_comments(
        self: &Arc<Self>,
        m: &Moderating,
        change: &StatusChange,
    ) -> Result<Written<usize>, DomainError> {
        let (f, acct) = (&m.forum, &m.account);
        let (ids, action) = (change.ids.as_slice(), change.action.as_str());
        let status = change.action.status();
        let tasks = self.status_tasks(f, ids, status);
        let Written { value: changes, at } = self
            .store
            .set_status(f, ids, status, Some(acct.id), action, tasks)
            .await?;
        self.wake_worker();
        let threads: HashSet<ThreadId> = changes.iter().map(|c| c.comment.thread_id).collect();
        for tid in threads {
            let Some(t) = self.touch_thread(f, tid, at).await? else {
                continue;
            };
            let mine: Vec<_> = changes
                .iter()
                .filter(|c| c.comment.thread_id == tid && c.thread_seq.is_some())
                .collect();
            let Some(last_seq) = mine.iter().filter_map(|c| c.thread_seq).max() else {
                continue;
            };
            // One change: say exactly what happened. Several: only the last sequence number;
            // live clients see the jump and re-read the thread.
            let ev = match mine.as_slice() {
                [one] => {
                    let was = one.old == CommentStatus::Approved;
                    let is = one.comment.status == CommentStatus::Approved;
                    match (was, is) {
                        (false, true) => LiveEvent::Created {
                            thread_seq: last_seq,
                            comment: self.comment_view(f, one.comment.clone()).await?,
                        },
                        (true, false) => LiveEvent::Removed {
                            thread_seq: last_seq,
                            id: one.comment.id,
                        },
                        _ => LiveEvent::Changed {
                            thread_seq: last_seq,
                        },
                    }
                }
                _ => LiveEvent::Changed {
                    thread_seq: last_seq,
                },
            };
            self.publish(f.id, &t.ident, ev);
        }
        Ok(Written {
            value: changes.len(),
            at,
        })
    }

    pub async fn log(
        &self,
        m: &Moderating,
        before: Option<i64>,
        limit: usize,
    ) -> Result<ModLogPage, DomainError> {
        let mut entries = self.store.mod_log(&m.forum, before, limit + 1).await?;
        let next_before = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|e| e.id.to_string())
        } else {
            None
        };
        let entries = self.log_context(&m.forum, entries).await?;
        Ok(ModLogPage {
            entries,
            next_before,
        })
    }

    /// Comments per UTC day, the last `days` days (today included), oldest first.
    pub async fn stats(
        &self,
        m: &Moderating,
        days: StatsDays,
    ) -> Result<Vec<DayTotal>, DomainError> {
        let days = days.0;
        let now = now_ms();
        let rows = self.store.daily_counts(&m.forum, days, now).await?;
        let day = 86_400_000i64;
        let first = (now / day - i64::from(days) + 1) * day;
        Ok((0..i64::from(days))
            .map(|i| {
                let start = first + i * day;
                let count = rows
                    .iter()
                    .find(|(d, _)| *d == start)
                    .map_or(0, |(_, n)| *n);
                DayTotal { day: start, count }
            })
            .collect())
    }

    pub async fn update_thread(
        self: &Arc<Self>,
        t: &ModeratedThread,
        changes: ThreadChanges,
    ) -> Result<Written<Thread>, DomainError> {
        let (f, acct, id) = (&t.moderating.forum, &t.moderating.account, t.thread.id);
        // Only a published top-level comment of this thread is pinned (first on its page).
        if let Some(Some(cid)) = changes.pinned {
            let c = self.store.comment(cid, ReadFrom::Primary).await?;
            if !c.is_some_and(|c| {
                c.thread_id == id && c.parent_id.is_none() && c.status == CommentStatus::Approved
            }) {
                return Err(DomainError::invalid(
                    "only a published top-level comment of this thread can be pinned",
                ));
            }
        }
        let Written { value: updated, at } = self
            .store
            .update_thread(
                f,
                id,
                ThreadPatch {
                    closed: changes.closed,
                    title: changes.title,
                    pinned: changes.pinned,
                },
                Some(acct.id),
            )
            .await?;
        self.after_thread_write(f, &updated, at);
        let ev = LiveEvent::ThreadUpdated {
            thread_seq: updated.seq,
            closed: updated.closed,
            title: updated.title.clone(),
        };
        self.publish(f.id, &updated.ident, ev);
        Ok(Written { value: updated, at })
    }
}

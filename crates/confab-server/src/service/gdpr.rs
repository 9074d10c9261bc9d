//! A reader's own data (GDPR articles 15, 17 and 20): the export of what Confab keeps about a
//! reader, and its erasure.
//!
//! Who may do what:
//! - a signed-in reader: their whole account (every forum), and deleting it;
//! - staff (the dashboard): the same for any account, on request;
//! - a forum's moderator: the comments, votes and flags an account or a guest address left on
//!   *their* forum (never the account's profile or other forums);
//! - a guest: the one comment its edit token names (the widget keeps it), or every comment of
//!   an address on a forum through a mailed link (`/mail/reader-data`: signed, an hour, the
//!   erasure once).
//!
//! Comments are read a page at a time from each forum's shard (the store's keyset reads) and
//! erased a bounded batch per transaction on that shard, so each batch is all or nothing and
//! an erasure that stops half way is finished by asking again (an erased comment no longer
//! belongs to anyone, so the next run finds only the rest). An account is made a tombstone
//! only after every forum is done. Every thread touched is invalidated on every node, as a
//! deletion is, and its live readers are told.

use super::realtime::LiveEvent;
use super::{Caller, Moderating, Service, Staff};
use confab_core::id::{AccountId, CommentId, ForumId};
use confab_core::model::{Account, Author, Comment, CommentStatus, Forum};
use confab_core::{now_ms, DomainError, ErrorCode};
use confab_store::gdpr::{Erase, Owner, GDPR_PAGE_MAX};
use confab_store::ReadFrom;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// Most comments (and, separately, votes and flags) one export holds; past it the document
/// says `truncated` (staff can then export per forum).
pub const EXPORT_MAX: usize = 100_000;

/// How long a request waits for an erasure before answering 202 and letting it finish in
/// the background.
const ERASE_WAIT: Duration = Duration::from_secs(20);

/// What to do with an erased reader's comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EraseChoice(pub Erase);

impl EraseChoice {
    /// `keep` (text kept as "deleted user") or `remove`.
    pub fn parse(s: &str) -> Result<EraseChoice, DomainError> {
        match s {
            "keep" => Ok(EraseChoice(Erase::Anonymize)),
            "remove" => Ok(EraseChoice(Erase::Remove)),
            _ => Err(DomainError::invalid(
                "comments must be \"keep\" (kept as \"deleted user\") or \"remove\"",
            )),
        }
    }
}

/// The reader's profile, as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DataProfile {
    pub id: AccountId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub url: Option<String>,
    pub avatar_url: Option<String>,
    pub is_staff: bool,
    /// Short names of the forums the account moderates.
    pub moderates: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// One of the reader's comments, with everything stored about it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DataComment {
    pub id: CommentId,
    pub forum: String,
    /// The page's identifier (its path) and, when known, its URL and title.
    pub thread_ident: String,
    pub thread_url: Option<String>,
    pub thread_title: Option<String>,
    pub parent_id: Option<CommentId>,
    /// approved, pending, spam or deleted.
    pub status: String,
    /// The markdown as written.
    pub body: String,
    /// The name, address and site a guest gave (none for an account's comments).
    pub guest_name: Option<String>,
    pub guest_email: Option<String>,
    pub guest_url: Option<String>,
    /// The keyed hash of the address it was posted from (the address itself is never stored).
    pub ip_hash: String,
    pub likes: i64,
    pub dislikes: i64,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    /// The pictures attached to it: their addresses on this server (relative), sizes and ids.
    /// Erasing the comment deletes them.
    pub images: Vec<crate::views::ImageView>,
}

/// A vote (`value` 1 or -1) or a flag (`reason`) the reader left.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DataMark {
    pub forum: String,
    pub comment_id: CommentId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: i64,
}

/// A reply-mail subscription of the reader's address.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DataSubscription {
    pub forum: String,
    pub email: String,
    /// pending, confirmed or unsubscribed.
    pub state: String,
    pub updated_at: i64,
}

/// Everything Confab keeps about a reader (within the asker's reach).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReaderData {
    pub exported_at: i64,
    /// The account (none for a guest's or a forum moderator's export).
    pub account: Option<DataProfile>,
    pub comments: Vec<DataComment>,
    pub votes: Vec<DataMark>,
    pub flags: Vec<DataMark>,
    pub subscriptions: Vec<DataSubscription>,
    /// More than [`EXPORT_MAX`] rows of a kind: the rest is left out.
    pub truncated: bool,
}

/// The outcome of an erasure.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Erasure {
    /// `done`, or `running` (it goes on in the background; asking again finishes it).
    pub state: String,
    /// Comments erased (so far, when running).
    pub comments: u64,
    /// The account was deleted (its sessions ended, its e-mail address is free).
    pub account_deleted: bool,
}

/// Whose data, over which forums.
struct Scope {
    owner: Owner,
    forums: Vec<Arc<Forum>>,
    /// Votes and flags are kept by `a:<account>`; a guest's are by an anonymous token no
    /// address proves, so they are not in a guest's export.
    voter: Option<String>,
    /// Reply-mail subscriptions by this address.
    email: Option<String>,
}

impl Service {
    /// The caller's own data (signed in).
    pub async fn my_data(&self, caller: &Caller) -> Result<ReaderData, DomainError> {
        self.check_any_origin(caller)?;
        let me = self.me(caller).await?;
        self.account_data(&me).await
    }

    /// An account's data, for staff.
    pub async fn reader_data_as(
        &self,
        _staff: &Staff,
        username: &str,
    ) -> Result<ReaderData, DomainError> {
        let a = self.reader_account(username).await?;
        self.account_data(&a).await
    }

    /// What an account (by username) or a guest address left on a moderated forum.
    pub async fn forum_reader_data(
        &self,
        m: &Moderating,
        who: ForumReader,
    ) -> Result<ReaderData, DomainError> {
        let scope = self.forum_scope(m.forum().clone(), who).await?;
        self.collect(None, &scope).await
    }

    /// The one comment a guest's edit token names.
    pub async fn guest_comment_data(
        &self,
        caller: &Caller,
        id: CommentId,
    ) -> Result<ReaderData, DomainError> {
        let (c, forum) = self.guest_comment(caller, id).await?;
        let threads = self.threads_of(std::slice::from_ref(&c)).await?;
        Ok(ReaderData {
            exported_at: now_ms(),
            account: None,
            comments: vec![data_comment(&forum, &threads, c)],
            votes: Vec::new(),
            flags: Vec::new(),
            subscriptions: Vec::new(),
            truncated: false,
        })
    }

    /// Deletes the caller's account: every session ends at once, their comments everywhere
    /// are anonymized or removed, their subscriptions dropped, and the account becomes a
    /// tombstone (its e-mail address free for a new sign-up).
    pub async fn delete_me(
        self: &Arc<Self>,
        caller: &Caller,
        how: EraseChoice,
    ) -> Result<Erasure, DomainError> {
        self.check_any_origin(caller)?;
        let me = self.me(caller).await?;
        tracing::info!(account = %me.username, "account deleted by its owner");
        self.delete_account(me, how.0, caller.account).await
    }

    /// Deletes an account on its owner's request, for staff.
    pub async fn delete_reader_as(
        self: &Arc<Self>,
        staff: &Staff,
        username: &str,
        how: EraseChoice,
    ) -> Result<Erasure, DomainError> {
        let a = self.reader_account(username).await?;
        tracing::info!(account = %a.username, by = %staff.account().username, "account deleted by staff");
        self.delete_account(Arc::new(a), how.0, Some(staff.account().id))
            .await
    }

    /// Erases what an account or a guest address left on a moderated forum (the account
    /// itself stays).
    pub async fn erase_forum_reader(
        self: &Arc<Self>,
        m: &Moderating,
        who: ForumReader,
        how: EraseChoice,
    ) -> Result<Erasure, DomainError> {
        let scope = self.forum_scope(m.forum().clone(), who).await?;
        let actor = Some(m.account().id);
        let svc = self.clone();
        self.run_erasure(async move {
            let n = svc.erase_scope(&scope, how.0, actor).await?;
            Ok((n, false))
        })
        .await
    }

    /// Erases the one comment a guest's edit token names.
    pub async fn erase_guest_comment(
        self: &Arc<Self>,
        caller: &Caller,
        id: CommentId,
        how: EraseChoice,
    ) -> Result<Erasure, DomainError> {
        let (c, forum) = self.guest_comment(caller, id).await?;
        self.check_origin(caller, &forum)?;
        let n = self.erase_batch(&forum, &[c.id], how.0, None).await?;
        Ok(Erasure {
            state: "done".to_string(),
            comments: n,
            account_deleted: false,
        })
    }

    // ------------------------------------------------------------ the guest's mailed link

    /// A guest asks for a link to their data on `forum`, mailed to `email`. The answer is the
    /// same whatever the address: the task is written (in the background) only when the
    /// address commented there and mail is configured.
    pub async fn request_data_link(
        self: &Arc<Self>,
        caller: &Caller,
        forum: &str,
        email: &confab_core::input::Email,
    ) -> Result<(), DomainError> {
        let forum = self.forum(forum)?;
        self.check_origin(caller, &forum)?;
        if !self.config.mail.enabled() {
            return Ok(());
        }
        let (svc, email) = (self.clone(), email.as_str().to_string());
        tokio::spawn(async move {
            let queued = async {
                let owner = Owner::GuestEmail(email.clone());
                if svc
                    .store
                    .owned_comments(&forum, &owner, None, 1)
                    .await?
                    .is_empty()
                {
                    return Ok::<(), DomainError>(());
                }
                let task = confab_worker::kinds::mail_reader_data(forum.id, &email);
                svc.store.enqueue_task(forum.shard, task).await?;
                svc.wake_worker();
                Ok(())
            };
            if let Err(e) = queued.await {
                tracing::warn!(error = %e, "cannot queue a data link mail");
            }
        });
        Ok(())
    }

    /// What a guest's mailed data link names, while it works (signed, within its hour).
    pub fn reader_data_link(
        &self,
        token: &str,
    ) -> Result<confab_worker::links::ReaderDataLink, DomainError> {
        confab_worker::links::verify_reader_data(&self.signer, token, now_ms()).ok_or_else(|| {
            DomainError::new(
                ErrorCode::NotFound,
                "This link has expired. Ask for a new one from the comments.",
            )
        })
    }

    /// The data of the address a valid mailed link names, on its forum.
    pub async fn linked_guest_data(
        &self,
        forum: ForumId,
        email: &str,
    ) -> Result<ReaderData, DomainError> {
        let forum = self
            .forums
            .by_id(forum)
            .ok_or_else(|| DomainError::not_found("forum"))?;
        let scope = Scope {
            owner: Owner::GuestEmail(email.to_string()),
            forums: vec![forum],
            voter: None,
            email: Some(email.to_string()),
        };
        self.collect(None, &scope).await
    }

    /// Erases every comment of the address a mailed link names on its forum, and its
    /// subscription. `key` is the link's single-use key: a second use is refused.
    pub async fn erase_linked_guest(
        self: &Arc<Self>,
        forum: ForumId,
        email: &str,
        key: &str,
        expires_at: i64,
        how: EraseChoice,
    ) -> Result<Erasure, DomainError> {
        let forum = self
            .forums
            .by_id(forum)
            .ok_or_else(|| DomainError::not_found("forum"))?;
        if !self.store.use_link(key, now_ms(), expires_at).await? {
            return Err(DomainError::new(
                ErrorCode::NotFound,
                "This link was already used. Ask for a new one from the comments.",
            ));
        }
        let scope = Scope {
            owner: Owner::GuestEmail(email.to_string()),
            forums: vec![forum],
            voter: None,
            email: Some(email.to_string()),
        };
        let svc = self.clone();
        self.run_erasure(async move {
            let n = svc.erase_scope(&scope, how.0, None).await?;
            Ok((n, false))
        })
        .await
    }

    // ------------------------------------------------------------ shared

    async fn reader_account(&self, username: &str) -> Result<Account, DomainError> {
        self.account_by_username(username).await
    }

    async fn account_data(&self, a: &Account) -> Result<ReaderData, DomainError> {
        let scope = Scope {
            owner: Owner::Account(a.id),
            forums: self.forums.all(),
            voter: Some(format!("a:{}", a.id.0)),
            email: a.email.clone(),
        };
        let profile = DataProfile {
            id: a.id,
            username: a.username.clone(),
            display_name: a.display_name.clone(),
            email: a.email.clone(),
            url: a.url.clone(),
            avatar_url: a.avatar_url.clone(),
            is_staff: a.is_staff,
            moderates: self.moderated_forums(a),
            created_at: a.created_at,
        };
        self.collect(Some(profile), &scope).await
    }

    async fn forum_scope(&self, forum: Arc<Forum>, who: ForumReader) -> Result<Scope, DomainError> {
        Ok(match who {
            ForumReader::Account(username) => {
                let a = self.reader_account(&username).await?;
                Scope {
                    owner: Owner::Account(a.id),
                    forums: vec![forum],
                    voter: Some(format!("a:{}", a.id.0)),
                    email: None,
                }
            }
            ForumReader::Guest(email) => Scope {
                owner: Owner::GuestEmail(email.clone()),
                forums: vec![forum],
                voter: None,
                email: Some(email),
            },
        })
    }

    /// A guest comment whose edit token the caller presents. The token proves authorship
    /// beyond the edit window: its end bounds editing, not the author's rights to their data.
    async fn guest_comment(
        &self,
        caller: &Caller,
        id: CommentId,
    ) -> Result<(Comment, Arc<Forum>), DomainError> {
        let proven = caller
            .edit_token
            .as_deref()
            .and_then(|t| self.signer.verify(super::token::EDIT, t))
            .is_some_and(|p| p.split('|').next() == Some(id.0.to_string().as_str()));
        if !proven {
            return Err(DomainError::new(
                ErrorCode::Unauthorized,
                "present this comment's edit token",
            ));
        }
        let c = self
            .store
            .comment(id, ReadFrom::Primary)
            .await?
            .ok_or_else(|| DomainError::not_found("comment"))?;
        let forum = self
            .forums
            .by_id(c.forum_id)
            .ok_or_else(|| DomainError::not_found("comment"))?;
        if c.account_id().is_some() {
            return Err(DomainError::forbidden(
                "this comment belongs to an account: sign in to manage its data",
            ));
        }
        Ok((c, forum))
    }

    /// Reads a scope's data, a page at a time.
    async fn collect(
        &self,
        account: Option<DataProfile>,
        scope: &Scope,
    ) -> Result<ReaderData, DomainError> {
        let mut out = ReaderData {
            exported_at: now_ms(),
            account,
            comments: Vec::new(),
            votes: Vec::new(),
            flags: Vec::new(),
            subscriptions: Vec::new(),
            truncated: false,
        };
        for forum in &scope.forums {
            let mut after = None;
            loop {
                let page = self
                    .store
                    .owned_comments(forum, &scope.owner, after, GDPR_PAGE_MAX)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                let full = page.len() == GDPR_PAGE_MAX;
                let threads = self.threads_of(&page).await?;
                for c in page {
                    if out.comments.len() >= EXPORT_MAX {
                        out.truncated = true;
                        break;
                    }
                    out.comments.push(data_comment(forum, &threads, c));
                }
                if !full || out.truncated {
                    break;
                }
            }
            if let Some(voter) = &scope.voter {
                for flags in [false, true] {
                    let mut after = None;
                    loop {
                        let page = self
                            .store
                            .owned_marks(forum, voter, flags, after, GDPR_PAGE_MAX)
                            .await?;
                        let Some(last) = page.last() else { break };
                        after = Some(last.comment);
                        let full = page.len() == GDPR_PAGE_MAX;
                        let list = if flags {
                            &mut out.flags
                        } else {
                            &mut out.votes
                        };
                        for m in page {
                            if list.len() >= EXPORT_MAX {
                                out.truncated = true;
                                break;
                            }
                            list.push(DataMark {
                                forum: forum.name.clone(),
                                comment_id: m.comment,
                                value: (!flags).then_some(m.value),
                                reason: flags.then_some(m.reason),
                                created_at: m.created_at,
                            });
                        }
                        if !full || out.truncated {
                            break;
                        }
                    }
                }
            }
            if let Some(email) = &scope.email {
                if let Some(s) = self.store.subscription(forum.id, email).await? {
                    out.subscriptions.push(DataSubscription {
                        forum: forum.name.clone(),
                        email: email.clone(),
                        state: s.state.as_str().to_string(),
                        updated_at: s.updated_at,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The threads of some comments, one read per distinct thread.
    async fn threads_of(
        &self,
        comments: &[Comment],
    ) -> Result<HashMap<confab_core::id::ThreadId, confab_core::model::Thread>, DomainError> {
        let mut out = HashMap::new();
        for c in comments {
            if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(c.thread_id) {
                if let Some(t) = self.store.thread(c.thread_id, ReadFrom::Primary).await? {
                    slot.insert(t);
                }
            }
        }
        Ok(out)
    }

    async fn delete_account(
        self: &Arc<Self>,
        a: Arc<Account>,
        how: Erase,
        actor: Option<AccountId>,
    ) -> Result<Erasure, DomainError> {
        // Sessions end first, so nothing new is posted while the comments are erased.
        self.end_sessions(a.id).await?;
        let scope = Scope {
            owner: Owner::Account(a.id),
            forums: self.forums.all(),
            voter: None,
            email: a.email.clone(),
        };
        let svc = self.clone();
        self.run_erasure(async move {
            let n = svc.erase_scope(&scope, how, actor).await?;
            svc.store.erase_account(a.id).await?;
            svc.forget_account(a.id).await;
            Ok((n, true))
        })
        .await
    }

    /// Runs an erasure, answering when it is done or after [`ERASE_WAIT`] (then it goes on).
    async fn run_erasure<F>(&self, job: F) -> Result<Erasure, DomainError>
    where
        F: std::future::Future<Output = Result<(u64, bool), DomainError>> + Send + 'static,
    {
        let mut handle = tokio::spawn(async move {
            let out = job.await;
            if let Err(e) = &out {
                tracing::warn!(error = %e, "an erasure failed; asking again finishes it");
            }
            out
        });
        match tokio::time::timeout(ERASE_WAIT, &mut handle).await {
            Ok(Ok(Ok((comments, account_deleted)))) => Ok(Erasure {
                state: "done".to_string(),
                comments,
                account_deleted,
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(DomainError::internal()),
            Err(_) => Ok(Erasure {
                state: "running".to_string(),
                comments: 0,
                account_deleted: false,
            }),
        }
    }

    /// Erases a scope's comments, forum by forum, a batch per transaction; then drops the
    /// address's subscriptions. The number of comments erased.
    async fn erase_scope(
        self: &Arc<Self>,
        scope: &Scope,
        how: Erase,
        actor: Option<AccountId>,
    ) -> Result<u64, DomainError> {
        let mut total = 0;
        for forum in &scope.forums {
            let mut last_first = None;
            loop {
                // Erased comments belong to nobody: every read starts at the beginning.
                let page = self
                    .store
                    .owned_comments(forum, &scope.owner, None, GDPR_PAGE_MAX)
                    .await?;
                let Some(first) = page.first().map(|c| c.id) else {
                    break;
                };
                if last_first == Some(first) {
                    return Err(DomainError::internal());
                }
                last_first = Some(first);
                let ids: Vec<CommentId> = page.iter().map(|c| c.id).collect();
                total += self.erase_batch(forum, &ids, how, actor).await?;
            }
            if let Some(email) = &scope.email {
                self.store.erase_subscription(forum, email).await?;
            }
        }
        Ok(total)
    }

    /// One transaction on the forum's shard; then every thread it touched is invalidated on
    /// every node and its live readers told.
    async fn erase_batch(
        self: &Arc<Self>,
        forum: &Arc<Forum>,
        ids: &[CommentId],
        how: Erase,
        actor: Option<AccountId>,
    ) -> Result<u64, DomainError> {
        let written = self.store.erase_comments(forum, ids, how, actor).await?;
        let at = written.at;
        let erased = written.value;
        let mut by_thread: BTreeMap<i64, Vec<confab_store::ErasedComment>> = BTreeMap::new();
        for e in erased {
            by_thread.entry(e.comment.thread_id.0).or_default().push(e);
        }
        let mut n = 0;
        for (tid, list) in by_thread {
            let thread = self
                .touch_thread(forum, confab_core::id::ThreadId(tid), at)
                .await?;
            for e in list {
                n += 1;
                let Some(t) = &thread else { continue };
                let was_visible = e.old == CommentStatus::Approved;
                let ev = match (was_visible, e.comment.status) {
                    (true, CommentStatus::Approved) => LiveEvent::Updated {
                        thread_seq: e.thread_seq,
                        comment: self.comment_view(forum, e.comment).await?,
                    },
                    (true, _) => LiveEvent::Removed {
                        thread_seq: e.thread_seq,
                        id: e.comment.id,
                    },
                    (false, _) => LiveEvent::Changed {
                        thread_seq: e.thread_seq,
                    },
                };
                self.publish(forum.id, &t.ident, ev);
            }
        }
        Ok(n)
    }
}

/// A reader as a forum's moderator names them.
#[derive(Debug, Clone)]
pub enum ForumReader {
    /// By username.
    Account(String),
    /// A guest, by the address they commented with.
    Guest(String),
}

fn data_comment(
    forum: &Forum,
    threads: &HashMap<confab_core::id::ThreadId, confab_core::model::Thread>,
    c: Comment,
) -> DataComment {
    let t = threads.get(&c.thread_id);
    let (guest_name, guest_email, guest_url) = match c.author {
        Author::Account(_) => (None, None, None),
        Author::Guest { name, email, url } => (Some(name), email, url),
    };
    DataComment {
        id: c.id,
        forum: forum.name.clone(),
        thread_ident: t.map(|t| t.ident.as_str().to_string()).unwrap_or_default(),
        thread_url: t.and_then(|t| t.url.clone()),
        thread_title: t.and_then(|t| t.title.clone()),
        parent_id: c.parent_id,
        status: c.status.as_str().to_string(),
        body: c.body_md,
        guest_name,
        guest_email,
        guest_url,
        ip_hash: c.ip_hash,
        likes: c.likes,
        dislikes: c.dislikes,
        created_at: c.created_at,
        edited_at: c.edited_at,
        images: c.images.iter().map(crate::views::ImageView::of).collect(),
    }
}

//! Reading threads: the hot path. A public first page is served from the page cache as bytes;
//! moderators and authors with pending comments get a page rendered for them.

use super::{Caller, Service};
use crate::cache::{Page, PageKey, Version};
use crate::shared::{Shared, Token};
use crate::views::{thread_view, AuthorView, CommentView, PageView, RepliesView};
use confab_core::cursor::{Cursor, Sort};
use confab_core::id::{AccountId, CommentId, ForumId};
use confab_core::ident::Ident;
use confab_core::model::{Account, Author, Comment, CommentStatus, Forum, Thread};
use confab_core::switch::SwitchName;
use confab_core::{rfc3339, DomainError};
use confab_store::pin::{read_pin, reading_with, WritePos};
use confab_store::{ReadFrom, ReadPin, Visibility};
use std::collections::HashMap;
use std::sync::Arc;

/// A request for one page of top-level comments.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub forum: Arc<Forum>,
    pub ident: Ident,
    pub sort: Sort,
    pub cursor: Option<String>,
    pub limit: usize,
}

fn sort_tag(s: Sort) -> u8 {
    match s {
        Sort::Best => 0,
        Sort::Newest => 1,
        Sort::Oldest => 2,
        Sort::Featured => 3,
    }
}

impl Service {
    /// Validates a page size given by a client.
    pub fn page_limit(&self, limit: Option<usize>) -> Result<usize, DomainError> {
        let max = self.config.limits.page_max;
        match limit {
            None => Ok(self.config.limits.page_default),
            Some(n) if (1..=max).contains(&n) => Ok(n),
            Some(_) => Err(DomainError::invalid(format!(
                "limit must be between 1 and {max}"
            ))),
        }
    }

    /// What `caller` may see in `forum`.
    pub async fn visibility(
        &self,
        caller: &Caller,
        forum: &Forum,
    ) -> Result<Visibility, DomainError> {
        if let Some(acct) = self.caller_account(caller).await? {
            if acct.can_moderate(forum.id) {
                return Ok(Visibility::Moderator);
            }
        }
        if caller.account.is_some() || caller.anon.is_some() {
            return Ok(Visibility::Author {
                account: caller.account,
                anon: caller.anon.clone(),
            });
        }
        Ok(Visibility::Public)
    }

    /// One page of a thread for `caller`, as JSON bytes with an ETag.
    pub async fn page(
        self: &Arc<Self>,
        req: PageRequest,
        caller: &Caller,
    ) -> Result<Arc<Page>, DomainError> {
        // A bad cursor is refused whoever asks and whether or not the thread exists.
        if let Some(c) = &req.cursor {
            Cursor::decode(c, req.sort)?;
        }
        // Fast path for anonymous readers: no account lookup at all.
        let vis = if caller.account.is_none() && caller.anon.is_none() {
            Visibility::Public
        } else {
            self.visibility(caller, &req.forum).await?
        };
        // Gravatar images: the forum's setting and the `gravatar` switch for this reader. It is
        // part of the cache key, so a change to either is never answered with older pages.
        let gravatar = self.gravatar_for(&req.forum, caller).await;
        // Moderators see more than the shared page; a client just after its own write reads
        // past its pin (the shared page may predate that write when it was written elsewhere).
        if vis == Visibility::Moderator || matches!(read_pin(), Some(ReadPin::At(_))) {
            return Ok(Arc::new(
                Box::pin(self.render_page(&req, &vis, gravatar)).await?,
            ));
        }
        let ident: Arc<str> = Arc::from(req.ident.as_str());
        let version = self.thread_version(req.forum.id, &ident).await;
        let fill_pin = version.pin;
        let key = page_key(
            &req.forum,
            ident,
            version.n,
            req.sort,
            req.cursor.as_deref().map(Arc::from),
            req.limit,
            gravatar,
        );
        // Hits (nearly every read) return before the fill's future is even built: it is large,
        // and building and moving it cost more than the lookup.
        let public = match self.pages.get(&key).await {
            Some(page) => page,
            None => {
                // A shared entry is filled from a copy that has seen the last write to the
                // thread this node knows of; through the tier when there is one (one fill
                // across the fleet).
                let render = self.render_page(&req, &Visibility::Public, gravatar);
                // Boxed: a page render is a large future, and the tier's fill nests it deeper.
                let render = Box::pin(async move {
                    match fill_pin {
                        Some(pin) => reading_with(pin, render).await,
                        None => render.await,
                    }
                });
                let shared = version
                    .token
                    .zip(self.shared.as_ref())
                    .map(|(t, s)| (Shared::page_key(req.forum.id, t, &key), s));
                let fill = Box::pin(async move {
                    match shared {
                        Some((k, shared)) => shared.page(&k, render).await,
                        None => render.await,
                    }
                });
                self.pages.get_or_fill(key, fill).await?
            }
        };
        if public.has_hidden && matches!(vis, Visibility::Author { .. }) {
            if let Some(thread) = self
                .store
                .thread_by_ident(&req.forum, &req.ident, ReadFrom::Replica)
                .await?
            {
                if self.store.has_hidden_by(&thread, &vis).await? {
                    return Ok(Arc::new(
                        Box::pin(self.render_page(&req, &vis, gravatar)).await?,
                    ));
                }
            }
        }
        Ok(public)
    }

    /// Renders a page from storage: a fixed number of queries whatever the thread's size
    /// (thread, top level, one per nested level, authors).
    pub(crate) async fn render_page(
        &self,
        req: &PageRequest,
        vis: &Visibility,
        gravatar: bool,
    ) -> Result<Page, DomainError> {
        let from = ReadFrom::Replica;
        let Some(thread) = self
            .store
            .thread_by_ident(&req.forum, &req.ident, from)
            .await?
        else {
            let view = PageView {
                thread: None,
                comments: Vec::new(),
                next_cursor: None,
                pictures: req.forum.settings.images,
            };
            return Ok(Page::new(to_json(&view)?, false));
        };
        let cursor = req
            .cursor
            .as_deref()
            .map(|c| Cursor::decode(c, req.sort))
            .transpose()?;
        // The first page reads the pinned comment with its own (one statement either way).
        let featured = req.sort == Sort::Featured;
        let want_pin = thread.pinned_id.filter(|_| !featured && cursor.is_none());
        let (mut top, pin_row) = self
            .store
            .top_level(
                &thread,
                vis,
                req.sort,
                cursor,
                req.limit + 1,
                want_pin,
                from,
            )
            .await?;
        let next_cursor = if top.len() > req.limit {
            top.truncate(req.limit);
            top.last().map(|c| {
                Cursor {
                    sort: req.sort,
                    score: c.likes - c.dislikes,
                    id: c.id.0,
                }
                .encode()
            })
        } else {
            None
        };
        // A pinned comment: first on the first page, and nowhere else. The featured listing is
        // only the featured comments.
        if let Some(pin) = thread.pinned_id.filter(|_| !featured) {
            let at = top.iter().position(|c| c.id == pin);
            let pinned = match at {
                Some(i) => Some(top.remove(i)),
                None => pin_row.filter(|c| c.thread_id == thread.id && visible(c, vis)),
            };
            if let Some(p) = pinned.filter(|_| cursor.is_none()) {
                top.insert(0, p);
            }
        }
        let comments = self
            .expand(
                &thread,
                &req.forum,
                top,
                vis,
                // Featured comments are listed flat (a featured reply is not nested again).
                if featured {
                    0
                } else {
                    self.config.limits.display_depth
                },
                gravatar,
            )
            .await?;
        let view = PageView {
            thread: Some(thread_view(&thread, &req.forum)),
            comments,
            next_cursor,
            pictures: req.forum.settings.images,
        };
        let _render = confab_record::Timer::start(confab_record::Field::RenderMicros);
        Ok(Page::new(to_json(&view)?, thread.hidden_count > 0))
    }

    /// Replies of one comment after a cursor, nested like a page.
    pub async fn replies_page(
        &self,
        parent: CommentId,
        cursor: Option<&str>,
        limit: usize,
        caller: &Caller,
    ) -> Result<RepliesView, DomainError> {
        let from = ReadFrom::Replica;
        let p = self
            .store
            .comment(parent, from)
            .await?
            .ok_or_else(|| DomainError::not_found("comment"))?;
        let forum = self
            .forums
            .by_id(p.forum_id)
            .ok_or_else(|| DomainError::not_found("comment"))?;
        let vis = self.visibility(caller, &forum).await?;
        // A placeholder parent (deleted, or hidden from this reader) still lists its replies.
        if !visible(&p, &vis) && p.reply_count == 0 {
            return Err(DomainError::not_found("comment"));
        }
        let thread = self
            .store
            .thread(p.thread_id, from)
            .await?
            .ok_or_else(|| DomainError::not_found("thread"))?;
        let after = cursor
            .map(|c| Cursor::decode(c, Sort::Oldest))
            .transpose()?
            .map(|c| CommentId(c.id));
        let mut first = self
            .store
            .replies(&thread, &[parent], &vis, after, limit + 1, from)
            .await?;
        let next_cursor = if first.len() > limit {
            first.truncate(limit);
            first.last().map(|c| {
                Cursor {
                    sort: Sort::Oldest,
                    score: 0,
                    id: c.id.0,
                }
                .encode()
            })
        } else {
            None
        };
        let levels = self.config.limits.display_depth.saturating_sub(1);
        let gravatar = self.gravatar_for(&forum, caller).await;
        let comments = self
            .expand(&thread, &forum, first, &vis, levels, gravatar)
            .await?;
        Ok(RepliesView {
            comments,
            next_cursor,
        })
    }

    /// Nests up to `levels` levels of replies under `top`: one query per level, then one for
    /// the authors of everything shown.
    async fn expand(
        &self,
        thread: &Thread,
        forum: &Forum,
        top: Vec<Comment>,
        vis: &Visibility,
        levels: usize,
        gravatar: bool,
    ) -> Result<Vec<CommentView>, DomainError> {
        let per_parent = self.config.limits.replies_per_parent;
        let wants_children = |c: &Comment| c.reply_count > 0 || !matches!(vis, Visibility::Public);
        let mut children: HashMap<CommentId, Vec<Comment>> = HashMap::new();
        let mut more: HashMap<CommentId, String> = HashMap::new();
        let mut level: Vec<CommentId> = top
            .iter()
            .filter(|c| wants_children(c))
            .map(|c| c.id)
            .collect();
        let mut authors: Vec<AccountId> = top.iter().filter_map(Comment::account_id).collect();
        for _ in 0..levels {
            if level.is_empty() {
                break;
            }
            let reps = self
                .store
                .replies(thread, &level, vis, None, per_parent + 1, ReadFrom::Replica)
                .await?;
            let mut grouped: HashMap<CommentId, Vec<Comment>> = HashMap::new();
            for r in reps {
                if let Some(pid) = r.parent_id {
                    grouped.entry(pid).or_default().push(r);
                }
            }
            let mut next = Vec::new();
            for (pid, mut kids) in grouped {
                if kids.len() > per_parent {
                    kids.truncate(per_parent);
                    if let Some(last) = kids.last() {
                        more.insert(
                            pid,
                            Cursor {
                                sort: Sort::Oldest,
                                score: 0,
                                id: last.id.0,
                            }
                            .encode(),
                        );
                    }
                }
                for k in &kids {
                    authors.extend(k.account_id());
                    if wants_children(k) {
                        next.push(k.id);
                    }
                }
                children.insert(pid, kids);
            }
            level = next;
        }
        let accounts = self.accounts_by_id(&authors).await?;
        let ctx = ViewCtx {
            svc: self,
            forum,
            accounts: &accounts,
            viewer: Some(vis),
            gravatar,
        };
        Ok(top
            .into_iter()
            .map(|c| ctx.tree(c, &mut children, &more))
            .collect())
    }

    /// Renders one comment for an API response (no nesting).
    pub(crate) async fn comment_view(
        &self,
        forum: &Forum,
        c: Comment,
    ) -> Result<CommentView, DomainError> {
        let ids: Vec<AccountId> = c.account_id().into_iter().collect();
        let accounts = self.accounts_by_id(&ids).await?;
        let ctx = ViewCtx {
            svc: self,
            forum,
            accounts: &accounts,
            viewer: None,
            gravatar: forum.settings.gravatar
                && self.switch_default(SwitchName::Gravatar, Some(forum.id)),
        };
        Ok(ctx.view(c, Vec::new(), None))
    }

    /// After a write to a thread on this node: make its cached pages stale here and on every
    /// other node (`fleet`).
    /// [`Service::after_write`] for every ident of `thread`: its own, and, when it has aliases,
    /// each of them (read from the store in the background; only aliased threads pay for it).
    pub(crate) fn after_thread_write(
        self: &Arc<Self>,
        forum: &Arc<Forum>,
        thread: &Thread,
        at: Option<WritePos>,
    ) {
        self.after_write(forum, &thread.ident, at);
        if !thread.aliased {
            return;
        }
        let (svc, forum, id) = (self.clone(), forum.clone(), thread.id);
        tokio::spawn(async move {
            match svc.store.thread_aliases(id).await {
                Ok(aliases) => {
                    for a in &aliases {
                        svc.after_write(&forum, a, at);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, thread = %id, "reading a thread's aliases to invalidate their pages")
                }
            }
        });
    }

    pub(crate) fn after_write(
        self: &Arc<Self>,
        forum: &Arc<Forum>,
        ident: &Ident,
        at: Option<WritePos>,
    ) {
        // With a shared tier, the thread gets a new token there: every node's next fill
        // looks for its pages under it.
        let token = self.shared.as_ref().map(|shared| {
            let token = Token::fresh(at);
            let (shared, ident) = (shared.clone(), ident.as_str().to_string());
            let forum = forum.id;
            tokio::spawn(async move { shared.renew_token(forum, &ident, token).await });
            token.id
        });
        self.invalidate_thread(forum.id, ident.as_str(), at, token);
        self.announce(super::fleet::Change::thread(
            forum.id,
            ident.as_str(),
            at,
            token,
        ));
    }

    /// The version of a thread's pages to use now: this node's entry, with the thread's token
    /// from the shared tier. An entry without a token waits for it; one whose token was read
    /// `version_check` ago is served as it is while the token is read again in the background
    /// (one reading at a time: the entry is marked first).
    pub(crate) async fn thread_version(
        self: &Arc<Self>,
        forum: ForumId,
        ident: &Arc<str>,
    ) -> Version {
        let v = self.pages.entry(forum, ident);
        let Some(shared) = &self.shared else {
            return v;
        };
        if !v.token_due(self.version_check) {
            return v;
        }
        if v.token.is_some() {
            if self.pages.mark_checked(forum, ident, v) {
                let (svc, shared, ident) = (self.clone(), shared.clone(), ident.clone());
                tokio::spawn(async move {
                    if let Some(t) = shared.token(forum, &ident).await {
                        svc.pages
                            .learn_token(forum, &ident, v, t.id, t.at.map(ReadPin::At));
                    }
                });
            }
            return v;
        }
        match shared.token(forum, ident).await {
            Some(t) => self
                .pages
                .learn_token(forum, ident, v, t.id, t.at.map(ReadPin::At)),
            // The tier cannot be reached: this node's own version alone.
            None => v,
        }
    }

    /// Makes a thread's cached pages and count stale and, if its first page was being read (it
    /// was in the cache), renders it again now so readers don't all miss at once. Cold threads
    /// are only invalidated: a burst of posts to threads nobody reads costs no renders. Fills
    /// read with `at` (the write's commit position) as their pin, or this node's latest write.
    pub(crate) fn invalidate_thread(
        self: &Arc<Self>,
        forum_id: ForumId,
        ident: &str,
        at: Option<WritePos>,
        token: Option<u64>,
    ) {
        let key_ident: Arc<str> = Arc::from(ident);
        let pin = at.map_or(ReadPin::Fresh, ReadPin::At);
        let Some(forum) = self.forums.by_id(forum_id) else {
            self.pages.bump(forum_id, &key_ident, pin, token);
            return;
        };
        // The refill is for readers in general: "the rest" of a `gravatar` record with selectors.
        let gravatar =
            forum.settings.gravatar && self.switch_default(SwitchName::Gravatar, Some(forum.id));
        let first_page = |version| {
            page_key(
                &forum,
                key_ident.clone(),
                version,
                Sort::default(),
                None,
                self.config.limits.page_default,
                gravatar,
            )
        };
        let hot = self
            .pages
            .contains(&first_page(self.pages.version(forum_id, &key_ident)));
        let version = self.pages.bump(forum_id, &key_ident, pin, token);
        if !hot {
            return;
        }
        let key = first_page(version);
        let shared_key = token
            .zip(self.shared.clone())
            .map(|(t, s)| (Shared::page_key(forum_id, t, &key), s));
        let svc = self.clone();
        let req = PageRequest {
            forum: forum.clone(),
            ident: Ident::from_stored(ident.to_string()),
            sort: Sort::default(),
            cursor: None,
            limit: self.config.limits.page_default,
        };
        tokio::spawn(async move {
            // Through the single-flight paths (this node's, then the tier's across nodes): a
            // reader arriving meanwhile waits for this render.
            let render = Box::pin(reading_with(
                pin,
                svc.render_page(&req, &Visibility::Public, gravatar),
            ));
            let fill = async {
                match shared_key {
                    Some((k, shared)) => shared.page(&k, render).await,
                    None => render.await,
                }
            };
            let _ = svc.pages.get_or_fill(key, fill).await;
        });
    }
}

/// The cache key of a page of a thread of `forum`.
fn page_key(
    forum: &Forum,
    ident: Arc<str>,
    version: u64,
    sort: Sort,
    cursor: Option<Arc<str>>,
    limit: usize,
    gravatar: bool,
) -> PageKey {
    PageKey {
        forum: forum.id,
        ident,
        version,
        sort: sort_tag(sort),
        cursor,
        limit: limit as u16,
        gravatar,
    }
}

/// Whether `vis` may see `c` itself (its text and author).
fn visible(c: &Comment, vis: &Visibility) -> bool {
    match vis {
        Visibility::Moderator => true,
        Visibility::Public => c.status == CommentStatus::Approved,
        Visibility::Author { account, anon } => {
            c.status == CommentStatus::Approved
                || (c.status.is_hidden()
                    && ((account.is_some() && c.account_id() == *account)
                        || (anon.is_some() && c.anon_id.as_deref() == anon.as_deref())))
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, DomainError> {
    serde_json::to_vec(v).map_err(|e| {
        tracing::error!(error = %e, "serializing a page");
        DomainError::internal()
    })
}

struct ViewCtx<'a> {
    svc: &'a Service,
    forum: &'a Forum,
    accounts: &'a HashMap<AccountId, Arc<Account>>,
    /// Who the page is for; `None`: the comment is shown as it is (the answer to a write).
    viewer: Option<&'a Visibility>,
    /// Authors' Gravatar hashes are shown (the forum's setting and the `gravatar` switch).
    gravatar: bool,
}

impl ViewCtx<'_> {
    fn tree(
        &self,
        c: Comment,
        children: &mut HashMap<CommentId, Vec<Comment>>,
        more: &HashMap<CommentId, String>,
    ) -> CommentView {
        let kids = children.remove(&c.id).unwrap_or_default();
        let cursor = more.get(&c.id).cloned().or_else(|| {
            // Replies exist below the nesting shown here: the cursor starts at the beginning.
            (kids.is_empty() && c.reply_count > 0).then(|| {
                Cursor {
                    sort: Sort::Oldest,
                    score: 0,
                    id: 0,
                }
                .encode()
            })
        });
        let replies = kids
            .into_iter()
            .map(|k| self.tree(k, children, more))
            .collect();
        self.view(c, replies, cursor)
    }

    fn view(
        &self,
        c: Comment,
        replies: Vec<CommentView>,
        replies_cursor: Option<String>,
    ) -> CommentView {
        let signer = &self.svc.signer;
        // A comment this viewer may not see, shown only because it has visible replies, is a
        // placeholder like a deleted one (its text, author and status stay hidden).
        let withheld = c.status.is_hidden() && self.viewer.is_some_and(|v| !visible(&c, v));
        let deleted = c.status == CommentStatus::Deleted || withheld;
        let shadowed = c.shadowed() && !matches!(self.viewer, Some(Visibility::Moderator));
        let gravatar = |email: Option<&str>| {
            email.filter(|_| self.gravatar).map(|e| {
                use sha2::{Digest, Sha256};
                Sha256::digest(e.trim().to_lowercase().as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            })
        };
        let author = if deleted {
            AuthorView {
                name: "[deleted]".into(),
                url: None,
                account_id: None,
                avatar: String::new(),
                gravatar: None,
                avatar_url: None,
                moderator: false,
            }
        } else {
            match &c.author {
                Author::Account(id) => {
                    let a = self.accounts.get(id);
                    AuthorView {
                        name: a.map_or_else(|| "[unknown]".to_string(), |a| a.display_name.clone()),
                        url: a.and_then(|a| a.url.clone()),
                        account_id: Some(*id),
                        avatar: signer.keyed_hash("avatar", &format!("a:{}", id.0)),
                        gravatar: gravatar(a.and_then(|a| a.email.as_deref())),
                        avatar_url: a.and_then(|a| a.avatar_url.clone()),
                        moderator: a.is_some_and(|a| a.can_moderate(self.forum.id)),
                    }
                }
                Author::Guest { name, email, url } => AuthorView {
                    name: name.clone(),
                    url: url.clone(),
                    account_id: None,
                    avatar: signer.keyed_hash(
                        "avatar",
                        &email.as_deref().map_or_else(
                            || format!("n:{name}"),
                            |e| format!("e:{}", e.to_lowercase()),
                        ),
                    ),
                    gravatar: gravatar(email.as_deref()),
                    avatar_url: None,
                    moderator: false,
                },
            }
        };
        CommentView {
            id: c.id,
            thread_id: c.thread_id,
            parent_id: c.parent_id,
            depth: c.depth,
            author,
            images: if deleted || c.status == CommentStatus::Spam {
                Vec::new()
            } else {
                c.images.iter().map(crate::views::ImageView::of).collect()
            },
            body_html: if deleted { String::new() } else { c.body_html },
            body: if deleted { String::new() } else { c.body_md },
            status: if withheld {
                CommentStatus::Deleted
            } else if shadowed {
                // A shadow-banned author sees their comment as published.
                CommentStatus::Approved
            } else {
                c.status
            },
            likes: c.likes,
            dislikes: c.dislikes,
            reply_count: c.reply_count,
            created_at: rfc3339(c.created_at),
            edited_at: c.edited_at.map(rfc3339),
            reactions: if deleted {
                Default::default()
            } else {
                c.reactions.to_map()
            },
            featured: c.featured && !deleted,
            replies,
            replies_cursor,
        }
    }
}

//! Atom feeds (RFC 4287) of a thread's and of a forum's newest approved comments, for feed
//! readers and for sites that show "latest comments".
//!
//! A thread's feed is made from the thread's shared page sorted by newest: the page cache's
//! entry, so a feed costs a page read and is fresh the moment the page is. A forum's is made
//! from the forum's newest approved comments and kept [`FORUM_FEED_TTL`] on each node, built by
//! one request at a time. Both carry an ETag made from their bytes, so every node of a fleet
//! answers a feed reader's `If-None-Match` alike. Only what the public page shows is in them:
//! approved comments (never held, spam, shadow-banned or deleted ones), authors' names and
//! sites, never e-mail.

use super::threads::PageRequest;
use super::{Caller, Service};
use confab_core::cursor::Sort;
use confab_core::ident::Ident;
use confab_core::model::{CommentStatus, Forum, Thread};
use confab_core::{now_ms, rfc3339, DomainError};
use confab_store::{ModQuery, Queue, ReadFrom};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// Entries in a feed.
pub const FEED_ENTRIES: usize = 50;
/// How long a node keeps a forum's feed.
pub const FORUM_FEED_TTL: Duration = Duration::from_secs(30);

/// A feed document and its strong validator (quoted).
#[derive(Debug, Clone)]
pub struct Feed {
    pub xml: String,
    pub etag: String,
}

/// One comment as a feed shows it.
struct Entry {
    id: String,
    author: String,
    author_url: Option<String>,
    html: String,
    published: String,
    updated: String,
    /// Where the comment is read in place, when its thread's page is known.
    link: Option<String>,
    /// The thread's title (or address), for the forum's feed.
    thread: String,
}

/// The part of a page (`views::PageView`) a feed needs.
#[derive(Deserialize)]
struct PageBody {
    thread: Option<PageThread>,
    comments: Vec<PageComment>,
}

#[derive(Deserialize)]
struct PageThread {
    ident: String,
    url: Option<String>,
    title: Option<String>,
}

#[derive(Deserialize)]
struct PageComment {
    id: String,
    author: PageAuthor,
    body_html: String,
    status: CommentStatus,
    created_at: String,
    edited_at: Option<String>,
    replies: Vec<PageComment>,
}

#[derive(Deserialize)]
struct PageAuthor {
    name: String,
    url: Option<String>,
}

impl Service {
    /// The feed of a thread's newest approved comments (replies included). `self_url` is the
    /// feed's own address, as the reader asked for it.
    pub async fn thread_feed(
        self: &Arc<Self>,
        forum: Arc<Forum>,
        ident: Ident,
        self_url: &str,
    ) -> Result<Feed, DomainError> {
        let req = PageRequest {
            forum: forum.clone(),
            ident: ident.clone(),
            sort: Sort::Newest,
            cursor: None,
            limit: FEED_ENTRIES.min(self.config.limits.page_max),
        };
        let page = self.page(req, &Caller::public()).await?;
        let body: PageBody = serde_json::from_slice(&page.body).map_err(|e| {
            tracing::error!(error = %e, "reading a page back for a feed");
            DomainError::internal()
        })?;
        let (title, link) = match &body.thread {
            Some(t) => (
                thread_name(t.title.as_deref(), &t.ident),
                page_url(t.url.as_deref(), &t.ident),
            ),
            None => (ident.as_str().to_string(), page_url(None, ident.as_str())),
        };
        let mut flat = Vec::new();
        flatten(body.comments, &mut flat);
        flat.retain(|c| c.status == CommentStatus::Approved);
        // Newest first; RFC 3339 with milliseconds in UTC sorts as text.
        flat.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        flat.truncate(FEED_ENTRIES);
        let entries = flat
            .into_iter()
            .map(|c| Entry {
                link: link.as_ref().map(|u| comment_link(u, &c.id)),
                updated: c.edited_at.clone().unwrap_or_else(|| c.created_at.clone()),
                published: c.created_at,
                id: c.id,
                author: c.author.name,
                author_url: c.author.url,
                html: c.body_html,
                thread: title.clone(),
            })
            .collect::<Vec<_>>();
        Ok(atom(
            &forum,
            &format!("Comments on {title}"),
            self_url,
            link.as_deref(),
            &entries,
            false,
        ))
    }

    /// The feed of a forum's newest approved comments, on every thread.
    pub async fn forum_feed(
        self: &Arc<Self>,
        forum: Arc<Forum>,
        self_url: &str,
    ) -> Result<Arc<Feed>, DomainError> {
        let svc = self.clone();
        let f = forum.clone();
        let self_url = self_url.to_string();
        self.forum_feeds
            .try_get_with(forum.id, async move {
                svc.build_forum_feed(&f, &self_url).await.map(Arc::new)
            })
            .await
            .map_err(|e: Arc<DomainError>| (*e).clone())
    }

    async fn build_forum_feed(&self, forum: &Forum, self_url: &str) -> Result<Feed, DomainError> {
        let rows = self
            .store
            .moderation_list(
                forum,
                &ModQuery {
                    queue: Queue::Status(CommentStatus::Approved),
                    search: None,
                    before: None,
                    limit: FEED_ENTRIES,
                },
            )
            .await?;
        let mut threads: HashMap<_, Option<Thread>> = HashMap::new();
        for c in &rows {
            if let std::collections::hash_map::Entry::Vacant(v) = threads.entry(c.thread_id) {
                v.insert(self.store.thread(c.thread_id, ReadFrom::Replica).await?);
            }
        }
        let mut entries = Vec::with_capacity(rows.len());
        for c in rows {
            let thread = threads.get(&c.thread_id).and_then(|t| t.as_ref());
            let (name, link) = match thread {
                Some(t) => (
                    thread_name(t.title.as_deref(), t.ident.as_str()),
                    page_url(t.url.as_deref(), t.ident.as_str()),
                ),
                None => (String::new(), None),
            };
            let view = self.comment_view(forum, c).await?;
            let id = view.id.to_string();
            entries.push(Entry {
                link: link.as_ref().map(|u| comment_link(u, &id)),
                updated: view
                    .edited_at
                    .clone()
                    .unwrap_or_else(|| view.created_at.clone()),
                published: view.created_at,
                id,
                author: view.author.name,
                author_url: view.author.url,
                html: view.body_html,
                thread: name,
            });
        }
        let title = if forum.settings.title.is_empty() {
            forum.name.clone()
        } else {
            forum.settings.title.clone()
        };
        Ok(atom(
            forum,
            &format!("Comments on {title}"),
            self_url,
            None,
            &entries,
            true,
        ))
    }
}

fn flatten(comments: Vec<PageComment>, out: &mut Vec<PageComment>) {
    for mut c in comments {
        let replies = std::mem::take(&mut c.replies);
        out.push(c);
        flatten(replies, out);
    }
}

fn thread_name(title: Option<&str>, ident: &str) -> String {
    match title.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => t.to_string(),
        None => ident.to_string(),
    }
}

/// The page a thread is read on: its URL, or its ident when that is a web address.
fn page_url(url: Option<&str>, ident: &str) -> Option<String> {
    url.filter(|u| !u.is_empty())
        .or(Some(ident))
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_string)
}

/// A comment in place on its page: the widget scrolls to and highlights `#comment-{id}`, as
/// the dashboard links it.
fn comment_link(page: &str, id: &str) -> String {
    let page = page.split('#').next().unwrap_or(page);
    format!("{page}#comment-{id}")
}

fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// The Atom document; its ETag is a digest of its bytes.
fn atom(
    forum: &Forum,
    title: &str,
    self_url: &str,
    alternate: Option<&str>,
    entries: &[Entry],
    name_threads: bool,
) -> Feed {
    let mut x = String::with_capacity(
        1024 + entries
            .iter()
            .map(|e| e.html.len() * 2 + 512)
            .sum::<usize>(),
    );
    x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    let _ = writeln!(x, "<title>{}</title>", esc(title));
    let _ = writeln!(x, "<id>{}</id>", esc(self_url));
    let _ = writeln!(
        x,
        "<link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>",
        esc(self_url)
    );
    if let Some(a) = alternate {
        let _ = writeln!(
            x,
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
            esc(a)
        );
    }
    // A feed without entries is as old as its forum; entries are newest first.
    let updated = entries
        .iter()
        .map(|e| e.updated.as_str())
        .max()
        .map(str::to_string)
        .unwrap_or_else(|| rfc3339(forum.created_at.min(now_ms())));
    let _ = writeln!(x, "<updated>{updated}</updated>");
    x.push_str("<generator>Confab</generator>\n");
    for e in entries {
        x.push_str("<entry>\n");
        let _ = writeln!(
            x,
            "<id>urn:confab:{}:comment:{}</id>",
            esc(&forum.name),
            esc(&e.id)
        );
        let what = if name_threads && !e.thread.is_empty() {
            format!("{} on {}", e.author, e.thread)
        } else {
            e.author.clone()
        };
        let _ = writeln!(x, "<title>{}</title>", esc(&what));
        if let Some(l) = &e.link {
            let _ = writeln!(
                x,
                "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
                esc(l)
            );
        }
        let _ = write!(x, "<author><name>{}</name>", esc(&e.author));
        if let Some(u) = e.author_url.as_deref().filter(|u| !u.is_empty()) {
            let _ = write!(x, "<uri>{}</uri>", esc(u));
        }
        x.push_str("</author>\n");
        let _ = writeln!(x, "<published>{}</published>", esc(&e.published));
        let _ = writeln!(x, "<updated>{}</updated>", esc(&e.updated));
        let _ = writeln!(x, "<content type=\"html\">{}</content>", esc(&e.html));
        x.push_str("</entry>\n");
    }
    x.push_str("</feed>\n");
    let digest = Sha256::digest(x.as_bytes());
    let mut etag = String::from("\"a");
    for b in &digest[..12] {
        let _ = write!(etag, "{b:02x}");
    }
    etag.push('"');
    Feed { xml: x, etag }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_comments_replace_the_pages_fragment() {
        assert_eq!(
            comment_link("https://b.example/post#top", "42"),
            "https://b.example/post#comment-42"
        );
        assert_eq!(
            page_url(None, "https://b.example/p"),
            Some("https://b.example/p".into())
        );
        assert_eq!(page_url(None, "post-1"), None);
        assert_eq!(page_url(Some(""), "post-1"), None);
        assert_eq!(page_url(Some("javascript:alert(1)"), "post-1"), None);
    }
}

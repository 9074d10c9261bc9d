//! The import pipeline every format goes through. Two passes, so that a file that cannot be
//! read changes nothing and memory stays bounded whatever the file's size:
//! 1. The file is parsed as a stream by its format's parser, which emits source-neutral
//!    [`Item`]s. Threads (small, few) are kept; each post is appended to a spool file in the
//!    temp directory and only its index entry (ids, thread, time, spool offset: about 100
//!    bytes) stays in memory. Any parse error stops here, before the first write, naming its
//!    line and column (or row).
//! 2. Per thread, posts are ordered parents first, then by time (an export can list replies
//!    before their parents), read back from the spool and written in batches of whole threads
//!    through [`Service::import_batch`] (sanitized, one transaction per batch, cached pages of
//!    every changed thread invalidated and announced to the other nodes).
//!
//! Importing the same file again adds nothing: every imported comment remembers its source id.

use super::{disqus, isso, remark42, wordpress};
use crate::service::Service;
use confab_core::ident::Ident;
use confab_core::model::{Author, CommentStatus};
use confab_core::DomainError;
use confab_store::{ImportComment, ImportThread, Imported};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Comments per write transaction (whole threads: a batch closes once it holds this many).
const BATCH: usize = 5_000;
/// Longest guest name kept (characters); longer ones are cut.
const MAX_NAME: usize = 100;

/// The formats Confab reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// The XML export Disqus mails to a site's owner.
    Disqus,
    /// WordPress' export (WXR 1.1/1.2: Tools → Export).
    WordPress,
    /// Isso's SQLite database file.
    Isso,
    /// A Remark42 backup (JSON lines, gzipped as `remark42 backup` writes it).
    Remark42,
}

impl ImportFormat {
    /// Every format, in the order the dashboard offers them. A new format goes here too
    /// (a test checks that every name `parse_name` takes is listed).
    pub const ALL: &'static [ImportFormat] = &[
        ImportFormat::Disqus,
        ImportFormat::WordPress,
        ImportFormat::Isso,
        ImportFormat::Remark42,
    ];

    /// The name imported comments remember as their source (with their id in it).
    pub fn source(self) -> &'static str {
        match self {
            ImportFormat::Disqus => "disqus",
            ImportFormat::WordPress => "wordpress",
            ImportFormat::Isso => "isso",
            ImportFormat::Remark42 => "remark42",
        }
    }

    pub fn parse_name(name: &str) -> Option<ImportFormat> {
        match name {
            "disqus" => Some(ImportFormat::Disqus),
            "wordpress" => Some(ImportFormat::WordPress),
            "isso" => Some(ImportFormat::Isso),
            "remark42" => Some(ImportFormat::Remark42),
            _ => None,
        }
    }

    /// Parses `input`, emitting every thread and post in file order.
    fn parse(
        self,
        input: &ImportInput,
        emit: &mut dyn FnMut(Item) -> Result<(), String>,
    ) -> Result<(), ImportError> {
        match self {
            ImportFormat::Disqus => {
                disqus::read(input.open()?, emit).map_err(|e| ImportError(e.to_string()))
            }
            ImportFormat::WordPress => {
                wordpress::read(input.open()?, emit).map_err(|e| ImportError(e.to_string()))
            }
            ImportFormat::Remark42 => {
                remark42::read(input.open()?, emit).map_err(|e| ImportError(e.to_string()))
            }
            ImportFormat::Isso => match input {
                ImportInput::Path(p) => isso::read(p, emit).map_err(ImportError),
                ImportInput::Stdin => Err(ImportError(
                    "an Isso database is read from its file, not from standard input".to_string(),
                )),
            },
        }
    }
}

/// Where the export is.
#[derive(Debug, Clone)]
pub enum ImportInput {
    Path(PathBuf),
    Stdin,
}

impl ImportInput {
    pub fn name(&self) -> String {
        match self {
            ImportInput::Path(p) => p.display().to_string(),
            ImportInput::Stdin => "standard input".to_string(),
        }
    }

    /// The input as a byte stream, gunzipped when it starts with gzip's magic bytes.
    pub fn open(&self) -> Result<Box<dyn BufRead + Send>, ImportError> {
        let raw: Box<dyn Read + Send> = match self {
            ImportInput::Stdin => Box::new(std::io::stdin()),
            ImportInput::Path(p) => Box::new(
                std::fs::File::open(p)
                    .map_err(|e| ImportError(format!("opening {}: {e}", p.display())))?,
            ),
        };
        let mut r = BufReader::with_capacity(256 * 1024, raw);
        let gz = r
            .fill_buf()
            .map_err(|e| ImportError(format!("reading {}: {e}", self.name())))?
            .starts_with(&[0x1f, 0x8b]);
        Ok(if gz {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                flate2::bufread::MultiGzDecoder::new(r),
            ))
        } else {
            Box::new(r)
        })
    }
}

/// Why an import stopped (nothing of a file that failed to parse was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError(pub String);

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImportError {}

impl From<std::io::Error> for ImportError {
    fn from(e: std::io::Error) -> Self {
        ImportError(format!("the spool file: {e}"))
    }
}

/// A thread as the source describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceThread {
    /// The source's id of the thread, which posts name.
    pub key: String,
    /// What the thread is found by, best first (an identifier, a link, a `?p=ID` link, ...):
    /// the first one that is a valid ident is the thread's own, the others its aliases.
    pub idents: Vec<String>,
    pub url: Option<String>,
    pub title: String,
    pub created_at: Option<i64>,
    pub closed: bool,
    /// A deleted thread's posts are skipped.
    pub deleted: bool,
}

/// A comment's body as the source keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Body {
    /// Sanitized on the way in.
    Html(String),
    /// Rendered as a posted comment is.
    Markdown(String),
}

/// A comment's status in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceStatus {
    Approved,
    Pending,
    Spam,
    Deleted,
}

/// A post as the source describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourcePost {
    /// The source's id (unique in the file; what imported comments remember).
    pub id: String,
    /// The [`SourceThread::key`] of its thread.
    pub thread: String,
    pub parent: Option<String>,
    pub body: Body,
    pub created_at: i64,
    pub status: SourceStatus,
    /// Guest name; empty becomes "Anonymous".
    pub name: String,
    /// Kept when it is a valid address, never shown.
    pub email: String,
    /// The author's site, kept when it is a valid http(s) URL.
    pub url: String,
}

/// What a parser emits, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Thread(SourceThread),
    Post(SourcePost),
    /// Something of the file left out on purpose (a pingback, ...), counted by its reason.
    Skipped(&'static str),
}

/// Told how far an import is (a terminal's progress bar, the dashboard's import record).
pub trait ImportProgress: Send + Sync {
    /// Pass 1: posts read so far.
    fn reading(&self, _posts: u64) {}
    /// Pass 2 starts: comments to write.
    fn writing(&self, _total: u64) {}
    /// Pass 2: comments written so far.
    fn wrote(&self, _done: u64) {}
}

/// Progress told to no one.
pub struct NoProgress;
impl ImportProgress for NoProgress {}

/// What the first pass keeps of a post.
struct PostIndex {
    id: Box<str>,
    parent: Option<Box<str>>,
    thread: u32,
    created_at: i64,
    offset: u64,
    len: u32,
}

/// The whole import's outcome.
#[derive(Debug, Clone)]
pub struct Summary {
    pub posts_read: u64,
    pub done: Imported,
    /// Posts (or other items) left out, by reason.
    pub skipped: BTreeMap<String, u64>,
    pub seconds: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.done;
        writeln!(
            f,
            "{} posts read and written in {:.2} s",
            self.posts_read, self.seconds
        )?;
        writeln!(
            f,
            "threads: {} created, {} already there",
            d.threads_created, d.threads_existing
        )?;
        writeln!(
            f,
            "comments: {} added, {} imported before (left as they are)",
            d.comments_added, d.comments_present
        )?;
        writeln!(
            f,
            "replies whose parent is not in the export, made top-level: {}",
            d.orphans
        )?;
        writeln!(
            f,
            "thread aliases held by another thread, not added: {}",
            d.aliases_taken
        )?;
        if self.skipped.is_empty() {
            write!(f, "skipped: none")
        } else {
            let parts: Vec<String> = self
                .skipped
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect();
            write!(f, "skipped: {}", parts.join(", "))
        }
    }
}

const SKIP_UNKNOWN_THREAD: &str = "posts of unknown threads";
const SKIP_THREAD_DELETED: &str = "posts of deleted threads";
const SKIP_NO_IDENT: &str = "posts of threads with no usable identifier or link";
const SKIP_DUPLICATE: &str = "repeated post ids";

/// A thread's idents: the valid ones of its candidates, in order, without repeats.
fn thread_idents(t: &SourceThread) -> Vec<Ident> {
    let mut out: Vec<Ident> = Vec::new();
    for raw in &t.idents {
        if raw.trim().is_empty() {
            continue;
        }
        if let Ok(i) = Ident::parse(raw) {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

fn guest(p: &SourcePost) -> Author {
    let name: String = p.name.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    let name = if name.is_empty() { "Anonymous" } else { name };
    let name: String = name.chars().take(MAX_NAME).collect();
    let email = confab_core::input::Email::parse(&p.email)
        .ok()
        .map(|e| e.as_str().to_string());
    let url = confab_core::input::WebUrl::parse(&p.url)
        .ok()
        .map(|u| u.as_str().to_string());
    Author::Guest { name, email, url }
}

fn status(s: SourceStatus) -> CommentStatus {
    match s {
        SourceStatus::Approved => CommentStatus::Approved,
        SourceStatus::Pending => CommentStatus::Pending,
        SourceStatus::Spam => CommentStatus::Spam,
        SourceStatus::Deleted => CommentStatus::Deleted,
    }
}

/// Parents before their replies, otherwise oldest first: a heap of the posts whose parent is
/// placed (or not in this thread), by (time, file order). Posts caught in a parent cycle come
/// last, in time order (the store makes them top-level).
fn tree_order(posts: &[PostIndex], members: &[u32]) -> Vec<u32> {
    let here: HashMap<&str, u32> = members
        .iter()
        .map(|&i| (&*posts[i as usize].id, i))
        .collect();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut heap = BinaryHeap::new();
    for &i in members {
        let p = &posts[i as usize];
        match p.parent.as_deref().and_then(|pid| here.get(pid)) {
            Some(&parent) if parent != i => children.entry(parent).or_default().push(i),
            _ => heap.push(Reverse((p.created_at, i))),
        }
    }
    let mut out = Vec::with_capacity(members.len());
    let mut placed = HashMap::<u32, ()>::with_capacity(members.len());
    while let Some(Reverse((_, i))) = heap.pop() {
        if placed.insert(i, ()).is_some() {
            continue;
        }
        out.push(i);
        for &c in children.get(&i).into_iter().flatten() {
            heap.push(Reverse((posts[c as usize].created_at, c)));
        }
    }
    if out.len() < members.len() {
        let mut rest: Vec<u32> = members
            .iter()
            .copied()
            .filter(|i| !placed.contains_key(i))
            .collect();
        rest.sort_by_key(|&i| (posts[i as usize].created_at, i));
        out.extend(rest);
    }
    out
}

impl Service {
    /// Imports one file into `forum`: parses all of it into a spool (a file that fails to
    /// parse changes nothing), then writes whole threads in batches.
    pub async fn import(
        self: &Arc<Self>,
        forum: &str,
        format: ImportFormat,
        input: ImportInput,
        progress: Arc<dyn ImportProgress>,
    ) -> Result<Summary, ImportError> {
        let started = Instant::now();
        self.forum(forum).map_err(domain)?;

        // Pass 1 (blocking: a parse is CPU work): threads kept, posts spooled.
        let pr = progress.clone();
        let parsed = tokio::task::spawn_blocking(move || spool(format, &input, &*pr))
            .await
            .map_err(|e| ImportError(format!("the parser stopped: {e}")))??;
        let Spooled {
            threads,
            posts,
            mut spool,
            mut skipped,
        } = parsed;

        // Which posts go where, and what is left out.
        let mut by_thread: Vec<Vec<u32>> = vec![Vec::new(); threads.len()];
        let mut seen: HashMap<&str, ()> = HashMap::with_capacity(posts.len());
        let idents: Vec<Vec<Ident>> = threads.iter().map(thread_idents).collect();
        let mut skip = |why: &str| *skipped.entry(why.to_string()).or_default() += 1;
        for (i, p) in posts.iter().enumerate() {
            if seen.insert(&p.id, ()).is_some() {
                skip(SKIP_DUPLICATE);
                continue;
            }
            let Some(t) = threads.get(p.thread as usize) else {
                skip(SKIP_UNKNOWN_THREAD);
                continue;
            };
            if t.deleted {
                skip(SKIP_THREAD_DELETED);
            } else if idents[p.thread as usize].is_empty() {
                skip(SKIP_NO_IDENT);
            } else {
                by_thread[p.thread as usize].push(i as u32);
            }
        }
        drop(seen);

        // Pass 2: whole threads, parents first, in batches.
        let total: u64 = by_thread.iter().map(|v| v.len() as u64).sum();
        progress.writing(total);
        let mut done = Imported::default();
        let mut written = 0u64;
        let mut batch: Vec<ImportThread> = Vec::new();
        let mut in_batch = 0usize;
        let mut record = Vec::new();
        let source = format.source();
        for (ti, members) in by_thread.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let t = &threads[ti];
            let mut ids = idents[ti].clone();
            let ident = ids.remove(0);
            let mut comments = Vec::with_capacity(members.len());
            for i in tree_order(&posts, members) {
                let ix = &posts[i as usize];
                record.resize(ix.len as usize, 0);
                spool.seek(SeekFrom::Start(ix.offset))?;
                spool.read_exact(&mut record)?;
                let p: SourcePost = serde_json::from_slice(&record)
                    .map_err(|e| ImportError(format!("reading the spool: {e}")))?;
                let author = guest(&p);
                let (body_md, body_html) = match p.body {
                    Body::Html(h) => (String::new(), h),
                    Body::Markdown(m) => (m, String::new()),
                };
                comments.push(ImportComment {
                    source_id: p.id,
                    parent_source_id: p.parent,
                    author,
                    status: status(p.status),
                    body_md,
                    body_html,
                    created_at: p.created_at,
                });
            }
            in_batch += comments.len();
            batch.push(ImportThread {
                ident,
                aliases: ids,
                url: t.url.clone().filter(|u| !u.is_empty()),
                title: (!t.title.is_empty()).then(|| t.title.clone()),
                closed: t.closed,
                created_at: t
                    .created_at
                    .or_else(|| comments.iter().map(|c| c.created_at).min())
                    .unwrap_or_else(confab_core::now_ms),
                comments,
            });
            if in_batch >= BATCH {
                done.add(
                    self.write_batch(forum, source, std::mem::take(&mut batch))
                        .await?,
                );
                written += in_batch as u64;
                progress.wrote(written);
                in_batch = 0;
            }
        }
        if !batch.is_empty() {
            done.add(self.write_batch(forum, source, batch).await?);
            written += in_batch as u64;
            progress.wrote(written);
        }
        Ok(Summary {
            posts_read: posts.len() as u64,
            done,
            skipped,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    async fn write_batch(
        self: &Arc<Self>,
        forum: &str,
        source: &str,
        batch: Vec<ImportThread>,
    ) -> Result<Imported, ImportError> {
        let mut r = self
            .import_batch(forum, source, batch)
            .await
            .map_err(|e| ImportError(format!("writing imported comments: {}", e.message)))?;
        // Only the count is kept: the changed threads were invalidated and announced.
        r.changed.clear();
        Ok(r)
    }
}

fn domain(e: DomainError) -> ImportError {
    ImportError(e.message)
}

/// What pass 1 leaves.
struct Spooled {
    threads: Vec<SourceThread>,
    posts: Vec<PostIndex>,
    spool: std::fs::File,
    skipped: BTreeMap<String, u64>,
}

/// Pass 1: the whole file parsed, threads kept, posts in the spool.
fn spool(
    format: ImportFormat,
    input: &ImportInput,
    progress: &dyn ImportProgress,
) -> Result<Spooled, ImportError> {
    let file = tempfile::tempfile()
        .map_err(|e| ImportError(format!("creating a spool file in the temp directory: {e}")))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut threads: Vec<SourceThread> = Vec::new();
    let mut thread_ix: HashMap<String, u32> = HashMap::new();
    let mut posts: Vec<PostIndex> = Vec::new();
    let mut pending_thread: Vec<(usize, String)> = Vec::new();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut offset = 0u64;
    let mut line = Vec::new();
    format
        .parse(input, &mut |item| {
            match item {
                Item::Thread(t) => {
                    let ix = threads.len() as u32;
                    if thread_ix.insert(t.key.clone(), ix).is_some() {
                        return Err(format!("thread {} appears twice", t.key));
                    }
                    threads.push(t);
                }
                Item::Skipped(why) => *skipped.entry(why.to_string()).or_default() += 1,
                Item::Post(p) => {
                    line.clear();
                    serde_json::to_writer(&mut line, &p).map_err(|e| e.to_string())?;
                    out.write_all(&line)
                        .map_err(|e| format!("writing the spool: {e}"))?;
                    let thread = thread_ix.get(&p.thread).copied().unwrap_or(u32::MAX);
                    if thread == u32::MAX {
                        pending_thread.push((posts.len(), p.thread.clone()));
                    }
                    posts.push(PostIndex {
                        id: p.id.into_boxed_str(),
                        parent: p.parent.map(String::into_boxed_str),
                        thread,
                        created_at: p.created_at,
                        offset,
                        len: line.len() as u32,
                    });
                    offset += line.len() as u64;
                    if posts.len().is_multiple_of(10_000) {
                        progress.reading(posts.len() as u64);
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| ImportError(format!("{}: {e} (nothing was imported)", input.name())))?;
    progress.reading(posts.len() as u64);
    // Threads listed after their posts.
    for (i, t) in pending_thread {
        if let Some(&ix) = thread_ix.get(&t) {
            posts[i].thread = ix;
        }
    }
    let spool = out
        .into_inner()
        .map_err(|e| ImportError(format!("writing the spool: {e}")))?;
    Ok(Spooled {
        threads,
        posts,
        spool,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(id: &str, parent: Option<&str>, at: i64) -> PostIndex {
        PostIndex {
            id: id.into(),
            parent: parent.map(Into::into),
            thread: 0,
            created_at: at,
            offset: 0,
            len: 0,
        }
    }

    #[test]
    fn parents_come_first_then_time() {
        // A reply listed (and dated) before its parent, a cycle, a missing parent.
        let posts = vec![
            ix("r", Some("p"), 1),
            ix("p", None, 5),
            ix("q", None, 3),
            ix("x", Some("y"), 2),
            ix("y", Some("x"), 2),
            ix("o", Some("gone"), 4),
        ];
        let order: Vec<&str> = tree_order(&posts, &[0, 1, 2, 3, 4, 5])
            .into_iter()
            .map(|i| &*posts[i as usize].id)
            .collect();
        assert_eq!(order, ["q", "o", "p", "r", "x", "y"]);
    }

    #[test]
    fn idents_identifier_first_then_link() {
        let t = SourceThread {
            idents: vec!["post-42".into(), "https://e.com/a/?utm_source=x".into()],
            ..Default::default()
        };
        let ids: Vec<String> = thread_idents(&t)
            .iter()
            .map(|i| i.as_str().to_string())
            .collect();
        assert_eq!(ids, ["post-42", "/a"]);
        let t = SourceThread {
            idents: vec!["".into(), "https://e.com/a".into()],
            ..Default::default()
        };
        assert_eq!(thread_idents(&t).len(), 1);
        assert!(thread_idents(&SourceThread::default()).is_empty());
    }
}

//! `confab import disqus FILE --forum F`: comments from another system into a forum.
//!
//! Two passes, so that a file that cannot be read changes nothing and memory stays bounded
//! whatever the file's size:
//! 1. The file is parsed as a stream (`disqus.rs`). Threads (small, few) are kept; each post is
//!    appended to a spool file in the temp directory and only its index entry (ids, thread,
//!    time, spool offset: about 100 bytes) stays in memory. Any parse error stops here, before
//!    the first write, naming its line and column.
//! 2. Per thread, posts are ordered parents first, then by time (an export lists replies before
//!    their parents), read back from the spool and written in batches of whole threads through
//!    the service (`Service::import_batch`: sanitized, one transaction per batch, cached pages
//!    of every changed thread invalidated and announced to the other nodes).
//!
//! Importing the same file again adds nothing: every imported comment remembers its source id.

pub mod disqus;

use anyhow::{anyhow, bail, Context, Result};
use confab_core::ident::Ident;
use confab_core::model::{Author, CommentStatus};
use confab_server::service::Service;
use confab_store::{ImportComment, ImportThread, Imported};
use disqus::{DisqusPost, DisqusThread, Item};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Comments per write transaction (whole threads: a batch closes once it holds this many).
const BATCH: usize = 5_000;
const SOURCE_DISQUS: &str = "disqus";
/// Longest guest name kept (characters); longer ones are cut.
const MAX_NAME: usize = 100;

#[derive(clap::Subcommand)]
pub enum ImportCmd {
    /// A Disqus export (.xml, .xml.gz, or - for standard input).
    Disqus {
        file: String,
        /// The forum to import into (created beforehand with `confab admin create-forum`).
        #[arg(long)]
        forum: String,
    },
}

/// Opens the input: a path or `-` (stdin), gunzipped when it starts with gzip's magic bytes.
fn open_input(file: &str) -> Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = if file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(Path::new(file)).with_context(|| format!("opening {file}"))?)
    };
    let mut r = BufReader::with_capacity(256 * 1024, raw);
    let gz = r.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(r),
        ))
    } else {
        Box::new(r)
    })
}

/// What the first pass keeps of a post.
struct PostIndex {
    dsq_id: Box<str>,
    parent: Option<Box<str>>,
    thread: u32,
    created_at: i64,
    offset: u64,
    len: u32,
}

/// Posts left out, by reason.
#[derive(Default, Debug)]
pub struct Skipped {
    pub unknown_thread: u64,
    pub thread_deleted: u64,
    pub thread_without_ident: u64,
    pub duplicate_id: u64,
}

/// The whole import's outcome.
#[derive(Debug)]
pub struct Summary {
    pub posts_read: u64,
    pub done: Imported,
    pub skipped: Skipped,
    pub seconds: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.done;
        let s = &self.skipped;
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
        write!(
            f,
            "skipped posts: {} of unknown threads, {} of deleted threads, {} of threads with neither a usable <id> nor <link>, {} repeated post ids",
            s.unknown_thread, s.thread_deleted, s.thread_without_ident, s.duplicate_id
        )
    }
}

/// A thread's idents: its identifier (when set and valid) first, then its link.
fn thread_idents(t: &DisqusThread) -> Vec<Ident> {
    let mut out: Vec<Ident> = Vec::new();
    for raw in [&t.ident, &t.link] {
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

fn guest(p: &DisqusPost) -> Author {
    let name = [&p.name, &p.username]
        .into_iter()
        .map(|s| s.chars().filter(|c| !c.is_control()).collect::<String>())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "Anonymous".to_string());
    let name: String = name.chars().take(MAX_NAME).collect();
    let email = confab_core::input::Email::parse(&p.email)
        .ok()
        .map(|e| e.as_str().to_string());
    Author::Guest {
        name,
        email,
        url: None,
    }
}

fn status(p: &DisqusPost) -> CommentStatus {
    if p.deleted {
        CommentStatus::Deleted
    } else if p.spam {
        CommentStatus::Spam
    } else {
        CommentStatus::Approved
    }
}

/// Parents before their replies, otherwise oldest first: a heap of the posts whose parent is
/// placed (or not in this thread), by (time, file order). Posts caught in a parent cycle come
/// last, in time order (the store makes them top-level).
fn tree_order(posts: &[PostIndex], members: &[u32]) -> Vec<u32> {
    let here: HashMap<&str, u32> = members
        .iter()
        .map(|&i| (&*posts[i as usize].dsq_id, i))
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

/// `confab import disqus`: parse the whole file into the spool, then write it.
pub async fn disqus(svc: &Arc<Service>, file: &str, forum: &str) -> Result<Summary> {
    let started = Instant::now();
    svc.forum(forum).map_err(|e| anyhow!("{e}"))?;
    let input = open_input(file)?;
    let progress = indicatif::ProgressBar::new_spinner();
    progress.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    progress.set_message("reading the export");

    // Pass 1 (blocking: a parse is CPU work): threads kept, posts spooled.
    let pb = progress.clone();
    let name = if file == "-" {
        "standard input".to_string()
    } else {
        file.to_string()
    };
    let parsed = tokio::task::spawn_blocking(move || -> Result<_> {
        let spool = tempfile::tempfile().context("creating a spool file in the temp directory")?;
        let mut out = BufWriter::with_capacity(1 << 20, spool);
        let mut threads: Vec<DisqusThread> = Vec::new();
        let mut thread_ix: HashMap<String, u32> = HashMap::new();
        let mut posts: Vec<PostIndex> = Vec::new();
        let mut pending_thread: Vec<(usize, String)> = Vec::new();
        let mut offset = 0u64;
        let mut line = Vec::new();
        disqus::parse(input, |item| {
            match item {
                Item::Thread(t) => {
                    let ix = threads.len() as u32;
                    if thread_ix.insert(t.dsq_id.clone(), ix).is_some() {
                        return Err(format!("thread {} appears twice", t.dsq_id));
                    }
                    threads.push(t);
                }
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
                        dsq_id: p.dsq_id.into_boxed_str(),
                        parent: p.parent.map(String::into_boxed_str),
                        thread,
                        created_at: p.created_at,
                        offset,
                        len: line.len() as u32,
                    });
                    offset += line.len() as u64;
                    if posts.len().is_multiple_of(10_000) {
                        pb.set_message(format!("reading the export: {} posts", posts.len()));
                        pb.tick();
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| anyhow!("{name}: {e} (nothing was imported)"))?;
        // Threads listed after their posts.
        for (i, t) in pending_thread {
            if let Some(&ix) = thread_ix.get(&t) {
                posts[i].thread = ix;
            }
        }
        let spool = out
            .into_inner()
            .map_err(|e| anyhow!("writing the spool: {e}"))?;
        Ok((threads, posts, spool))
    })
    .await??;
    let (threads, posts, mut spool) = parsed;

    // Which posts go where, and what is left out.
    let mut skipped = Skipped::default();
    let mut by_thread: Vec<Vec<u32>> = vec![Vec::new(); threads.len()];
    let mut seen: HashMap<&str, ()> = HashMap::with_capacity(posts.len());
    let idents: Vec<Vec<Ident>> = threads.iter().map(thread_idents).collect();
    for (i, p) in posts.iter().enumerate() {
        if seen.insert(&p.dsq_id, ()).is_some() {
            skipped.duplicate_id += 1;
            continue;
        }
        let Some(t) = threads.get(p.thread as usize) else {
            skipped.unknown_thread += 1;
            continue;
        };
        if t.deleted {
            skipped.thread_deleted += 1;
        } else if idents[p.thread as usize].is_empty() {
            skipped.thread_without_ident += 1;
        } else {
            by_thread[p.thread as usize].push(i as u32);
        }
    }
    drop(seen);

    // Pass 2: whole threads, parents first, in batches.
    let total: u64 = by_thread.iter().map(|v| v.len() as u64).sum();
    progress.set_length(total);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} importing [{bar:40}] {pos}/{len} comments ({per_sec}, {eta} left)",
        )
        .map_err(|e| anyhow!("{e}"))?
        .progress_chars("=> "),
    );
    let mut done = Imported::default();
    let mut batch: Vec<ImportThread> = Vec::new();
    let mut in_batch = 0usize;
    let mut record = Vec::new();
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
            let p: DisqusPost = serde_json::from_slice(&record).context("reading the spool")?;
            comments.push(ImportComment {
                source_id: p.dsq_id.clone(),
                parent_source_id: p.parent.clone(),
                author: guest(&p),
                status: status(&p),
                body_md: String::new(),
                body_html: p.message,
                created_at: p.created_at,
            });
        }
        in_batch += comments.len();
        batch.push(ImportThread {
            ident,
            aliases: ids,
            url: (!t.link.is_empty()).then(|| t.link.clone()),
            title: (!t.title.is_empty()).then(|| t.title.clone()),
            closed: t.closed,
            created_at: t
                .created_at
                .or_else(|| comments.iter().map(|c| c.created_at).min())
                .unwrap_or_else(confab_core::now_ms),
            comments,
        });
        if in_batch >= BATCH {
            done.add(write(svc, forum, std::mem::take(&mut batch)).await?);
            progress.inc(in_batch as u64);
            in_batch = 0;
        }
    }
    if !batch.is_empty() {
        done.add(write(svc, forum, batch).await?);
        progress.inc(in_batch as u64);
    }
    progress.finish_and_clear();
    Ok(Summary {
        posts_read: posts.len() as u64,
        done,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn write(svc: &Arc<Service>, forum: &str, batch: Vec<ImportThread>) -> Result<Imported> {
    let mut r = svc
        .import_batch(forum, SOURCE_DISQUS, batch)
        .await
        .map_err(|e| anyhow!("writing imported comments: {e}"))?;
    // Only the count is kept: the changed threads were invalidated and announced.
    r.changed.clear();
    Ok(r)
}

/// Runs an import command (the store opened by the caller, as `confab admin` does).
pub async fn run(svc: &Arc<Service>, cmd: ImportCmd) -> Result<()> {
    match cmd {
        ImportCmd::Disqus { file, forum } => {
            let summary = disqus(svc, &file, &forum).await?;
            println!("{summary}");
            if summary.posts_read == 0 {
                bail!("the export holds no posts");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(id: &str, parent: Option<&str>, at: i64) -> PostIndex {
        PostIndex {
            dsq_id: id.into(),
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
            .map(|i| &*posts[i as usize].dsq_id)
            .collect();
        assert_eq!(order, ["q", "o", "p", "r", "x", "y"]);
    }

    #[test]
    fn idents_identifier_first_then_link() {
        let t = DisqusThread {
            ident: "post-42".into(),
            link: "https://e.com/a/?utm_source=x".into(),
            ..Default::default()
        };
        let ids: Vec<String> = thread_idents(&t)
            .iter()
            .map(|i| i.as_str().to_string())
            .collect();
        assert_eq!(ids, ["post-42", "/a"]);
        let t = DisqusThread {
            link: "https://e.com/a".into(),
            ..Default::default()
        };
        assert_eq!(thread_idents(&t).len(), 1);
        assert!(thread_idents(&DisqusThread::default()).is_empty());
    }
}

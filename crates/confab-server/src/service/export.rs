//! Exports (`confab export`) and backups (`confab backup`).
//!
//! An export reads the forum through [`confab_store::ExportStore`] in keyset pages (threads,
//! then comments, then imported comments' source ids), writes each page as it is read and
//! holds nothing of the forum but the ids of its threads (the Disqus format drops a comment
//! whose thread was created after the threads were read). Two formats:
//!
//! - `disqus`: the XML Disqus exports (what `confab import disqus` reads), for moving a forum
//!   to another Confab or to another system. What it keeps, and what it cannot:
//!   - a thread: its ident as `<id>`, its url as `<link>`, title, creation time, closed. Its
//!     aliases have no place in the format (the JSON export keeps them);
//!   - an approved comment: visible. Spam: `<isSpam>`. A **pending** comment is exported as
//!     spam too: the format has no "waiting for a moderator", and either other choice would
//!     publish it; as spam it stays out of sight, and moderators find it in their spam queue
//!     after an import, where they can approve it;
//!   - a deleted comment: only when a reply answers it that is not deleted, or is deleted and
//!     answered itself ([`ExportComment::has_replies`]: so every kept comment's parent is kept
//!     and the tree survives), with `<isDeleted>`, and neither its text nor its author (Confab
//!     never shows them again, so an export does not either). Other deleted comments are left
//!     out;
//!   - the message is the rendered, sanitized HTML (in CDATA, split around any `]]>`); the
//!     author is the guest's name and e-mail address, or the account's display name, e-mail
//!     address and username. Votes, edit times, guests' site URLs and the markdown source
//!     have no place in the format.
//! - `json`: JSON lines of everything the store holds of the forum, for backups (the README's
//!   "Backups and export" describes the lines).
//!
//! A backup is the store's ([`confab_store::ExportStore::backup_into`]): the embedded SQLite
//! file copied with `VACUUM INTO` while the server runs.

use super::Service;
use confab_core::id::{AccountId, CommentId, ThreadId};
use confab_core::model::{Account, Author, CommentStatus, Forum, Thread};
use confab_core::DomainError;
use confab_store::{ExportComment, ExportThread, ReadFrom};
use quick_xml::events::{BytesCData, BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde_json::json;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Rows read per store call.
const PAGE: usize = 500;

/// The formats Confab writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The XML a Disqus export is (what `confab import disqus` reads).
    Disqus,
    /// JSON lines of everything the forum holds.
    Json,
}

impl ExportFormat {
    pub fn parse_name(name: &str) -> Option<ExportFormat> {
        match name {
            "disqus" => Some(ExportFormat::Disqus),
            "json" => Some(ExportFormat::Json),
            _ => None,
        }
    }
}

/// Why an export stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportError(pub String);

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExportError {}

impl From<DomainError> for ExportError {
    fn from(e: DomainError) -> Self {
        ExportError(match e.code {
            confab_core::ErrorCode::NotFound => e.message,
            _ => e.to_string(),
        })
    }
}

fn io(e: std::io::Error) -> ExportError {
    ExportError(format!("writing the export: {e}"))
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    pub threads: u64,
    pub comments: u64,
    /// Comments the format leaves out (Disqus: deleted ones no kept comment answers).
    pub left_out: u64,
    /// Imported comments' source ids (JSON).
    pub sources: u64,
    pub seconds: f64,
}

impl std::fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exported {} threads and {} comments in {:.2} s",
            self.threads, self.comments, self.seconds
        )?;
        if self.left_out > 0 {
            write!(
                f,
                "; left out {} deleted comments no kept comment answers",
                self.left_out
            )?;
        }
        if self.sources > 0 {
            write!(f, "; {} source ids of imported comments", self.sources)?;
        }
        Ok(())
    }
}

/// A copy of the embedded database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The output, written off the async threads a page at a time.
struct Sink<W> {
    out: Option<W>,
}

impl<W: Write + Send + 'static> Sink<W> {
    async fn write(&mut self, bytes: Vec<u8>) -> Result<(), ExportError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut out = self
            .out
            .take()
            .ok_or_else(|| ExportError("the output failed before".to_string()))?;
        let out = tokio::task::spawn_blocking(move || out.write_all(&bytes).map(|_| out))
            .await
            .map_err(|e| ExportError(format!("the writer stopped: {e}")))?
            .map_err(io)?;
        self.out = Some(out);
        Ok(())
    }

    async fn finish(mut self) -> Result<W, ExportError> {
        let mut out = self
            .out
            .take()
            .ok_or_else(|| ExportError("the output failed before".to_string()))?;
        tokio::task::spawn_blocking(move || out.flush().map(|_| out))
            .await
            .map_err(|e| ExportError(format!("the writer stopped: {e}")))?
            .map_err(io)
    }
}

// ---------------------------------------------------------------- Disqus XML

/// `s` without the characters XML 1.0 cannot carry (control characters but tab, newline and
/// carriage return; U+FFFE and U+FFFF).
fn xml_safe(s: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    if s.chars().any(bad) {
        Cow::Owned(s.chars().filter(|c| !bad(*c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// A Disqus time: RFC 3339 in UTC, with milliseconds only when there are some
/// (`2019-03-01T10:00:00Z`, `2019-03-01T10:00:00.250Z`).
pub fn disqus_time(ms: i64) -> String {
    let t = confab_core::rfc3339(ms);
    match t.strip_suffix(".000Z") {
        Some(whole) => format!("{whole}Z"),
        None => t,
    }
}

type Xml = Writer<Vec<u8>>;

fn text_el(w: &mut Xml, name: &str, value: &str) -> std::io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(&xml_safe(value)))?;
    Ok(())
}

fn bool_el(w: &mut Xml, name: &str, value: bool) -> std::io::Result<()> {
    text_el(w, name, if value { "true" } else { "false" })
}

fn ref_el(w: &mut Xml, name: &str, id: i64) -> std::io::Result<()> {
    w.create_element(name)
        .with_attribute(("dsq:id", id.to_string().as_str()))
        .write_empty()?;
    Ok(())
}

/// `html` as CDATA sections: one, or several split around each `]]>` (which would end a
/// section), so a reader joins them back into `html`.
pub fn write_cdata(w: &mut Xml, html: &str) -> std::io::Result<()> {
    for part in BytesCData::escaped(&xml_safe(html)) {
        w.write_event(Event::CData(part))?;
    }
    Ok(())
}

fn disqus_head(w: &mut Xml, forum: &Forum) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    w.write_event(Event::Start(BytesStart::new("disqus").with_attributes([
        ("xmlns", "http://disqus.com"),
        ("xmlns:dsq", "http://disqus.com/disqus-internals"),
    ])))?;
    w.create_element("category")
        .with_attribute(("dsq:id", "1"))
        .write_inner_content(|w| {
            text_el(w, "forum", &forum.name)?;
            text_el(w, "title", "General")?;
            bool_el(w, "isDefault", true)
        })?;
    Ok(())
}

fn disqus_thread(w: &mut Xml, forum: &Forum, t: &Thread) -> std::io::Result<()> {
    w.create_element("thread")
        .with_attribute(("dsq:id", t.id.to_string().as_str()))
        .write_inner_content(|w| {
            text_el(w, "id", t.ident.as_str())?;
            text_el(w, "forum", &forum.name)?;
            ref_el(w, "category", 1)?;
            text_el(w, "link", t.url.as_deref().unwrap_or(""))?;
            text_el(w, "title", t.title.as_deref().unwrap_or(""))?;
            text_el(w, "createdAt", &disqus_time(t.created_at))?;
            bool_el(w, "isClosed", t.closed)?;
            bool_el(w, "isDeleted", false)
        })?;
    Ok(())
}

/// One comment as a Disqus `<post>` (see the module's docs for what each status becomes).
fn disqus_post(
    w: &mut Xml,
    e: &ExportComment,
    accounts: &HashMap<AccountId, Arc<Account>>,
) -> std::io::Result<()> {
    let c = &e.comment;
    let deleted = c.status == CommentStatus::Deleted;
    w.create_element("post")
        .with_attribute(("dsq:id", c.id.to_string().as_str()))
        .write_inner_content(|w| {
            w.write_event(Event::Start(BytesStart::new("message")))?;
            write_cdata(w, if deleted { "" } else { &c.body_html })?;
            w.write_event(Event::End(BytesEnd::new("message")))?;
            text_el(w, "createdAt", &disqus_time(c.created_at))?;
            bool_el(w, "isDeleted", deleted)?;
            bool_el(
                w,
                "isSpam",
                matches!(c.status, CommentStatus::Spam | CommentStatus::Pending),
            )?;
            w.create_element("author").write_inner_content(|w| {
                match (&c.author, deleted) {
                    (_, true) => {
                        text_el(w, "name", "")?;
                        bool_el(w, "isAnonymous", true)?;
                    }
                    (Author::Guest { name, email, .. }, false) => {
                        text_el(w, "name", name)?;
                        if let Some(m) = email {
                            text_el(w, "email", m)?;
                        }
                        bool_el(w, "isAnonymous", true)?;
                    }
                    (Author::Account(id), false) => match accounts.get(id) {
                        Some(a) => {
                            text_el(w, "name", &a.display_name)?;
                            if let Some(m) = &a.email {
                                text_el(w, "email", m)?;
                            }
                            bool_el(w, "isAnonymous", false)?;
                            text_el(w, "username", &a.username)?;
                        }
                        None => {
                            text_el(w, "name", "[unknown]")?;
                            bool_el(w, "isAnonymous", false)?;
                        }
                    },
                }
                Ok(())
            })?;
            ref_el(w, "thread", c.thread_id.0)?;
            if let Some(p) = c.parent_id {
                ref_el(w, "parent", p.0)?;
            }
            Ok(())
        })?;
    Ok(())
}

// ---------------------------------------------------------------- JSON lines

fn json_line(buf: &mut Vec<u8>, v: &serde_json::Value) -> Result<(), ExportError> {
    serde_json::to_writer(&mut *buf, v).map_err(|e| ExportError(format!("encoding: {e}")))?;
    buf.push(b'\n');
    Ok(())
}

fn json_forum(f: &Forum) -> serde_json::Value {
    json!({
        "type": "forum",
        "format": "confab-export",
        "version": 1,
        "exported_at": confab_core::now_ms(),
        "id": f.id.0.to_string(),
        "name": f.name,
        "shard": f.shard.get(),
        "created_at": f.created_at,
        "settings": f.settings,
        // The secret itself stays out of files that travel.
        "sso_secret_set": f.sso_secret.is_some(),
    })
}

fn json_thread(t: &ExportThread) -> serde_json::Value {
    let th = &t.thread;
    json!({
        "type": "thread",
        "id": th.id,
        "ident": th.ident.as_str(),
        "aliases": t.aliases.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "url": th.url,
        "title": th.title,
        "closed": th.closed,
        "comment_count": th.comment_count,
        "hidden_count": th.hidden_count,
        "seq": th.seq,
        "created_at": th.created_at,
    })
}

fn json_comment(
    e: &ExportComment,
    accounts: &HashMap<AccountId, Arc<Account>>,
) -> serde_json::Value {
    let c = &e.comment;
    let author = match &c.author {
        Author::Guest { name, email, url } => json!({
            "guest": {"name": name, "email": email, "url": url}
        }),
        Author::Account(id) => json!({
            "account": {"id": id, "username": accounts.get(id).map(|a| a.username.clone())}
        }),
    };
    json!({
        "type": "comment",
        "id": c.id,
        "thread": c.thread_id,
        "parent": c.parent_id,
        "depth": c.depth,
        "author": author,
        "anon_id": c.anon_id,
        "body_md": c.body_md,
        "body_html": c.body_html,
        "status": c.status.as_str(),
        "likes": c.likes,
        "dislikes": c.dislikes,
        "score": e.score,
        "reply_count": c.reply_count,
        "flag_count": c.flag_count,
        "created_at": c.created_at,
        "edited_at": c.edited_at,
        "ip_hash": c.ip_hash,
    })
}

impl Service {
    /// Writes every thread and comment of `forum` to `out` in `format`, a page at a time, and
    /// gives `out` back (flushed) with what was written.
    pub async fn export<W: Write + Send + 'static>(
        self: &Arc<Self>,
        forum: &str,
        format: ExportFormat,
        out: W,
    ) -> Result<(W, ExportSummary), ExportError> {
        let started = Instant::now();
        let forum = self.forum(forum)?;
        let mut sink = Sink { out: Some(out) };
        let mut sum = ExportSummary::default();
        let mut xml = Writer::new_with_indent(Vec::new(), b' ', 2);
        let mut buf = Vec::new();
        match format {
            ExportFormat::Disqus => disqus_head(&mut xml, &forum).map_err(io)?,
            ExportFormat::Json => json_line(&mut buf, &json_forum(&forum))?,
        }

        // Threads.
        let mut threads: HashSet<ThreadId> = HashSet::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .export_threads(&forum, after, PAGE, ReadFrom::Replica)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.thread.id);
            for t in &page {
                match format {
                    ExportFormat::Disqus => {
                        disqus_thread(&mut xml, &forum, &t.thread).map_err(io)?;
                        threads.insert(t.thread.id);
                    }
                    ExportFormat::Json => json_line(&mut buf, &json_thread(t))?,
                }
                sum.threads += 1;
            }
            sink.write(std::mem::take(xml.get_mut())).await?;
            sink.write(std::mem::take(&mut buf)).await?;
            if page.len() < PAGE {
                break;
            }
        }

        // Comments.
        let mut after: Option<CommentId> = None;
        loop {
            let page = self
                .store
                .export_comments(&forum, after, PAGE, ReadFrom::Replica)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.comment.id);
            let mut ids: Vec<AccountId> =
                page.iter().filter_map(|e| e.comment.account_id()).collect();
            ids.sort_unstable();
            ids.dedup();
            let accounts = self.accounts_by_id(&ids).await?;
            for e in &page {
                match format {
                    ExportFormat::Disqus => {
                        let kept = threads.contains(&e.comment.thread_id)
                            && (e.comment.status != CommentStatus::Deleted || e.has_replies);
                        if !kept {
                            sum.left_out += 1;
                            continue;
                        }
                        disqus_post(&mut xml, e, &accounts).map_err(io)?;
                    }
                    ExportFormat::Json => json_line(&mut buf, &json_comment(e, &accounts))?,
                }
                sum.comments += 1;
            }
            sink.write(std::mem::take(xml.get_mut())).await?;
            sink.write(std::mem::take(&mut buf)).await?;
            if page.len() < PAGE {
                break;
            }
        }

        match format {
            ExportFormat::Disqus => {
                xml.write_event(Event::End(BytesEnd::new("disqus")))
                    .map_err(io)?;
                xml.get_mut().push(b'\n');
            }
            ExportFormat::Json => {
                // Where imported comments came from, by (source, source id).
                let mut after = None;
                loop {
                    let page = self
                        .store
                        .export_sources(&forum, after.clone(), PAGE, ReadFrom::Replica)
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = Some((last.source.clone(), last.source_id.clone()));
                    for s in &page {
                        json_line(
                            &mut buf,
                            &json!({"type": "source", "comment": s.comment, "source": s.source, "source_id": s.source_id}),
                        )?;
                        sum.sources += 1;
                    }
                    sink.write(std::mem::take(&mut buf)).await?;
                    if page.len() < PAGE {
                        break;
                    }
                }
                json_line(
                    &mut buf,
                    &json!({"type": "end", "threads": sum.threads, "comments": sum.comments, "sources": sum.sources}),
                )?;
            }
        }
        sink.write(std::mem::take(xml.get_mut())).await?;
        sink.write(buf).await?;
        let out = sink.finish().await?;
        sum.seconds = started.elapsed().as_secs_f64();
        Ok((out, sum))
    }

    /// Copies the embedded database into `dir` (created if needed) as
    /// `confab-<UTC time>.db` while the server runs: every write committed before the copy
    /// began is in it. A PostgreSQL deployment refuses.
    pub async fn backup(&self, dir: &Path) -> Result<Backup, DomainError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            DomainError::invalid(format!(
                "cannot create the directory {}: {e}",
                dir.display()
            ))
        })?;
        let stamp: String = confab_core::rfc3339(confab_core::now_ms())
            .chars()
            .take(19)
            .filter(|c| c.is_ascii_digit() || *c == 'T')
            .collect();
        let mut path = dir.join(format!("confab-{stamp}Z.db"));
        let mut n = 1;
        while path.exists() {
            if n > 100 {
                return Err(DomainError::new(
                    confab_core::ErrorCode::Conflict,
                    format!("too many backups in {} this second", dir.display()),
                ));
            }
            path = dir.join(format!("confab-{stamp}Z-{n}.db"));
            n += 1;
        }
        let bytes = self.store.backup_into(&path).await?;
        Ok(Backup { path, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::import::disqus::{parse, Item};

    fn xml_of(f: impl FnOnce(&mut Xml) -> std::io::Result<()>) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        f(&mut w).unwrap();
        String::from_utf8(w.into_inner()).unwrap()
    }

    #[test]
    fn cdata_is_split_around_its_end_marker_and_reads_back_whole() {
        let html = "<p>a ]]> b ]]]]>> c]]</p>";
        let out = xml_of(|w| write_cdata(w, html));
        assert_eq!(
            out,
            "<![CDATA[<p>a ]]]]><![CDATA[> b ]]]]]]><![CDATA[>> c]]</p>]]>"
        );
        // What the importer reads is the message as it was.
        let doc = format!(
            r#"<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals"><post dsq:id="1"><message>{out}</message><createdAt>2019-03-01T10:00:00Z</createdAt><thread dsq:id="2"/></post></disqus>"#
        );
        let mut got = Vec::new();
        parse(doc.as_bytes(), |i| {
            got.push(i);
            Ok(())
        })
        .unwrap();
        let [Item::Post(p)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(p.message, html);
        // No marker, one section; nothing, an empty one.
        assert_eq!(
            xml_of(|w| write_cdata(w, "<b>x</b>")),
            "<![CDATA[<b>x</b>]]>"
        );
        assert_eq!(xml_of(|w| write_cdata(w, "")), "<![CDATA[]]>");
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped() {
        assert_eq!(xml_safe("a\u{1}b\tc\u{FFFF}"), "ab\tc");
        assert!(matches!(xml_safe("plain\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn times_are_utc_with_milliseconds_only_when_there_are_some() {
        assert_eq!(disqus_time(1_551_434_400_000), "2019-03-01T10:00:00Z");
        assert_eq!(disqus_time(1_551_434_400_250), "2019-03-01T10:00:00.250Z");
        let back = crate::service::import::disqus::parse_time(&disqus_time(1_551_434_400_250));
        assert_eq!(back, Ok(1_551_434_400_250));
    }
}

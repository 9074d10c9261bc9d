//! The Disqus export (the XML file Disqus mails to a site's owner), read as a stream with
//! quick-xml: one `<thread>` or `<post>` at a time is held, never the file.
//!
//! ```xml
//! <disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">
//!   <category dsq:id="1">...</category>
//!   <thread dsq:id="10">
//!     <id>post-42</id>                  <!-- the site's disqus_identifier, often empty -->
//!     <link>https://blog.example.com/2019/hello/</link>
//!     <title>Hello</title>
//!     <createdAt>2019-03-01T10:00:00Z</createdAt>
//!     <isClosed>false</isClosed> <isDeleted>false</isDeleted>
//!   </thread>
//!   <post dsq:id="100">
//!     <message><![CDATA[<p>Nice <b>post</b></p>]]></message>
//!     <createdAt>2019-03-01T11:00:00Z</createdAt>
//!     <isDeleted>false</isDeleted> <isSpam>false</isSpam>
//!     <author><name>Ann</name><email>ann@example.com</email><isAnonymous>true</isAnonymous></author>
//!     <thread dsq:id="10"/>
//!     <parent dsq:id="99"/>              <!-- a reply; the parent may come later in the file -->
//!   </post>
//! </disqus>
//! ```

use super::{Body, Item as SourceItem, SourcePost, SourceStatus, SourceThread};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, Read};

/// A `<thread>` of the export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisqusThread {
    pub dsq_id: String,
    /// `<id>`: the site's `disqus_identifier`; empty when it set none.
    pub ident: String,
    pub link: String,
    pub title: String,
    pub created_at: Option<i64>,
    pub closed: bool,
    pub deleted: bool,
}

/// A `<post>` of the export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisqusPost {
    pub dsq_id: String,
    pub thread: String,
    pub parent: Option<String>,
    /// HTML, as Disqus stores it.
    pub message: String,
    pub created_at: i64,
    pub deleted: bool,
    pub spam: bool,
    pub name: String,
    pub email: String,
    pub username: String,
    pub anonymous: bool,
}

/// One item of the export, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Thread(DisqusThread),
    Post(DisqusPost),
}

/// Why a file cannot be imported, and where (1-based line and column, in bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// A reader that knows the line and column of any recent byte offset: it counts the newlines
/// it hands out and keeps the offsets of the last [`RECENT_NEWLINES`] of them.
pub struct Positioned<R> {
    inner: R,
    pos: u64,
    lines: u64,
    recent: VecDeque<u64>,
}

const RECENT_NEWLINES: usize = 4096;

/// Longest text kept of one field (a message, a title): a longer one is an error, so one field
/// cannot take the memory the spool saves.
pub const MAX_FIELD: usize = 1 << 20;

impl<R: BufRead> Positioned<R> {
    pub fn new(inner: R) -> Self {
        Positioned {
            inner,
            pos: 0,
            lines: 0,
            recent: VecDeque::new(),
        }
    }

    /// (line, column) of byte `at`, which must not be far behind what was read.
    pub(super) fn line_col(&self, at: u64) -> (u64, u64) {
        let at = at.min(self.pos);
        let after = self.recent.iter().rev().take_while(|&&o| o >= at).count() as u64;
        let line = self.lines - after + 1;
        let start = self
            .recent
            .iter()
            .rev()
            .find(|&&o| o < at)
            .map_or(0, |o| o + 1);
        (line, at - start + 1)
    }
}

impl<R: BufRead> Read for Positioned<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Positioned<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            for (i, b) in buf[..amt.min(buf.len())].iter().enumerate() {
                if *b == b'\n' {
                    self.lines += 1;
                    if self.recent.len() == RECENT_NEWLINES {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(self.pos + i as u64);
                }
            }
        }
        self.pos += amt as u64;
        self.inner.consume(amt);
    }
}

impl<R> Positioned<R> {
    /// A parse error at byte `at` (recent: see [`Positioned::line_col`]).
    pub(super) fn error_at(&self, at: u64, message: String) -> ParseError
    where
        R: BufRead,
    {
        let (line, column) = self.line_col(at);
        ParseError {
            line,
            column,
            message,
        }
    }
}

/// The text an entity or character reference stands for (the XML exports' `&amp;`, `&#233;`).
pub(super) fn resolve_ref(r: &quick_xml::events::BytesRef<'_>) -> Result<String, String> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => Ok(c.to_string()),
        Ok(None) => {
            let name = r.xml10_content();
            quick_xml::escape::resolve_predefined_entity(&name)
                .map(str::to_string)
                .ok_or_else(|| format!("unknown entity &{name};"))
        }
        Err(e) => Err(format!("bad character reference: {e}")),
    }
}

/// Where in a `<thread>` or `<post>` the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    None,
    ThreadIdent,
    ThreadLink,
    ThreadTitle,
    ThreadCreated,
    ThreadClosed,
    ThreadDeleted,
    PostMessage,
    PostCreated,
    PostDeleted,
    PostSpam,
    AuthorName,
    AuthorEmail,
    AuthorUsername,
    AuthorAnonymous,
}

fn dsq_id(e: &BytesStart<'_>) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        if a.key.as_ref() == "dsq:id" {
            return a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| Some(v.trim().to_string()))
                .map_err(|e| e.to_string());
        }
    }
    Ok(None)
}

fn boolean(s: &str) -> Result<bool, String> {
    match s.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(format!("expected true or false, found {other:?}")),
    }
}

/// Milliseconds since the Unix epoch of an ISO 8601 / RFC 3339 time as Disqus writes it
/// (`2019-03-01T10:00:00Z`; fractions and offsets accepted; no zone means UTC).
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("not a date and time: {s:?}");
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        s.get(r)
            .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(bad)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let f = &frac[..digits];
        ms = f[..digits.min(3)].parse::<i64>().map_err(|_| bad())?
            * 10_i64.pow(3 - digits.min(3) as u32);
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad()),
            };
            let z = rest[1..].replace(':', "");
            if z.len() != 4 || !z.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            sign * (z[..2].parse::<i64>().map_err(|_| bad())? * 60
                + z[2..].parse::<i64>().map_err(|_| bad())?)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 86_400 + h * 3600 + mi * 60 + se) - offset_min * 60) * 1000 + ms)
}

/// Reads the export as the import pipeline's source-neutral items: a thread answers to its
/// identifier (when the site set one) and its link; a post's guest name is its name, else its
/// username.
pub fn read(
    input: impl BufRead,
    emit: &mut dyn FnMut(SourceItem) -> Result<(), String>,
) -> Result<(), ParseError> {
    parse(input, |item| {
        emit(match item {
            Item::Thread(t) => SourceItem::Thread(SourceThread {
                key: t.dsq_id,
                idents: vec![t.ident, t.link.clone()],
                url: (!t.link.is_empty()).then_some(t.link),
                title: t.title,
                created_at: t.created_at,
                closed: t.closed,
                deleted: t.deleted,
            }),
            Item::Post(p) => SourceItem::Post(SourcePost {
                status: if p.deleted {
                    SourceStatus::Deleted
                } else if p.spam {
                    SourceStatus::Spam
                } else {
                    SourceStatus::Approved
                },
                name: if p.name.trim().is_empty() {
                    p.username
                } else {
                    p.name
                },
                id: p.dsq_id,
                thread: p.thread,
                parent: p.parent,
                body: Body::Html(p.message),
                created_at: p.created_at,
                email: p.email,
                url: String::new(),
            }),
        })
    })
}

/// Reads the export from `input`, calling `item` for each thread and post in file order.
/// A file that is not well-formed XML, or holds a value that cannot be read (a date, a
/// boolean, a post without its thread), is an error naming its line and column.
pub fn parse<R: BufRead>(
    input: R,
    mut item: impl FnMut(Item) -> Result<(), String>,
) -> Result<(), ParseError> {
    let mut reader = Reader::from_reader(Positioned::new(input));
    reader.config_mut().check_end_names = true;
    let mut buf = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut thread: Option<DisqusThread> = None;
    let mut post: Option<DisqusPost> = None;
    let mut field = Field::None;
    let mut text = String::new();
    let mut seen_root = false;
    loop {
        let at_error = |reader: &Reader<Positioned<R>>, at: u64, message: String| {
            reader.get_ref().error_at(at, message)
        };
        // Where this event starts: what a semantic error (a bad date, ...) points at.
        let start_of_event = reader.buffer_position();
        let ev = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(e) => {
                let at = reader.error_position();
                return Err(at_error(&reader, at, format!("not well-formed XML: {e}")));
            }
        };
        let fail = |reader: &Reader<Positioned<R>>, m: String| at_error(reader, start_of_event, m);
        match ev {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                let depth = stack.len();
                if depth == 0 {
                    if name != "disqus" {
                        return Err(fail(
                            &reader,
                            format!("expected <disqus>, found <{}>", name),
                        ));
                    }
                    seen_root = true;
                } else if depth == 1 && name == "thread" {
                    let id = dsq_id(&e)
                        .map_err(|m| fail(&reader, m))?
                        .unwrap_or_default();
                    thread = Some(DisqusThread {
                        dsq_id: id,
                        ..Default::default()
                    });
                } else if depth == 1 && name == "post" {
                    let id = dsq_id(&e)
                        .map_err(|m| fail(&reader, m))?
                        .unwrap_or_default();
                    post = Some(DisqusPost {
                        dsq_id: id,
                        ..Default::default()
                    });
                } else if depth == 2 {
                    field = if thread.is_some() {
                        match name.as_str() {
                            "id" => Field::ThreadIdent,
                            "link" => Field::ThreadLink,
                            "title" => Field::ThreadTitle,
                            "createdAt" => Field::ThreadCreated,
                            "isClosed" => Field::ThreadClosed,
                            "isDeleted" => Field::ThreadDeleted,
                            _ => Field::None,
                        }
                    } else if let Some(p) = post.as_mut() {
                        match name.as_str() {
                            "message" => Field::PostMessage,
                            "createdAt" => Field::PostCreated,
                            "isDeleted" => Field::PostDeleted,
                            "isSpam" => Field::PostSpam,
                            "thread" => {
                                p.thread = dsq_id(&e)
                                    .map_err(|m| fail(&reader, m))?
                                    .unwrap_or_default();
                                Field::None
                            }
                            "parent" => {
                                p.parent = dsq_id(&e)
                                    .map_err(|m| fail(&reader, m))?
                                    .filter(|s| !s.is_empty());
                                Field::None
                            }
                            _ => Field::None,
                        }
                    } else {
                        Field::None
                    };
                    text.clear();
                } else if depth == 3
                    && post.is_some()
                    && stack.get(2).is_some_and(|s| s == "author")
                {
                    field = match name.as_str() {
                        "name" => Field::AuthorName,
                        "email" => Field::AuthorEmail,
                        "username" => Field::AuthorUsername,
                        "isAnonymous" => Field::AuthorAnonymous,
                        _ => Field::None,
                    };
                    text.clear();
                }
                stack.push(name);
            }
            Event::Empty(e) => {
                let name = e.local_name();
                if stack.len() == 2 {
                    if let Some(p) = post.as_mut() {
                        match name.as_ref() {
                            "thread" => {
                                p.thread = dsq_id(&e)
                                    .map_err(|m| fail(&reader, m))?
                                    .unwrap_or_default()
                            }
                            "parent" => {
                                p.parent = dsq_id(&e)
                                    .map_err(|m| fail(&reader, m))?
                                    .filter(|s| !s.is_empty())
                            }
                            _ => {}
                        }
                    }
                } else if stack.is_empty() {
                    return Err(fail(&reader, "expected <disqus>".to_string()));
                }
            }
            Event::Text(t) if field != Field::None => text.push_str(&t.xml10_content()),
            Event::CData(t) if field != Field::None => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) if field != Field::None => {
                text.push_str(&resolve_ref(&r).map_err(|m| fail(&reader, m))?);
            }
            Event::End(_) if text.len() > MAX_FIELD => {
                return Err(fail(
                    &reader,
                    format!("a field longer than {MAX_FIELD} bytes"),
                ));
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                let depth = stack.len();
                if depth == 2 || (depth == 3 && field >= Field::AuthorName) {
                    let value = std::mem::take(&mut text);
                    let f = std::mem::replace(&mut field, Field::None);
                    let set = |m: Result<(), String>| {
                        m.map_err(|m| fail(&reader, format!("<{}>: {m}", name)))
                    };
                    if let Some(t) = thread.as_mut() {
                        match f {
                            Field::ThreadIdent => t.ident = value.trim().to_string(),
                            Field::ThreadLink => t.link = value.trim().to_string(),
                            Field::ThreadTitle => t.title = value.trim().to_string(),
                            Field::ThreadCreated => {
                                set(parse_time(&value).map(|v| t.created_at = Some(v)))?
                            }
                            Field::ThreadClosed => set(boolean(&value).map(|v| t.closed = v))?,
                            Field::ThreadDeleted => set(boolean(&value).map(|v| t.deleted = v))?,
                            _ => {}
                        }
                    } else if let Some(p) = post.as_mut() {
                        match f {
                            Field::PostMessage => p.message = value,
                            Field::PostCreated => {
                                set(parse_time(&value).map(|v| p.created_at = v))?
                            }
                            Field::PostDeleted => set(boolean(&value).map(|v| p.deleted = v))?,
                            Field::PostSpam => set(boolean(&value).map(|v| p.spam = v))?,
                            Field::AuthorName => p.name = value.trim().to_string(),
                            Field::AuthorEmail => p.email = value.trim().to_string(),
                            Field::AuthorUsername => p.username = value.trim().to_string(),
                            Field::AuthorAnonymous => {
                                set(boolean(&value).map(|v| p.anonymous = v))?
                            }
                            _ => {}
                        }
                    }
                } else if depth == 1 {
                    if let Some(t) = thread.take() {
                        if t.dsq_id.is_empty() {
                            return Err(fail(&reader, "<thread> without dsq:id".to_string()));
                        }
                        item(Item::Thread(t)).map_err(|m| fail(&reader, m))?;
                    } else if let Some(p) = post.take() {
                        if p.dsq_id.is_empty() {
                            return Err(fail(&reader, "<post> without dsq:id".to_string()));
                        }
                        if p.thread.is_empty() {
                            return Err(fail(
                                &reader,
                                format!("post {} names no <thread dsq:id>", p.dsq_id),
                            ));
                        }
                        if p.created_at == 0 {
                            return Err(fail(
                                &reader,
                                format!("post {} has no <createdAt>", p.dsq_id),
                            ));
                        }
                        item(Item::Post(p)).map_err(|m| fail(&reader, m))?;
                    }
                }
            }
            Event::Eof => {
                if !seen_root {
                    return Err(fail(
                        &reader,
                        "no <disqus> element: not a Disqus export".to_string(),
                    ));
                }
                if !stack.is_empty() {
                    return Err(fail(
                        &reader,
                        format!(
                            "the file ends inside <{}>",
                            stack.last().map_or("", |v| v.as_str())
                        ),
                    ));
                }
                return Ok(());
            }
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(xml: &str) -> Result<Vec<Item>, ParseError> {
        let mut out = Vec::new();
        parse(xml.as_bytes(), |i| {
            out.push(i);
            Ok(())
        })?;
        Ok(out)
    }

    const HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">
"#;

    #[test]
    fn threads_and_posts_in_file_order() {
        let xml = format!(
            r#"{HEAD}<category dsq:id="1"><forum>f</forum><title>General</title></category>
<post dsq:id="101"><message><![CDATA[<p>reply &amp; <b>more</b></p>]]></message>
  <createdAt>2019-03-01T11:00:00Z</createdAt><isDeleted>false</isDeleted><isSpam>false</isSpam>
  <author><name>Bo &amp; Co</name><email>bo@example.com</email><isAnonymous>true</isAnonymous></author>
  <thread dsq:id="10"/><parent dsq:id="100"/></post>
<thread dsq:id="10"><id></id><link>https://e.com/a?x=1&amp;y=2</link><title>A &lt;title&gt;</title>
  <message/><createdAt>2019-03-01T10:00:00Z</createdAt>
  <author><name>Site</name><email>site@e.com</email></author>
  <isClosed>true</isClosed><isDeleted>false</isDeleted></thread>
<post dsq:id="100"><id/><message>&lt;p&gt;top&lt;/p&gt;</message><createdAt>2019-03-01T10:30:00.250+01:00</createdAt>
  <isDeleted>true</isDeleted><isSpam>false</isSpam><author><name></name><username>u1</username></author>
  <thread dsq:id="10" /></post>
</disqus>"#
        );
        let got = items(&xml).unwrap();
        assert_eq!(got.len(), 3);
        let Item::Post(p) = &got[0] else { panic!() };
        assert_eq!(p.dsq_id, "101");
        assert_eq!(p.parent.as_deref(), Some("100"));
        assert_eq!(p.thread, "10");
        // CDATA is kept as written (entities in it are the HTML's own).
        assert_eq!(p.message, "<p>reply &amp; <b>more</b></p>");
        assert_eq!(p.name, "Bo & Co");
        assert_eq!(p.email, "bo@example.com");
        assert!(p.anonymous && !p.deleted && !p.spam);
        let Item::Thread(t) = &got[1] else { panic!() };
        assert_eq!(t.dsq_id, "10");
        assert_eq!(t.ident, "");
        assert_eq!(t.link, "https://e.com/a?x=1&y=2");
        assert_eq!(t.title, "A <title>");
        assert!(t.closed && !t.deleted);
        assert_eq!(
            t.created_at,
            Some(parse_time("2019-03-01T10:00:00Z").unwrap())
        );
        let Item::Post(p) = &got[2] else { panic!() };
        assert_eq!(p.message, "<p>top</p>");
        assert!(p.deleted);
        assert_eq!(p.parent, None);
        assert_eq!(p.username, "u1");
        assert_eq!(
            p.created_at,
            parse_time("2019-03-01T09:30:00.250Z").unwrap()
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_time("2019-03-01T10:00:00Z").unwrap(),
            1_551_434_400_000
        );
        assert_eq!(
            parse_time("2019-03-01T11:00:00+01:00").unwrap(),
            1_551_434_400_000
        );
        assert_eq!(
            parse_time("2000-02-29T00:00:00.5").unwrap(),
            951_782_400_500
        );
        for bad in [
            "",
            "2019-13-01T00:00:00Z",
            "yesterday",
            "2019-03-01T10:00:00+1",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn broken_files_name_line_and_column() {
        // A mismatched end tag on line 4.
        let xml = format!("{HEAD}<thread dsq:id=\"1\"><link>https://e.com/a</link>\n</thread>\n<post dsq:id=\"2\"><message>x</mesage></post></disqus>");
        let e = items(&xml).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("not well-formed"), "{e}");
        assert!(e.column > 20, "{e}");
        // A bad date.
        let xml = format!("{HEAD}<post dsq:id=\"2\"><createdAt>soon</createdAt><thread dsq:id=\"1\"/></post></disqus>");
        let e = items(&xml).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(
            e.message.contains("createdAt") && e.message.contains("soon"),
            "{e}"
        );
        // Cut short.
        let e = items(&format!("{HEAD}<thread dsq:id=\"1\">")).unwrap_err();
        assert!(e.message.contains("ends inside"), "{e}");
        // Not a Disqus export.
        let e = items("<rss><channel/></rss>").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1), "{e}");
        // A message past the bound.
        let big = "x".repeat(MAX_FIELD + 1);
        let e = items(&format!(
            "{HEAD}<post dsq:id=\"2\"><message>{big}</message></post></disqus>"
        ))
        .unwrap_err();
        assert!(e.message.contains("longer than"), "{e}");
        // A post with no thread.
        let e = items(&format!(
            "{HEAD}<post dsq:id=\"2\"><createdAt>2019-03-01T10:00:00Z</createdAt></post></disqus>"
        ))
        .unwrap_err();
        assert!(e.message.contains("names no <thread"), "{e}");
    }

    #[test]
    fn positions_count_lines_and_bytes() {
        let mut p = Positioned::new("ab\ncd\n\nef".as_bytes());
        let mut s = String::new();
        p.read_to_string(&mut s).unwrap();
        assert_eq!(p.line_col(0), (1, 1));
        assert_eq!(p.line_col(4), (2, 2));
        assert_eq!(p.line_col(7), (4, 1));
        assert_eq!(p.line_col(6), (3, 1));
    }
}

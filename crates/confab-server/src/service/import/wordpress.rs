//! WordPress' export (WXR 1.1 and 1.2, Tools → Export), read as a stream with quick-xml: one
//! `<item>`'s fields and one `<wp:comment>` at a time are held, never the file.
//!
//! ```xml
//! <rss version="2.0" xmlns:wp="http://wordpress.org/export/1.2/" ...>
//! <channel>
//!   <item>
//!     <title>Hello</title>
//!     <link>https://blog.example.com/2019/hello/</link>     <!-- the permalink -->
//!     <guid isPermaLink="false">https://blog.example.com/?p=42</guid>
//!     <wp:post_id>42</wp:post_id>
//!     <wp:post_date_gmt>2019-03-01 10:00:00</wp:post_date_gmt>
//!     <wp:comment_status>open</wp:comment_status>         <!-- closed: no new comments -->
//!     <wp:status>publish</wp:status>                      <!-- draft, trash, ... -->
//!     <wp:post_type>post</wp:post_type>                   <!-- page, attachment, ... -->
//!     <wp:comment>
//!       <wp:comment_id>7</wp:comment_id>
//!       <wp:comment_author><![CDATA[Ann]]></wp:comment_author>
//!       <wp:comment_author_email>ann@example.com</wp:comment_author_email>
//!       <wp:comment_author_url>https://ann.example</wp:comment_author_url>
//!       <wp:comment_date>2019-03-01 11:00:00</wp:comment_date>      <!-- the site's time -->
//!       <wp:comment_date_gmt>2019-03-01 10:00:00</wp:comment_date_gmt>
//!       <wp:comment_content><![CDATA[Hi!
//!
//! A second paragraph]]></wp:comment_content>
//!       <wp:comment_approved>1</wp:comment_approved>   <!-- 0, spam, trash -->
//!       <wp:comment_type></wp:comment_type>            <!-- pingback, trackback -->
//!       <wp:comment_parent>0</wp:comment_parent>
//!     </wp:comment>
//!   </item>
//! </channel>
//! </rss>
//! ```
//!
//! WordPress writes an item's own fields before its comments; the thread is emitted when its
//! first comment starts (or when the item ends), so a field of the item after its comments is
//! an error.

use super::disqus::{parse_time, resolve_ref, ParseError, Positioned, MAX_FIELD};
use super::{Body, Item, SourcePost, SourceStatus, SourceThread};
use quick_xml::events::Event;
use quick_xml::Reader;
use std::io::BufRead;

const SKIP_PINGBACK: &str = "pingbacks";
const SKIP_TRACKBACK: &str = "trackbacks";
const SKIP_OTHER_TYPE: &str = "comments of other types (order notes, ...)";
const SKIP_TRASHED_POST: &str = "comments of posts in the trash";
const SKIP_DRAFT: &str = "comments of drafts";
const SKIP_ATTACHMENT: &str = "comments of attachments";
const SKIP_MENU_ITEM: &str = "comments of menu items";

/// What WordPress writes for a date it does not have.
const NO_DATE: &str = "0000-00-00 00:00:00";

/// Why an item's comments are left out, if they are.
fn skip_reason(status: &str, post_type: &str) -> Option<&'static str> {
    match (status, post_type) {
        (_, "attachment") => Some(SKIP_ATTACHMENT),
        (_, "nav_menu_item") => Some(SKIP_MENU_ITEM),
        ("trash", _) => Some(SKIP_TRASHED_POST),
        ("draft" | "auto-draft", _) => Some(SKIP_DRAFT),
        _ => None,
    }
}

/// `wp:comment_approved` as a status: anything WordPress may add later waits for a moderator.
pub fn status(approved: &str) -> SourceStatus {
    match approved.trim() {
        "1" | "approve" | "approved" => SourceStatus::Approved,
        "spam" => SourceStatus::Spam,
        "trash" => SourceStatus::Deleted,
        _ => SourceStatus::Pending,
    }
}

/// A WordPress date (`YYYY-MM-DD HH:MM:SS`, no zone: UTC for the `_gmt` fields) in milliseconds;
/// `None` for WordPress' "no date" (`0000-00-00 00:00:00`) and for an empty field.
pub fn date(s: &str) -> Result<Option<i64>, String> {
    let s = s.trim();
    if s.is_empty() || s == NO_DATE {
        return Ok(None);
    }
    parse_time(s).map(Some)
}

/// Block-level tags: autop wraps no paragraph around them and breaks no line next to them.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "blockquote",
    "dd",
    "div",
    "dl",
    "dt",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
];

/// The name of the tag `s` starts with (`<p>`, `</ul>`, `<div class=x>`), lowercased.
fn tag_at(s: &str) -> Option<String> {
    let rest = s.strip_prefix('<')?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

fn starts_with_block(s: &str) -> bool {
    tag_at(s.trim_start()).is_some_and(|t| BLOCK_TAGS.contains(&t.as_str()))
}

fn ends_with_block(s: &str) -> bool {
    let s = s.trim_end();
    if !s.ends_with('>') {
        return false;
    }
    s.rfind('<')
        .and_then(|i| tag_at(&s[i..]))
        .is_some_and(|t| BLOCK_TAGS.contains(&t.as_str()))
}

/// WordPress' automatic paragraphs, as comments are shown there: text separated by a blank
/// line is a paragraph, a single newline a line break; a chunk that is already a block (a
/// quote, a list, a `<p>`) gets no paragraph around it, no break is put next to a block tag,
/// and the inside of `<pre>` is left as written. The result goes through the sanitizer.
pub fn autop(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    // `<pre>` blocks are kept aside, whole, and put back after.
    let mut kept: Vec<String> = Vec::new();
    let mut rest = text.as_str();
    let mut plain = String::with_capacity(text.len());
    loop {
        let lower = rest.to_ascii_lowercase();
        let Some(start) = lower.find("<pre") else {
            plain.push_str(rest);
            break;
        };
        let end = lower[start..]
            .find("</pre>")
            .map_or(rest.len(), |e| start + e + "</pre>".len());
        plain.push_str(&rest[..start]);
        plain.push_str(&format!("\n\n\u{0}{}\u{0}\n\n", kept.len()));
        kept.push(rest[start..end].to_string());
        rest = &rest[end..];
    }
    // A blank line before every block tag that opens and after every one that closes, so a
    // block stands apart from the text around it (as WordPress does).
    let mut spaced = String::with_capacity(plain.len() + 64);
    let mut from = 0;
    for (i, _) in plain.match_indices('<') {
        let Some(tag) = tag_at(&plain[i..]) else {
            continue;
        };
        if !BLOCK_TAGS.contains(&tag.as_str()) {
            continue;
        }
        if plain[i..].starts_with("</") {
            let Some(end) = plain[i..].find('>') else {
                continue;
            };
            spaced.push_str(&plain[from..i + end + 1]);
            spaced.push_str("\n\n");
            from = i + end + 1;
        } else {
            spaced.push_str(&plain[from..i]);
            spaced.push_str("\n\n");
            from = i;
        }
    }
    spaced.push_str(&plain[from..]);
    let plain = spaced;
    let mut out = String::with_capacity(plain.len() + 64);
    let mut chunk = String::new();
    let flush = |chunk: &mut String, out: &mut String| {
        let c = chunk.trim();
        if !c.is_empty() {
            if let Some(i) = c
                .strip_prefix('\u{0}')
                .and_then(|r| r.strip_suffix('\u{0}'))
                .and_then(|n| n.parse::<usize>().ok())
            {
                out.push_str(&kept[i]);
            } else {
                let lines: Vec<&str> = c.split('\n').map(str::trim_end).collect();
                let mut body = String::new();
                for (i, line) in lines.iter().enumerate() {
                    body.push_str(line);
                    if let Some(next) = lines.get(i + 1) {
                        if ends_with_block(line) || starts_with_block(next) {
                            body.push('\n');
                        } else {
                            body.push_str("<br>\n");
                        }
                    }
                }
                if starts_with_block(&body) {
                    out.push_str(&body);
                } else {
                    out.push_str("<p>");
                    out.push_str(&body);
                    out.push_str("</p>");
                }
            }
            out.push('\n');
        }
        chunk.clear();
    };
    let mut blank = false;
    for line in plain.split('\n') {
        if line.trim().is_empty() {
            blank = true;
            continue;
        }
        if blank {
            flush(&mut chunk, &mut out);
            blank = false;
        }
        if !chunk.is_empty() {
            chunk.push('\n');
        }
        chunk.push_str(line);
    }
    flush(&mut chunk, &mut out);
    out.trim_end().to_string()
}

/// The fields of an `<item>` that are read.
const ITEM_FIELDS: &[&str] = &[
    "wp:post_id",
    "link",
    "guid",
    "title",
    "wp:comment_status",
    "wp:status",
    "wp:post_type",
    "wp:post_date_gmt",
];

/// An `<item>` being read.
#[derive(Default)]
struct ItemState {
    post_id: String,
    link: String,
    guid: String,
    title: String,
    created_at: Option<i64>,
    comment_status: String,
    status: String,
    post_type: String,
    /// Emitted (at its first comment): later fields of the item are an error.
    emitted: bool,
    /// Why its comments are left out.
    skip: Option<&'static str>,
}

/// A `<wp:comment>` being read.
#[derive(Default)]
struct CommentState {
    id: String,
    author: String,
    email: String,
    url: String,
    date: String,
    date_gmt: String,
    content: String,
    approved: String,
    kind: String,
    parent: String,
}

/// Reads the export as the import pipeline's items: each `<item>` with a `wp:post_id` is a
/// thread (its permalink first, then its `?p=ID` guid), each of its `<wp:comment>`s a post.
/// A file that is not well-formed, or holds a value that cannot be read (a date, an id), is an
/// error naming its line and column.
pub fn read(
    input: impl BufRead,
    emit: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), ParseError> {
    parse(input, emit)
}

fn parse<R: BufRead>(
    input: R,
    emit: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), ParseError> {
    let mut reader = Reader::from_reader(Positioned::new(input));
    reader.config_mut().check_end_names = true;
    let mut buf = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut item: Option<ItemState> = None;
    let mut comment: Option<CommentState> = None;
    let mut text = String::new();
    // Whether the element being read is one whose text is kept.
    let mut capture = false;
    let mut seen_root = false;
    loop {
        let at_error = |reader: &Reader<Positioned<R>>, at: u64, message: String| {
            reader.get_ref().error_at(at, message)
        };
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
                let name = e.name().as_ref().to_string();
                let depth = stack.len();
                if depth == 0 {
                    if name != "rss" {
                        return Err(fail(
                            &reader,
                            format!("expected <rss>, found <{name}>: not a WordPress export"),
                        ));
                    }
                    seen_root = true;
                } else if depth == 2 && name == "item" && stack[1] == "channel" {
                    item = Some(ItemState::default());
                } else if depth == 3 && item.is_some() {
                    if name == "wp:comment" {
                        let it = item
                            .as_mut()
                            .map_or_else(|| Err(fail(&reader, "no item".to_string())), Ok)?;
                        if !it.emitted {
                            emit_thread(it, emit).map_err(|m| fail(&reader, m))?;
                        }
                        comment = Some(CommentState::default());
                    } else {
                        // Only the fields read: the post's own content can be long.
                        capture = ITEM_FIELDS.contains(&name.as_str());
                        text.clear();
                    }
                } else if depth == 4 && comment.is_some() {
                    capture = name != "wp:commentmeta";
                    text.clear();
                }
                stack.push(name);
            }
            Event::Empty(_) if stack.is_empty() => {
                return Err(fail(
                    &reader,
                    "expected <rss>: not a WordPress export".to_string(),
                ));
            }
            Event::Text(t) if capture => text.push_str(&t.xml10_content()),
            Event::CData(t) if capture => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) if capture => {
                text.push_str(&resolve_ref(&r).map_err(|m| fail(&reader, m))?);
            }
            Event::End(_) if capture && text.len() > MAX_FIELD => {
                return Err(fail(
                    &reader,
                    format!("a field longer than {MAX_FIELD} bytes"),
                ));
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                let depth = stack.len();
                let value = std::mem::take(&mut text);
                let was_capturing = std::mem::replace(&mut capture, false);
                if depth == 4 && was_capturing {
                    if let Some(c) = comment.as_mut() {
                        let v = value.trim().to_string();
                        match name.as_str() {
                            "wp:comment_id" => c.id = v,
                            "wp:comment_author" => c.author = v,
                            "wp:comment_author_email" => c.email = v,
                            "wp:comment_author_url" => c.url = v,
                            "wp:comment_date" => c.date = v,
                            "wp:comment_date_gmt" => c.date_gmt = v,
                            "wp:comment_content" => c.content = value,
                            "wp:comment_approved" => c.approved = v,
                            "wp:comment_type" => c.kind = v,
                            "wp:comment_parent" => c.parent = v,
                            _ => {}
                        }
                    }
                } else if depth == 3 && name == "wp:comment" {
                    if let (Some(c), Some(it)) = (comment.take(), item.as_ref()) {
                        let out = post(c, it).map_err(|m| fail(&reader, m))?;
                        emit(out).map_err(|m| fail(&reader, m))?;
                    }
                } else if depth == 3 && was_capturing {
                    if let Some(it) = item.as_mut() {
                        let v = value.trim().to_string();
                        let field: Option<&mut String> = match name.as_str() {
                            "wp:post_id" => Some(&mut it.post_id),
                            "link" => Some(&mut it.link),
                            "guid" => Some(&mut it.guid),
                            "title" => Some(&mut it.title),
                            "wp:comment_status" => Some(&mut it.comment_status),
                            "wp:status" => Some(&mut it.status),
                            "wp:post_type" => Some(&mut it.post_type),
                            "wp:post_date_gmt" => {
                                it.created_at = date(&v)
                                    .map_err(|m| fail(&reader, format!("<{name}>: {m}")))?;
                                None
                            }
                            _ => None,
                        };
                        if let Some(f) = field {
                            if it.emitted {
                                return Err(fail(
                                    &reader,
                                    format!(
                                        "<{name}> after the item's comments (WordPress writes \
                                         an item's fields before its comments)"
                                    ),
                                ));
                            }
                            *f = v;
                        }
                    }
                } else if depth == 2 && name == "item" {
                    if let Some(mut it) = item.take() {
                        if !it.emitted {
                            emit_thread(&mut it, emit).map_err(|m| fail(&reader, m))?;
                        }
                    }
                }
            }
            Event::Eof => {
                if !seen_root {
                    return Err(fail(
                        &reader,
                        "no <rss> element: not a WordPress export".to_string(),
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

/// The item as a thread, unless its comments are left out (a draft, the trash, an attachment)
/// or it has no id (then its comments are an error, see [`post`]).
fn emit_thread(
    it: &mut ItemState,
    emit: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), String> {
    it.emitted = true;
    it.skip = skip_reason(it.status.trim(), it.post_type.trim());
    if it.skip.is_some() || it.post_id.is_empty() {
        return Ok(());
    }
    emit(Item::Thread(SourceThread {
        key: it.post_id.clone(),
        idents: vec![it.link.clone(), it.guid.clone()],
        url: (!it.link.is_empty()).then(|| it.link.clone()),
        title: it.title.clone(),
        created_at: it.created_at,
        closed: it.comment_status.trim() == "closed",
        deleted: false,
    }))
}

/// One `<wp:comment>` of `it` as an item: a post, or what is skipped.
fn post(c: CommentState, it: &ItemState) -> Result<Item, String> {
    if let Some(why) = it.skip {
        return Ok(Item::Skipped(why));
    }
    match c.kind.as_str() {
        "pingback" => return Ok(Item::Skipped(SKIP_PINGBACK)),
        "trackback" => return Ok(Item::Skipped(SKIP_TRACKBACK)),
        "" | "comment" | "review" => {}
        _ => return Ok(Item::Skipped(SKIP_OTHER_TYPE)),
    }
    if it.post_id.is_empty() {
        return Err("a comment of an <item> without <wp:post_id>".to_string());
    }
    if c.id.is_empty() {
        return Err("a <wp:comment> without <wp:comment_id>".to_string());
    }
    let created_at = match date(&c.date_gmt)
        .map_err(|m| format!("comment {}: <wp:comment_date_gmt>: {m}", c.id))?
    {
        Some(t) => t,
        None => date(&c.date)
            .map_err(|m| format!("comment {}: <wp:comment_date>: {m}", c.id))?
            .ok_or_else(|| format!("comment {} has no date", c.id))?,
    };
    let parent = match c.parent.as_str() {
        "" | "0" => None,
        p => Some(p.to_string()),
    };
    Ok(Item::Post(SourcePost {
        status: status(&c.approved),
        body: Body::Html(autop(&c.content)),
        id: c.id,
        thread: it.post_id.clone(),
        parent,
        created_at,
        name: c.author,
        email: c.email,
        url: c.url,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(xml: &str) -> Result<Vec<Item>, ParseError> {
        let mut out = Vec::new();
        read(xml.as_bytes(), &mut |i| {
            out.push(i);
            Ok(())
        })?;
        Ok(out)
    }

    const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">
<channel><title>Blog</title><wp:wxr_version>1.2</wp:wxr_version>
"#;

    fn comment(id: u32, extra: &str) -> String {
        format!(
            "<wp:comment><wp:comment_id>{id}</wp:comment_id><wp:comment_author><![CDATA[A{id}]]></wp:comment_author>\
             <wp:comment_date>2019-03-01 12:00:00</wp:comment_date><wp:comment_date_gmt>2019-03-01 10:00:00</wp:comment_date_gmt>\
             <wp:comment_content><![CDATA[text {id}]]></wp:comment_content>{extra}</wp:comment>"
        )
    }

    #[test]
    fn items_are_threads_and_comments_posts() {
        let xml = format!(
            r#"{HEAD}<item><title>Tom &amp; Jerry</title><link>https://e.com/2019/tom/</link>
<guid isPermaLink="false">https://e.com/?p=42</guid><wp:post_id>42</wp:post_id>
<wp:post_date_gmt>2019-02-28 09:00:00</wp:post_date_gmt><wp:comment_status>closed</wp:comment_status>
<wp:status>publish</wp:status><wp:post_type>post</wp:post_type>
{}
{}
{}
{}
</item></channel></rss>"#,
            comment(
                8,
                "<wp:comment_parent>7</wp:comment_parent><wp:comment_approved>0</wp:comment_approved>\
                 <wp:commentmeta><wp:meta_key>k</wp:meta_key><wp:meta_value>v</wp:meta_value></wp:commentmeta>"
            ),
            comment(
                7,
                "<wp:comment_parent>0</wp:comment_parent><wp:comment_approved>1</wp:comment_approved>\
                 <wp:comment_author_email>a@e.com</wp:comment_author_email>"
            ),
            comment(9, "<wp:comment_type>pingback</wp:comment_type>"),
            comment(10, "<wp:comment_type>trackback</wp:comment_type>"),
        );
        let got = items(&xml).unwrap();
        assert_eq!(got.len(), 5, "{got:?}");
        let Item::Thread(t) = &got[0] else { panic!() };
        assert_eq!(t.key, "42");
        assert_eq!(t.idents, ["https://e.com/2019/tom/", "https://e.com/?p=42"]);
        assert_eq!(t.title, "Tom & Jerry");
        assert!(t.closed);
        assert_eq!(
            t.created_at,
            Some(parse_time("2019-02-28T09:00:00Z").unwrap())
        );
        let Item::Post(p) = &got[1] else { panic!() };
        assert_eq!(p.id, "8");
        assert_eq!(p.parent.as_deref(), Some("7"));
        assert_eq!(p.status, SourceStatus::Pending);
        assert_eq!(p.created_at, parse_time("2019-03-01T10:00:00Z").unwrap());
        assert_eq!(p.body, Body::Html("<p>text 8</p>".to_string()));
        let Item::Post(p) = &got[2] else { panic!() };
        assert_eq!(
            (p.parent.as_deref(), p.status),
            (None, SourceStatus::Approved)
        );
        assert_eq!((p.name.as_str(), p.email.as_str()), ("A7", "a@e.com"));
        assert_eq!(got[3], Item::Skipped(SKIP_PINGBACK));
        assert_eq!(got[4], Item::Skipped(SKIP_TRACKBACK));
    }

    #[test]
    fn drafts_trash_attachments_and_menu_items_skip_their_comments() {
        for (status, kind, why) in [
            ("draft", "post", SKIP_DRAFT),
            ("auto-draft", "post", SKIP_DRAFT),
            ("trash", "page", SKIP_TRASHED_POST),
            ("inherit", "attachment", SKIP_ATTACHMENT),
            ("publish", "nav_menu_item", SKIP_MENU_ITEM),
        ] {
            let xml = format!(
                "{HEAD}<item><link>https://e.com/x</link><wp:post_id>5</wp:post_id><wp:status>{status}</wp:status>\
                 <wp:post_type>{kind}</wp:post_type>{}{}</item></channel></rss>",
                comment(1, ""),
                comment(2, "")
            );
            assert_eq!(
                items(&xml).unwrap(),
                [Item::Skipped(why), Item::Skipped(why)]
            );
        }
        // A private post or a page keeps its comments.
        let xml = format!(
            "{HEAD}<item><wp:post_id>5</wp:post_id><wp:status>private</wp:status><wp:post_type>page</wp:post_type>{}</item></channel></rss>",
            comment(1, "")
        );
        assert!(matches!(items(&xml).unwrap()[1], Item::Post(_)));
    }

    #[test]
    fn a_long_post_is_not_read() {
        let body = "x".repeat(MAX_FIELD + 1);
        let xml = format!(
            "{HEAD}<item><wp:post_id>5</wp:post_id><content:encoded><![CDATA[{body}]]></content:encoded>{}</item></channel></rss>",
            comment(1, "")
        );
        assert_eq!(items(&xml).unwrap().len(), 2);
        // A comment that long is an error.
        let xml = format!(
            "{HEAD}<item><wp:post_id>5</wp:post_id>{}</item></channel></rss>",
            comment(1, "").replace("text 1", &body)
        );
        let e = items(&xml).unwrap_err();
        assert!(e.message.contains("longer than"), "{e}");
    }

    #[test]
    fn statuses() {
        assert_eq!(status("1"), SourceStatus::Approved);
        assert_eq!(status("0"), SourceStatus::Pending);
        assert_eq!(status("spam"), SourceStatus::Spam);
        assert_eq!(status("trash"), SourceStatus::Deleted);
        assert_eq!(status("post-trashed"), SourceStatus::Pending);
        assert_eq!(status(""), SourceStatus::Pending);
    }

    #[test]
    fn dates_are_utc_and_fall_back_to_the_local_one() {
        assert_eq!(
            date("2019-03-01 10:00:00").unwrap(),
            Some(1_551_434_400_000)
        );
        assert_eq!(date(NO_DATE).unwrap(), None);
        assert_eq!(date("").unwrap(), None);
        assert!(date("2019-02-30x").is_err());
        let xml = format!(
            "{HEAD}<item><wp:post_id>5</wp:post_id><wp:comment><wp:comment_id>1</wp:comment_id>\
             <wp:comment_date>2019-03-01 12:00:00</wp:comment_date><wp:comment_date_gmt>0000-00-00 00:00:00</wp:comment_date_gmt>\
             </wp:comment></item></channel></rss>"
        );
        let Item::Post(p) = &items(&xml).unwrap()[1] else {
            panic!()
        };
        assert_eq!(p.created_at, parse_time("2019-03-01T12:00:00Z").unwrap());
    }

    #[test]
    fn autop_makes_paragraphs_and_breaks() {
        assert_eq!(autop("one"), "<p>one</p>");
        assert_eq!(
            autop("one\ntwo\r\n\r\nthree\n\n\n"),
            "<p>one<br>\ntwo</p>\n<p>three</p>"
        );
        assert_eq!(
            autop("<blockquote>q\nr</blockquote>\nafter <b>b</b>"),
            "<blockquote>q<br>\nr</blockquote>\n<p>after <b>b</b></p>"
        );
        assert_eq!(
            autop("a\n<pre>x\n\ny</pre>\nb"),
            "<p>a</p>\n<pre>x\n\ny</pre>\n<p>b</p>"
        );
        assert_eq!(autop("<ul>\n<li>a</li>\n</ul>"), "<ul>\n<li>a</li>\n</ul>");
        assert_eq!(autop(""), "");
    }

    #[test]
    fn broken_files_name_line_and_column() {
        let xml = format!(
            "{HEAD}<item><wp:post_id>5</wp:post_id>\n{}\n<wp:comment><wp:comment_id>2</wp:comment_id></wp:coment></item></channel></rss>",
            comment(1, "")
        );
        let e = items(&xml).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("not well-formed"), "{e}");
        let xml = format!(
            "{HEAD}<item><wp:post_id>5</wp:post_id>\n<wp:comment><wp:comment_id>2</wp:comment_id><wp:comment_date_gmt>soon</wp:comment_date_gmt></wp:comment></item></channel></rss>"
        );
        let e = items(&xml).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(
            e.message.contains("soon") && e.message.contains("comment 2"),
            "{e}"
        );
        let e = items(&format!("{HEAD}<item>")).unwrap_err();
        assert!(e.message.contains("ends inside"), "{e}");
        let e = items("<disqus/>").unwrap_err();
        assert!(e.message.contains("not a WordPress export"), "{e}");
        let xml = format!(
            "{HEAD}<item><wp:post_id>5</wp:post_id>{}<wp:status>trash</wp:status></item></channel></rss>",
            comment(1, "")
        );
        let e = items(&xml).unwrap_err();
        assert!(e.message.contains("after the item's comments"), "{e}");
    }
}

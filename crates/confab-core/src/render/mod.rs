//! Markdown to safe HTML, once, at write time.
//!
//! Two layers, on purpose:
//! 1. pulldown-cmark parses the markdown, and the event stream is rewritten before any HTML is
//!    produced: raw HTML (block or inline) becomes text, so it is shown, never parsed; images
//!    become links (no request to a third party when a thread is shown); container nesting past
//!    [`MAX_NESTING`] is flattened. The flattening matters: html5ever (inside ammonia) is
//!    quadratic in nesting depth for some elements (html5ever#788), and markdown can nest lists
//!    or quotes thousands deep within the 10,000-character body limit.
//!    Bidi controls are kept only in pairs within each block's text (entities such as
//!    `&#x202E;` become characters here, after the input rules ran), so none reverses what
//!    follows the comment.
//! 2. ammonia sanitizes the result with a narrow allow-list: its default tags minus `img`,
//!    links limited to http, https and mailto, every link `rel="nofollow ugc noopener"`.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use std::sync::OnceLock;

/// Deepest container nesting kept in rendered HTML; deeper structure is flattened to text flow.
pub const MAX_NESTING: usize = 12;

/// The result of rendering one comment body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Sanitized HTML, safe to insert into any page.
    pub html: String,
    /// Whether the body contains a link (for the `links` moderation mode).
    pub has_links: bool,
}

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static B: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    B.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.rm_tags(["img"])
            .link_rel(Some("nofollow ugc noopener"))
            // Only the renderer's own mention marks: raw HTML in a body is text by now.
            .add_allowed_classes("span", ["confab-mention"])
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            .url_relative(ammonia::UrlRelative::Deny);
        b
    })
}

/// The sanitizer every rendered body goes through (also what the fuzz targets re-apply to
/// check that sanitizing is stable).
pub fn sanitize(html: &str) -> String {
    sanitizer().clean(html).to_string()
}

/// Renders a comment body (already length-checked) to sanitized HTML.
pub fn render_markdown(source: &str) -> Rendered {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let parser = Parser::new_ext(source, opts);

    // For each open tag: whether it was emitted (false when flattened for depth).
    let mut stack: Vec<bool> = Vec::new();
    let mut depth = 0usize;
    let mut has_links = false;
    // Links and code blocks open around the current text (whether emitted or flattened).
    let (mut link_open, mut code_open) = (0usize, 0usize);
    let mut events: Vec<Event<'_>> = Vec::new();
    for ev in parser {
        match &ev {
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => link_open += 1,
            Event::End(TagEnd::Link | TagEnd::Image) => link_open = link_open.saturating_sub(1),
            Event::Start(Tag::CodeBlock(_)) => code_open += 1,
            Event::End(TagEnd::CodeBlock) => code_open = code_open.saturating_sub(1),
            _ => {}
        }
        match ev {
            Event::Html(s) | Event::InlineHtml(s) => events.push(Event::Text(s)),
            Event::Start(tag) => {
                let tag = match tag {
                    Tag::HtmlBlock => Tag::Paragraph,
                    Tag::Image {
                        link_type,
                        dest_url,
                        title,
                        id,
                    } => Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    },
                    other => other,
                };
                if matches!(tag, Tag::Link { .. }) {
                    has_links = true;
                }
                // Inline tags don't add block nesting, but they still count: emphasis can nest too.
                let keep = depth < MAX_NESTING;
                stack.push(keep);
                if keep {
                    depth += 1;
                    events.push(Event::Start(tag));
                } else if is_block(&tag) {
                    // Keep words apart where a flattened block boundary was.
                    events.push(Event::SoftBreak);
                }
            }
            Event::End(end) => {
                let end = match end {
                    TagEnd::HtmlBlock => TagEnd::Paragraph,
                    TagEnd::Image => TagEnd::Link,
                    other => other,
                };
                if stack.pop().unwrap_or(false) {
                    depth = depth.saturating_sub(1);
                    events.push(Event::End(end));
                }
            }
            Event::Text(t) => {
                // Bare web addresses in prose become links, and `@name` mentions are marked;
                // never inside a link or code.
                if link_open == 0 && code_open == 0 {
                    has_links |= mentions_and_links(t, &mut events);
                } else {
                    events.push(Event::Text(t));
                }
            }
            other => events.push(other),
        }
    }
    pair_bidi(&mut events);
    let mut html = String::with_capacity(source.len() + source.len() / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    let clean = sanitize(&html);
    Rendered {
        html: clean,
        has_links,
    }
}

/// Marks `@name` mentions ([`crate::mention`]) with `<span class="confab-mention">` (no link:
/// a mention points at nobody's page) and autolinks the text between them. True when a link
/// was made.
fn mentions_and_links<'a>(t: CowStr<'a>, events: &mut Vec<Event<'a>>) -> bool {
    let found = if t.contains('@') {
        crate::mention::find_in_prose(&t)
    } else {
        Vec::new()
    };
    if found.is_empty() {
        if autolink(&t, events) {
            return true;
        }
        events.push(Event::Text(t));
        return false;
    }
    let mut links = false;
    let mut last = 0;
    let mut plain = |s: &str, events: &mut Vec<Event<'a>>| {
        if s.is_empty() {
            return;
        }
        let c = CowStr::from(s.to_string());
        if autolink(&c, events) {
            links = true;
        } else {
            events.push(Event::Text(c));
        }
    };
    for (s, e) in found {
        plain(&t[last..s], events);
        events.push(Event::InlineHtml(CowStr::from(
            "<span class=\"confab-mention\">",
        )));
        events.push(Event::Text(CowStr::from(t[s..e].to_string())));
        events.push(Event::InlineHtml(CowStr::from("</span>")));
        last = e;
    }
    plain(&t[last..], events);
    links
}

/// Most autolinks made in one text run (a body is at most 10,000 characters anyway).
const MAX_AUTOLINKS: usize = 200;

/// Splits `text` into text and links where it holds bare `http://`, `https://` or `www.`
/// addresses (GitHub's "autolink literals", without e-mail addresses); `www.` ones link to
/// `https://`. Returns false, pushing nothing, when there is none.
fn autolink<'a>(text: &CowStr<'a>, events: &mut Vec<Event<'a>>) -> bool {
    if !(text.contains("://") || text.contains("www.")) {
        return false;
    }
    let mut finder = linkify::LinkFinder::new();
    finder
        .kinds(&[linkify::LinkKind::Url])
        .url_must_have_scheme(false);
    let mut out = Vec::new();
    let mut last = 0;
    for link in finder.links(text).take(MAX_AUTOLINKS) {
        let s = link.as_str();
        let lower = s.to_ascii_lowercase();
        let href = if lower.starts_with("https://") || lower.starts_with("http://") {
            s.to_string()
        } else if lower.starts_with("www.") {
            format!("https://{s}")
        } else {
            continue;
        };
        if link.start() > last {
            out.push(Event::Text(CowStr::from(
                text[last..link.start()].to_string(),
            )));
        }
        out.push(Event::Start(Tag::Link {
            link_type: pulldown_cmark::LinkType::Autolink,
            dest_url: CowStr::from(href),
            title: CowStr::from(""),
            id: CowStr::from(""),
        }));
        out.push(Event::Text(CowStr::from(s.to_string())));
        out.push(Event::End(TagEnd::Link));
        last = link.end();
    }
    if out.is_empty() {
        return false;
    }
    if last < text.len() {
        out.push(Event::Text(CowStr::from(text[last..].to_string())));
    }
    events.extend(out);
    true
}

/// Drops unpaired bidi controls ([`crate::input::drop_unpaired_bidi`]) from each run of text
/// between block boundaries.
fn pair_bidi(events: &mut [Event<'_>]) {
    fn flush(events: &mut [Event<'_>], run: &mut Vec<usize>) {
        let mut pieces: Vec<String> = run
            .iter()
            .map(|&i| match &events[i] {
                Event::Text(t) | Event::Code(t) => t.to_string(),
                _ => String::new(),
            })
            .collect();
        let before = pieces.clone();
        crate::input::drop_unpaired_bidi(&mut pieces);
        for ((&i, p), b) in run.iter().zip(pieces).zip(before) {
            if p != b {
                events[i] = match events[i] {
                    Event::Code(_) => Event::Code(CowStr::from(p)),
                    _ => Event::Text(CowStr::from(p)),
                };
            }
        }
        run.clear();
    }
    if !events.iter().any(|e| matches!(e, Event::Text(t) | Event::Code(t) if t.chars().any(crate::input::is_bidi_control))) {
        return;
    }
    let mut run = Vec::new();
    for i in 0..events.len() {
        match &events[i] {
            Event::Text(_) | Event::Code(_) => run.push(i),
            Event::Start(t) if is_block(t) => flush(events, &mut run),
            Event::End(t) if is_block_end(t) => flush(events, &mut run),
            Event::Rule => flush(events, &mut run),
            _ => {}
        }
    }
    flush(events, &mut run);
}

fn is_block_end(tag: &TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::Paragraph
            | TagEnd::Heading(_)
            | TagEnd::BlockQuote(_)
            | TagEnd::CodeBlock
            | TagEnd::List(_)
            | TagEnd::Item
            | TagEnd::Table
            | TagEnd::TableHead
            | TagEnd::TableRow
            | TagEnd::TableCell
    )
}

fn is_block(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::Paragraph
            | Tag::Heading { .. }
            | Tag::BlockQuote(_)
            | Tag::CodeBlock(_)
            | Tag::List(_)
            | Tag::Item
            | Tag::Table(_)
            | Tag::TableHead
            | Tag::TableRow
            | Tag::TableCell
    )
}

/// Escapes text for inclusion in HTML element content or a quoted attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Pathological inputs at the maximum body size: nesting stays bounded, so html5ever never sees
/// the deep trees that make it quadratic. Their render time is reported by `confab bench --scenario render`.
pub fn pathological_inputs() -> Vec<(&'static str, String)> {
    let n = 10_000;
    vec![
        ("nested-lists", "- ".repeat(n / 2)),
        ("nested-quotes", ">".repeat(n)),
        ("nested-quotes-spaced", "> ".repeat(n / 2)),
        ("raw-ul-li", "<ul><li>".repeat(n / 8)),
        ("raw-div", "<div>".repeat(n / 5)),
        ("emphasis", "*a **b ".repeat(n / 7)),
        ("brackets", "[".repeat(n)),
        ("link-refs", "[a](".repeat(n / 4)),
        ("backticks", "`".repeat(n)),
        ("ordered-lists", "1. ".repeat(n / 3)),
        ("mixed", "> - 1. *".repeat(n / 8)),
        ("entities", "&#x41;".repeat(n / 6)),
    ]
}

#[cfg(test)]
mod tests;

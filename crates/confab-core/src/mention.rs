//! Mentions: `@name` in a comment's text (never inside code or a link), how a name is
//! compared, and how many one comment may notify.
//!
//! A mention is `@` at the start of a word (not inside an address such as `ann@example.com`)
//! followed by letters, digits, `_`, `.` or `-` (a trailing `.` or `-` is punctuation, not name).
//! It names someone who commented in the same thread, by their username or by their display
//! name (or a guest's name) written without spaces, compared case-insensitively: `@AnnLee`
//! mentions "Ann Lee". The renderer marks mentions (a `<span class="confab-mention">`, no
//! link: nothing about the person is shown that the comment did not already say); the mail
//! task resolves them when the comment is published.

/// Most distinct names one comment notifies (later ones are still shown highlighted).
pub const MAX_MENTIONS: usize = 5;
/// Longest name after `@`, in characters.
pub const MAX_MENTION_CHARS: usize = 40;

fn name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.' || c == '-'
}

/// The mentions in one run of plain text, as byte ranges of `@name` (the `@` included).
pub fn find(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c == '@' && !prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '@') {
            let start = i + 1;
            let mut end = start;
            let mut chars = 0;
            while let Some(&(j, d)) = iter.peek() {
                if !name_char(d) || chars == MAX_MENTION_CHARS {
                    break;
                }
                end = j + d.len_utf8();
                chars += 1;
                iter.next();
            }
            // Trailing punctuation ends a sentence, not a name.
            while end > start && text[..end].ends_with(['.', '-']) {
                end -= 1;
            }
            // An `@` followed by more name characters than allowed is not a mention.
            let too_long = iter.peek().is_some_and(|&(_, d)| name_char(d));
            if end > start && !too_long {
                out.push((i, end));
            }
            prev = text[..end.max(start)].chars().last();
            continue;
        }
        prev = Some(c);
    }
    out
}

/// The mentions in one run of prose: [`find`], less those inside a bare web address (which
/// the renderer makes a link: `https://example.com/@ann` mentions nobody).
pub fn find_in_prose(text: &str) -> Vec<(usize, usize)> {
    let found = find(text);
    if found.is_empty() || !(text.contains("://") || text.contains("www.")) {
        return found;
    }
    let mut finder = linkify::LinkFinder::new();
    finder
        .kinds(&[linkify::LinkKind::Url])
        .url_must_have_scheme(false);
    let links: Vec<(usize, usize)> = finder.links(text).map(|l| (l.start(), l.end())).collect();
    found
        .into_iter()
        .filter(|&(s, e)| !links.iter().any(|&(ls, le)| s < le && ls < e))
        .collect()
}

/// How a name compares: lower-cased, without white space.
pub fn key(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The distinct names (as [`key`]s) a markdown body mentions, in order, at most
/// [`MAX_MENTIONS`]. Text inside code and links is not read, as the renderer does.
pub fn mentioned(source: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out: Vec<String> = Vec::new();
    let (mut link_open, mut code_open) = (0usize, 0usize);
    for ev in Parser::new(source) {
        match ev {
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => link_open += 1,
            Event::End(TagEnd::Link | TagEnd::Image) => link_open = link_open.saturating_sub(1),
            Event::Start(Tag::CodeBlock(_)) => code_open += 1,
            Event::End(TagEnd::CodeBlock) => code_open = code_open.saturating_sub(1),
            Event::Text(t) if link_open == 0 && code_open == 0 => {
                for (s, e) in find_in_prose(&t) {
                    let k = key(&t[s + 1..e]);
                    if !out.contains(&k) {
                        out.push(k);
                        if out.len() == MAX_MENTIONS {
                            return out;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &str) -> Vec<&str> {
        find(t).into_iter().map(|(s, e)| &t[s..e]).collect()
    }

    #[test]
    fn mentions_are_words_that_start_with_at() {
        assert_eq!(names("hi @ann and @Bob_2."), ["@ann", "@Bob_2"]);
        assert_eq!(names("mail ann@example.com"), Vec::<&str>::new());
        assert_eq!(names("@ @. (@zoë)"), ["@zoë"]);
        assert_eq!(names(&format!("@{}", "a".repeat(41))), Vec::<&str>::new());
        assert_eq!(names(&format!("@{}", "a".repeat(40))).len(), 1);
    }

    #[test]
    fn mentioned_skips_code_and_links_dedupes_and_bounds() {
        assert_eq!(
            mentioned("@Ann `@code` [@link](https://x.example) https://y.example/@z @ann @AnnLee"),
            ["ann", "annlee"]
        );
        let many: String = (0..20).map(|i| format!("@u{i} ")).collect();
        assert_eq!(mentioned(&many).len(), MAX_MENTIONS);
        assert_eq!(key("Ann  Lee"), "annlee");
    }
}

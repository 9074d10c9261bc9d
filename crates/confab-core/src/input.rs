//! Parsed input: each type's only constructor checks the value, so code holding one never
//! re-checks it (parse, don't validate).

use crate::error::DomainError;

fn no_controls(s: &str, what: &str) -> Result<(), DomainError> {
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(DomainError::invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

// Text rules shared by every field people write and others read (comment bodies, author and
// display names, titles):
// - control characters are refused (a body keeps newlines and tabs);
// - a field of nothing visible (whitespace, zero-width characters, bidi controls, fillers) is
//   empty; one-line fields lose invisible characters at their ends;
// - bidi embeddings, overrides and isolates are kept only in matched pairs within one line:
//   an opener never closed, or a closer that closes nothing, is dropped, so no text can reverse
//   or re-embed what follows it on the page (a name, a date, the next comment).

/// Whether `c` draws nothing: Unicode's Default_Ignorable_Code_Point set (zero-width
/// characters, joiners, bidi controls, variation selectors, tags, soft hyphen, fillers) and the
/// blank braille pattern.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{2800}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Whether `c` shows something.
pub fn is_visible(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !is_invisible(c)
}

/// Characters trimmed from the ends of a one-line field: whitespace and invisible characters,
/// but not those that modify the character before them (variation selectors, emoji tags).
fn is_trimmable(c: char) -> bool {
    c.is_whitespace()
        || (is_invisible(c)
            && !matches!(c, '\u{180B}'..='\u{180D}' | '\u{180F}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0020}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}'))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bidi {
    /// LRE, RLE, LRO, RLO: closed by PDF.
    Embedding,
    /// LRI, RLI, FSI: closed by PDI.
    Isolate,
    Pdf,
    Pdi,
}

fn bidi(c: char) -> Option<Bidi> {
    match c {
        '\u{202A}' | '\u{202B}' | '\u{202D}' | '\u{202E}' => Some(Bidi::Embedding),
        '\u{2066}' | '\u{2067}' | '\u{2068}' => Some(Bidi::Isolate),
        '\u{202C}' => Some(Bidi::Pdf),
        '\u{2069}' => Some(Bidi::Pdi),
        _ => None,
    }
}

/// Whether `c` is a bidi embedding, override or isolate, or the end of one.
pub fn is_bidi_control(c: char) -> bool {
    bidi(c).is_some()
}

/// Drops the bidi controls of one paragraph that are not in a matched pair. The paragraph may
/// come in pieces (a markdown block's text runs); the pairing runs across them. Pairs follow
/// the bidi algorithm: a PDF closes the innermost embedding unless an isolate is open inside
/// it; a PDI closes the innermost open isolate (embeddings still open inside that isolate are
/// dropped). What is kept is properly nested and closed, so it ends where the paragraph does.
pub fn drop_unpaired_bidi(pieces: &mut [String]) {
    // keep[k]: whether the k-th bidi control of the paragraph stays.
    let mut keep: Vec<bool> = Vec::new();
    let mut open: Vec<(usize, Bidi)> = Vec::new();
    for c in pieces.iter().flat_map(|p| p.chars()) {
        let Some(kind) = bidi(c) else { continue };
        let k = keep.len();
        keep.push(false);
        match kind {
            Bidi::Embedding | Bidi::Isolate => open.push((k, kind)),
            Bidi::Pdf => {
                if let Some(&(o, Bidi::Embedding)) = open.last() {
                    open.pop();
                    keep[o] = true;
                    keep[k] = true;
                }
            }
            Bidi::Pdi => {
                if let Some(i) = open.iter().rposition(|&(_, b)| b == Bidi::Isolate) {
                    keep[open[i].0] = true;
                    keep[k] = true;
                    open.truncate(i);
                }
            }
        }
    }
    if keep.iter().all(|&k| k) {
        return;
    }
    let mut k = 0;
    for p in pieces.iter_mut() {
        if !p.chars().any(|c| bidi(c).is_some()) {
            continue;
        }
        *p = p
            .chars()
            .filter(|&c| {
                if bidi(c).is_none() {
                    return true;
                }
                k += 1;
                keep[k - 1]
            })
            .collect();
    }
}

/// [`drop_unpaired_bidi`] line by line (markdown blocks are made of whole lines; a line ends
/// at `\n`, `\r\n` or `\r`).
fn pair_bidi_by_line(s: &str) -> String {
    if !s.chars().any(|c| bidi(c).is_some()) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive(['\n', '\r']) {
        let mut l = [line.to_string()];
        drop_unpaired_bidi(&mut l);
        out.push_str(&l[0]);
    }
    out
}

/// The shared rule for one-line text: no control characters or line breaks, invisible
/// characters trimmed from the ends, bidi controls paired. May return an empty string.
fn one_line(raw: &str, what: &str) -> Result<String, DomainError> {
    if raw
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(DomainError::invalid(format!(
            "{what} must not contain control characters or line breaks"
        )));
    }
    let mut s = [raw.trim_matches(is_trimmable).to_string()];
    drop_unpaired_bidi(&mut s);
    let [s] = s;
    Ok(if s.chars().any(is_visible) {
        s
    } else {
        String::new()
    })
}

/// A comment's markdown source: 1..=max characters, with something visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentBody(String);

impl CommentBody {
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, DomainError> {
        let s = raw.trim_end();
        if !s.chars().any(is_visible) {
            return Err(DomainError::invalid(
                "body must not be empty (invisible characters alone don't count)",
            ));
        }
        let n = s.chars().count();
        if n > max_chars {
            return Err(DomainError::invalid(format!(
                "body is {n} characters; the limit is {max_chars}"
            )));
        }
        no_controls(s, "body")?;
        let s = pair_bidi_by_line(s);
        // Dropping unpaired controls can leave nothing visible at the end of a line.
        Ok(CommentBody(s.trim_end().to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name for a guest or an account: 1..=max characters, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorName(String);

impl AuthorName {
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, DomainError> {
        let s = one_line(raw, "name")?;
        if s.is_empty() {
            return Err(DomainError::invalid(
                "name must not be empty (invisible characters alone don't count)",
            ));
        }
        if s.chars().count() > max_chars {
            return Err(DomainError::invalid(format!(
                "name is longer than {max_chars} characters"
            )));
        }
        Ok(AuthorName(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address: a plausible `local@domain` (local part at most 64 characters), lower-cased
/// domain; at most 254 characters as given. Lengths are in characters, as JSON Schema counts
/// them, so the API document can state the rule exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        let bad = || DomainError::invalid("That is not a valid e-mail address.");
        if raw.chars().count() > 254
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
        {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || local.chars().count() > 64
            || domain.is_empty()
            || !domain.contains('.')
        {
            return Err(bad());
        }
        if s.chars().any(|c| {
            matches!(
                c,
                '<' | '>' | '"' | '(' | ')' | ',' | ';' | ':' | '\\' | '[' | ']'
            )
        }) || local.contains('@')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(bad());
        }
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A commenter's web site: an absolute http(s) URL of at most 500 characters as a reader
/// sees it (a `%XX` escape counts as the character it encodes). Counting the normalized form
/// this way gives the same answer for a URL as typed and as stored (percent-encoded), so a
/// stored URL always parses to itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUrl(String);

/// Longest [`WebUrl`], in characters as read.
pub const MAX_URL_CHARS: usize = 500;

/// Characters of `s` once its `%XX` escapes are decoded.
fn readable_chars(s: &str) -> usize {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).chars().count()
}

impl WebUrl {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        let bad = || DomainError::invalid("url must be an absolute http or https URL");
        let too_long =
            || DomainError::invalid(format!("url is longer than {MAX_URL_CHARS} characters"));
        // Bounds the work before parsing (no URL of 500 characters is longer, escaped).
        if s.len() > MAX_URL_CHARS * 12 {
            return Err(too_long());
        }
        let u = url::Url::parse(s).map_err(|_| bad())?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(bad());
        }
        if readable_chars(u.as_str()) > MAX_URL_CHARS {
            return Err(too_long());
        }
        Ok(WebUrl(u.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A forum's short name: 2..=64 of `a-z 0-9 -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForumName(String);

impl ForumName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = (2..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-');
        if !ok {
            return Err(DomainError::invalid(
                "forum name must be 2-64 characters of a-z, 0-9 and -",
            ));
        }
        Ok(ForumName(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account's login name: 3..=32 of `A-Z a-z 0-9 _ . -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Fewest characters.
    pub const MIN: usize = 3;
    /// Most characters.
    pub const MAX: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let n = raw.chars().count();
        if n < Self::MIN {
            return Err(DomainError::invalid(format!(
                "The username must be at least {} characters.",
                Self::MIN
            )));
        }
        if n > Self::MAX {
            return Err(DomainError::invalid(format!(
                "The username must be at most {} characters.",
                Self::MAX
            )));
        }
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            let what = if c.is_whitespace() {
                "a space".to_string()
            } else {
                format!("\"{c}\"")
            };
            return Err(DomainError::invalid(format!(
                "The username cannot contain {what}: use letters (a-z), digits, _ . or -."
            )));
        }
        Ok(Username(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed: 8..=256 characters. Never stored; hashed with argon2id.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Fewest characters.
    pub const MIN: usize = 8;
    /// Most characters.
    pub const MAX: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let n = raw.chars().count();
        if n < Self::MIN {
            return Err(DomainError::invalid(format!(
                "The password must be at least {} characters.",
                Self::MIN
            )));
        }
        if n > Self::MAX {
            return Err(DomainError::invalid(format!(
                "The password must be at most {} characters.",
                Self::MAX
            )));
        }
        Ok(Password(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A thread title: at most 300 characters, one line; empty when nothing in it is visible.
pub fn parse_title(raw: &str) -> Result<String, DomainError> {
    let s = one_line(raw, "title")?;
    if s.chars().count() > 300 {
        return Err(DomainError::invalid("title is longer than 300 characters"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_web_url_is_measured_alike_as_typed_and_as_stored() {
        // Found by the comment_body fuzz target: 214 bytes typed, 614 stored, and the stored
        // form was then refused by the same parser.
        for typed in [
            format!("https://e.com/{}", "<".repeat(200)),
            format!("https://example.com/{}", "é".repeat(480)),
        ] {
            let stored = WebUrl::parse(&typed).unwrap();
            assert!(stored.as_str().len() > 500, "{}", stored.as_str());
            assert_eq!(
                WebUrl::parse(stored.as_str()).unwrap().as_str(),
                stored.as_str()
            );
        }
        assert!(
            WebUrl::parse(&format!("https://example.com/{}", "é".repeat(481))).is_err(),
            "501 characters"
        );
        assert!(WebUrl::parse(&format!("https://example.com/{}", "a".repeat(481))).is_err());
        assert!(
            WebUrl::parse(&format!("https://example.com/{}", "%41".repeat(480))).is_ok(),
            "an escape is one character"
        );
    }

    use super::*;

    #[test]
    fn body_limits() {
        assert!(CommentBody::parse("", 10).is_err());
        assert!(CommentBody::parse(" \n\t ", 10).is_err());
        assert!(CommentBody::parse("héllo", 5).is_ok());
        assert!(CommentBody::parse("héllo!", 5).is_err());
        assert!(CommentBody::parse("a\u{7}b", 10).is_err());
        assert_eq!(
            CommentBody::parse("line\n\nnext  \n", 100)
                .unwrap()
                .as_str(),
            "line\n\nnext"
        );
    }

    #[test]
    fn names_and_emails() {
        assert!(AuthorName::parse(&"n".repeat(100), 100).is_ok());
        assert!(AuthorName::parse(&"n".repeat(101), 100).is_err());
        assert!(AuthorName::parse("a\nb", 100).is_err());
        assert_eq!(
            Email::parse(" Bob@Example.COM ").unwrap().as_str(),
            "Bob@example.com"
        );
        for bad in [
            "",
            "x",
            "a@b",
            "a@@b.c",
            "<a@b.c>",
            "a b@c.d",
            "a@b..c",
            "\"a\"@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invisible_only_text_is_empty() {
        for s in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
            " \u{202E} ",
            "\u{2066}\u{2069}\n\u{200E}",
            "\u{00AD}\u{3164}\u{2800}",
            "\u{E0041}\u{FE0F}",
        ] {
            assert!(CommentBody::parse(s, 100).is_err(), "body {s:?}");
            assert!(AuthorName::parse(s, 100).is_err(), "name {s:?}");
            if !s.contains('\n') {
                assert_eq!(parse_title(s).unwrap(), "", "title {s:?}");
            }
        }
        // Invisible characters at a name's ends go; inside, and modifiers, stay.
        assert_eq!(
            AuthorName::parse("\u{200B} Ann\u{FEFF}\u{200D}", 100)
                .unwrap()
                .as_str(),
            "Ann"
        );
        let family = "\u{1F468}\u{200D}\u{1F469}";
        assert_eq!(AuthorName::parse(family, 100).unwrap().as_str(), family);
        assert_eq!(
            AuthorName::parse("I \u{2764}\u{FE0F}", 100)
                .unwrap()
                .as_str(),
            "I \u{2764}\u{FE0F}"
        );
        let flag = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}";
        assert_eq!(AuthorName::parse(flag, 100).unwrap().as_str(), flag);
        assert!(
            AuthorName::parse("a\u{2028}b", 100).is_err(),
            "a line separator is a line break"
        );
        assert!(Email::parse("a\u{200B}@example.com").is_err());
    }

    fn paired(s: &str) -> String {
        let mut p = [s.to_string()];
        drop_unpaired_bidi(&mut p);
        let [p] = p;
        p
    }

    #[test]
    fn bidi_controls_are_kept_only_in_pairs() {
        let (lre, rle, pdf, lro, rlo) =
            ('\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}');
        let (lri, rli, fsi, pdi) = ('\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}');
        for (s, want) in [
            (format!("a{rlo}b"), "ab".to_string()),
            (format!("a{pdf}b{pdi}"), "ab".into()),
            (format!("{rlo}x{pdf}"), format!("{rlo}x{pdf}")),
            (format!("{rli}x{pdi}"), format!("{rli}x{pdi}")),
            (format!("{lre}{rle}x{pdf}"), format!("{rle}x{pdf}")),
            // A PDF does not close an embedding from outside an open isolate.
            (
                format!("{lro}{lri}x{pdf}{pdi}{pdf}"),
                format!("{lro}{lri}x{pdi}{pdf}"),
            ),
            // A PDI closes its isolate; an embedding left open inside it is dropped.
            (format!("{fsi}{rlo}x{pdi}"), format!("{fsi}x{pdi}")),
            (format!("{rle}{fsi}x{pdi}"), format!("{fsi}x{pdi}")),
            (format!("{pdi}{rli}{rli}x{pdi}"), format!("{rli}x{pdi}")),
        ] {
            assert_eq!(paired(&s), want, "{s:?}");
        }
        // Across the pieces of one paragraph.
        let mut pieces = [format!("a{rlo}b"), "c".to_string(), format!("d{pdf}{pdf}")];
        drop_unpaired_bidi(&mut pieces);
        assert_eq!(
            pieces,
            [format!("a{rlo}b"), "c".to_string(), format!("d{pdf}")]
        );
        // A body pairs within each line; a name within itself.
        let body = CommentBody::parse(
            &format!("price {rlo}0.01\n{pdf}next {rli}x{pdi}\r\n{rlo}a\rb{pdf}"),
            100,
        )
        .unwrap();
        assert_eq!(
            body.as_str(),
            format!("price 0.01\nnext {rli}x{pdi}\r\na\rb")
        );
        assert_eq!(
            AuthorName::parse(&format!("a{rlo}b"), 100)
                .unwrap()
                .as_str(),
            "ab"
        );
        assert_eq!(
            AuthorName::parse(&format!("{rlo}evil"), 100)
                .unwrap()
                .as_str(),
            "evil"
        );
        assert_eq!(parse_title(&format!("t{rli}x")).unwrap(), "tx");
    }

    #[test]
    fn urls_and_names() {
        assert!(WebUrl::parse("https://example.com/me").is_ok());
        assert!(WebUrl::parse("javascript:alert(1)").is_err());
        assert!(WebUrl::parse("ftp://example.com").is_err());
        assert!(WebUrl::parse("/relative").is_err());
        assert!(ForumName::parse("my-blog").is_ok());
        assert!(ForumName::parse("My Blog").is_err());
        assert!(Username::parse("ann_1").is_ok());
        assert!(Username::parse("a").is_err());
        assert!(Password::parse("short").is_err());
        assert_eq!(
            format!("{:?}", Password::parse("longenough").unwrap()),
            "Password(***)"
        );
    }
}

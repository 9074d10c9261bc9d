//! Shared oracles for Confab's fuzz targets (see fuzz/README.md).
//!
//! The targets assert properties, not just "no panic". A property that fails is a finding: its
//! reproducer is kept under `fuzz/artifacts-kept/<target>/` and the target keeps asserting it.
//! `CONFAB_FUZZ_KNOWN=name,name` lets a long run look past a finding that is already reported
//! (each name is one `known(...)` call site in a target); unset, every property is
//! checked, which is what scripts/fuzz.sh does unless told otherwise.

use std::sync::OnceLock;

/// Whether the already-reported finding `name` should be tolerated in this run.
pub fn known(name: &str) -> bool {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN
        .get_or_init(|| {
            std::env::var("CONFAB_FUZZ_KNOWN")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|k| k == name)
}

/// Tags that markdown rendering may produce and the sanitizer may keep.
const ALLOWED_TAGS: &[&str] = &[
    "p",
    "a",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "br",
    "del",
    "s",
    // An `@name` mention (`confab_core::mention`), with its one class.
    "span",
];

/// Attributes allowed on a tag.
fn attr_allowed(tag: &str, attr: &str) -> bool {
    matches!(
        (tag, attr),
        ("a", "href" | "rel" | "title") | ("ol", "start") | ("span", "class")
    )
}

/// Decodes the entities html5ever's serializer writes in attribute values (and numeric ones).
fn decode_attr(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let Some(semi) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let ent = &after[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "nbsp" => Some('\u{a0}'),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What a browser would take as the URL scheme of an href value, lower-cased.
fn href_scheme(value: &str) -> Option<String> {
    // WHATWG URL parsing strips leading/trailing C0 controls and spaces and removes tab/newline.
    let v: String = decode_attr(value)
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let colon = v.find(':')?;
    let scheme = &v[..colon];
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    Some(scheme.to_ascii_lowercase())
}

/// One tag of sanitized output.
struct TagTok<'a> {
    closing: bool,
    name: &'a str,
    attrs: Vec<(&'a str, &'a str)>,
}

/// Splits html5ever-serialized HTML into tags; panics on anything not of that regular form.
fn tags<'a>(input: &str, html: &'a str) -> Vec<TagTok<'a>> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let t = &rest[lt + 1..];
        let (closing, t) = match t.strip_prefix('/') {
            Some(t) => (true, t),
            None => (false, t),
        };
        let name_end = t
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(t.len());
        let name = &t[..name_end];
        assert!(
            !name.is_empty(),
            "'<' not starting a tag in {html:?} from {input:?}"
        );
        let mut a = &t[name_end..];
        let mut attrs = Vec::new();
        loop {
            if let Some(r) = a.strip_prefix('>') {
                a = r;
                break;
            }
            let r = a
                .strip_prefix(' ')
                .unwrap_or_else(|| panic!("malformed tag <{name}> in {html:?} from {input:?}"));
            let eq = r
                .find('=')
                .unwrap_or_else(|| panic!("bare attribute in <{name}> in {html:?} from {input:?}"));
            let key = &r[..eq];
            let v = r[eq + 1..]
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("unquoted attribute {key} in {html:?} from {input:?}"));
            let close = v
                .find('"')
                .unwrap_or_else(|| panic!("unclosed attribute {key} in {html:?} from {input:?}"));
            attrs.push((key, &v[..close]));
            a = &v[close + 1..];
        }
        assert!(
            !closing || attrs.is_empty(),
            "attributes on a closing tag in {html:?}"
        );
        out.push(TagTok {
            closing,
            name,
            attrs,
        });
        rest = a;
    }
    out
}

/// Checks rendered comment HTML: only allowed tags and attributes, links only to http, https and
/// mailto with the fixed rel, no script-ish markup anywhere outside attribute values, nesting
/// bounded, `has_links` set when a link survived, and sanitizing the output again changes nothing.
pub fn check_rendered(input: &str, html: &str, has_links: bool) {
    let toks = tags(input, html);
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    let mut saw_link = false;
    for t in &toks {
        let name = t.name.to_ascii_lowercase();
        assert!(
            ALLOWED_TAGS.contains(&name.as_str()),
            "tag <{name}> survived in {html:?} from {input:?}"
        );
        if t.closing {
            depth = depth.saturating_sub(1);
            continue;
        }
        if name != "br" && name != "hr" {
            depth += 1;
            max_depth = max_depth.max(depth);
        }
        if name == "a" {
            saw_link = true;
            let rel = t.attrs.iter().find(|(k, _)| *k == "rel").map(|(_, v)| *v);
            assert_eq!(
                rel,
                Some("nofollow ugc noopener"),
                "link without the fixed rel in {html:?} from {input:?}"
            );
        }
        for (k, v) in &t.attrs {
            let key = k.to_ascii_lowercase();
            assert!(
                !key.starts_with("on"),
                "event handler {key} in {html:?} from {input:?}"
            );
            assert!(
                attr_allowed(&name, &key),
                "attribute {key} on <{name}> survived in {html:?} from {input:?}"
            );
            if key == "class" {
                assert_eq!(
                    *v, "confab-mention",
                    "class {v:?} survived in {html:?} from {input:?}"
                );
            }
            if key == "href" {
                let scheme = href_scheme(v);
                assert!(
                    matches!(scheme.as_deref(), Some("http" | "https" | "mailto")),
                    "href {v:?} (scheme {scheme:?}) survived in {html:?} from {input:?}"
                );
            }
        }
    }
    // Outside attribute values, '<' only ever opens an allowed tag (checked above); these are
    // belt and braces for the common vectors.
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script", "<img", "<iframe", "<svg", "<style", "<object", "<embed", "<form", "<base",
        "<meta", "<link",
    ] {
        if lower.contains(bad) {
            // Allowed only inside a quoted attribute value (a link title): no tag was opened.
            assert!(
                toks.iter().all(|t| t.name.to_ascii_lowercase() != bad[1..]),
                "{bad} in {html:?} from {input:?}"
            );
        }
    }
    assert!(
        max_depth <= confab_core::render::MAX_NESTING + 1,
        "nesting depth {max_depth} > {} in {html:?} from {input:?}",
        confab_core::render::MAX_NESTING + 1
    );
    if saw_link {
        assert!(
            has_links,
            "a link survived but has_links is false: {html:?} from {input:?}"
        );
    }
    let again = confab_core::render::sanitize(html);
    assert_eq!(
        again, html,
        "sanitizing the output again changed it (from {input:?})"
    );
}

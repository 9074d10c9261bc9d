use super::*;

/// Tags the sanitizer may let through (ammonia defaults we can produce from markdown).
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
];

/// Walks every tag in sanitized output and fails on anything that could run script or fetch.
fn assert_safe(input: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after
            .find('>')
            .unwrap_or_else(|| panic!("unclosed tag in {html:?} from {input:?}"));
        let tag = &after[..end];
        rest = &after[end + 1..];
        let tag = tag.trim_start_matches('/');
        let mut parts = tag.splitn(2, char::is_whitespace);
        let name = parts.next().unwrap_or("");
        assert!(
            ALLOWED_TAGS.contains(&name),
            "tag <{name}> survived from {input:?}: {html}"
        );
        let attrs = parts.next().unwrap_or("");
        // Attributes are name="value" pairs; only href and rel on links.
        let mut a = attrs.trim();
        while !a.is_empty() {
            let eq = a
                .find('=')
                .unwrap_or_else(|| panic!("bare attribute in {html:?}"));
            let key = a[..eq].trim();
            assert!(
                (name == "a" && (key == "href" || key == "rel" || key == "title")),
                "attribute {key} on <{name}> survived from {input:?}: {html}"
            );
            let v = &a[eq + 1..];
            assert!(v.starts_with('"'), "unquoted attribute in {html}");
            let close = v[1..].find('"').expect("closing quote") + 1;
            let value = &v[1..close];
            if key == "href" {
                assert!(
                    value.starts_with("http://")
                        || value.starts_with("https://")
                        || value.starts_with("mailto:"),
                    "href {value:?} survived from {input:?}"
                );
            }
            a = v[close + 1..].trim();
        }
    }
}

#[test]
fn xss_corpus_none_survives() {
    let corpus = include_str!("../../../../testdata/xss-corpus.txt");
    let vectors: Vec<&str> = corpus.lines().filter(|l| !l.is_empty()).collect();
    assert!(vectors.len() >= 50, "corpus has {} vectors", vectors.len());
    for v in vectors {
        let r = render_markdown(v);
        assert_safe(v, &r.html);
        // Raw HTML is shown as text: the characters survive escaped, never as markup.
        if v.starts_with("<script>") {
            assert!(r.html.contains("&lt;script&gt;"), "{}", r.html);
        }
    }
}

#[test]
fn links_get_rel_and_safe_schemes() {
    let r = render_markdown("see [docs](https://example.com/a) and <https://example.org>");
    assert!(r.has_links);
    assert!(
        r.html.contains(r#"href="https://example.com/a""#),
        "{}",
        r.html
    );
    assert!(
        r.html.contains(r#"rel="nofollow ugc noopener""#),
        "{}",
        r.html
    );
    let r = render_markdown("[x](/relative) [y](ftp://h/x)");
    assert!(!r.html.contains("href"), "{}", r.html);
    assert!(!render_markdown("just words").has_links);
}

#[test]
fn markdown_basics_render() {
    let r = render_markdown("**bold** _it_ `code` ~~gone~~\n\n> quote\n\n- a\n- b");
    for want in [
        "<strong>bold</strong>",
        "<em>it</em>",
        "<code>code</code>",
        "<del>gone</del>",
        "<blockquote>",
        "<li>a</li>",
    ] {
        assert!(r.html.contains(want), "{want} in {}", r.html);
    }
}

#[test]
fn images_become_links() {
    let r = render_markdown("![cat](https://example.com/cat.png)");
    assert!(!r.html.contains("<img"), "{}", r.html);
    assert!(
        r.html.contains(r#"href="https://example.com/cat.png""#),
        "{}",
        r.html
    );
}

fn max_depth(html: &str) -> usize {
    let (mut d, mut max) = (0usize, 0usize);
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        let end = after.find('>').unwrap_or(after.len());
        let tag = &after[..end];
        if tag.starts_with('/') {
            d = d.saturating_sub(1);
        } else if !tag.ends_with('/') && !tag.starts_with("br") && !tag.starts_with("hr") {
            d += 1;
            max = max.max(d);
        }
        rest = &after[end.min(after.len())..];
    }
    max
}

#[test]
fn pathological_nesting_is_flattened() {
    for (name, input) in pathological_inputs() {
        assert!(input.chars().count() <= 10_000, "{name}");
        let r = render_markdown(&input);
        let d = max_depth(&r.html);
        assert!(d <= MAX_NESTING + 1, "{name}: depth {d}");
        assert_safe(name, &r.html);
    }
}

#[test]
fn escape_html_escapes_everything_dangerous() {
    assert_eq!(
        escape_html(r#"<a href="x">'&"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
    );
}

/// Whether every bidi embedding and isolate in `s` is closed, in order, before `s` ends.
fn bidi_balanced(s: &str) -> bool {
    let mut open: Vec<bool> = Vec::new(); // true: isolate
    for c in s.chars() {
        match c {
            '\u{202A}' | '\u{202B}' | '\u{202D}' | '\u{202E}' => open.push(false),
            '\u{2066}'..='\u{2068}' => open.push(true),
            '\u{202C}' if open.pop() != Some(false) => return false,
            '\u{2069}' => match open.iter().rposition(|&iso| iso) {
                Some(i) => open.truncate(i),
                None => return false,
            },
            _ => {}
        }
    }
    open.is_empty()
}

#[test]
fn bidi_controls_reach_html_only_in_pairs() {
    for src in [
        "entity &#x202E;reversed",
        "&#8295;isolate never closed, &#x202C; a closer of nothing",
        "*&#x202E;emphasis* after&#x202C;",
        "one &#x202E;paragraph\n\nanother &#x202C;one",
        "- item &#x202D;one\n- item &#x202C;two",
        "`&#x202E;` stays as written in code, and `\u{202E}` goes",
        "| a |\n|---|\n| &#x202E;cell |",
        "[link &#x202E;text](https://example.com)",
    ] {
        let html = render_markdown(src).html;
        assert!(bidi_balanced(&html), "{src:?} -> {html:?}");
        for block in html
            .split("</p>")
            .flat_map(|b| b.split("</li>"))
            .flat_map(|b| b.split("</td>"))
        {
            assert!(bidi_balanced(block), "{src:?}: block {block:?}");
        }
    }
    // Pairs are kept, within one block.
    let html = render_markdown("a &#x202E;b&#x202C; c").html;
    assert_eq!(html, "<p>a \u{202E}b\u{202C} c</p>\n");
    let html = render_markdown("a &#x2067;b *c* d&#x2069;").html;
    assert_eq!(html, "<p>a \u{2067}b <em>c</em> d\u{2069}</p>\n");
}

#[test]
fn bare_addresses_become_links_outside_links_and_code() {
    let r = render_markdown(
        "see https://example.com/a?b=1&c=2. and www.example.org, or mail me@example.com",
    );
    assert!(r.has_links);
    assert!(
        r.html.contains(r#"<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow ugc noopener">https://example.com/a?b=1&amp;c=2</a>."#),
        "{}",
        r.html
    );
    assert!(
        r.html.contains(
            r#"<a href="https://www.example.org" rel="nofollow ugc noopener">www.example.org</a>,"#
        ),
        "{}",
        r.html
    );
    assert!(!r.html.contains("mailto:"), "{}", r.html);
    // Already a link, in code, or a scheme the sanitizer refuses: left alone.
    let r = render_markdown(
        "[x](https://a.example/) `https://b.example` javascript://c.example/%0aalert(1)",
    );
    assert_eq!(r.html.matches("<a ").count(), 1, "{}", r.html);
    assert!(
        r.html.contains("<code>https://b.example</code>"),
        "{}",
        r.html
    );
    assert!(!r.html.contains("javascript:\""), "{}", r.html);
    let r = render_markdown("```\nhttps://c.example\n```");
    assert!(!r.has_links && !r.html.contains("<a "), "{}", r.html);
    // Plain text stays plain.
    assert!(!render_markdown("no address here, just a.b").has_links);
}

#[test]
fn mentions_are_marked_outside_links_and_code_and_cannot_be_forged() {
    let r = render_markdown("hi @Ann, see https://a.example/@x and `@code`, mail b@c.example");
    assert!(
        r.html.contains(
            r#"hi <span class="confab-mention">@Ann</span>, see <a href="https://a.example/@x""#
        ),
        "{}",
        r.html
    );
    assert_eq!(r.html.matches("confab-mention").count(), 1, "{}", r.html);
    assert!(r.has_links);
    // Typed HTML stays text; a class other than the renderer's is dropped.
    let r =
        render_markdown(r#"<span class="confab-mention">@x</span> <span class="evil">y</span>"#);
    assert!(!r.html.contains(r#"<span class="evil""#), "{}", r.html);
    assert_eq!(r.html.matches("<span").count(), 1, "{}", r.html);
}

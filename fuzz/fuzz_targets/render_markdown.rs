//! Markdown -> sanitized HTML: the output is safe (see `confab_fuzz::check_rendered`) and
//! rendering is deterministic. Inputs are capped at the default body limit (10,000 characters),
//! as `render_markdown` is only ever given a length-checked body.
#![no_main]
use confab_core::render::render_markdown;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if src.chars().count() > 10_000 {
        return;
    }
    let r = render_markdown(src);
    confab_fuzz::check_rendered(src, &r.html, r.has_links);
    assert_eq!(
        render_markdown(src),
        r,
        "render is not deterministic for {src:?}"
    );
});

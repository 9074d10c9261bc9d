//! `confab admin edit-forum`'s settings: `--set KEY=VALUE` pairs become the same JSON object
//! `PATCH /api/v1/forums/{forum}` takes (and is refused for the same unknown keys), and
//! `--add-origin`/`--remove-origin` edit the forum's list of allowed origins.

use anyhow::{bail, Result};
use serde_json::{Map, Value};

/// The object the `--set` pairs make: each value is read as JSON, and one that is not JSON is
/// a string (`--set title=My blog`). A key given twice is an error, not "the last one wins".
pub fn patch_from_sets(sets: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in sets {
        let Some((key, raw)) = pair.split_once('=') else {
            bail!("--set {pair:?}: expected KEY=VALUE, e.g. --set max_links=3");
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("--set {pair:?}: the key is empty");
        }
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        if out.insert(key.to_string(), value).is_some() {
            bail!("--set {key}=… is given twice");
        }
    }
    Ok(out)
}

/// `now` with `add` appended (those not already there) and `remove` taken out. Removing an
/// origin the forum does not have is an error: it is almost always a typo.
pub fn edit_origins(
    forum: &str,
    mut now: Vec<String>,
    add: &[String],
    remove: &[String],
) -> Result<Vec<String>> {
    for r in remove {
        let r = r.trim().trim_end_matches('/');
        let Some(i) = now.iter().position(|o| o.trim_end_matches('/') == r) else {
            bail!(
                "forum {forum} has no allowed origin {r} (it has: {})",
                if now.is_empty() {
                    "none".to_string()
                } else {
                    now.join(" ")
                }
            );
        };
        now.remove(i);
    }
    for a in add {
        let a = a.trim();
        if !now
            .iter()
            .any(|o| o.trim_end_matches('/') == a.trim_end_matches('/'))
        {
            now.push(a.to_string());
        }
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_are_json_else_strings() {
        let m = patch_from_sets(&strings(&[
            "max_links=3",
            "flags_to_hold=null",
            r#"words={"block":["casino"]}"#,
            "title=My blog = the best",
            "gravatar=true",
        ]))
        .unwrap();
        assert_eq!(m["max_links"], 3);
        assert_eq!(m["flags_to_hold"], Value::Null);
        assert_eq!(m["words"]["block"][0], "casino");
        assert_eq!(m["title"], "My blog = the best");
        assert_eq!(m["gravatar"], true);
    }

    #[test]
    fn bad_pairs_are_refused() {
        for bad in [&["max_links"][..], &["=3"], &["a=1", "a=2"]] {
            assert!(patch_from_sets(&strings(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origins_are_added_once_and_removed_by_name() {
        let now = strings(&["https://a.example", "https://b.example/"]);
        let got = edit_origins(
            "blog",
            now.clone(),
            &strings(&["https://c.example", "https://a.example/"]),
            &strings(&["https://b.example"]),
        )
        .unwrap();
        assert_eq!(got, strings(&["https://a.example", "https://c.example"]));
        let err = edit_origins("blog", now, &[], &strings(&["https://typo.example"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no allowed origin https://typo.example"),
            "{err}"
        );
    }
}

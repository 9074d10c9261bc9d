//! A Remark42 backup (what `remark42 backup` and the daily automatic backups write, gzipped):
//! JSON lines, read one line at a time. The first line is the site's metadata, every other
//! line one comment:
//!
//! ```text
//! {"version":1,"users":[{"id":"github_1","blocked":{"status":true,"until":"..."},...}],
//!  "posts":[{"url":"https://blog.example.com/hello/","read_only":true}]}
//! {"id":"3f2c...","pid":"","text":"<p>Hi <em>all</em></p>\n","orig":"Hi *all*",
//!  "user":{"name":"Ann","id":"github_1","picture":"...","ip":"<hash>","admin":false},
//!  "locator":{"site":"blog","url":"https://blog.example.com/hello/"},"score":2,"votes":{...},
//!  "time":"2019-03-01T10:00:00.123456789+03:00","delete":false,"title":"Hello"}
//! ```
//!
//! - A comment's thread is its `locator.url`; its title comes from the comment's `title` (or a
//!   post's `title` in the metadata, when there is one); `read_only` posts are closed.
//! - `text` is the HTML Remark42 rendered (sanitized on the way in); when it is empty the
//!   markdown `orig` is rendered instead. `pid` names the parent (empty: top level).
//! - `delete` comments are deleted (placeholders when they have replies); comments of a blocked
//!   user (the comment's `user.block`, or the user's `blocked.status` in the metadata), which
//!   Remark42 hides from readers, go to the spam queue. Remark42 keeps no e-mail addresses.
//!
//! A line that is not JSON of that shape, or longer than [`MAX_LINE`] (the metadata:
//! [`MAX_META_LINE`]), is an error naming its line (and column, for JSON).

use super::disqus::parse_time;
use super::{Body, Item, SourcePost, SourceStatus, SourceThread};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read};

/// Longest comment line read.
pub const MAX_LINE: usize = 1 << 20;
/// Longest metadata line read: it lists every page and every user of the site (about 100
/// bytes each), so a big site's can pass 1 MiB.
pub const MAX_META_LINE: usize = 64 << 20;

#[derive(Debug, Deserialize)]
struct Meta {
    version: i64,
    #[serde(default)]
    users: Option<Vec<MetaUser>>,
    #[serde(default)]
    posts: Option<Vec<MetaPost>>,
}

#[derive(Debug, Deserialize)]
struct MetaUser {
    #[serde(default)]
    id: String,
    #[serde(default)]
    blocked: Option<MetaBlocked>,
}

#[derive(Debug, Deserialize)]
struct MetaBlocked {
    #[serde(default)]
    status: bool,
}

#[derive(Debug, Deserialize)]
struct MetaPost {
    url: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    read_only: bool,
}

#[derive(Debug, Deserialize)]
struct Comment {
    id: String,
    #[serde(default)]
    pid: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    orig: String,
    #[serde(default)]
    user: User,
    locator: Locator,
    time: String,
    #[serde(default)]
    delete: bool,
    #[serde(default)]
    title: String,
}

#[derive(Debug, Default, Deserialize)]
struct User {
    #[serde(default)]
    name: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    block: bool,
}

#[derive(Debug, Deserialize)]
struct Locator {
    url: String,
}

/// serde_json's message without its own position (line 1 of the one line it was given).
fn json_error(n: u64, e: &serde_json::Error) -> String {
    let m = e.to_string();
    let m = m.rfind(" at line ").map_or(m.as_str(), |i| &m[..i]);
    format!("line {n}, column {}: {m}", e.column())
}

/// Reads the next line (without its newline) into `line`: `Ok(false)` at the end.
fn next_line(input: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> Result<bool, String> {
    line.clear();
    let n = input
        .by_ref()
        .take(max as u64 + 1)
        .read_until(b'\n', line)
        .map_err(|e| format!("reading: {e}"))?;
    if n == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    } else if n > max {
        return Err(format!("longer than {} MiB", max >> 20));
    }
    Ok(true)
}

/// Reads the backup as the import pipeline's items. Errors start with the line.
pub fn read(
    mut input: impl BufRead,
    emit: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), String> {
    let mut line = Vec::new();
    let mut n = 0u64;
    // The metadata: the first line that is not blank.
    let meta: Meta = loop {
        n += 1;
        if !next_line(&mut input, &mut line, MAX_META_LINE).map_err(|m| format!("line {n}: {m}"))? {
            return Err("the file is empty: not a Remark42 backup".to_string());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        break serde_json::from_slice(&line).map_err(|e| {
            format!(
                "{} (not a Remark42 backup: its first line is the site's metadata, with a \
                 version)",
                json_error(n, &e)
            )
        })?;
    };
    if meta.version > 1 {
        return Err(format!(
            "line {n}: a Remark42 backup of version {}, newer than this importer reads (1)",
            meta.version
        ));
    }
    let posts: HashMap<String, MetaPost> = meta
        .posts
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.url.clone(), p))
        .collect();
    let blocked: HashSet<String> = meta
        .users
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u.blocked.as_ref().is_some_and(|b| b.status))
        .map(|u| u.id)
        .collect();
    let mut threads: HashSet<String> = HashSet::new();
    loop {
        n += 1;
        if !next_line(&mut input, &mut line, MAX_LINE).map_err(|m| format!("line {n}: {m}"))? {
            return Ok(());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let c: Comment = serde_json::from_slice(&line).map_err(|e| json_error(n, &e))?;
        let at = |m: String| format!("line {n}: comment {}: {m}", c.id);
        if c.id.trim().is_empty() {
            return Err(format!("line {n}: a comment without an id"));
        }
        let created_at = parse_time(&c.time).map_err(|m| at(format!("time: {m}")))?;
        let url = c.locator.url.trim().to_string();
        if url.is_empty() {
            return Err(at("its locator has no url".to_string()));
        }
        if !threads.contains(&url) {
            let post = posts.get(&url);
            let title = post
                .and_then(|p| p.title.clone())
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| c.title.clone());
            emit(Item::Thread(SourceThread {
                key: url.clone(),
                idents: vec![url.clone()],
                url: Some(url.clone()),
                title: title.trim().to_string(),
                created_at: None,
                closed: post.is_some_and(|p| p.read_only),
                deleted: false,
            }))
            .map_err(at)?;
            threads.insert(url.clone());
        }
        let status = if c.delete {
            SourceStatus::Deleted
        } else if c.user.block || blocked.contains(&c.user.id) {
            SourceStatus::Spam
        } else {
            SourceStatus::Approved
        };
        let body = if c.text.trim().is_empty() && !c.orig.trim().is_empty() {
            Body::Markdown(c.orig)
        } else {
            Body::Html(c.text)
        };
        let pid = c.pid.trim();
        emit(Item::Post(SourcePost {
            parent: (!pid.is_empty()).then(|| pid.to_string()),
            id: c.id,
            thread: url,
            body,
            created_at,
            status,
            name: c.user.name,
            email: String::new(),
            url: String::new(),
        }))
        .map_err(|m| format!("line {n}: {m}"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &str) -> Result<Vec<Item>, String> {
        let mut out = Vec::new();
        read(s.as_bytes(), &mut |i| {
            out.push(i);
            Ok(())
        })?;
        Ok(out)
    }

    const META: &str = r#"{"version":1,"users":[{"id":"u_bad","blocked":{"status":true,"until":"2100-01-01T00:00:00Z"},"verified":false}],"posts":[{"url":"https://e.com/a/","read_only":true}]}"#;

    fn comment(id: &str, pid: &str, url: &str, extra: &str) -> String {
        format!(
            r#"{{"id":"{id}","pid":"{pid}","text":"<p>t {id}</p>\n","orig":"t {id}","user":{{"name":"N{id}","id":"u_{id}","picture":"","ip":"abc","admin":false}},"locator":{{"site":"s","url":"{url}"}},"score":0,"vote":0,"time":"2019-03-01T13:00:00.123456789+03:00","title":"Title {url}"{extra}}}"#
        )
    }

    #[test]
    fn threads_by_url_replies_statuses() {
        let text = [
            META.to_string(),
            comment("b", "a", "https://e.com/a/", ""),
            comment("a", "", "https://e.com/a/", ""),
            String::new(),
            comment("c", "", "https://e.com/b", r#","delete":true"#),
            comment("d", "", "https://e.com/b", "").replace(r#""id":"u_d""#, r#""id":"u_bad""#),
            comment("e", "", "https://e.com/b", "").replace(r#""admin":false"#, r#""block":true"#),
        ]
        .join("\n");
        let got = items(&text).unwrap();
        assert_eq!(got.len(), 7, "{got:?}");
        let Item::Thread(t) = &got[0] else { panic!() };
        assert_eq!(t.key, "https://e.com/a/");
        assert_eq!(t.title, "Title https://e.com/a/");
        assert!(t.closed);
        let Item::Post(p) = &got[1] else { panic!() };
        assert_eq!((p.id.as_str(), p.parent.as_deref()), ("b", Some("a")));
        assert_eq!(
            p.created_at,
            parse_time("2019-03-01T10:00:00.123Z").unwrap()
        );
        assert_eq!(p.body, Body::Html("<p>t b</p>\n".to_string()));
        assert_eq!((p.name.as_str(), p.status), ("Nb", SourceStatus::Approved));
        let Item::Post(p) = &got[2] else { panic!() };
        assert_eq!(p.parent, None);
        let Item::Thread(t) = &got[3] else { panic!() };
        assert!(!t.closed);
        let Item::Post(p) = &got[4] else { panic!() };
        assert_eq!(p.status, SourceStatus::Deleted);
        let Item::Post(p) = &got[5] else { panic!() };
        assert_eq!(p.status, SourceStatus::Spam);
        let Item::Post(p) = &got[6] else { panic!() };
        assert_eq!(p.status, SourceStatus::Spam);
    }

    #[test]
    fn markdown_when_there_is_no_html() {
        let text = format!(
            "{META}\n{}",
            comment("a", "", "/x", "").replace(r#""text":"<p>t a</p>\n""#, r#""text":"""#)
        );
        let Item::Post(p) = &items(&text).unwrap()[1] else {
            panic!()
        };
        assert_eq!(p.body, Body::Markdown("t a".to_string()));
    }

    #[test]
    fn errors_name_their_line() {
        let e = items("").unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e = items("<rss/>").unwrap_err();
        assert!(
            e.starts_with("line 1, column 1: ") && e.contains("not a Remark42 backup"),
            "{e}"
        );
        let e = items(r#"{"posts":[]}"#).unwrap_err();
        assert!(e.contains("version"), "{e}");
        let e = items(&format!(
            "{META}\n{}\n{{\"id\": 3",
            comment("a", "", "/x", "")
        ))
        .unwrap_err();
        assert!(e.starts_with("line 3, column"), "{e}");
        let bad_time = comment("z", "", "/x", "").replace("2019-03-01T13", "2019-13-01T13");
        let e = items(&format!("{META}\n\n{bad_time}")).unwrap_err();
        assert!(e.starts_with("line 3: comment z: time"), "{e}");
        let long = format!("{META}\n{}", "x".repeat(MAX_LINE + 10));
        let e = items(&long).unwrap_err();
        assert_eq!(e, "line 2: longer than 1 MiB");
        // The metadata may be longer (a big site's pages and users).
        let pages: Vec<String> = (0..20_000)
            .map(|i| format!(r#"{{"url":"https://e.com/2019/a-page-with-a-long-name-{i}/","read_only":false}}"#))
            .collect();
        let meta = format!(
            r#"{{"version":1,"users":[],"posts":[{}]}}"#,
            pages.join(",")
        );
        assert!(meta.len() > MAX_LINE);
        assert_eq!(
            items(&format!("{meta}\n{}", comment("a", "", "/x", "")))
                .unwrap()
                .len(),
            2
        );
        let e = items(&format!("{META}\n{}", comment("a", "", "", ""))).unwrap_err();
        assert!(e.contains("no url"), "{e}");
    }
}

//! Isso's SQLite database (the file its `[general] dbpath` names), opened read-only and read
//! row by row in id order: every thread (`threads (id, uri, title)`), then every comment
//! (`comments (tid, id, parent, created, mode, text, author, email, website, ...)`).
//!
//! - `uri` is the page's path (`/blog/hello/`): the thread's ident.
//! - `created` is in Unix seconds (a REAL); `text` is markdown, rendered as a posted comment is.
//! - `mode`: 1 accepted, 2 waiting for a moderator, 4 deleted (Isso keeps a deleted comment that
//!   has replies, its text emptied). Any other value waits for a moderator.
//!
//! A file that is not an Isso database (not SQLite, a table or column missing) is an error
//! saying so; a row holding a value that cannot be read names its table and id.

use super::disqus::MAX_FIELD;
use super::{Body, Item, SourcePost, SourceStatus, SourceThread};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use std::path::Path;

/// A comment's `mode` as a status.
pub fn status(mode: i64) -> SourceStatus {
    match mode {
        1 => SourceStatus::Approved,
        4 => SourceStatus::Deleted,
        _ => SourceStatus::Pending,
    }
}

/// Unix seconds (with a fraction) in milliseconds.
pub fn millis(created: f64) -> Result<i64, String> {
    if !created.is_finite() || !(0.0..1e11).contains(&created) {
        return Err(format!("not a time in Unix seconds: {created}"));
    }
    Ok((created * 1000.0).round() as i64)
}

/// Text of a column that may be NULL (as empty), bounded.
fn text(row: &Row<'_>, i: usize, name: &str) -> Result<String, String> {
    let v = match row.get_ref(i).map_err(|e| e.to_string())? {
        ValueRef::Null => String::new(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Blob(_) => return Err(format!("column {name} holds binary data, not text")),
    };
    if v.len() > MAX_FIELD {
        return Err(format!("column {name} is longer than {MAX_FIELD} bytes"));
    }
    Ok(v)
}

fn integer(row: &Row<'_>, i: usize, name: &str) -> Result<Option<i64>, String> {
    match row.get_ref(i).map_err(|e| e.to_string())? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(n) => Ok(Some(n)),
        other => Err(format!(
            "column {name} holds {}, not an integer",
            describe(other)
        )),
    }
}

fn describe(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".to_string(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(_) => "binary data".to_string(),
    }
}

/// Reads the database at `path` as the import pipeline's items. Errors are whole sentences
/// (the pipeline adds the file's name).
pub fn read(path: &Path, emit: &mut dyn FnMut(Item) -> Result<(), String>) -> Result<(), String> {
    if !path.is_file() {
        return Err("no such file (an Isso database is the file its dbpath names)".to_string());
    }
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("opening the database: {e}"))?;
    let not_isso = |e: rusqlite::Error| format!("not an Isso database: {e}");

    let mut threads = db
        .prepare("SELECT id, uri, title FROM threads ORDER BY id")
        .map_err(not_isso)?;
    let mut rows = threads.query([]).map_err(not_isso)?;
    while let Some(row) = rows.next().map_err(|e| format!("reading threads: {e}"))? {
        let id = integer(row, 0, "id")
            .and_then(|v| v.ok_or_else(|| "column id is NULL".to_string()))
            .map_err(|m| format!("threads, a row: {m}"))?;
        let at = |m: String| format!("threads, row id {id}: {m}");
        let uri = text(row, 1, "uri").map_err(at)?;
        let title = text(row, 2, "title").map_err(at)?;
        emit(Item::Thread(SourceThread {
            key: id.to_string(),
            idents: vec![uri],
            url: None,
            title: title.trim().to_string(),
            created_at: None,
            closed: false,
            deleted: false,
        }))
        .map_err(at)?;
    }
    drop(rows);
    drop(threads);

    let mut comments = db
        .prepare(
            "SELECT tid, id, parent, created, mode, text, author, email, website \
             FROM comments ORDER BY id",
        )
        .map_err(not_isso)?;
    let mut rows = comments.query([]).map_err(not_isso)?;
    while let Some(row) = rows.next().map_err(|e| format!("reading comments: {e}"))? {
        let id = integer(row, 1, "id")
            .and_then(|v| v.ok_or_else(|| "column id is NULL".to_string()))
            .map_err(|m| format!("comments, a row: {m}"))?;
        let at = |m: String| format!("comments, row id {id}: {m}");
        let tid = integer(row, 0, "tid")
            .map_err(at)?
            .ok_or_else(|| at("column tid is NULL".to_string()))?;
        let parent = integer(row, 2, "parent").map_err(at)?;
        let created = match row.get_ref(3).map_err(|e| at(e.to_string()))? {
            ValueRef::Real(f) => millis(f),
            ValueRef::Integer(n) => millis(n as f64),
            other => Err(format!(
                "column created holds {}, not a time in Unix seconds",
                describe(other)
            )),
        }
        .map_err(at)?;
        let mode = integer(row, 4, "mode").map_err(at)?.unwrap_or(1);
        emit(Item::Post(SourcePost {
            id: id.to_string(),
            thread: tid.to_string(),
            parent: parent.map(|p| p.to_string()),
            body: Body::Markdown(text(row, 5, "text").map_err(at)?),
            created_at: created,
            status: status(mode),
            name: text(row, 6, "author").map_err(at)?,
            email: text(row, 7, "email").map_err(at)?,
            url: text(row, 8, "website").map_err(at)?,
        }))
        .map_err(at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE threads (id INTEGER PRIMARY KEY, uri VARCHAR(256) UNIQUE, title VARCHAR(256));
        CREATE TABLE comments (tid REFERENCES threads(id), id INTEGER PRIMARY KEY, parent INTEGER,
          created FLOAT NOT NULL, modified FLOAT, mode INTEGER, remote_addr VARCHAR, text VARCHAR,
          author VARCHAR, email VARCHAR, website VARCHAR, likes INTEGER DEFAULT 0,
          dislikes INTEGER DEFAULT 0, voters BLOB NOT NULL, notification INTEGER DEFAULT 0);";

    fn db(sql: &str) -> tempfile::TempPath {
        let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        let c = Connection::open(&path).unwrap();
        c.execute_batch(sql).unwrap();
        path
    }

    fn items(path: &Path) -> Result<Vec<Item>, String> {
        let mut out = Vec::new();
        read(path, &mut |i| {
            out.push(i);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn threads_then_comments_in_id_order() {
        let p = db(&format!(
            "{SCHEMA}
            INSERT INTO threads VALUES (1, '/blog/hello/', 'Hello'), (2, '/about', NULL);
            INSERT INTO comments (tid, id, parent, created, mode, text, author, email, website, voters)
              VALUES (1, 3, 2, 1551434400.25, 2, '*hi*', 'Bo', 'bo@e.com', 'https://bo.e', x''),
                     (1, 2, NULL, 1551434400, 1, 'top', NULL, NULL, NULL, x''),
                     (2, 4, NULL, 1551434401.5, 4, '', NULL, NULL, NULL, x'');"
        ));
        let got = items(&p).unwrap();
        assert_eq!(got.len(), 5);
        let Item::Thread(t) = &got[0] else { panic!() };
        assert_eq!(
            (t.key.as_str(), t.idents[0].as_str(), t.title.as_str()),
            ("1", "/blog/hello/", "Hello")
        );
        let Item::Thread(t) = &got[1] else { panic!() };
        assert_eq!(t.title, "");
        let Item::Post(c) = &got[2] else { panic!() };
        assert_eq!(
            (c.id.as_str(), c.parent.as_deref(), c.status),
            ("2", None, SourceStatus::Approved)
        );
        assert_eq!(c.created_at, 1_551_434_400_000);
        let Item::Post(c) = &got[3] else { panic!() };
        assert_eq!(
            (c.id.as_str(), c.parent.as_deref(), c.status),
            ("3", Some("2"), SourceStatus::Pending)
        );
        assert_eq!(c.created_at, 1_551_434_400_250);
        assert_eq!(c.body, Body::Markdown("*hi*".to_string()));
        assert_eq!(
            (c.name.as_str(), c.email.as_str(), c.url.as_str()),
            ("Bo", "bo@e.com", "https://bo.e")
        );
        let Item::Post(c) = &got[4] else { panic!() };
        assert_eq!((c.thread.as_str(), c.status), ("2", SourceStatus::Deleted));
    }

    #[test]
    fn modes_and_times() {
        assert_eq!(status(1), SourceStatus::Approved);
        assert_eq!(status(2), SourceStatus::Pending);
        assert_eq!(status(4), SourceStatus::Deleted);
        assert_eq!(status(0), SourceStatus::Pending);
        assert_eq!(millis(1.0005).unwrap(), 1001);
        assert!(millis(f64::NAN).is_err());
        assert!(millis(-1.0).is_err());
    }

    #[test]
    fn what_is_not_an_isso_database_says_so_and_bad_rows_name_their_id() {
        // Another schema.
        let p = db("CREATE TABLE threads (id INTEGER PRIMARY KEY, url TEXT);");
        let e = items(&p).unwrap_err();
        assert!(
            e.contains("not an Isso database") && e.contains("uri"),
            "{e}"
        );
        // No comments table.
        let p = db("CREATE TABLE threads (id INTEGER PRIMARY KEY, uri TEXT, title TEXT);");
        let e = items(&p).unwrap_err();
        assert!(
            e.contains("not an Isso database") && e.contains("comments"),
            "{e}"
        );
        // Not SQLite at all.
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "<rss>not a database, but long enough to have a header of a hundred bytes...........................</rss>").unwrap();
        let e = items(f.path()).unwrap_err();
        assert!(e.contains("not an Isso database"), "{e}");
        // A date that is not one.
        let p = db(&format!(
            "{SCHEMA}
            INSERT INTO threads VALUES (1, '/a', 'A');
            INSERT INTO comments (tid, id, created, mode, text, voters) VALUES (1, 1, 1551434400, 1, 'ok', x''),
              (1, 7, 'yesterday', 1, 'bad', x'');"
        ));
        let e = items(&p).unwrap_err();
        assert!(
            e.contains("comments, row id 7") && e.contains("yesterday"),
            "{e}"
        );
        // Missing file.
        let e = items(Path::new("/nonexistent/isso.db")).unwrap_err();
        assert!(e.contains("no such file"), "{e}");
    }
}

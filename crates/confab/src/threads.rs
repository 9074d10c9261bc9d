//! `confab threads remap FILE.csv --forum F`: threads moved to new addresses (a site that
//! changed its URLs), one `old,new` per line, as Disqus' URL mapper takes it. The whole file is
//! read and checked first: a line that cannot be read stops the command before anything is
//! changed. Each thread found by its old address then answers to the new one as well.

use anyhow::{anyhow, bail, Context, Result};
use confab_server::service::{Service, ThreadRemap};
use confab_store::Moved;
use std::sync::Arc;

/// Lines reported one by one (not found, taken) before the rest are only counted.
const REPORT: usize = 20;

#[derive(clap::Subcommand)]
pub enum ThreadsCmd {
    /// Move threads to new addresses: a CSV file of `old,new` (URLs or identifiers) per line;
    /// `-` reads standard input. Each thread keeps answering to its old address too.
    Remap {
        file: String,
        #[arg(long)]
        forum: String,
    },
}

/// Reads the mapping: (line number, move) per line; blank lines, `#` comments and a header
/// line `old,new` are skipped. Each line is one CSV record (a field with a comma is quoted).
fn read_map(r: impl std::io::BufRead) -> Result<Vec<(u64, ThreadRemap)>> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line_no = i as u64 + 1;
        let text = line.with_context(|| format!("line {line_no} (nothing was changed)"))?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let rec = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes())
            .records()
            .next()
            .transpose()
            .map_err(|e| anyhow!("line {line_no}: {e} (nothing was changed)"))?
            .unwrap_or_default();
        let fields: Vec<&str> = rec.iter().collect();
        match fields.as_slice() {
            [a, b]
                if out.is_empty()
                    && a.eq_ignore_ascii_case("old")
                    && b.eq_ignore_ascii_case("new") => {}
            [from, to] => {
                let m = ThreadRemap::parse(from, to)
                    .map_err(|e| anyhow!("line {line_no}: {} (nothing was changed)", e.message))?;
                out.push((line_no, m));
            }
            _ => bail!(
                "line {line_no}: expected two fields, old,new; found {} (nothing was changed)",
                fields.len()
            ),
        }
    }
    Ok(out)
}

pub async fn run(svc: &Arc<Service>, cmd: ThreadsCmd) -> Result<()> {
    match cmd {
        ThreadsCmd::Remap { file, forum } => {
            let f = svc.forum(&forum)?;
            let map = if file == "-" {
                read_map(std::io::stdin().lock())?
            } else {
                read_map(std::io::BufReader::new(
                    std::fs::File::open(&file).with_context(|| format!("opening {file}"))?,
                ))
                .with_context(|| file.clone())?
            };
            let (mut added, mut already, mut missing, mut taken) = (0u64, 0u64, 0u64, 0u64);
            let mut reported = 0;
            for (line, m) in map {
                let to = m.to().as_str().to_string();
                match svc.move_thread(&f, None, m).await?.value {
                    Moved::Added(_) => added += 1,
                    Moved::Already(_) => already += 1,
                    Moved::NoThread => {
                        missing += 1;
                        if reported < REPORT {
                            reported += 1;
                            eprintln!("line {line}: no thread answers to the old address");
                        }
                    }
                    Moved::Taken(other) => {
                        taken += 1;
                        if reported < REPORT {
                            reported += 1;
                            eprintln!(
                                "line {line}: {to} already belongs to thread {} ({}); left as it is",
                                other.id,
                                other.ident.as_str()
                            );
                        }
                    }
                }
            }
            crate::print_out(&format!(
                "threads moved: {added}; already at their new address: {already}; no thread at the old address: {missing}; new address taken by another thread: {taken}"
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_headers_comments_and_quotes() {
        let csv = "old,new\n# moved in 2024\n\nhttps://a.com/x, https://b.com/x\n\"https://a.com/q?a=1,2\",/y\n";
        let m = read_map(csv.as_bytes()).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, 4);
        assert_eq!(m[0].1.to().as_str(), "/x");
        assert_eq!(m[1].1.to().as_str(), "/y");
    }

    #[test]
    fn a_bad_line_names_itself_and_changes_nothing() {
        let e = read_map("/a,/b\n/c\n".as_bytes()).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("two fields"), "{e}");
        let e = read_map("/a,/b\n/c,   \n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("new address"), "{e}");
    }
}

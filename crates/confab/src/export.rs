//! `confab export --forum F --format disqus|json [--output FILE]` and `confab backup DIR`.
//! The work is the service's (`confab_server::service::export`); here are the command line,
//! the output file (written beside itself and renamed once whole) and what is printed.

use anyhow::{anyhow, Context, Result};
use confab_server::service::export::ExportFormat;
use confab_server::service::Service;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The forum to export.
    #[arg(long)]
    forum: String,
    /// `disqus`: the XML a Disqus export is (what `confab import disqus` reads, here or
    /// elsewhere); `json`: JSON lines of everything the forum holds, for backups.
    #[arg(long, value_parser = ["disqus", "json"])]
    format: String,
    /// Write the export to FILE (through FILE.tmp, renamed once it is whole) instead of
    /// standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct BackupArgs {
    /// Directory the copy is written to (created if needed), as confab-<UTC time>.db.
    dir: PathBuf,
}

fn tmp_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Runs an export (the store opened by the caller, as `confab import` does).
pub async fn run(svc: &Arc<Service>, args: ExportArgs) -> Result<()> {
    let format = ExportFormat::parse_name(&args.format)
        .ok_or_else(|| anyhow!("unknown format {:?}: disqus or json", args.format))?;
    // An unknown forum is said before any file is made.
    svc.forum(&args.forum)
        .map_err(|e| anyhow!("{} (the forums: confab admin list-forums)", e.message))?;
    match args.output {
        None => {
            let out = BufWriter::with_capacity(256 * 1024, std::io::stdout());
            let (_, summary) = svc
                .export(&args.forum, format, out)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            eprintln!("{summary}");
        }
        Some(path) => {
            let tmp = tmp_of(&path);
            // Readable by its owner only: it holds e-mail addresses.
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let file = opts
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let written = async {
                let (out, summary) = svc
                    .export(
                        &args.forum,
                        format,
                        BufWriter::with_capacity(256 * 1024, file),
                    )
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
                let mut file = out
                    .into_inner()
                    .map_err(|e| anyhow!("writing {}: {}", tmp.display(), e.error()))?;
                file.flush()?;
                file.sync_all()
                    .with_context(|| format!("syncing {}", tmp.display()))?;
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
                anyhow::Ok(summary)
            }
            .await;
            match written {
                Ok(summary) => eprintln!("{summary}; written to {}", path.display()),
                Err(e) => {
                    // A failed export leaves no half file.
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e.context(format!("nothing was written to {}", path.display())));
                }
            }
        }
    }
    Ok(())
}

/// Copies the embedded database while the server runs, and prints where and how big.
pub async fn backup(svc: &Arc<Service>, args: BackupArgs) -> Result<()> {
    let b = svc
        .backup(&args.dir)
        .await
        .map_err(|e| anyhow!("backup failed: {}", e.reason()))?;
    println!("{} ({} bytes)", b.path.display(), b.bytes);
    Ok(())
}

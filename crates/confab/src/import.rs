//! `confab import FORMAT FILE --forum F`: comments from another system into a forum. The work
//! is the service's (`confab_server::service::import`, shared with the dashboard's upload);
//! here are the command line and a progress bar on the terminal.

use anyhow::{anyhow, bail, Result};
use confab_server::service::import::{ImportFormat, ImportInput, ImportProgress};
use confab_server::service::Service;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Subcommand)]
pub enum ImportCmd {
    /// A Disqus export (.xml, .xml.gz, or - for standard input).
    Disqus {
        file: String,
        /// The forum to import into (created beforehand with `confab admin create-forum`).
        #[arg(long)]
        forum: String,
    },
    /// A WordPress export (Tools → Export: WXR, .xml, .xml.gz, or - for standard input).
    Wordpress {
        file: String,
        /// The forum to import into (created beforehand with `confab admin create-forum`).
        #[arg(long)]
        forum: String,
    },
    /// An Isso database (the SQLite file Isso's `dbpath` names; read, never changed).
    Isso {
        file: String,
        /// The forum to import into (created beforehand with `confab admin create-forum`).
        #[arg(long)]
        forum: String,
    },
    /// A Remark42 backup (`remark42 backup`: .gz or plain JSON lines, or - for standard input).
    Remark42 {
        file: String,
        /// The forum to import into (created beforehand with `confab admin create-forum`).
        #[arg(long)]
        forum: String,
    },
}

/// indicatif on standard error (hidden when it is not a terminal).
struct Bar(indicatif::ProgressBar);

impl ImportProgress for Bar {
    fn reading(&self, posts: u64) {
        self.0
            .set_message(format!("reading the export: {posts} posts"));
        self.0.tick();
    }

    fn writing(&self, total: u64) {
        self.0.set_length(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} importing [{bar:40}] {pos}/{len} comments ({per_sec}, {eta} left)",
        ) {
            self.0.set_style(style.progress_chars("=> "));
        }
    }

    fn wrote(&self, done: u64) {
        self.0.set_position(done);
    }
}

fn input(file: &str) -> ImportInput {
    if file == "-" {
        ImportInput::Stdin
    } else {
        ImportInput::Path(PathBuf::from(file))
    }
}

/// Runs an import command (the store opened by the caller, as `confab admin` does).
pub async fn run(svc: &Arc<Service>, cmd: ImportCmd) -> Result<()> {
    let (format, file, forum) = match cmd {
        ImportCmd::Disqus { file, forum } => (ImportFormat::Disqus, file, forum),
        ImportCmd::Wordpress { file, forum } => (ImportFormat::WordPress, file, forum),
        ImportCmd::Isso { file, forum } => (ImportFormat::Isso, file, forum),
        ImportCmd::Remark42 { file, forum } => (ImportFormat::Remark42, file, forum),
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_message("reading the export");
    let progress = Arc::new(Bar(bar.clone()));
    let out = svc.import(&forum, format, input(&file), progress).await;
    bar.finish_and_clear();
    let summary = out.map_err(|e| anyhow!("{e}"))?;
    crate::print_out(&summary.to_string())?;
    if summary.posts_read == 0 {
        bail!("the export holds no posts");
    }
    Ok(())
}

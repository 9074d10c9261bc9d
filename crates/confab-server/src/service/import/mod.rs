//! Imports from other comment systems (`confab import`, the dashboard's upload).
//!
//! - `pipeline.rs`: the two passes every format goes through (parse into a spool, then write
//!   whole threads in batches), the source-neutral [`Item`]s a parser emits, the summary.
//! - one file per format (`disqus.rs`, `wordpress.rs`, `isso.rs`, `remark42.rs`): a parser
//!   that emits [`Item`]s as it reads.
//! - `uploads.rs`: the dashboard's upload, imported in the background with a record of its
//!   progress ([`Service::begin_upload`]).
//! - here: [`Service::import_batch`], where every message goes through the sanitizer every
//!   comment goes through, the batch is written through [`confab_store::ImportStore`], and
//!   every ident of every changed thread is invalidated and announced to the other nodes, as a
//!   post is.

pub mod disqus;
pub mod isso;
mod pipeline;
pub mod remark42;
mod uploads;
pub mod wordpress;

pub use pipeline::{
    Body, ImportError, ImportFormat, ImportInput, ImportProgress, Item, NoProgress, SourcePost,
    SourceStatus, SourceThread, Summary,
};
pub use uploads::{ImportSlot, Upload, IMPORTS_LISTED};

use super::Service;
use confab_core::render;
use confab_core::DomainError;
use confab_store::{ImportBatch, ImportThread, Imported, Written};
use std::sync::Arc;

impl Service {
    /// Writes one batch of imported threads into `forum` (one transaction). Messages are HTML
    /// from the source: sanitized here (scripts, handlers and `javascript:` links dropped).
    pub async fn import_batch(
        self: &Arc<Self>,
        forum: &str,
        source: &str,
        mut threads: Vec<ImportThread>,
    ) -> Result<Imported, DomainError> {
        let forum = self.forum(forum)?;
        for t in &mut threads {
            for c in &mut t.comments {
                if c.body_html.is_empty() && !c.body_md.is_empty() {
                    // A source that keeps markdown (Isso): rendered as a posted comment is.
                    c.body_html = render::render_markdown(&c.body_md).html;
                } else {
                    c.body_html = render::sanitize(&c.body_html);
                    c.body_md.clone_from(&c.body_html);
                }
            }
        }
        let batch = ImportBatch {
            source: source.to_string(),
            threads,
            max_depth: self.config.limits.max_depth,
        };
        let Written { value: done, at } = self.store.import_batch(&forum, batch).await?;
        for (_, idents) in &done.changed {
            for ident in idents {
                self.after_write(&forum, ident, at);
            }
        }
        Ok(done)
    }
}

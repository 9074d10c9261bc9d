//! Threads moved to new addresses (a site that changed its URLs): the thread found by its old
//! ident answers to the new one as well, as Disqus' URL mapper does. `confab threads remap
//! FILE.csv` runs it per line; the dashboard for one thread.

use super::Service;
use confab_core::id::AccountId;
use confab_core::ident::Ident;
use confab_core::model::{Forum, Thread};
use confab_core::{DomainError, ErrorCode};
use confab_store::{Moved, ThreadMove, Written};
use std::sync::Arc;

/// A move, parsed: both idents valid (a URL stands for its path, as a page's ident does).
#[derive(Debug, Clone)]
pub struct ThreadRemap {
    from: Ident,
    to: Ident,
    url: Option<String>,
}

impl ThreadRemap {
    pub fn parse(from: &str, to: &str) -> Result<ThreadRemap, DomainError> {
        let from_ident = Ident::parse(from)
            .map_err(|e| DomainError::invalid(format!("old address {from:?}: {}", e.message)))?;
        let to_ident = Ident::parse(to)
            .map_err(|e| DomainError::invalid(format!("new address {to:?}: {}", e.message)))?;
        let url = confab_core::input::WebUrl::parse(to)
            .ok()
            .filter(|_| to.trim().starts_with("http"))
            .map(|u| u.as_str().to_string());
        Ok(ThreadRemap {
            from: from_ident,
            to: to_ident,
            url,
        })
    }

    pub fn to(&self) -> &Ident {
        &self.to
    }
}

impl Service {
    /// Makes the thread at `m.from` answer to `m.to` too. Pages cached for the new address
    /// (an empty thread someone viewed before the move) are made stale on every node.
    /// `actor`: the moderator (none from the command line, which is the operator's).
    pub async fn move_thread(
        self: &Arc<Self>,
        forum: &Arc<Forum>,
        actor: Option<AccountId>,
        m: ThreadRemap,
    ) -> Result<Written<Moved>, DomainError> {
        let to = m.to.clone();
        let Written { value, at } = self
            .store
            .move_thread(
                forum,
                ThreadMove {
                    from: m.from,
                    to: m.to,
                    url: m.url,
                    actor,
                },
            )
            .await?;
        if let Moved::Added(t) | Moved::Already(t) = &value {
            self.after_write(forum, &to, at);
            self.after_thread_write(forum, t, at);
        }
        Ok(Written { value, at })
    }

    /// [`Service::move_thread`] as an API answers it: the thread, or a clear refusal.
    pub async fn move_thread_or_refuse(
        self: &Arc<Self>,
        forum: &Arc<Forum>,
        actor: Option<AccountId>,
        m: ThreadRemap,
    ) -> Result<Written<(Thread, Vec<Ident>)>, DomainError> {
        let (from, to) = (m.from.clone(), m.to.clone());
        let Written { value, at } = self.move_thread(forum, actor, m).await?;
        match value {
            Moved::Added(t) | Moved::Already(t) => {
                let aliases = self.store.thread_aliases(t.id).await?;
                Ok(Written {
                    value: (t, aliases),
                    at,
                })
            }
            Moved::NoThread => Err(DomainError::new(
                ErrorCode::NotFound,
                format!(
                    "no thread of forum {} answers to {}",
                    forum.name,
                    from.as_str()
                ),
            )),
            Moved::Taken(other) => Err(DomainError::new(
                ErrorCode::Conflict,
                format!(
                    "{} already belongs to another thread ({} {}); threads are not merged",
                    to.as_str(),
                    other.id,
                    other.ident.as_str()
                ),
            )),
        }
    }
}

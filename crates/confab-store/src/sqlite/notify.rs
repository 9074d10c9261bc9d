//! Thread follows and a thread's authors (`crate::notify`).

use super::*;
use crate::notify::{NotifyStore, ThreadAuthor};

/// Most recent published comments read to find a thread's authors.
pub(super) const AUTHOR_SCAN: i64 = 2000;

#[async_trait]
impl NotifyStore for SqliteStore {
    async fn set_follow(
        &self,
        forum: &Forum,
        thread: ThreadId,
        account: AccountId,
        follow: bool,
    ) -> StoreResult<()> {
        let shard = i64::from(forum.shard.get());
        let now = confab_core::now_ms();
        self.pool
            .write(move |c, n| {
                if follow {
                    exec(
                        c,
                        n,
                        "INSERT INTO thread_follows (thread_id, account_id, shard, created_at) \
                         VALUES (?, ?, ?, ?) ON CONFLICT (thread_id, account_id) DO NOTHING",
                        &[int(thread.0), int(account.0), int(shard), int(now)],
                    )?;
                } else {
                    exec(
                        c,
                        n,
                        "DELETE FROM thread_follows WHERE thread_id = ? AND account_id = ?",
                        &[int(thread.0), int(account.0)],
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn follows(&self, thread: ThreadId, account: AccountId) -> StoreResult<bool> {
        self.pool
            .read(move |c, n| {
                Ok(row(
                    c,
                    n,
                    "SELECT 1 FROM thread_follows WHERE thread_id = ? AND account_id = ?",
                    &[int(thread.0), int(account.0)],
                    |r| r.get::<_, i64>(0),
                )?
                .is_some())
            })
            .await
    }

    async fn followers(&self, thread: ThreadId, limit: usize) -> StoreResult<Vec<AccountId>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.pool
            .read(move |c, n| {
                rows(
                    c,
                    n,
                    "SELECT account_id FROM thread_follows WHERE thread_id = ? \
                     ORDER BY created_at, account_id LIMIT ?",
                    &[int(thread.0), int(limit)],
                    |r| Ok(AccountId(r.get(0)?)),
                )
            })
            .await
    }

    async fn thread_authors(
        &self,
        thread: ThreadId,
        limit: usize,
    ) -> StoreResult<Vec<ThreadAuthor>> {
        let raw = self
            .pool
            .read(move |c, n| {
                rows(
                    c,
                    n,
                    "SELECT account_id, guest_name, guest_email FROM comments \
                     WHERE thread_id = ? AND status = 'approved' ORDER BY id DESC LIMIT ?",
                    &[int(thread.0), int(AUTHOR_SCAN)],
                    |r| {
                        Ok((
                            r.get::<_, Option<i64>>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<String>>(2)?,
                        ))
                    },
                )
            })
            .await?;
        Ok(crate::rules::thread_authors(raw, limit))
    }
}

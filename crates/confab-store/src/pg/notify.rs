//! Thread follows and a thread's authors (`crate::notify`), on the thread's shard.

use super::*;
use crate::notify::{NotifyStore, ThreadAuthor};

/// Most recent published comments read to find a thread's authors.
const AUTHOR_SCAN: i64 = 2000;

#[async_trait]
impl NotifyStore for PgStore {
    async fn set_follow(
        &self,
        forum: &Forum,
        thread: ThreadId,
        account: AccountId,
        follow: bool,
    ) -> StoreResult<()> {
        let shard = shard_of(thread.0);
        if shard != forum.shard {
            return Err(DomainError::new(ErrorCode::NotFound, "no such thread"));
        }
        let now = confab_core::now_ms();
        write_value!(self, shard, |tx, n| {
            if follow {
                exec(
                    tx,
                    &n,
                    "INSERT INTO thread_follows (thread_id, account_id, shard, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (thread_id, account_id) DO NOTHING",
                    &[&thread.0, &account.0, &sh(shard), &now],
                )
                .await?;
            } else {
                exec(
                    tx,
                    &n,
                    "DELETE FROM thread_follows WHERE thread_id = $1 AND account_id = $2",
                    &[&thread.0, &account.0],
                )
                .await?;
            }
            Ok(())
        })
    }

    async fn follows(&self, thread: ThreadId, account: AccountId) -> StoreResult<bool> {
        read_on!(self, shard_of(thread.0), ReadFrom::Primary, |c, n| {
            Ok(row(
                &c,
                &n,
                "SELECT 1 FROM thread_follows WHERE thread_id = $1 AND account_id = $2",
                &[&thread.0, &account.0],
            )
            .await?
            .is_some())
        })
    }

    async fn followers(&self, thread: ThreadId, limit: usize) -> StoreResult<Vec<AccountId>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        read_on!(self, shard_of(thread.0), ReadFrom::Primary, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT account_id FROM thread_follows WHERE thread_id = $1 \
                 ORDER BY created_at, account_id LIMIT $2",
                &[&thread.0, &limit],
            )
            .await?
            .iter()
            .map(|r| AccountId(r.get(0)))
            .collect())
        })
    }

    async fn thread_authors(
        &self,
        thread: ThreadId,
        limit: usize,
    ) -> StoreResult<Vec<ThreadAuthor>> {
        let raw: Vec<(Option<i64>, Option<String>, Option<String>)> =
            read_on!(self, shard_of(thread.0), ReadFrom::Primary, |c, n| {
                Ok(rows(
                    &c,
                    &n,
                    "SELECT account_id, guest_name, guest_email FROM comments \
                     WHERE thread_id = $1 AND status = 'approved' ORDER BY id DESC LIMIT $2",
                    &[&thread.0, &AUTHOR_SCAN],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect())
            })?;
        Ok(crate::rules::thread_authors(raw, limit))
    }
}

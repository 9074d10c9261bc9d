//! The task outbox and the reply-mail subscriptions.

use super::*;

pub(super) const TASK_COLS: &str =
    "id, shard, kind, payload, state, run_at, attempts, last_error, locked_until, created_at, updated_at";

pub(super) fn task_row(r: &Row) -> Task {
    let state: &str = r.get(4);
    Task {
        id: r.get(0),
        shard: r.get::<_, i32>(1) as u16,
        kind: r.get(2),
        payload: r.get(3),
        state: TaskState::parse(state).unwrap_or(TaskState::Parked),
        run_at: r.get(5),
        attempts: r.get(6),
        last_error: r.get(7),
        locked_until: r.get(8),
        created_at: r.get(9),
        updated_at: r.get(10),
    }
}

pub(super) const MAX_ERROR: usize = 1000;

pub(super) async fn insert_task<C: GenericClient + Sync>(
    c: &C,
    n: &crate::Counter,
    shard: LogicalShard,
    task: &NewTask,
    payload: &serde_json::Value,
) -> StoreResult<i64> {
    let r = crate::rules::task_row(task, payload, confab_core::now_ms())?;
    Ok(row(
        c,
        n,
        "INSERT INTO tasks (id, shard, kind, payload, state, run_at, attempts, created_at, updated_at) \
         VALUES (confab_next_id($1), $1, $2, $3, 'queued', $4, 0, $5, $5) RETURNING id",
        &[&sh(shard), &task.kind, &r.payload, &r.run_at, &r.now],
    )
    .await?
    .ok_or_else(DomainError::internal)?
    .get(0))
}

/// Claims due tasks on one server: parks tasks whose lease ran out after their last attempt,
/// then takes due ones with `FOR UPDATE SKIP LOCKED`, so many workers share a server without
/// waiting on each other. Tasks of a logical shard fenced here (being moved, or moved away and
/// not yet cleaned up) are left alone: their claims belong to the shard's new server.
pub(super) async fn claim_on(
    s: &Server,
    n: &crate::Counter,
    kinds: &[String],
    limit: i64,
    lease_ms: i64,
    max_attempts: i64,
) -> StoreResult<Vec<Task>> {
    let c = s.primary().await?;
    let now = confab_core::now_ms();
    exec(
        &c,
        n,
        "UPDATE tasks SET state = 'parked', locked_until = NULL, updated_at = $1, \
         last_error = 'attempt ' || attempts || ' did not finish (lease expired: worker died or stalled)' \
         WHERE state = 'running' AND locked_until <= $1 AND attempts >= $2 AND kind = ANY($3) \
         AND NOT EXISTS (SELECT 1 FROM shard_fence f WHERE f.logical = tasks.shard)",
        &[&now, &max_attempts, &kinds],
    )
    .await?;
    let until = now.saturating_add(lease_ms);
    let got = rows(
        &c,
        n,
        &format!(
            "WITH queued AS (SELECT id, false AS expired, run_at AS t FROM tasks \
               WHERE state = 'queued' AND run_at <= $1 AND kind = ANY($2) AND {NOT_FENCED} \
               ORDER BY run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED), \
             lost AS (SELECT id, true AS expired, locked_until AS t FROM tasks \
               WHERE state = 'running' AND locked_until <= $1 AND kind = ANY($2) AND {NOT_FENCED} \
               ORDER BY locked_until, id LIMIT $3 FOR UPDATE SKIP LOCKED), \
             pick AS (SELECT * FROM (SELECT * FROM queued UNION ALL SELECT * FROM lost) due ORDER BY expired, t, id LIMIT $3) \
             UPDATE tasks SET state = 'running', attempts = tasks.attempts + 1, locked_until = $4, updated_at = $1, \
               last_error = CASE WHEN pick.expired THEN 'attempt ' || tasks.attempts || \
                 ' did not finish (lease expired: worker died or stalled)' ELSE tasks.last_error END \
             FROM pick WHERE tasks.id = pick.id RETURNING {}",
            TASK_COLS.split(", ").map(|c| format!("tasks.{c}")).collect::<Vec<_>>().join(", "),
            NOT_FENCED = "NOT EXISTS (SELECT 1 FROM shard_fence f WHERE f.logical = tasks.shard)",
        ),
        &[&now, &kinds, &limit, &until],
    )
    .await?;
    let mut out: Vec<Task> = got.iter().map(task_row).collect();
    out.sort_by_key(|t| (t.run_at, t.id));
    Ok(out)
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn enqueue_task(&self, shard: LogicalShard, task: NewTask) -> StoreResult<()> {
        write_value!(self, shard, |tx, n| {
            insert_task(tx, &n, shard, &task, &task.payload).await?;
            Ok(())
        })
    }

    async fn claim_tasks(
        &self,
        kinds: &[String],
        limit: usize,
        lease_ms: i64,
        max_attempts: i64,
    ) -> StoreResult<Vec<Task>> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut first_err = None;
        for s in self.r.servers() {
            if out.len() >= limit {
                break;
            }
            let want = (limit - out.len()) as i64;
            match claim_on(
                &s,
                &s.counter(crate::Target::Primary),
                kinds,
                want,
                lease_ms,
                max_attempts,
            )
            .await
            {
                Ok(mut got) => out.append(&mut got),
                // One server down must not stop the others' tasks.
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        match first_err {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    async fn next_task_due(&self, kinds: &[String]) -> StoreResult<Option<i64>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let mut best: Option<i64> = None;
        for s in self.r.servers() {
            let Ok(c) = s.primary().await else { continue };
            let n = s.counter(crate::Target::Primary);
            let r = row(
                &c,
                &n,
                "SELECT least((SELECT min(run_at) FROM tasks WHERE state = 'queued' AND kind = ANY($1) AND NOT EXISTS \
                 (SELECT 1 FROM shard_fence f WHERE f.logical = tasks.shard)), \
                 (SELECT min(locked_until) FROM tasks WHERE state = 'running' AND kind = ANY($1) AND NOT EXISTS \
                 (SELECT 1 FROM shard_fence f WHERE f.logical = tasks.shard)))",
                &[&kinds],
            )
            .await;
            if let Ok(Some(r)) = r {
                if let Some(t) = r.get::<_, Option<i64>>(0) {
                    best = Some(best.map_or(t, |b| b.min(t)));
                }
            }
        }
        Ok(best)
    }

    async fn complete_task(&self, id: i64, attempt: i64) -> StoreResult<bool> {
        write_value!(self, shard_of(id), |tx, n| {
            Ok(exec(
                tx,
                &n,
                "UPDATE tasks SET state = 'done', locked_until = NULL, updated_at = $1 WHERE id = $2 AND attempts = $3 AND state = 'running'",
                &[&confab_core::now_ms(), &id, &attempt],
            )
            .await?
                > 0)
        })
    }

    async fn fail_task(
        &self,
        id: i64,
        attempt: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> StoreResult<bool> {
        let state = if retry_at.is_some() {
            "queued"
        } else {
            "parked"
        };
        let error = clip(error, MAX_ERROR);
        write_value!(self, shard_of(id), |tx, n| {
            Ok(exec(
                tx,
                &n,
                "UPDATE tasks SET state = $1, run_at = coalesce($2, run_at), last_error = $3, locked_until = NULL, \
                 updated_at = $4 WHERE id = $5 AND attempts = $6 AND state = 'running'",
                &[&state, &retry_at, &error, &confab_core::now_ms(), &id, &attempt],
            )
            .await?
                > 0)
        })
    }

    async fn task(&self, id: i64) -> StoreResult<Option<Task>> {
        read_on!(self, shard_of(id), ReadFrom::Primary, |c, n| {
            Ok(row(
                &c,
                &n,
                &format!("SELECT {TASK_COLS} FROM tasks WHERE id = $1"),
                &[&id],
            )
            .await?
            .as_ref()
            .map(task_row))
        })
    }

    async fn task_queue(&self, now: i64, timeout: Duration) -> Vec<crate::QueueDepth> {
        let servers = self.r.servers();
        let each = servers.iter().map(|s| async move {
            let ask = async {
                let c = s.primary().await?;
                let n = s.counter(crate::Target::Primary);
                row(&c, &n, crate::QUEUE_SQL_PG, &[&now])
                    .await?
                    .ok_or_else(DomainError::internal)
            };
            match tokio::time::timeout(timeout, ask).await {
                Ok(Ok(r)) => Some(crate::QueueDepth {
                    shard: s.name.clone(),
                    queued: r.get::<_, i64>(0).max(0) as u64,
                    oldest_due: r.get::<_, Option<i64>>(1),
                }),
                Ok(Err(e)) => {
                    tracing::debug!(server = %s.name, error = %e.message, "task queue sample failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(server = %s.name, "task queue sample timed out");
                    None
                }
            }
        });
        futures_util::future::join_all(each)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn list_tasks(
        &self,
        state: Option<TaskState>,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<Task>> {
        let before = before.unwrap_or(i64::MAX);
        let state = state.map(|s| s.as_str());
        let lim = limit as i64;
        let mut all = Vec::new();
        for s in self.r.servers() {
            let c = s.primary().await?;
            let n = s.counter(crate::Target::Primary);
            let got = rows(
                &c,
                &n,
                &format!("SELECT {TASK_COLS} FROM tasks WHERE id < $1 AND ($2::text IS NULL OR state = $2) ORDER BY id DESC LIMIT $3"),
                &[&before, &state, &lim],
            )
            .await?;
            all.extend(got.iter().map(task_row));
        }
        all.sort_by_key(|t| std::cmp::Reverse(t.id));
        all.truncate(limit);
        Ok(all)
    }

    async fn retry_task(&self, id: i64) -> StoreResult<bool> {
        let now = confab_core::now_ms();
        write_value!(self, shard_of(id), |tx, n| {
            Ok(exec(
                tx,
                &n,
                "UPDATE tasks SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1 WHERE id = $2 AND state = 'parked'",
                &[&now, &id],
            )
            .await?
                > 0)
        })
    }

    async fn prune_tasks(&self, before: i64, limit: usize) -> StoreResult<u64> {
        let lim = limit as i64;
        let mut total = 0u64;
        for s in self.r.servers() {
            if total as usize >= limit {
                break;
            }
            let c = s.primary().await?;
            let n = s.counter(crate::Target::Primary);
            total += row(
                &c,
                &n,
                "WITH gone AS (DELETE FROM tasks WHERE id IN \
                   (SELECT id FROM tasks WHERE state = 'done' AND updated_at < $1 ORDER BY id LIMIT $2) RETURNING id), \
                 effects AS (DELETE FROM task_effects WHERE task_id IN (SELECT id FROM gone)) \
                 SELECT count(*) FROM gone",
                &[&before, &lim],
            )
            .await?
            .map_or(0, |r| r.get::<_, i64>(0) as u64);
        }
        Ok(total)
    }

    async fn task_effects(&self, id: i64) -> StoreResult<Vec<String>> {
        read_on!(self, shard_of(id), ReadFrom::Primary, |c, n| {
            Ok(rows(
                &c,
                &n,
                "SELECT key FROM task_effects WHERE task_id = $1 ORDER BY key LIMIT 1000",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    async fn record_task_effect(&self, id: i64, key: &str) -> StoreResult<()> {
        crate::rules::effect_key(key)?;
        let shard = shard_of(id);
        write_value!(self, shard, |tx, n| {
            exec(
                tx,
                &n,
                "INSERT INTO task_effects (task_id, key, shard, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&id, &key, &sh(shard), &confab_core::now_ms()],
            )
            .await?;
            Ok(())
        })
    }

    async fn subscription(&self, forum: ForumId, email: &str) -> StoreResult<Option<Subscription>> {
        let shard = self.forum_shard(forum).await?;
        let email = crate::rules::email_key(email);
        read_on!(self, shard, ReadFrom::Primary, |c, n| {
            Ok(row(&c, &n, "SELECT state, confirm_sent_at, updated_at, owner FROM subscriptions WHERE forum_id = $1 AND email = $2", &[&forum.0, &email])
                .await?
                .map(|r| Subscription {
                    state: SubState::parse(r.get(0)).unwrap_or(SubState::Unsubscribed),
                    confirm_sent_at: r.get(1),
                    updated_at: r.get(2),
                    owner: r.get(3),
                }))
        })
    }

    async fn set_subscription(
        &self,
        forum: &Forum,
        email: &str,
        state: SubState,
        owner: Option<&str>,
    ) -> StoreResult<()> {
        let (id, shard, email) = (forum.id, forum.shard, crate::rules::email_key(email));
        write_value!(self, shard, |tx, n| {
            exec(
                tx,
                &n,
                "INSERT INTO subscriptions (forum_id, email, shard, state, created_at, updated_at, owner) \
                 VALUES ($1, $2, $3, $4, $5, $5, coalesce($6, '')) \
                 ON CONFLICT (forum_id, email) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, \
                 owner = coalesce($6, subscriptions.owner)",
                &[&id.0, &email, &sh(shard), &state.as_str(), &confab_core::now_ms(), &owner],
            )
            .await?;
            Ok(())
        })
    }

    async fn claim_confirmation(
        &self,
        forum: ForumId,
        email: &str,
        owner: &str,
        task: i64,
        min_interval_ms: i64,
    ) -> StoreResult<bool> {
        let shard = self.forum_shard(forum).await?;
        let email = crate::rules::email_key(email);
        let now = confab_core::now_ms();
        let cutoff = now.saturating_sub(min_interval_ms);
        write_value!(self, shard, |tx, n| {
            Ok(exec(
                tx,
                &n,
                "UPDATE subscriptions SET confirm_sent_at = $1, confirm_task = $2 \
                 WHERE forum_id = $3 AND email = $4 AND (state = 'pending' OR (state = 'confirmed' AND owner <> $6)) \
                 AND (confirm_sent_at IS NULL OR confirm_sent_at <= $5 OR confirm_task = $2)",
                &[&now, &task, &forum.0, &email, &cutoff, &owner],
            )
            .await?
                > 0)
        })
    }

    async fn reply_watcher(&self, comment: CommentId) -> StoreResult<Option<ReplyWatch>> {
        read_on!(self, shard_of(comment.0), ReadFrom::Primary, |c, n| {
            Ok(row(
                &c,
                &n,
                "SELECT email, owner FROM reply_notify WHERE comment_id = $1",
                &[&comment.0],
            )
            .await?
            .map(|r| ReplyWatch {
                email: r.get(0),
                owner: r.get(1),
            }))
        })
    }
}

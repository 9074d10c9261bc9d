//! The task outbox on SQLite: writing tasks inside a change's transaction, claiming them with a
//! lease through the single writer, and the subscriptions reply mail is sent by.

use super::*;
use crate::{clip, ReplyWatch, SubState, Subscription, Task, TaskState};

const TASK_COLS: &str =
    "id, shard, kind, payload, state, run_at, attempts, last_error, locked_until, created_at, updated_at";

/// Longest `last_error` kept.
const MAX_ERROR: usize = 1000;

fn task_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    let state: String = r.get(4)?;
    Ok(Task {
        id: r.get(0)?,
        shard: r.get(1)?,
        kind: r.get(2)?,
        payload: r.get(3)?,
        state: TaskState::parse(&state).unwrap_or(TaskState::Parked),
        run_at: r.get(5)?,
        attempts: r.get(6)?,
        last_error: r.get(7)?,
        locked_until: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

/// Writes one task in the caller's transaction.
pub(super) fn insert_task(
    c: &Connection,
    n: &Counter,
    ids: &IdGenerator,
    shard: LogicalShard,
    task: &NewTask,
    payload: &serde_json::Value,
) -> Result<i64, DomainError> {
    let r = crate::rules::task_row(task, payload, confab_core::now_ms())?;
    let id = ids.next(shard);
    exec(
        c,
        n,
        "INSERT INTO tasks (id, shard, kind, payload, state, run_at, attempts, created_at, updated_at) \
         VALUES (?, ?, ?, ?, 'queued', ?, 0, ?, ?)",
        &[
            int(id),
            int(i64::from(shard.get())),
            text(&task.kind),
            text(&r.payload),
            int(r.run_at),
            int(r.now),
            int(r.now),
        ],
    )?;
    Ok(id)
}

fn kinds_args(kinds: &[String]) -> Vec<Value> {
    kinds.iter().map(|k| text(k)).collect()
}

pub(super) fn claim(
    c: &Connection,
    n: &Counter,
    kinds: &[String],
    limit: usize,
    lease_ms: i64,
    max_attempts: i64,
) -> Result<Vec<Task>, DomainError> {
    if kinds.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let now = confab_core::now_ms();
    let kin = placeholders(kinds.len());
    // A lease that ran out after the last allowed attempt: the task killed or stalled its
    // worker every time, so it is parked rather than run again.
    let mut args = vec![int(now), int(now), int(max_attempts)];
    args.extend(kinds_args(kinds));
    exec(
        c,
        n,
        &format!(
            "UPDATE tasks SET state = 'parked', locked_until = NULL, updated_at = ?1, \
             last_error = 'attempt ' || attempts || ' did not finish (lease expired: worker died or stalled)' \
             WHERE state = 'running' AND locked_until <= ?2 AND attempts >= ?3 AND kind IN ({kin})"
        ),
        &args,
    )?;
    let mut found: Vec<(i64, bool)> = Vec::new();
    let mut args = vec![int(now)];
    args.extend(kinds_args(kinds));
    args.push(int(limit as i64));
    let due = rows(
        c,
        n,
        &format!("SELECT id FROM tasks WHERE state = 'queued' AND run_at <= ? AND kind IN ({kin}) ORDER BY run_at, id LIMIT ?"),
        &args,
        |r| r.get::<_, i64>(0),
    )?;
    found.extend(due.into_iter().map(|id| (id, false)));
    if found.len() < limit {
        let mut args = vec![int(now)];
        args.extend(kinds_args(kinds));
        args.push(int((limit - found.len()) as i64));
        let lost = rows(
            c,
            n,
            &format!(
                "SELECT id FROM tasks WHERE state = 'running' AND locked_until <= ? AND kind IN ({kin}) \
                 ORDER BY locked_until, id LIMIT ?"
            ),
            &args,
            |r| r.get::<_, i64>(0),
        )?;
        found.extend(lost.into_iter().map(|id| (id, true)));
    }
    let mut out = Vec::with_capacity(found.len());
    for (id, expired) in found {
        let sql = if expired {
            format!(
                "UPDATE tasks SET state = 'running', attempts = attempts + 1, locked_until = ?, updated_at = ?, \
                 last_error = 'attempt ' || attempts || ' did not finish (lease expired: worker died or stalled)' \
                 WHERE id = ? RETURNING {TASK_COLS}"
            )
        } else {
            format!(
                "UPDATE tasks SET state = 'running', attempts = attempts + 1, locked_until = ?, updated_at = ? \
                 WHERE id = ? RETURNING {TASK_COLS}"
            )
        };
        if let Some(t) = row(
            c,
            n,
            &sql,
            &[int(now.saturating_add(lease_ms)), int(now), int(id)],
            task_row,
        )? {
            out.push(t);
        }
    }
    Ok(out)
}

pub(super) fn next_due(
    c: &Connection,
    n: &Counter,
    kinds: &[String],
) -> Result<Option<i64>, DomainError> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let kin = placeholders(kinds.len());
    let mut args = kinds_args(kinds);
    args.extend(kinds_args(kinds));
    row(
        c,
        n,
        &format!(
            "SELECT min(t) FROM (\
               SELECT min(run_at) AS t FROM tasks WHERE state = 'queued' AND kind IN ({kin}) \
               UNION ALL SELECT min(locked_until) FROM tasks WHERE state = 'running' AND kind IN ({kin}))"
        ),
        &args,
        |r| r.get::<_, Option<i64>>(0),
    )
    .map(Option::flatten)
}

pub(super) fn complete(
    c: &Connection,
    n: &Counter,
    id: i64,
    attempt: i64,
) -> Result<bool, DomainError> {
    Ok(exec(
        c,
        n,
        "UPDATE tasks SET state = 'done', locked_until = NULL, updated_at = ? \
         WHERE id = ? AND attempts = ? AND state = 'running'",
        &[int(confab_core::now_ms()), int(id), int(attempt)],
    )? > 0)
}

pub(super) fn fail(
    c: &Connection,
    n: &Counter,
    id: i64,
    attempt: i64,
    error: &str,
    retry_at: Option<i64>,
) -> Result<bool, DomainError> {
    let (state, run_at) = match retry_at {
        Some(t) => ("queued", Value::Integer(t)),
        None => ("parked", Value::Null),
    };
    Ok(exec(
        c,
        n,
        "UPDATE tasks SET state = ?, run_at = coalesce(?, run_at), last_error = ?, locked_until = NULL, \
         updated_at = ? WHERE id = ? AND attempts = ? AND state = 'running'",
        &[text(state), run_at, text(clip(error, MAX_ERROR)), int(confab_core::now_ms()), int(id), int(attempt)],
    )? > 0)
}

pub(super) fn load(c: &Connection, n: &Counter, id: i64) -> Result<Option<Task>, DomainError> {
    row(
        c,
        n,
        &format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?"),
        &[int(id)],
        task_row,
    )
}

pub(super) fn list(
    c: &Connection,
    n: &Counter,
    state: Option<TaskState>,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<Task>, DomainError> {
    let mut args = vec![int(before.unwrap_or(i64::MAX))];
    let mut sql = format!("SELECT {TASK_COLS} FROM tasks WHERE id < ?");
    if let Some(s) = state {
        sql.push_str(" AND state = ?");
        args.push(text(s.as_str()));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(int(limit as i64));
    rows(c, n, &sql, &args, task_row)
}

pub(super) fn retry(c: &Connection, n: &Counter, id: i64) -> Result<bool, DomainError> {
    let now = confab_core::now_ms();
    Ok(exec(
        c,
        n,
        "UPDATE tasks SET state = 'queued', attempts = 0, run_at = ?, updated_at = ? WHERE id = ? AND state = 'parked'",
        &[int(now), int(now), int(id)],
    )? > 0)
}

pub(super) fn prune(
    c: &Connection,
    n: &Counter,
    before: i64,
    limit: usize,
) -> Result<u64, DomainError> {
    let args = [int(before), int(limit as i64)];
    exec(
        c,
        n,
        "DELETE FROM task_effects WHERE task_id IN \
         (SELECT id FROM tasks WHERE state = 'done' AND updated_at < ? ORDER BY id LIMIT ?)",
        &args,
    )?;
    Ok(exec(
        c,
        n,
        "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE state = 'done' AND updated_at < ? ORDER BY id LIMIT ?)",
        &args,
    )? as u64)
}

pub(super) fn effects(c: &Connection, n: &Counter, id: i64) -> Result<Vec<String>, DomainError> {
    rows(
        c,
        n,
        "SELECT key FROM task_effects WHERE task_id = ? ORDER BY key LIMIT 1000",
        &[int(id)],
        |r| r.get(0),
    )
}

pub(super) fn record_effect(
    c: &Connection,
    n: &Counter,
    id: i64,
    key: &str,
) -> Result<(), DomainError> {
    crate::rules::effect_key(key)?;
    exec(
        c,
        n,
        "INSERT OR IGNORE INTO task_effects (task_id, key, created_at) VALUES (?, ?, ?)",
        &[int(id), text(key), int(confab_core::now_ms())],
    )?;
    Ok(())
}

/// Records a reply-mail request with a new comment; the address's subscription becomes
/// pending unless it is confirmed.
pub(super) fn request_notify(
    c: &Connection,
    n: &Counter,
    comment: CommentId,
    forum: ForumId,
    shard: LogicalShard,
    watch: &ReplyWatch,
) -> Result<(), DomainError> {
    let email = watch.email.as_str();
    let now = confab_core::now_ms();
    exec(
        c,
        n,
        "INSERT INTO reply_notify (comment_id, shard, forum_id, email, created_at, owner) VALUES (?, ?, ?, ?, ?, ?)",
        &[int(comment.0), int(i64::from(shard.get())), int(forum.0), text(email), int(now), text(&watch.owner)],
    )?;
    exec(
        c,
        n,
        "INSERT INTO subscriptions (forum_id, email, shard, state, created_at, updated_at) \
         VALUES (?1, ?2, ?3, 'pending', ?4, ?4) \
         ON CONFLICT (forum_id, email) DO UPDATE SET state = 'pending', updated_at = excluded.updated_at \
         WHERE state <> 'confirmed'",
        &[int(forum.0), text(email), int(i64::from(shard.get())), int(now)],
    )?;
    Ok(())
}

pub(super) fn subscription(
    c: &Connection,
    n: &Counter,
    forum: ForumId,
    email: &str,
) -> Result<Option<Subscription>, DomainError> {
    row(
        c,
        n,
        "SELECT state, confirm_sent_at, updated_at, owner FROM subscriptions WHERE forum_id = ? AND email = ?",
        &[int(forum.0), text(email)],
        |r| {
            let s: String = r.get(0)?;
            Ok(Subscription {
                state: SubState::parse(&s).unwrap_or(SubState::Unsubscribed),
                confirm_sent_at: r.get(1)?,
                updated_at: r.get(2)?,
                owner: r.get(3)?,
            })
        },
    )
}

pub(super) fn set_subscription(
    c: &Connection,
    n: &Counter,
    forum: ForumId,
    shard: LogicalShard,
    email: &str,
    state: SubState,
    owner: Option<&str>,
) -> Result<(), DomainError> {
    exec(
        c,
        n,
        "INSERT INTO subscriptions (forum_id, email, shard, state, created_at, updated_at, owner) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, coalesce(?6, '')) \
         ON CONFLICT (forum_id, email) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, \
         owner = coalesce(?6, owner)",
        &[
            int(forum.0),
            text(email),
            int(i64::from(shard.get())),
            text(state.as_str()),
            int(confab_core::now_ms()),
            owner.map_or(Value::Null, text),
        ],
    )?;
    Ok(())
}

pub(super) fn claim_confirmation(
    c: &Connection,
    n: &Counter,
    forum: ForumId,
    email: &str,
    owner: &str,
    task: i64,
    min_interval_ms: i64,
) -> Result<bool, DomainError> {
    let now = confab_core::now_ms();
    Ok(exec(
        c,
        n,
        "UPDATE subscriptions SET confirm_sent_at = ?1, confirm_task = ?2 \
         WHERE forum_id = ?3 AND email = ?4 AND (state = 'pending' OR (state = 'confirmed' AND owner <> ?6)) \
         AND (confirm_sent_at IS NULL OR confirm_sent_at <= ?5 OR confirm_task = ?2)",
        &[int(now), int(task), int(forum.0), text(email), int(now.saturating_sub(min_interval_ms)), text(owner)],
    )? > 0)
}

pub(super) fn reply_watcher(
    c: &Connection,
    n: &Counter,
    comment: CommentId,
) -> Result<Option<ReplyWatch>, DomainError> {
    row(
        c,
        n,
        "SELECT email, owner FROM reply_notify WHERE comment_id = ?",
        &[int(comment.0)],
        |r| {
            Ok(ReplyWatch {
                email: r.get(0)?,
                owner: r.get(1)?,
            })
        },
    )
}

pub(super) fn forum_moderators(
    c: &Connection,
    n: &Counter,
    forum: ForumId,
) -> Result<Vec<Account>, DomainError> {
    rows(
        c,
        n,
        &format!(
            "SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id IN \
             (SELECT account_id FROM forum_moderators WHERE forum_id = ?) ORDER BY a.id LIMIT 100"
        ),
        &[int(forum.0)],
        super::account_row,
    )
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue_task(&self, shard: LogicalShard, task: NewTask) -> StoreResult<()> {
        let ids = self.ids.clone();
        self.pool
            .write(move |c, n| {
                outbox::insert_task(c, n, &ids, shard, &task, &task.payload)?;
                Ok(())
            })
            .await
    }

    async fn claim_tasks(
        &self,
        kinds: &[String],
        limit: usize,
        lease_ms: i64,
        max_attempts: i64,
    ) -> StoreResult<Vec<Task>> {
        let kinds = kinds.to_vec();
        self.pool
            .write(move |c, n| outbox::claim(c, n, &kinds, limit, lease_ms, max_attempts))
            .await
    }

    async fn next_task_due(&self, kinds: &[String]) -> StoreResult<Option<i64>> {
        let kinds = kinds.to_vec();
        self.pool
            .read(move |c, n| outbox::next_due(c, n, &kinds))
            .await
    }

    async fn task_queue(&self, now: i64, timeout: std::time::Duration) -> Vec<crate::QueueDepth> {
        let read = self.pool.read(move |c, n| {
            n.add(1);
            c.prepare_cached(crate::QUEUE_SQL_SQLITE)
                .and_then(|mut st| {
                    st.query_row([now], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
                    })
                })
                .map_err(db_err)
        });
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok((queued, oldest_due))) => vec![crate::QueueDepth {
                shard: super::EMBEDDED.to_string(),
                queued: queued.max(0) as u64,
                oldest_due,
            }],
            Ok(Err(_)) | Err(_) => Vec::new(),
        }
    }

    async fn complete_task(&self, id: i64, attempt: i64) -> StoreResult<bool> {
        self.pool
            .write(move |c, n| outbox::complete(c, n, id, attempt))
            .await
    }

    async fn fail_task(
        &self,
        id: i64,
        attempt: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> StoreResult<bool> {
        let error = error.to_string();
        self.pool
            .write(move |c, n| outbox::fail(c, n, id, attempt, &error, retry_at))
            .await
    }

    async fn task(&self, id: i64) -> StoreResult<Option<Task>> {
        self.pool.read(move |c, n| outbox::load(c, n, id)).await
    }

    async fn list_tasks(
        &self,
        state: Option<TaskState>,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<Task>> {
        self.pool
            .read(move |c, n| outbox::list(c, n, state, before, limit))
            .await
    }

    async fn retry_task(&self, id: i64) -> StoreResult<bool> {
        self.pool.write(move |c, n| outbox::retry(c, n, id)).await
    }

    async fn prune_tasks(&self, before: i64, limit: usize) -> StoreResult<u64> {
        self.pool
            .write(move |c, n| outbox::prune(c, n, before, limit))
            .await
    }

    async fn task_effects(&self, id: i64) -> StoreResult<Vec<String>> {
        self.pool.read(move |c, n| outbox::effects(c, n, id)).await
    }

    async fn record_task_effect(&self, id: i64, key: &str) -> StoreResult<()> {
        let key = key.to_string();
        self.pool
            .write(move |c, n| outbox::record_effect(c, n, id, &key))
            .await
    }

    async fn subscription(&self, forum: ForumId, email: &str) -> StoreResult<Option<Subscription>> {
        let email = email.to_string();
        self.pool
            .read(move |c, n| outbox::subscription(c, n, forum, &email))
            .await
    }

    async fn set_subscription(
        &self,
        forum: &Forum,
        email: &str,
        state: SubState,
        owner: Option<&str>,
    ) -> StoreResult<()> {
        let (email, id, shard, owner) = (
            email.to_string(),
            forum.id,
            forum.shard,
            owner.map(str::to_string),
        );
        self.pool
            .write(move |c, n| {
                outbox::set_subscription(c, n, id, shard, &email, state, owner.as_deref())
            })
            .await
    }

    async fn claim_confirmation(
        &self,
        forum: ForumId,
        email: &str,
        owner: &str,
        task: i64,
        min_interval_ms: i64,
    ) -> StoreResult<bool> {
        let (email, owner) = (email.to_string(), owner.to_string());
        self.pool
            .write(move |c, n| {
                outbox::claim_confirmation(c, n, forum, &email, &owner, task, min_interval_ms)
            })
            .await
    }

    async fn reply_watcher(&self, comment: CommentId) -> StoreResult<Option<ReplyWatch>> {
        self.pool
            .read(move |c, n| outbox::reply_watcher(c, n, comment))
            .await
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::sqlite::SqliteStore;
    use crate::{NewComment, NewTask, ReplyWatch, SubState, TaskState, TaskWhen};
    use confab_core::ident::Ident;
    use confab_core::model::{Author, CommentStatus, Forum, ForumSettings};
    use serde_json::json;

    async fn store() -> (SqliteStore, Forum, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.sqlite3"), 2).unwrap();
        let f = s.create_forum("f", &ForumSettings::new("F")).await.unwrap();
        (s, f, dir)
    }

    fn comment(
        f: &Forum,
        parent: Option<confab_core::id::CommentId>,
        tasks: Vec<NewTask>,
    ) -> NewComment {
        NewComment {
            forum: std::sync::Arc::new(f.clone()),
            ident: Ident::parse("/t").unwrap(),
            url: None,
            title: None,
            parent_id: parent,
            author: Author::Guest {
                name: "g".into(),
                email: Some("g@example.com".into()),
                url: None,
            },
            anon_id: None,
            body_md: "x".into(),
            body_html: "<p>x</p>".into(),
            status: CommentStatus::Approved,
            held_reason: None,
            ip_hash: "0".into(),
            created_at: confab_core::now_ms(),
            idempotency: None,
            max_depth: 5,
            tasks,
            notify: None,
            spam_facts: None,
            images: Vec::new(),
        }
    }

    fn kinds() -> Vec<String> {
        vec!["k".to_string()]
    }

    #[tokio::test]
    async fn tasks_commit_with_their_comment_or_not_at_all() {
        let (s, f, _d) = store().await;
        let c = s
            .post_comment(comment(&f, None, vec![NewTask::new("k", json!({"a": 1}))]))
            .await
            .unwrap()
            .value;
        let all = s.list_tasks(None, None, 10).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].state, TaskState::Queued);
        assert_eq!(
            all[0].payload_json(),
            json!({"a": 1, "comment_id": c.comment.id.0.to_string()})
        );
        assert_eq!(i64::from(all[0].shard), i64::from(f.shard.get()));

        // A replay of the same request adds nothing.
        let mut again = comment(&f, None, vec![NewTask::new("k", json!({}))]);
        again.idempotency = Some(crate::Idempotency {
            scope: "s".into(),
            key: "same".into(),
            request_hash: "h".into(),
        });
        s.post_comment(again.clone()).await.unwrap();
        s.post_comment(again).await.unwrap();
        assert_eq!(s.list_tasks(None, None, 10).await.unwrap().len(), 2);

        // A reply to a comment that does not exist fails, and leaves no task behind.
        let bad = comment(
            &f,
            Some(confab_core::id::CommentId(12345)),
            vec![NewTask::new("k", json!({}))],
        );
        assert!(s.post_comment(bad).await.is_err());
        // A payload over the bound fails the whole write.
        let big = comment(
            &f,
            None,
            vec![NewTask::new(
                "k",
                json!({"x": "y".repeat(crate::MAX_TASK_PAYLOAD)}),
            )],
        );
        assert!(s.post_comment(big).await.is_err());
        assert_eq!(s.list_tasks(None, None, 10).await.unwrap().len(), 2);
        assert_eq!(s.forums().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn set_status_writes_tasks_as_their_condition_says() {
        let (s, f, _d) = store().await;
        let mut p = comment(&f, None, vec![]);
        p.status = CommentStatus::Pending;
        let a = s.post_comment(p).await.unwrap().value.comment.id;
        let b = s
            .post_comment(comment(&f, None, vec![]))
            .await
            .unwrap()
            .value
            .comment
            .id;
        let tasks = vec![
            NewTask::new("k", json!({"n": "a-changed"})).when(TaskWhen::Changed(a)),
            NewTask::new("k", json!({"n": "b-changed"})).when(TaskWhen::Changed(b)),
            NewTask::new("k", json!({"n": "a-from-pending"}))
                .when(TaskWhen::ChangedFrom(a, CommentStatus::Pending)),
            NewTask::new("k", json!({"n": "a-from-spam"}))
                .when(TaskWhen::ChangedFrom(a, CommentStatus::Spam)),
            NewTask::new("k", json!({"n": "always"})),
        ];
        s.set_status(&f, &[a, b], CommentStatus::Approved, None, "approve", tasks)
            .await
            .unwrap();
        let mut names: Vec<String> = s
            .list_tasks(None, None, 10)
            .await
            .unwrap()
            .iter()
            .map(|t| t.payload_json()["n"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["a-changed", "a-from-pending", "always"]);
        // A failing call (an id of no comment) writes none.
        let r = s
            .set_status(
                &f,
                &[a, confab_core::id::CommentId(1)],
                CommentStatus::Deleted,
                None,
                "delete",
                vec![NewTask::new("k", json!({}))],
            )
            .await;
        assert!(r.is_err());
        assert_eq!(s.list_tasks(None, None, 10).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn claims_lease_and_only_the_holder_finishes() {
        let (s, f, _d) = store().await;
        for _ in 0..3 {
            s.post_comment(comment(&f, None, vec![NewTask::new("k", json!({}))]))
                .await
                .unwrap();
        }
        s.post_comment(comment(&f, None, vec![NewTask::new("other", json!({}))]))
            .await
            .unwrap();
        let due = s.next_task_due(&kinds()).await.unwrap().unwrap();
        assert!(due <= confab_core::now_ms());
        let got = s.claim_tasks(&kinds(), 2, 60_000, 5).await.unwrap();
        assert_eq!(got.len(), 2);
        assert!(got
            .iter()
            .all(|t| t.state == TaskState::Running && t.attempts == 1 && t.kind == "k"));
        assert_eq!(
            s.claim_tasks(&kinds(), 5, 60_000, 5).await.unwrap().len(),
            1,
            "one left; `other` not claimed"
        );
        assert!(s
            .claim_tasks(&kinds(), 5, 60_000, 5)
            .await
            .unwrap()
            .is_empty());

        let t = &got[0];
        assert!(
            !s.complete_task(t.id, 2).await.unwrap(),
            "another claim's attempt changes nothing"
        );
        assert!(s.complete_task(t.id, 1).await.unwrap());
        assert!(!s.complete_task(t.id, 1).await.unwrap(), "done once");
        assert_eq!(s.task(t.id).await.unwrap().unwrap().state, TaskState::Done);

        // Failing: queued again at the given time, then parked.
        let u = &got[1];
        let later = confab_core::now_ms() + 60_000;
        assert!(s.fail_task(u.id, 1, "boom", Some(later)).await.unwrap());
        let row = s.task(u.id).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.run_at, row.last_error.as_deref()),
            (TaskState::Queued, later, Some("boom"))
        );
        assert!(
            s.claim_tasks(&kinds(), 5, 60_000, 5)
                .await
                .unwrap()
                .is_empty(),
            "not due yet"
        );
        assert_eq!(
            s.next_task_due(&kinds())
                .await
                .unwrap()
                .map(|d| d >= later - 60_000),
            Some(true)
        );
        assert!(
            !s.retry_task(u.id).await.unwrap(),
            "only parked tasks are retried by hand"
        );
    }

    #[tokio::test]
    async fn an_expired_lease_is_claimed_again_then_parked() {
        let (s, f, _d) = store().await;
        s.post_comment(comment(&f, None, vec![NewTask::new("k", json!({}))]))
            .await
            .unwrap();
        let first = s.claim_tasks(&kinds(), 1, 0, 2).await.unwrap().remove(0);
        // The lease (0 ms) ran out: the worker "died". The task is claimed again.
        let second = s.claim_tasks(&kinds(), 1, 0, 2).await.unwrap().remove(0);
        assert_eq!((second.id, second.attempts), (first.id, 2));
        assert!(second
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("lease expired"));
        assert!(
            !s.complete_task(first.id, 1).await.unwrap(),
            "the dead claim cannot finish it"
        );
        // Out of attempts when that lease runs out too: parked, not run a third time.
        assert!(s.claim_tasks(&kinds(), 1, 0, 2).await.unwrap().is_empty());
        let row = s.task(first.id).await.unwrap().unwrap();
        assert_eq!(row.state, TaskState::Parked);
        assert_eq!(
            s.list_tasks(Some(TaskState::Parked), None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(s.retry_task(first.id).await.unwrap());
        let again = s
            .claim_tasks(&kinds(), 1, 60_000, 2)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(again.attempts, 1, "a retried task starts its attempts over");

        // Effects and pruning.
        s.record_task_effect(again.id, "mail:1").await.unwrap();
        s.record_task_effect(again.id, "mail:1").await.unwrap();
        assert_eq!(s.task_effects(again.id).await.unwrap(), ["mail:1"]);
        assert!(s.complete_task(again.id, 1).await.unwrap());
        assert_eq!(
            s.prune_tasks(confab_core::now_ms() - 60_000, 100)
                .await
                .unwrap(),
            0,
            "recent"
        );
        assert_eq!(
            s.prune_tasks(confab_core::now_ms() + 1, 100).await.unwrap(),
            1
        );
        assert!(s.task_effects(again.id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn reply_mail_requests_and_subscriptions() {
        let (s, f, _d) = store().await;
        let mut c = comment(&f, None, vec![]);
        let watch = |e: &str, o: &str| {
            Some(ReplyWatch {
                email: e.into(),
                owner: o.into(),
            })
        };
        c.notify = watch("Ann@example.com", "t:ann");
        let id = s.post_comment(c).await.unwrap().value.comment.id;
        assert_eq!(
            s.reply_watcher(id).await.unwrap(),
            watch("Ann@example.com", "t:ann")
        );
        let sub = s
            .subscription(f.id, "ann@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            sub.state,
            SubState::Pending,
            "addresses match without regard to case"
        );
        assert!(s
            .claim_confirmation(f.id, "ann@example.com", "t:ann", 7, 3_600_000)
            .await
            .unwrap());
        assert!(
            s.claim_confirmation(f.id, "ann@example.com", "t:ann", 7, 3_600_000)
                .await
                .unwrap(),
            "the same task again"
        );
        assert!(
            !s.claim_confirmation(f.id, "ann@example.com", "t:ann", 8, 3_600_000)
                .await
                .unwrap(),
            "another within the hour"
        );
        s.set_subscription(&f, "ann@example.com", SubState::Confirmed, Some("t:ann"))
            .await
            .unwrap();
        assert_eq!(
            s.subscription(f.id, "ann@example.com")
                .await
                .unwrap()
                .unwrap()
                .owner,
            "t:ann"
        );
        assert!(
            !s.claim_confirmation(f.id, "ann@example.com", "t:ann", 9, 0)
                .await
                .unwrap(),
            "confirmed for its owner needs none"
        );
        assert!(
            s.claim_confirmation(f.id, "ann@example.com", "t:mallory", 10, 0)
                .await
                .unwrap(),
            "another asker must confirm"
        );
        // A new request keeps a confirmed address confirmed, for its owner...
        let mut c = comment(&f, None, vec![]);
        c.notify = watch("ann@example.com", "t:mallory");
        s.post_comment(c).await.unwrap();
        let sub = s
            .subscription(f.id, "ann@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (sub.state, sub.owner.as_str()),
            (SubState::Confirmed, "t:ann")
        );
        // ...and makes an unsubscribed one pending again (a new confirmation is needed).
        s.set_subscription(&f, "ann@example.com", SubState::Unsubscribed, None)
            .await
            .unwrap();
        let mut c = comment(&f, None, vec![]);
        c.notify = watch("ann@example.com", "t:ann");
        s.post_comment(c).await.unwrap();
        assert_eq!(
            s.subscription(f.id, "ann@example.com")
                .await
                .unwrap()
                .unwrap()
                .state,
            SubState::Pending
        );
        assert!(s.forum_moderators(f.id).await.unwrap().is_empty());
    }
}

//! The claim / run / retry loop.

use crate::config::TasksConfig;
use async_trait::async_trait;
use confab_store::{Store, Task};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

/// How a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// Worth trying again later (a timeout, a refused connection, a 5xx, a 4xx SMTP reply).
    Retry(String),
    /// Retrying cannot help (a bad payload, mail not configured, a permanent SMTP rejection):
    /// parked at once for an operator.
    Park(String),
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskError::Retry(m) => write!(f, "{m}"),
            TaskError::Park(m) => write!(f, "{m} (parked: retrying cannot help)"),
        }
    }
}

/// Runs tasks of the kinds it is registered for. A handler must be idempotent: the same task
/// may run again after a crash (see the crate docs).
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, task: &Task) -> Result<(), TaskError>;
}

/// The loop's knobs; see [`TasksConfig`] for what each means.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub concurrency: usize,
    pub max_attempts: i64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub lease: Duration,
    pub poll: Duration,
    pub keep_done: Duration,
    /// How long shutdown waits for running tasks (an unfinished one runs again elsewhere once
    /// its lease runs out).
    pub grace: Duration,
}

impl From<&TasksConfig> for WorkerOptions {
    fn from(c: &TasksConfig) -> Self {
        WorkerOptions {
            concurrency: c.concurrency.clamp(1, 256),
            max_attempts: c.max_attempts.clamp(1, 1000),
            backoff_base: Duration::from_millis(c.backoff_base_ms.clamp(1, 3_600_000)),
            backoff_max: Duration::from_secs(c.backoff_max_secs.clamp(1, 7 * 24 * 3600)),
            lease: Duration::from_secs(c.lease_secs.clamp(2, 24 * 3600)),
            poll: Duration::from_millis(c.poll_ms.clamp(10, 60_000)),
            keep_done: Duration::from_secs(c.keep_done_hours.min(24 * 365) * 3600),
            grace: Duration::from_secs(10),
        }
    }
}

impl WorkerOptions {
    /// How long one run may take: three quarters of the lease, so a live worker always finishes
    /// (or gives up) before anyone else may claim its task.
    pub fn deadline(&self) -> Duration {
        self.lease * 3 / 4
    }
}

/// The delay before attempt `attempt + 1` after attempt `attempt` failed: `base * 2^(attempt-1)`
/// capped at `max`, then "equal jitter": half of it fixed, half uniformly random (`unit` in
/// `[0, 1)`), so tasks that failed together do not retry together.
pub fn backoff(base: Duration, max: Duration, attempt: i64, unit: f64) -> Duration {
    let shift = attempt.saturating_sub(1).clamp(0, 32) as u32;
    let full = base.saturating_mul(1u32 << shift.min(31)).min(max);
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// The worker: register handlers, then [`Worker::run`] until cancelled.
pub struct Worker {
    store: Arc<dyn Store>,
    opts: WorkerOptions,
    handlers: HashMap<String, Arc<dyn Handler>>,
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, opts: WorkerOptions) -> Worker {
        Worker {
            store,
            opts,
            handlers: HashMap::new(),
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn register(&mut self, kind: &str, handler: Arc<dyn Handler>) {
        self.handlers.insert(kind.to_string(), handler);
    }

    /// Wakes the worker when a task was just written (instead of waiting for the next poll).
    /// In-process writers call `notify_one` on it; other processes rely on the poll.
    pub fn with_waker(mut self, wake: Arc<Notify>) -> Worker {
        self.wake = wake;
        self
    }

    pub fn options(&self) -> &WorkerOptions {
        &self.opts
    }

    /// Claims and runs tasks until `cancel` fires, then waits up to the grace period for the
    /// tasks it is running.
    pub async fn run(self, cancel: CancellationToken) {
        let mut kinds: Vec<String> = self.handlers.keys().cloned().collect();
        kinds.sort();
        if kinds.is_empty() {
            tracing::warn!("task worker has no handlers; not starting");
            return;
        }
        let opts = self.opts.clone();
        let slots = Arc::new(Semaphore::new(opts.concurrency));
        let lease_ms = i64::try_from(opts.lease.as_millis()).unwrap_or(i64::MAX);
        let mut next_prune = Instant::now() + Duration::from_secs(5);
        tracing::info!(kinds = ?kinds, concurrency = opts.concurrency, "task worker started");
        loop {
            if cancel.is_cancelled() {
                break;
            }
            // Wait for a free slot.
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    p = slots.clone().acquire_owned() => drop(p),
                }
                continue;
            }
            if Instant::now() >= next_prune {
                next_prune = Instant::now() + Duration::from_secs(600);
                self.prune().await;
            }
            // A cheap read first: idle workers do not take the write lock.
            let now = confab_core::now_ms();
            let wait = match self.store.next_task_due(&kinds).await {
                Ok(Some(t)) if t <= now => None,
                Ok(Some(t)) => Some(opts.poll.min(Duration::from_millis((t - now) as u64))),
                Ok(None) => Some(opts.poll),
                Err(e) => {
                    tracing::warn!(error = %e, "task worker cannot read the outbox");
                    Some(opts.poll)
                }
            };
            if let Some(w) = wait {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(w) => {}
                }
                continue;
            }
            let claimed = match self
                .store
                .claim_tasks(&kinds, free, lease_ms, opts.max_attempts)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "task worker cannot claim tasks");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(opts.poll) => {}
                    }
                    continue;
                }
            };
            for task in claimed {
                let permit = match slots.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => match slots.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let Some(handler) = self.handlers.get(&task.kind).cloned() else {
                    continue;
                };
                let (store, opts) = (self.store.clone(), opts.clone());
                tokio::spawn(async move {
                    run_one(store, handler, task, &opts).await;
                    drop(permit);
                });
            }
        }
        let n = u32::try_from(opts.concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(opts.grace, slots.acquire_many(n))
            .await
            .is_err()
        {
            tracing::warn!("task worker stopped with tasks still running; they run again when their lease runs out");
        }
        tracing::info!("task worker stopped");
    }

    async fn prune(&self) {
        let before = confab_core::now_ms()
            - i64::try_from(self.opts.keep_done.as_millis()).unwrap_or(i64::MAX);
        // Bounded rounds, so pruning a large backlog never holds the writer for long.
        for _ in 0..20 {
            match self.store.prune_tasks(before, 1000).await {
                Ok(1000) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "pruning done tasks failed");
                    break;
                }
            }
        }
    }
}

/// Runs one claimed task under the deadline and records the outcome.
async fn run_one(
    store: Arc<dyn Store>,
    handler: Arc<dyn Handler>,
    task: Task,
    opts: &WorkerOptions,
) {
    let (id, attempt, kind) = (task.id, task.attempts, task.kind.clone());
    let deadline = opts.deadline();
    // Its own task, so a panicking handler is a failed attempt, not a dead worker.
    let mut job = tokio::spawn(async move { handler.run(&task).await });
    let outcome = tokio::select! {
        r = &mut job => match r {
            Ok(r) => r,
            Err(e) if e.is_panic() => Err(TaskError::Retry("the handler panicked".into())),
            Err(_) => Err(TaskError::Retry("the handler was cancelled".into())),
        },
        _ = tokio::time::sleep(deadline) => {
            job.abort();
            Err(TaskError::Retry(format!("timed out after {} ms", deadline.as_millis())))
        }
    };
    let recorded = match &outcome {
        Ok(()) => {
            tracing::debug!(task = id, kind = %kind, attempt, "task done");
            store.complete_task(id, attempt).await
        }
        Err(TaskError::Park(msg)) => {
            tracing::warn!(task = id, kind = %kind, attempt, error = %msg, "task parked");
            store.fail_task(id, attempt, msg, None).await
        }
        Err(TaskError::Retry(msg)) if attempt >= opts.max_attempts => {
            tracing::warn!(task = id, kind = %kind, attempt, error = %msg, "task parked after its last attempt");
            store
                .fail_task(
                    id,
                    attempt,
                    &format!("{msg} (attempt {attempt} of {})", opts.max_attempts),
                    None,
                )
                .await
        }
        Err(TaskError::Retry(msg)) => {
            let delay = backoff(
                opts.backoff_base,
                opts.backoff_max,
                attempt,
                rand::random::<f64>(),
            );
            let at = confab_core::now_ms()
                .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
            tracing::info!(task = id, kind = %kind, attempt, error = %msg, retry_in_ms = delay.as_millis() as u64, "task failed; will retry");
            store.fail_task(id, attempt, msg, Some(at)).await
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(task = id, kind = %kind, attempt, "task's lease was lost before its outcome was recorded; it runs again")
        }
        Err(e) => {
            tracing::warn!(task = id, kind = %kind, attempt, error = %e, "cannot record task outcome; it runs again when its lease runs out")
        }
    }
}

#[cfg(test)]
mod tests;

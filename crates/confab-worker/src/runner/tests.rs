use super::*;
use confab_core::ident::Ident;
use confab_core::model::{Author, CommentStatus, ForumSettings};
use confab_store::sqlite::SqliteStore;
use confab_store::{NewComment, NewTask, TaskState};
use std::sync::atomic::{AtomicUsize, Ordering};

fn opts() -> WorkerOptions {
    WorkerOptions {
        concurrency: 2,
        max_attempts: 3,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        lease: Duration::from_millis(400),
        poll: Duration::from_millis(20),
        keep_done: Duration::from_secs(3600),
        grace: Duration::from_secs(2),
    }
}

/// A store with one forum and one task of kind `k` (returns the task id).
async fn with_task() -> (Arc<dyn Store>, i64, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("w.sqlite3"), 2).unwrap());
    let f = store
        .create_forum("f", &ForumSettings::new("F"))
        .await
        .unwrap();
    store
        .post_comment(NewComment {
            forum: std::sync::Arc::new(f),
            ident: Ident::parse("/x").unwrap(),
            url: None,
            title: None,
            parent_id: None,
            author: Author::Guest {
                name: "g".into(),
                email: None,
                url: None,
            },
            anon_id: None,
            body_md: "x".into(),
            body_html: "x".into(),
            status: CommentStatus::Approved,
            held_reason: None,
            ip_hash: "0".into(),
            created_at: confab_core::now_ms(),
            idempotency: None,
            max_depth: 5,
            tasks: vec![NewTask::new("k", serde_json::json!({}))],
            notify: None,
            spam_facts: None,
            images: Vec::new(),
        })
        .await
        .unwrap();
    let id = store.list_tasks(None, None, 1).await.unwrap()[0].id;
    (store, id, dir)
}

/// Fails its first `fail` runs (a panic on run `panic_on`, if set), then succeeds.
struct Flaky {
    runs: AtomicUsize,
    fail: usize,
    park: bool,
    panic_on: Option<usize>,
    sleep_on: Option<(usize, Duration)>,
}

impl Flaky {
    fn new(fail: usize) -> Flaky {
        Flaky {
            runs: AtomicUsize::new(0),
            fail,
            park: false,
            panic_on: None,
            sleep_on: None,
        }
    }
}

#[async_trait]
impl Handler for Flaky {
    async fn run(&self, _task: &Task) -> Result<(), TaskError> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        if self.panic_on == Some(n) {
            panic!("handler bug");
        }
        if let Some((on, d)) = self.sleep_on {
            if on == n {
                tokio::time::sleep(d).await;
            }
        }
        if n <= self.fail {
            return Err(if self.park {
                TaskError::Park("hopeless".into())
            } else {
                TaskError::Retry(format!("fail {n}"))
            });
        }
        Ok(())
    }
}

/// Runs a worker until task `id` is done or parked (or 10 s pass), then stops it.
async fn run_until_settled(
    store: &Arc<dyn Store>,
    h: Arc<Flaky>,
    o: WorkerOptions,
    id: i64,
) -> Task {
    let mut w = Worker::new(store.clone(), o);
    w.register("k", h);
    let cancel = CancellationToken::new();
    let run = tokio::spawn(w.run(cancel.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let t = loop {
        let t = store.task(id).await.unwrap().unwrap();
        if matches!(t.state, TaskState::Done | TaskState::Parked) || Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("stops when cancelled")
        .unwrap();
    t
}

#[tokio::test]
async fn retries_with_backoff_until_it_succeeds() {
    let (store, id, _d) = with_task().await;
    let h = Arc::new(Flaky::new(2));
    let t = run_until_settled(&store, h.clone(), opts(), id).await;
    assert_eq!((t.state, t.attempts), (TaskState::Done, 3));
    assert_eq!(h.runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn parks_after_max_attempts() {
    let (store, id, _d) = with_task().await;
    let h = Arc::new(Flaky::new(usize::MAX));
    let t = run_until_settled(&store, h.clone(), opts(), id).await;
    assert_eq!((t.state, t.attempts), (TaskState::Parked, 3));
    assert!(
        t.last_error
            .as_deref()
            .unwrap_or("")
            .contains("fail 3 (attempt 3 of 3)"),
        "{:?}",
        t.last_error
    );
    assert_eq!(h.runs.load(Ordering::SeqCst), 3);
    // An operator's retry runs it again from the start.
    assert!(store.retry_task(id).await.unwrap());
    let t = run_until_settled(&store, Arc::new(Flaky::new(0)), opts(), id).await;
    assert_eq!((t.state, t.attempts), (TaskState::Done, 1));
}

#[tokio::test]
async fn a_hopeless_failure_parks_at_once() {
    let (store, id, _d) = with_task().await;
    let h = Arc::new(Flaky {
        park: true,
        ..Flaky::new(1)
    });
    let t = run_until_settled(&store, h, opts(), id).await;
    assert_eq!((t.state, t.attempts), (TaskState::Parked, 1));
}

#[tokio::test]
async fn a_panic_or_a_timeout_is_a_failed_attempt() {
    let (store, id, _d) = with_task().await;
    let h = Arc::new(Flaky {
        panic_on: Some(1),
        sleep_on: Some((2, Duration::from_secs(30))),
        ..Flaky::new(0)
    });
    let t = run_until_settled(&store, h.clone(), opts(), id).await;
    assert_eq!(
        (t.state, t.attempts),
        (TaskState::Done, 3),
        "{:?}",
        t.last_error
    );
    assert_eq!(h.runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_dead_workers_task_runs_again_after_its_lease() {
    let (store, id, _d) = with_task().await;
    // A worker claims it and dies (never finishes).
    let claimed = store
        .claim_tasks(&["k".to_string()], 1, 300, 3)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let started = Instant::now();
    let h = Arc::new(Flaky::new(0));
    let t = run_until_settled(&store, h.clone(), opts(), id).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the lease ran out"
    );
    assert_eq!((t.state, t.attempts), (TaskState::Done, 2));
    assert_eq!(h.runs.load(Ordering::SeqCst), 1);
    assert!(
        !store.complete_task(id, 1).await.unwrap(),
        "the dead claim cannot record anything"
    );
}

#[test]
fn backoff_doubles_caps_and_jitters() {
    let (b, m) = (Duration::from_secs(1), Duration::from_secs(60));
    assert_eq!(backoff(b, m, 1, 0.0), Duration::from_millis(500));
    assert_eq!(backoff(b, m, 1, 1.0), Duration::from_secs(1));
    assert_eq!(backoff(b, m, 3, 0.0), Duration::from_secs(2));
    assert_eq!(backoff(b, m, 3, 0.999).as_millis(), 3_998);
    assert_eq!(backoff(b, m, 30, 1.0), m, "capped");
    assert_eq!(backoff(b, m, i64::MAX, 0.0), m / 2, "no overflow");
    assert_eq!(backoff(b, m, 0, 0.0), Duration::from_millis(500));
}

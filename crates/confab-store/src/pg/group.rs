//! Group commit of posts on a shard server.
//!
//! Posts meant for one shard server's primary queue here, for one task per server. While no
//! group of the server is in flight, the first post waiting goes at once with every other
//! post that queued meanwhile, up to `postgres.group_commit`. While one is in flight, the
//! posts that arrive wait for it and go together when it ends; a second group (and more, up to
//! a quarter of the pool) starts alongside only when a full one is waiting. Each statement
//! has a fixed cost on the server (its executor start-up for every part of it), so fewer,
//! fuller groups cost it less per post. The posts of a busy server travel together; a post
//! alone goes at once ([`post_one::solo`]), with no timer. A group is ONE statement
//! ([`post_one::group`]): the server reads, checks and writes for all its posts in one go and
//! makes them durable with one commit, and each post is acknowledged only after that commit.
//!
//! Failure stays per post:
//! - a post that is not the common case writes nothing and takes the general path, while the
//!   others of its group are written;
//! - a statement that fails writes none of its group; each post of it is then run again on
//!   its own, where the failure belongs to the post that caused it;
//! - a connection that breaks mid-group leaves every post of it unknown (503), as it would a
//!   post alone: a retry with the idempotency key is answered with the comment if it was
//!   written.
//!
//! The statement locks its threads' (and parents') rows in id order before it changes them,
//! so groups in flight together cannot deadlock on them. A group is sorted by page and parent,
//! so its posts of one thread are numbered in a stable order.

use super::post_one::{self, Outcome, Unwritten};
use super::router::{get, PgPool, Server};
use crate::{NewComment, Posted, ShardCounts, StoreResult, Target, Written};
use confab_core::{DomainError, ErrorCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

/// Posts waiting for a server at most (then a post waits to queue).
const QUEUE: usize = 4096;

/// A post waiting for its group, and where its outcome goes (with the post, for the general
/// path).
struct Job {
    new: NewComment,
    done: oneshot::Sender<(NewComment, StoreResult<Ran>)>,
}

/// How a post's run went.
enum Ran {
    Once(Outcome),
    /// Its group rolled back: to be run on its own.
    Again,
}

/// One server's queue of posts.
pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the server's task (on the current runtime). It ends once the committer is
    /// dropped (a new shard map) and the posts already queued are done.
    /// `bounds`: posts per transaction at most, transactions open at once.
    pub(crate) fn start(
        pool: PgPool,
        name: String,
        counts: Arc<ShardCounts>,
        bounds: (usize, usize),
    ) -> Committer {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, pool, name, counts, bounds));
        Committer { jobs: tx }
    }
}

/// Posts `new` on its server with the other posts queued there: `Err(new)` when it is for the
/// general path.
pub(super) async fn post(
    server: &Server,
    new: NewComment,
) -> StoreResult<Result<Written<Posted>, NewComment>> {
    if !post_one::eligible(&new) {
        return Ok(Err(new));
    }
    let _db = confab_record::Timer::start(confab_record::Field::DbMicros);
    if server.group_bounds().0 == 1 {
        // Grouping is off: each post runs alone, as many at once as the pool allows.
        server.counter(Target::Primary).add(2);
        return answer_of(
            server,
            post_one::solo(&server.primary().await?, &new).await?,
            new,
        );
    }
    // The server's statements are counted where they run; the request's record counts one.
    confab_record::add(confab_record::Field::Statements, 1);
    let (done, answer) = oneshot::channel();
    let job = Job { new, done };
    if let Err(mpsc::error::SendError(job)) = server.committer().jobs.send(job).await {
        return Ok(Err(job.new));
    }
    let (new, ran) = answer
        .await
        .map_err(|_| DomainError::new(ErrorCode::Unavailable, "the post was not written, retry"))?;
    let outcome = match ran? {
        Ran::Once(outcome) => outcome,
        Ran::Again => {
            server.counter(Target::Primary).add(2);
            post_one::solo(&server.primary().await?, &new).await?
        }
    };
    answer_of(server, outcome, new)
}

/// The answer for `new` from its outcome: written (at its commit's position), or back for the
/// general path.
fn answer_of(
    server: &Server,
    outcome: Outcome,
    new: NewComment,
) -> StoreResult<Result<Written<Posted>, NewComment>> {
    Ok(match outcome {
        Outcome::Done(value, at) => Ok(Written {
            value: *value,
            at: Some(server.committed(at)),
        }),
        Outcome::Aside => Err(new),
    })
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    pool: PgPool,
    name: String,
    counts: Arc<ShardCounts>,
    (most, in_flight): (usize, usize),
) {
    let what: Arc<str> = format!("shard server {name}").into();
    // Groups running, and the signal that one ended.
    let running = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(Notify::new());
    let mut jobs: Vec<Job> = Vec::new();
    let mut open = true;
    loop {
        if jobs.is_empty() {
            match rx.recv().await {
                Some(j) => jobs.push(j),
                None => return,
            }
        }
        while jobs.len() < most {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        // One group at a time while that keeps up: each statement has a fixed cost on the
        // server (its start-up), so fewer, fuller groups cost it less per post. Another
        // group runs alongside only once a full one is waiting; at the end, whatever is left.
        let busy = running.load(Ordering::Acquire);
        if busy == 0 || (busy < in_flight && (jobs.len() >= most || !open)) {
            running.fetch_add(1, Ordering::AcqRel);
            let group = std::mem::take(&mut jobs);
            let (pool, what, counts) = (pool.clone(), what.clone(), counts.clone());
            let (running, ended) = (running.clone(), ended.clone());
            tokio::spawn(async move {
                let mut group = group;
                let ran = run_group(&pool, &what, &counts, &mut group).await;
                for (job, ran) in group.into_iter().zip(ran) {
                    // A post whose request went away is still written; nobody hears of it.
                    let _ = job.done.send((job.new, ran));
                }
                running.fetch_sub(1, Ordering::AcqRel);
                ended.notify_one();
            });
            continue;
        }
        // Wait for a group to end, or for another post (which may fill this one). A group
        // that ends between the check and here leaves its permit in `ended`.
        tokio::select! {
            () = ended.notified() => {}
            j = rx.recv(), if open && jobs.len() < most => match j {
                Some(j) => jobs.push(j),
                None => open = false,
            },
        }
    }
}

/// Runs one group; an outcome for each of `jobs`, in their order.
async fn run_group(
    pool: &PgPool,
    what: &str,
    counts: &Arc<ShardCounts>,
    jobs: &mut [Job],
) -> Vec<StoreResult<Ran>> {
    let count = jobs.len();
    let all = |r: &dyn Fn() -> StoreResult<Ran>| (0..count).map(|_| r()).collect::<Vec<_>>();
    let conn = match get(pool, what).await {
        Ok(c) => c,
        Err(e) => return all(&|| Err(e.clone())),
    };
    // A post alone or a group: the statement and the read of the WAL position.
    counts.counter(Target::Primary).add(2);
    if let [job] = jobs {
        return vec![post_one::solo(&conn, &job.new).await.map(Ran::Once)];
    }
    fn page(j: &Job) -> (i64, &str, Option<i64>) {
        (
            j.new.forum.id.0,
            j.new.ident.as_str(),
            j.new.parent_id.map(|p| p.0),
        )
    }
    jobs.sort_by(|a, b| page(a).cmp(&page(b)));
    let news: Vec<&NewComment> = jobs.iter().map(|j| &j.new).collect();
    match post_one::group(&conn, &news).await {
        Ok(outcomes) => outcomes.into_iter().map(|o| Ok(Ran::Once(o))).collect(),
        Err(Unwritten::RolledBack) => all(&|| Ok(Ran::Again)),
        Err(Unwritten::Broken(e)) => all(&|| Err(e.clone())),
    }
}

//! The per-request performance record: what one request cost, by layer.
//!
//! The HTTP layer runs each request inside [`scope`]; below it, each layer adds what it did to
//! the record of the task it runs in (statements and time in the store, hits, misses and time
//! in the page cache and the shared tier, bus publishes, time rendering). The access log and
//! the slow-request warning print it. This crate knows no other crate of the workspace, so
//! every layer may use it without bending the crates' direction.
//!
//! Cost: one allocation per request (the record); per event, one task-local lookup and one
//! relaxed atomic add, nothing at all outside a scope. A store that runs work on another thread
//! takes the record along ([`current`]) and runs it [`on_thread`], where [`add`] and
//! [`note_cause`] reach the record as they do in the task. Work a request spawns onto other
//! tasks is not in its record.
//!
//! Besides counters, a record keeps the first internal error's cause ([`note_cause`]): the
//! client is told only "internal error", and the error report names what it was.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What a request did, counted as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Database statements run.
    Statements,
    /// Microseconds spent waiting for the store (summed over the request's store calls).
    DbMicros,
    /// Page lookups answered by this node's page cache.
    PageHits,
    /// Pages this node's page cache had to fill.
    PageMisses,
    /// Keys found in the shared cache tier.
    TierHits,
    /// Keys not found in the shared cache tier.
    TierMisses,
    /// Microseconds spent waiting for the shared cache tier.
    TierMicros,
    /// Messages handed to the bus.
    BusPublishes,
    /// Microseconds spent rendering (markdown to HTML, a page's JSON and its gzipped copy).
    RenderMicros,
}

const FIELDS: usize = 9;

/// A request's counters. Shared (`Arc`) so work on another thread can add to it.
#[derive(Debug, Default)]
pub struct Record {
    counts: [AtomicU64; FIELDS],
    /// The first internal error's cause (set once, on error paths only).
    cause: std::sync::OnceLock<String>,
}

/// Longest cause kept, in bytes.
const MAX_CAUSE: usize = 512;

impl Record {
    /// Adds `n` to `field`.
    pub fn add(&self, field: Field, n: u64) {
        self.counts[field as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// The counters as they are now.
    pub fn snapshot(&self) -> Snapshot {
        let get = |f: Field| self.counts[f as usize].load(Ordering::Relaxed);
        Snapshot {
            statements: get(Field::Statements),
            db_us: get(Field::DbMicros),
            page_hits: get(Field::PageHits),
            page_misses: get(Field::PageMisses),
            tier_hits: get(Field::TierHits),
            tier_misses: get(Field::TierMisses),
            tier_us: get(Field::TierMicros),
            bus_publishes: get(Field::BusPublishes),
            render_us: get(Field::RenderMicros),
            cause: self.cause.get().cloned(),
        }
    }
}

/// A record's values at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub statements: u64,
    pub db_us: u64,
    pub page_hits: u64,
    pub page_misses: u64,
    pub tier_hits: u64,
    pub tier_misses: u64,
    pub tier_us: u64,
    pub bus_publishes: u64,
    pub render_us: u64,
    /// The first internal error's cause, if one was noted.
    pub cause: Option<String>,
}

tokio::task_local! {
    static RECORD: Arc<Record>;
}

/// Runs `f` with a fresh record, and returns the record's values once it is done.
pub async fn scope<F: Future>(f: F) -> (F::Output, Snapshot) {
    let record = Arc::new(Record::default());
    let out = RECORD.scope(record.clone(), f).await;
    (out, record.snapshot())
}

thread_local! {
    /// The record of the work this thread runs for a request ([`on_thread`]).
    static ON_THREAD: std::cell::RefCell<Option<Arc<Record>>> = const { std::cell::RefCell::new(None) };
}

/// The current task's record (or the one this thread works for, see [`on_thread`]), to carry
/// onto another thread (`None` outside a scope).
pub fn current() -> Option<Arc<Record>> {
    RECORD
        .try_with(Arc::clone)
        .ok()
        .or_else(|| ON_THREAD.with(|c| c.borrow().clone()))
}

/// Runs `f` on this (non-async) thread as part of `record`'s request: [`add`], [`current`] and
/// [`note_cause`] reach it meanwhile.
pub fn on_thread<R>(record: Option<&Arc<Record>>, f: impl FnOnce() -> R) -> R {
    let Some(record) = record else { return f() };
    let before = ON_THREAD.with(|c| c.replace(Some(record.clone())));
    // Put back on unwind too, so a panicking job leaves no record behind on a pooled thread.
    struct Restore(Option<Arc<Record>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            ON_THREAD.with(|c| *c.borrow_mut() = prev);
        }
    }
    let _restore = Restore(before);
    f()
}

fn with_current(f: impl FnOnce(&Record)) {
    let mut f = Some(f);
    let in_task = RECORD
        .try_with(|r| {
            if let Some(f) = f.take() {
                f(r)
            }
        })
        .is_ok();
    if !in_task {
        ON_THREAD.with(|c| {
            if let (Some(r), Some(f)) = (&*c.borrow(), f.take()) {
                f(r)
            }
        });
    }
}

/// Adds `n` to `field` of the current record (nothing outside a scope).
pub fn add(field: Field, n: u64) {
    with_current(|r| r.add(field, n));
}

/// Notes why the current request failed inside (a database error, say), if nothing was noted
/// before: the first cause is the one that counts. Only on error paths: it formats a string.
pub fn note_cause(cause: &dyn std::fmt::Display) {
    with_current(|r| {
        if r.cause.get().is_none() {
            let mut s = cause.to_string();
            if s.len() > MAX_CAUSE {
                let mut end = MAX_CAUSE;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
            let _ = r.cause.set(s);
        }
    });
}

/// Times what happens until it is dropped, into `field` (a `*Micros` one) of the record that
/// was current when it started. Outside a scope it reads no clock.
#[must_use = "the time is taken when the timer is dropped"]
pub struct Timer {
    at: Option<(Arc<Record>, Instant)>,
    field: Field,
}

impl Timer {
    /// Starts timing into the current task's record.
    pub fn start(field: Field) -> Timer {
        Timer {
            at: current().map(|r| (r, Instant::now())),
            field,
        }
    }

    /// Runs `f` and stops the timer.
    pub fn during<R>(self, f: impl FnOnce() -> R) -> R {
        let out = f();
        drop(self);
        out
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some((r, t)) = &self.at {
            r.add(self.field, t.elapsed().as_micros() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scope_sees_what_its_task_and_carried_threads_add() {
        let ((), s) = scope(async {
            add(Field::Statements, 2);
            add(Field::PageHits, 1);
            let r = current();
            std::thread::spawn(move || {
                if let Some(r) = r {
                    r.add(Field::Statements, 3);
                }
            })
            .join()
            .unwrap();
            {
                let _t = Timer::start(Field::RenderMicros);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
        .await;
        assert_eq!(s.statements, 5);
        assert_eq!(s.page_hits, 1);
        assert!(s.render_us >= 2_000, "{s:?}");
        assert_eq!(s.db_us, 0);
    }

    #[tokio::test]
    async fn work_on_a_thread_reaches_the_record_and_the_first_cause_counts() {
        let ((), s) = scope(async {
            let r = current();
            std::thread::spawn(move || {
                on_thread(r.as_ref(), || {
                    add(Field::Statements, 4);
                    note_cause(&"no such table: threads");
                    note_cause(&"a later error");
                })
            })
            .join()
            .unwrap();
        })
        .await;
        assert_eq!(s.statements, 4);
        assert_eq!(s.cause.as_deref(), Some("no such table: threads"));
        // Outside a scope, and on a thread after its work: nothing is kept.
        note_cause(&"nobody's");
        on_thread(None, || add(Field::Statements, 1));
        assert!(ON_THREAD.with(|c| c.borrow().is_none()));
        let long = "é".repeat(400);
        let ((), s) = scope(async { note_cause(&long) }).await;
        assert!(s.cause.unwrap().len() <= MAX_CAUSE);
    }

    #[tokio::test]
    async fn outside_a_scope_nothing_is_kept_and_scopes_do_not_mix() {
        add(Field::Statements, 1);
        assert!(current().is_none());
        let ((), a) = scope(async { add(Field::BusPublishes, 1) }).await;
        let ((), b) = scope(async { add(Field::TierMisses, 1) }).await;
        assert_eq!((a.bus_publishes, a.tier_misses), (1, 0));
        assert_eq!((b.bus_publishes, b.tier_misses), (0, 1));
        // A task spawned from a scope does not inherit it.
        let ((), c) = scope(async {
            tokio::spawn(async { add(Field::Statements, 1) })
                .await
                .unwrap();
        })
        .await;
        assert_eq!(c.statements, 0);
    }
}

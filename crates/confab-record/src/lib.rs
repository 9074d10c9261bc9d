//! The per-request performance record: what one request cost, by layer.
//!
//! The HTTP layer runs each request inside [`scope`]; below it, each layer adds what it did to
//! the record of the task it runs in (statements and time in the store, hits, misses and time
//! in the page cache and the shared tier, bus publishes, time rendering). The access log and
//! the slow-request warning print it. This crate knows no other crate of the workspace, so
//! every layer may use it without bending the crates' direction.
//!
//! Cost: one allocation per request (the record); per event, one task-local lookup and one
//! relaxed atomic add, nothing at all outside a scope. A store that runs a statement on another
//! thread takes the record along ([`current`], then [`Record::add`]). Work a request spawns onto
//! other tasks is not in its record (unless the spawner carries it there with [`current`]).

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
}

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
        }
    }
}

/// A record's values at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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

/// The current task's record, to carry onto another thread or task (`None` outside a scope).
pub fn current() -> Option<Arc<Record>> {
    RECORD.try_with(Arc::clone).ok()
}

/// Adds `n` to `field` of the current task's record (nothing outside a scope).
pub fn add(field: Field, n: u64) {
    let _ = RECORD.try_with(|r| r.add(field, n));
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

    /// Starts timing into `record` (a record carried onto another thread).
    pub fn start_in(record: Option<&Arc<Record>>, field: Field) -> Timer {
        Timer {
            at: record.map(|r| (r.clone(), Instant::now())),
            field,
        }
    }
}

impl Timer {
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

/// Runs `f`, timing it into `field` of the current task's record.
pub async fn timed<F: Future>(field: Field, f: F) -> F::Output {
    let _t = Timer::start(field);
    f.await
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

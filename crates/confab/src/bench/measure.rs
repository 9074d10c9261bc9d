//! Measurement: the workers that send a [`Plan`]'s requests (closed or open loop), their
//! [`Tally`]s of latencies and errors, and the [`Summary`] of a run as a JSON row.

use super::args::BenchArgs;
use super::client::{build_request, Conn, Endpoint, ExtraHeaders, ReqError, ReqTemplate};
use super::cpu::{with_children, CpuSnap, CpuUse};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::Full;
use hyper::header::HOST;
use hyper::{Method, Request, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How early an open-loop worker wakes before a request's intended start.
const TIMER_SLACK: Duration = Duration::from_micros(1000);

/// What a scenario's workers send.
pub(super) struct Plan {
    pub(super) ep: Arc<Endpoint>,
    /// Every node the workers are spread over (`ep` and the `--node`s); just `ep` for most
    /// scenarios.
    pub(super) nodes: Vec<Arc<Endpoint>>,
    pub(super) extra: ExtraHeaders,
    pub(super) gets: Arc<[ReqTemplate]>,
    pub(super) posts: Arc<[ReqTemplate]>,
    /// Share of requests that are posts (0 = reads only, 1 = posts only).
    pub(super) post_share: f64,
    /// Status a post must get to count as a success (`None`: any 2xx).
    pub(super) post_expect: Option<StatusCode>,
}

#[allow(clippy::expect_used)]
fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("the histogram bounds are valid constants")
}

/// What a set of requests amounted to.
struct Tally {
    hist: Histogram<u64>,
    lag: Histogram<u64>,
    requests: u64,
    errors: u64,
    bytes: u64,
    error_kinds: BTreeMap<String, u64>,
    first_error: Option<String>,
    /// Earliest (intended) start and latest completion of the requests counted.
    first_start: Option<Instant>,
    last_done: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            hist: new_histogram(),
            lag: new_histogram(),
            requests: 0,
            errors: 0,
            bytes: 0,
            error_kinds: BTreeMap::new(),
            first_error: None,
            first_start: None,
            last_done: None,
        }
    }

    fn error(&mut self, kind: String, detail: impl FnOnce() -> String) {
        self.errors += 1;
        *self.error_kinds.entry(kind).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(detail());
        }
    }

    fn merge(&mut self, o: Tally) {
        let _ = self.hist.add(&o.hist);
        let _ = self.lag.add(&o.lag);
        self.requests += o.requests;
        self.errors += o.errors;
        self.bytes += o.bytes;
        for (k, v) in o.error_kinds {
            *self.error_kinds.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.first_start = match (self.first_start, o.first_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_done = match (self.last_done, o.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

pub(super) struct Summary {
    t: Tally,
    elapsed: Duration,
    offered: Option<f64>,
    concurrency: usize,
    cpu: Option<CpuUse>,
    store: Option<StoreDelta>,
}

/// Cheap per-worker PRNG (xorshift64*), so picking a request costs a few instructions.
struct Pick(u64);

impl Pick {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub(super) async fn measure(args: &BenchArgs, plan: Plan) -> Summary {
    let plan = Arc::new(plan);
    let c = args.concurrency;
    let start = Instant::now();
    let warm_end = start + args.warmup;
    let end = warm_end + args.duration;
    let mut seed_rng = StdRng::from_entropy();
    let mut tasks = Vec::with_capacity(c);
    for w in 0..c {
        let plan = plan.clone();
        let seed: u64 = seed_rng.gen::<u64>() | 1;
        let rate = args.rate;
        tasks.push(tokio::spawn(async move {
            worker(plan, w, c, rate, seed, start, warm_end, end).await
        }));
    }
    let pids = with_children(&args.server_pids);
    tokio::time::sleep_until(warm_end).await;
    let cpu0 = CpuSnap::take(&pids);
    let store0 = store_stats(&plan.nodes).await;
    tokio::time::sleep_until(end).await;
    let cpu = CpuSnap::take(&pids).zip(cpu0).map(|(b, a)| b.since(&a));
    let store1 = store_stats(&plan.nodes).await;
    let mut t = Tally::new();
    for task in tasks {
        match task.await {
            Ok(w) => t.merge(w),
            Err(e) => t.error("worker-panic".into(), || e.to_string()),
        }
    }
    // Closed loop: the responses that arrived in the window. Open loop: the requests scheduled
    // in it, from the first intended start to the last answer (longer than the window when
    // the server falls behind).
    let elapsed = match (args.rate, t.first_start, t.last_done) {
        (Some(_), Some(a), Some(b)) if b > a => (b - a).max(args.duration),
        _ => args.duration,
    };
    let store = store0.zip(store1).map(|(a, b)| StoreDelta {
        queries: b.0.saturating_sub(a.0),
        primary: b.1.saturating_sub(a.1),
        replica: b.2.saturating_sub(a.2),
    });
    Summary {
        t,
        elapsed,
        offered: args.rate,
        concurrency: c,
        cpu,
        store,
    }
}

/// What the server's store did during the window (from its `/statz`).
struct StoreDelta {
    queries: u64,
    primary: u64,
    replica: u64,
}

/// `(queries, reads by primaries, reads by replicas)` of every node together, from each one's
/// `/statz`; None when one has none (nginx, Isso).
async fn store_stats(nodes: &[Arc<Endpoint>]) -> Option<(u64, u64, u64)> {
    let mut sum = (0, 0, 0);
    for ep in nodes {
        let (q, p, r) = node_store_stats(ep).await?;
        sum = (sum.0 + q, sum.1 + p, sum.2 + r);
    }
    Some(sum)
}

async fn node_store_stats(ep: &Arc<Endpoint>) -> Option<(u64, u64, u64)> {
    let uri = ep.uri("/statz").ok()?;
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(HOST, ep.host.clone())
        .body(Full::new(Bytes::new()))
        .ok()?;
    let (status, body, _) = Conn::new(ep.clone()).send(req, true).await.ok()?;
    if status != StatusCode::OK {
        return None;
    }
    let v: Value = serde_json::from_slice(&body).ok()?;
    let s = &v["store"];
    Some((
        s["queries"].as_u64()?,
        s["reads_primary"].as_u64()?,
        s["reads_replica"].as_u64()?,
    ))
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    plan: Arc<Plan>,
    w: usize,
    workers: usize,
    rate: Option<f64>,
    seed: u64,
    start: Instant,
    warm_end: Instant,
    end: Instant,
) -> Tally {
    // Each worker keeps to one node, the workers spread evenly over them.
    let ep = plan
        .nodes
        .get(w % plan.nodes.len().max(1))
        .unwrap_or(&plan.ep)
        .clone();
    let mut conn = Conn::new(ep.clone());
    let mut pick = Pick(seed);
    let mut tally = Tally::new();
    // Open loop: this worker's share of the schedule, offset so workers interleave.
    let interval = rate.map(|r| workers as f64 / r);
    let phase = w as f64 / workers as f64;
    let key_prefix = plan.extra.idempotency_prefix.clone();
    let mut key = String::new();
    let mut n: u64 = 0;
    loop {
        let intended = match interval {
            Some(iv) => {
                let t = start + Duration::from_secs_f64((n as f64 + phase) * iv);
                if t >= end {
                    break;
                }
                // Tokio's timer rounds up to the next millisecond: aim a little early so the
                // start lands around the intended time rather than always after it.
                let wake = t.checked_sub(TIMER_SLACK).unwrap_or(t);
                if wake > Instant::now() {
                    tokio::time::sleep_until(wake).await;
                }
                t
            }
            None => {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                t
            }
        };
        n += 1;
        let is_post =
            plan.post_share >= 1.0 || (plan.post_share > 0.0 && pick.unit() < plan.post_share);
        let list = if is_post { &plan.posts } else { &plan.gets };
        if list.is_empty() {
            break;
        }
        let t = &list[pick.below(list.len())];
        let k = match (&key_prefix, is_post) {
            (Some(p), true) => {
                key.clear();
                let _ = write!(key, "{p}-{w}-{n}");
                Some(key.as_str())
            }
            _ => None,
        };
        let req = build_request(t, &ep, &plan.extra, k);
        let sent = Instant::now();
        // What is in flight at the end is waited for (a client that hangs up mid-request is a
        // different test), though in closed loop it isn't counted.
        let res = conn.send(req, false).await;
        let done = Instant::now();
        // Open loop: the requests scheduled in the window count. Closed loop: the responses
        // that arrive in it.
        let counted = if interval.is_some() {
            intended >= warm_end
        } else {
            done >= warm_end && done < end
        };
        if !counted {
            if res.is_err() {
                // Don't spin on a dead server during the warm-up either.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            continue;
        };
        tally.requests += 1;
        tally.first_start.get_or_insert(intended);
        tally.last_done = Some(done);
        if interval.is_some() {
            let _ = tally
                .lag
                .record(sent.saturating_duration_since(intended).as_micros() as u64);
        }
        match res {
            Ok((status, _, len)) => {
                tally.bytes += len as u64;
                // From the intended start, or from the actual one if that was earlier.
                let from = intended.min(sent);
                let _ = tally
                    .hist
                    .record((done.saturating_duration_since(from).as_micros() as u64).max(1));
                let ok = if is_post {
                    match plan.post_expect {
                        Some(s) => status == s,
                        None => status.is_success(),
                    }
                } else {
                    status.is_success() || status == StatusCode::NOT_MODIFIED
                };
                if !ok {
                    tally.error(status.as_u16().to_string(), || {
                        format!("{} {}: HTTP {status}", t.method, t.uri)
                    });
                }
            }
            Err(e) => {
                tally.error(e.kind(), || format!("{} {}: {e}", t.method, t.uri));
                if matches!(e, ReqError::Connect(_)) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    tally
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

impl Summary {
    pub(super) fn to_json(&self, scenario: &str, args: &BenchArgs) -> Value {
        let t = &self.t;
        let h = &t.hist;
        let q = |p: f64| {
            if h.is_empty() {
                0.0
            } else {
                ms(h.value_at_quantile(p))
            }
        };
        let secs = self.elapsed.as_secs_f64();
        let ok = t.requests - t.errors;
        let name = args.label.clone().unwrap_or_else(|| match self.offered {
            Some(r) => format!("{scenario}@{r}/s"),
            None => scenario.to_string(),
        });
        let mut v = json!({
            "scenario": scenario,
            "name": name,
            "flavor": format!("{:?}", args.flavor).to_lowercase(),
            "requests": t.requests,
            "errors": t.errors,
            "rps": (ok as f64 / secs * 10.0).round() / 10.0,
            "p50_ms": q(0.5),
            "p90_ms": q(0.9),
            "p99_ms": q(0.99),
            "p999_ms": q(0.999),
            "max_ms": if h.is_empty() { 0.0 } else { ms(h.max()) },
            "mean_ms": h.mean().round() / 1000.0,
            "concurrency": self.concurrency,
            "duration_s": (secs * 1000.0).round() / 1000.0,
            "bytes_per_response": t.bytes.checked_div(t.requests).unwrap_or(0),
            "rate": self.offered,
        });
        if let Some(c) = &self.cpu {
            let r = |x: f64| (x * 100.0).round() / 100.0;
            v["cpu_cores"] = json!({"machine": r(c.machine), "bench": r(c.bench)});
            if !args.server_pids.is_empty() {
                v["cpu_cores"]["server"] = json!(r(c.server));
                v["cpu_cores"]["other"] = json!(r((c.tasks - c.bench - c.server).max(0.0)));
            }
        }
        if let Some(d) = &self.store {
            // Requests in the window only (the counters cover it too, give or take the ones
            // in flight at its edges).
            let per = |x: u64| {
                if t.requests == 0 {
                    0.0
                } else {
                    (x as f64 / t.requests as f64 * 100.0).round() / 100.0
                }
            };
            v["queries_per_request"] = json!(per(d.queries));
            v["store_queries_per_s"] = json!((d.queries as f64 / secs * 10.0).round() / 10.0);
            let reads = d.primary + d.replica;
            v["replica_read_share"] = if reads == 0 {
                Value::Null
            } else {
                json!((d.replica as f64 / reads as f64 * 1000.0).round() / 1000.0)
            };
        }
        if !t.error_kinds.is_empty() {
            v["error_kinds"] = json!(t.error_kinds);
            v["first_error"] = json!(t.first_error);
        }
        if self.offered.is_none() && t.requests < self.concurrency as u64 {
            v["too_short"] = json!(true);
        }
        if let Some(r) = self.offered {
            let answered = t.requests as f64 / secs;
            let lag_p99 = if t.lag.is_empty() {
                0.0
            } else {
                ms(t.lag.value_at_quantile(0.99))
            };
            v["start_lag_p99_ms"] = json!(lag_p99);
            v["start_lag_max_ms"] = json!(if t.lag.is_empty() {
                0.0
            } else {
                ms(t.lag.max())
            });
            v["behind"] = json!(answered < 0.97 * r || lag_p99 > 5.0);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_stays_in_range() {
        let mut p = Pick(12345);
        for n in [1usize, 2, 7, 10_000] {
            for _ in 0..10_000 {
                assert!(p.below(n) < n);
            }
        }
        let u = p.unit();
        assert!((0.0..1.0).contains(&u));
    }
}

//! `confab bench`: the load generator Confab is measured with (DESIGN.md section 10).
//!
//! Each worker owns one persistent HTTP/1.1 keep-alive connection (TCP_NODELAY) and reconnects
//! when it breaks. Closed loop by default: a worker sends its next request as soon as the
//! previous one is answered. With `--rate R` the load is open loop: every request has an
//! intended start time on a fixed schedule (R/s in total, split across the workers) and its
//! latency is measured from that intended time, so a stalled server is charged for the requests
//! it kept the generator from sending (no coordinated omission). Tokio's timer has millisecond
//! granularity, so workers wake up to 1 ms early; a request sent before its intended time is
//! measured from when it was sent.
//!
//! Latencies are recorded in microseconds in one HDR histogram per worker, merged at the end.
//! Errors are transport errors and statuses other than 2xx/304 (for posts: other than 201).
//! `rps` counts successful responses only: in closed loop those that arrive within the
//! `--duration` window, in open loop those of the requests scheduled in it. Each measurement
//! is preceded by an unrecorded warm-up (`--warmup`, 1 s), and requests still in flight at the
//! end are waited for, never abandoned.
//!
//! Scenarios seed their data through the API first, and only what is missing: see
//! [`SCENARIOS`].

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, ORIGIN};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Every scenario, in the order `all` runs them (`url` only when --url is given).
const SCENARIOS: &[(&str, &str)] = &[
    ("read-hot", "GET one page (limit 50) of a 200-comment thread (bench/read-hot)"),
    ("read-many", "GET the page of a random one of 10,000 one-comment threads (bench/many/<i>)"),
    ("counts", "GET /api/v1/counts for 50 random read-many threads"),
    ("post", "POST a comment on a random one of 1,000 threads (bench/post/<i>), unique Idempotency-Key"),
    ("mixed", "95% read-many reads, 5% posts on the read-many threads"),
    ("render", "no server: render each pathological 10,000-char markdown input --iterations times"),
    ("url", "GET --url repeatedly (e.g. nginx serving a static file)"),
    ("bus-latency", "no server: bus send→receive round trips in process, and over Redis with --redis URL"),
    ("fanout", "--subscribers SSE clients on one thread; time from each post's 201 to delivery at every one"),
];

const HOT_IDENT: &str = "bench/read-hot";
const HOT_COMMENTS: usize = 200;
const HOT_TOP_LEVEL: usize = 120;
const MANY_THREADS: usize = 10_000;
const POST_THREADS: usize = 1_000;
const COUNTS_PER_REQUEST: usize = 50;
const SEED_CONCURRENCY: usize = 32;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How early an open-loop worker wakes before a request's intended start.
const TIMER_SLACK: Duration = Duration::from_micros(1000);

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Confab's `/api/v1`.
    Confab,
    /// Isso (read-hot and post only), for comparisons with peers.
    Isso,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Scenarios: read-hot, read-many, counts, post, mixed, render, url, bus-latency, fanout; or `all`.\n\
Output: a table, or with --json one JSON object per line per scenario with keys\n\
scenario, name, requests, errors, rps, p50_ms, p90_ms, p99_ms, p999_ms (and more)."
)]
pub struct BenchArgs {
    /// Base URL of the server under test.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Comma-separated scenarios, or `all`.
    #[arg(long, default_value = "read-hot")]
    pub scenario: String,
    /// Measured time per scenario, e.g. 10s, 500ms, 1m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unrecorded warm-up before each measurement.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Workers, each with one keep-alive connection.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Open loop at this many requests per second in total (default: closed loop).
    #[arg(long)]
    pub rate: Option<f64>,
    /// One JSON object per line per scenario instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Forum the benchmark threads live in.
    #[arg(long, default_value = "demo")]
    pub forum: String,
    /// API of the server under test.
    #[arg(long, value_enum, default_value = "confab")]
    pub flavor: Flavor,
    /// Full URL for the `url` scenario.
    #[arg(long)]
    pub url: Option<String>,
    /// `Origin` header sent to Isso (default: the target's origin).
    #[arg(long)]
    pub origin: Option<String>,
    /// Renders per input in the `render` scenario.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Name of the row in the output (default: the scenario, with `@<rate>/s` in open loop).
    #[arg(long)]
    pub label: Option<String>,
    /// Don't seed; measure whatever the server holds.
    #[arg(long)]
    pub no_seed: bool,
    /// Process id of the server (repeatable; its child processes count too): reports the CPU
    /// it used, and warns when other processes competed for the CPUs (Linux).
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// SSE connections for the `fanout` scenario.
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: usize,
    /// Posts timed in the `fanout` scenario.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Redis URL for the `bus-latency` scenario (e.g. redis://127.0.0.1:6379/).
    #[arg(long)]
    pub redis: Option<String>,
    /// Instead of benchmarking: print the table of a file of --json lines (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// With --report: print the rps ratio of two rows by name, `A/B` (repeatable).
    #[arg(long, value_name = "A/B")]
    pub ratio: Vec<String>,
}

/// Parses `10s`, `500ms`, `1.5s`, `2m`, `100us`; a bare number is seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration `{s}` (try 10s or 500ms)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("unknown unit `{u}` in `{s}` (use ms, s, m)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("bad duration `{s}`"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub async fn run(args: BenchArgs) -> Result<()> {
    if let Some(path) = &args.report {
        return report(path, &args.ratio);
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0) {
            bail!("--rate must be a positive number of requests per second");
        }
    }
    let scenarios = expand_scenarios(&args)?;
    let mut bench = Bench::new(&args).await?;
    let mut printed_header = false;
    for s in &scenarios {
        if s == "render" {
            render_scenario(&args).await?;
            printed_header = false;
            continue;
        }
        if s == "bus-latency" || s == "fanout" {
            if s == "fanout" {
                crate::bench_live::fanout(&args).await?;
            } else {
                crate::bench_live::bus_latency(&args).await?;
            }
            printed_header = false;
            continue;
        }
        let plan = bench
            .plan(s)
            .await
            .with_context(|| format!("preparing scenario {s}"))?;
        let summary = measure(&args, plan).await;
        let row = summary.to_json(s, &args);
        if args.json {
            println!("{row}");
        } else {
            if !printed_header {
                println!("{}", table_header());
                printed_header = true;
            }
            println!("{}", table_row(&row));
        }
        warn_about(&row);
    }
    Ok(())
}

fn expand_scenarios(args: &BenchArgs) -> Result<Vec<String>> {
    let known: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for s in args
        .scenario
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if s == "all" {
            match args.flavor {
                Flavor::Confab => {
                    out.extend(
                        ["read-hot", "read-many", "counts", "post", "mixed", "render"]
                            .map(String::from),
                    );
                    if args.url.is_some() {
                        out.push("url".into());
                    }
                }
                Flavor::Isso => out.extend(["read-hot", "post"].map(String::from)),
            }
        } else if known.contains(&s) {
            out.push(s.to_string());
        } else {
            let list: Vec<String> = SCENARIOS
                .iter()
                .map(|(n, d)| format!("  {n}: {d}"))
                .collect();
            bail!("unknown scenario `{s}`; known:\n{}", list.join("\n"));
        }
    }
    if out.is_empty() {
        bail!("no scenario given");
    }
    if args.flavor == Flavor::Isso {
        if let Some(s) = out
            .iter()
            .find(|s| !matches!(s.as_str(), "read-hot" | "post" | "render" | "url"))
        {
            bail!("scenario {s} is not available with --flavor isso (only read-hot and post)");
        }
    }
    if out.iter().any(|s| s == "url") && args.url.is_none() {
        bail!("scenario url needs --url");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing

/// Where requests go: a resolved address, the `Host` header, and a path prefix.
struct Endpoint {
    addr: SocketAddr,
    host: HeaderValue,
    prefix: String,
    /// Path and query of the URL as given (the `url` scenario's request).
    path_and_query: String,
    origin: String,
}

impl Endpoint {
    async fn parse(url: &str) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(s) => bail!("{url}: only http:// is supported (scheme {s})"),
            None => bail!("{url}: give a full URL like http://127.0.0.1:8080"),
        }
        let auth = uri.authority().ok_or_else(|| anyhow!("{url}: no host"))?;
        let port = auth.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((auth.host(), port))
            .await
            .with_context(|| format!("resolving {}", auth.host()))?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", auth.host()))?;
        let prefix = uri.path().trim_end_matches('/').to_string();
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            format!("/{path_and_query}")
        };
        Ok(Endpoint {
            addr,
            host: HeaderValue::from_str(auth.as_str())?,
            prefix,
            path_and_query,
            origin: format!("http://{}", auth.as_str()),
        })
    }

    /// An origin-form request URI: prefix + `path_and_query` (which starts with `/`).
    fn uri(&self, path_and_query: &str) -> Result<Uri> {
        let s = format!("{}{}", self.prefix, path_and_query);
        Uri::from_maybe_shared(Bytes::from(s))
            .map_err(|e| anyhow!("bad request path {path_and_query}: {e}"))
    }
}

/// One prebuilt request; building a [`Request`] from it clones only refcounted parts.
#[derive(Clone)]
struct ReqTemplate {
    method: Method,
    uri: Uri,
    body: Bytes,
}

impl ReqTemplate {
    fn get(uri: Uri) -> Self {
        ReqTemplate {
            method: Method::GET,
            uri,
            body: Bytes::new(),
        }
    }
    fn post(uri: Uri, body: impl Into<Bytes>) -> Self {
        ReqTemplate {
            method: Method::POST,
            uri,
            body: body.into(),
        }
    }
}

/// Headers every request of a run carries besides `Host`.
#[derive(Clone, Default)]
struct ExtraHeaders {
    origin: Option<HeaderValue>,
    /// Prefix of a unique `Idempotency-Key` per POST.
    idempotency_prefix: Option<String>,
}

static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static JSON_TYPE: HeaderValue = HeaderValue::from_static("application/json");

#[derive(Debug)]
enum ReqError {
    Connect(String),
    Transport(String),
    Timeout,
}

impl ReqError {
    fn kind(&self) -> String {
        match self {
            ReqError::Connect(_) => "connect".into(),
            ReqError::Transport(_) => "transport".into(),
            ReqError::Timeout => "timeout".into(),
        }
    }
}

impl std::fmt::Display for ReqError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReqError::Connect(e) => write!(f, "connect: {e}"),
            ReqError::Transport(e) => write!(f, "transport: {e}"),
            ReqError::Timeout => write!(f, "timed out after {}s", REQUEST_TIMEOUT.as_secs()),
        }
    }
}

/// A keep-alive connection that reconnects when it breaks.
struct Conn {
    ep: Arc<Endpoint>,
    tx: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(ep: Arc<Endpoint>) -> Self {
        Conn { ep, tx: None }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ReqError> {
        let stream = TcpStream::connect(self.ep.addr)
            .await
            .map_err(|e| ReqError::Connect(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| ReqError::Connect(e.to_string()))?;
        let (tx, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ReqError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(tx)
    }

    /// A sender ready for a request: the current one if it's still alive, else a new one.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, ReqError> {
        let alive = match self.tx.as_mut() {
            Some(tx) => tx.ready().await.is_ok(),
            None => false,
        };
        if !alive {
            self.tx = None;
            let mut tx = self.connect().await?;
            tx.ready()
                .await
                .map_err(|e| ReqError::Connect(e.to_string()))?;
            self.tx = Some(tx);
        }
        self.tx
            .as_mut()
            .ok_or_else(|| ReqError::Connect("no connection".into()))
    }

    /// Sends a request and reads the whole response. With `keep`, the body is returned;
    /// otherwise it's only counted.
    async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
        keep: bool,
    ) -> Result<(StatusCode, Bytes, usize), ReqError> {
        let fut = async {
            let mut req = req;
            let mut retried = false;
            let resp = loop {
                let tx = self.ready().await?;
                match tx.try_send_request(req).await {
                    Ok(resp) => break resp,
                    Err(mut e) => match e.take_message() {
                        // The server closed the idle connection just as the request went out
                        // (e.g. after `Connection: close`): the request was never sent, so
                        // resend it once on a new connection.
                        Some(r) if !retried => {
                            retried = true;
                            self.tx = None;
                            req = r;
                        }
                        _ => return Err(ReqError::Transport(e.into_error().to_string())),
                    },
                }
            };
            let status = resp.status();
            let mut body = resp.into_body();
            let mut kept = Vec::new();
            let mut len = 0usize;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ReqError::Transport(e.to_string()))?;
                if let Some(data) = frame.data_ref() {
                    len += data.len();
                    if keep {
                        kept.extend_from_slice(data);
                    }
                }
            }
            Ok((status, Bytes::from(kept), len))
        };
        let res = match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(ReqError::Timeout),
        };
        if res.is_err() {
            // Whatever state the connection is in, start afresh.
            self.tx = None;
        }
        res
    }
}

fn build_request(
    t: &ReqTemplate,
    ep: &Endpoint,
    extra: &ExtraHeaders,
    key: Option<&str>,
) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(t.body.clone()));
    *req.method_mut() = t.method.clone();
    *req.uri_mut() = t.uri.clone();
    let h = req.headers_mut();
    h.insert(HOST, ep.host.clone());
    if t.method == Method::POST {
        h.insert(CONTENT_TYPE, JSON_TYPE.clone());
        if let (Some(k), Some(_)) = (key, &extra.idempotency_prefix) {
            if let Ok(v) = HeaderValue::from_str(k) {
                h.insert(IDEMPOTENCY_KEY.clone(), v);
            }
        }
    }
    if let Some(o) = &extra.origin {
        h.insert(ORIGIN, o.clone());
    }
    req
}

/// Numbers the idempotency keys of seeding posts (unique within a run).
static SEED_KEYS: AtomicU64 = AtomicU64::new(0);

/// Runs `reqs` with `concurrency` connections (retrying transport errors a few times) and
/// returns each response's status and body, in order. Used for seeding and checks.
async fn batch(
    ep: &Arc<Endpoint>,
    extra: &ExtraHeaders,
    reqs: Vec<ReqTemplate>,
    concurrency: usize,
) -> Result<Vec<(StatusCode, Bytes)>> {
    let reqs = Arc::new(reqs);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.min(reqs.len()).max(1) {
        let (reqs, next, ep, extra) = (reqs.clone(), next.clone(), ep.clone(), extra.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(ep.clone());
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = reqs.get(i) else { break };
                let key = extra
                    .idempotency_prefix
                    .as_ref()
                    .map(|p| format!("{p}-seed-{}", SEED_KEYS.fetch_add(1, Ordering::Relaxed)));
                let mut attempt = 0;
                let res = loop {
                    let req = build_request(t, &ep, &extra, key.as_deref());
                    match conn.send(req, true).await {
                        Ok((status, body, _)) => break Ok((status, body)),
                        Err(e) if attempt < 3 => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                            let _ = e;
                        }
                        Err(e) => break Err(anyhow!("{} {}: {e}", t.method, t.uri)),
                    }
                };
                out.push((i, res?));
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all: Vec<Option<(StatusCode, Bytes)>> = vec![None; reqs.len()];
    for t in tasks {
        for (i, r) in t.await.context("seeding task panicked")?? {
            all[i] = Some(r);
        }
    }
    all.into_iter()
        .map(|r| r.ok_or_else(|| anyhow!("a request got no response")))
        .collect()
}

fn check_created(results: &[(StatusCode, Bytes)], what: &str) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(results.len());
    for (status, body) in results {
        if !status.is_success() {
            bail!(
                "seeding {what}: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        out.push(serde_json::from_slice(body).unwrap_or(Value::Null));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Scenarios: seeding and request plans

/// What a scenario's workers send.
struct Plan {
    ep: Arc<Endpoint>,
    extra: ExtraHeaders,
    gets: Arc<[ReqTemplate]>,
    posts: Arc<[ReqTemplate]>,
    /// Share of requests that are posts (0 = reads only, 1 = posts only).
    post_share: f64,
    /// Status a post must get to count as a success (`None`: any 2xx).
    post_expect: Option<StatusCode>,
}

struct Bench {
    flavor: Flavor,
    forum: String,
    seed: bool,
    ep: Arc<Endpoint>,
    url_ep: Option<Arc<Endpoint>>,
    extra: ExtraHeaders,
    rng: StdRng,
    hot_seeded: bool,
    many_seeded: bool,
}

/// Words for seeded comment bodies.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "comment", "thread", "really", "agree", "with", "this", "point", "but", "I", "think", "that",
    "performance", "matters", "more", "than", "features", "here", "and", "there", "**bold**", "_claim_",
    "`code`", "nice", "post", "thanks", "for", "writing", "it", "up", "server", "latency", "cache", "page",
];

fn comment_text(rng: &mut StdRng) -> String {
    let words = rng.gen_range(8..120);
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(if rng.gen_ratio(1, 25) { '\n' } else { ' ' });
        }
        s.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
    }
    if rng.gen_ratio(1, 6) {
        s.push_str("\n\n> quoted line\n\nSee [the docs](https://example.com/docs).");
    }
    s
}

impl Bench {
    async fn new(args: &BenchArgs) -> Result<Self> {
        let ep = Arc::new(Endpoint::parse(&args.target).await?);
        let url_ep = match &args.url {
            Some(u) => Some(Arc::new(Endpoint::parse(u).await?)),
            None => None,
        };
        let mut rng = StdRng::from_entropy();
        let run_id: u64 = rng.gen();
        let extra = match args.flavor {
            Flavor::Confab => ExtraHeaders {
                origin: None,
                idempotency_prefix: Some(format!("bench-{run_id:016x}")),
            },
            Flavor::Isso => {
                let o = args.origin.clone().unwrap_or_else(|| ep.origin.clone());
                ExtraHeaders {
                    origin: Some(HeaderValue::from_str(&o)?),
                    idempotency_prefix: None,
                }
            }
        };
        Ok(Bench {
            flavor: args.flavor,
            forum: args.forum.clone(),
            seed: !args.no_seed,
            ep,
            url_ep,
            extra,
            rng,
            hot_seeded: false,
            many_seeded: false,
        })
    }

    async fn plan(&mut self, scenario: &str) -> Result<Plan> {
        let mut p = self.plan_inner(scenario).await?;
        if p.extra.idempotency_prefix.is_some() {
            // Fresh keys for every measurement: a reused key would be a cheap replay.
            p.extra.idempotency_prefix = Some(format!("bench-{:016x}", self.rng.gen::<u64>()));
        }
        Ok(p)
    }

    async fn plan_inner(&mut self, scenario: &str) -> Result<Plan> {
        let plan = |ep: &Arc<Endpoint>,
                    extra: &ExtraHeaders,
                    gets: Vec<ReqTemplate>,
                    posts: Vec<ReqTemplate>,
                    share: f64| {
            Plan {
                ep: ep.clone(),
                extra: extra.clone(),
                gets: gets.into(),
                posts: posts.into(),
                post_share: share,
                post_expect: Some(StatusCode::CREATED),
            }
        };
        Ok(match (self.flavor, scenario) {
            (_, "url") => {
                let ep = self
                    .url_ep
                    .clone()
                    .ok_or_else(|| anyhow!("scenario url needs --url"))?;
                let uri = Uri::try_from(ep.path_and_query.as_str())
                    .map_err(|e| anyhow!("bad --url: {e}"))?;
                plan(
                    &ep,
                    &ExtraHeaders::default(),
                    vec![ReqTemplate::get(uri)],
                    vec![],
                    0.0,
                )
            }
            (Flavor::Confab, "read-hot") => {
                self.seed_hot().await?;
                let uri = self.ep.uri(&format!(
                    "/api/v1/comments?forum={}&ident={HOT_IDENT}&limit=50",
                    self.forum
                ))?;
                plan(
                    &self.ep,
                    &self.extra,
                    vec![ReqTemplate::get(uri)],
                    vec![],
                    0.0,
                )
            }
            (Flavor::Confab, "read-many") => {
                self.seed_many().await?;
                plan(&self.ep, &self.extra, self.many_reads()?, vec![], 0.0)
            }
            (Flavor::Confab, "counts") => {
                self.seed_many().await?;
                let mut gets = Vec::new();
                for _ in 0..1000 {
                    let mut q = format!("/api/v1/counts?forum={}", self.forum);
                    for _ in 0..COUNTS_PER_REQUEST {
                        let _ = write!(
                            q,
                            "&ident=bench/many/{}",
                            self.rng.gen_range(0..MANY_THREADS)
                        );
                    }
                    gets.push(ReqTemplate::get(self.ep.uri(&q)?));
                }
                plan(&self.ep, &self.extra, gets, vec![], 0.0)
            }
            (Flavor::Confab, "post") => {
                let posts =
                    self.confab_posts((0..POST_THREADS).map(|i| format!("bench/post/{i}")))?;
                plan(&self.ep, &self.extra, vec![], posts, 1.0)
            }
            (Flavor::Confab, "mixed") => {
                self.seed_many().await?;
                let posts =
                    self.confab_posts((0..MANY_THREADS).map(|i| format!("bench/many/{i}")))?;
                plan(&self.ep, &self.extra, self.many_reads()?, posts, 0.05)
            }
            (Flavor::Isso, "read-hot") => {
                self.seed_isso_hot().await?;
                let uri = self.ep.uri(&format!("/?uri=/{HOT_IDENT}"))?;
                plan(
                    &self.ep,
                    &self.extra,
                    vec![ReqTemplate::get(uri)],
                    vec![],
                    0.0,
                )
            }
            (Flavor::Isso, "post") => {
                let body = Bytes::from(
                    json!({"text": "A benchmark comment, posted by confab bench.", "author": "bench", "title": "Bench"})
                        .to_string(),
                );
                let posts = (0..POST_THREADS)
                    .map(|i| {
                        Ok(ReqTemplate::post(
                            self.ep.uri(&format!("/new?uri=/bench/post/{i}"))?,
                            body.clone(),
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut p = plan(&self.ep, &self.extra, vec![], posts, 1.0);
                p.post_expect = None;
                p
            }
            (f, s) => bail!("scenario {s} is not available with flavor {f:?}"),
        })
    }

    fn many_reads(&self) -> Result<Vec<ReqTemplate>> {
        (0..MANY_THREADS)
            .map(|i| {
                Ok(ReqTemplate::get(self.ep.uri(&format!(
                    "/api/v1/comments?forum={}&ident=bench/many/{i}&limit=50",
                    self.forum
                ))?))
            })
            .collect()
    }

    fn confab_post_body(&mut self, ident: &str, parent: Option<&str>) -> Bytes {
        let text = comment_text(&mut self.rng);
        let mut v =
            json!({"forum": self.forum, "ident": ident, "body": text, "author_name": "bench"});
        if let Some(p) = parent {
            v["parent_id"] = Value::String(p.to_string());
        }
        Bytes::from(v.to_string())
    }

    fn confab_posts(&mut self, idents: impl Iterator<Item = String>) -> Result<Vec<ReqTemplate>> {
        let uri = self.ep.uri("/api/v1/comments")?;
        Ok(idents
            .map(|ident| {
                let body = json!({"forum": self.forum, "ident": ident,
                    "body": "A benchmark comment, posted by `confab bench`.", "author_name": "bench"});
                ReqTemplate::post(uri.clone(), body.to_string())
            })
            .collect())
    }

    /// bench/read-hot: 200 comments, ~120 top-level and the rest replies.
    async fn seed_hot(&mut self) -> Result<()> {
        if self.hot_seeded || !self.seed {
            return Ok(());
        }
        let t0 = Instant::now();
        let uri = self.ep.uri(&format!(
            "/api/v1/comments?forum={}&ident={HOT_IDENT}&limit=100",
            self.forum
        ))?;
        let res = batch(&self.ep, &self.extra, vec![ReqTemplate::get(uri)], 1).await?;
        let (status, body) = &res[0];
        if !status.is_success() {
            bail!(
                "GET {HOT_IDENT}: HTTP {status}: {}",
                String::from_utf8_lossy(body)
            );
        }
        let page: Value = serde_json::from_slice(body).context("parsing the thread page")?;
        let have = page["thread"]["comment_count"].as_u64().unwrap_or(0) as usize;
        if have < HOT_COMMENTS {
            let need = HOT_COMMENTS - have;
            let top = if have == 0 {
                HOT_TOP_LEVEL
            } else {
                need * HOT_TOP_LEVEL / HOT_COMMENTS
            };
            let post_uri = self.ep.uri("/api/v1/comments")?;
            let tops: Vec<ReqTemplate> = (0..top)
                .map(|_| {
                    ReqTemplate::post(post_uri.clone(), self.confab_post_body(HOT_IDENT, None))
                })
                .collect();
            let created = check_created(
                &batch(&self.ep, &self.extra, tops, SEED_CONCURRENCY).await?,
                HOT_IDENT,
            )?;
            let mut parents: Vec<String> = created
                .iter()
                .filter_map(|c| c["id"].as_str().map(String::from))
                .collect();
            if parents.is_empty() {
                parents = page["comments"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c["id"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            if parents.is_empty() && need > top {
                bail!("{HOT_IDENT}: no comment to reply to");
            }
            let replies: Vec<ReqTemplate> = (0..need - top)
                .map(|_| {
                    let p = parents[self.rng.gen_range(0..parents.len())].clone();
                    ReqTemplate::post(post_uri.clone(), self.confab_post_body(HOT_IDENT, Some(&p)))
                })
                .collect();
            check_created(
                &batch(&self.ep, &self.extra, replies, SEED_CONCURRENCY).await?,
                HOT_IDENT,
            )?;
            eprintln!(
                "seeded {need} comments in {HOT_IDENT} in {:.1}s",
                t0.elapsed().as_secs_f64()
            );
        }
        self.hot_seeded = true;
        Ok(())
    }

    /// bench/many/<i>: 10,000 threads of one comment each; the counts endpoint tells which
    /// are missing.
    async fn seed_many(&mut self) -> Result<()> {
        if self.many_seeded || !self.seed {
            return Ok(());
        }
        let t0 = Instant::now();
        let mut checks = Vec::new();
        for chunk in (0..MANY_THREADS).collect::<Vec<_>>().chunks(100) {
            let mut q = format!("/api/v1/counts?forum={}", self.forum);
            for i in chunk {
                let _ = write!(q, "&ident=bench/many/{i}");
            }
            checks.push(ReqTemplate::get(self.ep.uri(&q)?));
        }
        let mut missing = Vec::new();
        for (status, body) in batch(&self.ep, &self.extra, checks, SEED_CONCURRENCY).await? {
            if !status.is_success() {
                bail!(
                    "GET /api/v1/counts: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let v: Value = serde_json::from_slice(&body).context("parsing counts")?;
            let counts = v["counts"]
                .as_object()
                .ok_or_else(|| anyhow!("counts response without `counts`"))?;
            for (ident, n) in counts {
                if n.as_u64().unwrap_or(0) == 0 {
                    missing.push(ident.clone());
                }
            }
        }
        if !missing.is_empty() {
            let uri = self.ep.uri("/api/v1/comments")?;
            let posts: Vec<ReqTemplate> = missing
                .iter()
                .map(|ident| ReqTemplate::post(uri.clone(), self.confab_post_body(ident, None)))
                .collect();
            check_created(
                &batch(&self.ep, &self.extra, posts, SEED_CONCURRENCY).await?,
                "bench/many",
            )?;
            let secs = t0.elapsed().as_secs_f64();
            eprintln!(
                "seeded {} threads of bench/many in {secs:.1}s ({:.0} posts/s)",
                missing.len(),
                missing.len() as f64 / secs
            );
        }
        self.many_seeded = true;
        Ok(())
    }

    /// Isso's /bench/read-hot: 200 comments, ~120 top-level, the rest replies to them.
    async fn seed_isso_hot(&mut self) -> Result<()> {
        if self.hot_seeded || !self.seed {
            return Ok(());
        }
        let t0 = Instant::now();
        let uri = self.ep.uri(&format!("/?uri=/{HOT_IDENT}"))?;
        let res = batch(&self.ep, &self.extra, vec![ReqTemplate::get(uri)], 1).await?;
        let (status, body) = &res[0];
        let (have, mut parents) = if status.is_success() {
            let v: Value = serde_json::from_slice(body).context("parsing Isso's thread")?;
            let replies = v["replies"].as_array().cloned().unwrap_or_default();
            let nested: u64 = replies
                .iter()
                .map(|c| c["total_replies"].as_u64().unwrap_or(0))
                .sum();
            let ids: Vec<u64> = replies.iter().filter_map(|c| c["id"].as_u64()).collect();
            (
                (v["total_replies"].as_u64().unwrap_or(0) + nested) as usize,
                ids,
            )
        } else {
            (0, Vec::new())
        };
        if have < HOT_COMMENTS {
            let need = HOT_COMMENTS - have;
            let top = if have == 0 {
                HOT_TOP_LEVEL
            } else {
                need * HOT_TOP_LEVEL / HOT_COMMENTS
            };
            let post_uri = self.ep.uri(&format!("/new?uri=/{HOT_IDENT}"))?;
            let mk = |rng: &mut StdRng, parent: Option<u64>| {
                let mut v = json!({"text": comment_text(rng), "author": "bench", "title": "Bench"});
                if let Some(p) = parent {
                    v["parent"] = json!(p);
                }
                ReqTemplate::post(post_uri.clone(), v.to_string())
            };
            // Isso creates the thread on the first post; do it alone so there is no race.
            let mut tops: Vec<ReqTemplate> = (0..top).map(|_| mk(&mut self.rng, None)).collect();
            let mut created = Vec::new();
            if have == 0 && !tops.is_empty() {
                let first = tops.remove(0);
                created.extend(check_created(
                    &batch(&self.ep, &self.extra, vec![first], 1).await?,
                    "isso read-hot",
                )?);
            }
            created.extend(check_created(
                &batch(&self.ep, &self.extra, tops, SEED_CONCURRENCY).await?,
                "isso read-hot",
            )?);
            let new_ids: Vec<u64> = created.iter().filter_map(|c| c["id"].as_u64()).collect();
            if !new_ids.is_empty() {
                parents = new_ids;
            }
            if parents.is_empty() && need > top {
                bail!("isso {HOT_IDENT}: no comment to reply to");
            }
            let replies: Vec<ReqTemplate> = (0..need - top)
                .map(|_| {
                    let p = parents[self.rng.gen_range(0..parents.len())];
                    mk(&mut self.rng, Some(p))
                })
                .collect();
            check_created(
                &batch(&self.ep, &self.extra, replies, SEED_CONCURRENCY).await?,
                "isso read-hot",
            )?;
            eprintln!(
                "seeded {need} Isso comments in /{HOT_IDENT} in {:.1}s",
                t0.elapsed().as_secs_f64()
            );
        }
        self.hot_seeded = true;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement

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

struct Summary {
    t: Tally,
    elapsed: Duration,
    offered: Option<f64>,
    concurrency: usize,
    cpu: Option<CpuUse>,
    store: Option<StoreDelta>,
}

/// CPU time from /proc (Linux): the machine's, this process's, and the server's.
struct CpuSnap {
    /// All CPUs' ticks, and the busy ones among them.
    total: u64,
    busy: u64,
    /// Busy ticks charged to processes (interrupt handling is not).
    tasks: u64,
    cpus: usize,
    bench: u64,
    server: u64,
}

/// CPU used over a measurement, in cores (1.0 = one core busy all the time).
struct CpuUse {
    machine: f64,
    tasks: f64,
    bench: f64,
    server: f64,
}

/// User + system ticks of a process (all its threads).
fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// `pids` and their descendants.
fn with_children(pids: &[u32]) -> Vec<u32> {
    let mut all: Vec<u32> = pids.to_vec();
    if pids.is_empty() {
        return all;
    }
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parent_of.push((pid, pp));
            }
        }
    }
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        for &(c, pp) in &parent_of {
            if pp == p && !all.contains(&c) {
                all.push(c);
            }
        }
        i += 1;
    }
    all
}

impl CpuSnap {
    fn take(server: &[u32]) -> Option<CpuSnap> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let mut lines = stat.lines();
        let first = lines.next()?;
        let v: Vec<u64> = first
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        let idle = at(3) + at(4);
        let tasks = at(0) + at(1) + at(2) + at(7);
        let busy = tasks + at(5) + at(6);
        let cpus = lines.filter(|l| l.starts_with("cpu")).count().max(1);
        let bench = proc_ticks("self")?;
        let server = server
            .iter()
            .filter_map(|p| proc_ticks(&p.to_string()))
            .sum();
        Some(CpuSnap {
            total: busy + idle,
            busy,
            tasks,
            cpus,
            bench,
            server,
        })
    }

    fn since(&self, before: &CpuSnap) -> CpuUse {
        // Ticks of one core over the interval: all CPUs' ticks divided by their number.
        let per_core = (self.total.saturating_sub(before.total) as f64 / self.cpus as f64).max(1.0);
        let cores = |a: u64, b: u64| a.saturating_sub(b) as f64 / per_core;
        CpuUse {
            machine: cores(self.busy, before.busy),
            tasks: cores(self.tasks, before.tasks),
            bench: cores(self.bench, before.bench),
            server: cores(self.server, before.server),
        }
    }
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

async fn measure(args: &BenchArgs, plan: Plan) -> Summary {
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
    let store0 = store_stats(&plan.ep).await;
    tokio::time::sleep_until(end).await;
    let cpu = CpuSnap::take(&pids).zip(cpu0).map(|(b, a)| b.since(&a));
    let store1 = store_stats(&plan.ep).await;
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

/// `(queries, reads by primaries, reads by replicas)` from a Confab server's `/statz`; None
/// for servers without it (nginx, Isso).
async fn store_stats(ep: &Arc<Endpoint>) -> Option<(u64, u64, u64)> {
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
    let mut conn = Conn::new(plan.ep.clone());
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
        let req = build_request(t, &plan.ep, &plan.extra, k);
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
    fn to_json(&self, scenario: &str, args: &BenchArgs) -> Value {
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

fn warn_about(row: &Value) {
    let name = row["name"].as_str().unwrap_or("?");
    if row["errors"].as_u64().unwrap_or(0) > 0 {
        eprintln!(
            "warning: {name}: {} errors {} (first: {})",
            row["errors"],
            row["error_kinds"],
            row["first_error"].as_str().unwrap_or("?")
        );
    }
    if row["behind"].as_bool() == Some(true) {
        eprintln!(
            "warning: {name}: fell behind the schedule: {} req/s answered of {} offered, start lag p99 {} ms, max {} ms (latencies count from the intended start)",
            row["rps"], row["rate"], row["start_lag_p99_ms"], row["start_lag_max_ms"]
        );
    }
    if let Some(other) = row["cpu_cores"]["other"].as_f64() {
        if other > 0.25 {
            eprintln!(
                "warning: {name}: other processes used {other:.2} CPU cores during the measurement (machine {}, server {}, bench {}): the numbers are skewed",
                row["cpu_cores"]["machine"], row["cpu_cores"]["server"], row["cpu_cores"]["bench"]
            );
        }
    }
    if row["too_short"].as_bool() == Some(true) {
        eprintln!(
            "warning: {name}: fewer responses than connections in the window: the response time is about as long as --duration or longer, so rps is imprecise; use a longer --duration"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Output

fn row_name(row: &Value) -> String {
    row["name"]
        .as_str()
        .or(row["scenario"].as_str())
        .unwrap_or("?")
        .to_string()
}

fn table_header() -> String {
    format!(
        "{:<24} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8}",
        "scenario",
        "requests",
        "errors",
        "rps",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p999 ms",
        "q/req",
        "replica"
    )
}

fn table_row(row: &Value) -> String {
    let f = |k: &str| row[k].as_f64().unwrap_or(0.0);
    let qpr = row["queries_per_request"]
        .as_f64()
        .map_or("-".to_string(), |q| format!("{q:.2}"));
    let share = row["replica_read_share"]
        .as_f64()
        .map_or("-".to_string(), |s| format!("{:.1}%", s * 100.0));
    format!(
        "{:<24} {:>9} {:>7} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>8}",
        row_name(row),
        row["requests"].as_u64().unwrap_or(0),
        row["errors"].as_u64().unwrap_or(0),
        f("rps"),
        f("p50_ms"),
        f("p90_ms"),
        f("p99_ms"),
        f("p999_ms"),
        qpr,
        share,
    )
}

fn render_header() -> String {
    format!(
        "{:<24} {:>7} {:>6} {:>10} {:>10}",
        "render input", "chars", "runs", "median ms", "max ms"
    )
}

fn render_row(row: &Value) -> String {
    format!(
        "{:<24} {:>7} {:>6} {:>10.3} {:>10.3}",
        row["input"].as_str().unwrap_or("?"),
        row["chars"].as_u64().unwrap_or(0),
        row["iterations"].as_u64().unwrap_or(0),
        row["median_ms"].as_f64().unwrap_or(0.0),
        row["max_ms"].as_f64().unwrap_or(0.0),
    )
}

/// `--report FILE`: the table of a file of `--json` lines, and rps ratios of named rows.
fn report(path: &PathBuf, ratios: &[String]) -> Result<()> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("parsing the JSON lines")?;
    let loads: Vec<&Value> = rows.iter().filter(|r| r.get("rps").is_some()).collect();
    let renders: Vec<&Value> = rows.iter().filter(|r| r.get("input").is_some()).collect();
    if !loads.is_empty() {
        // With --server-pid: the CPU cores the server used and those other processes took.
        let cpu = loads.iter().any(|r| r["cpu_cores"]["server"].is_number());
        let cores = |r: &Value, k: &str| match r["cpu_cores"][k].as_f64() {
            Some(x) => format!("{x:>9.2}"),
            None => format!("{:>9}", "-"),
        };
        let mut header = table_header();
        if cpu {
            let _ = write!(header, " {:>9} {:>9}", "srv cores", "oth cores");
        }
        println!("{header}");
        for r in &loads {
            let mut line = table_row(r);
            if cpu {
                let _ = write!(line, " {} {}", cores(r, "server"), cores(r, "other"));
            }
            println!("{line}");
        }
        let busy: Vec<String> = loads
            .iter()
            .filter(|r| r["cpu_cores"]["other"].as_f64().is_some_and(|o| o > 0.25))
            .map(|r| row_name(r))
            .collect();
        if !busy.is_empty() {
            println!(
                "note: other processes competed for the CPUs during {} (oth cores): those rows are skewed",
                busy.join(", ")
            );
        }
    }
    if !renders.is_empty() {
        if !loads.is_empty() {
            println!();
        }
        println!("{}", render_header());
        for r in &renders {
            println!("{}", render_row(r));
        }
    }
    if !ratios.is_empty() {
        println!();
    }
    for spec in ratios {
        let (a, b) = spec
            .rsplit_once('/')
            .ok_or_else(|| anyhow!("--ratio wants A/B, got {spec}"))?;
        let find = |n: &str| {
            loads
                .iter()
                .find(|r| row_name(r) == n)
                .and_then(|r| r["rps"].as_f64())
        };
        match (find(a), find(b)) {
            (Some(x), Some(y)) if y > 0.0 => {
                println!(
                    "ratio {a} / {b}: {} ({} / {} req/s)",
                    sig(x / y),
                    sig(x),
                    sig(y)
                )
            }
            _ => println!("ratio {a} / {b}: n/a (missing row or zero rps)"),
        }
    }
    Ok(())
}

/// A positive number with about three significant digits (no exponent).
fn sig(x: f64) -> String {
    match x.abs() {
        a if a >= 100.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        a if a >= 1.0 => format!("{x:.2}"),
        0.0 => "0".into(),
        a => format!(
            "{x:.*}",
            (2.0 - a.log10().floor()).clamp(3.0, 12.0) as usize
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// render: the markdown pipeline on adversarial inputs, in-process

async fn render_scenario(args: &BenchArgs) -> Result<()> {
    let iterations = args.iterations.max(1);
    let rows = tokio::task::spawn_blocking(move || {
        use confab_core::render::{pathological_inputs, render_markdown};
        let mut rows = Vec::new();
        for (name, input) in pathological_inputs() {
            let mut times: Vec<f64> = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let t = std::time::Instant::now();
                let out = render_markdown(&input);
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                std::hint::black_box(out);
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let max = times[times.len() - 1];
            rows.push(json!({
                "scenario": "render",
                "input": name,
                "chars": input.chars().count(),
                "iterations": iterations,
                "median_ms": (median * 1000.0).round() / 1000.0,
                "max_ms": (max * 1000.0).round() / 1000.0,
            }));
        }
        rows
    })
    .await
    .context("render scenario panicked")?;
    if !args.json {
        println!("{}", render_header());
    }
    for r in &rows {
        if args.json {
            println!("{r}");
        } else {
            println!("{}", render_row(r));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }

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

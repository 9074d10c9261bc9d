//! Seeding: what each HTTP scenario needs on the server, created through the API and only
//! what is missing, and the request [`Plan`] the scenario's workers then send.

use super::args::{BenchArgs, Flavor};
use super::client::{build_request, Conn, Endpoint, ExtraHeaders, ReqTemplate};
use super::measure::Plan;
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{StatusCode, Uri};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub(super) const HOT_IDENT: &str = "bench/read-hot";
const HOT_COMMENTS: usize = 200;
const HOT_TOP_LEVEL: usize = 120;
const MANY_THREADS: usize = 10_000;
const POST_THREADS: usize = 1_000;
const COUNTS_PER_REQUEST: usize = 50;
const SEED_CONCURRENCY: usize = 32;

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

pub(super) struct Seeder {
    flavor: Flavor,
    forum: String,
    seed: bool,
    ep: Arc<Endpoint>,
    /// More nodes of the same site (`--node`).
    nodes: Vec<Arc<Endpoint>>,
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

impl Seeder {
    pub(super) async fn new(args: &BenchArgs) -> Result<Self> {
        let ep = Arc::new(Endpoint::parse(&args.target).await?);
        let mut nodes = vec![ep.clone()];
        for n in &args.nodes {
            nodes.push(Arc::new(Endpoint::parse(n).await.context("--node")?));
        }
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
        Ok(Seeder {
            flavor: args.flavor,
            forum: args.forum.clone(),
            seed: !args.no_seed,
            ep,
            nodes,
            url_ep,
            extra,
            rng,
            hot_seeded: false,
            many_seeded: false,
        })
    }

    pub(super) async fn plan(&mut self, scenario: &str) -> Result<Plan> {
        let mut p = self.plan_inner(scenario).await?;
        if p.extra.idempotency_prefix.is_some() {
            // Fresh keys for every measurement: a reused key would be a cheap replay.
            p.extra.idempotency_prefix = Some(format!("bench-{:016x}", self.rng.gen::<u64>()));
        }
        Ok(p)
    }

    async fn plan_inner(&mut self, scenario: &str) -> Result<Plan> {
        let nodes = self.nodes.clone();
        let plan = |ep: &Arc<Endpoint>,
                    extra: &ExtraHeaders,
                    gets: Vec<ReqTemplate>,
                    posts: Vec<ReqTemplate>,
                    share: f64| {
            Plan {
                ep: ep.clone(),
                // The other nodes serve the same site: only requests to the target spread.
                nodes: if Arc::ptr_eq(ep, &nodes[0]) {
                    nodes.clone()
                } else {
                    vec![ep.clone()]
                },
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
                let uri = Uri::try_from(ep.path_and_query.as_str()).context("bad --url")?;
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

//! In-process cache of rendered thread pages (ARCHITECTURE.md, "Caches").
//!
//! Pages are keyed by (forum, ident, version, sort, cursor, limit). A write to a thread moves
//! its version forward, so every older page of it stops being found at once, and the writer
//! refills the first page ("fill on invalidate"). Versions come from one process-wide counter:
//! if a version entry is evicted, the next one handed out is still newer than every page
//! cached before, so an eviction can never resurrect a stale page. Concurrent misses on one key
//! are single-flighted by moka (`try_get_with`): one fill, every waiter gets its result.
//!
//! A version also remembers what its fills must read: after a write on this node, at least that
//! write (its commit position, as a read pin), so a page is never filled from a replica that
//! has not replayed the write that made the old page stale. Threads this node has not written
//! fill from any replica.
//!
//! Comment counts ride on the same versions: a thread's count is kept with the version it was
//! read at and is found only while that version is current.
//!
//! [`ReadThrough`] caches rows that change rarely (accounts, whether a forum's moderators have
//! mail) and are forgotten when they change.
//!
//! Every node is told of changes made elsewhere over the bus (`service::fleet`). While a node
//! cannot be sure it hears them (its bus connection is down), its [`Trust`] is withdrawn and
//! every entry here is served only while it is younger than a short TTL.

use bytes::Bytes;
use confab_core::id::ForumId;
use confab_core::DomainError;
use confab_store::ReadPin;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Whether this node's caches may be believed for their whole TTL: true while the node hears
/// every change made by others (its bus subscription is live). Without it, an entry older than
/// `short_ttl` counts as missing.
#[derive(Debug)]
pub struct Trust {
    trusted: AtomicBool,
    short_ttl: Duration,
}

impl Trust {
    pub fn new(short_ttl: Duration) -> Trust {
        Trust {
            trusted: AtomicBool::new(true),
            short_ttl,
        }
    }

    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Changes may be missed from now on (the bus is lost); returns whether trust was held.
    pub fn withdraw(&self) -> bool {
        self.trusted.swap(false, Ordering::AcqRel)
    }

    /// Changes are heard again; returns whether trust was withdrawn before.
    pub fn restore(&self) -> bool {
        !self.trusted.swap(true, Ordering::AcqRel)
    }

    /// Whether an entry made at `born` may still be served.
    fn believes(&self, born: Instant) -> bool {
        self.is_trusted() || born.elapsed() <= self.short_ttl
    }
}

/// A rendered page, ready to send.
#[derive(Debug)]
pub struct Page {
    pub body: Bytes,
    /// Strong validator, quoted.
    pub etag: String,
    /// The validator of the gzipped representation (a strong validator names one encoding).
    pub etag_gzip: String,
    /// The thread has pending or spam comments (their authors get a personalized page).
    pub has_hidden: bool,
    /// `body` gzipped, made by the first request that accepts gzip and kept with the page, so
    /// a hot page is compressed once per version, not per request.
    gzip: OnceLock<Option<Bytes>>,
}

impl Page {
    pub fn new(body: Vec<u8>, has_hidden: bool) -> Page {
        Page::with_gzip(body, has_hidden, None)
    }

    /// A page whose gzipped copy was made already (one from the shared tier).
    pub fn with_gzip(body: Vec<u8>, has_hidden: bool, gzip: Option<Bytes>) -> Page {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        let tag = format!("{:016x}{:04x}", h.finish(), body.len() & 0xffff);
        Page {
            etag: format!("\"{tag}\""),
            etag_gzip: format!("\"{tag}-gz\""),
            body: Bytes::from(body),
            has_hidden,
            gzip: match gzip {
                Some(g) => OnceLock::from(Some(g)),
                None => OnceLock::new(),
            },
        }
    }

    /// The body gzipped (fast level: pages change often, and JSON compresses well anyway),
    /// or `None` when it is too short to be worth it.
    pub fn gzipped(&self) -> Option<&Bytes> {
        self.gzip
            .get_or_init(|| {
                crate::encoding::gzip(&self.body, flate2::Compression::fast()).map(Bytes::from)
            })
            .as_ref()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub forum: ForumId,
    pub ident: Arc<str>,
    pub version: u64,
    pub sort: u8,
    pub cursor: Option<Arc<str>>,
    pub limit: u16,
    /// What a page's bytes depend on besides the thread: Gravatar shown or not (the forum's
    /// setting AND the `gravatar` switch for the reader), so changing either stops old pages
    /// from being found on every node as soon as it sees the change.
    pub gravatar: bool,
}

/// A thread's current version on this node: its number (local: it keys this node's pages),
/// the pin its fills read with, when it was set, and the thread's token in the shared tier
/// with when it was last read from there (`None`: no tier, or not read yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub n: u64,
    pub pin: Option<ReadPin>,
    born: Instant,
    pub token: Option<u64>,
    checked: Instant,
}

impl Version {
    /// Whether the token should be read from the tier again (never read, or `every` ago).
    pub fn token_due(&self, every: Duration) -> bool {
        self.token.is_none() || self.checked.elapsed() >= every
    }
}

pub struct PageCache {
    /// Current version of each thread's pages.
    versions: moka::sync::Cache<(ForumId, Arc<str>), Version>,
    pages: moka::future::Cache<PageKey, Arc<Page>>,
    /// Each thread's comment count and the version it was read at: a count is current while
    /// its thread's version is (the count widget asks for many threads at once).
    counts: moka::sync::Cache<(ForumId, Arc<str>), (u64, i64)>,
    next_version: AtomicU64,
    trust: Arc<Trust>,
    /// Page lookups answered from the cache, and lookups that had to fill (for `/metrics`).
    hits: AtomicU64,
    misses: AtomicU64,
}

impl PageCache {
    pub fn new(max_bytes: u64, ttl: Duration, trust: Arc<Trust>) -> PageCache {
        PageCache {
            versions: moka::sync::Cache::builder().max_capacity(1_000_000).build(),
            pages: moka::future::Cache::builder()
                .max_capacity(max_bytes)
                // A quarter more than the body for its gzipped copy, which may come later.
                .weigher(|k: &PageKey, v: &Arc<Page>| {
                    (v.body.len() + v.body.len() / 4 + k.ident.len() + 128).min(u32::MAX as usize)
                        as u32
                })
                .time_to_live(ttl)
                .build(),
            counts: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(ttl)
                .build(),
            next_version: AtomicU64::new(1),
            trust,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn next(&self, pin: Option<ReadPin>, token: Option<u64>) -> Version {
        let now = Instant::now();
        Version {
            n: self.next_version.fetch_add(1, Ordering::Relaxed),
            pin,
            born: now,
            token,
            checked: now,
        }
    }

    /// The current version of a thread's pages.
    pub fn version(&self, forum: ForumId, ident: &Arc<str>) -> u64 {
        self.current(forum, ident).0
    }

    /// The current version of a thread's pages, and the pin to fill them with.
    /// A version older than the short TTL while trust is withdrawn is replaced by a new one
    /// (keeping its pin), so the pages and counts cached under it stop being found.
    pub fn current(&self, forum: ForumId, ident: &Arc<str>) -> (u64, Option<ReadPin>) {
        let v = self.entry(forum, ident);
        (v.n, v.pin)
    }

    /// The thread's current version entry (see [`PageCache::current`]).
    pub fn entry(&self, forum: ForumId, ident: &Arc<str>) -> Version {
        let key = (forum, ident.clone());
        let mut v = self
            .versions
            .get_with(key.clone(), || self.next(None, None));
        if !self.trust.believes(v.born) {
            v = self.next(v.pin, None);
            self.versions.insert(key, v);
        }
        v
    }

    /// Makes every cached page of the thread stale after a write that later fills must see
    /// (`pin`), with the thread's new token in the tier if it has one; returns the new version.
    pub fn bump(&self, forum: ForumId, ident: &Arc<str>, pin: ReadPin, token: Option<u64>) -> u64 {
        let v = self.next(Some(pin), token);
        self.versions.insert((forum, ident.clone()), v);
        v.n
    }

    /// Marks a thread's token as being read again now, if its entry is still `seen`; whether
    /// it was (the caller reads it, nobody else needs to).
    pub fn mark_checked(&self, forum: ForumId, ident: &Arc<str>, seen: Version) -> bool {
        let key = (forum, ident.clone());
        match self.versions.get(&key) {
            Some(mut v) if v == seen => {
                v.checked = Instant::now();
                self.versions.insert(key, v);
                true
            }
            _ => false,
        }
    }

    /// Records the thread's token as just read from the tier, for the version `seen` that the
    /// reader looked at. The first one learned, the same one, or an older one: the version
    /// stands. A newer one: the thread changed without this node hearing of it, so it gets a
    /// new version (its fills read past `pin`, the token's write). Returns the version to use.
    pub fn learn_token(
        &self,
        forum: ForumId,
        ident: &Arc<str>,
        seen: Version,
        token: u64,
        pin: Option<ReadPin>,
    ) -> Version {
        let key = (forum, ident.clone());
        let mut current = self.versions.get(&key).unwrap_or(seen);
        if current.n != seen.n {
            // Changed meanwhile (a write here, an announcement): that entry is newer.
            return current;
        }
        match current.token {
            // Newer than what this node knows: a write it did not hear of.
            Some(t) if token > t => current = self.next(pin.or(current.pin), Some(token)),
            // Older (a tier server back from ejection with what it had): keep ours.
            Some(_) => current.checked = Instant::now(),
            None => {
                current.token = Some(token);
                current.checked = Instant::now();
            }
        }
        self.versions.insert(key, current);
        current
    }

    /// Forgets every version, page and count (after changes may have been missed): versions
    /// handed out from now on are newer than any before, so nothing cached is found again.
    pub fn forget_all(&self) {
        self.versions.invalidate_all();
        self.counts.invalidate_all();
        self.pages.invalidate_all();
    }

    /// The page for `key` if it is cached.
    pub async fn get(&self, key: &PageKey) -> Option<Arc<Page>> {
        let page = self.pages.get(key).await;
        if page.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            confab_record::add(confab_record::Field::PageHits, 1);
        }
        page
    }

    /// Page lookups answered from the cache (by [`PageCache::get`], or by
    /// [`PageCache::get_or_fill`] without filling), and fills run: (hits, misses).
    pub fn hit_stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The page for `key`, filled by `fill` on a miss (one fill per key at a time).
    pub async fn get_or_fill<F>(&self, key: PageKey, fill: F) -> Result<Arc<Page>, DomainError>
    where
        F: Future<Output = Result<Page, DomainError>>,
    {
        let filled = std::sync::atomic::AtomicBool::new(false);
        let filled_ref = &filled;
        let out = self
            .pages
            .try_get_with(key, async move {
                filled_ref.store(true, Ordering::Relaxed);
                fill.await.map(Arc::new)
            })
            .await
            .map_err(|e: Arc<DomainError>| (*e).clone());
        if filled.load(Ordering::Relaxed) {
            self.misses.fetch_add(1, Ordering::Relaxed);
            confab_record::add(confab_record::Field::PageMisses, 1);
        } else if out.is_ok() {
            // Another request's fill (single-flight) or a page cached since the caller looked.
            self.hits.fetch_add(1, Ordering::Relaxed);
            confab_record::add(confab_record::Field::PageHits, 1);
        }
        out
    }

    /// A thread's comment count if it was read at the thread's current version; else that
    /// version (with the pin a read must use and the thread's tier token), to be stored with
    /// [`PageCache::put_count`].
    pub fn count(&self, forum: ForumId, ident: &Arc<str>) -> Result<i64, Version> {
        let v = self.entry(forum, ident);
        match self.counts.get(&(forum, ident.clone())) {
            Some((n, count)) if n == v.n => Ok(count),
            _ => Err(v),
        }
    }

    /// Keeps a count read at `version` (a write since then has moved the version on, so a
    /// count read before it is never found).
    pub fn put_count(&self, forum: ForumId, ident: Arc<str>, version: u64, n: i64) {
        self.counts.insert((forum, ident), (version, n));
    }

    /// Whether a page is cached (used to refill only the pages people are reading).
    pub fn contains(&self, key: &PageKey) -> bool {
        self.pages.contains_key(key)
    }
}

/// A cache of store rows that is told when a row changes (`forget`). A read that started
/// before a change must not put its older row back afterwards: readers take the `epoch` before
/// reading the store, and `put` keeps nothing if any `forget` came in between. Checking the
/// epoch and inserting happen under the same gate as `forget`, so none can slip between.
/// Changes made on other nodes arrive as `forget`s over the bus; while they may be missed
/// ([`Trust`] withdrawn), entries are served only within the short TTL.
pub struct ReadThrough<K, V> {
    cache: moka::future::Cache<K, (V, Instant)>,
    epoch: AtomicU64,
    gate: tokio::sync::Mutex<()>,
    trust: Arc<Trust>,
}

impl<K, V> ReadThrough<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + Clone + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(max_entries: u64, ttl: Duration, trust: Arc<Trust>) -> Self {
        ReadThrough {
            cache: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
            epoch: AtomicU64::new(0),
            gate: tokio::sync::Mutex::new(()),
            trust,
        }
    }

    pub async fn get(&self, key: &K) -> Option<V> {
        match self.cache.get(key).await {
            Some((v, born)) if self.trust.believes(born) => Some(v),
            _ => None,
        }
    }

    /// Take this before reading the store for the rows you will `put`.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches rows read since `epoch`, unless something was forgotten meanwhile.
    pub async fn put(&self, epoch: u64, rows: Vec<(K, V)>) {
        let _gate = self.gate.lock().await;
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let born = Instant::now();
        for (k, v) in rows {
            self.cache.insert(k, (v, born)).await;
        }
    }

    /// Forgets a row after it changed.
    pub async fn forget(&self, key: &K) {
        let _gate = self.gate.lock().await;
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate(key).await;
    }

    /// Forgets every row (after changes may have been missed).
    pub async fn forget_all(&self) {
        let _gate = self.gate.lock().await;
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn trusted() -> Arc<Trust> {
        Arc::new(Trust::new(Duration::from_millis(100)))
    }

    fn key(c: &PageCache, ident: &Arc<str>) -> PageKey {
        PageKey {
            forum: ForumId(1),
            ident: ident.clone(),
            version: c.version(ForumId(1), ident),
            sort: 0,
            cursor: None,
            limit: 50,
            gravatar: false,
        }
    }

    #[test]
    fn counts_are_current_until_the_thread_changes() {
        let c = PageCache::new(1 << 20, Duration::from_secs(60), trusted());
        let ident: Arc<str> = Arc::from("/t");
        let v = c.count(ForumId(1), &ident).unwrap_err();
        let v1 = v.n;
        assert_eq!(
            v.pin, None,
            "a thread this node never wrote reads from anywhere"
        );
        c.put_count(ForumId(1), ident.clone(), v1, 3);
        assert_eq!(c.count(ForumId(1), &ident), Ok(3));
        assert!(c.count(ForumId(2), &ident).is_err(), "per forum");
        // A write moves the version: the old count is gone, and its refill must see the write.
        let v2 = c.bump(ForumId(1), &ident, ReadPin::Fresh, None);
        let miss = c.count(ForumId(1), &ident).unwrap_err();
        assert_eq!((miss.n, miss.pin), (v2, Some(ReadPin::Fresh)));
        // A count read before the write but stored after it is never found.
        c.put_count(ForumId(1), ident.clone(), v1, 3);
        assert!(c.count(ForumId(1), &ident).is_err());
        c.put_count(ForumId(1), ident.clone(), v2, 4);
        assert_eq!(c.count(ForumId(1), &ident), Ok(4));
    }

    #[tokio::test]
    async fn concurrent_misses_fill_once() {
        let c = Arc::new(PageCache::new(1 << 20, Duration::from_secs(60), trusted()));
        let fills = Arc::new(AtomicUsize::new(0));
        let ident: Arc<str> = Arc::from("t");
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (c, fills, k) = (c.clone(), fills.clone(), key(&c, &ident));
            tasks.push(tokio::spawn(async move {
                c.get_or_fill(k, async {
                    fills.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(Page::new(b"x".to_vec(), false))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(&t.await.unwrap().unwrap().body[..], b"x");
        }
        assert_eq!(fills.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn bump_hides_old_pages_and_versions_never_repeat() {
        let c = PageCache::new(1 << 20, Duration::from_secs(60), trusted());
        let ident: Arc<str> = Arc::from("t");
        let k1 = key(&c, &ident);
        c.get_or_fill(k1.clone(), async { Ok(Page::new(b"old".to_vec(), false)) })
            .await
            .unwrap();
        let v2 = c.bump(ForumId(1), &ident, ReadPin::Fresh, None);
        assert_eq!(c.current(ForumId(1), &ident), (v2, Some(ReadPin::Fresh)));
        assert!(v2 > k1.version);
        let k2 = key(&c, &ident);
        assert_eq!(k2.version, v2);
        let p = c
            .get_or_fill(k2, async { Ok(Page::new(b"new".to_vec(), false)) })
            .await
            .unwrap();
        assert_eq!(&p.body[..], b"new");
        // An evicted version entry comes back newer than anything before it.
        c.versions.invalidate(&(ForumId(1), ident.clone()));
        assert!(c.version(ForumId(1), &ident) > v2);
    }

    #[tokio::test]
    async fn failed_fill_is_not_cached() {
        let c = PageCache::new(1 << 20, Duration::from_secs(60), trusted());
        let ident: Arc<str> = Arc::from("t");
        let k = key(&c, &ident);
        assert!(c
            .get_or_fill(k.clone(), async { Err(DomainError::internal()) })
            .await
            .is_err());
        assert!(c
            .get_or_fill(k, async { Ok(Page::new(b"ok".to_vec(), false)) })
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_read_from_before_a_change_is_not_cached_after_it() {
        let c: ReadThrough<u8, &str> = ReadThrough::new(10, Duration::from_secs(60), trusted());
        let before = c.epoch();
        c.forget(&1).await; // the row changed while the reader was reading the old one
        c.put(before, vec![(1, "old")]).await;
        assert_eq!(c.get(&1).await, None, "the old row stays out");
        let now = c.epoch();
        c.put(now, vec![(1, "new")]).await;
        assert_eq!(c.get(&1).await, Some("new"));
        c.forget(&1).await;
        assert_eq!(c.get(&1).await, None, "forgotten once it changes again");
    }

    #[test]
    fn a_new_token_from_the_tier_is_a_new_version() {
        let c = PageCache::new(1 << 20, Duration::from_secs(60), trusted());
        let ident: Arc<str> = Arc::from("t");
        let v = c.entry(ForumId(1), &ident);
        assert!(v.token_due(Duration::from_secs(1)), "never read");
        // The first token learned keeps the version (its pages were filled from the store).
        let v1 = c.learn_token(ForumId(1), &ident, v, 11, None);
        assert_eq!((v1.n, v1.token), (v.n, Some(11)));
        assert!(!v1.token_due(Duration::from_secs(1)));
        assert!(v1.token_due(Duration::ZERO));
        // One reader re-reads a due token; the next one sees it marked and does not.
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.mark_checked(ForumId(1), &ident, v1));
        assert!(!c.mark_checked(ForumId(1), &ident, v1));
        let v1 = c.entry(ForumId(1), &ident);
        // The same token again: still the same version.
        assert_eq!(c.learn_token(ForumId(1), &ident, v1, 11, None).n, v.n);
        // An older token (a tier server back from ejection): ignored.
        assert_eq!(
            c.learn_token(ForumId(1), &ident, v1, 10, None).token,
            Some(11)
        );
        // A newer token: a write this node did not hear of; a new version that reads past it.
        let pos = confab_store::WritePos { server: 1, lsn: 5 };
        let v2 = c.learn_token(ForumId(1), &ident, v1, 12, Some(ReadPin::At(pos)));
        assert!(v2.n > v1.n);
        assert_eq!((v2.token, v2.pin), (Some(12), Some(ReadPin::At(pos))));
        // A reader that looked before a newer version was set does not undo it.
        let v3 = c.bump(ForumId(1), &ident, ReadPin::Fresh, Some(13));
        assert_eq!(c.learn_token(ForumId(1), &ident, v2, 12, None).n, v3);
    }

    #[tokio::test]
    async fn without_trust_entries_live_only_the_short_ttl() {
        let trust = trusted();
        let rows: ReadThrough<u8, &str> =
            ReadThrough::new(10, Duration::from_secs(60), trust.clone());
        let pages = PageCache::new(1 << 20, Duration::from_secs(60), trust.clone());
        let ident: Arc<str> = Arc::from("t");
        rows.put(rows.epoch(), vec![(1, "row")]).await;
        let v1 = pages.version(ForumId(1), &ident);
        assert!(trust.withdraw());
        // Young entries are still served...
        assert_eq!(rows.get(&1).await, Some("row"));
        assert_eq!(pages.version(ForumId(1), &ident), v1);
        std::thread::sleep(Duration::from_millis(150));
        // ...older ones are not: the row is read again, the thread gets a new version.
        assert_eq!(rows.get(&1).await, None);
        let v2 = pages.version(ForumId(1), &ident);
        assert!(v2 > v1);
        assert_eq!(
            pages.version(ForumId(1), &ident),
            v2,
            "new entries are young"
        );
        assert!(trust.restore());
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(
            pages.version(ForumId(1), &ident),
            v2,
            "trusted again: the full TTL"
        );
        // Forgetting everything (on reconnecting) hides every page and count.
        pages.put_count(ForumId(1), ident.clone(), v2, 5);
        pages.forget_all();
        assert!(pages.count(ForumId(1), &ident).is_err());
        rows.put(rows.epoch(), vec![(2, "x")]).await;
        rows.forget_all().await;
        assert_eq!(rows.get(&2).await, None);
    }
}

//! The domain services: what Confab does, independent of HTTP.
//!
//! Handlers turn a request into a [`Caller`] and parsed input, call one method here, and turn
//! the result into a response. Services talk to storage only through the `Store` trait.
//!
//! - [`threads`]: reading pages of a thread (cached) and replies.
//! - [`comments`]: posting, editing, deleting, voting, flagging, counts.
//! - [`accounts`]: sign-up, log-in, sessions.
//! - [`moderation`]: queues, status changes, bans, settings, log, stats.
//! - [`export`]: a whole forum written out (Disqus XML, JSON lines), and backups.
//! - [`switches`]: feature switches (the registry requests read, and operators' changes).
//! - [`outbox`]: the tasks that follow a change (written in its transaction), and the actions
//!   behind the signed links in Confab's mail.

mod accounts;
mod admission;
mod bans;
mod challenge;
mod comments;
pub mod export;
pub mod feeds;
pub mod fleet;
mod follows;
pub mod gdpr;
pub mod import;
pub mod media;
mod mod_context;
mod moderation;
pub mod oidc;
pub mod outbox;
pub mod passwords;
pub mod pins;
mod reactions;
pub mod realtime;
pub mod secret_check;
pub mod spam;
mod sso;
mod switches;
mod thread_moves;
mod threads;

pub use accounts::{LogIn, Session, SignUp};
pub use bans::{BanLapse, BanTarget, NewBan};
pub use comments::{
    CountRequest, Editing, FlagReason, Flagged, GuestAuthor, IdempotencyKey, MyVotes, PostComment,
    Posted, VoteValue, Voted, VOTES_MAX,
};
pub use follows::Following;
pub use gdpr::{
    DataComment, DataMark, DataProfile, DataSubscription, EraseChoice, Erasure, ForumReader,
    ReaderData,
};
pub use moderation::{
    DayTotal, ForumChanges, ModListFilter, ModLogPage, ModeratedThread, Moderating,
    ModerationAction, NewForum, Staff, StatsDays, StatusChange, ThreadChanges,
};
pub use outbox::NotifyOutcome;
pub use reactions::{ReactedOutcome, ReactionChange};
pub use sso::{SsoSignIn, SsoToken};
pub use switches::{LiveSwitch, SwitchChange, SwitchSetting};
pub use thread_moves::ThreadRemap;
pub use threads::PageRequest;

use crate::cache::{PageCache, ReadThrough, Trust};
use crate::config::Config;
use crate::shared::Shared;
use confab_core::id::{AccountId, ForumId};
use confab_core::model::{Account, Forum, ForumSettings};
use confab_core::sign::Signer;
use confab_core::{DomainError, ErrorCode};
use confab_store::{QueueDepth, Store};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What `/readyz` says of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Serving, with a part missing (the reason says which).
    Degraded(String),
    /// Cannot serve (the reason says why).
    Down(String),
}

/// Who is calling, as established by the HTTP layer from signed tokens (no database access).
#[derive(Debug, Clone)]
pub struct Caller {
    /// From a verified session cookie or bearer token.
    pub account: Option<AccountId>,
    /// The session came from a cookie (so CSRF rules apply).
    pub cookie_auth: bool,
    /// From a verified anonymous-client token.
    pub anon: Option<String>,
    /// The client's address (stored only as [`Service::ip_hash`]).
    pub ip: IpAddr,
    /// The browser's `Origin`, when it is not this server's own.
    pub foreign_origin: Option<String>,
    /// A guest edit token presented with the request.
    pub edit_token: Option<String>,
    /// The request came over https (directly, or as a trusted proxy says): cookies are `Secure`.
    pub https: bool,
    /// What the browser says of itself, for the forum's spam check (`spam`).
    pub hints: ClientHints,
}

/// The request headers an outside spam check is told (each at most 500 characters).
#[derive(Debug, Clone, Default)]
pub struct ClientHints {
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    /// The first language of `Accept-Language`.
    pub lang: Option<String>,
}

impl Caller {
    /// Nobody in particular: what every reader of a shared page (the server-rendered fragment,
    /// a feed) is shown.
    pub fn public() -> Caller {
        Caller {
            account: None,
            cookie_auth: false,
            anon: None,
            ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            foreign_origin: None,
            edit_token: None,
            https: false,
            hints: ClientHints::default(),
        }
    }
}

/// What a browser page does with a forum, for the origin check (it says so in its refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Writes, and moderation reads and writes.
    Write,
    /// Embedding the forum's live threads.
    Embed,
}

/// The one origin check: a call from a browser page (an `Origin` that is not this server's)
/// must come from one of the forum's sites.
pub(crate) fn check_origin(
    caller: &Caller,
    forum: &Forum,
    access: Access,
) -> Result<(), DomainError> {
    match &caller.foreign_origin {
        Some(o) if !forum.settings.origin_allowed(o) => Err(DomainError::new(
            ErrorCode::OriginNotAllowed,
            match access {
                Access::Write => {
                    format!("origin {o} is not allowed to write to forum {}", forum.name)
                }
                Access::Embed => format!("origin {o} may not embed forum {}", forum.name),
            },
        )),
        _ => Ok(()),
    }
}

/// Token kinds bound into signatures.
pub mod token {
    pub const SESSION: &str = "session";
    pub const ANON: &str = "anon";
    pub const EDIT: &str = "edit";
}

/// How long a session token is valid.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

/// In-memory registry of forums: small, global, read on every request.
#[derive(Default)]
pub struct Forums {
    by_name: RwLock<HashMap<String, Arc<Forum>>>,
    /// Held across a reload's read and install, so a read that began before a change (the
    /// periodic refresh) cannot be installed after one that saw it (the change's own reload).
    reload: tokio::sync::Mutex<()>,
}

impl Forums {
    pub fn get(&self, name: &str) -> Option<Arc<Forum>> {
        self.by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }
    pub fn by_id(&self, id: ForumId) -> Option<Arc<Forum>> {
        self.by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|f| f.id == id)
            .cloned()
    }
    pub fn all(&self) -> Vec<Arc<Forum>> {
        let mut v: Vec<_> = self
            .by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
    /// Any forum allows this origin (for CORS preflights, which don't say the forum).
    pub fn any_allows(&self, origin: &str) -> bool {
        self.by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|f| f.settings.origin_allowed(origin))
    }
    fn replace(&self, forums: Vec<Forum>) {
        let map = forums
            .into_iter()
            .map(|f| (f.name.clone(), Arc::new(f)))
            .collect();
        *self.by_name.write().unwrap_or_else(|p| p.into_inner()) = map;
    }
}

/// What Confab does. Its parts are private: handlers reach storage, the bus, the signer and
/// the forum registry only through its methods.
pub struct Service {
    config: Config,
    store: Arc<dyn Store>,
    /// Carries realtime events to every node (in-process, or Redis when scaled out).
    bus: Arc<dyn confab_bus::Bus>,
    /// Live events waiting for the node's publisher (see `realtime::start_publisher`).
    live_out: tokio::sync::mpsc::Sender<(String, bytes::Bytes)>,
    signer: Signer,
    forums: Forums,
    /// Feature switches, read by every request (`switches`).
    switches: switches::SwitchBoard,
    pages: PageCache,
    accounts: ReadThrough<AccountId, Arc<Account>>,
    /// Woken when a task was written, so the in-process worker claims it at once.
    tasks_wake: Arc<tokio::sync::Notify>,
    /// Whether a forum has moderators with an e-mail address (briefly cached).
    mod_mail: ReadThrough<ForumId, bool>,
    /// Who was found not banned from a forum (the answer for nearly every write): a new ban
    /// anywhere forgets them all (`fleet::Change::Bans`). A ban found is never cached, so its
    /// expiry and its lifting count at once.
    unbanned: ReadThrough<(ForumId, confab_core::model::BanSubject), ()>,
    /// Password hashing, bounded (a thread per core, a bounded queue).
    passwords: passwords::Passwords,
    /// Whether this node hears every change made by others (see `fleet`).
    trust: Arc<Trust>,
    /// Other nodes share the bus: changes are announced on it (`fleet`).
    fleet: bool,
    /// This node's id on the bus (a node skips its own announcements).
    node: String,
    /// Announcements for the change publisher (`fleet::start_publisher`), and its overflow flag.
    changes_out: tokio::sync::mpsc::Sender<bytes::Bytes>,
    changes_overflow: Arc<std::sync::atomic::AtomicBool>,
    /// Changes announced but not yet published.
    changes_unsent: Arc<std::sync::atomic::AtomicUsize>,
    /// The store's count of other processes' writes at the last look (`i64::MIN`: not yet).
    outside_version: std::sync::atomic::AtomicI64,
    /// The shared cache tier (`[cache] servers`), in front of storage and behind this node's
    /// own caches.
    shared: Option<Arc<Shared>>,
    /// How often a thread's token is read from the tier again.
    version_check: Duration,
    /// The last sample of the task queue (for `/metrics`), and the lock of whoever takes the
    /// next one.
    queue_sample: std::sync::Mutex<Option<(std::time::Instant, Arc<Vec<QueueDepth>>)>>,
    queue_sampling: tokio::sync::Mutex<()>,
    /// The dashboard's import running on this node, if any (one at a time).
    import_slot: import::ImportSlot,
    /// Forums' comment feeds, each kept briefly ([`feeds::FORUM_FEED_TTL`]) and built by one
    /// request at a time.
    forum_feeds: moka::future::Cache<ForumId, Arc<feeds::Feed>>,
    /// The outside spam check's client and circuit breaker.
    spam: spam::SpamChecker,
    /// Sign-in with OpenID providers and GitHub (`oidc`).
    auth: oidc::ExternalAuth,
    /// Decode slots for uploaded pictures (`media`).
    decodes: media::Decodes,
}

/// How long the spam check's request facts are kept: a moderator's later verdict on a comment
/// is reported to the checker with them (`submit-ham`/`submit-spam`) within this time.
pub const SPAM_FACTS_DAYS: i64 = 30;

/// How often `/metrics` samples the task queue at most, and how long one server may take.
const QUEUE_SAMPLE_EVERY: Duration = Duration::from_secs(1);
const QUEUE_SAMPLE_TIMEOUT: Duration = Duration::from_secs(1);

impl Service {
    /// The caller's address as it is stored and shown to moderators: a keyed hash, computed
    /// only by the writes that need it (reads never do).
    pub fn ip_hash(&self, caller: &Caller) -> String {
        self.signer.keyed_hash("ip", &caller.ip.to_string())
    }

    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        signer: Signer,
        bus: Arc<dyn confab_bus::Bus>,
    ) -> Result<Arc<Service>, DomainError> {
        let trust = Arc::new(Trust::new(Duration::from_millis(
            config.cache.degraded_ttl_ms,
        )));
        let pages = PageCache::new(
            config.cache.page_mib * 1024 * 1024,
            Duration::from_secs(config.cache.page_ttl_secs),
            trust.clone(),
        );
        let fleet = !config.bus.redis_url.is_empty();
        let shared = Shared::new(&config.cache)?;
        let version_check = Duration::from_millis(config.cache.version_check_ms);
        let node = fleet::node_id();
        let changes_unsent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (changes_out, changes_overflow) =
            fleet::start_publisher(bus.clone(), node.clone(), changes_unsent.clone());
        let spam = spam::SpamChecker::new(&config.spam)?;
        let auth = oidc::ExternalAuth::new(&config)?;
        let decodes = media::Decodes::new(&config.images);
        let svc = Arc::new(Service {
            decodes,
            spam,
            config,
            auth,
            store,
            live_out: realtime::start_publisher(bus.clone()),
            bus,
            signer,
            forums: Forums::default(),
            switches: switches::SwitchBoard::new(),
            pages,
            accounts: ReadThrough::new(100_000, Duration::from_secs(30), trust.clone()),
            tasks_wake: Arc::new(tokio::sync::Notify::new()),
            mod_mail: ReadThrough::new(100_000, Duration::from_secs(60), trust.clone()),
            unbanned: ReadThrough::new(100_000, Duration::from_secs(60), trust.clone()),
            passwords: passwords::Passwords::new(0),
            trust: trust.clone(),
            fleet,
            node,
            changes_out,
            changes_overflow,
            changes_unsent,
            outside_version: std::sync::atomic::AtomicI64::new(i64::MIN),
            shared,
            version_check,
            queue_sample: std::sync::Mutex::new(None),
            queue_sampling: tokio::sync::Mutex::new(()),
            import_slot: import::ImportSlot::default(),
            forum_feeds: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(feeds::FORUM_FEED_TTL)
                .build(),
        });
        if fleet {
            fleet::start_listener(&svc, trust);
        }
        svc.refresh_forums().await?;
        svc.refresh_switches().await?;
        Ok(svc)
    }

    /// The configuration the service was built with (limits, listeners, proxies, tasks).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every forum, by name (for `confab admin`).
    pub fn all_forums(&self) -> Vec<Arc<Forum>> {
        self.forums.all()
    }

    /// Whether a browser on `origin` may call the routes of the forum named `forum` (CORS).
    pub fn forum_allows_origin(&self, forum: &str, origin: &str) -> bool {
        self.forums
            .get(forum)
            .is_some_and(|f| f.settings.origin_allowed(origin))
    }

    /// Whether any forum allows `origin` (for CORS on routes that don't name a forum).
    pub fn any_forum_allows_origin(&self, origin: &str) -> bool {
        self.forums.any_allows(origin)
    }

    /// Whether this node can serve (`/readyz`). The control data unreachable is not "down"
    /// while the node holds the forums in memory and the comment data answers: pages are
    /// served (writes, which check bans and accounts there, answer 503 until it is back).
    pub async fn readiness(&self) -> Readiness {
        let control = match self.store.forums().await {
            Ok(_) => {
                // Parts of the store down (a shard primary): still serving, its reads from
                // replicas, its writes 503; say which and why.
                let down = self.store.problems();
                if down.is_empty() {
                    return Readiness::Ready;
                }
                return Readiness::Degraded(format!(
                    "{}; writes there answer 503 until it is back, reads go to its replicas",
                    down.join("; ")
                ));
            }
            Err(e) => e,
        };
        let Some(forum) = self.forums.all().into_iter().next() else {
            return Readiness::Down(format!(
                "control database unreachable ({}) and no forum known yet",
                control.reason()
            ));
        };
        // One read of the comment data, as a page load would do it.
        let probe = confab_core::ident::Ident::from_stored("/".to_string());
        match self
            .store
            .thread_by_ident(&forum, &probe, confab_store::ReadFrom::Replica)
            .await
        {
            Ok(_) => Readiness::Degraded(format!(
                "control database unreachable ({}); pages are served with the {} forum(s) in memory, writes answer 503 until it is back",
                control.reason(),
                self.forums.all().len()
            )),
            Err(e) => Readiness::Down(format!(
                "database unreachable: control ({}), comments ({})",
                control.reason(),
                e.reason()
            )),
        }
    }

    /// The store's counters (statements run, reads by primaries and replicas), for `/statz`.
    pub fn store_stats(&self) -> impl serde::Serialize {
        self.store.stats()
    }

    /// Parts of the store known to be down, with their causes, for `/statz`.
    pub fn store_problems(&self) -> Vec<String> {
        self.store.problems()
    }

    /// The shared cache tier's counters and servers, for `/statz` (`null` without a tier).
    pub fn tier_stats(&self) -> serde_json::Value {
        let Some(s) = &self.shared else {
            return serde_json::Value::Null;
        };
        let t = s.stats();
        serde_json::json!({
            "hits": t.hits, "misses": t.misses, "fills": t.fills, "lock_waits": t.lock_waits,
            "stale_served": t.stale_served, "early_refreshes": t.early_refreshes,
            "errors": t.errors, "ejections": t.ejections,
            "servers": t.servers.iter().map(|s| serde_json::json!({"name": s.name, "ejected": s.ejected, "last_error": s.last_error})).collect::<Vec<_>>(),
        })
    }

    /// The store's counters as a struct, for `/metrics`.
    pub fn store_counters(&self) -> confab_store::StoreStats {
        self.store.stats()
    }

    /// Statements run by shard server and primary/replica, for `/statz` and `/metrics`.
    pub fn store_statements(&self) -> Vec<confab_store::ShardStatements> {
        self.store.statements()
    }

    /// Each shard server's task queue, for `/metrics`: sampled at most once a second (scrapes
    /// in between, or while a sample is being taken, get the last one), each server given at
    /// most a second to answer (one that does not is left out of this sample).
    pub async fn task_queue(&self) -> Arc<Vec<QueueDepth>> {
        let last = || {
            self.queue_sample
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        };
        let fresh = |at: std::time::Instant| at.elapsed() < QUEUE_SAMPLE_EVERY;
        match last() {
            Some((at, v)) if fresh(at) => return v,
            _ => {}
        }
        let Ok(_one) = self.queue_sampling.try_lock() else {
            return last().map(|(_, v)| v).unwrap_or_default();
        };
        let v = Arc::new(
            self.store
                .task_queue(confab_core::now_ms(), QUEUE_SAMPLE_TIMEOUT)
                .await,
        );
        *self.queue_sample.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), v.clone()));
        v
    }

    /// The local page cache's (hits, misses), for `/metrics`.
    pub fn page_cache_stats(&self) -> (u64, u64) {
        self.pages.hit_stats()
    }

    /// The shared cache tier's counters, for `/metrics` (`None` without a tier).
    pub fn tier_counters(&self) -> Option<confab_cache::TierStats> {
        self.shared.as_ref().map(|s| s.stats())
    }

    /// Each switch's global value (for nobody in particular), for `/metrics`.
    pub fn switch_states(&self) -> Vec<(&'static str, bool)> {
        confab_core::switch::SwitchName::ALL
            .iter()
            .map(|&n| (n.as_str(), self.switch_default(n, None)))
            .collect()
    }

    /// Forgets idempotency keys older than a day, the spam check's request facts (a
    /// reader's address and user agent) older than [`SPAM_FACTS_DAYS`], and pictures never
    /// attached to a comment within `[images] unattached_hours`.
    pub async fn prune_idempotency(&self) -> Result<(), DomainError> {
        const DAY: i64 = 24 * 3600 * 1000;
        let now = confab_core::now_ms();
        self.store.prune_idempotency(now - DAY).await?;
        self.store
            .prune_spam_facts(now - SPAM_FACTS_DAYS * DAY)
            .await?;
        // Pictures uploaded and never attached to a comment.
        self.prune_images().await?;
        Ok(())
    }

    /// The forums changed (created, settings edited): reload them here and on every node.
    pub(crate) async fn forums_changed(self: &Arc<Self>) {
        self.changed(fleet::Change::Forums).await;
    }

    /// Reloads the forum registry from the control data.
    pub async fn refresh_forums(&self) -> Result<(), DomainError> {
        let _one_at_a_time = self.forums.reload.lock().await;
        let all = self.store.forums().await?;
        self.forums.replace(all);
        Ok(())
    }

    /// The `demo` forum the embedded default serves, accepting localhost origins.
    pub async fn ensure_demo_forum(&self) -> Result<Arc<Forum>, DomainError> {
        if let Some(f) = self.forums.get("demo") {
            return Ok(f);
        }
        let mut s = ForumSettings::new("Confab demo");
        s.allowed_origins = vec![
            "http://localhost:*".into(),
            "http://127.0.0.1:*".into(),
            "http://[::1]:*".into(),
        ];
        match self.store.create_forum("demo", &s).await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::Conflict => {}
            Err(e) => return Err(e),
        }
        self.refresh_forums().await?;
        self.forums.get("demo").ok_or_else(DomainError::internal)
    }

    pub fn forum(&self, name: &str) -> Result<Arc<Forum>, DomainError> {
        self.forums
            .get(name)
            .ok_or_else(|| DomainError::not_found(&format!("forum {name:?}")))
    }

    /// An account by id, cached briefly (roles and names change rarely).
    pub async fn account(&self, id: AccountId) -> Result<Option<Arc<Account>>, DomainError> {
        if let Some(a) = self.accounts.get(&id).await {
            return Ok(Some(a));
        }
        Ok(self.accounts_by_id(&[id]).await?.remove(&id))
    }

    /// Many accounts, one store query for the ones not cached (application-level join).
    pub async fn accounts_by_id(
        &self,
        ids: &[AccountId],
    ) -> Result<HashMap<AccountId, Arc<Account>>, DomainError> {
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.accounts.get(id).await {
                Some(a) => {
                    out.insert(*id, a);
                }
                None => missing.push(*id),
            }
        }
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let epoch = self.accounts.epoch();
            let mut rows: Vec<Arc<Account>> = Vec::new();
            if let Some(shared) = &self.shared {
                rows.extend(shared.accounts(&missing).await.into_iter().map(Arc::new));
                missing.retain(|id| !rows.iter().any(|a| a.id == *id));
            }
            if !missing.is_empty() {
                let read: Vec<Arc<Account>> = self
                    .store
                    .accounts(&missing)
                    .await?
                    .into_iter()
                    .map(Arc::new)
                    .collect();
                if let Some(shared) = &self.shared {
                    shared.put_accounts(&read).await;
                }
                rows.extend(read);
            }
            self.accounts
                .put(epoch, rows.iter().map(|a| (a.id, a.clone())).collect())
                .await;
            out.extend(rows.into_iter().map(|a| (a.id, a)));
        }
        Ok(out)
    }

    /// Forgets a cached account after a change to it, on every node and in the shared tier.
    pub async fn forget_account(self: &Arc<Self>, id: AccountId) {
        if let Some(shared) = &self.shared {
            shared.forget_account(id).await;
        }
        self.changed(fleet::Change::Account { id }).await;
    }

    /// The signed-in account, if the session names one that exists.
    pub async fn caller_account(
        &self,
        caller: &Caller,
    ) -> Result<Option<Arc<Account>>, DomainError> {
        match caller.account {
            Some(id) => self.account(id).await,
            None => Ok(None),
        }
    }

    /// Writes from a browser page must come from one of the forum's sites.
    pub fn check_origin(&self, caller: &Caller, forum: &Forum) -> Result<(), DomainError> {
        check_origin(caller, forum, Access::Write)
    }

    /// Issues an anonymous-client token (a random id, signed).
    pub fn new_anon_token(&self) -> (String, String) {
        use rand::RngCore;
        let mut b = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut b);
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let token = self.signer.sign(token::ANON, &id);
        (id, token)
    }

    /// A session token for an account: its id, expiry and session generation, signed.
    pub fn session_token(&self, account: &Account) -> String {
        let exp = confab_core::now_ms() + SESSION_TTL_MS;
        self.signer.sign(
            token::SESSION,
            &format!("{}|{exp}|{}", account.id.0, account.session_gen),
        )
    }

    /// The account and session generation a session token names, if it is valid and unexpired
    /// (no database access; [`Service::session_account`] also checks the generation).
    pub fn verify_session(&self, token: &str) -> Option<(AccountId, i64)> {
        let payload = self.signer.verify(token::SESSION, token)?;
        let mut parts = payload.split('|');
        let id = parts.next()?.parse().ok().map(AccountId)?;
        let exp: i64 = parts.next()?.parse().ok()?;
        let generation: i64 = parts.next().map_or(Some(0), |g| g.parse().ok())?;
        (exp > confab_core::now_ms()).then_some((id, generation))
    }

    /// The account a session token signs in, if the token is valid and its session has not
    /// been ended since (logout, a moderator's removal): the generation it carries is the
    /// account's current one (read through the account cache).
    pub async fn session_account(&self, token: &str) -> Option<AccountId> {
        let (id, generation) = self.verify_session(token)?;
        match self.account(id).await {
            Ok(Some(a)) if a.session_gen == generation => Some(id),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check a session; treating the caller as signed out");
                None
            }
        }
    }

    /// Ends every session of an account, on every node.
    pub async fn end_sessions(self: &Arc<Self>, account: AccountId) -> Result<(), DomainError> {
        self.store.end_sessions(account).await?;
        self.forget_account(account).await;
        Ok(())
    }

    pub fn verify_anon(&self, token: &str) -> Option<String> {
        self.signer.verify(token::ANON, token)
    }
}

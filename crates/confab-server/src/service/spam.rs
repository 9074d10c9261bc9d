//! The outside spam check: an Akismet-compatible service asked about each new or edited text
//! of a forum that set `spam.akismet_key`.
//!
//! - Admission (`admission.rs`) asks [`Service::spam_check`] after the forum's own rules, with
//!   a budget of `[spam] timeout_ms`: `true` makes the text spam (reason
//!   [`spam::REASON_SPAM`]), `false` leaves the rules' verdict. No answer in time (or the
//!   breaker is open, or the key is refused): the forum's `when_unavailable` decides (`hold`:
//!   the comment waits for a moderator; `publish`: the rules' verdict stands) and a `spam.check`
//!   task checks it again in the background.
//! - `spam.check` (at least once; the effect once, since the verdict applies only while the
//!   comment still has the status admission gave it): spam moves the comment to spam, leaves
//!   the public page and the cache, and live clients are told as for a moderator's removal.
//! - A moderator approving a comment the checker called spam writes `spam.ham`
//!   (`submit-ham`); one marking a comment spam writes `spam.spam` (`submit-spam`); both in the
//!   status change's transaction (`outbox::status_tasks`).
//! - A dead checker trips a circuit breaker (`confab_core::spam::Breaker`): after
//!   `breaker_failures` failures in a row, posts stop calling it for `breaker_cooldown_secs`.
//!
//! The key is never logged and never shown in full.

use super::realtime::LiveEvent;
use super::{Caller, Service};
use crate::config::SpamConfig;
use async_trait::async_trait;
use confab_core::id::CommentId;
use confab_core::model::{Author, Comment, CommentStatus, Forum};
use confab_core::spam::{self, Answer, Breaker, Gate};
use confab_core::DomainError;
use confab_store::{NewTask, ReadFrom, SpamFacts, Task};
use confab_worker::{Handler, TaskError};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KIND_CHECK: &str = "spam.check";
pub const KIND_HAM: &str = "spam.ham";
pub const KIND_SPAM: &str = "spam.spam";

/// The checker's client and breaker (one per node).
pub struct SpamChecker {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
    background_timeout: Duration,
    breaker: Mutex<Breaker>,
}

/// What the text and its author are, as the checker is told.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpamSubject {
    pub author_name: String,
    pub author_email: String,
    pub author_url: String,
    pub reply: bool,
    /// The page's address (the thread's URL), else the request's referrer.
    pub permalink: String,
}

/// What admission's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SpamOutcome {
    Spam,
    Ham,
    /// No answer in time (or breaker open, or an error): `when_unavailable` applies, and the
    /// comment is checked again in the background.
    Unavailable,
}

fn facts_of(caller: &Caller, permalink: &str) -> SpamFacts {
    SpamFacts {
        user_ip: caller.ip.to_string(),
        user_agent: caller.hints.user_agent.clone().unwrap_or_default(),
        referrer: caller.hints.referrer.clone().unwrap_or_default(),
        permalink: permalink.chars().take(1000).collect(),
        lang: caller.hints.lang.clone().unwrap_or_default(),
    }
}

impl SpamChecker {
    pub fn new(c: &SpamConfig) -> Result<SpamChecker, DomainError> {
        let u = url::Url::parse(&c.akismet_url.replace("{key}", "key")).map_err(|_| {
            DomainError::invalid(format!(
                "[spam] akismet_url {:?} is not a URL",
                c.akismet_url
            ))
        })?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(DomainError::invalid(
                "[spam] akismet_url must be an http(s) URL",
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(
                c.background_timeout_ms.clamp(100, 60_000),
            ))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DomainError::invalid(format!("spam check client: {e}")))?;
        let mut url = c.akismet_url.trim().to_string();
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(SpamChecker {
            client,
            url,
            timeout: Duration::from_millis(c.timeout_ms.clamp(10, 60_000)),
            background_timeout: Duration::from_millis(c.background_timeout_ms.clamp(100, 120_000)),
            breaker: Mutex::new(Breaker::new(
                c.breaker_failures,
                Duration::from_secs(c.breaker_cooldown_secs.clamp(1, 3600)),
            )),
        })
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One call to `method` (`comment-check`, `submit-ham`, `submit-spam`) within `budget`;
    /// the status and body (at most 4 KiB read), or why not. The key never leaves this
    /// function in an error.
    async fn call(
        &self,
        key: &str,
        method: &str,
        fields: &[(&str, String)],
        budget: Duration,
    ) -> Result<(u16, String), String> {
        let base = self.url.replace("{key}", key);
        let url = format!("{base}{method}");
        let mut form: Vec<(&str, &str)> = vec![("api_key", key)];
        form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        let send = async {
            let resp = self
                .client
                .post(&url)
                .form(&form)
                .send()
                .await
                .map_err(describe)?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(describe)?;
            let body = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned();
            Ok((status, body))
        };
        match tokio::time::timeout(budget, send).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", budget.as_millis())),
        }
    }

    /// `comment-check` through the breaker: `Err` when it was not called or did not answer.
    async fn check(
        &self,
        key: &str,
        fields: &[(&str, String)],
        budget: Duration,
    ) -> Result<Answer, String> {
        let gate = self.breaker().gate(Instant::now());
        if gate == Gate::Skip {
            metrics::counter!("confab_spam_checks_total", "result" => "breaker_open").increment(1);
            return Err("the spam check's circuit breaker is open".into());
        }
        let res = self.call(key, "comment-check", fields, budget).await;
        let answer = match res {
            Ok((status, body)) => spam::read_answer(status, &body),
            Err(e) => Answer::Unavailable(e),
        };
        match &answer {
            Answer::Spam | Answer::Ham | Answer::InvalidKey => self.breaker().success(),
            Answer::Unavailable(_) => {
                if self.breaker().failure(Instant::now()) {
                    metrics::counter!("confab_spam_breaker_opens_total").increment(1);
                    tracing::warn!("spam check: circuit breaker opened after repeated failures");
                }
            }
        }
        let label = match &answer {
            Answer::Spam => "spam",
            Answer::Ham => "ham",
            Answer::InvalidKey => "invalid_key",
            Answer::Unavailable(_) => "unavailable",
        };
        metrics::counter!("confab_spam_checks_total", "result" => label).increment(1);
        match answer {
            Answer::Unavailable(e) => Err(e),
            a => Ok(a),
        }
    }

    /// Whether the breaker is open now (for tests and `/statz`).
    pub fn breaker_open(&self) -> bool {
        self.breaker().is_open(Instant::now())
    }
}

/// An error as logged: what failed, never the URL (which may hold the key).
fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "bad answer body"
    } else {
        "request failed"
    };
    let e = e.without_url();
    format!("{what}: {e}")
}

/// The form fields Akismet documents for a comment (all but `api_key`).
fn fields(
    blog: &str,
    facts: &SpamFacts,
    subject: &SpamSubject,
    content: &str,
    date_ms: i64,
) -> Vec<(&'static str, String)> {
    vec![
        ("blog", blog.to_string()),
        ("user_ip", facts.user_ip.clone()),
        ("user_agent", facts.user_agent.clone()),
        ("referrer", facts.referrer.clone()),
        ("permalink", facts.permalink.clone()),
        (
            "comment_type",
            if subject.reply { "reply" } else { "comment" }.to_string(),
        ),
        ("comment_author", subject.author_name.clone()),
        ("comment_author_email", subject.author_email.clone()),
        ("comment_author_url", subject.author_url.clone()),
        ("comment_content", content.to_string()),
        ("comment_date_gmt", confab_core::rfc3339(date_ms)),
        ("blog_lang", facts.lang.clone()),
    ]
}

impl Service {
    /// The site a forum's comments are on, as the checker's `blog`: its first allowed origin,
    /// else this server's public address.
    fn spam_blog(&self, forum: &Forum) -> String {
        forum
            .settings
            .allowed_origins
            .iter()
            .find(|o| !o.contains('*'))
            .cloned()
            .unwrap_or_else(|| self.config.mail.base_url(self.config.listen))
    }

    /// The request facts kept with a comment of `forum` (only when it has a spam check).
    pub(crate) fn spam_facts(
        &self,
        forum: &Forum,
        caller: &Caller,
        permalink: &str,
    ) -> Option<SpamFacts> {
        forum
            .settings
            .spam
            .akismet_key
            .as_ref()
            .map(|_| facts_of(caller, permalink))
    }

    /// Asks the checker about a text within the post's budget; `None`: the forum has no check.
    pub(crate) async fn spam_check(
        &self,
        forum: &Forum,
        caller: &Caller,
        subject: &SpamSubject,
        text: &str,
    ) -> Option<SpamOutcome> {
        let key = forum.settings.spam.akismet_key.as_deref()?;
        let facts = facts_of(caller, &subject.permalink);
        let f = fields(
            &self.spam_blog(forum),
            &facts,
            subject,
            text,
            confab_core::now_ms(),
        );
        Some(match self.spam.check(key, &f, self.spam.timeout).await {
            Ok(Answer::Spam) => SpamOutcome::Spam,
            Ok(Answer::Ham) => SpamOutcome::Ham,
            Ok(Answer::InvalidKey) => {
                tracing::warn!(forum = %forum.name, "spam check: the forum's key was refused (invalid)");
                SpamOutcome::Unavailable
            }
            Ok(Answer::Unavailable(_)) => SpamOutcome::Unavailable,
            Err(e) => {
                tracing::info!(forum = %forum.name, error = %e, "spam check unavailable: checking again in the background");
                SpamOutcome::Unavailable
            }
        })
    }

    /// The background re-check of a comment admission could not check, expected to still
    /// have `expect`.
    pub(crate) fn spam_recheck_task(
        forum: &Forum,
        caller: &Caller,
        subject: &SpamSubject,
        expect: CommentStatus,
    ) -> NewTask {
        let f = facts_of(caller, &subject.permalink);
        NewTask::new(
            KIND_CHECK,
            json!({
                "forum_id": forum.id.0.to_string(),
                "expect": expect.as_str(),
                "user_ip": f.user_ip, "user_agent": f.user_agent, "referrer": f.referrer,
                "permalink": f.permalink, "lang": f.lang,
                "reply": subject.reply,
            }),
        )
    }

    /// The tasks a moderator's status change writes for the checker: `submit-spam` for a
    /// comment marked spam, `submit-ham` for one approved out of spam (sent only if the
    /// checker called it spam).
    pub(crate) fn spam_feedback_tasks(
        forum: &Forum,
        id: CommentId,
        status: CommentStatus,
    ) -> Option<NewTask> {
        forum.settings.spam.akismet_key.as_ref()?;
        let payload = json!({ "comment_id": id.0.to_string() });
        match status {
            CommentStatus::Spam => {
                Some(NewTask::new(KIND_SPAM, payload).when(confab_store::TaskWhen::Changed(id)))
            }
            CommentStatus::Approved => Some(
                NewTask::new(KIND_HAM, payload)
                    .when(confab_store::TaskWhen::ChangedFrom(id, CommentStatus::Spam)),
            ),
            _ => None,
        }
    }

    /// The subject of a stored comment (for background calls).
    async fn spam_subject_of(
        &self,
        c: &Comment,
        permalink: String,
    ) -> Result<SpamSubject, DomainError> {
        let (author_name, author_email, author_url) = match &c.author {
            Author::Guest { name, email, url } => (
                name.clone(),
                email.clone().unwrap_or_default(),
                url.clone().unwrap_or_default(),
            ),
            Author::Account(id) => match self.account(*id).await? {
                Some(a) => (
                    a.display_name.clone(),
                    a.email.clone().unwrap_or_default(),
                    String::new(),
                ),
                None => (String::new(), String::new(), String::new()),
            },
        };
        Ok(SpamSubject {
            author_name,
            author_email,
            author_url,
            reply: c.parent_id.is_some(),
            permalink,
        })
    }
}

/// The worker's handler of the spam check's tasks.
pub struct SpamTasks(pub Arc<Service>);

fn retry(e: DomainError) -> TaskError {
    TaskError::Retry(e.reason().to_string())
}

fn payload_str(p: &serde_json::Value, k: &str) -> String {
    p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
}

#[async_trait]
impl Handler for SpamTasks {
    async fn run(&self, task: &Task) -> Result<(), TaskError> {
        let svc = &self.0;
        let p = task.payload_json();
        let id = p
            .get("comment_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<i64>().ok())
            .map(CommentId)
            .ok_or_else(|| TaskError::Park("payload has no comment_id".into()))?;
        let Some(c) = svc
            .store
            .comment(id, ReadFrom::Primary)
            .await
            .map_err(retry)?
        else {
            return Ok(());
        };
        let Some(forum) = svc.forums.by_id(c.forum_id) else {
            return Ok(());
        };
        // The forum turned its check off meanwhile: nothing to do.
        let Some(key) = forum.settings.spam.akismet_key.clone() else {
            return Ok(());
        };
        let budget = svc.spam.background_timeout;
        let blog = svc.spam_blog(&forum);
        match task.kind.as_str() {
            KIND_CHECK => {
                let expect = CommentStatus::parse(&payload_str(&p, "expect"))
                    .ok_or_else(|| TaskError::Park("payload has no expected status".into()))?;
                if c.status != expect {
                    return Ok(()); // a moderator (or an edit) decided meanwhile
                }
                let facts = SpamFacts {
                    user_ip: payload_str(&p, "user_ip"),
                    user_agent: payload_str(&p, "user_agent"),
                    referrer: payload_str(&p, "referrer"),
                    permalink: payload_str(&p, "permalink"),
                    lang: payload_str(&p, "lang"),
                };
                let subject = svc
                    .spam_subject_of(&c, facts.permalink.clone())
                    .await
                    .map_err(retry)?;
                let f = fields(&blog, &facts, &subject, &c.body_md, c.created_at);
                match svc.spam.check(&key, &f, budget).await {
                    Ok(Answer::Spam) => svc.spam_late_verdict(&forum, &c, expect).await,
                    Ok(Answer::Ham) => Ok(()),
                    Ok(Answer::InvalidKey) => Err(TaskError::Park(
                        "the forum's spam check key was refused (invalid)".into(),
                    )),
                    Ok(Answer::Unavailable(e)) | Err(e) => Err(TaskError::Retry(e)),
                }
            }
            KIND_HAM | KIND_SPAM => {
                let ham = task.kind == KIND_HAM;
                // Only a comment the checker called spam is reported as its mistake.
                if ham && c.held_reason.as_deref() != Some(spam::REASON_SPAM) {
                    return Ok(());
                }
                let effect = "submitted";
                let done = svc.store.task_effects(task.id).await.map_err(retry)?;
                if done.iter().any(|e| e == effect) {
                    return Ok(());
                }
                let facts = svc
                    .store
                    .spam_facts(c.id)
                    .await
                    .map_err(retry)?
                    .unwrap_or_default();
                let subject = svc
                    .spam_subject_of(&c, facts.permalink.clone())
                    .await
                    .map_err(retry)?;
                let f = fields(&blog, &facts, &subject, &c.body_md, c.created_at);
                let method = if ham { "submit-ham" } else { "submit-spam" };
                match svc.spam.call(&key, method, &f, budget).await {
                    Ok((s, _)) if (200..300).contains(&s) => {
                        svc.store
                            .record_task_effect(task.id, effect)
                            .await
                            .map_err(retry)?;
                        Ok(())
                    }
                    Ok((s, _)) => Err(TaskError::Retry(format!("{method}: status {s}"))),
                    Err(e) => Err(TaskError::Retry(format!("{method}: {e}"))),
                }
            }
            other => Err(TaskError::Park(format!("unknown task kind {other}"))),
        }
    }
}

impl Service {
    /// The checker said spam after the comment was admitted: it becomes spam (if nobody
    /// changed it meanwhile), leaves the public page and caches, and live clients are told.
    async fn spam_late_verdict(
        self: &Arc<Self>,
        forum: &Arc<Forum>,
        c: &Comment,
        expect: CommentStatus,
    ) -> Result<(), TaskError> {
        let w = self
            .store
            .spam_verdict(forum, c.id, expect, spam::REASON_SPAM)
            .await
            .map_err(retry)?;
        let Some(change) = w.value else {
            return Ok(());
        };
        tracing::info!(forum = %forum.name, comment = %c.id, "spam check: moved to spam by the background re-check");
        let t = self
            .touch_thread(forum, c.thread_id, w.at)
            .await
            .map_err(retry)?;
        if let (Some(t), Some(seq)) = (t, change.thread_seq) {
            let ev = if change.old == CommentStatus::Approved {
                LiveEvent::Removed {
                    thread_seq: seq,
                    id: c.id,
                }
            } else {
                LiveEvent::Changed { thread_seq: seq }
            };
            self.publish(forum.id, &t.ident, ev);
        }
        Ok(())
    }

    /// Asks for the background re-check of an edit the checker could not judge in time.
    /// Written after the edit's commit (an edit writes no tasks): if this write fails, the
    /// edit stands as admitted and the failure is logged.
    pub(crate) async fn spam_recheck_edit(
        &self,
        forum: &Forum,
        caller: &Caller,
        subject: &SpamSubject,
        c: &Comment,
    ) {
        let t = Self::spam_recheck_task(forum, caller, subject, c.status);
        let payload = confab_store::rules::comment_task_payload(&t, c.id);
        let t = NewTask { payload, ..t };
        match self.store.enqueue_task(forum.shard, t).await {
            Ok(()) => self.wake_worker(),
            Err(e) => {
                tracing::error!(forum = %forum.name, comment = %c.id, error = %e, "could not queue the spam re-check of an edit")
            }
        }
    }

    /// Whether this node's spam check breaker is open.
    pub fn spam_breaker_open(&self) -> bool {
        self.spam.breaker_open()
    }
}

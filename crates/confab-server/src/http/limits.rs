//! Per-IP, per-account and per-login-name rate limits (GCRA via governor, in memory per node).

use super::error::ApiError;
use crate::config::RateLimit;
use crate::service::Caller;
use confab_core::{DomainError, ErrorCode};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;

pub struct Limiters {
    enabled: bool,
    writes_ip: DefaultKeyedRateLimiter<IpAddr>,
    writes_account: DefaultKeyedRateLimiter<i64>,
    auth_ip: DefaultKeyedRateLimiter<IpAddr>,
    login_name: DefaultKeyedRateLimiter<String>,
    votes_ip: DefaultKeyedRateLimiter<IpAddr>,
    votes_account: DefaultKeyedRateLimiter<i64>,
    previews_ip: DefaultKeyedRateLimiter<IpAddr>,
    previews_account: DefaultKeyedRateLimiter<i64>,
    images_ip: DefaultKeyedRateLimiter<IpAddr>,
    images_account: DefaultKeyedRateLimiter<i64>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

fn per_hour(n: u32) -> Quota {
    Quota::per_hour(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

fn limited(wait_ms: u128) -> ApiError {
    let secs = (wait_ms / 1000 + 1) as u64;
    ApiError {
        err: DomainError::new(
            ErrorCode::RateLimited,
            format!("too many requests; try again in {secs} s"),
        ),
        retry_after: Some(secs),
    }
}

impl Limiters {
    pub fn new(c: &RateLimit) -> Limiters {
        Limiters {
            enabled: c.enabled,
            writes_ip: DefaultKeyedRateLimiter::keyed(per_minute(c.writes_per_minute_ip)),
            writes_account: DefaultKeyedRateLimiter::keyed(per_minute(c.writes_per_minute_account)),
            auth_ip: DefaultKeyedRateLimiter::keyed(per_minute(c.auth_per_minute_ip)),
            login_name: DefaultKeyedRateLimiter::keyed(per_minute(c.logins_per_minute_account)),
            votes_ip: DefaultKeyedRateLimiter::keyed(per_hour(c.votes_per_hour_ip)),
            votes_account: DefaultKeyedRateLimiter::keyed(per_hour(c.votes_per_hour_account)),
            previews_ip: DefaultKeyedRateLimiter::keyed(per_minute(c.previews_per_minute_ip)),
            previews_account: DefaultKeyedRateLimiter::keyed(per_minute(
                c.previews_per_minute_account,
            )),
            images_ip: DefaultKeyedRateLimiter::keyed(per_hour(c.images_per_hour_ip)),
            images_account: DefaultKeyedRateLimiter::keyed(per_hour(c.images_per_hour_account)),
        }
    }

    /// Takes one cell of `key`'s allowance, or says when to come back.
    /// `limit` names the allowance in the refusals counter of `/metrics`.
    fn take<K: Clone + Eq + std::hash::Hash>(
        &self,
        limit: &'static str,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let now = DefaultClock::default().now();
        limiter.check_key(key).map_err(|nu| {
            super::metrics::rate_limited(limit);
            limited(nu.wait_time_from(now).as_millis())
        })
    }

    /// Signed-in callers are limited per account (an office behind one NAT is not one
    /// person); guests per IP.
    fn take_for(
        &self,
        limit: &'static str,
        per_ip: &DefaultKeyedRateLimiter<IpAddr>,
        per_account: &DefaultKeyedRateLimiter<i64>,
        caller: &Caller,
    ) -> Result<(), ApiError> {
        match caller.account {
            Some(a) => self.take(limit, per_account, &a.0),
            None => self.take(limit, per_ip, &caller.ip),
        }
    }

    /// A comment, edit, vote or flag.
    pub fn check_write(&self, caller: &Caller) -> Result<(), ApiError> {
        self.take_for("writes", &self.writes_ip, &self.writes_account, caller)
    }

    /// A vote or flag (besides [`Limiters::check_write`]).
    pub fn check_vote(&self, caller: &Caller) -> Result<(), ApiError> {
        self.take_for("votes", &self.votes_ip, &self.votes_account, caller)
    }

    /// A preview: its own allowance, not a write's.
    pub fn check_preview(&self, caller: &Caller) -> Result<(), ApiError> {
        self.take_for(
            "previews",
            &self.previews_ip,
            &self.previews_account,
            caller,
        )
    }

    /// A picture upload (besides [`Limiters::check_write`]).
    pub fn check_image(&self, caller: &Caller) -> Result<(), ApiError> {
        self.take_for("images", &self.images_ip, &self.images_account, caller)
    }

    /// A sign-up or log-in attempt.
    pub fn check_auth(&self, caller: &Caller) -> Result<(), ApiError> {
        self.take("auth", &self.auth_ip, &caller.ip)
    }

    /// A log-in attempt for `login` (case-folded, so spelling variants share the allowance).
    pub fn check_login(&self, login: &str) -> Result<(), ApiError> {
        let key: String = login.trim().to_lowercase().chars().take(254).collect();
        self.take("login_name", &self.login_name, &key)
    }

    /// Drops state of keys that are back to full allowance (called periodically).
    pub fn prune(&self) {
        self.writes_ip.retain_recent();
        self.writes_account.retain_recent();
        self.auth_ip.retain_recent();
        self.login_name.retain_recent();
        self.votes_ip.retain_recent();
        self.images_ip.retain_recent();
        self.images_account.retain_recent();
        self.votes_account.retain_recent();
        self.previews_ip.retain_recent();
        self.previews_account.retain_recent();
    }
}

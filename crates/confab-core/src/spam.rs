//! The outside spam check (an Akismet-compatible service): a forum's settings for it, how its
//! key is shown, what its answers mean, the reasons moderators read, and the circuit breaker
//! that stops a dead checker from slowing posts down. Pure: the server makes the calls.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Longest API key a forum may set.
pub const MAX_KEY_CHARS: usize = 100;

/// What a comment gets when the checker cannot answer in time (or its breaker is open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WhenUnavailable {
    /// Waits for a moderator (the background re-check moves it to spam if the checker says so).
    #[default]
    Hold,
    /// Published at once; moved to spam if the background re-check says spam.
    Publish,
}

/// A forum's spam check, as stored (and shown, with the key masked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpamSettings {
    /// The checker's API key (none: no check). Shown masked (`********` and its last 3
    /// characters); never logged.
    #[serde(default)]
    pub akismet_key: Option<String>,
    /// What a comment gets when the checker does not answer within the post's budget.
    #[serde(default)]
    pub when_unavailable: WhenUnavailable,
}

/// A change to a forum's spam check: what is left out stays. `akismet_key`: a new key; `""`
/// or `null` removes it; the masked key as shown keeps the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpamPatch {
    #[serde(default, deserialize_with = "nullable_string")]
    #[schema(value_type = Option<String>, nullable)]
    pub akismet_key: Option<Option<String>>,
    pub when_unavailable: Option<WhenUnavailable>,
}

fn nullable_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

const MASK: &str = "********";

/// A key as answers show it: never in full.
pub fn mask_key(key: &str) -> String {
    let n = key.chars().count();
    if n <= 6 {
        return MASK.to_string();
    }
    let tail: String = key.chars().skip(n - 3).collect();
    format!("{MASK}{tail}")
}

impl SpamSettings {
    /// The settings as answers show them (the key masked).
    pub fn masked(&self) -> SpamSettings {
        SpamSettings {
            akismet_key: self.akismet_key.as_deref().map(mask_key),
            when_unavailable: self.when_unavailable,
        }
    }

    /// Applies a change (checked: a key is 1-100 letters, digits, `-` or `_`).
    pub fn apply(&self, patch: &SpamPatch) -> Result<SpamSettings, String> {
        let mut out = self.clone();
        if let Some(w) = patch.when_unavailable {
            out.when_unavailable = w;
        }
        match patch
            .akismet_key
            .as_ref()
            .map(|k| k.as_deref().map(str::trim))
        {
            None => {}
            Some(None) | Some(Some("")) => out.akismet_key = None,
            Some(Some(k)) => {
                let keeps = self
                    .akismet_key
                    .as_deref()
                    .is_some_and(|old| mask_key(old) == k);
                if !keeps {
                    if k.chars().count() > MAX_KEY_CHARS
                        || !k
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    {
                        return Err(format!(
                            "spam.akismet_key must be 1-{MAX_KEY_CHARS} letters, digits, '-' or '_'"
                        ));
                    }
                    out.akismet_key = Some(k.to_string());
                }
            }
        }
        Ok(out)
    }
}

/// Prefix of every reason the spam check gives.
pub const REASON_PREFIX: &str = "spam check:";
/// A comment the checker called spam.
pub const REASON_SPAM: &str = "spam check: Akismet said spam";
/// A comment held because the checker did not answer in time.
pub const REASON_UNAVAILABLE: &str = "held: spam check unavailable (re-checking in the background)";

/// What the checker answered to `comment-check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Spam,
    Ham,
    /// The key was refused (`invalid`): the forum's setting is wrong, retrying cannot help.
    InvalidKey,
    /// Anything else (an error status, an unexpected body): the checker is unavailable.
    Unavailable(String),
}

/// Reads a `comment-check` answer (status and body).
pub fn read_answer(status: u16, body: &str) -> Answer {
    let b = body.trim();
    if !(200..300).contains(&status) {
        return Answer::Unavailable(format!("status {status}"));
    }
    match b {
        "true" => Answer::Spam,
        "false" => Answer::Ham,
        "invalid" => Answer::InvalidKey,
        _ => Answer::Unavailable(format!(
            "unexpected answer {:?}",
            b.chars().take(60).collect::<String>()
        )),
    }
}

/// A circuit breaker: after `limit` consecutive failures (errors or timeouts) calls stop for
/// `cooldown`; then one call at a time is let through as a trial, and a success closes it.
#[derive(Debug, Clone)]
pub struct Breaker {
    limit: u32,
    cooldown: Duration,
    failures: u32,
    open_until: Option<Instant>,
    trial: bool,
}

/// Whether a call may be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Closed: call.
    Call,
    /// Half-open: this call is the trial.
    Trial,
    /// Open: don't call.
    Skip,
}

impl Breaker {
    pub fn new(limit: u32, cooldown: Duration) -> Breaker {
        Breaker {
            limit: limit.max(1),
            cooldown,
            failures: 0,
            open_until: None,
            trial: false,
        }
    }

    /// Whether to call at `now`.
    pub fn gate(&mut self, now: Instant) -> Gate {
        match self.open_until {
            None => Gate::Call,
            Some(t) if now < t => Gate::Skip,
            Some(_) if self.trial => Gate::Skip,
            Some(_) => {
                self.trial = true;
                Gate::Trial
            }
        }
    }

    /// The call answered.
    pub fn success(&mut self) {
        self.failures = 0;
        self.open_until = None;
        self.trial = false;
    }

    /// The call failed or timed out; returns true when this failure opened the breaker.
    pub fn failure(&mut self, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        let was_open = self.open_until.is_some();
        if self.trial || self.failures >= self.limit {
            self.trial = false;
            self.open_until = Some(now + self.cooldown);
            return !was_open;
        }
        false
    }

    pub fn is_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|t| now < t || self.trial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_limit_and_cools_down() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        assert_eq!(b.gate(t0), Gate::Call);
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        assert_eq!(b.gate(t0), Gate::Call);
        assert!(b.failure(t0), "the third failure opens it");
        assert!(b.is_open(t0));
        assert_eq!(b.gate(t0 + Duration::from_secs(5)), Gate::Skip);
        // Cool-down over: one trial, others still skip while it runs.
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(b.gate(t1), Gate::Trial);
        assert_eq!(b.gate(t1), Gate::Skip);
        // The trial fails: open again for a whole cool-down (not a new opening).
        assert!(!b.failure(t1));
        assert_eq!(b.gate(t1 + Duration::from_secs(5)), Gate::Skip);
        let t2 = t1 + Duration::from_secs(11);
        assert_eq!(b.gate(t2), Gate::Trial);
        b.success();
        assert!(!b.is_open(t2));
        assert_eq!(b.gate(t2), Gate::Call);
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, Duration::from_secs(1));
        b.failure(t0);
        b.success();
        assert!(!b.failure(t0));
        assert_eq!(b.gate(t0), Gate::Call);
        assert!(b.failure(t0));
        assert_eq!(b.gate(t0), Gate::Skip);
    }

    #[test]
    fn answers() {
        assert_eq!(read_answer(200, "true"), Answer::Spam);
        assert_eq!(read_answer(200, "false\n"), Answer::Ham);
        assert_eq!(read_answer(200, "invalid"), Answer::InvalidKey);
        assert!(matches!(read_answer(500, "false"), Answer::Unavailable(_)));
        assert!(matches!(read_answer(200, "<html>"), Answer::Unavailable(_)));
    }

    #[test]
    fn keys_are_masked_and_kept() {
        assert_eq!(mask_key("abcdef123456"), "********456");
        assert_eq!(mask_key("abc"), "********");
        let s = SpamSettings {
            akismet_key: Some("abcdef123456".into()),
            when_unavailable: WhenUnavailable::Hold,
        };
        assert_eq!(s.masked().akismet_key.as_deref(), Some("********456"));
        // The masked key sent back keeps the stored one.
        let back = SpamPatch {
            akismet_key: Some(Some("********456".into())),
            when_unavailable: Some(WhenUnavailable::Publish),
        };
        let t = s.apply(&back).unwrap();
        assert_eq!(t.akismet_key.as_deref(), Some("abcdef123456"));
        assert_eq!(t.when_unavailable, WhenUnavailable::Publish);
        let gone = s
            .apply(&SpamPatch {
                akismet_key: Some(None),
                when_unavailable: None,
            })
            .unwrap();
        assert_eq!(gone.akismet_key, None);
        assert!(s
            .apply(&SpamPatch {
                akismet_key: Some(Some("bad key!".into())),
                when_unavailable: None,
            })
            .is_err());
    }
}

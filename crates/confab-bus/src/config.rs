//! Bus limits, and the channel-name glob patterns that pick a channel's capacity.
//!
//! The same limits apply to both backends so the conformance suite can hold them to one contract.
//! The Redis backend evaluates capacity patterns inside a Lua script (so `group_send` is one round
//! trip), which is why a glob also knows how to become an anchored Lua pattern.

use std::time::Duration;

/// Limits and tuning for a bus. `Default` gives the numbers ARCHITECTURE.md ("The bus") states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// Messages a channel holds before `send` fails with `ChannelFull` (unless a pattern matches).
    pub capacity: usize,
    /// `(glob, capacity)` overrides, first match wins. `*` matches any run of characters, `?` one.
    pub channel_capacities: Vec<(String, usize)>,
    /// A message not received within this long is dropped, never delivered.
    pub expiry: Duration,
    /// A group member not renewed (`group_add`) within this long leaves the group.
    pub group_expiry: Duration,
    /// Largest payload accepted by `send`, `group_send` and `publish`.
    pub max_message_size: usize,
    /// Per-topic ring buffer for pub/sub. A subscriber that falls this far behind is told it
    /// lagged (and skips ahead) instead of making the publisher wait or memory grow.
    pub subscriber_buffer: usize,
    /// Redis only: every key the bus touches starts with this, so `flush` can find them and
    /// several deployments can share one Redis.
    pub redis_key_prefix: String,
    /// Redis only: upper bound on any single Redis call (and on connecting), after which the
    /// operation fails with `Unavailable` rather than hanging.
    pub redis_timeout: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            capacity: 100,
            channel_capacities: Vec::new(),
            expiry: Duration::from_secs(60),
            group_expiry: Duration::from_secs(86_400),
            max_message_size: 64 * 1024,
            subscriber_buffer: 1024,
            redis_key_prefix: "confab:bus:".to_string(),
            redis_timeout: Duration::from_secs(1),
        }
    }
}

impl BusConfig {
    /// Builder-style capacity override, e.g. `.with_capacity("thread.*", 1000)`.
    pub fn with_capacity(mut self, pattern: &str, capacity: usize) -> Self {
        self.channel_capacities
            .push((pattern.to_string(), capacity));
        self
    }

    /// The capacity of `channel`: the first matching pattern's, else the default.
    pub fn capacity_for(&self, channel: &str) -> usize {
        self.channel_capacities
            .iter()
            .find(|(pattern, _)| glob_match(pattern.as_bytes(), channel.as_bytes()))
            .map_or(self.capacity, |(_, cap)| *cap)
    }
}

/// Glob match with `*` (any run, possibly empty) and `?` (exactly one byte); everything else is
/// literal. Iterative with single-star backtracking, so it is linear-ish and cannot blow up.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None; // (pattern index after '*', text index it matched up to)
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last '*' swallow one more byte and retry from there.
                Some((sp, st)) => {
                    p = sp;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The same glob as an anchored Lua pattern (`%`-escapes Lua's magic characters).
pub(crate) fn glob_to_lua(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    out.push('^');
    for c in pattern.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '^' | '$' | '(' | ')' | '%' | '.' | '[' | ']' | '+' | '-' => {
                out.push('%');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('$');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(m("thread.*", "thread.42"));
        assert!(m("thread.*", "thread."));
        assert!(!m("thread.*", "threads.42"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*!*", "reply!abc"));
        assert!(m("exact", "exact"));
        assert!(!m("exact", "exactly"));
    }

    #[test]
    fn capacity_first_match_wins() {
        let c = BusConfig::default()
            .with_capacity("thread.*", 1000)
            .with_capacity("*", 7);
        assert_eq!(c.capacity_for("thread.1"), 1000);
        assert_eq!(c.capacity_for("other"), 7);
        assert_eq!(BusConfig::default().capacity_for("x"), 100);
    }

    #[test]
    fn lua_patterns_escape_magic() {
        assert_eq!(glob_to_lua("thread.*"), "^thread%..*$");
        assert_eq!(glob_to_lua("a-b?%"), "^a%-b.%%$");
    }
}

//! Redis key layout and the Lua scripts that keep multi-step operations atomic.
//!
//! Keys (all under `BusConfig::redis_key_prefix`, `P` below):
//! - `P ch:<channel>`  a LIST, oldest message at the head. Each entry is a 16-digit deadline in
//!   Redis-clock milliseconds followed by the payload bytes. The key itself gets a PEXPIRE of
//!   expiry + 1 s on every push, so an abandoned channel disappears on its own.
//! - `P gr:<group>`    a ZSET of member channel names scored by membership deadline (ms).
//! - `P ps:<topic>`    a pub/sub channel (no key; PUBLISH/SUBSCRIBE only).
//! - `P wake:<node>`   a LIST this node's blocking receiver also waits on, used to interrupt its
//!   BLMPOP when the set of watched channels changes. Tokens persist until popped, so a wake sent
//!   before the BLMPOP arrives at Redis is not lost (unlike CLIENT UNBLOCK).
//!
//! Deadlines come from Redis `TIME`, one clock for every node, so capacity checks and expiry
//! agree across nodes. Because every message in a channel has the same lifetime, deadlines are
//! non-decreasing along a list and expired entries are always at its head.
//!
//! The scripts touch keys not declared in KEYS (group_send fans out to member channels), so the
//! layout needs a single Redis (or a primary with replicas), not Redis Cluster, like
//! channels_redis.

use std::sync::LazyLock;

use redis::Script;

/// Width of the deadline prefix on every list entry.
pub(crate) const DEADLINE_DIGITS: usize = 16;

/// Shared helpers: `now_ms()` and `push(key, entry, cap, ttl_ms)` (reclaims expired heads only
/// when full, so the common path is LLEN + RPUSH + PEXPIRE).
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function push(key, entry, cap, ttl_ms, now)
  local n = redis.call('LLEN', key)
  if n >= cap then
    while n > 0 do
      local head = redis.call('LINDEX', key, 0)
      if tonumber(string.sub(head, 1, 16)) > now then break end
      redis.call('LPOP', key)
      n = n - 1
    end
    if n >= cap then return 0 end
  end
  redis.call('RPUSH', key, entry)
  redis.call('PEXPIRE', key, ttl_ms + 1000)
  return 1
end
local function entry(now, ttl_ms, payload)
  return string.format('%016.0f', now + ttl_ms) .. payload
end
"#;

/// KEYS[1] channel list; ARGV: payload, capacity, expiry_ms. Returns 1 queued, 0 full.
pub(crate) static SEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local now = now_ms()
local ttl = tonumber(ARGV[3])
return push(KEYS[1], entry(now, ttl, ARGV[1]), tonumber(ARGV[2]), ttl, now)"
    ))
});

/// KEYS[1] channel list. Pops past expired entries; returns the first live payload or nil.
pub(crate) static POP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local now = now_ms()
while true do
  local e = redis.call('LPOP', KEYS[1])
  if not e then return false end
  if tonumber(string.sub(e, 1, 16)) > now then return string.sub(e, 17) end
end"
    ))
});

/// KEYS[1] group zset; ARGV: channel, group_expiry_ms. Adds or renews, prunes expired members.
pub(crate) static GROUP_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local now = now_ms()
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return 1"
    ))
});

/// KEYS[1] group zset; ARGV: payload, expiry_ms, channel key prefix, default capacity, then
/// (anchored Lua pattern, capacity) pairs, first match wins. One round trip for the whole fan-out;
/// full members are skipped. Returns how many members got the message.
pub(crate) static GROUP_SEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local ttl = tonumber(ARGV[2])
local e = entry(now, ttl, ARGV[1])
local sent = 0
for _, ch in ipairs(members) do
  local cap = tonumber(ARGV[4])
  for i = 5, #ARGV - 1, 2 do
    if string.match(ch, ARGV[i]) then cap = tonumber(ARGV[i + 1]); break end
  end
  sent = sent + push(ARGV[3] .. ch, e, cap, ttl, now)
end
return sent"
    ))
});

/// Splits a list entry into (deadline in Redis-clock ms, payload) without copying the payload.
pub(crate) fn parse_entry(entry: bytes::Bytes) -> Option<(u64, bytes::Bytes)> {
    let digits = std::str::from_utf8(entry.get(..DEADLINE_DIGITS)?).ok()?;
    let deadline = digits.parse().ok()?;
    Some((deadline, entry.slice(DEADLINE_DIGITS..)))
}

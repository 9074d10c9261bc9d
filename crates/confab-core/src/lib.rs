//! Confab's domain: the types every other crate speaks, with no I/O.
//!
//! Layout:
//! - [`id`]: 64-bit time-ordered ids that carry their logical shard.
//! - [`ident`]: thread identifier normalization (URLs with tracking noise map to one thread).
//! - [`input`]: parsed user input (`CommentBody`, `AuthorName`, ...); a value that exists is valid.
//! - [`bans`]: what a ban matches, for how long, how it is shown and what the banned are told.
//! - [`model`]: forums, threads, comments, accounts, bans, as stored and as shown.
//! - [`mention`]: `@name` mentions: where they are, how names compare, how many notify.
//! - [`modrules`]: moderation rules that need no outside service (word lists, link limit, ...).
//! - [`reaction`]: the fixed set of emoji reactions and the counts kept on a row.
//! - [`render`]: markdown to sanitized HTML, done once at write time.
//! - [`challenge`]: the proof-of-work challenge guests solve before posting (ALTCHA's scheme).
//! - [`cursor`]: sort orders and opaque keyset cursors for paging.
//! - [`sign`]: HMAC-signed tokens (sessions, edit tokens, voter tokens), checked in constant time.
//! - [`sso`]: the tokens a forum's own site signs its readers in with (`remote_auth_s3`, HS256 JWT).
//! - [`secret`]: [`secret::Secret`], every secret of the configuration, printed only redacted.
//! - [`switch`]: feature switches (names, records, the rule that evaluates them).
//! - [`error`]: the domain error every layer maps to a status and a stable code.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod bans;
pub mod challenge;
pub mod cursor;
pub mod error;
pub mod id;
pub mod ident;
pub mod input;
pub mod media;
pub mod mention;
pub mod model;
pub mod modrules;
pub mod reaction;
pub mod render;
pub mod secret;
pub mod sign;
pub mod spam;
pub mod sso;
pub mod switch;

pub use error::{DomainError, ErrorCode};

/// Milliseconds since the Unix epoch, the one clock every record uses.
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats Unix milliseconds as RFC 3339 UTC with millisecond precision
/// (`2026-11-22T10:04:05.123Z`), the timestamp form of every API response.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(crate::id::EPOCH_MS),
            "2026-01-01T00:00:00.000Z"
        );
        assert_eq!(
            super::rfc3339(1_709_210_096_789),
            "2024-02-29T12:34:56.789Z"
        );
    }
}

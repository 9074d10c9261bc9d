//! Single sign-on from a forum's own site: the two token formats a site signs with the forum's
//! SSO secret, read and checked here (no I/O).
//!
//! - `remote_auth_s3`, as Disqus defines it: `MESSAGE SIG TIMESTAMP`, where `MESSAGE` is the
//!   base64 of a JSON object `{id, username, email, avatar?, url?}` (padded or not), `SIG` the
//!   hex of `HMAC-SHA1(secret, MESSAGE + " " + TIMESTAMP)` and `TIMESTAMP` Unix seconds. A
//!   message of `{}` means the reader is signed out at the site.
//! - A JWT signed with HS256 (and nothing else: `none` and every other algorithm are refused
//!   before the signature is looked at), with `sub`, `name` and `exp` required and `email`,
//!   `picture` optional.
//!
//! Every signature is checked with `Mac::verify_slice`, which compares in constant time; a
//! token is bounded ([`MAX_TOKEN_BYTES`]) before anything is decoded. The secret's `Debug`
//! never prints it.

use crate::id::ForumId;
use crate::{DomainError, ErrorCode};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::Sha256;

/// The longest token read (either format); longer ones are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// A `remote_auth_s3` older than this (seconds) is refused.
pub const MAX_AGE_SECS: i64 = 2 * 3600;
/// A token dated more than this (seconds) ahead of the server's clock is refused.
pub const MAX_AHEAD_SECS: i64 = 5 * 60;
/// The longest site user id kept (bytes).
pub const MAX_ID_BYTES: usize = 128;
/// The longest avatar or profile URL kept (bytes).
pub const MAX_URL_BYTES: usize = 2048;

/// The password hash of an SSO account: no password verifies against it (it is not a PHC
/// string), so an SSO account signs in only through its forum's site.
pub const NO_PASSWORD: &str = "!sso";

/// The username of the account of `site_user` on `forum`: `sso~FORUM~HASH`, where HASH is the
/// first 128 bits (hex) of the SHA-256 of the site's user id. Each forum's users are accounts of
/// their own (the same site user id on another forum is another account), case is kept apart
/// (`Ann` and `ann` are two users even where usernames compare folded), and no sign-up can take
/// the name (`~` is not a username character).
pub fn account_username(forum: ForumId, site_user: &str) -> String {
    use sha2::Digest;
    let h = Sha256::digest(site_user.as_bytes());
    format!("sso~{}~{}", forum.0, hex(&h[..16]))
}

/// Whether `username` is the name of an SSO account of `forum`.
pub fn is_account_of(username: &str, forum: ForumId) -> bool {
    username
        .strip_prefix("sso~")
        .and_then(|r| r.split_once('~'))
        .is_some_and(|(f, _)| f == forum.0.to_string())
}

/// Base64 that takes the message with or without its `=` padding (sites differ).
const STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A forum's SSO secret: 16 to 256 printable ASCII characters, no spaces. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SsoSecret(String);

impl std::fmt::Debug for SsoSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SsoSecret(***)")
    }
}

impl SsoSecret {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = (16..=256).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(DomainError::invalid(
                "the SSO secret must be 16-256 printable ASCII characters without spaces",
            ));
        }
        Ok(SsoSecret(raw.to_string()))
    }
    /// The secret itself, for storage only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    fn key(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Who the site says the reader is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoUser {
    /// The site's user id (1..=128 bytes).
    pub id: String,
    /// Display name as the site sent it (checked against the forum's name rules by the caller).
    pub name: String,
    pub email: Option<String>,
    /// Avatar image URL.
    pub avatar: Option<String>,
    /// Profile URL.
    pub url: Option<String>,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoOutcome {
    SignedIn(SsoUser),
    /// The site says nobody is signed in (`remote_auth_s3` with `{}`).
    SignedOut,
}

fn err(code: ErrorCode, message: &str) -> DomainError {
    DomainError::new(code, message)
}

fn malformed(what: &str) -> DomainError {
    err(ErrorCode::MalformedToken, what)
}

fn check_len(token: &str) -> Result<(), DomainError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed(&format!(
            "the SSO token is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_time(ts: i64, now_secs: i64, max_age: Option<i64>) -> Result<(), DomainError> {
    if ts > now_secs.saturating_add(MAX_AHEAD_SECS) {
        return Err(err(
            ErrorCode::TokenFromFuture,
            "the SSO token is dated more than 5 minutes ahead (check the site's clock)",
        ));
    }
    if let Some(age) = max_age {
        if ts < now_secs.saturating_sub(age) {
            return Err(err(
                ErrorCode::TokenExpired,
                "the SSO token is older than 2 hours",
            ));
        }
    }
    Ok(())
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_sha1(secret: &SsoSecret) -> Hmac<Sha1> {
    match Hmac::<Sha1>::new_from_slice(secret.key()) {
        Ok(m) => m,
        Err(_) => unreachable_mac(),
    }
}

fn hmac_sha256(secret: &SsoSecret) -> Hmac<Sha256> {
    match Hmac::<Sha256>::new_from_slice(secret.key()) {
        Ok(m) => m,
        Err(_) => unreachable_mac(),
    }
}

#[cold]
fn unreachable_mac() -> ! {
    // new_from_slice only fails for MACs with fixed key sizes, which HMAC is not.
    std::process::abort()
}

/// An optional string field: absent, null or blank is none; anything but a string is refused.
fn opt_str(o: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>, DomainError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) => Err(malformed(&format!("{key} is longer than {max} bytes"))),
        Some(_) => Err(malformed(&format!("{key} must be a string"))),
    }
}

/// A required string field (a number is taken for ids: Disqus sites often send one).
fn req_str(
    o: &Map<String, Value>,
    key: &str,
    max: usize,
    number_ok: bool,
) -> Result<String, DomainError> {
    let v = match o.get(key) {
        Some(Value::Number(n)) if number_ok && (n.is_u64() || n.is_i64()) => Some(n.to_string()),
        other => match other {
            Some(Value::String(_)) | None | Some(Value::Null) => opt_str(o, key, max)?,
            Some(_) => return Err(malformed(&format!("{key} must be a string"))),
        },
    };
    v.ok_or_else(|| {
        err(
            ErrorCode::MissingClaim,
            &format!("the SSO token has no {key}"),
        )
    })
}

/// Reads and checks a `remote_auth_s3` value against the forum's secret at `now_secs`.
pub fn verify_remote_auth_s3(
    secret: &SsoSecret,
    token: &str,
    now_secs: i64,
) -> Result<SsoOutcome, DomainError> {
    check_len(token)?;
    let mut parts = token.trim().split(' ');
    let (Some(message), Some(sig), Some(ts), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "remote_auth_s3 must be three parts: message, signature and timestamp, separated by spaces",
        ));
    };
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(
            "the remote_auth_s3 timestamp must be Unix seconds",
        ));
    }
    let ts: i64 = ts
        .parse()
        .map_err(|_| malformed("the remote_auth_s3 timestamp must be Unix seconds"))?;
    let sig = hex_decode(sig).filter(|s| s.len() == 20).ok_or_else(|| {
        malformed("the remote_auth_s3 signature must be 40 hex digits (HMAC-SHA1)")
    })?;
    let mut mac = hmac_sha1(secret);
    mac.update(message.as_bytes());
    mac.update(b" ");
    mac.update(ts.to_string().as_bytes());
    // Constant time.
    mac.verify_slice(&sig).map_err(|_| {
        err(
            ErrorCode::BadSignature,
            "the SSO signature does not match the forum's SSO secret",
        )
    })?;
    check_time(ts, now_secs, Some(MAX_AGE_SECS))?;
    let json = STANDARD_ANY_PAD
        .decode(message)
        .map_err(|_| malformed("the remote_auth_s3 message is not base64"))?;
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&json) else {
        return Err(malformed("the remote_auth_s3 message is not a JSON object"));
    };
    if o.is_empty() {
        return Ok(SsoOutcome::SignedOut);
    }
    let id = req_str(&o, "id", MAX_ID_BYTES, true)?;
    let name = req_str(&o, "username", 1024, false)?;
    let email = Some(req_str(&o, "email", 254, false)?);
    Ok(SsoOutcome::SignedIn(SsoUser {
        id,
        name,
        email,
        avatar: opt_str(&o, "avatar", MAX_URL_BYTES)?,
        url: opt_str(&o, "url", MAX_URL_BYTES)?,
    }))
}

/// Makes a `remote_auth_s3` value (for sites and tests): `user` is the JSON object, `{}` to
/// sign out.
pub fn sign_remote_auth_s3(secret: &SsoSecret, user: &Value, ts: i64) -> String {
    let message = base64::engine::general_purpose::STANDARD.encode(user.to_string());
    let mut mac = hmac_sha1(secret);
    mac.update(format!("{message} {ts}").as_bytes());
    format!("{message} {} {ts}", hex(&mac.finalize().into_bytes()))
}

/// Reads and checks a JWT (HS256 only) against the forum's secret at `now_secs`.
pub fn verify_jwt(secret: &SsoSecret, token: &str, now_secs: i64) -> Result<SsoUser, DomainError> {
    check_len(token)?;
    let mut parts = token.trim().split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a JWT must be three base64url parts separated by dots",
        ));
    };
    let header = URL_ANY_PAD
        .decode(h64)
        .map_err(|_| malformed("the JWT header is not base64url"))?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&header) else {
        return Err(malformed("the JWT header is not a JSON object"));
    };
    // The algorithm is decided here, never by the token: HS256 or nothing.
    match header.get("alg") {
        Some(Value::String(a)) if a == "HS256" => {}
        Some(Value::String(a)) => {
            return Err(err(
                ErrorCode::UnsupportedAlgorithm,
                &format!(
                    "JWT algorithm {:?} is not accepted: sign with HS256",
                    a.chars().take(16).collect::<String>()
                ),
            ))
        }
        _ => return Err(malformed("the JWT header has no alg")),
    }
    if header.contains_key("crit") {
        return Err(malformed(
            "JWT critical header extensions are not supported",
        ));
    }
    let sig = URL_ANY_PAD
        .decode(s64)
        .map_err(|_| malformed("the JWT signature is not base64url"))?;
    let mut mac = hmac_sha256(secret);
    mac.update(h64.as_bytes());
    mac.update(b".");
    mac.update(p64.as_bytes());
    // Constant time.
    mac.verify_slice(&sig).map_err(|_| {
        err(
            ErrorCode::BadSignature,
            "the SSO signature does not match the forum's SSO secret",
        )
    })?;
    let payload = URL_ANY_PAD
        .decode(p64)
        .map_err(|_| malformed("the JWT payload is not base64url"))?;
    let Ok(Value::Object(c)) = serde_json::from_slice::<Value>(&payload) else {
        return Err(malformed("the JWT payload is not a JSON object"));
    };
    let num = |key: &str| -> Result<Option<i64>, DomainError> {
        match c.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| malformed(&format!("{key} must be Unix seconds"))),
            Some(_) => Err(malformed(&format!("{key} must be Unix seconds"))),
        }
    };
    let exp = num("exp")?.ok_or_else(|| err(ErrorCode::MissingClaim, "the JWT has no exp"))?;
    if exp <= now_secs {
        return Err(err(ErrorCode::TokenExpired, "the JWT has expired (exp)"));
    }
    for key in ["nbf", "iat"] {
        if let Some(t) = num(key)? {
            check_time(t, now_secs, None)?;
        }
    }
    let id = req_str(&c, "sub", MAX_ID_BYTES, false)?;
    let name = req_str(&c, "name", 1024, false)?;
    Ok(SsoUser {
        id,
        name,
        email: opt_str(&c, "email", 254)?,
        avatar: opt_str(&c, "picture", MAX_URL_BYTES)?,
        url: opt_str(&c, "url", MAX_URL_BYTES)?,
    })
}

/// Makes an HS256 JWT of `claims` (for sites and tests).
pub fn sign_jwt_hs256(secret: &SsoSecret, claims: &Value) -> String {
    let h = URL_ANY_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_ANY_PAD.encode(claims.to_string());
    let mut mac = hmac_sha256(secret);
    mac.update(format!("{h}.{p}").as_bytes());
    format!(
        "{h}.{p}.{}",
        URL_ANY_PAD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn secret() -> SsoSecret {
        SsoSecret::parse("0123456789abcdef-site-secret").unwrap()
    }

    fn code(r: Result<impl std::fmt::Debug, DomainError>) -> ErrorCode {
        r.unwrap_err().code
    }

    fn ann() -> Value {
        json!({"id": 42, "username": "Ann Site", "email": "ann@example.com",
               "avatar": "https://example.com/a.png", "url": "https://example.com/~ann"})
    }

    #[test]
    fn accounts_are_per_forum_and_case_kept() {
        let a = account_username(ForumId(1), "42");
        assert_eq!(a, account_username(ForumId(1), "42"));
        assert_ne!(a, account_username(ForumId(2), "42"));
        assert_ne!(
            account_username(ForumId(1), "Ann").to_lowercase(),
            account_username(ForumId(1), "ann").to_lowercase()
        );
        assert!(a.starts_with("sso~1~") && a.len() == 6 + 32, "{a}");
        assert!(is_account_of(&a, ForumId(1)));
        assert!(!is_account_of(&a, ForumId(11)));
        assert!(!is_account_of("ann", ForumId(1)));
        assert!(
            crate::input::Username::parse(&a).is_err(),
            "no sign-up takes it"
        );
    }

    #[test]
    fn secret_rules_and_redaction() {
        assert!(SsoSecret::parse("short").is_err());
        assert!(SsoSecret::parse("has a space in it, sixteen+").is_err());
        assert!(SsoSecret::parse(&"x".repeat(257)).is_err());
        assert_eq!(format!("{:?}", secret()), "SsoSecret(***)");
    }

    #[test]
    fn remote_auth_s3_signs_in() {
        let t = sign_remote_auth_s3(&secret(), &ann(), NOW - 60);
        let SsoOutcome::SignedIn(u) = verify_remote_auth_s3(&secret(), &t, NOW).unwrap() else {
            panic!("signed out")
        };
        assert_eq!(u.id, "42");
        assert_eq!(u.name, "Ann Site");
        assert_eq!(u.email.as_deref(), Some("ann@example.com"));
        assert_eq!(u.avatar.as_deref(), Some("https://example.com/a.png"));
        assert_eq!(u.url.as_deref(), Some("https://example.com/~ann"));
    }

    #[test]
    fn remote_auth_s3_known_vector() {
        // Signatures computed independently with Python's hmac/hashlib (HMAC-SHA1 over
        // "MESSAGE TIMESTAMP"), for the message sent unpadded and padded.
        let s = secret();
        let msg = "eyJpZCI6IjEiLCJ1c2VybmFtZSI6IkEiLCJlbWFpbCI6ImFAYi5jIn0";
        let t = format!("{msg} 61b0f165952f849e3697d8d0061f04b2983f5803 {NOW}");
        assert!(matches!(
            verify_remote_auth_s3(&s, &t, NOW).unwrap(),
            SsoOutcome::SignedIn(SsoUser { ref id, ref name, .. }) if id == "1" && name == "A"
        ));
        // Padded, its hex in capitals (hex is decoded, then compared as bytes).
        let t = format!("{msg}= 4170C29D0B959586A683FE3AD23F7D35754CCFDB {NOW}");
        assert!(matches!(
            verify_remote_auth_s3(&s, &t, NOW).unwrap(),
            SsoOutcome::SignedIn(_)
        ));
        // The padded message under the unpadded message's signature: refused.
        let t = format!("{msg}= 61b0f165952f849e3697d8d0061f04b2983f5803 {NOW}");
        assert_eq!(
            code(verify_remote_auth_s3(&s, &t, NOW)),
            ErrorCode::BadSignature
        );
    }

    #[test]
    fn remote_auth_s3_empty_payload_is_signed_out() {
        let t = sign_remote_auth_s3(&secret(), &json!({}), NOW);
        assert!(t.starts_with("e30= "));
        assert_eq!(
            verify_remote_auth_s3(&secret(), &t, NOW).unwrap(),
            SsoOutcome::SignedOut
        );
        // Still signed: a forged sign-out is refused.
        let forged = format!("e30= {} {NOW}", "0".repeat(40));
        assert_eq!(
            code(verify_remote_auth_s3(&secret(), &forged, NOW)),
            ErrorCode::BadSignature
        );
    }

    #[test]
    fn remote_auth_s3_refusals() {
        let s = secret();
        let good = sign_remote_auth_s3(&s, &ann(), NOW);
        // Wrong secret.
        let other = SsoSecret::parse("another-secret-of-16+").unwrap();
        assert_eq!(
            code(verify_remote_auth_s3(&other, &good, NOW)),
            ErrorCode::BadSignature
        );
        // One byte of the MAC changed.
        let mut parts: Vec<String> = good.split(' ').map(str::to_string).collect();
        let last = parts[1].pop().unwrap();
        parts[1].push(if last == '0' { '1' } else { '0' });
        assert_eq!(
            code(verify_remote_auth_s3(&s, &parts.join(" "), NOW)),
            ErrorCode::BadSignature
        );
        // The payload changed under a good signature.
        let swapped = format!(
            "{} {}",
            base64::engine::general_purpose::STANDARD
                .encode(json!({"id": 1, "username": "Mallory", "email": "m@x.y"}).to_string()),
            good.split_once(' ').unwrap().1
        );
        assert_eq!(
            code(verify_remote_auth_s3(&s, &swapped, NOW)),
            ErrorCode::BadSignature
        );
        // The timestamp changed under a good signature.
        let (head, _) = good.rsplit_once(' ').unwrap();
        assert_eq!(
            code(verify_remote_auth_s3(
                &s,
                &format!("{head} {}", NOW + 1),
                NOW
            )),
            ErrorCode::BadSignature
        );
        // Too old, and just young enough.
        let old = sign_remote_auth_s3(&s, &ann(), NOW - MAX_AGE_SECS - 1);
        assert_eq!(
            code(verify_remote_auth_s3(&s, &old, NOW)),
            ErrorCode::TokenExpired
        );
        let edge = sign_remote_auth_s3(&s, &ann(), NOW - MAX_AGE_SECS);
        assert!(verify_remote_auth_s3(&s, &edge, NOW).is_ok());
        // More than five minutes ahead, and just within.
        let ahead = sign_remote_auth_s3(&s, &ann(), NOW + MAX_AHEAD_SECS + 1);
        assert_eq!(
            code(verify_remote_auth_s3(&s, &ahead, NOW)),
            ErrorCode::TokenFromFuture
        );
        let edge = sign_remote_auth_s3(&s, &ann(), NOW + MAX_AHEAD_SECS);
        assert!(verify_remote_auth_s3(&s, &edge, NOW).is_ok());
        // Malformed shapes.
        for bad in [
            "",
            "onlyone",
            "a b",
            "a b c d",
            &format!("e30= {} notanumber", "0".repeat(40)),
            &format!("e30= {} {NOW}", "z".repeat(40)),
            &format!("e30= {} {NOW}", "0".repeat(38)),
        ] {
            assert_eq!(
                code(verify_remote_auth_s3(&s, bad, NOW)),
                ErrorCode::MalformedToken,
                "{bad:?}"
            );
        }
        // Too long, refused before decoding.
        let long = format!("{} {} {NOW}", "A".repeat(MAX_TOKEN_BYTES), "0".repeat(40));
        assert_eq!(
            code(verify_remote_auth_s3(&s, &long, NOW)),
            ErrorCode::MalformedToken
        );
        // Signed, but not base64 JSON, or missing what Disqus requires.
        let signed = |msg: &str| {
            let mut mac = hmac_sha1(&s);
            mac.update(format!("{msg} {NOW}").as_bytes());
            format!("{msg} {} {NOW}", hex(&mac.finalize().into_bytes()))
        };
        assert_eq!(
            code(verify_remote_auth_s3(&s, &signed("!!!"), NOW)),
            ErrorCode::MalformedToken
        );
        assert_eq!(
            code(verify_remote_auth_s3(&s, &signed("WzFd"), NOW)), // [1]
            ErrorCode::MalformedToken
        );
        for (missing, user) in [
            ("id", json!({"username": "A", "email": "a@b.c"})),
            ("username", json!({"id": "1", "email": "a@b.c"})),
            ("email", json!({"id": "1", "username": "A"})),
        ] {
            let t = sign_remote_auth_s3(&s, &user, NOW);
            let e = verify_remote_auth_s3(&s, &t, NOW).unwrap_err();
            assert_eq!(e.code, ErrorCode::MissingClaim);
            assert!(e.message.contains(missing), "{}", e.message);
        }
        let long_id =
            json!({"id": "x".repeat(MAX_ID_BYTES + 1), "username": "A", "email": "a@b.c"});
        assert_eq!(
            code(verify_remote_auth_s3(
                &s,
                &sign_remote_auth_s3(&s, &long_id, NOW),
                NOW
            )),
            ErrorCode::MalformedToken
        );
    }

    fn claims() -> Value {
        json!({"sub": "u-7", "name": "Bo Site", "exp": NOW + 600,
               "email": "bo@example.com", "picture": "https://example.com/b.png"})
    }

    fn jwt_with_header(header: &Value, claims: &Value, key: &SsoSecret) -> String {
        let h = URL_ANY_PAD.encode(header.to_string());
        let p = URL_ANY_PAD.encode(claims.to_string());
        let mut mac = hmac_sha256(key);
        mac.update(format!("{h}.{p}").as_bytes());
        format!(
            "{h}.{p}.{}",
            URL_ANY_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn jwt_signs_in() {
        let u = verify_jwt(&secret(), &sign_jwt_hs256(&secret(), &claims()), NOW).unwrap();
        assert_eq!(u.id, "u-7");
        assert_eq!(u.name, "Bo Site");
        assert_eq!(u.email.as_deref(), Some("bo@example.com"));
        assert_eq!(u.avatar.as_deref(), Some("https://example.com/b.png"));
        let minimal = json!({"sub": "u-8", "name": "C", "exp": NOW + 1});
        let u = verify_jwt(&secret(), &sign_jwt_hs256(&secret(), &minimal), NOW).unwrap();
        assert_eq!((u.email, u.avatar), (None, None));
    }

    #[test]
    fn jwt_known_vector() {
        // Made independently with Python's hmac/hashlib/base64 (json.dumps spacing and all).
        let t = "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.\
                 eyJzdWIiOiAicHktMSIsICJuYW1lIjogIlB5IiwgImV4cCI6IDE4MDAwMDA2MDB9.\
                 zet7svGc56c29XlZV5V6qF7jrNlAd7F9iRD-PfLUA6Y";
        let u = verify_jwt(&secret(), t, NOW).unwrap();
        assert_eq!((u.id.as_str(), u.name.as_str()), ("py-1", "Py"));
        assert_eq!(
            code(verify_jwt(&secret(), t, 1_800_000_600)),
            ErrorCode::TokenExpired
        );
    }

    #[test]
    fn jwt_refusals() {
        let s = secret();
        let good = sign_jwt_hs256(&s, &claims());
        let other = SsoSecret::parse("another-secret-of-16+").unwrap();
        assert_eq!(
            code(verify_jwt(&other, &good, NOW)),
            ErrorCode::BadSignature
        );
        // alg none, with and without a signature part.
        let none_h = URL_ANY_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let p = URL_ANY_PAD.encode(claims().to_string());
        for t in [format!("{none_h}.{p}."), format!("{none_h}.{p}.AAAA")] {
            assert_eq!(
                code(verify_jwt(&s, &t, NOW)),
                ErrorCode::UnsupportedAlgorithm
            );
        }
        // Other algorithms, even when signed with the secret by their HMAC-SHA256 twin.
        for alg in ["HS512", "HS384", "RS256", "ES256", "hs256", "PS256"] {
            let t = jwt_with_header(&json!({"alg": alg, "typ": "JWT"}), &claims(), &s);
            assert_eq!(
                code(verify_jwt(&s, &t, NOW)),
                ErrorCode::UnsupportedAlgorithm,
                "{alg}"
            );
        }
        let t = jwt_with_header(&json!({"typ": "JWT"}), &claims(), &s);
        assert_eq!(code(verify_jwt(&s, &t, NOW)), ErrorCode::MalformedToken);
        // Missing claims.
        for key in ["sub", "name", "exp"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(key);
            let e = verify_jwt(&s, &sign_jwt_hs256(&s, &c), NOW).unwrap_err();
            assert_eq!(e.code, ErrorCode::MissingClaim, "{key}");
            assert!(e.message.contains(key));
        }
        // Expired, and dated ahead.
        let mut c = claims();
        c["exp"] = json!(NOW);
        assert_eq!(
            code(verify_jwt(&s, &sign_jwt_hs256(&s, &c), NOW)),
            ErrorCode::TokenExpired
        );
        let mut c = claims();
        c["iat"] = json!(NOW + MAX_AHEAD_SECS + 1);
        assert_eq!(
            code(verify_jwt(&s, &sign_jwt_hs256(&s, &c), NOW)),
            ErrorCode::TokenFromFuture
        );
        // Tampered payload.
        let (h, rest) = good.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let mut c = claims();
        c["sub"] = json!("admin");
        let forged = format!("{h}.{}.{sig}", URL_ANY_PAD.encode(c.to_string()));
        assert_eq!(code(verify_jwt(&s, &forged, NOW)), ErrorCode::BadSignature);
        // Shapes.
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(
                code(verify_jwt(&s, bad, NOW)),
                ErrorCode::MalformedToken,
                "{bad:.20}"
            );
        }
        // A claim of the wrong type.
        let mut c = claims();
        c["sub"] = json!({"x": 1});
        assert_eq!(
            code(verify_jwt(&s, &sign_jwt_hs256(&s, &c), NOW)),
            ErrorCode::MalformedToken
        );
    }
}

//! A proof-of-work challenge for guests' comments, issued and checked by Confab itself (the
//! ALTCHA scheme: no third party, no cookie, nothing about the reader kept).
//!
//! Issuing: the server picks a secret random `number` in `0..=maxnumber` (the forum's
//! difficulty) and a random nonce, and answers
//!
//! - `salt` = `<32 hex nonce>?forum=<forum id>&expires=<unix seconds>`,
//! - `challenge` = hex `SHA-256(salt || decimal(number))`,
//! - `signature` = hex `HMAC-SHA256(server key, "challenge" || salt || "|" || challenge)`
//!   ([`Signer::tag`]).
//!
//! Solving: the client tries `0, 1, 2, ...` until `SHA-256(salt || n)` is `challenge` (on
//! average `maxnumber / 2` hashes). Checking needs no state but the key: the signature says this
//! server (or any node sharing its key) issued salt and challenge, the salt says for which forum
//! and until when, one hash says the number is right. That a solution is used once is the
//! caller's part (the service remembers used challenges in the store until they expire).

use crate::id::ForumId;
use crate::sign::{hex, Signer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only algorithm issued and accepted.
pub const ALGORITHM: &str = "SHA-256";
/// `maxnumber` of a forum that turned the challenge on without saying how hard: about 25,000
/// hashes on average, a few tenths of a second in a browser's Web Worker.
pub const DEFAULT_DIFFICULTY: u32 = 50_000;
/// Bounds of a forum's difficulty (`maxnumber`).
pub const MIN_DIFFICULTY: u32 = 1_000;
pub const MAX_DIFFICULTY: u32 = 1_000_000;
/// How long a challenge may be solved and used.
pub const TTL_SECS: i64 = 600;
/// The signing purpose ([`Signer`] binds it into the MAC).
const KIND: &str = "challenge";
/// Longest salt accepted back (the server's are about 80 characters).
const MAX_SALT: usize = 200;

/// A forum's challenge settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeSettings {
    /// Guests' new comments must carry a solved proof-of-work challenge (`GET /api/v1/challenge`).
    /// Signed-in readers (accounts, SSO) never need one.
    #[serde(default)]
    pub enabled: bool,
    /// The challenge's `maxnumber` (1000-1000000; default 50000): a client needs about half of
    /// it in SHA-256 hashes to solve one.
    #[serde(
        default = "default_difficulty",
        deserialize_with = "crate::modrules::count::de"
    )]
    #[schema(minimum = 1000, maximum = 1000000)]
    pub difficulty: u32,
}

fn default_difficulty() -> u32 {
    DEFAULT_DIFFICULTY
}

impl Default for ChallengeSettings {
    fn default() -> Self {
        ChallengeSettings {
            enabled: false,
            difficulty: DEFAULT_DIFFICULTY,
        }
    }
}

impl ChallengeSettings {
    /// Checks the bounds; the message names the setting at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_DIFFICULTY..=MAX_DIFFICULTY).contains(&self.difficulty) {
            return Err(format!(
                "challenge.difficulty must be between {MIN_DIFFICULTY} and {MAX_DIFFICULTY}"
            ));
        }
        Ok(())
    }
}

/// A challenge as the server issues it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Challenge {
    pub algorithm: &'static str,
    pub salt: String,
    pub challenge: String,
    pub maxnumber: u32,
    pub signature: String,
    /// When it stops being accepted (Unix milliseconds).
    pub expires_at: i64,
}

/// A solved challenge as a client sends it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    pub salt: String,
    pub challenge: String,
    pub number: u64,
    pub signature: String,
}

/// A solution that holds: what the caller needs to spend it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The challenge (64 hex digits): unique per issue, the key a used one is remembered by.
    pub id: String,
    /// Until when it must be remembered (Unix milliseconds).
    pub expires_at: i64,
}

/// Why a solution does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Not of the shape this server issues.
    Malformed,
    /// The signature is not this server's (or salt or challenge were changed).
    Forged,
    Expired,
    /// Issued for another forum.
    OtherForum,
    /// The number does not hash to the challenge.
    WrongNumber,
}

impl Failure {
    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Failure::Malformed => "the challenge solution is not one this server issued",
            Failure::Forged => "the challenge's signature does not hold",
            Failure::Expired => "the challenge has expired; solve a new one",
            Failure::OtherForum => "the challenge was issued for another forum",
            Failure::WrongNumber => "the challenge's number is wrong",
        }
    }
}

/// Issues a challenge for `forum` at `now_ms`; `nonce` and `secret` are the caller's random
/// draws (`secret` is reduced to `0..=difficulty`).
pub fn issue(
    signer: &Signer,
    forum: ForumId,
    difficulty: u32,
    now_ms: i64,
    nonce: [u8; 16],
    secret: u64,
) -> Challenge {
    let expires = now_ms.div_euclid(1000) + TTL_SECS;
    let salt = format!("{}?forum={}&expires={expires}", hex(&nonce), forum.0);
    let number = secret % (u64::from(difficulty) + 1);
    let challenge = hash(&salt, number);
    let signature = signer.tag(KIND, &signed(&salt, &challenge));
    Challenge {
        algorithm: ALGORITHM,
        salt,
        challenge,
        maxnumber: difficulty,
        signature,
        expires_at: expires * 1000,
    }
}

/// Checks a solution for `forum` at `now_ms`: signature first (nothing else is believed
/// before it holds), then forum, expiry and the number.
pub fn verify(
    signer: &Signer,
    sol: &Solution,
    forum: ForumId,
    now_ms: i64,
) -> Result<Verified, Failure> {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if sol.salt.is_empty()
        || sol.salt.len() > MAX_SALT
        || !hex64(&sol.challenge)
        || !hex64(&sol.signature)
    {
        return Err(Failure::Malformed);
    }
    let challenge = sol.challenge.to_ascii_lowercase();
    if !signer.check_tag(KIND, &signed(&sol.salt, &challenge), &sol.signature) {
        return Err(Failure::Forged);
    }
    let (for_forum, expires) = parse_salt(&sol.salt).ok_or(Failure::Malformed)?;
    if for_forum != forum.0 {
        return Err(Failure::OtherForum);
    }
    let expires_at = expires.saturating_mul(1000);
    if expires_at <= now_ms {
        return Err(Failure::Expired);
    }
    if hash(&sol.salt, sol.number) != challenge {
        return Err(Failure::WrongNumber);
    }
    Ok(Verified {
        id: challenge,
        expires_at,
    })
}

/// Finds the number of a challenge by brute force, as a client does (`None` past `maxnumber`).
pub fn solve(salt: &str, challenge: &str, maxnumber: u32) -> Option<u64> {
    let want = challenge.to_ascii_lowercase();
    (0..=u64::from(maxnumber)).find(|&n| hash(salt, n) == want)
}

/// hex `SHA-256(salt || decimal(number))`.
fn hash(salt: &str, number: u64) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(number.to_string().as_bytes());
    hex(&h.finalize())
}

fn signed(salt: &str, challenge: &str) -> String {
    format!("{salt}|{challenge}")
}

/// `(forum id, expires)` of a salt this module wrote.
fn parse_salt(salt: &str) -> Option<(i64, i64)> {
    let (nonce, query) = salt.split_once('?')?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (f, e) = query.split_once('&')?;
    let forum = f.strip_prefix("forum=")?.parse().ok()?;
    let expires = e.strip_prefix("expires=")?.parse().ok()?;
    Some((forum, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000;

    fn issued(signer: &Signer, secret: u64) -> Challenge {
        issue(signer, ForumId(7), 2_000, NOW, [0xab; 16], secret)
    }

    fn solved(c: &Challenge) -> Solution {
        Solution {
            salt: c.salt.clone(),
            challenge: c.challenge.clone(),
            number: solve(&c.salt, &c.challenge, c.maxnumber).unwrap(),
            signature: c.signature.clone(),
        }
    }

    #[test]
    fn the_format_is_altchas() {
        let s = Signer::new(b"k");
        let c = issued(&s, 1234);
        assert_eq!(c.algorithm, "SHA-256");
        assert_eq!(
            c.salt,
            format!("{}?forum=7&expires={}", "ab".repeat(16), NOW / 1000 + 600)
        );
        assert_eq!(c.expires_at, NOW + 600_000);
        assert_eq!(c.maxnumber, 2_000);
        // challenge = SHA-256(salt || "1234"), checked against an independent digest.
        let mut h = Sha256::new();
        h.update(format!("{}1234", c.salt));
        assert_eq!(c.challenge, hex(&h.finalize()));
        assert_eq!(solve(&c.salt, &c.challenge, c.maxnumber), Some(1234));
        // The secret is reduced below maxnumber.
        let c = issued(&s, 2_001 + 5);
        assert_eq!(solve(&c.salt, &c.challenge, c.maxnumber), Some(5));
    }

    #[test]
    fn a_solution_verifies_once_per_challenge_id() {
        let s = Signer::new(b"k");
        let c = issued(&s, 777);
        let v = verify(&s, &solved(&c), ForumId(7), NOW + 1_000).unwrap();
        assert_eq!(v.id, c.challenge);
        assert_eq!(v.expires_at, c.expires_at);
        // Another issue is another id, even with the same number.
        let other = issue(&s, ForumId(7), 2_000, NOW, [0xcd; 16], 777);
        assert_ne!(other.challenge, c.challenge);
    }

    #[test]
    fn every_tampering_is_refused() {
        let s = Signer::new(b"k");
        let c = issued(&s, 42);
        let good = solved(&c);
        let at = NOW + 1_000;
        let mut wrong = good.clone();
        wrong.number += 1;
        assert_eq!(
            verify(&s, &wrong, ForumId(7), at),
            Err(Failure::WrongNumber)
        );
        assert_eq!(verify(&s, &good, ForumId(8), at), Err(Failure::OtherForum));
        assert_eq!(
            verify(&s, &good, ForumId(7), NOW + 600_000),
            Err(Failure::Expired)
        );
        assert_eq!(
            verify(&Signer::new(b"other"), &good, ForumId(7), at),
            Err(Failure::Forged)
        );
        // A salt rewritten to another forum or a later expiry breaks the signature.
        for salt in [
            c.salt.replace("forum=7", "forum=8"),
            c.salt.replace("expires=", "expires=9"),
        ] {
            let mut t = good.clone();
            t.salt = salt;
            assert_eq!(verify(&s, &t, ForumId(7), at), Err(Failure::Forged));
        }
        // A challenge of the client's own making (with its number) is not signed.
        let mut own = good.clone();
        own.challenge = hash(&own.salt, 0);
        own.number = 0;
        assert_eq!(verify(&s, &own, ForumId(7), at), Err(Failure::Forged));
        for bad in [
            Solution {
                salt: String::new(),
                ..good.clone()
            },
            Solution {
                salt: "x".repeat(201),
                ..good.clone()
            },
            Solution {
                challenge: "zz".into(),
                ..good.clone()
            },
            Solution {
                signature: format!("{}g", &good.signature[..63]),
                ..good.clone()
            },
        ] {
            assert_eq!(verify(&s, &bad, ForumId(7), at), Err(Failure::Malformed));
        }
    }

    #[test]
    fn upper_case_hex_is_the_same_challenge() {
        let s = Signer::new(b"k");
        let c = issued(&s, 9);
        let mut sol = solved(&c);
        sol.challenge = sol.challenge.to_uppercase();
        sol.signature = sol.signature.to_uppercase();
        let v = verify(&s, &sol, ForumId(7), NOW).unwrap();
        assert_eq!(
            v.id, c.challenge,
            "one id whatever the case, so it is spent once"
        );
    }

    #[test]
    fn settings_are_bounded() {
        let d = ChallengeSettings::default();
        assert!(!d.enabled);
        assert_eq!(d.difficulty, DEFAULT_DIFFICULTY);
        assert!(d.validate().is_ok());
        for bad in [0, 999, 1_000_001] {
            let s = ChallengeSettings {
                enabled: true,
                difficulty: bad,
            };
            assert!(s.validate().is_err(), "{bad}");
        }
        let s: ChallengeSettings = serde_json::from_str(r#"{"enabled": true}"#).unwrap();
        assert_eq!(s.difficulty, DEFAULT_DIFFICULTY);
        assert!(
            serde_json::from_str::<ChallengeSettings>(r#"{"enabled": true, "level": 3}"#).is_err()
        );
    }
}

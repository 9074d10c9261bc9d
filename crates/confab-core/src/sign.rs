//! Signed tokens: sessions, anonymous voter ids, guest edit tokens.
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(key, kind || payload))`. The kind
//! is bound into the MAC, so a token made for one purpose never verifies as another. Signatures
//! are compared in constant time (`Mac::verify_slice`). Reading a token needs no database.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Holds the server secret. Its `Debug` never prints the key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    pub fn new(key: &[u8]) -> Self {
        Signer { key: key.to_vec() }
    }

    fn mac(&self, kind: &str) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut m = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable_mac(),
        };
        m.update(kind.as_bytes());
        m.update(b"\x00");
        m
    }

    /// Signs `payload` for purpose `kind`.
    pub fn sign(&self, kind: &str, payload: &str) -> String {
        let mut m = self.mac(kind);
        m.update(payload.as_bytes());
        let sig = m.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    /// Returns the payload if `token` was signed by this key for `kind`.
    pub fn verify(&self, kind: &str, token: &str) -> Option<String> {
        if token.len() > 1024 {
            return None;
        }
        let (p, s) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(p).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let mut m = self.mac(kind);
        m.update(&payload);
        m.verify_slice(&sig).ok()?;
        String::from_utf8(payload).ok()
    }

    /// The full HMAC of `value` for purpose `kind`, as 64 lower-case hex digits: a signature
    /// carried beside its value (proof-of-work challenges, `crate::challenge`).
    pub fn tag(&self, kind: &str, value: &str) -> String {
        let mut m = self.mac(kind);
        m.update(value.as_bytes());
        hex(&m.finalize().into_bytes())
    }

    /// Whether `tag` is [`Signer::tag`] of `value` for `kind`, compared in constant time.
    pub fn check_tag(&self, kind: &str, value: &str, tag: &str) -> bool {
        let Some(sig) = unhex(tag) else {
            return false;
        };
        let mut m = self.mac(kind);
        m.update(value.as_bytes());
        m.verify_slice(&sig).is_ok()
    }

    /// A keyed hash (hex, 16 chars) for values we must match but must not store: client IPs.
    pub fn keyed_hash(&self, kind: &str, value: &str) -> String {
        let mut m = self.mac(kind);
        m.update(value.as_bytes());
        let out = m.finalize().into_bytes();
        out.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string (either case), or `None` for an odd length or another character.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cold]
fn unreachable_mac() -> ! {
    // new_from_slice only fails for MACs with fixed key sizes, which HMAC is not.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = Signer::new(b"k1");
        let t = s.sign("session", "42|1700000000000");
        assert_eq!(s.verify("session", &t).as_deref(), Some("42|1700000000000"));
        assert_eq!(s.verify("edit", &t), None, "bound to its kind");
        assert_eq!(
            Signer::new(b"k2").verify("session", &t),
            None,
            "bound to its key"
        );
        let mut forged = t.clone();
        forged.replace_range(0..2, "QQ");
        assert_eq!(s.verify("session", &forged), None);
        assert_eq!(s.verify("session", "garbage"), None);
        assert_eq!(s.verify("session", "a.b.c"), None);
        assert_eq!(format!("{s:?}"), "Signer(***)");
    }

    #[test]
    fn tags_are_bound_to_kind_key_and_value() {
        let s = Signer::new(b"k1");
        let t = s.tag("challenge", "salt|abc");
        assert_eq!(t.len(), 64);
        assert!(s.check_tag("challenge", "salt|abc", &t));
        assert!(s.check_tag("challenge", "salt|abc", &t.to_uppercase()));
        assert!(!s.check_tag("edit", "salt|abc", &t));
        assert!(!s.check_tag("challenge", "salt|abd", &t));
        assert!(!Signer::new(b"k2").check_tag("challenge", "salt|abc", &t));
        assert!(!s.check_tag("challenge", "salt|abc", &t[..62]));
        assert!(!s.check_tag("challenge", "salt|abc", "zz"));
        assert!(!s.check_tag("challenge", "salt|abc", "é"));
    }

    #[test]
    fn keyed_hash_is_stable_and_keyed() {
        let s = Signer::new(b"k1");
        assert_eq!(s.keyed_hash("ip", "1.2.3.4"), s.keyed_hash("ip", "1.2.3.4"));
        assert_ne!(
            s.keyed_hash("ip", "1.2.3.4"),
            Signer::new(b"k2").keyed_hash("ip", "1.2.3.4")
        );
        assert_eq!(s.keyed_hash("ip", "x").len(), 16);
    }
}

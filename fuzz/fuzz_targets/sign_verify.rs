//! Signed tokens: `verify` never panics on any token; `verify(sign(p)) == p` for tokens within
//! the 1,024-byte limit `verify` enforces; a token changed in any one byte, or checked for
//! another kind or key, never verifies; `keyed_hash` is 16 hex characters.
#![no_main]
use confab_core::sign::Signer;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    key: &'a [u8],
    kind: &'a str,
    other_kind: &'a str,
    payload: &'a str,
    /// Checked as given: a client's token.
    token: &'a str,
    pos: usize,
    byte: u8,
}

fuzz_target!(|inp: Input<'_>| {
    let s = Signer::new(inp.key);

    // Untrusted tokens. A fuzzer cannot forge a MAC, so Some here means the token is canonical.
    if let Some(p) = s.verify(inp.kind, inp.token) {
        assert_eq!(
            s.sign(inp.kind, &p),
            inp.token,
            "a non-canonical token verified"
        );
    }

    let t = s.sign(inp.kind, inp.payload);
    let got = s.verify(inp.kind, &t);
    if t.len() <= 1024 {
        assert_eq!(
            got.as_deref(),
            Some(inp.payload),
            "sign/verify round trip failed for {:?}",
            inp.payload
        );
    } else {
        // verify's length cap: payloads over 735 bytes make tokens nothing accepts.
        assert_eq!(got, None);
        assert!(inp.payload.len() > 735);
    }
    if inp.other_kind != inp.kind {
        assert_eq!(
            s.verify(inp.other_kind, &t),
            None,
            "token for {:?} verified as {:?}",
            inp.kind,
            inp.other_kind
        );
    }
    if let Some(&k0) = inp.key.first() {
        let mut other_key = inp.key.to_vec();
        other_key[0] = k0 ^ 1;
        assert_eq!(
            Signer::new(&other_key).verify(inp.kind, &t),
            None,
            "token verified under another key"
        );
    }

    // One byte changed anywhere never verifies (if the result is still a &str).
    let mut m = t.clone().into_bytes();
    let i = inp.pos % m.len();
    let b = if inp.byte == m[i] {
        inp.byte.wrapping_add(1)
    } else {
        inp.byte
    };
    m[i] = b;
    if let Ok(m) = String::from_utf8(m) {
        assert_eq!(
            s.verify(inp.kind, &m),
            None,
            "mutated token {m:?} (from {t:?}) verified"
        );
    }

    let h = s.keyed_hash(inp.kind, inp.payload);
    assert!(
        h.len() == 16 && h.bytes().all(|c| c.is_ascii_hexdigit()),
        "keyed_hash {h:?}"
    );
    assert_eq!(h, s.keyed_hash(inp.kind, inp.payload));
});

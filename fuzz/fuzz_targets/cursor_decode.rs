//! Keyset cursors from clients: decoding never panics; a decoded cursor is for the sort asked
//! for and round-trips through `encode`; every cursor `encode` makes decodes to itself.
#![no_main]
use confab_core::cursor::{Cursor, Sort};
use libfuzzer_sys::fuzz_target;

const SORTS: [Sort; 3] = [Sort::Best, Sort::Newest, Sort::Oldest];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let sort = SORTS[usize::from(first) % 3];
    // Structured side: any (sort, score, id) round-trips and fits the 128-byte cursor limit.
    if rest.len() >= 16 {
        let score = i64::from_le_bytes(rest[..8].try_into().unwrap_or_default());
        let id = i64::from_le_bytes(rest[8..16].try_into().unwrap_or_default());
        let c = Cursor { sort, score, id };
        let e = c.encode();
        assert!(e.len() <= 128, "encoded cursor too long: {e}");
        assert_eq!(
            Cursor::decode(&e, sort).ok(),
            Some(c),
            "round trip of {c:?} via {e}"
        );
        for other in SORTS {
            if other != sort {
                assert!(
                    Cursor::decode(&e, other).is_err(),
                    "{c:?} decoded for {other:?}"
                );
            }
        }
    }
    // Untrusted side: whatever a client sends.
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(c) = Cursor::decode(s, sort) {
        assert_eq!(c.sort, sort);
        let e = c.encode();
        assert_eq!(
            Cursor::decode(&e, sort).ok(),
            Some(c),
            "re-encode of {s:?} as {e} does not decode to {c:?}"
        );
    }
});

//! Ids that carry their shard.
//!
//! Layout of a thread or comment id (ARCHITECTURE.md, "Ids and shards"), most significant bit first:
//! `0 | 41 bits ms since 2026-01-01 | 12 bits logical shard | 11 bits sequence`.
//! Ordering by id is ordering by creation time (to the millisecond), and any id routes to its
//! logical shard with no lookup. In JSON every id is a decimal string, since JavaScript numbers
//! lose precision above 2^53.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// 2026-01-01T00:00:00Z in Unix milliseconds.
pub const EPOCH_MS: i64 = 1_767_225_600_000;
pub const SHARD_BITS: u32 = 12;
pub const SEQ_BITS: u32 = 11;
pub const TIME_BITS: u32 = 41;
/// Number of logical shards.
pub const LOGICAL_SHARDS: u16 = 1 << SHARD_BITS;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
const SHARD_MASK: u64 = (1 << SHARD_BITS) - 1;

/// One of the 4096 logical shards. A forum gets one at creation and keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogicalShard(u16);

impl LogicalShard {
    pub fn new(n: u16) -> Option<Self> {
        (n < LOGICAL_SHARDS).then_some(LogicalShard(n))
    }
    pub fn get(self) -> u16 {
        self.0
    }
    /// Deterministic shard for a forum name (FNV-1a): stable across nodes and restarts.
    pub fn for_name(name: &str) -> Self {
        let mut h: u32 = 0x811c_9dc5;
        for b in name.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        LogicalShard((h % u32::from(LOGICAL_SHARDS)) as u16)
    }
}

/// The parts of a sharded id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdParts {
    pub ms_since_epoch: u64,
    pub shard: LogicalShard,
    pub seq: u16,
}

/// Packs parts into an id. Panics never: out-of-range parts are masked.
pub fn pack(parts: IdParts) -> i64 {
    let t = parts.ms_since_epoch & ((1 << TIME_BITS) - 1);
    ((t << (SHARD_BITS + SEQ_BITS))
        | ((u64::from(parts.shard.0) & SHARD_MASK) << SEQ_BITS)
        | (u64::from(parts.seq) & SEQ_MASK)) as i64
}

/// Splits an id into its parts.
pub fn unpack(id: i64) -> IdParts {
    let v = id as u64;
    IdParts {
        ms_since_epoch: v >> (SHARD_BITS + SEQ_BITS),
        shard: LogicalShard(((v >> SEQ_BITS) & SHARD_MASK) as u16),
        seq: (v & SEQ_MASK) as u16,
    }
}

/// Generates ids in one process: time from the wall clock, sequence from memory.
///
/// The sequence is global to the process rather than per shard: simpler, and 2048 ids per
/// millisecond is far above what one process writes. When the sequence runs out within a
/// millisecond, the generator moves to the next millisecond (it never goes back in time, even if
/// the wall clock does). Several nodes writing the same shard take their sequence from the shard
/// database instead (see confab-store).
pub struct IdGenerator {
    state: Mutex<(u64, u16)>,
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl IdGenerator {
    pub fn new() -> Self {
        IdGenerator {
            state: Mutex::new((0, 0)),
        }
    }

    pub fn next(&self, shard: LogicalShard) -> i64 {
        let now = (crate::now_ms() - EPOCH_MS).max(0) as u64;
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (last, seq) = *st;
        let (ms, seq) = if now > last {
            (now, 0)
        } else if u64::from(seq) < SEQ_MASK {
            (last, seq + 1)
        } else {
            (last + 1, 0)
        };
        *st = (ms, seq);
        pack(IdParts {
            ms_since_epoch: ms,
            shard,
            seq,
        })
    }
}

/// Regular expression of the ids the API takes as decimal strings: 0 to 2^63-1, no sign, no
/// leading zero (what [`parse_id`] accepts).
pub const ID_PATTERN: &str = "^(0|[1-9][0-9]{0,17}|[1-8][0-9]{18}|9[01][0-9]{17}|92[01][0-9]{16}|922[0-2][0-9]{15}|9223[0-2][0-9]{14}|92233[0-6][0-9]{13}|922337[01][0-9]{12}|92233720[0-2][0-9]{10}|922337203[0-5][0-9]{9}|9223372036[0-7][0-9]{8}|92233720368[0-4][0-9]{7}|922337203685[0-3][0-9]{6}|9223372036854[0-6][0-9]{5}|92233720368547[0-6][0-9]{4}|922337203685477[0-4][0-9]{3}|9223372036854775[0-7][0-9]{2}|922337203685477580[0-7])$";

/// An id as clients write it: the decimal digits of 0 to 2^63-1, without sign or leading zero.
pub fn parse_id(s: &str) -> Option<i64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse::<i64>().ok()).flatten()
}

/// A JSON number as serde hands it over.
enum Num {
    I(i64),
    U(u64),
    F(f64),
}

/// An id given as a JSON number: a non-negative integer (`1.0` is one too, as JSON Schema says).
fn id_from_number<E: serde::de::Error>(n: Num) -> Result<i64, E> {
    match n {
        Num::I(v) if v >= 0 => Ok(v),
        Num::U(v) => i64::try_from(v).map_err(|_| E::custom("id is out of range")),
        Num::F(f) if f >= 0.0 && f.fract() == 0.0 && f < 9_223_372_036_854_775_808.0 => {
            Ok(f as i64)
        }
        _ => Err(E::custom("an id is a non-negative integer")),
    }
}

/// Reads an id from a decimal string (the documented form) or a non-negative JSON integer
/// (lenient, for scripts).
pub fn deserialize_id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an id: a decimal string or a non-negative integer")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<i64, E> {
            parse_id(s).ok_or_else(|| {
                E::custom(format!("{s:?} is not an id (decimal digits, 0 to 2^63-1)"))
            })
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            id_from_number(Num::I(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            id_from_number(Num::U(v))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            id_from_number(Num::F(v))
        }
    }
    d.deserialize_any(V)
}

/// Serializes a plain 64-bit id as a decimal string, like the typed ids.
pub fn i64_as_string<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A string that is not an id (see [`parse_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidId;

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an id (decimal digits, 0 to 2^63-1)")
    }
}

impl std::error::Error for InvalidId {}

macro_rules! typed_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl $name {
            pub fn get(self) -> i64 { self.0 }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "{}", self.0) }
        }
        impl FromStr for $name {
            type Err = InvalidId;
            /// Only the form [`parse_id`] accepts.
            fn from_str(s: &str) -> Result<Self, Self::Err> { parse_id(s).map($name).ok_or(InvalidId) }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Accept "123" (the documented form) and 123 (lenient for scripts).
                deserialize_id(d).map($name)
            }
        }
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(ID_PATTERN))
                    .description(Some("64-bit id as a decimal string"))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

typed_id!(
    /// A comment; carries its logical shard.
    CommentId
);
typed_id!(
    /// A thread; carries its logical shard.
    ThreadId
);
typed_id!(
    /// A forum (site), in the control database.
    ForumId
);
typed_id!(
    /// An account, in the control database.
    AccountId
);
typed_id!(
    /// A picture attached to a comment; carries its logical shard.
    ImageId
);

impl CommentId {
    pub fn shard(self) -> LogicalShard {
        unpack(self.0).shard
    }
}
impl ThreadId {
    pub fn shard(self) -> LogicalShard {
        unpack(self.0).shard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips() {
        // Ids stay positive for 2^40 ms (until 2060); the 41st time bit is the sign bit after that.
        let parts = IdParts {
            ms_since_epoch: (1 << 40) - 1,
            shard: LogicalShard(4095),
            seq: 2047,
        };
        let id = pack(parts);
        assert!(id > 0, "the sign bit stays clear");
        assert_eq!(unpack(id), parts);
        let parts = IdParts {
            ms_since_epoch: 12345,
            shard: LogicalShard(7),
            seq: 3,
        };
        assert_eq!(unpack(pack(parts)), parts);
        assert_eq!(pack(parts), (12345 << 23) | (7 << 11) | 3);
    }

    #[test]
    fn ids_carry_shard_and_increase() {
        let g = IdGenerator::new();
        let s = LogicalShard::new(1234).unwrap();
        let mut last = 0;
        for _ in 0..10_000 {
            let id = g.next(s);
            assert!(id > last, "strictly increasing");
            assert_eq!(CommentId(id).shard(), s);
            last = id;
        }
        let now = (crate::now_ms() - EPOCH_MS) as u64;
        let t = unpack(last).ms_since_epoch;
        assert!(
            t + 5_000 > now && t < now + 5_000,
            "time bits track the clock"
        );
    }

    #[test]
    fn sequence_overflow_moves_to_next_millisecond() {
        let g = IdGenerator::new();
        let s = LogicalShard::new(1).unwrap();
        let ids: Vec<i64> = (0..5000).map(|_| g.next(s)).collect();
        let mut sorted = ids.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "no duplicate ids");
    }

    #[test]
    fn shard_bounds_and_name_hash() {
        assert!(LogicalShard::new(4096).is_none());
        assert_eq!(
            LogicalShard::for_name("demo"),
            LogicalShard::for_name("demo")
        );
        assert!(LogicalShard::for_name("x").get() < 4096);
    }

    #[test]
    fn json_is_a_decimal_string() {
        let id = CommentId(9_007_199_254_740_993);
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"9007199254740993\"");
        let back: CommentId = serde_json::from_str("\"9007199254740993\"").unwrap();
        assert_eq!(back, id);
        let lenient: CommentId = serde_json::from_str("42").unwrap();
        assert_eq!(lenient, CommentId(42));
        assert!(serde_json::from_str::<CommentId>("\"x1\"").is_err());
        assert_eq!(
            serde_json::from_str::<CommentId>("42.0").unwrap(),
            CommentId(42)
        );
        assert_eq!(
            serde_json::from_str::<CommentId>("9223372036854775807").unwrap(),
            CommentId(i64::MAX)
        );
        for bad in [
            "-1",
            "1.5",
            "9223372036854775808",
            "\"-1\"",
            "\"+1\"",
            "\"01\"",
            "\"\"",
            "\" 1\"",
            "\"9223372036854775808\"",
        ] {
            assert!(serde_json::from_str::<CommentId>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn id_pattern_is_the_parser() {
        // The pattern's alternatives, one per leading prefix of i64::MAX, against the parser at
        // every boundary they draw.
        let max = i64::MAX.to_string();
        let mut samples = vec![
            "0".to_string(),
            "7".into(),
            "10".into(),
            "00".into(),
            "01".into(),
            max.clone(),
        ];
        for i in 0..max.len() {
            let (head, rest) = max.split_at(i);
            let d = rest.as_bytes()[0] - b'0';
            for nd in [d.saturating_sub(1), d, d + 1] {
                if nd <= 9 {
                    samples.push(format!("{head}{nd}{}", "9".repeat(rest.len() - 1)));
                    samples.push(format!("{head}{nd}{}", "0".repeat(rest.len() - 1)));
                }
            }
        }
        samples.push("9".repeat(18));
        samples.push("1".repeat(19));
        samples.push("1".repeat(20));
        for s in samples {
            assert_eq!(matches_id_pattern(&s), parse_id(&s).is_some(), "{s}");
        }
    }

    /// ID_PATTERN, evaluated by hand: `^(alt|alt|...)$` where each alternative is a literal
    /// prefix, one optional class `[a-b]`, and `[0-9]{n}` or `[0-9]{m,n}`.
    fn matches_id_pattern(s: &str) -> bool {
        let body = ID_PATTERN.trim_start_matches("^(").trim_end_matches(")$");
        body.split('|').any(|alt| {
            let mut rest = s;
            let mut a = alt;
            while !a.is_empty() {
                if let Some(tail) = a.strip_prefix("[0-9]{") {
                    let (q, tail) = tail.split_once('}').unwrap();
                    let (lo, hi) = match q.split_once(',') {
                        Some((l, h)) => (l.parse::<usize>().unwrap(), h.parse::<usize>().unwrap()),
                        None => (q.parse().unwrap(), q.parse().unwrap()),
                    };
                    let n = rest.bytes().take_while(u8::is_ascii_digit).count().min(hi);
                    if n < lo || n != rest.len() {
                        return false;
                    }
                    rest = "";
                    a = tail;
                } else if let Some(tail) = a.strip_prefix('[') {
                    let (class, tail) = tail.split_once(']').unwrap();
                    let c = match rest.chars().next() {
                        Some(c) => c,
                        None => return false,
                    };
                    let ok = if class.len() == 3 {
                        (class.as_bytes()[0]..=class.as_bytes()[2]).contains(&(c as u8))
                    } else {
                        class.contains(c)
                    };
                    if !ok {
                        return false;
                    }
                    rest = &rest[1..];
                    a = tail;
                } else {
                    let c = a.chars().next().unwrap();
                    if !rest.starts_with(c) {
                        return false;
                    }
                    rest = &rest[1..];
                    a = &a[1..];
                }
            }
            rest.is_empty()
        })
    }
}

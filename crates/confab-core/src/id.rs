//! Ids that carry their shard.
//!
//! Layout of a thread or comment id (DESIGN.md section 2), most significant bit first:
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
    ((t << (SHARD_BITS + SEQ_BITS)) | ((u64::from(parts.shard.0) & SHARD_MASK) << SEQ_BITS)
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
        IdGenerator { state: Mutex::new((0, 0)) }
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
        pack(IdParts { ms_since_epoch: ms, shard, seq })
    }
}

/// Serializes a plain 64-bit id as a decimal string, like the typed ids.
pub fn i64_as_string<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

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
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> { s.parse::<i64>().map($name) }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Accept "123" (the documented form) and 123 (lenient for scripts).
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Repr<'a> { S(&'a str), Owned(String), N(i64) }
                match Repr::deserialize(d)? {
                    Repr::S(s) => s.parse().map_err(serde::de::Error::custom),
                    Repr::Owned(s) => s.parse().map_err(serde::de::Error::custom),
                    Repr::N(n) => Ok($name(n)),
                }
            }
        }
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some("^[0-9]+$"))
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
        let parts = IdParts { ms_since_epoch: (1 << 40) - 1, shard: LogicalShard(4095), seq: 2047 };
        let id = pack(parts);
        assert!(id > 0, "the sign bit stays clear");
        assert_eq!(unpack(id), parts);
        let parts = IdParts { ms_since_epoch: 12345, shard: LogicalShard(7), seq: 3 };
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
        assert!(t + 5_000 > now && t < now + 5_000, "time bits track the clock");
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
        assert_eq!(LogicalShard::for_name("demo"), LogicalShard::for_name("demo"));
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
    }
}

//! Emoji reactions: the fixed set readers react with (on a comment, or on a whole thread above
//! its comments), and the counts kept on the comment's or thread's row.
//!
//! A reader holds at most one of each reaction per comment or thread (a toggle). The counts
//! travel with the row they belong to (a JSON object `{"like": 3, ...}` in its `reactions`
//! column), so a page read costs no extra statement; who reacted with what is kept in per-reader
//! rows beside it, read separately like a reader's own votes.

use crate::error::DomainError;
use std::collections::BTreeMap;

/// One reaction of the fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reaction {
    Like,
    Love,
    Laugh,
    Wow,
    Sad,
    Party,
}

impl Reaction {
    /// The set, in the order the widget shows it.
    pub const ALL: [Reaction; 6] = [
        Reaction::Like,
        Reaction::Love,
        Reaction::Laugh,
        Reaction::Wow,
        Reaction::Sad,
        Reaction::Party,
    ];

    /// Its name in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::Like => "like",
            Reaction::Love => "love",
            Reaction::Laugh => "laugh",
            Reaction::Wow => "wow",
            Reaction::Sad => "sad",
            Reaction::Party => "party",
        }
    }

    /// The emoji it is shown as.
    pub fn emoji(self) -> &'static str {
        match self {
            Reaction::Like => "\u{1F44D}",
            Reaction::Love => "\u{2764}\u{FE0F}",
            Reaction::Laugh => "\u{1F602}",
            Reaction::Wow => "\u{1F62E}",
            Reaction::Sad => "\u{1F622}",
            Reaction::Party => "\u{1F389}",
        }
    }

    /// A reaction by its name (`like`) or its emoji (`👍`, with or without the emoji
    /// variation selector); anything else is refused.
    pub fn parse(s: &str) -> Result<Reaction, DomainError> {
        let s = s.trim();
        let bare = s.trim_end_matches('\u{FE0F}');
        Reaction::ALL
            .into_iter()
            .find(|r| r.as_str() == s || r.emoji().trim_end_matches('\u{FE0F}') == bare)
            .ok_or_else(|| {
                DomainError::invalid(format!(
                    "emoji must be one of {}",
                    Reaction::ALL.map(Reaction::as_str).join(", ")
                ))
            })
    }

    /// The JSON path of its count in a `reactions` column (`$.like`; SQLite's `json_set`).
    pub fn json_path(self) -> String {
        format!("$.{}", self.as_str())
    }
}

/// The counts of a comment's or thread's reactions, as stored in its `reactions` column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReactionCounts(BTreeMap<Reaction, i64>);

impl ReactionCounts {
    /// Counts from the stored JSON object; names outside the set, non-numbers and counts
    /// below one are left out (a column that is not an object reads as no reactions).
    pub fn from_json(s: &str) -> ReactionCounts {
        let mut out = BTreeMap::new();
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(s) {
            for (k, v) in m {
                if let (Ok(r), Some(n)) = (Reaction::parse(&k), v.as_i64()) {
                    if n > 0 {
                        out.insert(r, n);
                    }
                }
            }
        }
        ReactionCounts(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, r: Reaction) -> i64 {
        self.0.get(&r).copied().unwrap_or(0)
    }

    /// The counts by name, only those above zero (the API's shape).
    pub fn to_map(&self) -> BTreeMap<String, i64> {
        self.0
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_emoji_only() {
        assert_eq!(Reaction::parse("like").unwrap(), Reaction::Like);
        assert_eq!(Reaction::parse("\u{1F44D}").unwrap(), Reaction::Like);
        assert_eq!(Reaction::parse("\u{2764}").unwrap(), Reaction::Love);
        assert_eq!(Reaction::parse("\u{2764}\u{FE0F}").unwrap(), Reaction::Love);
        assert!(Reaction::parse("\u{1F355}").is_err());
        assert!(Reaction::parse("").is_err());
        assert!(Reaction::parse("LIKE").is_err());
        for r in Reaction::ALL {
            assert_eq!(Reaction::parse(r.as_str()).unwrap(), r);
            assert_eq!(Reaction::parse(r.emoji()).unwrap(), r);
        }
    }

    #[test]
    fn counts_read_tolerantly() {
        let c = ReactionCounts::from_json(r#"{"like": 2, "sad": 0, "pizza": 4, "wow": "x"}"#);
        assert_eq!(c.get(Reaction::Like), 2);
        assert_eq!(c.get(Reaction::Sad), 0);
        assert_eq!(c.to_map().len(), 1);
        assert!(ReactionCounts::from_json("{}").is_empty());
        assert!(ReactionCounts::from_json("not json").is_empty());
    }
}

//! Sort orders and keyset cursors.
//!
//! Paging is by keyset, never by offset, so page N costs the same as page 1. A cursor is the
//! sort key of the last item shown, opaque to clients (base64url of `sort:score:id`). "Best" is
//! net votes (likes - dislikes) descending, then oldest first; the key is (score, id).

use crate::error::{DomainError, ErrorCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Sort {
    #[default]
    Best,
    Newest,
    Oldest,
    /// The comments moderators featured (any depth, newest first, no nested replies).
    Featured,
}

impl Sort {
    pub fn parse(s: &str) -> Result<Sort, DomainError> {
        match s {
            "best" => Ok(Sort::Best),
            "newest" => Ok(Sort::Newest),
            "oldest" => Ok(Sort::Oldest),
            "featured" => Ok(Sort::Featured),
            _ => Err(DomainError::invalid(
                "sort must be best, newest, oldest or featured",
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Best => "best",
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
            Sort::Featured => "featured",
        }
    }
}

/// Position after the last item of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub sort: Sort,
    /// Net votes of the last item (only meaningful for `Best`).
    pub score: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}:{}", self.sort.as_str(), self.score, self.id))
    }

    /// Decodes a cursor given by a client; it must have been made for `sort`.
    pub fn decode(s: &str, sort: Sort) -> Result<Cursor, DomainError> {
        let bad = || {
            DomainError::new(
                ErrorCode::BadCursor,
                "cursor is malformed or was made for another sort",
            )
        };
        if s.len() > 128 {
            return Err(bad());
        }
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
        let mut parts = text.split(':');
        let (Some(sort_s), Some(score), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let c_sort = Sort::parse(sort_s).map_err(|_| bad())?;
        if c_sort != sort {
            return Err(bad());
        }
        let score = score.parse().map_err(|_| bad())?;
        let id = id.parse().map_err(|_| bad())?;
        Ok(Cursor { sort, score, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for sort in [Sort::Best, Sort::Newest, Sort::Oldest] {
            let c = Cursor {
                sort,
                score: -3,
                id: 1234567890123,
            };
            assert_eq!(Cursor::decode(&c.encode(), sort).unwrap(), c);
        }
    }

    #[test]
    fn rejects_garbage_and_other_sorts() {
        let c = Cursor {
            sort: Sort::Best,
            score: 1,
            id: 2,
        }
        .encode();
        assert_eq!(
            Cursor::decode(&c, Sort::Newest).unwrap_err().code,
            ErrorCode::BadCursor
        );
        for bad in [
            "",
            "!!!",
            "YmVzdDox",
            &"A".repeat(200),
            &URL_SAFE_NO_PAD.encode("best:x:1"),
            &URL_SAFE_NO_PAD.encode("best:1:2:3"),
        ] {
            assert!(Cursor::decode(bad, Sort::Best).is_err(), "{bad}");
        }
    }
}

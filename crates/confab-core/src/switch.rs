//! Feature switches (after Disqus's gargoyle): named behaviours an operator turns off or on at
//! run time, for the whole site or one forum, for everyone or for a share of readers or staff.
//!
//! The rule, in one place ([`Switches::value`]):
//!
//! - Every switch is ON when no record says otherwise.
//! - The most specific record wins: the record for the request's forum, else the global record
//!   (forum `None`), else the default.
//! - A record without selectors gives its value (`on`) to every request in its scope.
//! - A record with selectors (`percent`, `staff`) gives its value to the requests any selector
//!   matches (a staff caller; or a reader whose stable bucket, [`bucket`] of the reader key, is
//!   below `percent`) and the opposite value to the rest of its scope.
//!
//! So `realtime on --percent 10` is on for 10 % of readers and off for the others,
//! `posting off --forum big` turns posting off on forum `big` only, and `gravatar on --staff`
//! shows avatars to staff only.

use crate::id::ForumId;
use crate::{DomainError, ErrorCode};

/// The built-in switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SwitchName {
    /// Readers' writes (post, edit, delete, vote, flag, sign-up); off: 503 `read_only`.
    Posting,
    /// Live threads (SSE and WebSocket); off: streams get `poll` and end, clients poll.
    Realtime,
    /// Creating accounts; off: 403 `signups_closed`.
    Signups,
    /// Gravatar images in pages (on top of the forum's own setting).
    Gravatar,
}

impl SwitchName {
    /// Every switch, in the order they are listed.
    pub const ALL: [SwitchName; 4] = [
        SwitchName::Posting,
        SwitchName::Realtime,
        SwitchName::Signups,
        SwitchName::Gravatar,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SwitchName::Posting => "posting",
            SwitchName::Realtime => "realtime",
            SwitchName::Signups => "signups",
            SwitchName::Gravatar => "gravatar",
        }
    }

    /// A switch by name; an unknown name is refused with the list of the valid ones.
    pub fn parse(s: &str) -> Result<SwitchName, DomainError> {
        let t = s.trim().to_ascii_lowercase();
        SwitchName::ALL
            .into_iter()
            .find(|n| n.as_str() == t)
            .ok_or_else(|| {
                let valid: Vec<&str> = SwitchName::ALL.iter().map(|n| n.as_str()).collect();
                DomainError::invalid(format!(
                    "unknown switch {s:?}: the switches are {}",
                    valid.join(", ")
                ))
            })
    }
}

impl std::fmt::Display for SwitchName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A share of readers, 1 to 100 percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Percent(u8);

impl Percent {
    pub fn parse(n: i64) -> Result<Percent, DomainError> {
        if (1..=100).contains(&n) {
            Ok(Percent(n as u8))
        } else {
            Err(DomainError::invalid("percent must be between 1 and 100"))
        }
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

/// A switch's setting in one scope, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchRecord {
    pub name: SwitchName,
    /// `None`: global.
    pub forum: Option<ForumId>,
    /// The value given to the requests the selectors match (all, without selectors).
    pub on: bool,
    /// Selector: the readers whose bucket is below this.
    pub percent: Option<Percent>,
    /// Selector: staff callers.
    pub staff: bool,
    /// Who made the change (`cli:USER`, or a staff account's username).
    pub changed_by: String,
    /// When (Unix ms).
    pub changed_at: i64,
}

/// Who a request is for, as far as selectors care.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reader<'a> {
    /// The caller is staff.
    pub staff: bool,
    /// The reader's stable key (account id, else anonymous-client id, else IP); `None`: nobody
    /// in particular (a page rendered ahead of readers), which no percent selector matches.
    pub key: Option<&'a str>,
}

impl SwitchRecord {
    /// Whether the record has selectors (else it applies to its whole scope).
    pub fn has_selectors(&self) -> bool {
        self.staff || self.percent.is_some()
    }

    /// The value this record gives a reader in its scope.
    pub fn value_for(&self, reader: &Reader) -> bool {
        if !self.has_selectors() {
            return self.on;
        }
        let by_staff = self.staff && reader.staff;
        let by_percent = match (self.percent, reader.key) {
            (Some(p), Some(k)) => bucket(k) < p.get(),
            _ => false,
        };
        if by_staff || by_percent {
            self.on
        } else {
            !self.on
        }
    }

    /// Selectors as shown (`10%`, `staff`, `10%+staff`, or empty).
    pub fn selectors(&self) -> String {
        let mut s = Vec::new();
        if let Some(p) = self.percent {
            s.push(format!("{}%", p.get()));
        }
        if self.staff {
            s.push("staff".to_string());
        }
        s.join("+")
    }
}

/// A reader's stable bucket, 0 to 99: FNV-1a (64-bit) of the key, modulo 100. The same key
/// lands in the same bucket on every node and in every version.
pub fn bucket(key: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 100) as u8
}

/// Every switch record, as the service keeps them in memory.
#[derive(Debug, Clone, Default)]
pub struct Switches {
    records: Vec<SwitchRecord>,
}

impl Switches {
    pub fn new(records: Vec<SwitchRecord>) -> Switches {
        Switches { records }
    }

    pub fn records(&self) -> &[SwitchRecord] {
        &self.records
    }

    /// The record that decides `name` for a request to `forum` (the forum's, else the global
    /// one); `None`: the default (on).
    pub fn effective(&self, name: SwitchName, forum: Option<ForumId>) -> Option<&SwitchRecord> {
        let of = |f: Option<ForumId>| self.records.iter().find(|r| r.name == name && r.forum == f);
        forum.and_then(|f| of(Some(f))).or_else(|| of(None))
    }

    /// The value of `name` for `reader` in `forum` (`None`: a request that names no forum).
    pub fn value(&self, name: SwitchName, forum: Option<ForumId>, reader: &Reader) -> bool {
        self.effective(name, forum)
            .is_none_or(|r| r.value_for(reader))
    }
}

/// The refusal of a write while `posting` is off.
pub fn read_only() -> DomainError {
    DomainError::new(
        ErrorCode::ReadOnly,
        "comments are read-only for now; try again in a little while",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: SwitchName, forum: Option<i64>, on: bool) -> SwitchRecord {
        SwitchRecord {
            name,
            forum: forum.map(ForumId),
            on,
            percent: None,
            staff: false,
            changed_by: "t".into(),
            changed_at: 0,
        }
    }

    const ANYONE: Reader = Reader {
        staff: false,
        key: Some("a:1"),
    };

    #[test]
    fn names_parse_and_unknown_ones_are_refused_with_the_list() {
        assert_eq!(SwitchName::parse("posting").unwrap(), SwitchName::Posting);
        assert_eq!(
            SwitchName::parse(" Realtime ").unwrap(),
            SwitchName::Realtime
        );
        let e = SwitchName::parse("comments").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(
            e.message.contains("posting, realtime, signups, gravatar"),
            "{e}"
        );
        assert!(Percent::parse(0).is_err());
        assert!(Percent::parse(101).is_err());
        assert_eq!(Percent::parse(100).unwrap().get(), 100);
    }

    #[test]
    fn every_switch_is_on_without_records() {
        let s = Switches::default();
        for n in SwitchName::ALL {
            assert!(s.value(n, Some(ForumId(1)), &ANYONE));
            assert!(s.value(n, None, &Reader::default()));
        }
    }

    #[test]
    fn the_most_specific_record_wins() {
        let s = Switches::new(vec![
            rec(SwitchName::Posting, None, false),
            rec(SwitchName::Posting, Some(2), true),
            rec(SwitchName::Gravatar, Some(3), false),
        ]);
        assert!(!s.value(SwitchName::Posting, Some(ForumId(1)), &ANYONE));
        assert!(!s.value(SwitchName::Posting, None, &ANYONE));
        assert!(s.value(SwitchName::Posting, Some(ForumId(2)), &ANYONE));
        assert!(!s.value(SwitchName::Gravatar, Some(ForumId(3)), &ANYONE));
        assert!(s.value(SwitchName::Gravatar, Some(ForumId(1)), &ANYONE));
        assert!(s.value(SwitchName::Realtime, Some(ForumId(3)), &ANYONE));
    }

    #[test]
    fn the_staff_selector_gives_the_value_to_staff_and_the_opposite_to_the_rest() {
        let mut r = rec(SwitchName::Gravatar, None, true);
        r.staff = true;
        let s = Switches::new(vec![r]);
        let staff = Reader {
            staff: true,
            key: Some("a:9"),
        };
        assert!(s.value(SwitchName::Gravatar, None, &staff));
        assert!(!s.value(SwitchName::Gravatar, None, &ANYONE));
        assert!(!s.value(SwitchName::Gravatar, None, &Reader::default()));
    }

    #[test]
    fn percent_is_stable_per_reader_and_close_to_its_share() {
        let mut r = rec(SwitchName::Realtime, None, true);
        r.percent = Some(Percent::parse(10).unwrap());
        let s = Switches::new(vec![r.clone()]);
        let keys: Vec<String> = (0..1000).map(|i| format!("anon-{i:08x}")).collect();
        let on = keys
            .iter()
            .filter(|k| {
                s.value(
                    SwitchName::Realtime,
                    None,
                    &Reader {
                        staff: false,
                        key: Some(k),
                    },
                )
            })
            .count();
        assert!((60..=140).contains(&on), "{on} of 1000 at 10 %");
        // The same reader gets the same answer every time (and the bucket is fixed forever).
        for k in &keys[..50] {
            let rd = Reader {
                staff: false,
                key: Some(k),
            };
            let first = s.value(SwitchName::Realtime, None, &rd);
            for _ in 0..3 {
                assert_eq!(s.value(SwitchName::Realtime, None, &rd), first);
            }
        }
        assert_eq!(bucket("a:1"), bucket("a:1"));
        assert_eq!(bucket(""), (0xcbf2_9ce4_8422_2325u64 % 100) as u8);
        // Off for a share: the opposite for the rest; nobody in particular is "the rest".
        r.on = false;
        let s = Switches::new(vec![r]);
        let off = keys
            .iter()
            .filter(|k| {
                !s.value(
                    SwitchName::Realtime,
                    None,
                    &Reader {
                        staff: false,
                        key: Some(k),
                    },
                )
            })
            .count();
        assert_eq!(off, on);
        assert!(s.value(SwitchName::Realtime, None, &Reader::default()));
        // 100 % is everyone with a key.
        let mut all = rec(SwitchName::Posting, None, false);
        all.percent = Some(Percent::parse(100).unwrap());
        assert!(keys.iter().all(|k| !all.value_for(&Reader {
            staff: false,
            key: Some(k)
        })));
    }

    #[test]
    fn selectors_show_as_text() {
        let mut r = rec(SwitchName::Realtime, None, true);
        assert_eq!(r.selectors(), "");
        r.percent = Some(Percent::parse(10).unwrap());
        r.staff = true;
        assert_eq!(r.selectors(), "10%+staff");
    }
}

//! Moderation rules that need no outside service: the settings a forum keeps for them, their
//! bounds, and the decision a text gets. Pure: the service gathers the facts (a store count, a
//! ban), this module decides, once, for posts and edits alike and for every backend.
//!
//! Matching: a text and a word list entry are both normalized (Unicode NFKC, then lower case),
//! split into words at Unicode word boundaries (UAX #29), and an entry matches where its words
//! appear in the text as consecutive whole words: `ass` does not match `class`, and the
//! full-width `ＳＰＡＭ` matches `spam`.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Most entries in one word list.
pub const MAX_WORDS: usize = 500;
/// Longest word list entry, in characters.
pub const MAX_WORD_CHARS: usize = 100;
/// Highest link limit, hold-first count and flag count a forum may set.
pub const MAX_LIMIT: u32 = 1000;
/// Most identical posts a duplicate rule may wait for.
pub const MAX_DUPLICATES: u32 = 100;
/// Longest duplicate window, in minutes (a day).
pub const MAX_DUPLICATE_MINUTES: u32 = 1440;

/// Counts in JSON: an integer, or a float with no fraction (`3.0`, as some clients write
/// numbers), from 0 to `u32::MAX`.
pub mod count {
    use serde::de::{Deserializer, Error, Visitor};
    use std::fmt;

    struct Count;
    impl Visitor<'_> for Count {
        type Value = u32;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer")
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<u32, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(E::custom(format!("{v} is not a non-negative integer")))
            }
        }
    }

    struct OptCount;
    impl<'de> Visitor<'de> for OptCount {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer or null")
        }
        fn visit_none<E: Error>(self) -> Result<Option<u32>, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Option<u32>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u32>, D::Error> {
            de(d).map(Some)
        }
    }

    pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        d.deserialize_any(Count)
    }

    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        d.deserialize_option(OptCount)
    }
}

/// Words a forum refuses (`block`) or holds for a moderator (`hold`), one entry per word or
/// phrase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WordLists {
    /// A text containing one of these is refused (`blocked_word`). At most 500 entries of at
    /// most 100 characters.
    #[serde(default)]
    #[schema(max_items = 500)]
    pub block: Vec<String>,
    /// A text containing one of these waits for a moderator. At most 500 entries of at most 100
    /// characters.
    #[serde(default)]
    #[schema(max_items = 500)]
    pub hold: Vec<String>,
}

impl WordLists {
    pub fn is_empty(&self) -> bool {
        self.block.is_empty() && self.hold.is_empty()
    }
}

/// New commenters wait for a moderator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    /// Hold an author's comments until this many of theirs were approved (0: off). Accounts
    /// are counted by account; guests by the e-mail address they give (a guest without one is
    /// always held while this is on).
    #[serde(default, deserialize_with = "count::de")]
    #[schema(maximum = 1000)]
    pub hold_first: u32,
}

/// The same text posted again and again is spam.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Duplicates {
    /// The `count`-th identical text (same author or address) within `minutes` is spam (0: off;
    /// else 2-100).
    #[serde(default, deserialize_with = "count::de")]
    #[schema(maximum = 100)]
    pub count: u32,
    /// The window, 1-1440 minutes (ignored while `count` is 0).
    #[serde(default, deserialize_with = "count::de")]
    #[schema(maximum = 1440)]
    pub minutes: u32,
}

/// Checks a forum's rule settings; the message names the setting at fault.
pub fn validate(
    words: &WordLists,
    max_links: Option<u32>,
    trust: &Trust,
    flags_to_hold: Option<u32>,
    dup: &Duplicates,
) -> Result<(), String> {
    for (name, list) in [("words.block", &words.block), ("words.hold", &words.hold)] {
        if list.len() > MAX_WORDS {
            return Err(format!("{name} holds at most {MAX_WORDS} entries"));
        }
        for w in list {
            let n = w.chars().count();
            if n == 0 || n > MAX_WORD_CHARS || w.trim().is_empty() {
                return Err(format!(
                    "each entry of {name} is 1-{MAX_WORD_CHARS} characters, not blank"
                ));
            }
            if w.chars().any(char::is_control) {
                return Err(format!(
                    "{name} entries must not contain control characters"
                ));
            }
            if words_of(&normalize(w)).is_empty() {
                return Err(format!("{name} entry {w:?} has no word in it"));
            }
        }
    }
    if max_links.is_some_and(|n| n > MAX_LIMIT) {
        return Err(format!("max_links must be between 0 and {MAX_LIMIT}"));
    }
    if trust.hold_first > MAX_LIMIT {
        return Err(format!(
            "trust.hold_first must be between 0 and {MAX_LIMIT}"
        ));
    }
    if flags_to_hold.is_some_and(|n| n == 0 || n > MAX_LIMIT) {
        return Err(format!("flags_to_hold must be between 1 and {MAX_LIMIT}"));
    }
    if dup.count != 0 {
        if !(2..=MAX_DUPLICATES).contains(&dup.count) {
            return Err(format!(
                "duplicates.count must be 0 (off) or between 2 and {MAX_DUPLICATES}"
            ));
        }
        if !(1..=MAX_DUPLICATE_MINUTES).contains(&dup.minutes) {
            return Err(format!(
                "duplicates.minutes must be between 1 and {MAX_DUPLICATE_MINUTES}"
            ));
        }
    }
    Ok(())
}

/// Unicode NFKC, then lower case: `ＳＰＡＭ` and `Spam` both become `spam`.
pub fn normalize(text: &str) -> String {
    text.nfkc().collect::<String>().to_lowercase()
}

/// The words of a normalized text, at Unicode word boundaries (punctuation and spaces are not
/// words).
pub fn words_of(text: &str) -> Vec<&str> {
    text.unicode_words().collect()
}

/// The first entry of `list` found in `text` as whole words, as the list spells it.
pub fn find_word<'a>(text: &str, list: &'a [String]) -> Option<&'a str> {
    if list.is_empty() {
        return None;
    }
    let norm = normalize(text);
    let words = words_of(&norm);
    list.iter()
        .find(|entry| {
            let e = normalize(entry);
            let want = words_of(&e);
            !want.is_empty() && words.windows(want.len()).any(|w| w == want.as_slice())
        })
        .map(String::as_str)
}

/// Links in rendered (sanitized) HTML: its `<a` elements.
pub fn count_links(html: &str) -> usize {
    html.match_indices("<a")
        .filter(|(i, _)| {
            matches!(
                html.as_bytes().get(i + 2),
                Some(b' ' | b'>' | b'\t' | b'\n')
            )
        })
        .count()
}

/// A text as duplicates are compared: normalized, runs of white space made one space, trimmed.
pub fn duplicate_key(text: &str) -> String {
    normalize(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prefix of the reason given to comments a shadow ban hides (their authors see them as
/// published).
pub const SHADOW_REASON: &str = "shadow ban";

/// The rules of a forum, as the decision reads them.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub words: &'a WordLists,
    pub max_links: Option<u32>,
    pub hold_first: u32,
    pub duplicates: Duplicates,
    /// The forum's moderation mode holds this text (`pre`, or `links` and it has a link).
    pub mode_holds: Option<&'static str>,
}

/// What is known about a text and its author.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The text as written (markdown).
    pub text: &'a str,
    /// Its rendered, sanitized HTML.
    pub html: &'a str,
    /// The author is shadow-banned.
    pub shadow: bool,
    /// Earlier texts by the same author or address within the duplicate window that are the
    /// same as this one (only read when the rule is on).
    pub earlier_duplicates: u32,
    /// The author's approved comments (only read when `hold_first` is on); `None`: an author
    /// who cannot be counted (a guest without an e-mail address).
    pub approved: Option<u32>,
}

/// What admission does with a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Publish,
    /// Refused: it contains a blocked word (the word is for the log, never the answer).
    Blocked(String),
    /// Hidden as spam, with the reason moderators see.
    Spam(String),
    /// Waits for a moderator, with the reason moderators see.
    Hold(String),
}

/// The decision, in this order: a blocked word refuses; a shadow ban hides as spam; the
/// duplicate rule marks spam; then a held word, the link limit, the new-commenter rule and the
/// moderation mode hold (the first that applies is the reason given).
pub fn decide(rules: &Rules<'_>, facts: &Facts<'_>) -> Verdict {
    if let Some(w) = find_word(facts.text, &rules.words.block) {
        return Verdict::Blocked(w.to_string());
    }
    if facts.shadow {
        return Verdict::Spam(SHADOW_REASON.to_string());
    }
    let d = rules.duplicates;
    if d.count >= 2 && facts.earlier_duplicates + 1 >= d.count {
        return Verdict::Spam(format!(
            "spam: the same text posted {} times in {} minutes",
            facts.earlier_duplicates + 1,
            d.minutes
        ));
    }
    if let Some(w) = find_word(facts.text, &rules.words.hold) {
        return Verdict::Hold(format!("held: word '{w}'"));
    }
    if let Some(limit) = rules.max_links {
        let n = count_links(facts.html);
        if n > limit as usize {
            return Verdict::Hold(format!("held: {n} links (limit {limit})"));
        }
    }
    if rules.hold_first > 0 {
        match facts.approved {
            None => {
                return Verdict::Hold(format!(
                    "held: new commenter (no e-mail address to count approvals by; {} needed)",
                    rules.hold_first
                ))
            }
            Some(n) if n < rules.hold_first => {
                return Verdict::Hold(format!(
                    "held: new commenter ({n} of {} approved)",
                    rules.hold_first
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(mode) = rules.mode_holds {
        return Verdict::Hold(format!("held: moderation mode {mode}"));
    }
    Verdict::Publish
}

/// The reason a comment held by readers' flags carries.
pub fn flagged_reason(readers: i64) -> String {
    format!("held: flagged by {readers} readers")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn whole_words_only() {
        let l = list(&["ass"]);
        assert_eq!(find_word("a first-class post", &l), None);
        assert_eq!(find_word("Classic", &l), None);
        assert_eq!(find_word("what an ASS.", &l), Some("ass"));
        assert_eq!(find_word("ass", &l), Some("ass"));
        assert_eq!(find_word("(ass)", &l), Some("ass"));
    }

    #[test]
    fn normalized_forms_match() {
        let l = list(&["spam"]);
        assert_eq!(find_word("ＳＰＡＭ here", &l), Some("spam"));
        assert_eq!(find_word("SpAm", &l), Some("spam"));
        // An entry written in capitals or full width matches too.
        assert_eq!(
            find_word("buy spam", &list(&["ＳＰＡＭ"])),
            Some("ＳＰＡＭ")
        );
        // Compatibility forms: the "ﬁ" ligature is "fi".
        assert_eq!(find_word("ﬁne words", &list(&["fine"])), Some("fine"));
        assert_eq!(find_word("spammer", &l), None);
    }

    #[test]
    fn phrases_match_consecutive_words() {
        let l = list(&["buy now"]);
        assert_eq!(find_word("Please BUY   now!", &l), Some("buy now"));
        assert_eq!(find_word("buy it now", &l), None);
        assert_eq!(find_word("buynow", &l), None);
    }

    #[test]
    fn non_latin_words() {
        let l = list(&["дурак"]);
        assert_eq!(find_word("Ты ДУРАК!", &l), Some("дурак"));
        assert_eq!(find_word("дураки", &l), None);
    }

    #[test]
    fn links_are_counted_in_html() {
        assert_eq!(count_links("<p>no links, an <abbr>abbr</abbr></p>"), 0);
        assert_eq!(
            count_links(
                r#"<p><a href="https://a">a</a> and <a href="https://b" rel="nofollow">b</a></p>"#
            ),
            2
        );
        assert_eq!(count_links("<p>&lt;a href=x&gt;</p>"), 0);
        let r = crate::render::render_markdown("[one](https://a.example) <https://b.example>");
        assert_eq!(count_links(&r.html), 2);
    }

    #[test]
    fn duplicate_keys_ignore_case_and_spacing() {
        assert_eq!(duplicate_key("Buy  NOW\n"), duplicate_key("buy now"));
        assert_ne!(duplicate_key("buy now"), duplicate_key("buy now!"));
    }

    fn facts<'a>(text: &'a str, html: &'a str) -> Facts<'a> {
        Facts {
            text,
            html,
            shadow: false,
            earlier_duplicates: 0,
            approved: Some(10),
        }
    }

    #[test]
    fn decision_order() {
        let words = WordLists {
            block: list(&["nasty"]),
            hold: list(&["offer"]),
        };
        let rules = Rules {
            words: &words,
            max_links: Some(1),
            hold_first: 2,
            duplicates: Duplicates {
                count: 3,
                minutes: 10,
            },
            mode_holds: Some("pre"),
        };
        let two_links = r#"<a href="x">1</a><a href="y">2</a>"#;
        // A blocked word refuses whatever else holds, shadow bans included.
        let f = Facts {
            shadow: true,
            approved: Some(0),
            ..facts("a nasty offer", two_links)
        };
        assert_eq!(decide(&rules, &f), Verdict::Blocked("nasty".into()));
        // A shadow ban comes before duplicates and holds.
        let f = Facts {
            shadow: true,
            earlier_duplicates: 5,
            ..facts("an offer", two_links)
        };
        assert_eq!(decide(&rules, &f), Verdict::Spam(SHADOW_REASON.into()));
        // Duplicates: the third identical text is spam, the second is not.
        let f = Facts {
            earlier_duplicates: 2,
            ..facts("an offer", "")
        };
        assert_eq!(
            decide(&rules, &f),
            Verdict::Spam("spam: the same text posted 3 times in 10 minutes".into())
        );
        let f = Facts {
            earlier_duplicates: 1,
            ..facts("an offer", "")
        };
        assert_eq!(
            decide(&rules, &f),
            Verdict::Hold("held: word 'offer'".into())
        );
        // Then links, then the new-commenter rule, then the mode.
        assert_eq!(
            decide(&rules, &facts("hi", two_links)),
            Verdict::Hold("held: 2 links (limit 1)".into())
        );
        let f = Facts {
            approved: Some(1),
            ..facts("hi", "")
        };
        assert_eq!(
            decide(&rules, &f),
            Verdict::Hold("held: new commenter (1 of 2 approved)".into())
        );
        let f = Facts {
            approved: None,
            ..facts("hi", "")
        };
        assert!(
            matches!(decide(&rules, &f), Verdict::Hold(r) if r.starts_with("held: new commenter"))
        );
        assert_eq!(
            decide(&rules, &facts("hi", "")),
            Verdict::Hold("held: moderation mode pre".into())
        );
        let open = Rules {
            mode_holds: None,
            ..rules
        };
        assert_eq!(
            decide(&open, &facts("hi", "<a href=x>1</a>")),
            Verdict::Publish
        );
    }

    #[test]
    fn rules_off_publish() {
        let words = WordLists::default();
        let rules = Rules {
            words: &words,
            max_links: None,
            hold_first: 0,
            duplicates: Duplicates::default(),
            mode_holds: None,
        };
        let f = Facts {
            approved: None,
            earlier_duplicates: 50,
            ..facts("anything", "<a href=x>1</a>")
        };
        assert_eq!(decide(&rules, &f), Verdict::Publish);
    }

    #[test]
    fn counts_take_integral_floats() {
        let d: Duplicates = serde_json::from_str(r#"{"count": 3.0, "minutes": 10}"#).unwrap();
        assert_eq!((d.count, d.minutes), (3, 10));
        assert!(serde_json::from_str::<Duplicates>(r#"{"count": 2.5}"#).is_err());
        assert!(serde_json::from_str::<Trust>(r#"{"hold_first": -1}"#).is_err());
        assert!(serde_json::from_str::<Trust>(r#"{"hold_first": 1, "x": 1}"#).is_err());
    }

    #[test]
    fn bounds() {
        let ok = WordLists::default();
        let t = Trust::default();
        let d = Duplicates::default();
        assert!(validate(&ok, Some(0), &t, Some(1), &d).is_ok());
        let long = WordLists {
            block: vec!["x".repeat(101)],
            hold: vec![],
        };
        assert!(validate(&long, None, &t, None, &d).is_err());
        let many = WordLists {
            block: vec![],
            hold: vec!["w".to_string(); 501],
        };
        assert!(validate(&many, None, &t, None, &d).is_err());
        let punct = WordLists {
            block: vec!["!!!".into()],
            hold: vec![],
        };
        assert!(validate(&punct, None, &t, None, &d).is_err());
        assert!(validate(&ok, Some(1001), &t, None, &d).is_err());
        assert!(validate(&ok, None, &t, Some(0), &d).is_err());
        let bad_dup = Duplicates {
            count: 1,
            minutes: 10,
        };
        assert!(validate(&ok, None, &t, None, &bad_dup).is_err());
        let no_window = Duplicates {
            count: 2,
            minutes: 0,
        };
        assert!(validate(&ok, None, &t, None, &no_window).is_err());
    }
}

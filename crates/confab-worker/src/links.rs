//! The signed links in Confab's mail. Each token is a [`Signer`] token of its own kind, so one
//! made for a purpose never verifies as another; the HTTP layer checks them with no database
//! access and acts only on POST (a GET shows a page with a button: mail scanners follow links).
//!
//! - `GET|POST /mail/confirm?t=`: confirm a subscription to a forum's reply mail (expires).
//! - `GET|POST /mail/unsubscribe?t=`: unsubscribe (never expires; the POST is RFC 8058's
//!   one-click `List-Unsubscribe=One-Click`). The token of a followed thread's mail stops only
//!   that thread's mail to that account (it unfollows).
//! - `GET|POST /mail/moderate?t=`: a moderator's approve / spam / delete of one comment
//!   (expires; checked against the account's current rights when used).
//! - `GET|POST /mail/account-email?t=`: give an account the address it signed up with, or the
//!   one its owner asked to change to (expires; the address must still be free).
//! - `GET|POST /mail/password-reset?t=`: set a new password (expires within the hour; bound
//!   to the account's password hash when it was made, so it works once).
//! - `GET|POST /mail/reader-data?t=`: a guest's data on a forum, by the address they
//!   commented with: download it, or erase it (expires within the hour; the erasure works once,
//!   recorded by the link's key).

use confab_core::id::{AccountId, CommentId, ForumId, ThreadId};
use confab_core::sign::Signer;

pub const CONFIRM_PATH: &str = "/mail/confirm";
pub const UNSUBSCRIBE_PATH: &str = "/mail/unsubscribe";
pub const MODERATE_PATH: &str = "/mail/moderate";
pub const ACCOUNT_EMAIL_PATH: &str = "/mail/account-email";
pub const PASSWORD_RESET_PATH: &str = "/mail/password-reset";
pub const READER_DATA_PATH: &str = "/mail/reader-data";

/// Confirmation links from before they named who asked (still honoured, with no owner).
const CONFIRM_UNOWNED: &str = "mail-confirm";
const CONFIRM: &str = "mail-confirm-owned";
const UNSUBSCRIBE: &str = "mail-unsubscribe";
const UNFOLLOW: &str = "mail-unfollow";
const MODERATE: &str = "mail-moderate";
const ACCOUNT_EMAIL: &str = "mail-account-email";
const PASSWORD_RESET: &str = "mail-password-reset";
const READER_DATA: &str = "mail-reader-data";
const PASSWORD_FINGERPRINT: &str = "password-fingerprint";

/// How long a confirmation link works.
pub const CONFIRM_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a moderation link works.
pub const MODERATE_TTL_MS: i64 = 14 * 24 * 3600 * 1000;

/// How long a password reset link works.
pub const PASSWORD_RESET_TTL_MS: i64 = 3600 * 1000;

/// How long a guest's data link works.
pub const READER_DATA_TTL_MS: i64 = 3600 * 1000;

/// What a guest's data link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderDataLink {
    pub forum: ForumId,
    pub email: String,
    /// The link's single-use key (the task that mailed it: a re-sent copy is the same link).
    pub key: String,
    pub expires_at: i64,
}

/// A link to the data `email` left on `forum`, made by task `task`.
pub fn reader_data_token(s: &Signer, forum: ForumId, email: &str, task: i64, now: i64) -> String {
    s.sign(
        READER_DATA,
        &format!(
            "{}|{}|{task}|{email}",
            forum.0,
            now.saturating_add(READER_DATA_TTL_MS)
        ),
    )
}

/// What a valid, unexpired guest's data token names.
pub fn verify_reader_data(s: &Signer, token: &str, now: i64) -> Option<ReaderDataLink> {
    let p = s.verify(READER_DATA, token)?;
    let mut it = p.splitn(4, '|');
    let forum = it.next()?.parse().ok().map(ForumId)?;
    let exp: i64 = it.next()?.parse().ok()?;
    let task: i64 = it.next()?.parse().ok()?;
    let email = it.next()?.to_string();
    (now <= exp && !email.is_empty()).then(|| ReaderDataLink {
        forum,
        email,
        key: format!("reader-data:{task}"),
        expires_at: exp,
    })
}

/// What a moderation link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModAction {
    Approve,
    Spam,
    Delete,
}

impl ModAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ModAction::Approve => "approve",
            ModAction::Spam => "spam",
            ModAction::Delete => "delete",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Self::Approve),
            "spam" => Some(Self::Spam),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// `base` + `path` + `?t=` + token (tokens are URL-safe).
pub fn url(base: &str, path: &str, token: &str) -> String {
    format!("{}{path}?t={token}", base.trim_end_matches('/'))
}

/// A confirmation link for `email`'s reply mail, asked for by `owner` (`a:<account>` or
/// `t:<anonymous token>`): confirming it subscribes the address for that owner's comments only.
pub fn confirm_token(s: &Signer, forum: ForumId, email: &str, owner: &str, now: i64) -> String {
    s.sign(
        CONFIRM,
        &format!(
            "{}|{}|{owner}|{email}",
            forum.0,
            now.saturating_add(CONFIRM_TTL_MS)
        ),
    )
}

/// The forum, address and owner of a valid, unexpired confirmation token.
pub fn verify_confirm(s: &Signer, token: &str, now: i64) -> Option<(ForumId, String, String)> {
    let (p, owned) = match s.verify(CONFIRM, token) {
        Some(p) => (p, true),
        None => (s.verify(CONFIRM_UNOWNED, token)?, false),
    };
    let mut it = p.splitn(if owned { 4 } else { 3 }, '|');
    let forum = it.next()?.parse().ok().map(ForumId)?;
    let exp: i64 = it.next()?.parse().ok()?;
    let owner = if owned {
        it.next()?.to_string()
    } else {
        String::new()
    };
    let email = it.next()?.to_string();
    (now <= exp && !email.is_empty()).then_some((forum, email, owner))
}

/// A link that gives `account` the address `email` (mailed to that address at sign-up).
pub fn account_email_token(s: &Signer, account: AccountId, email: &str, now: i64) -> String {
    s.sign(
        ACCOUNT_EMAIL,
        &format!(
            "{}|{}|{email}",
            account.0,
            now.saturating_add(CONFIRM_TTL_MS)
        ),
    )
}

/// The account and address of a valid, unexpired account e-mail token.
pub fn verify_account_email(s: &Signer, token: &str, now: i64) -> Option<(AccountId, String)> {
    let p = s.verify(ACCOUNT_EMAIL, token)?;
    let mut it = p.splitn(3, '|');
    let account = it.next()?.parse().ok().map(AccountId)?;
    let exp: i64 = it.next()?.parse().ok()?;
    let email = it.next()?.to_string();
    (now <= exp && !email.is_empty()).then_some((account, email))
}

/// A short keyed hash of an account's stored password hash: a reset link carries it, so the
/// link dies once the password changes (by the link itself or otherwise).
pub fn password_fingerprint(s: &Signer, password_hash: &str) -> String {
    s.keyed_hash(PASSWORD_FINGERPRINT, password_hash)
}

/// A link that sets a new password for `account`, whose stored hash is now `password_hash`.
pub fn password_reset_token(
    s: &Signer,
    account: AccountId,
    password_hash: &str,
    now: i64,
) -> String {
    s.sign(
        PASSWORD_RESET,
        &format!(
            "{}|{}|{}",
            account.0,
            now.saturating_add(PASSWORD_RESET_TTL_MS),
            password_fingerprint(s, password_hash)
        ),
    )
}

/// The account and password fingerprint of a valid, unexpired password reset token (the
/// caller compares the fingerprint with the account's current hash).
pub fn verify_password_reset(s: &Signer, token: &str, now: i64) -> Option<(AccountId, String)> {
    let p = s.verify(PASSWORD_RESET, token)?;
    let mut it = p.split('|');
    let account = it.next()?.parse().ok().map(AccountId)?;
    let exp: i64 = it.next()?.parse().ok()?;
    let fingerprint = it.next()?.to_string();
    (now <= exp && !fingerprint.is_empty() && it.next().is_none()).then_some((account, fingerprint))
}

pub fn unsubscribe_token(s: &Signer, forum: ForumId, email: &str) -> String {
    s.sign(UNSUBSCRIBE, &format!("{}|{email}", forum.0))
}

pub fn verify_unsubscribe(s: &Signer, token: &str) -> Option<(ForumId, String)> {
    let p = s.verify(UNSUBSCRIBE, token)?;
    let (forum, email) = p.split_once('|')?;
    let forum = forum.parse().ok().map(ForumId)?;
    (!email.is_empty()).then(|| (forum, email.to_string()))
}

/// The unsubscribe link of a followed thread's mail: unfollows `thread` for `account`.
pub fn unfollow_token(
    s: &Signer,
    forum: ForumId,
    thread: ThreadId,
    account: AccountId,
    email: &str,
) -> String {
    s.sign(
        UNFOLLOW,
        &format!("{}|{}|{}|{email}", thread.0, account.0, forum.0),
    )
}

/// What an unsubscribe link stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsubscribe {
    /// Reply and mention mail from a forum to an address.
    Forum { forum: ForumId, email: String },
    /// One followed thread's mail to an account (at `email`).
    Thread {
        forum: ForumId,
        thread: ThreadId,
        account: AccountId,
        email: String,
    },
}

/// Either kind of unsubscribe token.
pub fn verify_any_unsubscribe(s: &Signer, token: &str) -> Option<Unsubscribe> {
    if let Some((forum, email)) = verify_unsubscribe(s, token) {
        return Some(Unsubscribe::Forum { forum, email });
    }
    let p = s.verify(UNFOLLOW, token)?;
    let mut it = p.splitn(4, '|');
    let thread = it.next()?.parse().ok().map(ThreadId)?;
    let account = it.next()?.parse().ok().map(AccountId)?;
    let forum = it.next()?.parse().ok().map(ForumId)?;
    let email = it.next().filter(|e| !e.is_empty())?.to_string();
    Some(Unsubscribe::Thread {
        forum,
        thread,
        account,
        email,
    })
}

pub fn moderate_token(
    s: &Signer,
    comment: CommentId,
    account: AccountId,
    action: ModAction,
    now: i64,
) -> String {
    s.sign(
        MODERATE,
        &format!(
            "{}|{}|{}|{}",
            comment.0,
            account.0,
            action.as_str(),
            now.saturating_add(MODERATE_TTL_MS)
        ),
    )
}

/// The comment, moderator and action of a valid, unexpired moderation token.
pub fn verify_moderate(
    s: &Signer,
    token: &str,
    now: i64,
) -> Option<(CommentId, AccountId, ModAction)> {
    let p = s.verify(MODERATE, token)?;
    let mut it = p.split('|');
    let comment = it.next()?.parse().ok().map(CommentId)?;
    let account = it.next()?.parse().ok().map(AccountId)?;
    let action = ModAction::parse(it.next()?)?;
    let exp: i64 = it.next()?.parse().ok()?;
    (now <= exp && it.next().is_none()).then_some((comment, account, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfollow_tokens_round_trip_and_are_not_forum_unsubscribes() {
        let s = Signer::new(b"unfollow-test");
        let t = unfollow_token(&s, ForumId(1), ThreadId(2), AccountId(3), "a|b@x.example");
        assert_eq!(verify_unsubscribe(&s, &t), None);
        assert_eq!(
            verify_any_unsubscribe(&s, &t),
            Some(Unsubscribe::Thread {
                forum: ForumId(1),
                thread: ThreadId(2),
                account: AccountId(3),
                email: "a|b@x.example".into()
            })
        );
        let f = unsubscribe_token(&s, ForumId(1), "c@x.example");
        assert_eq!(
            verify_any_unsubscribe(&s, &f),
            Some(Unsubscribe::Forum {
                forum: ForumId(1),
                email: "c@x.example".into()
            })
        );
        assert_eq!(verify_any_unsubscribe(&s, "x.y"), None);
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_purpose() {
        let s = Signer::new(b"k");
        let now = 1_800_000_000_000;
        let c = confirm_token(&s, ForumId(3), "a|b@example.com", "t:abc", now);
        assert_eq!(
            verify_confirm(&s, &c, now),
            Some((
                ForumId(3),
                "a|b@example.com".to_string(),
                "t:abc".to_string()
            ))
        );
        // A link mailed before owners were kept still confirms (for no owner).
        let old = s.sign(
            CONFIRM_UNOWNED,
            &format!("3|{}|a|b@example.com", now + 1000),
        );
        assert_eq!(
            verify_confirm(&s, &old, now),
            Some((ForumId(3), "a|b@example.com".to_string(), String::new()))
        );
        assert_eq!(
            verify_confirm(&s, &c, now + CONFIRM_TTL_MS + 1),
            None,
            "expired"
        );
        let a = account_email_token(&s, AccountId(7), "a|b@example.com", now);
        assert_eq!(
            verify_account_email(&s, &a, now),
            Some((AccountId(7), "a|b@example.com".to_string()))
        );
        assert_eq!(
            verify_account_email(&s, &a, now + CONFIRM_TTL_MS + 1),
            None,
            "expired"
        );
        assert_eq!(
            verify_confirm(&s, &a, now),
            None,
            "an account link is not a subscription link"
        );
        assert_eq!(
            verify_unsubscribe(&s, &c),
            None,
            "a confirmation token does not unsubscribe"
        );
        let u = unsubscribe_token(&s, ForumId(3), "x@example.com");
        assert_eq!(
            verify_unsubscribe(&s, &u),
            Some((ForumId(3), "x@example.com".to_string()))
        );
        assert_eq!(verify_confirm(&s, &u, now), None);
        assert_eq!(verify_unsubscribe(&Signer::new(b"other"), &u), None);
        let m = moderate_token(&s, CommentId(9), AccountId(4), ModAction::Spam, now);
        assert_eq!(
            verify_moderate(&s, &m, now),
            Some((CommentId(9), AccountId(4), ModAction::Spam))
        );
        assert_eq!(verify_moderate(&s, &m, now + MODERATE_TTL_MS + 1), None);
        assert_eq!(verify_moderate(&s, "junk", now), None);
        let r = password_reset_token(&s, AccountId(5), "$argon2id$old", now);
        let fp = password_fingerprint(&s, "$argon2id$old");
        assert_eq!(
            verify_password_reset(&s, &r, now),
            Some((AccountId(5), fp.clone()))
        );
        assert_eq!(
            verify_password_reset(&s, &r, now + PASSWORD_RESET_TTL_MS),
            Some((AccountId(5), fp.clone())),
            "still works at the end of its hour"
        );
        assert_eq!(
            verify_password_reset(&s, &r, now + PASSWORD_RESET_TTL_MS + 1),
            None,
            "expired after one hour"
        );
        assert_ne!(
            fp,
            password_fingerprint(&s, "$argon2id$new"),
            "another password hash, another fingerprint"
        );
        assert_eq!(verify_account_email(&s, &r, now), None);
        assert_eq!(verify_password_reset(&s, &a, now), None);
        assert_eq!(verify_password_reset(&Signer::new(b"other"), &r, now), None);
        assert_eq!(
            url("http://h/", CONFIRM_PATH, "t.k"),
            "http://h/mail/confirm?t=t.k"
        );
    }

    #[test]
    fn reader_data_links_expire_and_bind_their_purpose() {
        let s = Signer::new(b"secret");
        let now = 1_000_000;
        let t = reader_data_token(&s, ForumId(3), "a@example.com", 42, now);
        let l = verify_reader_data(&s, &t, now).unwrap();
        assert_eq!(
            (l.forum, l.email.as_str(), l.key.as_str()),
            (ForumId(3), "a@example.com", "reader-data:42")
        );
        assert!(verify_reader_data(&s, &t, now + READER_DATA_TTL_MS).is_some());
        assert_eq!(
            verify_reader_data(&s, &t, now + READER_DATA_TTL_MS + 1),
            None
        );
        assert_eq!(verify_reader_data(&Signer::new(b"other"), &t, now), None);
        let reset = password_reset_token(&s, AccountId(5), "h", now);
        assert_eq!(verify_reader_data(&s, &reset, now), None);
    }
}

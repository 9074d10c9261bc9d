//! Bans as moderators choose them and as people see them: what a ban from a comment matches,
//! for how long, how a banned value is shown (masked), and what a banned author is told.
//!
//! IP bans are the ones that hurt the innocent (a shared network, the site owner's own
//! connection), so they default to one day, and the service refuses one that would match the
//! moderator making it and never applies one to a forum's moderators.

use crate::{rfc3339, DomainError};

/// One day, in seconds: how long an IP ban lasts unless the moderator says otherwise.
pub const IP_BAN_DEFAULT_SECS: i64 = 24 * 3600;

/// What a ban made from a comment matches: the choices of the dashboard's ban dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanChoice {
    /// The author's account (signed-in authors).
    Account,
    /// The e-mail a guest gave.
    Email,
    /// The address the comment came from.
    Ip,
    /// The address and the e-mail (two bans).
    IpEmail,
}

impl BanChoice {
    pub fn parse(s: &str) -> Result<BanChoice, DomainError> {
        match s {
            "account" => Ok(BanChoice::Account),
            "email" => Ok(BanChoice::Email),
            "ip" => Ok(BanChoice::Ip),
            "ip+email" => Ok(BanChoice::IpEmail),
            _ => Err(DomainError::invalid(
                "kind must be account, email, ip or ip+email",
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            BanChoice::Account => "account",
            BanChoice::Email => "email",
            BanChoice::Ip => "ip",
            BanChoice::IpEmail => "ip+email",
        }
    }
    /// The choices an author has: an account author their account or address; a guest their
    /// e-mail (if they gave one), their address, or both.
    pub fn for_author(account: bool, email: bool) -> Vec<BanChoice> {
        match (account, email) {
            (true, _) => vec![BanChoice::Account, BanChoice::Ip],
            (false, true) => vec![BanChoice::Email, BanChoice::Ip, BanChoice::IpEmail],
            (false, false) => vec![BanChoice::Ip],
        }
    }
}

/// How long a ban lasts, as the dialog offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanDuration {
    Day,
    Week,
    Forever,
}

impl BanDuration {
    pub fn parse(s: &str) -> Result<BanDuration, DomainError> {
        match s {
            "day" => Ok(BanDuration::Day),
            "week" => Ok(BanDuration::Week),
            "forever" => Ok(BanDuration::Forever),
            _ => Err(DomainError::invalid(
                "duration must be day, week or forever",
            )),
        }
    }
    /// Seconds; `None`: permanent.
    pub fn secs(self) -> Option<i64> {
        match self {
            BanDuration::Day => Some(24 * 3600),
            BanDuration::Week => Some(7 * 24 * 3600),
            BanDuration::Forever => None,
        }
    }
}

/// An e-mail as the ban list shows it: the first letter of the local part and the domain
/// (`t***@example.com`).
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// An address as the ban list shows it: IPv4 without its last part (`203.0.113.x`), IPv6
/// with its first 48 bits only (`2001:db8:1::x`).
pub fn mask_ip(ip: &std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.x", o[0], o[1], o[2])
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::x", s[0], s[1], s[2])
        }
    }
}

/// What a banned author is told: until when (UTC, to the minute), and why if a reason was
/// given.
pub fn banned_message(until: Option<i64>, reason: Option<&str>) -> String {
    let mut m = match until {
        Some(ms) => {
            let t = rfc3339(ms);
            format!(
                "You can't comment on this site until {} {} UTC",
                &t[..10],
                &t[11..16]
            )
        }
        None => "You can't comment on this site".to_string(),
    };
    match reason {
        Some(r) => {
            m.push_str(": ");
            m.push_str(r);
        }
        None => m.push('.'),
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_follow_the_author() {
        assert_eq!(
            BanChoice::for_author(true, true),
            vec![BanChoice::Account, BanChoice::Ip]
        );
        assert_eq!(BanChoice::for_author(false, false), vec![BanChoice::Ip]);
        assert_eq!(BanChoice::for_author(false, true).len(), 3);
        assert!(BanChoice::parse("ip+email").is_ok());
        assert!(BanChoice::parse("subnet").is_err());
        assert!(BanDuration::parse("month").is_err());
        assert_eq!(BanDuration::Week.secs(), Some(604_800));
        assert_eq!(BanDuration::Forever.secs(), None);
    }

    #[test]
    fn masks() {
        assert_eq!(mask_email("troll@example.com"), "t***@example.com");
        assert_eq!(mask_ip(&"203.0.113.7".parse().unwrap()), "203.0.113.x");
        assert_eq!(
            mask_ip(&"2001:db8:1:2::7".parse().unwrap()),
            "2001:db8:1::x"
        );
    }

    #[test]
    fn messages() {
        assert_eq!(
            banned_message(Some(0), Some("spam")),
            "You can't comment on this site until 1970-01-01 00:00 UTC: spam"
        );
        assert_eq!(
            banned_message(None, None),
            "You can't comment on this site."
        );
    }
}

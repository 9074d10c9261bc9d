//! Parsed input: each type's only constructor checks the value, so code holding one never
//! re-checks it (parse, don't validate).

use crate::error::DomainError;

fn no_controls(s: &str, what: &str) -> Result<(), DomainError> {
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(DomainError::invalid(format!("{what} must not contain control characters")));
    }
    Ok(())
}

/// A comment's markdown source: 1..=max characters, not only whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentBody(String);

impl CommentBody {
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, DomainError> {
        let s = raw.trim_end();
        if s.trim().is_empty() {
            return Err(DomainError::invalid("body must not be empty"));
        }
        let n = s.chars().count();
        if n > max_chars {
            return Err(DomainError::invalid(format!("body is {n} characters; the limit is {max_chars}")));
        }
        no_controls(s, "body")?;
        Ok(CommentBody(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name for a guest or an account: 1..=max characters, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorName(String);

impl AuthorName {
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, DomainError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(DomainError::invalid("name must not be empty"));
        }
        if s.chars().count() > max_chars {
            return Err(DomainError::invalid(format!("name is longer than {max_chars} characters")));
        }
        if s.chars().any(char::is_control) {
            return Err(DomainError::invalid("name must not contain control characters"));
        }
        Ok(AuthorName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address: a plausible `local@domain` (local part at most 64 characters), lower-cased
/// domain; at most 254 characters as given. Lengths are in characters, as JSON Schema counts
/// them, so the API document can state the rule exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        let bad = || DomainError::invalid("email is not a valid address");
        if raw.chars().count() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty() || local.chars().count() > 64 || domain.is_empty() || !domain.contains('.') {
            return Err(bad());
        }
        if s.chars().any(|c| matches!(c, '<' | '>' | '"' | '(' | ')' | ',' | ';' | ':' | '\\' | '[' | ']'))
            || local.contains('@')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(bad());
        }
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A commenter's web site: an absolute http(s) URL, at most 500 characters as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUrl(String);

impl WebUrl {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        let bad = || DomainError::invalid("url must be an absolute http or https URL");
        if raw.chars().count() > 500 {
            return Err(DomainError::invalid("url is longer than 500 characters"));
        }
        let u = url::Url::parse(s).map_err(|_| bad())?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(bad());
        }
        Ok(WebUrl(u.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A forum's short name: 2..=64 of `a-z 0-9 -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForumName(String);

impl ForumName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = (2..=64).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-');
        if !ok {
            return Err(DomainError::invalid("forum name must be 2-64 characters of a-z, 0-9 and -"));
        }
        Ok(ForumName(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account's login name: 3..=32 of `A-Z a-z 0-9 _ . -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = (3..=32).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return Err(DomainError::invalid("username must be 3-32 characters of letters, digits, _ . -"));
        }
        Ok(Username(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed: 8..=256 characters. Never stored; hashed with argon2id.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let n = raw.chars().count();
        if !(8..=256).contains(&n) {
            return Err(DomainError::invalid("password must be 8-256 characters"));
        }
        Ok(Password(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A thread title: at most 300 characters, one line.
pub fn parse_title(raw: &str) -> Result<String, DomainError> {
    let s = raw.trim();
    if s.chars().count() > 300 {
        return Err(DomainError::invalid("title is longer than 300 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(DomainError::invalid("title must not contain control characters"));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_limits() {
        assert!(CommentBody::parse("", 10).is_err());
        assert!(CommentBody::parse(" \n\t ", 10).is_err());
        assert!(CommentBody::parse("héllo", 5).is_ok());
        assert!(CommentBody::parse("héllo!", 5).is_err());
        assert!(CommentBody::parse("a\u{7}b", 10).is_err());
        assert_eq!(CommentBody::parse("line\n\nnext  \n", 100).unwrap().as_str(), "line\n\nnext");
    }

    #[test]
    fn names_and_emails() {
        assert!(AuthorName::parse(&"n".repeat(100), 100).is_ok());
        assert!(AuthorName::parse(&"n".repeat(101), 100).is_err());
        assert!(AuthorName::parse("a\nb", 100).is_err());
        assert_eq!(Email::parse(" Bob@Example.COM ").unwrap().as_str(), "Bob@example.com");
        for bad in ["", "x", "a@b", "a@@b.c", "<a@b.c>", "a b@c.d", "a@b..c", "\"a\"@b.c"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_and_names() {
        assert!(WebUrl::parse("https://example.com/me").is_ok());
        assert!(WebUrl::parse("javascript:alert(1)").is_err());
        assert!(WebUrl::parse("ftp://example.com").is_err());
        assert!(WebUrl::parse("/relative").is_err());
        assert!(ForumName::parse("my-blog").is_ok());
        assert!(ForumName::parse("My Blog").is_err());
        assert!(Username::parse("ann_1").is_ok());
        assert!(Username::parse("a").is_err());
        assert!(Password::parse("short").is_err());
        assert_eq!(format!("{:?}", Password::parse("longenough").unwrap()), "Password(***)");
    }
}

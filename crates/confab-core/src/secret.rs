//! [`Secret`]: the one type for every secret in the configuration (the server key, database and
//! Redis connection strings, the SMTP password). Its `Debug` and `Display` print a redacted
//! form, so a config printed whole, or a connection string put in a log line, shows where it
//! points but never the password; code that needs the value asks for it by name ([`Secret::expose`]).

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A string that is never printed. Deserializes from a plain string (and only a string: a value
/// of another type is refused without being echoed in the error).
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that uses it (a connection, a key).
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// What may be shown: see [`redact`].
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(unset)")
        } else {
            write!(f, "Secret({})", redact(&self.0))
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        // `any`, not `string`: some formats (serde_json) report a non-string themselves, quoting it.
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

/// serde's own "invalid type" error quotes the value (`integer `31415926535``); a secret that
/// TOML read as a number or a boolean must not end up in the error that reports it.
fn not_a_string<E: de::Error>() -> E {
    E::custom("a secret must be a string (quote it; in a CONFAB_* variable too, e.g. CONFAB_MAIL__PASSWORD='\"123\"')")
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(not_a_string())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(not_a_string())
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        Err(not_a_string())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(not_a_string())
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        Err(not_a_string())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(not_a_string())
    }
    fn visit_char<E: de::Error>(self, _: char) -> Result<Secret, E> {
        Err(not_a_string())
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(not_a_string())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(not_a_string())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(not_a_string())
    }
}

/// URL schemes whose user-info and query are understood; any other string is hidden whole.
const URL_SCHEMES: &[&str] = &[
    "postgres",
    "postgresql",
    "redis",
    "rediss",
    "redis+unix",
    "unix",
    "valkey",
    "valkeys",
];

/// libpq's `key=value` connection keywords (those tokio-postgres takes).
const PG_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "options",
    "application_name",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslnegotiation",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
    "replication",
];

/// Whether a parameter's value is a credential.
fn sensitive(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|s| k.contains(s))
}

/// A secret as it may be shown:
/// - a connection URL (`postgres://`, `redis://`, ...) keeps its scheme, user, host, port,
///   database and parameters, with the password (and any parameter that holds a credential)
///   replaced by `***`: `postgres://confab:***@db:5432/confab`;
/// - a libpq `key=value` string keeps every keyword but `password`'s value;
/// - anything else (a key, a password) is `***`; the empty string stays empty.
pub fn redact(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    redact_url(s)
        .or_else(|| redact_keywords(s))
        .unwrap_or_else(|| "***".to_string())
}

fn redact_url(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    if !URL_SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(scheme)) {
        return None;
    }
    let mut out = format!("{scheme}://");
    // The last '@' ends the user-info even when the password has a raw '@' (or '/', '?') in it;
    // an '@' further right (in a parameter) only hides more than it needs to.
    let after = match rest.rfind('@') {
        Some(at) => {
            match rest[..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***@");
                }
                None => {
                    out.push_str(&rest[..at]);
                    out.push('@');
                }
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    let (path, query) = match after.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (after, None),
    };
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if sensitive(k) => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    Some(out)
}

/// `host=db user=confab password='x y' dbname=confab`: every keyword must be libpq's, or the
/// string is not taken for a connection string (a random key with a `=` in it is hidden whole).
fn redact_keywords(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s.trim_start();
    let mut any = false;
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim_end();
        if !PG_KEYWORDS.contains(&key) {
            return None;
        }
        let v = rest[eq + 1..].trim_start();
        let len = if let Some(quoted) = v.strip_prefix('\'') {
            // A quoted value ends at the first unescaped quote.
            let mut escaped = false;
            let end = quoted.char_indices().find(|&(_, c)| {
                let done = c == '\'' && !escaped;
                escaped = c == '\\' && !escaped;
                done
            })?;
            end.0 + 2
        } else {
            v.find(char::is_whitespace).unwrap_or(v.len())
        };
        let value = &v[..len];
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(if sensitive(key) { "***" } else { value });
        any = true;
        rest = v[len..].trim_start();
    }
    any.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_where_they_point() {
        for (dsn, shown) in [
            (
                "postgres://confab:hunter2@db.internal:5432/confab",
                "postgres://confab:***@db.internal:5432/confab",
            ),
            (
                "postgresql://u:p%40ss@h/db?sslmode=require&password=x",
                "postgresql://u:***@h/db?sslmode=require&password=***",
            ),
            (
                "postgres://u:raw@pass/with?q@h:5/db",
                "postgres://u:***@h:5/db",
            ),
            ("postgres://confab@db/confab", "postgres://confab@db/confab"),
            ("postgres://db/confab", "postgres://db/confab"),
            ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
            (
                "rediss://default:hunter2@cache:6380/",
                "rediss://default:***@cache:6380/",
            ),
            (
                "redis+unix:///run/redis.sock?db=1&pass=hunter2",
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
        ] {
            assert_eq!(redact(dsn), shown, "{dsn}");
        }
    }

    #[test]
    fn keyword_strings_hide_the_password() {
        assert_eq!(
            redact("host=db port=5432 user=confab password=hunter2 dbname=confab"),
            "host=db port=5432 user=confab password=*** dbname=confab"
        );
        assert_eq!(
            redact("host = db password = 'hun ter\\'2' dbname=x"),
            "host=db password=*** dbname=x"
        );
        // Unterminated quote: not a connection string, hidden whole.
        assert_eq!(redact("host=db password='hunter2"), "***");
    }

    #[test]
    fn anything_else_is_hidden_whole() {
        for s in [
            "hunter2",
            "c2VjcmV0Cg==",
            "a=b",
            "https://user:pw@example.com/",
            "x://y:z@w",
            "password=hunter2 nonsense=1",
        ] {
            assert_eq!(redact(s), "***", "{s}");
        }
        assert_eq!(redact(""), "");
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("postgres://confab:hunter2@db:5432/confab");
        assert_eq!(
            format!("{s:?}"),
            "Secret(postgres://confab:***@db:5432/confab)"
        );
        assert_eq!(s.to_string(), "postgres://confab:***@db:5432/confab");
        assert_eq!(s.expose(), "postgres://confab:hunter2@db:5432/confab");
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
        assert_eq!(format!("{:?}", Secret::default()), "Secret(unset)");
    }

    #[test]
    fn deserializes_from_a_string_only_and_never_echoes_the_value() {
        let s: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(s.expose(), "hunter2");
        for v in ["31415926535", "true", "2.75", "[27182818]"] {
            let e = serde_json::from_str::<Secret>(v).unwrap_err().to_string();
            assert!(
                e.contains("must be a string") && !e.contains(v.trim_matches(['[', ']'])),
                "{v}: {e}"
            );
        }
    }
}

//! Loading the configuration: defaults, then the TOML file, then `CONFAB_*` variables.
//!
//! Any key can be overridden from the environment: `CONFAB_LISTEN=0.0.0.0:80`, and nested
//! keys with a double underscore: `CONFAB_RATE_LIMIT__ENABLED=false`,
//! `CONFAB_LIMITS__MAX_BODY_CHARS=5000`. Values are read as TOML (numbers, booleans, arrays
//! like `["10.0.0.1"]`) and otherwise as plain strings.

use anyhow::{bail, Context, Result};
use confab_server::config::Config;
use std::path::Path;

/// The top-level keys of [`Config`] (a test checks this against `confab.example.toml`).
const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "secret",
    "trusted_proxies",
    "demo_forum",
    "limits",
    "rate_limit",
    "cache",
    "sqlite",
    "postgres",
    "tasks",
    "mail",
    "webhooks",
    "bus",
    "realtime",
    "connections",
    "log_format",
    "errors",
    "import",
    "spam",
    "auth",
    "images",
];

pub fn load(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<Config> {
    let mut doc: toml::Table = match file {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            text.parse().map_err(|e: toml::de::Error| {
                anyhow::anyhow!("parsing {}: {}", p.display(), syntax_error(&text, &e))
            })?
        }
        None => toml::Table::new(),
    };
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("CONFAB_") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        // Other CONFAB_* variables (CONFAB_LOG, CONFAB_CONFIG, CONFAB_PASSWORD, a test
        // harness's) are not configuration keys; a misspelt key inside a section is an error.
        if !TOP_LEVEL_KEYS.contains(&path[0].as_str()) {
            continue;
        }
        set(&mut doc, &path, parse_value(&v)).with_context(|| format!("applying {k}"))?;
    }
    // The error names the key (`mail.password: ...`); no value is quoted for a secret.
    let config: Config = serde_path_to_error::deserialize(toml::Value::Table(doc))
        .map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!(
                "{}{}",
                if path == "." {
                    String::new()
                } else {
                    format!("{path}: ")
                },
                e.into_inner()
            )
        })
        .context("invalid configuration")?;
    config
        .auth
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(config)
}

/// A syntax error by position and message only: toml's own `Display` quotes the offending line,
/// which may be a secret's (`password = hunter2`, unquoted).
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim();
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {msg}")
        }
        None => msg.to_string(),
    }
}

fn parse_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set(doc: &mut toml::Table, path: &[String], value: toml::Value) -> Result<()> {
    match path {
        [] => bail!("empty key"),
        [last] => {
            doc.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = doc
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set(t, rest, value),
                _ => bail!("{first} is not a table"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_body_chars = 500\n",
        )
        .unwrap();
        let env = vec![
            (
                "CONFAB_RATE_LIMIT__ENABLED".to_string(),
                "false".to_string(),
            ),
            ("CONFAB_LIMITS__PAGE_MAX".to_string(), "20".to_string()),
            ("CONFAB_DATA_DIR".to_string(), "/tmp/x y".to_string()),
            (
                "CONFAB_TRUSTED_PROXIES".to_string(),
                "[\"10.0.0.1\"]".to_string(),
            ),
            ("OTHER".to_string(), "1".to_string()),
        ];
        let c = load(Some(&f), env.into_iter()).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.limits.max_body_chars, 500);
        assert_eq!(c.limits.page_max, 20);
        assert_eq!(c.limits.page_default, 50, "untouched keys keep defaults");
        assert!(!c.rate_limit.enabled);
        assert_eq!(c.data_dir, std::path::PathBuf::from("/tmp/x y"));
        assert_eq!(c.trusted_proxies.len(), 1);
    }

    /// The documented example lists every key with its real default.
    #[test]
    fn example_config_documents_the_defaults() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../confab.example.toml");
        let c = load(Some(&path), std::iter::empty()).unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn top_level_keys_match_the_documented_config() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../confab.example.toml");
        let doc: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
        let mut documented: Vec<&str> = doc.keys().map(String::as_str).collect();
        let mut known = TOP_LEVEL_KEYS.to_vec();
        documented.sort_unstable();
        known.sort_unstable();
        assert_eq!(documented, known);
    }

    #[test]
    fn other_confab_variables_are_not_config() {
        let env = vec![
            ("CONFAB_TEST_PYTHON".to_string(), "/x/python".to_string()),
            ("CONFAB_PASSWORD".to_string(), "pw".to_string()),
            ("CONFAB_LOG".to_string(), "warn".to_string()),
        ];
        assert!(load(None, env.into_iter()).is_ok());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let env = vec![("CONFAB_LIMITS__NOPE".to_string(), "1".to_string())];
        assert!(load(None, env.into_iter()).is_err());
        for key in [
            "CONFAB_POSTGRES__PASSWORD",
            "CONFAB_BUS__REDIS_PASSWORD",
            "CONFAB_MAIL__PASS",
        ] {
            let e = load(None, vec![(key.to_string(), "x".to_string())].into_iter()).unwrap_err();
            assert!(format!("{e:#}").contains("unknown field"), "{key}: {e:#}");
        }
    }

    /// `[auth]`: a provider's unknown key is refused, and so is an incomplete provider; a
    /// complete one loads (the secret is not quoted in any error).
    #[test]
    fn auth_providers_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let load_text = |text: &str| {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).unwrap();
            load(Some(&path), std::iter::empty())
        };
        let good = "[[auth.oidc]]\nname = \"acme\"\nissuer = \"https://id.example\"\nclient_id = \"c\"\nclient_secret = \"hunter2-secret\"\n";
        let c = load_text(good).unwrap();
        assert_eq!(c.auth.oidc[0].name, "acme");
        let e = load_text(&format!("{good}scope = \"x\"\n")).unwrap_err();
        assert!(format!("{e:#}").contains("unknown field"), "{e:#}");
        let e = load_text(&good.replace("client_secret = \"hunter2-secret\"\n", "")).unwrap_err();
        assert!(format!("{e:#}").contains("client_secret"), "{e:#}");
        let e = load_text(&good.replace("https://", "http://")).unwrap_err();
        assert!(format!("{e:#}").contains("https"), "{e:#}");
        assert!(!format!("{e:#}").contains("hunter2"));
        let e =
            load_text("[auth.github]\nclient_id = \"x\"\nclient_secret = \"y\"\ntoken = \"z\"\n")
                .unwrap_err();
        assert!(format!("{e:#}").contains("unknown field"), "{e:#}");
    }

    /// Every secret of the configuration (file and environment) is shown redacted by the
    /// config's `Debug`, keeping where a connection string points.
    #[test]
    fn secrets_are_redacted_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "secret = \"server-secret-0123456789abcdef\"\n[postgres]\ncontrol = \"postgres://confab:pg-pass@db1:5432/confab\"\n\
             [mail]\nsmtp_host = \"smtp.example\"\nusername = \"confab\"\npassword = \"smtp-pass\"\n",
        )
        .unwrap();
        let env = vec![(
            "CONFAB_BUS__REDIS_URL".to_string(),
            "redis://:redis-pass@cache:6379/0".to_string(),
        )];
        let c = load(Some(&f), env.into_iter()).unwrap();
        assert_eq!(
            c.postgres.control.expose(),
            "postgres://confab:pg-pass@db1:5432/confab"
        );
        assert_eq!(c.bus.redis_url.expose(), "redis://:redis-pass@cache:6379/0");
        assert_eq!(c.mail.password.expose(), "smtp-pass");
        for shown in [format!("{c:?}"), format!("{c:#?}")] {
            for secret in ["server-secret", "pg-pass", "smtp-pass", "redis-pass"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(
                shown.contains("postgres://confab:***@db1:5432/confab"),
                "{shown}"
            );
            assert!(shown.contains("redis://:***@cache:6379/0"), "{shown}");
        }
    }

    /// A secret TOML reads as a number is refused by key, without its value in the error;
    /// a syntax error in the file is given by position, not by quoting the line.
    #[test]
    fn config_errors_do_not_quote_secrets() {
        let env = vec![(
            "CONFAB_MAIL__PASSWORD".to_string(),
            "31415926535".to_string(),
        )];
        let e = format!("{:#}", load(None, env.into_iter()).unwrap_err());
        assert!(
            !e.contains("31415926535") && e.contains("mail.password"),
            "{e}"
        );
        let quoted = vec![(
            "CONFAB_MAIL__PASSWORD".to_string(),
            "\"31415926535\"".to_string(),
        )];
        assert_eq!(
            load(None, quoted.into_iter())
                .unwrap()
                .mail
                .password
                .expose(),
            "31415926535"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[mail]\npassword = hunter2-unquoted\n").unwrap();
        let e = format!("{:#}", load(Some(&f), std::iter::empty()).unwrap_err());
        assert!(
            !e.contains("hunter2") && e.contains("line 2, column 12"),
            "{e}"
        );
    }
}

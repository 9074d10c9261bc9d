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
    "listen", "data_dir", "secret", "trusted_proxies", "demo_forum", "limits", "rate_limit", "cache", "sqlite", "postgres", "tasks",
    "mail", "webhooks", "bus", "realtime", "connections",
];

pub fn load(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<Config> {
    let mut doc: toml::Table = match file {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            text.parse().with_context(|| format!("parsing {}", p.display()))?
        }
        None => toml::Table::new(),
    };
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("CONFAB_") else { continue };
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        // Other CONFAB_* variables (CONFAB_LOG, CONFAB_CONFIG, CONFAB_PASSWORD, a test
        // harness's) are not configuration keys; a misspelt key inside a section is an error.
        if !TOP_LEVEL_KEYS.contains(&path[0].as_str()) {
            continue;
        }
        set(&mut doc, &path, parse_value(&v)).with_context(|| format!("applying {k}"))?;
    }
    let config: Config = toml::Value::Table(doc).try_into().context("invalid configuration")?;
    Ok(config)
}

fn parse_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
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
            let entry = doc.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
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
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\n[limits]\nmax_body_chars = 500\n").unwrap();
        let env = vec![
            ("CONFAB_RATE_LIMIT__ENABLED".to_string(), "false".to_string()),
            ("CONFAB_LIMITS__PAGE_MAX".to_string(), "20".to_string()),
            ("CONFAB_DATA_DIR".to_string(), "/tmp/x y".to_string()),
            ("CONFAB_TRUSTED_PROXIES".to_string(), "[\"10.0.0.1\"]".to_string()),
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
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../confab.example.toml");
        let c = load(Some(&path), std::iter::empty()).unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn top_level_keys_match_the_documented_config() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../confab.example.toml");
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
    }
}

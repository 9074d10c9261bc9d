//! `[auth]`: signing in with an OpenID Connect provider (`[[auth.oidc]]`) or GitHub
//! (`[auth.github]`). Read like the rest of the configuration (unknown keys refused), then
//! checked by [`AuthConfig::validate`] before the server starts.

use confab_core::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The server's public base URL, which providers redirect back to
    /// (`{public_url}/auth/{name}/callback`). Empty: `[mail] public_url`, else the scheme and
    /// `Host` of the request that begins the sign-in.
    pub public_url: String,
    /// Timeout of each call to a provider (discovery, keys, token, user info), in seconds.
    pub timeout_secs: u64,
    /// How long a reader has to finish signing in at the provider, in seconds.
    pub flow_secs: u64,
    /// OpenID Connect providers, each shown as a "Sign in with NAME" button.
    pub oidc: Vec<OidcProvider>,
    /// GitHub's OAuth app.
    pub github: Option<GithubProvider>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            public_url: String::new(),
            timeout_secs: 10,
            flow_secs: 600,
            oidc: Vec::new(),
            github: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    /// Short name: in URLs (`/auth/NAME`) and on the button. `a-z`, `0-9`, `-`; not `github`.
    pub name: String,
    /// What the button says after "Sign in with" (default: `name`).
    #[serde(default)]
    pub label: Option<String>,
    /// The issuer; `{issuer}/.well-known/openid-configuration` is read at the first sign-in.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubProvider {
    pub client_id: String,
    pub client_secret: Secret,
    /// GitHub's endpoints; overridable for GitHub Enterprise and for tests.
    pub authorize_url: String,
    pub token_url: String,
    pub api_url: String,
}

impl Default for GithubProvider {
    fn default() -> Self {
        GithubProvider {
            client_id: String::new(),
            client_secret: Secret::default(),
            authorize_url: "https://github.com/login/oauth/authorize".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            api_url: "https://api.github.com".into(),
        }
    }
}

/// Whether `s` is an `http(s)` URL; plain `http` only for a loopback host.
fn check_url(what: &str, s: &str) -> Result<(), String> {
    let u = url::Url::parse(s).map_err(|e| format!("{what}: {e}"))?;
    let loopback = matches!(
        u.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{what}: {s:?} must be an https URL (http only for localhost)"
        )),
    }
}

/// Whether `name` may name a provider.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

impl AuthConfig {
    /// Every provider complete and well-formed, names unique.
    pub fn validate(&self) -> Result<(), String> {
        if !self.public_url.is_empty() {
            url::Url::parse(&self.public_url).map_err(|e| format!("auth.public_url: {e}"))?;
        }
        if self.timeout_secs == 0 || self.timeout_secs > 120 {
            return Err("auth.timeout_secs: between 1 and 120".into());
        }
        if !(60..=3600).contains(&self.flow_secs) {
            return Err("auth.flow_secs: between 60 and 3600".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.oidc.iter().enumerate() {
            let at = format!("auth.oidc[{i}]");
            if !valid_name(&p.name) || p.name == "github" {
                return Err(format!(
                    "{at}.name: {:?}: 1-32 of a-z, 0-9 and -, not \"github\"",
                    p.name
                ));
            }
            if !seen.insert(p.name.as_str()) {
                return Err(format!("{at}.name: {:?} is named twice", p.name));
            }
            if let Some(l) = &p.label {
                if l.trim().is_empty() || l.chars().count() > 40 {
                    return Err(format!("{at}.label: 1-40 characters"));
                }
            }
            check_url(&format!("{at}.issuer"), &p.issuer)?;
            if p.client_id.trim().is_empty() {
                return Err(format!("{at}.client_id is empty"));
            }
            if p.client_secret.is_empty() {
                return Err(format!("{at}.client_secret is empty"));
            }
        }
        if let Some(g) = &self.github {
            if g.client_id.trim().is_empty() {
                return Err("auth.github.client_id is empty".into());
            }
            if g.client_secret.is_empty() {
                return Err("auth.github.client_secret is empty".into());
            }
            check_url("auth.github.authorize_url", &g.authorize_url)?;
            check_url("auth.github.token_url", &g.token_url)?;
            check_url("auth.github.api_url", &g.api_url)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(name: &str, issuer: &str) -> OidcProvider {
        OidcProvider {
            name: name.into(),
            label: None,
            issuer: issuer.into(),
            client_id: "c".into(),
            client_secret: "s".into(),
        }
    }

    #[test]
    fn providers_are_checked() {
        let mut c = AuthConfig::default();
        c.oidc.push(oidc("acme", "https://id.example.com"));
        assert!(c.validate().is_ok());
        c.oidc.push(oidc("local", "http://127.0.0.1:9000"));
        assert!(c.validate().is_ok());
        for bad in [
            oidc("acme", "https://x.example"),
            oidc("github", "https://x.example"),
            oidc("Bad Name", "https://x.example"),
            oidc("plain", "http://id.example.com"),
            oidc("nourl", "not a url"),
        ] {
            let mut c2 = c.clone();
            c2.oidc.push(bad);
            assert!(c2.validate().is_err());
        }
        let mut c3 = c.clone();
        c3.oidc[0].client_secret = Secret::default();
        assert!(c3.validate().is_err());
        let mut c4 = c.clone();
        c4.github = Some(GithubProvider::default());
        assert!(c4.validate().is_err(), "no client id");
        c4.github = Some(GithubProvider {
            client_id: "id".into(),
            client_secret: "s".into(),
            ..Default::default()
        });
        assert!(c4.validate().is_ok());
    }
}

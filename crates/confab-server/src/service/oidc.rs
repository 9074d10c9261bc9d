//! Signing in with what readers already have: an OpenID Connect provider (`[[auth.oidc]]`) or
//! GitHub (`[auth.github]`).
//!
//! The flow runs in a popup on this server: [`Service::auth_start`] sends the reader to the
//! provider with a fresh `state`, `nonce` and PKCE challenge, and keeps them (with the forum,
//! the page's origin and a deadline) in a signed, short-lived cookie, so any node of a fleet can
//! finish a flow another began. [`Service::auth_finish`] checks the cookie and the `state`,
//! redeems the code with the PKCE verifier, checks the ID token (signature from the provider's
//! keys, issuer, audience, expiry, nonce) and signs the reader in. An identity is (provider,
//! subject): the account linked to it, else the account whose address the provider says is
//! verified (then linked), else a new account.

use super::{Service, Session};
use crate::auth_config::{AuthConfig, GithubProvider, OidcProvider};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use confab_core::input::{AuthorName, Email};
use confab_core::{DomainError, ErrorCode};
use confab_store::identity::identity_username;
use confab_store::NewIdentityAccount;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The signed cookie's purpose.
const FLOW: &str = "auth-flow";
/// The cookie that carries a flow between its start and the provider's redirect back.
pub const FLOW_COOKIE: &str = "confab_auth";
/// How long discovered metadata and keys are used before they are read again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Largest answer read from a provider.
const MAX_ANSWER: usize = 256 * 1024;
/// Longest page origin a flow carries.
const MAX_ORIGIN: usize = 200;

/// The configured providers and the HTTP client that talks to them.
pub struct ExternalAuth {
    providers: Vec<Provider>,
    http: reqwest::Client,
    /// The public base URL (`auth.public_url`, else `mail.public_url`); unset: the request's.
    base: Option<String>,
    flow_ms: i64,
}

struct Provider {
    name: String,
    label: String,
    kind: Kind,
}

/// A provider's discovered metadata and when it was read.
type MetaCell = tokio::sync::Mutex<Option<(Instant, Arc<CoreProviderMetadata>)>>;

enum Kind {
    Oidc { cfg: OidcProvider, meta: MetaCell },
    Github(GithubProvider),
}

/// A provider as the widget shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderInfo {
    /// In the sign-in URL: `/auth/{name}`.
    pub name: String,
    /// What the button says after "Sign in with".
    pub label: String,
}

/// A flow begun: where to send the browser, and the cookie that remembers the flow.
pub struct AuthStarted {
    pub location: String,
    pub cookie: String,
    pub max_age_secs: i64,
}

/// A flow finished: the session, for the page at `origin`.
pub struct AuthDone {
    pub session: Session,
    pub origin: String,
}

/// A flow refused; `origin` when the flow's cookie was good (the popup can tell the page).
#[derive(Debug)]
pub struct AuthFailed {
    pub error: DomainError,
    pub origin: Option<String>,
}

/// What the signed cookie holds.
#[derive(Serialize, Deserialize)]
struct Flow {
    /// Provider.
    p: String,
    /// State, nonce, PKCE verifier.
    s: String,
    n: String,
    v: String,
    /// Forum and page origin.
    f: String,
    o: String,
    /// The redirect URI the flow began with (the token request repeats it).
    r: String,
    /// Deadline (ms).
    e: i64,
}

/// Who the provider says the reader is.
struct Identity {
    subject: String,
    verified_email: Option<String>,
    names: Vec<String>,
}

fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> DomainError {
    tracing::warn!(error = %e, "sign-in provider: {what}");
    DomainError::new(
        ErrorCode::Unavailable,
        format!("the sign-in provider could not be reached ({what})"),
    )
}

fn refused(msg: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::Unauthorized, msg)
}

impl ExternalAuth {
    pub fn new(config: &crate::config::Config) -> Result<ExternalAuth, DomainError> {
        let auth: &AuthConfig = &config.auth;
        auth.validate()
            .map_err(|e| DomainError::new(ErrorCode::InvalidInput, e))?;
        let mut providers = Vec::new();
        for p in &auth.oidc {
            providers.push(Provider {
                name: p.name.clone(),
                label: p.label.clone().unwrap_or_else(|| p.name.clone()),
                kind: Kind::Oidc {
                    cfg: p.clone(),
                    meta: tokio::sync::Mutex::new(None),
                },
            });
        }
        if let Some(g) = &auth.github {
            providers.push(Provider {
                name: "github".into(),
                label: "GitHub".into(),
                kind: Kind::Github(g.clone()),
            });
        }
        let timeout = Duration::from_secs(auth.timeout_secs.max(1));
        // No redirects: a provider's endpoints answer directly (and a redirect could carry a
        // code or token elsewhere).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent("confab")
            .build()
            .map_err(|e| unavailable("HTTP client", e))?;
        let base = [&auth.public_url, &config.mail.public_url]
            .into_iter()
            .map(|u| u.trim().trim_end_matches('/'))
            .find(|u| !u.is_empty())
            .map(str::to_string);
        Ok(ExternalAuth {
            providers,
            http,
            base,
            flow_ms: (auth.flow_secs as i64) * 1000,
        })
    }

    fn find(&self, name: &str) -> Result<&Provider, DomainError> {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| DomainError::not_found(&format!("sign-in provider {name:?}")))
    }

    /// Where the provider sends the reader back: under the configured public URL, else under
    /// `request_base` (the scheme and `Host` the browser reached this server at).
    fn redirect_uri(&self, provider: &str, request_base: &str) -> String {
        let base = self.base.as_deref().unwrap_or(request_base);
        format!("{base}/auth/{provider}/callback")
    }

    /// The provider's discovered metadata (with its keys), read again after [`METADATA_TTL`]
    /// or when `fresh` (an ID token signed with a key not yet seen).
    async fn metadata(
        &self,
        cfg: &OidcProvider,
        cell: &MetaCell,
        fresh: bool,
    ) -> Result<CoreProviderMetadata, DomainError> {
        let mut slot = cell.lock().await;
        if let Some((at, m)) = slot.as_ref() {
            if !fresh && at.elapsed() < METADATA_TTL {
                return Ok(CoreProviderMetadata::clone(m));
            }
        }
        let issuer = IssuerUrl::new(cfg.issuer.clone()).map_err(|e| unavailable("issuer", e))?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unavailable("discovery", e))?;
        *slot = Some((Instant::now(), Arc::new(m.clone())));
        Ok(m)
    }

    fn oidc_client(
        &self,
        redirect: &str,
        cfg: &OidcProvider,
        meta: CoreProviderMetadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        DomainError,
    > {
        let redirect =
            RedirectUrl::new(redirect.to_string()).map_err(|_| DomainError::internal())?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(cfg.client_id.clone()),
            Some(ClientSecret::new(cfg.client_secret.expose().to_string())),
        )
        .set_redirect_uri(redirect))
    }

    /// Reads a JSON answer of at most [`MAX_ANSWER`] bytes.
    async fn json<T: serde::de::DeserializeOwned>(
        what: &str,
        mut resp: reqwest::Response,
    ) -> Result<(reqwest::StatusCode, T), DomainError> {
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unavailable(what, e))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(unavailable(what, "answer too large"));
            }
            body.extend_from_slice(&chunk);
        }
        let v = serde_json::from_slice(&body).map_err(|e| unavailable(what, e))?;
        Ok((status, v))
    }

    async fn github_identity(
        &self,
        g: &GithubProvider,
        code: &str,
        verifier: &str,
        redirect: &str,
    ) -> Result<Identity, DomainError> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            access_token: Option<String>,
            error: Option<String>,
            error_description: Option<String>,
        }
        #[derive(Deserialize)]
        struct User {
            id: i64,
            login: String,
            name: Option<String>,
        }
        #[derive(Deserialize)]
        struct UserEmail {
            email: String,
            primary: bool,
            verified: bool,
        }
        let resp = self
            .http
            .post(&g.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("client_id", g.client_id.as_str()),
                ("client_secret", g.client_secret.expose()),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| unavailable("token", e))?;
        let (_, t): (_, TokenAnswer) = Self::json("token", resp).await?;
        let Some(token) = t.access_token else {
            return Err(refused(format!(
                "GitHub refused the sign-in: {}",
                t.error_description
                    .or(t.error)
                    .unwrap_or_else(|| "no access token".into())
            )));
        };
        let api = g.api_url.trim_end_matches('/');
        let get = |path: &str| {
            self.http
                .get(format!("{api}{path}"))
                .bearer_auth(&token)
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .send()
        };
        let (status, user): (_, User) = Self::json(
            "user",
            get("/user").await.map_err(|e| unavailable("user", e))?,
        )
        .await?;
        if !status.is_success() {
            return Err(refused("GitHub refused the access token"));
        }
        let resp = get("/user/emails")
            .await
            .map_err(|e| unavailable("e-mail addresses", e))?;
        // Without the user:email scope granted there is no list: no verified address.
        let emails: Vec<UserEmail> = if resp.status().is_success() {
            Self::json("e-mail addresses", resp).await?.1
        } else {
            Vec::new()
        };
        let verified_email = emails
            .into_iter()
            .find(|e| e.primary && e.verified)
            .map(|e| e.email);
        let mut names = Vec::new();
        names.extend(user.name);
        names.push(user.login);
        Ok(Identity {
            subject: user.id.to_string(),
            verified_email,
            names,
        })
    }

    async fn oidc_identity(
        &self,
        redirect: &str,
        cfg: &OidcProvider,
        cell: &MetaCell,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<Identity, DomainError> {
        let meta = self.metadata(cfg, cell, false).await?;
        let client = self.oidc_client(redirect, cfg, meta)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|_| unavailable("token", "the provider has no token endpoint"))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    refused(format!("the provider refused the code: {}", r.error()))
                }
                other => unavailable("token", other),
            })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| refused("the provider sent no ID token"))?;
        let nonce = Nonce::new(nonce.to_string());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(c) => c.clone(),
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                // Perhaps a new signing key: read the keys once more and check again.
                let meta = self.metadata(cfg, cell, true).await?;
                let client = self.oidc_client(redirect, cfg, meta)?;
                let verifier = client.id_token_verifier();
                let checked = id_token
                    .claims(&verifier, &nonce)
                    .map_err(|e| refused(format!("the ID token is not valid: {e}")))?
                    .clone();
                checked
            }
            Err(e) => return Err(refused(format!("the ID token is not valid: {e}"))),
        };
        let subject = claims.subject().clone();
        let mut email = claims.email().map(|e| e.as_str().to_string());
        let mut verified = claims.email_verified().unwrap_or(false);
        let mut names: Vec<String> = Vec::new();
        names.extend(
            claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
        );
        names.extend(claims.preferred_username().map(|u| u.as_str().to_string()));
        // Providers that keep the ID token small (code flow) give the rest at user info.
        if let Ok(req) = client.user_info(token.access_token().clone(), Some(subject.clone())) {
            let info: CoreUserInfoClaims = req
                .request_async(&self.http)
                .await
                .map_err(|e| unavailable("user info", e))?;
            if let Some(e) = info.email() {
                email = Some(e.as_str().to_string());
                verified = info.email_verified().unwrap_or(false);
            }
            let mut more: Vec<String> = Vec::new();
            more.extend(
                info.name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_string()),
            );
            more.extend(info.preferred_username().map(|u| u.as_str().to_string()));
            more.append(&mut names);
            names = more;
        }
        Ok(Identity {
            subject: subject.as_str().to_string(),
            verified_email: email.filter(|_| verified),
            names,
        })
    }
}

impl Service {
    /// The providers readers may sign in with.
    pub fn auth_providers(&self) -> Vec<ProviderInfo> {
        self.auth
            .providers
            .iter()
            .map(|p| ProviderInfo {
                name: p.name.clone(),
                label: p.label.clone(),
            })
            .collect()
    }

    /// Begins signing in with `provider` for the page at `origin`, one of `forum`'s sites.
    pub async fn auth_start(
        self: &Arc<Self>,
        provider: &str,
        forum: &str,
        origin: &str,
        request_base: &str,
    ) -> Result<AuthStarted, DomainError> {
        let p = self.auth.find(provider)?;
        let f = self.forum(forum)?;
        if origin.len() > MAX_ORIGIN || !f.settings.origin_allowed(origin) {
            return Err(DomainError::new(
                ErrorCode::OriginNotAllowed,
                format!("{origin:?} is not one of forum {}'s sites", f.name),
            ));
        }
        let redirect = self.auth.redirect_uri(&p.name, request_base);
        let (state, nonce) = (random_token(), random_token());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let location = match &p.kind {
            Kind::Oidc { cfg, meta } => {
                let m = self.auth.metadata(cfg, meta, false).await?;
                let client = self.auth.oidc_client(&redirect, cfg, m)?;
                let (s, n) = (state.clone(), nonce.clone());
                let (url, _, _) = client
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        move || CsrfToken::new(s),
                        move || Nonce::new(n),
                    )
                    .add_scope(Scope::new("email".into()))
                    .add_scope(Scope::new("profile".into()))
                    .set_pkce_challenge(challenge)
                    .url();
                url.to_string()
            }
            Kind::Github(g) => {
                let mut url =
                    url::Url::parse(&g.authorize_url).map_err(|_| DomainError::internal())?;
                url.query_pairs_mut()
                    .append_pair("client_id", &g.client_id)
                    .append_pair("redirect_uri", &redirect)
                    .append_pair("scope", "read:user user:email")
                    .append_pair("state", &state)
                    .append_pair("code_challenge", challenge.as_str())
                    .append_pair("code_challenge_method", "S256");
                url.to_string()
            }
        };
        let flow = Flow {
            p: p.name.clone(),
            s: state,
            n: nonce,
            v: verifier.secret().clone(),
            f: f.name.clone(),
            o: origin.to_string(),
            r: redirect,
            e: confab_core::now_ms() + self.auth.flow_ms,
        };
        let payload = serde_json::to_string(&flow).map_err(|_| DomainError::internal())?;
        let cookie = self.signer.sign(FLOW, &payload);
        // Signed tokens are read up to 1 KiB.
        if cookie.len() > 1024 {
            return Err(DomainError::new(
                ErrorCode::InvalidInput,
                "the page's origin or the server's public URL is too long for a sign-in",
            ));
        }
        Ok(AuthStarted {
            location,
            cookie,
            max_age_secs: self.auth.flow_ms / 1000,
        })
    }

    /// Finishes a flow: the provider sent the browser back with `code` and `state` (or
    /// `error`), and the browser sent the flow's cookie.
    pub async fn auth_finish(
        self: &Arc<Self>,
        provider: &str,
        cookie: Option<&str>,
        code: Option<&str>,
        state: Option<&str>,
        error: Option<&str>,
    ) -> Result<AuthDone, AuthFailed> {
        let fail = |error: DomainError, origin: Option<&str>| AuthFailed {
            error,
            origin: origin.map(str::to_string),
        };
        let p = self.auth.find(provider).map_err(|e| fail(e, None))?;
        let cookie = cookie.ok_or_else(|| {
            fail(
                DomainError::new(
                    ErrorCode::BadRequest,
                    "no sign-in was begun in this browser: start again from the comments",
                ),
                None,
            )
        })?;
        let flow: Flow = self
            .signer
            .verify(FLOW, cookie)
            .and_then(|s| serde_json::from_str(&s).ok())
            .ok_or_else(|| {
                fail(
                    DomainError::new(ErrorCode::BadSignature, "the sign-in cookie is not valid"),
                    None,
                )
            })?;
        let origin = Some(flow.o.as_str());
        if flow.e < confab_core::now_ms() {
            return Err(fail(
                DomainError::new(
                    ErrorCode::TokenExpired,
                    "the sign-in took too long: start again",
                ),
                origin,
            ));
        }
        if flow.p != p.name {
            return Err(fail(
                DomainError::new(
                    ErrorCode::BadRequest,
                    "the sign-in was begun with another provider",
                ),
                origin,
            ));
        }
        let state_ok = state.is_some_and(|s| {
            use subtle_eq::eq;
            eq(s.as_bytes(), flow.s.as_bytes())
        });
        if !state_ok {
            return Err(fail(
                DomainError::new(
                    ErrorCode::BadRequest,
                    "state mismatch: this answer is not for the sign-in begun in this browser",
                ),
                origin,
            ));
        }
        if let Some(e) = error {
            return Err(fail(
                refused(format!("the provider did not sign you in ({e})")),
                origin,
            ));
        }
        let code = code
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| fail(DomainError::new(ErrorCode::BadRequest, "no code"), origin))?;
        let who = match &p.kind {
            Kind::Oidc { cfg, meta } => {
                self.auth
                    .oidc_identity(&flow.r, cfg, meta, code, &flow.v, &flow.n)
                    .await
            }
            Kind::Github(g) => self.auth.github_identity(g, code, &flow.v, &flow.r).await,
        }
        .map_err(|e| fail(e, origin))?;
        let session = self
            .identity_sign_in(&p.name, who)
            .await
            .map_err(|e| fail(e, origin))?;
        Ok(AuthDone {
            session,
            origin: flow.o,
        })
    }

    /// The account of an identity: linked, else by a verified address, else new.
    async fn identity_sign_in(
        &self,
        provider: &str,
        who: Identity,
    ) -> Result<Session, DomainError> {
        if who.subject.is_empty() || who.subject.len() > 255 {
            return Err(refused("the provider named no subject"));
        }
        let email = who
            .verified_email
            .as_deref()
            .and_then(|e| Email::parse(e).ok())
            .map(|e| e.as_str().to_string());
        let account = match self.store.identity_account(provider, &who.subject).await? {
            Some(a) => a,
            None => {
                let by_email = match &email {
                    Some(e) => self.store.account_by_email(e).await?,
                    None => None,
                };
                match by_email {
                    Some(a) => {
                        self.store
                            .link_identity(provider, &who.subject, a.id)
                            .await?
                    }
                    None => {
                        let max = self.config.limits.max_name_chars;
                        let display_name = who
                            .names
                            .iter()
                            .find_map(|n| AuthorName::parse(n, max).ok())
                            .map(|n| n.as_str().to_string())
                            .unwrap_or_else(|| "Reader".to_string());
                        self.store
                            .create_identity_account(NewIdentityAccount {
                                provider: provider.to_string(),
                                subject: who.subject.clone(),
                                username: identity_username(provider, &who.subject),
                                display_name,
                                email: email.clone(),
                            })
                            .await?
                    }
                }
            }
        };
        tracing::info!(
            provider,
            account = account.id.0,
            "signed in with a provider"
        );
        let token = self.session_token(&account);
        Ok(Session { account, token })
    }
}

/// Constant-time comparison of the `state`.
mod subtle_eq {
    pub fn eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

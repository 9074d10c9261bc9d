//! SSO: readers signed in at a forum's own site become accounts of that forum, from a token the
//! site signs with the forum's SSO secret (`confab_core::sso` reads and checks the token).

use super::{Caller, Service, Session};
use confab_core::input::{AuthorName, Email, WebUrl};
use confab_core::model::Forum;
use confab_core::sso::{self, SsoOutcome, SsoSecret};
use confab_core::{DomainError, ErrorCode};
use confab_store::SsoAccount;
use std::sync::Arc;

/// A token from the forum's site, as sent.
#[derive(Debug, Clone)]
pub enum SsoToken {
    /// Disqus' `remote_auth_s3` (`MESSAGE SIG TIMESTAMP`).
    RemoteAuthS3(String),
    /// An HS256 JWT.
    Jwt(String),
}

/// What an SSO sign-in came to.
#[derive(Debug, Clone)]
pub enum SsoSignIn {
    SignedIn(Session),
    /// The site says nobody is signed in: the caller's session of this forum's SSO account (if
    /// that is who the caller is) has ended.
    SignedOut,
}

impl Service {
    /// Signs a reader in from a token of `forum`'s site: the account of that site user on this
    /// forum (made at the first sign-in; its name, URL and avatar follow the token each time).
    /// An SSO account is never staff or a moderator through SSO.
    pub async fn sso_sign_in(
        self: &Arc<Self>,
        caller: &Caller,
        forum: &Arc<Forum>,
        token: SsoToken,
    ) -> Result<SsoSignIn, DomainError> {
        self.check_origin(caller, forum)?;
        let secret = forum.sso_secret.as_ref().ok_or_else(|| {
            DomainError::new(
                ErrorCode::SsoNotConfigured,
                format!(
                    "forum {} has no SSO secret: set one with `confab admin sso {} --secret ...` or in the dashboard",
                    forum.name, forum.name
                ),
            )
        })?;
        let now = confab_core::now_ms() / 1000;
        let user = match token {
            SsoToken::RemoteAuthS3(t) => match sso::verify_remote_auth_s3(secret, &t, now)? {
                SsoOutcome::SignedIn(u) => u,
                SsoOutcome::SignedOut => {
                    if let Some(a) = self.caller_account(caller).await? {
                        if sso::is_account_of(&a.username, forum.id) {
                            self.end_sessions(a.id).await?;
                        }
                    }
                    return Ok(SsoSignIn::SignedOut);
                }
            },
            SsoToken::Jwt(t) => sso::verify_jwt(secret, &t, now)?,
        };
        let field = |what: &str, e: DomainError| {
            DomainError::new(
                ErrorCode::InvalidInput,
                format!("the SSO token's {what}: {}", e.message),
            )
        };
        // Checked for form; not kept (an account's address is one its owner confirmed).
        if let Some(e) = &user.email {
            Email::parse(e).map_err(|e| field("email", e))?;
        }
        let name = AuthorName::parse(&user.name, self.config.limits.max_name_chars)
            .map_err(|e| field("name", e))?;
        let url = user
            .url
            .as_deref()
            .map(WebUrl::parse)
            .transpose()
            .map_err(|e| field("url", e))?;
        let avatar = user
            .avatar
            .as_deref()
            .map(WebUrl::parse)
            .transpose()
            .map_err(|e| field("avatar", e))?;
        let account = self
            .store
            .sso_account(SsoAccount {
                username: sso::account_username(forum.id, &user.id),
                display_name: name.as_str().to_string(),
                url: url.map(|u| u.as_str().to_string()),
                avatar_url: avatar.map(|u| u.as_str().to_string()),
            })
            .await?;
        // Its name may have changed: every node reads it again.
        self.forget_account(account.id).await;
        let token = self.session_token(&account);
        Ok(SsoSignIn::SignedIn(Session { account, token }))
    }

    /// Sets or (with `None`) removes a forum's SSO secret (`confab admin sso`, or a moderator
    /// of the forum in the dashboard), then reloads the forums on every node.
    pub async fn set_sso_secret(
        self: &Arc<Self>,
        forum: &Forum,
        secret: Option<SsoSecret>,
    ) -> Result<Forum, DomainError> {
        let on = secret.is_some();
        let updated = self.store.set_sso_secret(forum.id, secret.as_ref()).await?;
        tracing::info!(forum = %forum.name, sso = on, "SSO secret changed");
        self.forums_changed().await;
        Ok(updated)
    }
}

//! Accounts and sessions. Passwords are hashed and checked by `passwords` (bounded).

use super::{Caller, Service};
use crate::views::{AccountView, SessionView, SignupBody};
use confab_core::id::AccountId;
use confab_core::input::{AuthorName, Email, Password, Username};
use confab_core::model::Account;
use confab_core::{DomainError, ErrorCode};
use confab_store::NewAccount;
use std::sync::Arc;

impl Service {
    pub fn account_view(&self, a: &Account, with_email: bool) -> AccountView {
        AccountView {
            id: a.id,
            username: a.username.clone(),
            display_name: a.display_name.clone(),
            email: if with_email { a.email.clone() } else { None },
            is_staff: a.is_staff,
            moderates: a
                .moderates
                .iter()
                .filter_map(|f| self.forums.by_id(*f))
                .map(|f| f.name.clone())
                .collect(),
        }
    }

    /// Creates an account (sign-up from the API; staff and moderators from `confab admin`).
    pub async fn create_account(
        &self,
        username: &str,
        email: Option<&str>,
        password: &str,
        display_name: Option<&str>,
        is_staff: bool,
    ) -> Result<Account, DomainError> {
        let username = Username::parse(username)?;
        let email = email
            .filter(|e| !e.trim().is_empty())
            .map(Email::parse)
            .transpose()?;
        let password = Password::parse(password)?;
        let display_name = match display_name.filter(|d| !d.trim().is_empty()) {
            Some(d) => AuthorName::parse(d, self.config.limits.max_name_chars)?
                .as_str()
                .to_string(),
            None => username.as_str().to_string(),
        };
        let password_hash = self.passwords.hash(password).await?;
        self.store
            .create_account(NewAccount {
                username: username.as_str().to_string(),
                email: email.map(|e| e.as_str().to_string()),
                display_name,
                password_hash,
                is_staff,
            })
            .await
    }

    /// Signs up. The answer is the same whatever the e-mail address: with mail configured the
    /// address is mailed a link that adds it to the account (or, when another account holds
    /// it, a word to that account's owner) and the account starts without it; without mail,
    /// a free address is added at once and a taken one left off. Only a taken username is
    /// refused (usernames are public).
    pub async fn signup(
        &self,
        caller: &Caller,
        body: SignupBody,
    ) -> Result<SessionView, DomainError> {
        self.check_any_origin(caller)?;
        let email = body
            .email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .map(Email::parse)
            .transpose()?;
        let by_mail = email.is_some() && self.config.mail.enabled();
        let direct = if by_mail {
            None
        } else {
            email.as_ref().map(|e| e.as_str())
        };
        let (name, pw, shown) = (&body.username, &body.password, body.display_name.as_deref());
        let a = match self.create_account(name, direct, pw, shown, false).await {
            Err(e) if e.code == ErrorCode::Conflict && direct.is_some() => {
                let username_taken = self
                    .store
                    .credentials(body.username.trim())
                    .await?
                    .is_some_and(|(a, _)| a.username.eq_ignore_ascii_case(body.username.trim()));
                if username_taken {
                    return Err(e);
                }
                self.create_account(name, None, pw, shown, false).await?
            }
            other => other?,
        };
        if let (true, Some(e)) = (by_mail, &email) {
            let task = confab_worker::kinds::mail_account_email(a.id, e.as_str());
            self.store
                .enqueue_task(confab_core::id::LogicalShard::for_name(&a.username), task)
                .await?;
            self.wake_worker();
        }
        Ok(SessionView {
            account: self.account_view(&a, true),
            token: self.session_token(&a),
        })
    }

    /// The account and address an account e-mail link is for.
    pub fn account_email_link(&self, token: &str) -> Result<(AccountId, String), DomainError> {
        confab_worker::links::verify_account_email(&self.signer, token, confab_core::now_ms())
            .ok_or_else(|| DomainError::not_found("this link is invalid or has expired"))
    }

    /// Follows an account e-mail link: the address is added to the account, if it is still free.
    pub async fn confirm_account_email(
        &self,
        token: &str,
    ) -> Result<(Arc<Account>, String), DomainError> {
        let (id, email) = self.account_email_link(token)?;
        self.store.set_account_email(id, &email).await?;
        self.forget_account(id).await;
        let a = self
            .account(id)
            .await?
            .ok_or_else(|| DomainError::not_found("account"))?;
        Ok((a, email))
    }

    pub async fn login(
        &self,
        caller: &Caller,
        login: &str,
        password: &str,
    ) -> Result<SessionView, DomainError> {
        self.check_any_origin(caller)?;
        if login.len() > 254 || password.len() > 1024 {
            return Err(DomainError::new(
                ErrorCode::Unauthorized,
                "wrong login or password",
            ));
        }
        let found = self.store.credentials(login.trim()).await?;
        let (account, hash) = match found {
            Some((a, h)) => (Some(a), Some(h)),
            None => (None, None),
        };
        let ok = self.passwords.verify(password.to_string(), hash).await?;
        match account {
            Some(a) if ok => Ok(SessionView {
                account: self.account_view(&a, true),
                token: self.session_token(&a),
            }),
            _ => Err(DomainError::new(
                ErrorCode::Unauthorized,
                "wrong login or password",
            )),
        }
    }

    /// Signs out: ends every session of the caller's account (a stolen or copied token stops
    /// working too).
    pub async fn logout(&self, caller: &Caller) -> Result<(), DomainError> {
        self.check_any_origin(caller)?;
        match caller.account {
            Some(id) => self.end_sessions(id).await,
            None => Ok(()),
        }
    }

    pub async fn me(&self, caller: &Caller) -> Result<AccountView, DomainError> {
        let a = self
            .caller_account(caller)
            .await?
            .ok_or_else(|| DomainError::new(ErrorCode::Unauthorized, "not signed in"))?;
        Ok(self.account_view(&a, true))
    }

    /// Account-level writes (sign-up, log-in) from a browser must come from this server or
    /// from a site of some forum.
    pub fn check_any_origin(&self, caller: &Caller) -> Result<(), DomainError> {
        match &caller.foreign_origin {
            Some(o) if !self.forums.any_allows(o) => Err(DomainError::new(
                ErrorCode::OriginNotAllowed,
                format!("origin {o} is not allowed"),
            )),
            _ => Ok(()),
        }
    }

    /// Grants or revokes moderation of a forum. Revoking ends the account's sessions, so a
    /// dashboard left open somewhere stops acting with the old rights.
    pub async fn set_moderator(
        &self,
        account: &Account,
        forum: &str,
        on: bool,
    ) -> Result<(), DomainError> {
        let f = self.forum(forum)?;
        self.store.set_moderator(account.id, f.id, on).await?;
        if !on {
            self.store.end_sessions(account.id).await?;
        }
        self.forget_account(account.id).await;
        self.forget_moderators(f.id).await;
        Ok(())
    }
}

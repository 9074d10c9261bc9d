//! Accounts and sessions. Passwords are hashed and checked by `passwords` (bounded).

use super::{Caller, Service, Staff};
use confab_core::id::AccountId;
use confab_core::input::{AuthorName, Email, Password, Username};
use confab_core::model::Account;
use confab_core::{DomainError, ErrorCode};
use confab_store::NewAccount;
use std::sync::Arc;

/// A new account, its fields parsed by the handler from the request.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub username: Username,
    pub email: Option<Email>,
    pub password: Password,
    /// `None`: the username.
    pub display_name: Option<AuthorName>,
}

impl SignUp {
    /// Parses a sign-up's fields (blank address and display name are none), the address
    /// first, then username, password and display name.
    pub fn parse(
        username: &str,
        email: Option<&str>,
        password: &str,
        display_name: Option<&str>,
        max_name_chars: usize,
    ) -> Result<SignUp, DomainError> {
        let email = email
            .filter(|e| !e.trim().is_empty())
            .map(Email::parse)
            .transpose()?;
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let display_name = display_name
            .filter(|d| !d.trim().is_empty())
            .map(|d| AuthorName::parse(d, max_name_chars))
            .transpose()?;
        Ok(SignUp {
            username,
            email,
            password,
            display_name,
        })
    }
}

/// A log-in as typed: a username or e-mail address, and a password (checked as they are:
/// a malformed one is only a wrong one).
#[derive(Debug, Clone)]
pub struct LogIn {
    pub login: String,
    pub password: String,
}

/// A signed-in account and its session token.
#[derive(Debug, Clone)]
pub struct Session {
    pub account: Account,
    /// Bearer token (and session cookie value).
    pub token: String,
}

impl Service {
    /// Short names of the forums `a` moderates.
    pub fn moderated_forums(&self, a: &Account) -> Vec<String> {
        a.moderates
            .iter()
            .filter_map(|f| self.forums.by_id(*f))
            .map(|f| f.name.clone())
            .collect()
    }

    /// Creates an account (staff and moderators from `confab admin`).
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
        let display_name = display_name
            .filter(|d| !d.trim().is_empty())
            .map(|d| AuthorName::parse(d, self.config.limits.max_name_chars))
            .transpose()?;
        let new = SignUp {
            username,
            email,
            password,
            display_name,
        };
        self.insert_account(new, is_staff).await
    }

    /// Hashes the password and stores the account.
    async fn insert_account(&self, a: SignUp, is_staff: bool) -> Result<Account, DomainError> {
        let display_name = match a.display_name {
            Some(d) => d.as_str().to_string(),
            None => a.username.as_str().to_string(),
        };
        let password_hash = self.passwords.hash(a.password).await?;
        self.store
            .create_account(NewAccount {
                username: a.username.as_str().to_string(),
                email: a.email.map(|e| e.as_str().to_string()),
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
    pub async fn signup(&self, caller: &Caller, new: SignUp) -> Result<Session, DomainError> {
        self.check_any_origin(caller)?;
        self.check_signups(caller).await?;
        let email = new.email.clone();
        let by_mail = email.is_some() && self.config.mail.enabled();
        let direct = SignUp {
            email: if by_mail { None } else { email.clone() },
            ..new
        };
        let has_direct = direct.email.is_some();
        let without = SignUp {
            email: None,
            ..direct.clone()
        };
        let a = match self.insert_account(direct, false).await {
            Err(e) if e.code == ErrorCode::Conflict && has_direct => {
                let name = without.username.as_str();
                let username_taken = self
                    .store
                    .credentials(name)
                    .await?
                    .is_some_and(|(a, _)| a.username.eq_ignore_ascii_case(name));
                if username_taken {
                    return Err(username_taken_error());
                }
                self.insert_account(without, false).await?
            }
            Err(e) if e.code == ErrorCode::Conflict => return Err(username_taken_error()),
            other => other?,
        };
        if let (true, Some(e)) = (by_mail, &email) {
            let task = confab_worker::kinds::mail_account_email(a.id, e.as_str());
            self.store
                .enqueue_task(confab_core::id::LogicalShard::for_name(&a.username), task)
                .await?;
            self.wake_worker();
        }
        let token = self.session_token(&a);
        Ok(Session { account: a, token })
    }

    /// The account and address an account e-mail link is for.
    pub fn account_email_link(&self, token: &str) -> Result<(AccountId, String), DomainError> {
        confab_worker::links::verify_account_email(&self.signer, token, confab_core::now_ms())
            .ok_or_else(|| DomainError::not_found("this link is invalid or has expired"))
    }

    /// Follows an account e-mail link: the address is added to the account, if it is still free.
    pub async fn confirm_account_email(
        self: &Arc<Self>,
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

    pub async fn login(&self, caller: &Caller, cmd: LogIn) -> Result<Session, DomainError> {
        self.check_any_origin(caller)?;
        let (login, password) = (cmd.login.as_str(), cmd.password);
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
        let ok = self.passwords.verify(password, hash).await?;
        match account {
            Some(a) if ok => {
                let token = self.session_token(&a);
                Ok(Session { account: a, token })
            }
            _ => Err(DomainError::new(
                ErrorCode::Unauthorized,
                "wrong login or password",
            )),
        }
    }

    /// Signs out: ends every session of the caller's account (a stolen or copied token stops
    /// working too).
    pub async fn logout(self: &Arc<Self>, caller: &Caller) -> Result<(), DomainError> {
        self.check_any_origin(caller)?;
        match caller.account {
            Some(id) => self.end_sessions(id).await,
            None => Ok(()),
        }
    }

    /// Asks for a password reset link for the account `login` names (username or e-mail).
    /// The answer is the same whatever `login` is, and comes before the account is looked up:
    /// whether an account exists, and whether it has an address, is never told. When it has a
    /// confirmed address (and a password, and mail is configured) a task mails it the link.
    pub async fn request_password_reset(
        self: &Arc<Self>,
        caller: &Caller,
        login: &str,
    ) -> Result<(), DomainError> {
        self.check_any_origin(caller)?;
        let login = login.trim();
        if login.is_empty() || login.chars().count() > 254 {
            return Err(DomainError::invalid(
                "Enter your username or e-mail address.",
            ));
        }
        if !self.config.mail.enabled() {
            return Ok(());
        }
        let (svc, login) = (self.clone(), login.to_string());
        tokio::spawn(async move {
            if let Err(e) = svc.queue_password_reset(&login).await {
                tracing::warn!(error = %e, "cannot queue a password reset mail");
            }
        });
        Ok(())
    }

    async fn queue_password_reset(&self, login: &str) -> Result<(), DomainError> {
        let Some((a, hash)) = self.store.credentials(login).await? else {
            return Ok(());
        };
        if a.email.is_none() || hash.is_empty() {
            return Ok(());
        }
        let task = confab_worker::kinds::mail_password_reset(a.id);
        self.store
            .enqueue_task(confab_core::id::LogicalShard::for_name(&a.username), task)
            .await?;
        self.wake_worker();
        Ok(())
    }

    /// The account a password reset link is for, while the link works: signed, within its
    /// hour, and made for the account's current password (a link works once).
    pub async fn password_reset_link(&self, token: &str) -> Result<(Account, String), DomainError> {
        let dead = || {
            DomainError::new(
                ErrorCode::NotFound,
                "This link has expired or was already used. Ask for a new one from the sign-in form.",
            )
        };
        let (id, fingerprint) =
            confab_worker::links::verify_password_reset(&self.signer, token, confab_core::now_ms())
                .ok_or_else(dead)?;
        let a = self.store.account(id).await?.ok_or_else(dead)?;
        let (a, hash) = self
            .store
            .credentials(&a.username)
            .await?
            .filter(|(found, h)| found.id == id && !h.is_empty())
            .ok_or_else(dead)?;
        if confab_worker::links::password_fingerprint(&self.signer, &hash) != fingerprint {
            return Err(dead());
        }
        Ok((a, hash))
    }

    /// Follows a password reset link: the account gets `password`, every session of it ends
    /// (on every node), the link stops working, and the caller is signed in afresh.
    pub async fn reset_password(
        self: &Arc<Self>,
        token: &str,
        password: Password,
    ) -> Result<Session, DomainError> {
        let (a, old) = self.password_reset_link(token).await?;
        let new = self.passwords.hash(password).await?;
        if !self.store.set_password(a.id, &old, &new).await? {
            return Err(DomainError::new(
                ErrorCode::NotFound,
                "This link has expired or was already used. Ask for a new one from the sign-in form.",
            ));
        }
        tracing::info!(account = %a.username, "password reset by mail link");
        self.renewed_session(a.id).await
    }

    /// Changes the caller's password, given the current one; every other session of the
    /// account ends, and the caller gets a new session.
    pub async fn change_password(
        self: &Arc<Self>,
        caller: &Caller,
        current: String,
        new: Password,
    ) -> Result<Session, DomainError> {
        self.check_any_origin(caller)?;
        let me = self.me(caller).await?;
        let old = self.check_password(&me, current).await?;
        let hash = self.passwords.hash(new).await?;
        if !self.store.set_password(me.id, &old, &hash).await? {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                "The password was changed meanwhile. Sign in again and retry.",
            ));
        }
        tracing::info!(account = %me.username, "password changed");
        self.renewed_session(me.id).await
    }

    /// Asks to change the caller's e-mail address, given the password: the new address is
    /// mailed a link, and becomes the account's only when the link is followed.
    pub async fn change_email(
        self: &Arc<Self>,
        caller: &Caller,
        email: Email,
        password: String,
    ) -> Result<(), DomainError> {
        self.check_any_origin(caller)?;
        let me = self.me(caller).await?;
        self.check_password(&me, password).await?;
        if !self.config.mail.enabled() {
            return Err(DomainError::new(
                ErrorCode::Unavailable,
                "This server sends no mail, so an e-mail address cannot be confirmed.",
            ));
        }
        let task = confab_worker::kinds::mail_account_email_change(me.id, email.as_str());
        self.store
            .enqueue_task(confab_core::id::LogicalShard::for_name(&me.username), task)
            .await?;
        self.wake_worker();
        Ok(())
    }

    /// Ends every session of the caller's account, on every node (the caller's too).
    pub async fn end_all_sessions(self: &Arc<Self>, caller: &Caller) -> Result<(), DomainError> {
        self.check_any_origin(caller)?;
        let me = self.me(caller).await?;
        tracing::info!(account = %me.username, "every session ended by its owner");
        self.end_sessions(me.id).await
    }

    /// The stored hash of `a`'s password, if `password` is it (403 otherwise: the caller is
    /// signed in, and a wrong password must not read as a session that ended).
    async fn check_password(&self, a: &Account, password: String) -> Result<String, DomainError> {
        let wrong = || DomainError::forbidden("The current password is not right.");
        if password.len() > 1024 {
            return Err(wrong());
        }
        let hash = self
            .store
            .credentials(&a.username)
            .await?
            .filter(|(found, h)| found.id == a.id && !h.is_empty())
            .map(|(_, h)| h);
        if hash.is_none() {
            return Err(DomainError::forbidden(
                "This account signs in through its site and has no password here.",
            ));
        }
        if self.passwords.verify(password, hash.clone()).await? {
            hash.ok_or_else(wrong)
        } else {
            Err(wrong())
        }
    }

    /// After a password change (which moved the session generation): every node forgets the
    /// account, and a session of the new generation is made.
    async fn renewed_session(self: &Arc<Self>, id: AccountId) -> Result<Session, DomainError> {
        self.forget_account(id).await;
        let a = self
            .store
            .account(id)
            .await?
            .ok_or_else(|| DomainError::not_found("account"))?;
        let token = self.session_token(&a);
        Ok(Session { account: a, token })
    }

    /// The signed-in account.
    pub async fn me(&self, caller: &Caller) -> Result<Arc<Account>, DomainError> {
        self.caller_account(caller)
            .await?
            .ok_or_else(|| DomainError::new(ErrorCode::Unauthorized, "not signed in"))
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

    /// An account by username (ASCII case folded, as sign-in compares them).
    pub async fn account_by_username(&self, username: &str) -> Result<Account, DomainError> {
        let name = username.trim();
        match self.store.credentials(name).await? {
            Some((a, _)) if a.username.eq_ignore_ascii_case(name) => Ok(a),
            _ => Err(DomainError::not_found(&format!("account {name:?}"))),
        }
    }

    /// The moderators of a forum (at most 100), for a staff member of the API.
    pub async fn moderators_as(
        &self,
        _staff: &Staff,
        forum: &str,
    ) -> Result<Vec<Account>, DomainError> {
        let f = self.forum(forum)?;
        self.store.forum_moderators(f.id).await
    }

    /// Grants or revokes moderation of a forum, for a staff member of the API.
    pub async fn set_moderator_as(
        self: &Arc<Self>,
        _staff: &Staff,
        username: &str,
        forum: &str,
        on: bool,
    ) -> Result<(), DomainError> {
        let a = self.account_by_username(username).await?;
        self.set_moderator(&a, forum, on).await
    }

    /// Makes an account staff or not (`confab admin set-staff`). Removing staff ends the
    /// account's sessions, as removing a moderator does; every node forgets the account.
    pub async fn set_staff(
        self: &Arc<Self>,
        account: &Account,
        on: bool,
    ) -> Result<(), DomainError> {
        self.store.set_staff(account.id, on).await?;
        if !on {
            self.store.end_sessions(account.id).await?;
        }
        tracing::info!(account = %account.username, staff = on, "staff role changed");
        self.forget_account(account.id).await;
        Ok(())
    }

    /// Makes an account staff or not, for a staff member of the API. Staff cannot remove
    /// themselves (so the last staff member cannot lock everyone out; `confab admin` can).
    pub async fn set_staff_as(
        self: &Arc<Self>,
        staff: &Staff,
        username: &str,
        on: bool,
    ) -> Result<(), DomainError> {
        let a = self.account_by_username(username).await?;
        if !on && a.id == staff.account().id {
            return Err(DomainError::forbidden(
                "you cannot remove your own staff role; ask another staff member",
            ));
        }
        self.set_staff(&a, on).await
    }

    /// Grants or revokes moderation of a forum. Revoking ends the account's sessions, so a
    /// dashboard left open somewhere stops acting with the old rights.
    pub async fn set_moderator(
        self: &Arc<Self>,
        account: &Account,
        forum: &str,
        on: bool,
    ) -> Result<(), DomainError> {
        let f = self.forum(forum)?;
        self.store.set_moderator(account.id, f.id, on).await?;
        tracing::info!(account = %account.username, forum = %f.name, moderator = on, "moderator role changed");
        if !on {
            self.store.end_sessions(account.id).await?;
        }
        self.forget_account(account.id).await;
        self.forget_moderators(f.id).await;
        Ok(())
    }
}

/// A sign-up whose username another account has.
fn username_taken_error() -> DomainError {
    DomainError::new(
        ErrorCode::Conflict,
        "That username is taken. Please choose another.",
    )
}

//! The domain error: a stable machine-readable code plus a human message.
//!
//! Every client-visible failure is one of these codes; the HTTP layer maps a code to a status
//! in exactly one place. Internal failures carry context for the log and a generic message.

use std::fmt;

/// Stable error codes. The string form is part of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    InvalidInput,
    BadCursor,
    Unauthorized,
    Forbidden,
    OriginNotAllowed,
    Banned,
    /// A text contains a word the forum does not allow (`words.block`).
    BlockedWord,
    ThreadClosed,
    GuestPostingDisabled,
    /// A guest's comment on a forum that asks for a solved proof-of-work challenge came
    /// without one.
    ChallengeRequired,
    /// A challenge solution that does not hold: forged, expired, for another forum, a wrong
    /// number, or already used.
    ChallengeFailed,
    EditWindowClosed,
    NotFound,
    /// It existed and was removed (a picture of a deleted comment): 410.
    Gone,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    /// A request's body did not arrive in time.
    RequestTimeout,
    /// An `Idempotency-Key` sent again with a different request.
    IdempotencyKeyReused,
    /// Writes are switched off for now (the `posting` switch): 503 with `Retry-After`.
    ReadOnly,
    /// Creating accounts is switched off (the `signups` switch).
    SignupsClosed,
    /// The forum has no SSO secret: SSO sign-in is off.
    SsoNotConfigured,
    /// A signed token's signature does not match its key.
    BadSignature,
    /// A signed token is too old, or past its `exp`.
    TokenExpired,
    /// A signed token is dated too far ahead of the server's clock.
    TokenFromFuture,
    /// A token that cannot be read (shape, encoding, size, a claim of the wrong type).
    MalformedToken,
    /// A JWT signed with an algorithm other than the one accepted.
    UnsupportedAlgorithm,
    /// A token without a claim it must carry.
    MissingClaim,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::BadCursor => "bad_cursor",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::Banned => "banned",
            ErrorCode::BlockedWord => "blocked_word",
            ErrorCode::ThreadClosed => "thread_closed",
            ErrorCode::GuestPostingDisabled => "guest_posting_disabled",
            ErrorCode::ChallengeRequired => "challenge_required",
            ErrorCode::ChallengeFailed => "challenge_failed",
            ErrorCode::EditWindowClosed => "edit_window_closed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Gone => "gone",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::SignupsClosed => "signups_closed",
            ErrorCode::SsoNotConfigured => "sso_not_configured",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenFromFuture => "token_from_future",
            ErrorCode::MalformedToken => "malformed_token",
            ErrorCode::UnsupportedAlgorithm => "unsupported_algorithm",
            ErrorCode::MissingClaim => "missing_claim",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A failure of a domain operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainError {
    pub code: ErrorCode,
    pub message: String,
    /// Why, in words an operator can act on (`cannot connect to PostgreSQL at db1:5432:
    /// connection refused`): shown in logs, `/readyz` and on the command line, never sent to
    /// API clients (they get `message`).
    pub cause: Option<String>,
}

impl DomainError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        DomainError {
            code,
            message: message.into(),
            cause: None,
        }
    }
    /// The same error, with the cause an operator reads.
    pub fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }
    /// The cause if there is one, else the message: what an operator's report says.
    pub fn reason(&self) -> &str {
        self.cause.as_deref().unwrap_or(&self.message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    /// An internal failure: the detail goes to the log by the caller, never to the client.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        match &self.cause {
            Some(c) => write!(f, " ({c})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for DomainError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_for_operators_only() {
        let e = DomainError::new(ErrorCode::Unavailable, "the database is unavailable")
            .with_cause("cannot connect to PostgreSQL at db1:5432: connection refused");
        assert_eq!(e.message, "the database is unavailable");
        assert_eq!(
            e.to_string(),
            "unavailable: the database is unavailable (cannot connect to PostgreSQL at db1:5432: connection refused)"
        );
        assert_eq!(
            e.reason(),
            "cannot connect to PostgreSQL at db1:5432: connection refused"
        );
        let plain = DomainError::invalid("no");
        assert_eq!(plain.reason(), "no");
        assert_eq!(plain.to_string(), "invalid_input: no");
    }
}

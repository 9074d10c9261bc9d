//! The proof-of-work challenge guests solve before posting: `GET /api/v1/challenge` issues one,
//! and a new comment carries the solution (`NewCommentBody::challenge`). The scheme is
//! `confab_core::challenge`; who must solve one is `service/challenge.rs`.

use super::caller::Who;
use super::error::{ApiError, Query};
use super::AppState;
use crate::openapi::errors::*;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChallengeQuery {
    /// Forum short name.
    pub forum: String,
}

/// A challenge to solve before posting as a guest (ALTCHA's format): find the integer
/// `number` in `0..=maxnumber` for which the hex SHA-256 of `salt` followed by the number's
/// decimal digits is `challenge`, then send `{salt, challenge, number, signature}` as the new
/// comment's `challenge`. When `required` is false (the forum has it off, or the caller is
/// signed in) nothing else is present and nothing needs solving.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChallengeView {
    pub required: bool,
    /// Always `SHA-256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// 64 hex digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxnumber: Option<u32>,
    /// 64 hex digits; send it back as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// When the challenge stops being accepted (Unix milliseconds; 10 minutes after issue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A solved challenge, sent with a guest's new comment. Accepted once, within 10 minutes of
/// issue, for the forum it was issued for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeSolution {
    /// `SHA-256` if sent.
    pub algorithm: Option<String>,
    #[schema(max_length = 200)]
    pub salt: String,
    #[schema(max_length = 64)]
    pub challenge: String,
    /// A JSON integer (an integral number such as `5858.0` is one too).
    #[serde(deserialize_with = "super::requests::int::de")]
    #[schema(minimum = 0, value_type = u64)]
    pub number: i64,
    #[schema(max_length = 64)]
    pub signature: String,
}

impl ChallengeSolution {
    /// The solution as the service checks it; an algorithm other than SHA-256 is refused.
    pub fn parse(self) -> Result<confab_core::challenge::Solution, ApiError> {
        if let Some(a) = &self.algorithm {
            if a != confab_core::challenge::ALGORITHM {
                return Err(ApiError::new(
                    confab_core::ErrorCode::ChallengeFailed,
                    "the only challenge algorithm is SHA-256",
                ));
            }
        }
        // A negative number solves nothing.
        let number = u64::try_from(self.number).map_err(|_| {
            ApiError::new(
                confab_core::ErrorCode::ChallengeFailed,
                "the challenge's number is wrong",
            )
        })?;
        Ok(confab_core::challenge::Solution {
            salt: self.salt,
            challenge: self.challenge,
            number,
            signature: self.signature,
        })
    }
}

/// A proof-of-work challenge for a guest about to post (never cached: each is new).
#[utoipa::path(get, path = "/api/v1/challenge", params(ChallengeQuery), tag = "widget",
    responses((status = 200, body = ChallengeView), BadRequest, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn get_challenge(
    State(app): State<AppState>,
    Who(caller): Who,
    Query(q): Query<ChallengeQuery>,
) -> ApiResult<Response> {
    let view = match app.svc.challenge_for(&caller, &q.forum)? {
        None => ChallengeView {
            required: false,
            algorithm: None,
            salt: None,
            challenge: None,
            maxnumber: None,
            signature: None,
            expires_at: None,
        },
        Some(c) => ChallengeView {
            required: true,
            algorithm: Some(c.algorithm.to_string()),
            salt: Some(c.salt),
            challenge: Some(c.challenge),
            maxnumber: Some(c.maxnumber),
            signature: Some(c.signature),
            expires_at: Some(c.expires_at),
        },
    };
    let mut resp = axum::Json(view).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

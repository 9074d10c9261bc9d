//! The error policy, in one place: every failure leaves as
//! `{"error": {"code", "message"}}` with the status its code maps to. Internal causes are
//! logged where they happen and never sent.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_core::{DomainError, ErrorCode};
use serde::de::DeserializeOwned;

/// `Retry-After` of a write refused while the `posting` switch is off.
pub const READ_ONLY_RETRY_SECS: u64 = 30;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub err: DomainError,
    pub retry_after: Option<u64>,
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        let retry_after = match err.code {
            ErrorCode::Unavailable => Some(1),
            // Read-only is an operator's decision: clients come back later, not at once.
            ErrorCode::ReadOnly => Some(READ_ONLY_RETRY_SECS),
            _ => None,
        };
        ApiError { err, retry_after }
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        DomainError::new(code, message).into()
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest
        | ErrorCode::InvalidInput
        | ErrorCode::BadCursor
        | ErrorCode::MalformedToken
        | ErrorCode::UnsupportedAlgorithm
        | ErrorCode::MissingClaim => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized
        | ErrorCode::BadSignature
        | ErrorCode::TokenExpired
        | ErrorCode::TokenFromFuture => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden
        | ErrorCode::OriginNotAllowed
        | ErrorCode::Banned
        | ErrorCode::ThreadClosed
        | ErrorCode::GuestPostingDisabled
        | ErrorCode::ChallengeRequired
        | ErrorCode::ChallengeFailed
        | ErrorCode::EditWindowClosed
        | ErrorCode::SignupsClosed
        | ErrorCode::SsoNotConfigured => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Gone => StatusCode::GONE,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::IdempotencyKeyReused | ErrorCode::BlockedWord => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::Unavailable | ErrorCode::ReadOnly => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a 5xx answer told the client, kept on the response for the error report.
#[derive(Debug, Clone)]
pub struct ServerError {
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.err.code.as_str(), "message": self.err.message}});
        let status = status_of(self.err.code);
        let mut resp = (status, axum::Json(body)).into_response();
        if status.is_server_error() {
            // For the error report (`http/report.rs`); 4xx answers carry nothing extra.
            resp.extensions_mut().insert(ServerError {
                code: self.err.code.as_str(),
                message: self.err.message.clone(),
            });
        }
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

fn from_status(status: StatusCode, text: String) -> ApiError {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::InvalidInput,
    };
    ApiError::new(code, text)
}

/// A JSON body whose rejections use the API's error shape (400, 413, 415).
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = r.status();
    let text = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "send the body as application/json".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => "request body is too large".to_string(),
        _ => r.body_text(),
    };
    from_status(status, text)
}

/// Query parameters whose rejections use the API's error shape.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    from_status(r.status(), r.body_text())
}

/// A path parameter parsed into an id, 404 when it is not one.
pub struct PathId<T>(pub T);

impl<S: Send + Sync, T: std::str::FromStr + Send> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::new(ErrorCode::NotFound, "not found"))?;
        raw.parse()
            .map(PathId)
            .map_err(|_| ApiError::new(ErrorCode::NotFound, "not found"))
    }
}

//! Handlers of a forum's bans: list, ban (by value, or the author of a comment with what of
//! theirs and for how long), lift.

use super::caller::Who;
use super::error::{ApiError, Json};
use super::requests::BanBody;
use super::AppState;
use crate::openapi::errors::*;
use crate::service::NewBan;
use crate::views::BansView;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use confab_core::ErrorCode;

type ApiResult<T> = Result<T, ApiError>;

/// Bans of a forum, newest first: what each matches (masked), who made it, when, until when
/// and why.
#[utoipa::path(get, path = "/api/v1/forums/{forum}/bans", params(("forum" = String, Path)), tag = "moderation",
    responses((status = 200, body = BansView), Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn bans(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
) -> ApiResult<axum::Json<BansView>> {
    let m = app.svc.moderate(&caller, &forum).await?;
    Ok(axum::Json(app.svc.bans(&m).await?))
}

/// Ban an e-mail, IP or account, or the author of a comment (their account, e-mail, IP, or
/// IP and e-mail). IP bans last a day unless `duration` says otherwise; one that would match
/// the caller's own address is refused (409).
#[utoipa::path(post, path = "/api/v1/forums/{forum}/bans", params(("forum" = String, Path)), request_body = BanBody, tag = "moderation",
    responses((status = 201, body = BansView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType, RateLimited,
        Internal, Unavailable))]
pub async fn ban(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Json(body): Json<BanBody>,
) -> ApiResult<Response> {
    let m = app.svc.moderate(&caller, &forum).await?;
    let ban = NewBan::parse(
        body.kind.as_deref(),
        body.value.as_deref(),
        body.comment_id,
        body.reason.as_deref(),
        body.duration.as_deref(),
        body.expires_in_secs,
        body.shadow,
    )?;
    let bans = app.svc.ban(&m, &caller, ban).await?;
    Ok((StatusCode::CREATED, axum::Json(bans)).into_response())
}

/// Lift a ban.
#[utoipa::path(delete, path = "/api/v1/forums/{forum}/bans/{id}", params(("forum" = String, Path), ("id" = String, Path)), tag = "moderation",
    responses((status = 204, description = "Lifted"), Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn unban(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path((forum, id)): axum::extract::Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = confab_core::id::parse_id(&id)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "ban not found"))?;
    let m = app.svc.moderate(&caller, &forum).await?;
    app.svc.unban(&m, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

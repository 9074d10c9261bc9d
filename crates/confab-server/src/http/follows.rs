//! Following a thread from the widget: `GET|PUT|DELETE /api/v1/threads/{id}/follow`. The work is
//! `service/follows.rs`; the mail is the `mail.reply` task's.

use super::caller::Who;
use super::error::{ApiError, PathId};
use super::AppState;
use crate::openapi::errors::*;
use crate::service::Following;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use confab_core::id::ThreadId;
use serde::Serialize;
use utoipa::ToSchema;

type ApiResult<T> = Result<T, ApiError>;

/// Whether the signed-in caller follows a thread (is mailed each of its new published comments).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FollowView {
    #[schema(value_type = String)]
    pub thread_id: ThreadId,
    pub following: bool,
}

fn view(f: Following) -> Response {
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        )],
        axum::Json(FollowView {
            thread_id: f.thread,
            following: f.following,
        }),
    )
        .into_response()
}

/// Whether the signed-in caller follows this thread.
#[utoipa::path(get, path = "/api/v1/threads/{id}/follow", params(("id" = String, Path)), tag = "widget",
    responses((status = 200, body = FollowView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn following(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<ThreadId>,
) -> ApiResult<Response> {
    Ok(view(app.svc.following(&caller, id).await?))
}

/// Follow this thread: each new published comment in it is mailed to the account's address
/// (one mail per comment, even when it also replies to or mentions the reader). Needs a
/// signed-in account with an address, on a server that sends mail (400 otherwise). Idempotent.
#[utoipa::path(put, path = "/api/v1/threads/{id}/follow", params(("id" = String, Path)), tag = "widget",
    responses((status = 200, body = FollowView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn follow(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<ThreadId>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    Ok(view(app.svc.set_following(&caller, id, true).await?))
}

/// Stop following this thread (the link in its mail does the same). Idempotent.
#[utoipa::path(delete, path = "/api/v1/threads/{id}/follow", params(("id" = String, Path)), tag = "widget",
    responses((status = 200, body = FollowView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn unfollow(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<ThreadId>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    Ok(view(app.svc.set_following(&caller, id, false).await?))
}

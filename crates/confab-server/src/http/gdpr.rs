//! Handlers of a reader's own data (`service/gdpr.rs`): the export and the erasure, for the
//! reader, staff, a forum's moderators and guests.

use super::api::set_cookie;
use super::caller::{Who, SESSION_COOKIE};
use super::error::{ApiError, Json, PathId, Query};
use super::mail::{error_page, page, token};
use super::AppState;
use crate::openapi::errors::*;
use crate::service::{EraseChoice, Erasure, ForumReader, ReaderData};
use crate::views::MailRequestedView;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_core::id::CommentId;
use confab_core::input::Email;
use confab_core::render::escape_html;
use confab_core::DomainError;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

type ApiResult<T> = Result<T, ApiError>;

/// How a deletion treats the reader's comments.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseBody {
    /// `keep`: the text stays, shown as by "deleted user" (name, e-mail, site and IP are
    /// gone); `remove`: the comments are deleted too (a placeholder where others replied).
    pub comments: String,
}

/// A reader of a moderator's forum: an account (by username) or a guest (by address), one of
/// the two (400 for neither or both).
#[derive(Debug, Clone, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForumReaderQuery {
    pub account: Option<String>,
    pub email: Option<String>,
}

/// [`ForumReaderQuery`] and what to do with the comments.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForumEraseBody {
    pub account: Option<String>,
    pub email: Option<String>,
    /// `keep` or `remove`, as for [`EraseBody`].
    pub comments: String,
}

/// A guest asks for a link to their data on a forum, mailed to the address they commented with.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataLinkBody {
    pub forum: String,
    pub email: String,
}

fn reader(account: Option<String>, email: Option<String>) -> Result<ForumReader, DomainError> {
    let account = account
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());
    let email = email
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    match (account, email) {
        (Some(a), None) => Ok(ForumReader::Account(a)),
        (None, Some(e)) => Ok(ForumReader::Guest(Email::parse(&e)?.as_str().to_string())),
        _ => Err(DomainError::invalid(
            "name the reader by account (username) or by email, one of the two",
        )),
    }
}

/// The export as a download.
fn download(data: ReaderData) -> Response {
    let mut resp = axum::Json(data).into_response();
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"confab-data.json\""),
    );
    resp
}

fn erased(e: Erasure) -> Response {
    let status = if e.state == "done" {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (status, axum::Json(e)).into_response()
}

/// Download my data: the profile, every comment on every forum, votes, flags and reply-mail
/// subscriptions, as JSON.
#[utoipa::path(get, path = "/api/v1/me/data", tag = "accounts",
    responses((status = 200, body = ReaderData), Unauthorized, Forbidden, PayloadTooLarge, Internal, Unavailable))]
pub async fn my_data(State(app): State<AppState>, Who(caller): Who) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    Ok(download(app.svc.my_data(&caller).await?))
}

/// Delete my account. Every session ends, the comments are kept as "deleted user" or
/// removed, subscriptions are dropped and the e-mail address is freed. A large account
/// answers 202 and finishes in the background.
#[utoipa::path(post, path = "/api/v1/me/delete", request_body = EraseBody, tag = "accounts",
    responses((status = 200, body = Erasure, description = "Deleted"), (status = 202, body = Erasure, description = "Deleting (goes on in the background)"),
        BadRequest, Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType, Unprocessable, RateLimited, Internal, Unavailable))]
pub async fn delete_me(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<EraseBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    let how = EraseChoice::parse(&body.comments)?;
    let e = app.svc.delete_me(&caller, how).await?;
    let mut resp = erased(e);
    set_cookie(&mut resp, SESSION_COOKIE, "", 0, caller.https);
    Ok(resp)
}

/// A reader's data, for staff (the dashboard), on the reader's request.
#[utoipa::path(get, path = "/api/v1/staff/readers/{username}/data", tag = "staff", params(("username" = String, Path)),
    responses((status = 200, body = ReaderData), Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn reader_data(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(username): axum::extract::Path<String>,
) -> ApiResult<Response> {
    let staff = app.svc.staff(&caller).await?;
    Ok(download(app.svc.reader_data_as(&staff, &username).await?))
}

/// Delete a reader's account on their request, for staff: as `POST /api/v1/me/delete`.
#[utoipa::path(post, path = "/api/v1/staff/readers/{username}/delete", request_body = EraseBody, tag = "staff", params(("username" = String, Path)),
    responses((status = 200, body = Erasure, description = "Deleted"), (status = 202, body = Erasure, description = "Deleting (goes on in the background)"),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable, RateLimited, Internal, Unavailable))]
pub async fn delete_reader(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(username): axum::extract::Path<String>,
    Json(body): Json<EraseBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    let staff = app.svc.staff(&caller).await?;
    let how = EraseChoice::parse(&body.comments)?;
    Ok(erased(
        app.svc.delete_reader_as(&staff, &username, how).await?,
    ))
}

/// What a reader (an account or a guest address) left on this forum, for its moderators.
#[utoipa::path(get, path = "/api/v1/forums/{forum}/readers/data", tag = "moderation", params(("forum" = String, Path), ForumReaderQuery),
    responses((status = 200, body = ReaderData), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn forum_reader_data(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Query(q): Query<ForumReaderQuery>,
) -> ApiResult<Response> {
    let m = app.svc.moderate(&caller, &forum).await?;
    let who = reader(q.account, q.email)?;
    Ok(download(app.svc.forum_reader_data(&m, who).await?))
}

/// Erase what a reader left on this forum, for its moderators (the account itself stays;
/// deleting it is the reader's or staff's).
#[utoipa::path(post, path = "/api/v1/forums/{forum}/readers/erase", request_body = ForumEraseBody, tag = "moderation", params(("forum" = String, Path)),
    responses((status = 200, body = Erasure, description = "Erased"), (status = 202, body = Erasure, description = "Erasing (goes on in the background)"),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable, RateLimited, Internal, Unavailable))]
pub async fn erase_forum_reader(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Json(body): Json<ForumEraseBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    let m = app.svc.moderate(&caller, &forum).await?;
    let who = reader(body.account, body.email)?;
    let how = EraseChoice::parse(&body.comments)?;
    Ok(erased(app.svc.erase_forum_reader(&m, who, how).await?))
}

/// A guest's data for one comment, proven by its edit token (which the widget keeps).
#[utoipa::path(get, path = "/api/v1/comments/{id}/data", tag = "widget",
    params(("id" = String, Path), ("X-Confab-Edit-Token" = Option<String>, Header, description = "The comment's edit token")),
    responses((status = 200, body = ReaderData), Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn guest_comment_data(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<CommentId>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    Ok(download(app.svc.guest_comment_data(&caller, id).await?))
}

/// Erase a guest's comment, proven by its edit token, keeping the text as "deleted user" or
/// removing it.
#[utoipa::path(post, path = "/api/v1/comments/{id}/erase", request_body = EraseBody, tag = "widget",
    params(("id" = String, Path), ("X-Confab-Edit-Token" = Option<String>, Header, description = "The comment's edit token")),
    responses((status = 200, body = Erasure, description = "Erased"), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
        Unprocessable, RateLimited, Internal, Unavailable))]
pub async fn erase_guest_comment(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<CommentId>,
    Json(body): Json<EraseBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    let how = EraseChoice::parse(&body.comments)?;
    Ok(erased(app.svc.erase_guest_comment(&caller, id, how).await?))
}

/// What a guest is told after asking for a data link (the same whether or not the address
/// commented on the forum).
pub const DATA_LINK_SENT: &str = "If comments on this site were posted with that address, \
    we sent it a link to download or delete them. The link works for an hour.";

/// Ask for a link to a guest's data on a forum, mailed to the address they commented with.
/// The answer is the same whether or not the address commented there.
#[utoipa::path(post, path = "/api/v1/data-requests", request_body = DataLinkBody, tag = "widget",
    responses((status = 202, body = MailRequestedView, description = "Accepted (the same answer for every address)"),
        BadRequest, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable, RateLimited, Internal, Unavailable))]
pub async fn request_data_link(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<DataLinkBody>,
) -> ApiResult<Response> {
    app.limits.check_auth(&caller)?;
    let email = Email::parse(&body.email)?;
    app.limits
        .check_login(&format!("data:{}", email.as_str().to_ascii_lowercase()))?;
    app.svc
        .request_data_link(&caller, &body.forum, &email)
        .await?;
    let view = MailRequestedView {
        message: DATA_LINK_SENT.to_string(),
    };
    Ok((StatusCode::ACCEPTED, axum::Json(view)).into_response())
}

// ---------------------------------------------------------------- the guest's mailed link

fn data_form(token: &str, action: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}?t={}\"><input type=\"hidden\" name=\"action\" value=\"{action}\">\
         <button type=\"submit\">{}</button></form>",
        confab_worker::links::READER_DATA_PATH,
        escape_html(token),
        escape_html(label)
    )
}

/// Shows what a guest's data link covers, with buttons to download or delete (nothing
/// changes yet).
#[utoipa::path(get, path = "/mail/reader-data", tag = "mail", operation_id = "mail_reader_data_page",
    params(("t" = String, Query, description = "Token from the data link mail")),
    responses((status = 200, description = "A page with download and delete buttons (nothing changes yet)", content_type = "text/html", body = String),
        (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn reader_data_page(RawQuery(q): RawQuery, State(app): State<AppState>) -> Response {
    let t = match token(q) {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    let link = match app.svc.reader_data_link(&t) {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    let forum = app
        .svc
        .all_forums()
        .into_iter()
        .find(|f| f.id == link.forum)
        .map(|f| f.settings.title.clone())
        .unwrap_or_default();
    page(
        StatusCode::OK,
        "Your comments",
        &format!(
            "<p>The comments posted with <strong>{}</strong> on <strong>{}</strong>.</p>{}\
             <h2>Delete them</h2><p class=\"muted\">Your name, address, site and IP go in both cases. This cannot be undone, and the link then stops working.</p>{}{}",
            escape_html(&link.email),
            escape_html(&forum),
            data_form(&t, "download", "Download my data (JSON)"),
            data_form(&t, "keep", "Delete my details, keep the text as \"deleted user\""),
            data_form(&t, "remove", "Delete my comments"),
        ),
    )
}

/// Acts on a guest's data link: `action=download` answers the JSON export; `keep` or
/// `remove` erases (once: the link stops working).
#[utoipa::path(post, path = "/mail/reader-data", tag = "mail", operation_id = "mail_reader_data",
    params(("t" = String, Query, description = "Token from the data link mail")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`action=` download, keep or remove"),
    responses((status = 200, description = "The export (JSON) or the erasure's page", content_type = "text/html", body = String),
        (status = 400, description = "The link has no token, or the action is not one of the three", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link, or an erasure already done with it", content_type = "text/html", body = String),
        (status = 415, description = "The body is not the page's form (application/x-www-form-urlencoded)", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn reader_data_action(
    RawQuery(q): RawQuery,
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "This is not the page's form",
            "<p>Use the buttons of the page the mail links to.</p>",
        );
    }
    let t = match token(q) {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    let link = match app.svc.reader_data_link(&t) {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    let action = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "action")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if action == "download" {
        return match app.svc.linked_guest_data(link.forum, &link.email).await {
            Ok(d) => download(d),
            Err(e) => error_page(&e),
        };
    }
    let how = match EraseChoice::parse(&action) {
        Ok(h) => h,
        Err(e) => return error_page(&e),
    };
    match app
        .svc
        .erase_linked_guest(link.forum, &link.email, &link.key, link.expires_at, how)
        .await
    {
        Ok(e) => page(
            StatusCode::OK,
            "Deleted",
            &format!(
                "<p>{} comment(s) erased{}.</p>",
                e.comments,
                if e.state == "done" {
                    ""
                } else {
                    " so far; the rest follows in a moment"
                }
            ),
        ),
        Err(e) => error_page(&e),
    }
}

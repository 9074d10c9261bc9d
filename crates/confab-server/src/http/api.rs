//! Handlers of `/api/v1`. Each turns the request into a caller and parsed input, calls one
//! service method, and shapes the response.

use super::caller::{Who, ANON_COOKIE, SESSION_COOKIE};
use super::error::{ApiError, Json, PathId, Query};
use super::pin::wrote;
use super::requests::*;
use super::AppState;
use crate::openapi::errors::*;
use crate::service::{
    CountRequest, FlagReason, GuestAuthor, IdempotencyKey, LogIn, ModListFilter, NewForum,
    PageRequest, PostComment, ReactionChange, Session, SignUp, SsoSignIn, SsoToken, StatsDays,
    StatusChange, SwitchChange, ThreadChanges, ThreadRemap, VoteValue,
};
use crate::views::*;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_core::cursor::Sort;
use confab_core::id::{CommentId, ThreadId};
use confab_core::ident::Ident;
use confab_core::input::{parse_title, CommentBody, Email, ForumName, Password, WebUrl};
use confab_core::switch::{Percent, SwitchName};
use confab_core::{DomainError, ErrorCode};
use serde::Deserialize;

type ApiResult<T> = Result<T, ApiError>;

pub(super) fn set_cookie(resp: &mut Response, name: &str, value: &str, max_age: i64, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Sets the session cookie (as sign-in does) on another room's answer.
pub(crate) fn set_session_cookie(resp: &mut Response, token: &str, secure: bool) {
    set_cookie(
        resp,
        SESSION_COOKIE,
        token,
        crate::service::SESSION_TTL_MS / 1000,
        secure,
    );
}

pub(super) fn with_anon_cookie(mut resp: Response, anon: Option<&str>, secure: bool) -> Response {
    if let Some(t) = anon {
        set_cookie(&mut resp, ANON_COOKIE, t, 365 * 24 * 3600, secure);
    }
    resp
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Forum short name.
    pub forum: String,
    /// Thread identifier (page URL or any string; normalized).
    pub ident: String,
    /// best (default), newest, oldest, or featured (the comments moderators featured, newest
    /// first, without nested replies).
    pub sort: Option<String>,
    /// Top-level comments per page, 1-100 (default 50).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page (opaque; any other value is refused with 400 `bad_cursor`).
    pub cursor: Option<String>,
}

/// A page of a thread: top-level comments with nested replies.
#[utoipa::path(get, path = "/api/v1/comments", params(ListQuery, ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client has")), tag = "widget",
    responses((status = 200, body = PageView, headers(("ETag" = String))), (status = 304, description = "Not modified: the `If-None-Match` copy is current"),
        BadRequest, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn list_comments(
    State(app): State<AppState>,
    Who(caller): Who,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let svc = &app.svc;
    let forum = svc.forum(&q.forum)?;
    let req = PageRequest {
        forum,
        ident: Ident::parse(&q.ident)?,
        sort: q
            .sort
            .as_deref()
            .map(Sort::parse)
            .transpose()?
            .unwrap_or_default(),
        cursor: q.cursor.filter(|c| !c.is_empty()),
        limit: svc.page_limit(q.limit)?,
    };
    let page = svc.page(req, &caller).await?;
    // gzip when the client takes it (the compressed copy is made once per cached page); each
    // encoding has its own strong validator.
    let gz = if super::web::wants_gzip(&headers) {
        page.gzipped().cloned()
    } else {
        None
    };
    let tag = if gz.is_some() {
        &page.etag_gzip
    } else {
        &page.etag
    };
    let etag = HeaderValue::from_str(tag).map_err(|_| DomainError::internal())?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let cache = HeaderValue::from_static("no-cache");
    let vary = HeaderValue::from_static("accept-encoding");
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, cache),
                (header::VARY, vary),
            ],
        )
            .into_response());
    }
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (header::ETAG, etag),
        (header::CACHE_CONTROL, cache),
        (header::VARY, vary),
    ];
    Ok(match gz {
        Some(body) => {
            let mut resp = (headers, body).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            resp
        }
        None => (headers, page.body.clone()).into_response(),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepliesQuery {
    /// `replies_cursor` of the parent, or `next_cursor` of the previous page of replies (opaque;
    /// any other value is refused with 400 `bad_cursor`).
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

/// More replies of one comment.
#[utoipa::path(get, path = "/api/v1/comments/{id}/replies", params(("id" = String, Path), RepliesQuery), tag = "widget",
    responses((status = 200, body = RepliesView), BadRequest, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn list_replies(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<CommentId>,
    Query(q): Query<RepliesQuery>,
) -> ApiResult<axum::Json<RepliesView>> {
    let limit = app.svc.page_limit(q.limit)?;
    Ok(axum::Json(
        app.svc
            .replies_page(
                id,
                q.cursor.as_deref().filter(|c| !c.is_empty()),
                limit,
                &caller,
            )
            .await?,
    ))
}

/// Post a comment; the thread is created on its first comment.
#[utoipa::path(post, path = "/api/v1/comments", request_body = NewCommentBody, tag = "widget",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first result (1-200 visible ASCII characters)")),
    responses((status = 201, body = PostedView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType,
        Unprocessable, RateLimited, Internal, Unavailable))]
pub async fn post_comment(
    State(app): State<AppState>,
    Who(caller): Who,
    headers: HeaderMap,
    Json(body): Json<NewCommentBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::new(ErrorCode::InvalidInput, "Idempotency-Key must be ASCII")
                })?
                .to_string(),
        ),
        None => None,
    };
    // Parsed in the order of the API's refusals: the forum (and whether this page may write
    // to it), identifier, text, page URL, title, key, then a guest's name, address and site.
    let limits = &app.svc.config().limits;
    let forum = app.svc.forum_for_write(&caller, &body.forum)?;
    let ident = Ident::parse(&body.ident)?;
    let text = CommentBody::parse(&body.body, limits.max_body_chars)?;
    let url = body
        .url
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(WebUrl::parse)
        .transpose()?;
    let title = body
        .title
        .as_deref()
        .map(parse_title)
        .transpose()?
        .filter(|t| !t.is_empty());
    let idempotency = key
        .map(|k| IdempotencyKey::parse(k, body.fingerprint()))
        .transpose()?;
    let guest = match caller.account {
        Some(_) => None,
        None => Some(GuestAuthor::parse(
            &forum,
            body.author_name.as_deref(),
            body.author_email.as_deref(),
            body.author_url.as_deref(),
            limits.max_name_chars,
        )?),
    };
    let cmd = PostComment {
        forum,
        ident,
        url,
        title,
        parent_id: body.parent_id,
        body: text,
        guest,
        notify: body.notify,
        images: body.images.iter().map(|i| i.0).collect(),
        idempotency,
        // Read for guests only: a signed-in caller never needs one.
        challenge: match caller.account {
            Some(_) => None,
            None => body.challenge.map(|c| c.parse()).transpose()?,
        },
    };
    let posted = app.svc.post(&caller, cmd).await?;
    let at = posted.at;
    let posted = PostedView::from(posted);
    let anon = posted.anon_token.clone();
    Ok(with_anon_cookie(
        wrote((StatusCode::CREATED, axum::Json(posted)), at),
        anon.as_deref(),
        caller.https,
    ))
}

/// Edit a comment (its author within the edit window, or a moderator).
#[utoipa::path(patch, path = "/api/v1/comments/{id}", request_body = EditBody, tag = "widget",
    params(("id" = String, Path), ("X-Confab-Edit-Token" = Option<String>, Header, description = "A guest's edit token")),
    responses((status = 200, body = CommentView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable,
        RateLimited, Internal, Unavailable))]
pub async fn edit_comment(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<CommentId>,
    Json(body): Json<EditBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    // The text is read once the caller may change the comment.
    let editing = app.svc.editing(&caller, id).await?;
    let text = CommentBody::parse(&body.body, app.svc.config().limits.max_body_chars)?;
    let edited = app.svc.edit(&caller, editing, text).await?;
    Ok(wrote(axum::Json(edited.value), edited.at))
}

/// Delete a comment (its author within the edit window, or a moderator).
#[utoipa::path(delete, path = "/api/v1/comments/{id}", tag = "widget",
    params(("id" = String, Path), ("X-Confab-Edit-Token" = Option<String>, Header, description = "A guest's edit token")),
    responses((status = 200, body = CommentView), Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn delete_comment(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<CommentId>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    let deleted = app.svc.delete(&caller, id).await?;
    Ok(wrote(axum::Json(deleted.value), deleted.at))
}

/// Render a body as it would be stored (the compose box's preview). Previews have a rate limit
/// of their own (`rate_limit.previews_per_minute_*`): they never use up a reader's posts.
#[utoipa::path(post, path = "/api/v1/preview", request_body = PreviewBody, tag = "widget",
    responses((status = 200, body = PreviewView), BadRequest, PayloadTooLarge, UnsupportedMediaType, RateLimited, Unavailable))]
pub async fn preview(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(b): Json<PreviewBody>,
) -> ApiResult<axum::Json<PreviewView>> {
    app.limits.check_preview(&caller)?;
    let text = CommentBody::parse(&b.body, app.svc.config().limits.max_body_chars)?;
    let r = confab_record::Timer::start(confab_record::Field::RenderMicros)
        .during(|| confab_core::render::render_markdown(text.as_str()));
    Ok(axum::Json(PreviewView {
        html: r.html,
        has_links: r.has_links,
    }))
}

/// Vote on a comment: 1, -1, or 0 to withdraw. One vote per voter.
#[utoipa::path(post, path = "/api/v1/comments/{id}/vote", request_body = VoteBody, tag = "widget", params(("id" = String, Path)),
    responses((status = 200, body = VoteView), BadRequest, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn vote(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<CommentId>,
    Json(body): Json<VoteBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    app.limits.check_vote(&caller)?;
    let value = VoteValue::parse(body.value)?;
    let voted = app.svc.vote(&caller, id, value).await?;
    let at = voted.at;
    let v = VoteView::from(voted);
    let anon = v.anon_token.clone();
    Ok(with_anon_cookie(
        wrote(axum::Json(v), at),
        anon.as_deref(),
        caller.https,
    ))
}

/// Flag a comment for moderators. One flag per flagger.
#[utoipa::path(post, path = "/api/v1/comments/{id}/flag", request_body = FlagBody, tag = "widget", params(("id" = String, Path)),
    responses((status = 200, body = FlagView), BadRequest, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn flag(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<CommentId>,
    Json(body): Json<FlagBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    app.limits.check_vote(&caller)?;
    let reason = FlagReason::parse(body.reason.as_deref())?;
    let flagged = app.svc.flag(&caller, id, &reason).await?;
    let at = flagged.at;
    let v = FlagView::from(flagged);
    let anon = v.anon_token.clone();
    Ok(with_anon_cookie(
        wrote(axum::Json(v), at),
        anon.as_deref(),
        caller.https,
    ))
}

/// The caller's own votes among up to 200 comments: `?id=A&id=B`. Signed in, they follow the
/// account to every device; otherwise they belong to the anonymous token.
#[utoipa::path(get, path = "/api/v1/votes", tag = "widget",
    params(("id" = Vec<String>, Query, description = "A comment id; repeat up to 200 times")),
    responses((status = 200, body = MyVotesView), BadRequest, PayloadTooLarge, Internal, Unavailable))]
pub async fn my_votes(
    State(app): State<AppState>,
    Who(caller): Who,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q = q.unwrap_or_default();
    if q.len() > 16 * 1024 {
        return Err(ApiError::new(ErrorCode::InvalidInput, "query is too long"));
    }
    let mut ids = Vec::new();
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        if k == "id" {
            ids.push(v.parse().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("{v:?} is not a comment id"),
                )
            })?);
        }
    }
    let mine = app.svc.my_votes(&caller, &ids).await?;
    let reactions = mine
        .reactions
        .into_iter()
        .map(|(id, rs)| {
            let names = rs.iter().map(|r| r.as_str().to_string()).collect();
            (id.to_string(), names)
        })
        .collect();
    Ok((
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        )],
        axum::Json(MyVotesView {
            votes: mine.votes,
            reactions,
        }),
    )
        .into_response())
}

/// React to a comment with one emoji of the fixed set (`like`, `love`, `laugh`, `wow`, `sad`,
/// `party`), or clear it (`"on": false`). One of each per reader; rate-limited like votes.
#[utoipa::path(post, path = "/api/v1/comments/{id}/reactions", request_body = ReactBody, tag = "widget", params(("id" = String, Path)),
    responses((status = 200, body = ReactedView), BadRequest, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn react_comment(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<CommentId>,
    Json(body): Json<ReactBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    app.limits.check_vote(&caller)?;
    let change = ReactionChange::parse(&body.emoji, body.on)?;
    let r = app.svc.react_comment(&caller, id, change).await?;
    reacted(r, caller.https)
}

/// React to a page (a thread) itself, as on a comment: the page's reactions, shown above its
/// comments.
#[utoipa::path(post, path = "/api/v1/threads/{id}/reactions", request_body = ReactBody, tag = "widget", params(("id" = String, Path)),
    responses((status = 200, body = ReactedView), BadRequest, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn react_thread(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<ThreadId>,
    Json(body): Json<ReactBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    app.limits.check_vote(&caller)?;
    let change = ReactionChange::parse(&body.emoji, body.on)?;
    let r = app.svc.react_thread(&caller, id, change).await?;
    reacted(r, caller.https)
}

fn reacted(r: crate::service::ReactedOutcome, https: bool) -> ApiResult<Response> {
    let at = r.at;
    let v = ReactedView::from(r);
    let anon = v.anon_token.clone();
    Ok(with_anon_cookie(
        wrote(axum::Json(v), at),
        anon.as_deref(),
        https,
    ))
}

/// Feature or unfeature an approved comment (moderators of its forum): featured comments are
/// listed with `GET /api/v1/comments?sort=featured`. Logged in the moderation log.
#[utoipa::path(post, path = "/api/v1/comments/{id}/feature", request_body = FeatureBody, tag = "moderation", params(("id" = String, Path)),
    responses((status = 200, body = CommentView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, RateLimited,
        Internal, Unavailable))]
pub async fn feature_comment(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<CommentId>,
    Json(body): Json<FeatureBody>,
) -> ApiResult<Response> {
    app.limits.check_write(&caller)?;
    let f = app.svc.feature_comment(&caller, id, body.featured).await?;
    Ok(wrote(axum::Json(f.value), f.at))
}

/// Comment counts for up to 100 threads: `?forum=F&ident=A&ident=B`.
#[utoipa::path(get, path = "/api/v1/counts", tag = "widget",
    params(("forum" = String, Query), ("ident" = Vec<String>, Query, description = "Repeat up to 100 times")),
    responses((status = 200, body = CountsView), BadRequest, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn counts(State(app): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = q.unwrap_or_default();
    if q.len() > 64 * 1024 {
        return Err(ApiError::new(ErrorCode::InvalidInput, "query is too long"));
    }
    let mut forum = None;
    let mut idents = Vec::new();
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        match &*k {
            "forum" => forum = Some(v.into_owned()),
            "ident" => idents.push(v.into_owned()),
            _ => {}
        }
    }
    let forum = forum.ok_or_else(|| ApiError::new(ErrorCode::InvalidInput, "forum is required"))?;
    let forum = app.svc.forum(&forum)?;
    let req = CountRequest::parse(idents, app.svc.config().limits.counts_max)?;
    let counts = app.svc.counts(&forum, req).await?;
    Ok((
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=5"),
        )],
        axum::Json(CountsView { counts }),
    )
        .into_response())
}

fn session_response(app: &AppState, status: StatusCode, s: Session, secure: bool) -> Response {
    let s = SessionView {
        account: account_view(&s.account, app.svc.moderated_forums(&s.account)),
        token: s.token,
    };
    let token = s.token.clone();
    let mut resp = (status, axum::Json(s)).into_response();
    set_cookie(
        &mut resp,
        SESSION_COOKIE,
        &token,
        crate::service::SESSION_TTL_MS / 1000,
        secure,
    );
    resp
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/api/v1/accounts", request_body = SignupBody, tag = "accounts",
    responses((status = 201, body = SessionView, description = "Created and signed in. The same answer whether or not another \
        account holds the e-mail address: with mail configured the address joins the account only through a link mailed to it"),
        BadRequest, Forbidden, Conflict, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn signup(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<SignupBody>,
) -> ApiResult<Response> {
    app.limits.check_auth(&caller)?;
    // A page that may not sign up is refused before the fields are read.
    app.svc.check_any_origin(&caller)?;
    let new = SignUp::parse(
        &body.username,
        body.email.as_deref(),
        &body.password,
        body.display_name.as_deref(),
        app.svc.config().limits.max_name_chars,
    )?;
    let https = caller.https;
    let session = app.svc.signup(&caller, new).await?;
    Ok(session_response(&app, StatusCode::CREATED, session, https))
}

/// Sign in: sets the session cookie and returns a bearer token for other origins.
#[utoipa::path(post, path = "/api/v1/sessions", request_body = LoginBody, tag = "accounts",
    responses((status = 200, body = SessionView), BadRequest, Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType, RateLimited,
        Internal, Unavailable))]
pub async fn login(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<LoginBody>,
) -> ApiResult<Response> {
    app.limits.check_auth(&caller)?;
    app.limits.check_login(&body.login)?;
    let https = caller.https;
    let cmd = LogIn {
        login: body.login,
        password: body.password,
    };
    let session = app.svc.login(&caller, cmd).await?;
    Ok(session_response(&app, StatusCode::OK, session, https))
}

/// Sign in from the forum's own site (SSO): a `remote_auth_s3` (Disqus' format) or an HS256
/// JWT signed with the forum's SSO secret. Answers as sign-in does, with the account of that
/// site user on this forum (made at the first sign-in; never staff or a moderator). A
/// `remote_auth_s3` of `{}` signs out: 204, the session cookie cleared, and the caller's
/// sessions ended if the caller is this forum's SSO account.
#[utoipa::path(post, path = "/api/v1/sessions/sso", request_body = SsoBody, tag = "accounts",
    responses((status = 200, body = SessionView, description = "Signed in as the site's user"),
        (status = 204, description = "The site says nobody is signed in: signed out"),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn sso_login(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<SsoBody>,
) -> ApiResult<Response> {
    app.limits.check_auth(&caller)?;
    let forum = app.svc.forum(&body.forum)?;
    let token = match (body.remote_auth_s3, body.jwt) {
        (Some(t), None) => SsoToken::RemoteAuthS3(t),
        (None, Some(t)) => SsoToken::Jwt(t),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "send exactly one of remote_auth_s3 and jwt",
            ))
        }
    };
    let https = caller.https;
    match app.svc.sso_sign_in(&caller, &forum, token).await? {
        SsoSignIn::SignedIn(session) => Ok(session_response(&app, StatusCode::OK, session, https)),
        SsoSignIn::SignedOut => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            set_cookie(&mut resp, SESSION_COOKIE, "", 0, https);
            Ok(resp)
        }
    }
}

/// Sign out: ends every session of the account (its cookie and bearer tokens, on every
/// device) and clears the session cookie.
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "accounts",
    responses((status = 204, description = "Signed out"), Forbidden, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn logout(State(app): State<AppState>, Who(caller): Who) -> ApiResult<Response> {
    app.svc.logout(&caller).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut resp, SESSION_COOKIE, "", 0, caller.https);
    Ok(resp)
}

/// What a password reset request answers, whatever it named.
pub const PASSWORD_RESET_SENT: &str =
    "If that account has an e-mail address, we sent a link to it. \
    The link sets a new password; it works once, within the hour.";

/// Ask for a password reset link by mail. The answer is the same whether or not the account
/// exists or has an address (accounts cannot be found out this way); an account with a
/// confirmed address is mailed a link (`/mail/password-reset?t=`) that works once, within an hour.
#[utoipa::path(post, path = "/api/v1/password-resets", request_body = PasswordResetBody, tag = "accounts",
    responses((status = 202, body = MailRequestedView, description = "Accepted (the same answer for every login)"),
        BadRequest, Forbidden, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn request_password_reset(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<PasswordResetBody>,
) -> ApiResult<Response> {
    app.limits.check_auth(&caller)?;
    // Limited per name as sign-ins are, in an allowance of its own: asking for links for a
    // name does not slow its owner's sign-ins.
    app.limits
        .check_login(&format!("reset:{}", body.login.trim()))?;
    app.svc.request_password_reset(&caller, &body.login).await?;
    let view = MailRequestedView {
        message: PASSWORD_RESET_SENT.to_string(),
    };
    Ok((StatusCode::ACCEPTED, axum::Json(view)).into_response())
}

/// Set a new password with a password reset link's token. Every session of the account ends
/// (on every node), the link stops working, and the caller is signed in (as sign-in answers).
#[utoipa::path(post, path = "/api/v1/password-resets/confirm", request_body = PasswordResetConfirmBody, tag = "accounts",
    responses((status = 200, body = SessionView, description = "Password set; signed in"),
        BadRequest, NotFound,
        Forbidden, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn confirm_password_reset(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<PasswordResetConfirmBody>,
) -> ApiResult<Response> {
    app.limits.check_auth(&caller)?;
    app.svc.check_any_origin(&caller)?;
    let password = Password::parse(&body.password)?;
    let https = caller.https;
    let session = app.svc.reset_password(&body.token, password).await?;
    Ok(session_response(&app, StatusCode::OK, session, https))
}

/// Change the password, given the current one. Every other session of the account ends (on
/// every node); the answer carries the caller's new session.
#[utoipa::path(post, path = "/api/v1/me/password", request_body = PasswordChangeBody, tag = "accounts",
    responses((status = 200, body = SessionView, description = "Changed; the new session"),
        BadRequest, Unauthorized, Forbidden,
        Conflict, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn change_password(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<PasswordChangeBody>,
) -> ApiResult<Response> {
    app.limits.check_auth(&caller)?;
    if let Some(id) = caller.account {
        app.limits.check_login(&format!("account:{}", id.0))?;
    }
    let new = Password::parse(&body.new)?;
    let https = caller.https;
    let session = app.svc.change_password(&caller, body.current, new).await?;
    Ok(session_response(&app, StatusCode::OK, session, https))
}

/// Change the e-mail address, given the password: the new address is mailed a link
/// (`/mail/account-email?t=`), and becomes the account's only when the link is followed.
#[utoipa::path(post, path = "/api/v1/me/email", request_body = EmailChangeBody, tag = "accounts",
    responses((status = 202, body = MailRequestedView, description = "A link is on its way to the new address"),
        BadRequest, Unauthorized, Forbidden,
        PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable))]
pub async fn change_email(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<EmailChangeBody>,
) -> ApiResult<Response> {
    app.limits.check_auth(&caller)?;
    if let Some(id) = caller.account {
        app.limits.check_login(&format!("account:{}", id.0))?;
    }
    let email = Email::parse(&body.email)?;
    app.svc.change_email(&caller, email, body.password).await?;
    let view = MailRequestedView {
        message:
            "We sent a link to the new address. It becomes your address when you follow the link."
                .to_string(),
    };
    Ok((StatusCode::ACCEPTED, axum::Json(view)).into_response())
}

/// Log out everywhere: every session of the account ends, on every device and node (this
/// one's too), and the session cookie is cleared.
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "accounts",
    responses((status = 204, description = "Every session ended"), Unauthorized, Forbidden, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn end_all_sessions(
    State(app): State<AppState>,
    Who(caller): Who,
) -> ApiResult<Response> {
    app.svc.end_all_sessions(&caller).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut resp, SESSION_COOKIE, "", 0, caller.https);
    Ok(resp)
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = AccountView), Unauthorized, PayloadTooLarge, Internal, Unavailable))]
pub async fn me(
    State(app): State<AppState>,
    Who(caller): Who,
) -> ApiResult<axum::Json<AccountView>> {
    let a = app.svc.me(&caller).await?;
    Ok(axum::Json(account_view(&a, app.svc.moderated_forums(&a))))
}

/// Forums the caller moderates (staff: all).
#[utoipa::path(get, path = "/api/v1/forums", tag = "moderation",
    responses((status = 200, body = Vec<ForumView>), Unauthorized, Forbidden, PayloadTooLarge, Internal, Unavailable))]
pub async fn my_forums(
    State(app): State<AppState>,
    Who(caller): Who,
) -> ApiResult<axum::Json<Vec<ForumView>>> {
    let forums = app.svc.my_forums(&caller).await?;
    Ok(axum::Json(forums.iter().map(|f| forum_view(f)).collect()))
}

/// Create a forum (staff).
#[utoipa::path(post, path = "/api/v1/forums", request_body = NewForumBody, tag = "moderation",
    responses((status = 201, body = ForumView), BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, UnsupportedMediaType, RateLimited,
        Internal, Unavailable))]
pub async fn create_forum(
    State(app): State<AppState>,
    Who(caller): Who,
    Json(body): Json<NewForumBody>,
) -> ApiResult<Response> {
    let staff = app.svc.staff(&caller).await?;
    let new = NewForum {
        name: ForumName::parse(&body.name)?,
        title: body.title,
        allowed_origins: body.allowed_origins,
        moderation: body.moderation,
        guest_posting: body.guest_posting,
        edit_window_secs: body.edit_window_secs,
    };
    let forum = app.svc.create_forum_as(&staff, new).await?;
    Ok((StatusCode::CREATED, axum::Json(forum_view(&forum))).into_response())
}

/// A forum's settings.
#[utoipa::path(get, path = "/api/v1/forums/{forum}", params(("forum" = String, Path)), tag = "moderation",
    responses((status = 200, body = ForumView), Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn forum_settings(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
) -> ApiResult<axum::Json<ForumView>> {
    let m = app.svc.moderate(&caller, &forum).await?;
    Ok(axum::Json(forum_view(m.forum())))
}

/// Change a forum's settings.
#[utoipa::path(patch, path = "/api/v1/forums/{forum}", params(("forum" = String, Path)), request_body = ForumPatch, tag = "moderation",
    responses((status = 200, body = ForumView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, RateLimited,
        Internal, Unavailable))]
pub async fn update_forum(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Json(body): Json<ForumPatch>,
) -> ApiResult<axum::Json<ForumView>> {
    let m = app.svc.moderate(&caller, &forum).await?;
    let changes = body.into_changes()?;
    Ok(axum::Json(forum_view(
        &app.svc.update_forum(&m, changes).await?,
    )))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModListQuery {
    /// pending (default), approved, spam, deleted, flagged or all.
    pub queue: Option<String>,
    /// Substring of text, author name or e-mail; or an exact IP hash.
    pub q: Option<String>,
    /// `next_before` of the previous page.
    pub before: Option<String>,
    pub limit: Option<usize>,
}

/// A moderation queue of a forum, newest first.
#[utoipa::path(get, path = "/api/v1/forums/{forum}/comments", params(("forum" = String, Path), ModListQuery), tag = "moderation",
    responses((status = 200, body = ModListView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn mod_list(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Query(q): Query<ModListQuery>,
) -> ApiResult<axum::Json<ModListView>> {
    let limit = app.svc.page_limit(q.limit)?;
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(
            b.parse::<CommentId>()
                .map_err(|_| ApiError::new(ErrorCode::BadCursor, "before must be a comment id"))?,
        ),
        None => None,
    };
    let m = app.svc.moderate(&caller, &forum).await?;
    let filter = ModListFilter::parse(q.queue.as_deref(), q.q, before, limit)?;
    Ok(axum::Json(app.svc.mod_list(&m, filter).await?))
}

/// Approve, mark as spam, delete or restore up to 100 comments.
#[utoipa::path(post, path = "/api/v1/forums/{forum}/moderate", params(("forum" = String, Path)), request_body = ModerateBody, tag = "moderation",
    responses((status = 200, body = ModerateView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, RateLimited,
        Internal, Unavailable))]
pub async fn moderate(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Json(body): Json<ModerateBody>,
) -> ApiResult<Response> {
    let m = app.svc.moderate(&caller, &forum).await?;
    let change = StatusChange::parse(body.ids, &body.action)?;
    let changed = app.svc.moderate_comments(&m, &change).await?;
    Ok(wrote(
        axum::Json(ModerateView {
            changed: changed.value,
        }),
        changed.at,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    pub before: Option<String>,
    pub limit: Option<usize>,
}

/// The moderation log, newest first.
#[utoipa::path(get, path = "/api/v1/forums/{forum}/log", params(("forum" = String, Path), LogQuery), tag = "moderation",
    responses((status = 200, body = LogView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn mod_log(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<axum::Json<LogView>> {
    let limit = app.svc.page_limit(q.limit)?;
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(
            confab_core::id::parse_id(b)
                .ok_or_else(|| ApiError::new(ErrorCode::BadCursor, "before must be a log id"))?,
        ),
        None => None,
    };
    let m = app.svc.moderate(&caller, &forum).await?;
    Ok(axum::Json(LogView::from(
        app.svc.log(&m, before, limit).await?,
    )))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Days back from today, 1-365 (default 30).
    pub days: Option<u32>,
}

/// Comments per day.
#[utoipa::path(get, path = "/api/v1/forums/{forum}/stats", params(("forum" = String, Path), StatsQuery), tag = "moderation",
    responses((status = 200, body = StatsView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn stats(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<axum::Json<StatsView>> {
    let days = StatsDays::parse(q.days.unwrap_or(30))?;
    let m = app.svc.moderate(&caller, &forum).await?;
    Ok(axum::Json(StatsView::from(app.svc.stats(&m, days).await?)))
}

/// Close or reopen a thread, or change its title.
#[utoipa::path(patch, path = "/api/v1/threads/{id}", params(("id" = String, Path)), request_body = ThreadPatchBody, tag = "moderation",
    responses((status = 200, body = ThreadView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, RateLimited,
        Internal, Unavailable))]
pub async fn update_thread(
    State(app): State<AppState>,
    Who(caller): Who,
    PathId(id): PathId<ThreadId>,
    Json(body): Json<ThreadPatchBody>,
) -> ApiResult<Response> {
    let t = app.svc.moderate_thread(&caller, id).await?;
    let changes = ThreadChanges::parse(body.closed, body.title.as_deref(), body.pinned.as_deref())?;
    let updated = app.svc.update_thread(&t, changes).await?;
    Ok(wrote(
        axum::Json(thread_view(&updated.value, t.forum())),
        updated.at,
    ))
}

/// A thread moved to a new address (a site that changed its URLs): the thread found by `from`
/// (its ident, or one of its aliases) answers to `to` as well, and keeps its comments. Pages
/// cached for `to` are dropped on every node. Logged in the moderation log.
#[utoipa::path(post, path = "/api/v1/forums/{forum}/thread-moves", params(("forum" = String, Path)), request_body = ThreadMoveBody, tag = "moderation",
    responses((status = 200, body = ThreadAddressesView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType,
        RateLimited, Internal, Unavailable))]
pub async fn move_thread(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Json(body): Json<ThreadMoveBody>,
) -> ApiResult<Response> {
    let m = app.svc.moderate(&caller, &forum).await?;
    let remap = ThreadRemap::parse(&body.from, &body.to)?;
    let actor = Some(m.account().id);
    let moved = app
        .svc
        .move_thread_or_refuse(m.forum(), actor, remap)
        .await?;
    let (thread, aliases) = &moved.value;
    Ok(wrote(
        axum::Json(ThreadAddressesView {
            thread: thread_view(thread, m.forum()),
            aliases: aliases.iter().map(|a| a.as_str().to_string()).collect(),
        }),
        moved.at,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SwitchScope {
    /// A forum's short name; none: the global record.
    pub forum: Option<String>,
}

fn switches_view(settings: Vec<crate::service::SwitchSetting>) -> SwitchesView {
    SwitchesView {
        names: confab_core::switch::SwitchName::ALL
            .iter()
            .map(|n| n.as_str().to_string())
            .collect(),
        switches: settings.into_iter().map(SwitchView::from).collect(),
    }
}

/// Every feature switch and its records (staff).
#[utoipa::path(get, path = "/api/v1/switches", tag = "staff",
    responses((status = 200, body = SwitchesView), Unauthorized, Forbidden, PayloadTooLarge, Internal, Unavailable))]
pub async fn list_switches(
    State(app): State<AppState>,
    Who(caller): Who,
) -> ApiResult<axum::Json<SwitchesView>> {
    let staff = app.svc.staff(&caller).await?;
    let all = app.svc.switches_as(&staff);
    Ok(axum::Json(switches_view(all)))
}

/// Set a feature switch's record in a scope (staff): `on` for the requests its selectors
/// match (every request in the scope without selectors), the opposite for the rest. Every node
/// applies it within a second.
#[utoipa::path(put, path = "/api/v1/switches/{name}", tag = "staff", params(("name" = String, Path, description = "posting, realtime, signups or gravatar")),
    request_body = SwitchBody,
    responses((status = 200, body = SwitchView), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
        RateLimited, Internal, Unavailable))]
pub async fn set_switch(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(name): axum::extract::Path<String>,
    Json(body): Json<SwitchBody>,
) -> ApiResult<axum::Json<SwitchView>> {
    app.limits.check_write(&caller)?;
    let staff = app.svc.staff(&caller).await?;
    let change = SwitchChange {
        name: SwitchName::parse(&name)?,
        forum: body.forum.filter(|f| !f.trim().is_empty()),
        on: body.on,
        percent: body.percent.map(Percent::parse).transpose()?,
        staff: body.staff,
    };
    let set = app.svc.set_switch_as(&staff, change).await?;
    Ok(axum::Json(SwitchView::from(set)))
}

/// Delete a feature switch's record in a scope (staff): the wider scope's record, or the
/// default (on), decides again.
#[utoipa::path(delete, path = "/api/v1/switches/{name}", tag = "staff",
    params(("name" = String, Path, description = "posting, realtime, signups or gravatar"), SwitchScope),
    responses((status = 204, description = "Reset"), BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn reset_switch(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(q): Query<SwitchScope>,
) -> ApiResult<StatusCode> {
    app.limits.check_write(&caller)?;
    let staff = app.svc.staff(&caller).await?;
    let name = SwitchName::parse(&name)?;
    let forum = q.forum.filter(|f| !f.trim().is_empty());
    app.svc
        .reset_switch_as(&staff, name, forum.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A forum's moderators (staff; at most 100).
#[utoipa::path(get, path = "/api/v1/forums/{forum}/moderators", tag = "staff", params(("forum" = String, Path)),
    responses((status = 200, body = Vec<ModeratorView>), Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, Unavailable))]
pub async fn forum_moderators(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
) -> ApiResult<axum::Json<Vec<ModeratorView>>> {
    let staff = app.svc.staff(&caller).await?;
    let mods = app.svc.moderators_as(&staff, &forum).await?;
    Ok(axum::Json(
        mods.into_iter()
            .map(|a| ModeratorView {
                username: a.username,
                display_name: a.display_name,
                is_staff: a.is_staff,
            })
            .collect(),
    ))
}

/// Make an account a moderator of a forum (staff).
#[utoipa::path(put, path = "/api/v1/forums/{forum}/moderators/{username}", tag = "staff",
    params(("forum" = String, Path), ("username" = String, Path)),
    responses((status = 204, description = "A moderator of the forum"), Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn add_moderator(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path((forum, username)): axum::extract::Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.limits.check_write(&caller)?;
    let staff = app.svc.staff(&caller).await?;
    app.svc
        .set_moderator_as(&staff, &username, &forum, true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove an account's moderation of a forum (staff); its sessions end.
#[utoipa::path(delete, path = "/api/v1/forums/{forum}/moderators/{username}", tag = "staff",
    params(("forum" = String, Path), ("username" = String, Path)),
    responses((status = 204, description = "No longer a moderator of the forum"), Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn remove_moderator(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path((forum, username)): axum::extract::Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.limits.check_write(&caller)?;
    let staff = app.svc.staff(&caller).await?;
    app.svc
        .set_moderator_as(&staff, &username, &forum, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make an account staff (staff).
#[utoipa::path(put, path = "/api/v1/staff/{username}", tag = "staff", params(("username" = String, Path)),
    responses((status = 204, description = "Staff"), Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn add_staff(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(username): axum::extract::Path<String>,
) -> ApiResult<StatusCode> {
    app.limits.check_write(&caller)?;
    let staff = app.svc.staff(&caller).await?;
    app.svc.set_staff_as(&staff, &username, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove an account's staff role (staff; not one's own); its sessions end.
#[utoipa::path(delete, path = "/api/v1/staff/{username}", tag = "staff", params(("username" = String, Path)),
    responses((status = 204, description = "No longer staff"), Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn remove_staff(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(username): axum::extract::Path<String>,
) -> ApiResult<StatusCode> {
    app.limits.check_write(&caller)?;
    let staff = app.svc.staff(&caller).await?;
    app.svc.set_staff_as(&staff, &username, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Upload an export to import into the forum (staff, from the dashboard). The body is the file
/// as it is (gzip is recognized); it is written to disk as it arrives (at most the server's
/// `[import] max_upload_mb`), then imported in the background on this server, one import at a
/// time per server. Answers at once with the import's record; poll it for progress. When the
/// import ends its file is deleted and its summary, or its error, goes in the moderation log.
#[utoipa::path(post, path = "/api/v1/forums/{forum}/imports", params(("forum" = String, Path), ImportQuery,
        ("X-File-Name" = Option<String>, Header, description = "The file's name, for the record (percent-encoded; `name` in the query wins)")),
    request_body(content = String, content_type = "application/octet-stream", description = "The export file"),
    tag = "staff",
    responses((status = 202, body = ImportView, description = "Received; the import runs in the background"), BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType,
        (status = 409, body = ErrorBody, description = "This server is running an import already (`conflict`)"),
        (status = 413, body = ErrorBody, description = "The file is over the server's `[import] max_upload_mb` (`payload_too_large`); a declared length over it is refused unread"),
        RequestTimeout, RateLimited, Internal, Unavailable))]
pub async fn upload_import(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    use http_body_util::BodyExt;
    let staff = app.svc.staff(&caller).await?;
    // Not a type a cross-site form can send (as JSON is for every other write).
    let octets = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"));
    if !octets {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the export file as the body, with Content-Type: application/octet-stream",
        ));
    }
    let format = q.format()?;
    let file_name = match q.name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => headers
            .get("x-file-name")
            .and_then(|v| v.to_str().ok())
            .map(super::percent_decode)
            .unwrap_or_default(),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut upload = app
        .svc
        .begin_upload(&staff, &forum, format, &file_name, declared)
        .await?;
    let timeout =
        std::time::Duration::from_secs(app.svc.config().connections.body_timeout_secs.max(1));
    let mut body = body;
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Ok(None) => break,
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    upload.write(data).await?;
                }
            }
            Ok(Some(Err(_))) => {
                upload.fail("the upload was cut off before its end");
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    "the request body could not be read",
                ));
            }
            Err(_) => {
                let secs = timeout.as_secs();
                upload.fail(&format!("no part of the upload arrived for {secs} s"));
                return Err(ApiError::new(
                    ErrorCode::RequestTimeout,
                    format!("no part of the request body arrived for {secs} s"),
                ));
            }
        }
    }
    let record = upload.start().await?;
    Ok((StatusCode::ACCEPTED, axum::Json(ImportView::from(&record))).into_response())
}

/// A forum's latest imports, newest first (staff), and the formats and size an upload may be.
#[utoipa::path(get, path = "/api/v1/forums/{forum}/imports", params(("forum" = String, Path)), tag = "staff",
    responses((status = 200, body = ImportsView), Unauthorized, Forbidden, NotFound, Internal, Unavailable))]
pub async fn list_imports(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
) -> ApiResult<axum::Json<ImportsView>> {
    use crate::service::import::ImportFormat;
    let staff = app.svc.staff(&caller).await?;
    let imports = app.svc.imports(&staff, &forum).await?;
    Ok(axum::Json(ImportsView {
        formats: ImportFormat::ALL
            .iter()
            .map(|f| f.source().to_string())
            .collect(),
        max_upload_bytes: app.svc.config().import.max_upload_bytes(),
        imports: imports.iter().map(ImportView::from).collect(),
    }))
}

/// One import of a forum (staff): poll it while it runs.
#[utoipa::path(get, path = "/api/v1/forums/{forum}/imports/{id}", params(("forum" = String, Path), ("id" = String, Path)), tag = "staff",
    responses((status = 200, body = ImportView), Unauthorized, Forbidden, NotFound, Internal, Unavailable))]
pub async fn get_import(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path((forum, id)): axum::extract::Path<(String, String)>,
) -> ApiResult<axum::Json<ImportView>> {
    let staff = app.svc.staff(&caller).await?;
    let id = confab_core::id::parse_id(&id)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "import not found"))?;
    let record = app.svc.import_record(&staff, &forum, id).await?;
    Ok(axum::Json(ImportView::from(&record)))
}

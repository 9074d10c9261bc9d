//! The pages behind the links in Confab's mail: plain server-rendered HTML, one form button
//! each. A GET only shows what the link would do (mail scanners and link previews fetch links);
//! the POST acts. The signed token in `?t=` is the whole authorization, so no cookie or session
//! is involved, and the POST needs no body: the unsubscribe URL is the mail's `List-Unsubscribe`
//! target, and a mail provider's RFC 8058 one-click POST (`List-Unsubscribe=One-Click`) to it
//! unsubscribes just like the button.
//!
//! - `/mail/confirm?t=`: confirm a subscription to a forum's reply mail (double opt-in).
//! - `/mail/unsubscribe?t=`: stop a forum's reply mail to an address.
//! - `/mail/moderate?t=`: a moderator approves, marks as spam or deletes a comment.
//! - `/mail/account-email?t=`: the address an account signed up with (or its owner asked to
//!   change to) becomes its address.
//! - `/mail/password-reset?t=`: a form that sets a new password (the one page whose POST has a
//!   body: the new password, as a form field).

use super::AppState;
use crate::http::error::status_of;
use crate::openapi::errors::PayloadTooLarge;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use confab_core::render::escape_html;
use confab_core::DomainError;
use confab_worker::links::{self, ModAction};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(links::CONFIRM_PATH, get(confirm_page).post(confirm))
        .route(
            links::UNSUBSCRIBE_PATH,
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(links::MODERATE_PATH, get(moderate_page).post(moderate))
        .route(
            links::ACCOUNT_EMAIL_PATH,
            get(account_email_page).post(account_email),
        )
        .route(
            links::PASSWORD_RESET_PATH,
            get(password_reset_page).post(password_reset),
        )
        .route(
            links::READER_DATA_PATH,
            get(super::gdpr::reader_data_page).post(super::gdpr::reader_data_action),
        )
}

/// No script, nothing from elsewhere, never framed; the token in the URL is not sent on.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;line-height:1.5;color:#222}}\
         button{{font-size:1em;padding:.5em 1.2em;cursor:pointer}}blockquote{{margin:1em 0;padding:0 1em;border-left:3px solid #ccc;white-space:pre-wrap}}\
         .muted{{color:#666}}label{{display:block;margin:1em 0 .3em}}input{{font-size:1em;padding:.4em;width:100%;max-width:24em;box-sizing:border-box}}\
         .error{{color:#a00}}</style></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape_html(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub(super) fn error_page(e: &DomainError) -> Response {
    page(
        status_of(e.code),
        "This link does not work",
        &format!("<p>{}</p>", escape_html(&e.message)),
    )
}

/// The token of `?t=`; a form posting to the same URL keeps it.
pub(super) fn token(q: Option<String>) -> Result<String, DomainError> {
    let q = q.unwrap_or_default();
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty() && t.len() <= 1024)
        .ok_or_else(|| DomainError::invalid("the link has no token"))
}

/// A form that posts back to this URL (relative, so it works behind any public address).
fn button(path: &str, token: &str, label: &str) -> String {
    // The unsubscribe form sends what an RFC 8058 one-click POST sends.
    let field = if path == links::UNSUBSCRIBE_PATH {
        "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
    } else {
        ""
    };
    format!(
        "<form method=\"post\" action=\"{path}?t={}\">{field}<button type=\"submit\">{}</button></form>",
        escape_html(token),
        escape_html(label)
    )
}

/// Shows what a confirmation link confirms, with a button.
#[utoipa::path(get, path = "/mail/confirm", tag = "mail", operation_id = "mail_confirm_page", params(("t" = String, Query, description = "Token from the confirmation mail")),
    responses((status = 200, description = "A page with a Confirm button (nothing changes yet)", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link", content_type = "text/html", body = String), (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn confirm_page(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let r = token(q).and_then(|t| app.svc.confirm_link(&t).map(|(f, e)| (t, f, e)));
    match r {
        Ok((t, forum, email)) => page(
            StatusCode::OK,
            "Confirm reply notifications",
            &format!(
                "<p>Send replies to your comments on <strong>{}</strong> to <strong>{}</strong>?</p>{}\
                 <p class=\"muted\">Every notification has a link to stop them.</p>",
                escape_html(&forum.settings.title),
                escape_html(&email),
                button(links::CONFIRM_PATH, &t, "Confirm")
            ),
        ),
        Err(e) => error_page(&e),
    }
}

/// Confirms a subscription to a forum's reply mail (double opt-in).
#[utoipa::path(post, path = "/mail/confirm", tag = "mail", operation_id = "mail_confirm", params(("t" = String, Query, description = "Token from the confirmation mail")),
    responses((status = 200, description = "Confirmed", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link", content_type = "text/html", body = String), (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn confirm(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let r = match token(q) {
        Ok(t) => app.svc.confirm_subscription(&t).await,
        Err(e) => Err(e),
    };
    match r {
        Ok((forum, email)) => page(
            StatusCode::OK,
            "Reply notifications confirmed",
            &format!(
                "<p>Replies to your comments on <strong>{}</strong> will be sent to <strong>{}</strong> \
                 when you ask for them.</p>",
                escape_html(&forum.settings.title),
                escape_html(&email)
            ),
        ),
        Err(e) => error_page(&e),
    }
}

/// Shows what an unsubscribe link stops, with a button.
#[utoipa::path(get, path = "/mail/unsubscribe", tag = "mail", operation_id = "mail_unsubscribe_page", params(("t" = String, Query, description = "Token from a notification's unsubscribe link")),
    responses((status = 200, description = "A page with an Unsubscribe button (nothing changes yet)", content_type = "text/html", body = String),
        (status = 404, description = "Invalid link", content_type = "text/html", body = String), (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn unsubscribe_page(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let r = token(q).and_then(|t| app.svc.unsubscribe_link(&t).map(|(f, e, th)| (t, f, e, th)));
    match r {
        Ok((t, forum, email, thread)) => page(
            StatusCode::OK,
            "Unsubscribe",
            &format!(
                "<p>{} <strong>{}</strong> to <strong>{}</strong>?</p>{}",
                if thread.is_some() {
                    "Stop mailing new comments in this discussion on"
                } else {
                    "Stop sending replies and mentions from"
                },
                escape_html(&forum.settings.title),
                escape_html(&email),
                button(links::UNSUBSCRIBE_PATH, &t, "Unsubscribe")
            ),
        ),
        Err(e) => error_page(&e),
    }
}

/// Unsubscribes: the page's button, or a mail provider's RFC 8058 one-click POST
/// (body `List-Unsubscribe=One-Click`, which is not needed). Repeating it changes nothing.
#[utoipa::path(post, path = "/mail/unsubscribe", tag = "mail", operation_id = "mail_unsubscribe", params(("t" = String, Query, description = "Token from a notification's unsubscribe link")),
    responses((status = 200, description = "Unsubscribed", content_type = "text/html", body = String),
        (status = 404, description = "Invalid link", content_type = "text/html", body = String), (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn unsubscribe(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let r = match token(q) {
        Ok(t) => app.svc.unsubscribe(&t).await,
        Err(e) => Err(e),
    };
    match r {
        Ok((forum, email, Some(_))) => page(
            StatusCode::OK,
            "Unsubscribed",
            &format!(
                "<p>You no longer follow this discussion on <strong>{}</strong>: <strong>{}</strong> \
                 gets no more mail about its new comments.</p>\
                 <p class=\"muted\">To follow it again, use Follow above its comments.</p>",
                escape_html(&forum.settings.title),
                escape_html(&email)
            ),
        ),
        Ok((forum, email, None)) => page(
            StatusCode::OK,
            "Unsubscribed",
            &format!(
                "<p><strong>{}</strong> will get no more reply or mention notifications from <strong>{}</strong>.</p>\
                 <p class=\"muted\">To get them again, ask for them the next time you comment.</p>",
                escape_html(&email),
                escape_html(&forum.settings.title)
            ),
        ),
        Err(e) => error_page(&e),
    }
}

fn action_label(a: ModAction) -> (&'static str, &'static str) {
    match a {
        ModAction::Approve => ("Approve", "approved"),
        ModAction::Spam => ("Mark as spam", "marked as spam"),
        ModAction::Delete => ("Delete", "deleted"),
    }
}

fn comment_block(l: &crate::service::outbox::ModLink) -> String {
    let who = match &l.comment.author {
        confab_core::model::Author::Guest { name, .. } => name.clone(),
        confab_core::model::Author::Account(a) => format!("account {a}"),
    };
    let body: String = l.comment.body_md.chars().take(2000).collect();
    format!(
        "<p>A comment by <strong>{}</strong> on <strong>{}</strong>, now {}:</p><blockquote>{}</blockquote>",
        escape_html(&who),
        escape_html(&l.forum.settings.title),
        l.comment.status.as_str(),
        escape_html(&body)
    )
}

/// Shows a moderation link's comment and action, with a button.
#[utoipa::path(get, path = "/mail/moderate", tag = "mail", operation_id = "mail_moderate_page", params(("t" = String, Query, description = "Token from a moderator's notice")),
    responses((status = 200, description = "A page with the action's button (nothing changes yet)", content_type = "text/html", body = String),
        (status = 403, description = "No longer a moderator of the forum", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link", content_type = "text/html", body = String), (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn moderate_page(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let t = match token(q) {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    match app.svc.moderation_link(&t).await {
        Ok(l) => {
            let (label, done) = action_label(l.action);
            let act = if l.already {
                format!("<p>It is already {done}.</p>")
            } else {
                button(links::MODERATE_PATH, &t, label)
            };
            page(
                StatusCode::OK,
                label,
                &format!(
                    "{}{act}<p><a href=\"/admin\">Moderation dashboard</a></p>",
                    comment_block(&l)
                ),
            )
        }
        Err(e) => error_page(&e),
    }
}

/// Applies a moderation link's action (as the moderator it was sent to).
#[utoipa::path(post, path = "/mail/moderate", tag = "mail", operation_id = "mail_moderate", params(("t" = String, Query, description = "Token from a moderator's notice")),
    responses((status = 200, description = "Done", content_type = "text/html", body = String),
        (status = 403, description = "No longer a moderator of the forum", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link", content_type = "text/html", body = String), (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn moderate(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let t = match token(q) {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    match app.svc.moderate_by_link(&t).await {
        Ok(l) => {
            let (_, done) = action_label(l.action);
            super::pin::wrote(
                page(StatusCode::OK, "Done", &format!("<p>The comment is {done}.</p><p><a href=\"/admin\">Moderation dashboard</a></p>")),
                l.at,
            )
        }
        Err(e) => error_page(&e),
    }
}

/// Shows which address an account e-mail link adds, with a button.
#[utoipa::path(get, path = "/mail/account-email", tag = "mail", operation_id = "mail_account_email_page",
    params(("t" = String, Query, description = "Token from the sign-up or address-change mail")),
    responses((status = 200, description = "A page with a button (nothing changes yet)", content_type = "text/html", body = String),
        (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn account_email_page(RawQuery(q): RawQuery, State(app): State<AppState>) -> Response {
    match token(q).and_then(|t| app.svc.account_email_link(&t).map(|(_, e)| (t, e))) {
        Ok((t, email)) => page(
            StatusCode::OK,
            "Add your e-mail address",
            &format!(
                "<p>Make <strong>{}</strong> the e-mail address of your account?</p>{}",
                escape_html(&email),
                button(links::ACCOUNT_EMAIL_PATH, &t, "Add it")
            ),
        ),
        Err(e) => error_page(&e),
    }
}

/// Adds the address to the account (if no other account took it meanwhile).
#[utoipa::path(post, path = "/mail/account-email", tag = "mail", operation_id = "mail_account_email",
    params(("t" = String, Query, description = "Token from the sign-up or address-change mail")),
    responses((status = 200, description = "Added", content_type = "text/html", body = String),
        (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link", content_type = "text/html", body = String),
        (status = 409, description = "Another account holds the address", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn account_email(RawQuery(q): RawQuery, State(app): State<AppState>) -> Response {
    let r = match token(q) {
        Ok(t) => app.svc.confirm_account_email(&t).await,
        Err(e) => Err(e),
    };
    match r {
        Ok((account, email)) => page(
            StatusCode::OK,
            "E-mail address added",
            &format!(
                "<p><strong>{}</strong> is now the address of <strong>{}</strong>.</p>",
                escape_html(&email),
                escape_html(&account.username)
            ),
        ),
        Err(e) => error_page(&e),
    }
}

/// The form that sets a new password: the rule, one field, and a button that posts to this URL.
fn password_form(token: &str, username: &str, error: Option<&str>) -> String {
    use confab_core::input::Password;
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape_html(e))
    });
    format!(
        "<p>Choose a new password for <strong>{}</strong>.</p>{error}\
         <form method=\"post\" action=\"{}?t={}\">\
         <input type=\"text\" name=\"username\" value=\"{}\" autocomplete=\"username\" hidden>\
         <label for=\"password\">New password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"{min}\" maxlength=\"{max}\" aria-describedby=\"rule\">\
         <p id=\"rule\" class=\"muted\">At least {min} characters (at most {max}).</p>\
         <button type=\"submit\">Set the new password</button></form>\
         <p class=\"muted\">Every device signed in to the account is signed out.</p>",
        escape_html(username),
        links::PASSWORD_RESET_PATH,
        escape_html(token),
        escape_html(username),
        min = Password::MIN,
        max = Password::MAX,
    )
}

/// Shows the form that sets a new password (nothing changes yet).
#[utoipa::path(get, path = "/mail/password-reset", tag = "mail", operation_id = "mail_password_reset_page",
    params(("t" = String, Query, description = "Token from the password reset mail")),
    responses((status = 200, description = "A page with the new-password form (nothing changes yet)", content_type = "text/html", body = String),
        (status = 400, description = "The link has no token, or one over 1024 characters", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link, or one already used", content_type = "text/html", body = String),
        (status = 415, description = "The body is not the page's form (application/x-www-form-urlencoded)", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn password_reset_page(RawQuery(q): RawQuery, State(app): State<AppState>) -> Response {
    let t = match token(q) {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    match app.svc.password_reset_link(&t).await {
        Ok((account, _)) => page(
            StatusCode::OK,
            "Set a new password",
            &password_form(&t, &account.username, None),
        ),
        Err(e) => error_page(&e),
    }
}

/// Sets the new password of the form (`application/x-www-form-urlencoded`, field `password`):
/// every session of the account ends, and the link stops working.
#[utoipa::path(post, path = "/mail/password-reset", tag = "mail", operation_id = "mail_password_reset",
    params(("t" = String, Query, description = "Token from the password reset mail")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`password=` the new password"),
    responses((status = 200, description = "Password set", content_type = "text/html", body = String),
        (status = 400, description = "The link has no token, or the password breaks the rule (the form again, saying why)", content_type = "text/html", body = String),
        (status = 404, description = "Invalid or expired link, or one already used", content_type = "text/html", body = String),
        (status = 415, description = "The body is not the page's form (application/x-www-form-urlencoded)", content_type = "text/html", body = String),
        PayloadTooLarge, (status = 500, description = "Internal failure", content_type = "text/html", body = String),
        (status = 503, description = "Temporarily unavailable", content_type = "text/html", body = String)))]
pub async fn password_reset(
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
            "<p>Send the new password from the page the mail links to.</p>",
        );
    }
    let t = match token(q) {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    let typed = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let password = match confab_core::input::Password::parse(&typed) {
        Ok(p) => p,
        Err(e) => {
            return match app.svc.password_reset_link(&t).await {
                Ok((account, _)) => page(
                    StatusCode::BAD_REQUEST,
                    "Set a new password",
                    &password_form(&t, &account.username, Some(&e.message)),
                ),
                Err(e) => error_page(&e),
            }
        }
    };
    match app.svc.reset_password(&t, password).await {
        Ok(s) => page(
            StatusCode::OK,
            "Password changed",
            &format!(
                "<p>The password of <strong>{}</strong> is changed. Sign in with it where you comment.</p>\
                 <p class=\"muted\">Every device that was signed in to the account is signed out.</p>",
                escape_html(&s.account.username)
            ),
        ),
        Err(e) => error_page(&e),
    }
}

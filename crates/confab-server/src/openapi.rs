//! The OpenAPI document, generated from the handlers' annotations and the view types.

use crate::http::{api, mail};
use crate::views::*;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Confab API", version = "1", description = "Threaded comments for any web page. Ids are decimal strings."),
    paths(
        api::list_comments, api::post_comment, api::edit_comment, api::delete_comment, api::list_replies,
        api::preview, api::vote, api::flag, api::my_votes, api::counts, api::signup, api::login, api::logout, api::me,
        api::my_forums, api::create_forum, api::forum_settings, api::update_forum, api::mod_list,
        api::moderate, api::bans, api::ban, api::unban, api::mod_log, api::stats, api::update_thread,
        crate::http::live::live_sse, crate::http::live::live_ws,
        mail::confirm_page, mail::confirm, mail::unsubscribe_page, mail::unsubscribe, mail::moderate_page, mail::moderate, mail::account_email_page, mail::account_email,
    ),
    components(schemas(
        PageView, ThreadView, CommentView, AuthorView, RepliesView, NewCommentBody, PostedView, EditBody,
        PreviewBody, PreviewView, VoteBody, VoteView, FlagBody, FlagView, MyVotesView, CountsView, SignupBody, LoginBody, AccountView, SessionView,
        ForumView, NewForumBody, ForumPatch, ModCommentView, ModListView, ModerateBody, ModerateView, BanBody,
        BansView, LogView, DayCount, StatsView, ThreadPatchBody, ErrorBody, ErrorDetail, NotifyStatus,
        confab_core::model::Webhook, confab_core::model::WebhookEvent, confab_core::model::ModeratorMail,
    )),
    tags((name = "widget", description = "What the embed calls"), (name = "accounts"), (name = "moderation"),
        (name = "mail", description = "Pages behind the signed links in Confab's mail (HTML; GET shows, POST acts)"))
)]
pub struct ApiDoc;

/// The document as pretty JSON (stable order, so it can be snapshot-tested).
pub fn json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".to_string())
}

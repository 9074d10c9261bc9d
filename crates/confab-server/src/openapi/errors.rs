//! The error responses, as components every operation refers to: `{"error": {"code",
//! "message"}}` with the status `http::error::status_of` gives the code.

use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::{Content, RefOr, Response, ResponseBuilder};

fn error_response(description: &str, retry_after: bool) -> RefOr<Response> {
    let mut r = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    if retry_after {
        let secs = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0));
        r = r.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(secs)
                .description(Some("Seconds to wait before trying again"))
                .build(),
        );
    }
    r.build().into()
}

macro_rules! error_responses {
    ($($name:ident $status:literal $retry:literal $desc:literal;)*) => {$(
        #[doc = $desc]
        pub struct $name;
        impl<'s> utoipa::ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<Response>) {
                (stringify!($name), error_response($desc, $retry))
            }
        }
        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([($status.to_string(), RefOr::Ref(Ref::from_response_name(stringify!($name))))])
            }
        }
    )*};
}

error_responses! {
    BadRequest "400" false "The request is malformed or a value is invalid (`invalid_input`, `bad_cursor`, `bad_request`; for SSO tokens `malformed_token`, `unsupported_algorithm`, `missing_claim`): a body that is not JSON or not of the operation's shape, a missing or unparseable parameter, a value outside its rules";
    Unauthorized "401" false "Not signed in, or the credentials do not hold (`unauthorized`; for SSO tokens `bad_signature`, `token_expired`, `token_from_future`)";
    Forbidden "403" false "Refused (`forbidden`, `origin_not_allowed`, `banned`, `thread_closed`, `guest_posting_disabled`, `challenge_required`, `challenge_failed`, `edit_window_closed`, `sso_not_configured`)";
    NotFound "404" false "No such resource (`not_found`): an unknown forum, or an id that names nothing (or is not an id)";
    Conflict "409" false "Conflicts with what exists (`conflict`)";
    Gone "410" false "It existed and was removed (`gone`): a picture whose comment was deleted or marked spam";
    PayloadTooLarge "413" false "The request body is over the server's `limits.max_json_bytes` (`payload_too_large`); checked on every request from its declared length";
    UnsupportedMediaType "415" false "The body is not sent as `application/json` (`unsupported_media_type`)";
    Unprocessable "422" false "Well-formed but cannot be applied (`idempotency_key_reused`: an `Idempotency-Key` reused for a different request; `blocked_word`: the text contains a word the forum does not allow)";
    RateLimited "429" true "Too many requests from this client or account (`rate_limited`)";
    Internal "500" false "An internal failure (`internal`); the cause is logged, never sent";
    Unavailable "503" true "Temporarily unavailable (`unavailable`): the database is busy or unreachable, or the node is at a connection limit";
    UpgradeRequired "426" false "The request is not a WebSocket upgrade (`bad_request`)";
    RequestTimeout "408" false "The request body did not arrive within the server's body timeout (`request_timeout`)";
}

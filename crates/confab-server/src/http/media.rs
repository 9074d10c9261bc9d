//! Pictures: a reader's upload, the content-addressed picture itself, a moderator's removal.

use super::caller::Who;
use super::error::ApiError;
use super::pin::wrote;
use super::AppState;
use crate::openapi::errors::*;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_core::id::parse_id;
use confab_core::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

type ApiResult<T> = Result<T, ApiError>;

/// An uploaded picture, ready to be attached: send its `id` in the comment's `images`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadedView {
    #[serde(flatten)]
    pub image: crate::views::ImageView,
    /// For clients without an identity yet: keep it and send it as `X-Confab-Anon` (the comment
    /// that attaches the picture must come from the same reader).
    pub anon_token: Option<String>,
}

/// The content types an upload may be declared as: the picture types, or plain bytes (the
/// content decides what it is; none of these is a type a cross-site form can send).
fn upload_type_ok(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            matches!(
                v.as_str(),
                "image/jpeg"
                    | "image/png"
                    | "image/webp"
                    | "image/gif"
                    | "application/octet-stream"
            )
        })
}

/// Upload a picture (JPEG, PNG, WebP or GIF, as the body) for a comment about to be posted,
/// on a forum whose `images` setting is on. It is decoded and re-encoded (metadata such as
/// EXIF and GPS dropped; an animated picture keeps its first frame). Refused: over `[images]
/// max_bytes` (413), not a picture of those formats whatever its declared type (415), more
/// pixels than `[images] max_pixels` by its header (400), a forum without pictures (403).
/// Uploads not attached to a comment within `[images] unattached_hours` are deleted.
#[utoipa::path(post, path = "/api/v1/forums/{forum}/images", params(("forum" = String, Path)), tag = "comments",
    request_body(content = String, description = "The picture's bytes (JPEG, PNG, WebP or GIF; declared as `image/jpeg`, `image/png`, `image/webp`, `image/gif` or `application/octet-stream`)", content_type = "application/octet-stream"),
    responses((status = 201, body = UploadedView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType, RateLimited,
        RequestTimeout, Internal, Unavailable))]
pub async fn upload_image(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path(forum): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    use http_body_util::BodyExt;
    let config = app.svc.config();
    let max = config.images.max_bytes;
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the picture is over {max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    if !upload_type_ok(&headers) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the picture as the body, with Content-Type image/jpeg, image/png, image/webp, \
             image/gif or application/octet-stream",
        ));
    }
    app.limits.check_write(&caller)?;
    app.limits.check_image(&caller)?;
    let timeout = std::time::Duration::from_secs(config.connections.body_timeout_secs.max(1));
    let limited = http_body_util::Limited::new(body, max);
    let data = match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Ok(Err(_)) => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "the request body could not be read",
            ))
        }
        Err(_) => {
            return Err(ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} s",
                    timeout.as_secs()
                ),
            ))
        }
    };
    if data.is_empty() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "the body is empty: send the picture",
        ));
    }
    let up = app.svc.upload_image(&caller, &forum, data).await?;
    let view = UploadedView {
        image: crate::views::ImageView::of(&up.image),
        anon_token: up.anon_token.clone(),
    };
    Ok(super::api::with_anon_cookie(
        (StatusCode::CREATED, axum::Json(view)).into_response(),
        up.anon_token.as_deref(),
        caller.https,
    ))
}

/// A picture attached to a comment, at its content-addressed address (as a comment's `images`
/// give it): cached for a year (`immutable`). A picture whose comment was deleted or marked
/// spam, or that a moderator removed, is not served (410, or 404).
#[utoipa::path(get, path = "/api/v1/images/{id}/{file}", params(("id" = String, Path), ("file" = String, Path, description = "`{hash}.{ext}`")), tag = "comments",
    responses((status = 200, description = "The picture", content_type = "image/jpeg", body = String), NotFound, Gone, PayloadTooLarge, Internal, Unavailable))]
pub async fn get_image(
    State(app): State<AppState>,
    axum::extract::Path((id, file)): axum::extract::Path<(String, String)>,
) -> ApiResult<Response> {
    let missing = || ApiError::new(ErrorCode::NotFound, "picture not found");
    let id = parse_id(&id).ok_or_else(missing)?;
    let (hash, format) = confab_core::media::parse_file_name(&file).ok_or_else(missing)?;
    let img = app.svc.image(id, hash, format).await?;
    let mut resp = img.data.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(img.mime));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Opened on its own, the picture can run nothing and embed nothing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
        ),
    );
    // Pictures are shown on the forum's sites, another origin.
    h.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    Ok(resp)
}

/// Remove one picture from a comment (the comment stays): the picture is deleted, the thread's
/// cached pages go stale, and the log gets `remove-image`.
#[utoipa::path(delete, path = "/api/v1/forums/{forum}/comments/{id}/images/{image}",
    params(("forum" = String, Path), ("id" = String, Path), ("image" = String, Path)), tag = "moderation",
    responses((status = 204, description = "Removed"), Unauthorized, Forbidden, NotFound, PayloadTooLarge, RateLimited, Internal, Unavailable))]
pub async fn remove_image(
    State(app): State<AppState>,
    Who(caller): Who,
    axum::extract::Path((forum, id, image)): axum::extract::Path<(String, String, String)>,
) -> ApiResult<Response> {
    let missing = || ApiError::new(ErrorCode::NotFound, "picture not found");
    let id = parse_id(&id).ok_or_else(missing)?;
    let image = parse_id(&image).ok_or_else(missing)?;
    let m = app.svc.moderate(&caller, &forum).await?;
    let at = app
        .svc
        .remove_image(&m, confab_core::id::CommentId(id), image)
        .await?;
    Ok(wrote(StatusCode::NO_CONTENT, at))
}

#[cfg(test)]
mod tests {
    use super::upload_type_ok;
    use axum::http::{header, HeaderMap, HeaderValue};

    #[test]
    fn only_picture_types_or_bytes_may_be_declared() {
        let with = |t: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
            upload_type_ok(&h)
        };
        assert!(with("image/png"));
        assert!(with("IMAGE/JPEG; x=y"));
        assert!(with("application/octet-stream"));
        assert!(!with("text/plain"));
        assert!(!with("multipart/form-data; boundary=x"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("image/svg+xml"));
        assert!(!upload_type_ok(&HeaderMap::new()));
    }
}

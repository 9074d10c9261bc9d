//! Pictures readers attach to comments: the re-encoded bytes and what they belong to.
//!
//! An upload is stored unattached (`comment_id` NULL); posting a comment attaches it (in the
//! comment's transaction, only if still unattached) and copies its [`ImageRef`] into the
//! comment row, so pages bring their pictures with their comments. Unattached pictures older
//! than the upload window are pruned. Both backends keep the bytes in the database: the
//! embedded file (one file to back up, written by the group-committing writer with
//! `synchronous=FULL`, so an acknowledged upload survives a crash) and the forum's shard
//! database (`bytea`), so every node of a fleet serves every picture.

use crate::pin::Written;
use crate::StoreResult;
use async_trait::async_trait;
use confab_core::id::{AccountId, CommentId, ForumId};
use confab_core::media::{ImageRef, StoredFormat};
use confab_core::model::{CommentStatus, Forum, Thread};

/// A re-encoded upload to keep.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub hash: String,
    pub format: StoredFormat,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    /// Who uploaded it: the account, or a guest's anonymous id (for their own data).
    pub account: Option<AccountId>,
    pub anon_id: Option<String>,
    pub ip_hash: String,
    pub created_at: i64,
}

/// A stored picture, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMeta {
    pub image: ImageRef,
    pub forum: ForumId,
    pub comment: Option<CommentId>,
    pub account: Option<AccountId>,
    pub anon_id: Option<String>,
    pub created_at: i64,
}

/// A picture to serve: its bytes and the status of the comment it is attached to.
#[derive(Debug, Clone)]
pub struct ImageData {
    pub meta: ImageMeta,
    /// The comment's status (`None`: not attached to any comment).
    pub comment_status: Option<CommentStatus>,
    pub data: Vec<u8>,
}

#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Keeps an upload for `forum` (unattached); its reference, with its new id.
    async fn put_image(&self, forum: &Forum, img: NewImage) -> StoreResult<ImageRef>;

    /// Pictures of `forum` by id (unknown ids are left out), without their bytes.
    async fn images(&self, forum: &Forum, ids: &[i64]) -> StoreResult<Vec<ImageMeta>>;

    /// A picture with its bytes and its comment's status, from the primary (a picture is
    /// read right after its comment is posted).
    async fn image_data(&self, id: i64) -> StoreResult<Option<ImageData>>;

    /// A moderator removes one picture from a comment: the picture's row goes, the comment's
    /// list is rewritten without it and its thread's sequence moves (cached pages go stale),
    /// logged as `remove-image`. `None`: no such picture on that comment of that forum.
    async fn remove_image(
        &self,
        forum: &Forum,
        comment: CommentId,
        image: i64,
        actor: AccountId,
    ) -> StoreResult<Written<Option<Thread>>>;

    /// Forgets pictures never attached to a comment and uploaded before `before`; how many.
    async fn prune_images(&self, before: i64) -> StoreResult<u64>;
}

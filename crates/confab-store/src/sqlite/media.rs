//! Pictures (`crate::media`), the twin of `pg/media.rs`. The bytes are a BLOB in the one file:
//! written by the group-committing writer (`synchronous=FULL`), so an acknowledged upload
//! survives a crash, and `confab backup` copies pictures with everything else.

use super::*;
use crate::media::{ImageData, ImageMeta, MediaStore, NewImage};
use confab_core::media::{ImageRef, StoredFormat};

const META_COLS: &str = "i.id, i.hash, i.format, i.width, i.height, i.forum_id, i.comment_id, \
    i.account_id, i.anon_id, i.created_at";

fn meta_row(r: &Row<'_>) -> rusqlite::Result<ImageMeta> {
    let format: String = r.get(2)?;
    Ok(ImageMeta {
        image: ImageRef {
            id: r.get(0)?,
            hash: r.get(1)?,
            format: StoredFormat::parse(&format).unwrap_or(StoredFormat::Png),
            width: r.get(3)?,
            height: r.get(4)?,
        },
        forum: ForumId(r.get(5)?),
        comment: r.get::<_, Option<i64>>(6)?.map(CommentId),
        account: r.get::<_, Option<i64>>(7)?.map(AccountId),
        anon_id: r.get(8)?,
        created_at: r.get(9)?,
    })
}

/// Attaches uploaded pictures to a new comment, inside its transaction: each must be this
/// forum's and still unattached (two posts naming one picture: the second fails whole).
pub(super) fn attach(
    c: &Connection,
    n: &Counter,
    forum: ForumId,
    comment: CommentId,
    refs: &[ImageRef],
) -> StoreResult<()> {
    for r in refs {
        let done = exec(
            c,
            n,
            "UPDATE images SET comment_id = ? WHERE id = ? AND forum_id = ? AND comment_id IS NULL",
            &[int(comment.0), int(r.id), int(forum.0)],
        )?;
        if done != 1 {
            return Err(crate::rules::image_taken(r.id));
        }
    }
    Ok(())
}

#[async_trait]
impl MediaStore for SqliteStore {
    async fn put_image(&self, forum: &Forum, img: NewImage) -> StoreResult<ImageRef> {
        let (forum_id, shard) = (forum.id, forum.shard);
        let id = self.ids.next(shard);
        self.pool
            .write(move |c, n| {
                exec(
                    c,
                    n,
                    "INSERT INTO images (id, shard, forum_id, hash, format, width, height, data, \
                     account_id, anon_id, ip_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &[
                        int(id),
                        int(i64::from(shard.get())),
                        int(forum_id.0),
                        text(&img.hash),
                        text(img.format.as_str()),
                        int(i64::from(img.width)),
                        int(i64::from(img.height)),
                        Value::Blob(img.data),
                        img.account.map_or(Value::Null, |a| int(a.0)),
                        opt_text(img.anon_id.as_deref()),
                        text(&img.ip_hash),
                        int(img.created_at),
                    ],
                )?;
                Ok(ImageRef {
                    id,
                    hash: img.hash,
                    width: img.width,
                    height: img.height,
                    format: img.format,
                })
            })
            .await
    }

    async fn images(&self, forum: &Forum, ids: &[i64]) -> StoreResult<Vec<ImageMeta>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let forum_id = forum.id;
        let mut args = vec![int(forum_id.0)];
        args.extend(ids.iter().map(|i| int(*i)));
        let sql = format!(
            "SELECT {META_COLS} FROM images i WHERE i.forum_id = ? AND i.id IN ({})",
            placeholders(ids.len())
        );
        self.pool
            .read(move |c, n| rows(c, n, &sql, &args, meta_row))
            .await
    }

    async fn image_data(&self, id: i64) -> StoreResult<Option<ImageData>> {
        self.pool
            .read(move |c, n| {
                row(
                    c,
                    n,
                    &format!(
                        "SELECT {META_COLS}, c.status, i.data FROM images i \
                         LEFT JOIN comments c ON c.id = i.comment_id WHERE i.id = ?"
                    ),
                    &[int(id)],
                    |r| {
                        let status: Option<String> = r.get(10)?;
                        Ok(ImageData {
                            meta: meta_row(r)?,
                            comment_status: status.as_deref().and_then(CommentStatus::parse),
                            data: r.get(11)?,
                        })
                    },
                )
            })
            .await
    }

    async fn remove_image(
        &self,
        forum: &Forum,
        comment: CommentId,
        image: i64,
        actor: AccountId,
    ) -> StoreResult<Written<Option<Thread>>> {
        let forum_id = forum.id;
        self.pool
            .write(move |c, n| {
                let Some(cm) = load_comment(c, n, comment)?.filter(|cm| cm.forum_id == forum_id)
                else {
                    return Ok(None);
                };
                let Some(rest) = crate::rules::without_image(&cm.images, image) else {
                    return Ok(None);
                };
                exec(
                    c,
                    n,
                    "DELETE FROM images WHERE id = ? AND comment_id = ?",
                    &[int(image), int(comment.0)],
                )?;
                exec(
                    c,
                    n,
                    "UPDATE comments SET images = ? WHERE id = ?",
                    &[
                        opt_text(confab_core::media::encode_refs(&rest).as_deref()),
                        int(comment.0),
                    ],
                )?;
                bump_seq(c, n, cm.thread_id)?;
                log_action(
                    c,
                    n,
                    forum_id,
                    Some(actor),
                    "remove-image",
                    Some(comment),
                    &format!("picture {image}"),
                )?;
                load_thread(c, n, cm.thread_id)
            })
            .await
            .map(Written::here)
    }

    async fn prune_images(&self, before: i64) -> StoreResult<u64> {
        self.pool
            .write(move |c, n| {
                Ok(exec(
                    c,
                    n,
                    "DELETE FROM images WHERE comment_id IS NULL AND created_at < ?",
                    &[int(before)],
                )? as u64)
            })
            .await
    }
}

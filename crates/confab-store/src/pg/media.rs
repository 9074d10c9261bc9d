//! Pictures (`crate::media`), the twin of `sqlite/media.rs`: the bytes are `bytea` in the
//! forum's shard database, so every node of a fleet serves every picture, and a shard move
//! carries them with the forum's comments (`images` is in `SHARD_TABLES`).

use super::*;
use crate::media::{ImageData, ImageMeta, MediaStore, NewImage};
use confab_core::media::{ImageRef, StoredFormat};

const META_COLS: &str = "i.id, i.hash, i.format, i.width, i.height, i.forum_id, i.comment_id, \
    i.account_id, i.anon_id, i.created_at";

fn meta_row(r: &Row) -> ImageMeta {
    let format: &str = r.get(2);
    ImageMeta {
        image: ImageRef {
            id: r.get(0),
            hash: r.get(1),
            format: StoredFormat::parse(format).unwrap_or(StoredFormat::Png),
            width: u32::try_from(r.get::<_, i32>(3)).unwrap_or(0),
            height: u32::try_from(r.get::<_, i32>(4)).unwrap_or(0),
        },
        forum: ForumId(r.get(5)),
        comment: r.get::<_, Option<i64>>(6).map(CommentId),
        account: r.get::<_, Option<i64>>(7).map(AccountId),
        anon_id: r.get(8),
        created_at: r.get(9),
    }
}

#[async_trait]
impl MediaStore for PgStore {
    async fn put_image(&self, forum: &Forum, img: NewImage) -> StoreResult<ImageRef> {
        let (forum_id, shard) = (forum.id, forum.shard);
        let (w, h) = (
            i32::try_from(img.width).map_err(|_| DomainError::internal())?,
            i32::try_from(img.height).map_err(|_| DomainError::internal())?,
        );
        write_value!(self, shard, |tx, n| {
            let id: i64 = row(
                tx,
                &n,
                "INSERT INTO images (id, shard, forum_id, hash, format, width, height, data, \
                 account_id, anon_id, ip_hash, created_at) \
                 VALUES (confab_next_id($1), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                &[
                    &sh(shard),
                    &forum_id.0,
                    &img.hash,
                    &img.format.as_str(),
                    &w,
                    &h,
                    &img.data,
                    &img.account.map(|a| a.0),
                    &img.anon_id,
                    &img.ip_hash,
                    &img.created_at,
                ],
            )
            .await?
            .ok_or_else(DomainError::internal)?
            .get(0);
            Ok(ImageRef {
                id,
                hash: img.hash.clone(),
                width: img.width,
                height: img.height,
                format: img.format,
            })
        })
    }

    async fn images(&self, forum: &Forum, ids: &[i64]) -> StoreResult<Vec<ImageMeta>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (forum_id, ids) = (forum.id, ids.to_vec());
        read_on!(self, forum.shard, ReadFrom::Primary, |c, n| {
            Ok(rows(
                &c,
                &n,
                &format!(
                    "SELECT {META_COLS} FROM images i WHERE i.forum_id = $1 AND i.id = ANY($2)"
                ),
                &[&forum_id.0, &ids],
            )
            .await?
            .iter()
            .map(meta_row)
            .collect())
        })
    }

    async fn image_data(&self, id: i64) -> StoreResult<Option<ImageData>> {
        read_on!(self, shard_of(id), ReadFrom::Primary, |c, n| {
            Ok(row(
                &c,
                &n,
                &format!(
                    "SELECT {META_COLS}, c.status, i.data FROM images i \
                     LEFT JOIN comments c ON c.id = i.comment_id WHERE i.id = $1"
                ),
                &[&id],
            )
            .await?
            .map(|r| ImageData {
                meta: meta_row(&r),
                comment_status: r.get::<_, Option<&str>>(10).and_then(CommentStatus::parse),
                data: r.get(11),
            }))
        })
    }

    async fn remove_image(
        &self,
        forum: &Forum,
        comment: CommentId,
        image: i64,
        actor: AccountId,
    ) -> StoreResult<Written<Option<Thread>>> {
        let (forum_id, shard) = (forum.id, forum.shard);
        if shard_of(comment.0) != shard {
            return Ok(Written {
                value: None,
                at: None,
            });
        }
        write_tx!(self, shard, |tx, n| {
            let Some(cm) = load_comment(tx, &n, comment)
                .await?
                .filter(|cm| cm.forum_id == forum_id)
            else {
                return Ok(None);
            };
            let Some(rest) = crate::rules::without_image(&cm.images, image) else {
                return Ok(None);
            };
            exec(
                tx,
                &n,
                "DELETE FROM images WHERE id = $1 AND comment_id = $2",
                &[&image, &comment.0],
            )
            .await?;
            exec(
                tx,
                &n,
                "UPDATE comments SET images = $1 WHERE id = $2",
                &[&confab_core::media::encode_refs(&rest), &comment.0],
            )
            .await?;
            bump_seq(tx, &n, cm.thread_id).await?;
            log_action(
                tx,
                &n,
                shard,
                forum_id,
                Some(actor),
                "remove-image",
                Some(comment),
                &format!("picture {image}"),
            )
            .await?;
            load_thread(tx, &n, cm.thread_id).await
        })
    }

    async fn prune_images(&self, before: i64) -> StoreResult<u64> {
        let mut total = 0;
        for s in self.r.servers() {
            let c = s.primary().await?;
            let n = s.counter(crate::Target::Primary);
            total += exec(
                &c,
                &n,
                "DELETE FROM images WHERE comment_id IS NULL AND created_at < $1",
                &[&before],
            )
            .await?;
        }
        Ok(total)
    }
}

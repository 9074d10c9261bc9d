//! Pictures readers attach to comments: upload (decode, check, re-encode), serve, attach,
//! remove, prune.
//!
//! Every upload is decoded and encoded again, so what is stored and served is pixels Confab
//! wrote itself: no metadata survives (EXIF, GPS, comments, colour profiles), and a file that
//! is not a picture of an accepted format is refused whatever it was called or labelled (the
//! content is sniffed; the declared type is not believed). Before anything is decoded the
//! header's dimensions are checked against `[images] max_pixels` (a tiny file declaring
//! 50000x50000 is refused at once), and the decoder runs under `image::Limits` (its allocations
//! bounded by the same pixel budget). Decodes run on blocking threads, at most
//! `max_concurrent_decodes` per node (a semaphore; an upload waits `queue_wait_ms` for a slot,
//! then gets 503).
//!
//! Output: a JPEG stays JPEG (quality 85); PNG, GIF and WebP become PNG (lossless, alpha
//! kept); an animated GIF or WebP keeps its first frame. EXIF orientation is applied to the
//! pixels before the metadata is dropped, so photos stay upright.

use super::{Caller, Service};
use crate::config::ImagesConfig;
use confab_core::id::CommentId;
use confab_core::media::{ImageRef, StoredFormat};
use confab_core::model::{CommentStatus, Forum};
use confab_core::{DomainError, ErrorCode};
use confab_store::{NewImage, Written};
use image::{DynamicImage, ImageDecoder, ImageFormat};
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

/// The node's decode slots.
pub(crate) struct Decodes {
    slots: Arc<tokio::sync::Semaphore>,
    wait: Duration,
}

impl Decodes {
    pub(crate) fn new(config: &ImagesConfig) -> Decodes {
        Decodes {
            slots: Arc::new(tokio::sync::Semaphore::new(
                config.max_concurrent_decodes.max(1),
            )),
            wait: Duration::from_millis(config.queue_wait_ms),
        }
    }
}

/// An upload, re-encoded.
#[derive(Debug, Clone)]
pub struct Processed {
    pub format: StoredFormat,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    /// SHA-256 (hex, first 32 characters) of `data`.
    pub hash: String,
}

/// What an upload may be.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_bytes: usize,
    pub max_pixels: u64,
}

/// Why an upload was refused.
fn refused(code: ErrorCode, msg: impl Into<String>) -> DomainError {
    DomainError::new(code, msg)
}

/// Sniffs, checks, decodes and re-encodes one upload (blocking: run it on a blocking thread).
pub fn process(data: &[u8], limits: DecodeLimits) -> Result<Processed, DomainError> {
    if data.len() > limits.max_bytes {
        return Err(refused(
            ErrorCode::PayloadTooLarge,
            format!("the picture is over {} bytes", limits.max_bytes),
        ));
    }
    // The content decides what it is; a name or a declared type does not.
    let format = image::guess_format(data).ok();
    let format = match format {
        Some(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)) => {
            f
        }
        _ => {
            return Err(refused(
                ErrorCode::UnsupportedMediaType,
                "this file is not a JPEG, PNG, WebP or GIF picture",
            ))
        }
    };
    let bad = |_| refused(ErrorCode::InvalidInput, "the picture could not be read");
    // The header first: a picture declaring too many pixels is refused before any decoding.
    let (w, h) = image::ImageReader::with_format(Cursor::new(data), format)
        .into_dimensions()
        .map_err(bad)?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels || w == 0 || h == 0 {
        return Err(refused(
            ErrorCode::InvalidInput,
            format!(
                "the picture is {w}x{h} pixels; at most {} pixels are accepted",
                limits.max_pixels
            ),
        ));
    }
    // Decoding under limits: its allocations within the pixel budget (16-bit RGBA at most),
    // whatever the header said.
    let mut reader = image::ImageReader::with_format(Cursor::new(data), format);
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(w);
    decode_limits.max_image_height = Some(h);
    decode_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8) + (1 << 20));
    reader.limits(decode_limits);
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let orientation = decoder.orientation().map_err(bad)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(bad)?;
    img.apply_orientation(orientation);
    let (width, height) = (img.width(), img.height());
    let mut out = Vec::new();
    let stored = if format == ImageFormat::Jpeg {
        let rgb = img.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&rgb)
            .map_err(|_| DomainError::internal())?;
        StoredFormat::Jpeg
    } else {
        let img = if img.color().has_alpha() {
            DynamicImage::ImageRgba8(img.to_rgba8())
        } else {
            DynamicImage::ImageRgb8(img.to_rgb8())
        };
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .map_err(|_| DomainError::internal())?;
        StoredFormat::Png
    };
    let hash = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(&out);
        d.iter().take(16).map(|b| format!("{b:02x}")).collect()
    };
    Ok(Processed {
        format: stored,
        width,
        height,
        data: out,
        hash,
    })
}

/// A picture to send.
#[derive(Debug, Clone)]
pub struct ServedImage {
    pub mime: &'static str,
    pub data: Vec<u8>,
}

/// An upload's answer.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub image: ImageRef,
    /// For a guest without an identity yet: keep it (as for a post), so the comment that
    /// attaches the picture is theirs.
    pub anon_token: Option<String>,
}

impl Service {
    fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_bytes: self.config.images.max_bytes,
            max_pixels: self.config.images.max_pixels,
        }
    }

    /// The forum allows pictures (its `images` setting).
    fn check_images_on(forum: &Forum) -> Result<(), DomainError> {
        if forum.settings.images {
            Ok(())
        } else {
            Err(refused(
                ErrorCode::Forbidden,
                "this forum does not take pictures",
            ))
        }
    }

    /// A reader uploads a picture for a comment they are about to post.
    pub async fn upload_image(
        &self,
        caller: &Caller,
        forum: &str,
        data: bytes::Bytes,
    ) -> Result<Uploaded, DomainError> {
        let forum = self.forum_for_write(caller, forum)?;
        Self::check_images_on(&forum)?;
        self.check_posting(caller, Some(forum.id)).await?;
        let account = match caller.account {
            Some(_) => self.caller_account(caller).await?,
            None => {
                super::comments::check_guest_posting(&forum)?;
                None
            }
        };
        // A banned reader is refused here already (the post would be refused anyway).
        self.check_not_banned(&forum, caller, account.as_deref(), None)
            .await?;
        let limits = self.decode_limits();
        let processed = {
            let permit = tokio::time::timeout(
                self.decodes.wait,
                self.decodes.slots.clone().acquire_owned(),
            )
            .await
            .map_err(|_| {
                refused(
                    ErrorCode::Unavailable,
                    "too many pictures are being processed; try again shortly",
                )
            })?
            .map_err(|_| DomainError::internal())?;
            tokio::task::spawn_blocking(move || {
                let _slot = permit;
                process(&data, limits)
            })
            .await
            .map_err(|_| DomainError::internal())??
        };
        let (anon_id, anon_token) = match (&account, &caller.anon) {
            (Some(_), _) => (None, None),
            (None, Some(a)) => (Some(a.clone()), None),
            (None, None) => {
                let (id, tok) = self.new_anon_token();
                (Some(id), Some(tok))
            }
        };
        let image = self
            .store
            .put_image(
                &forum,
                NewImage {
                    hash: processed.hash,
                    format: processed.format,
                    width: processed.width,
                    height: processed.height,
                    data: processed.data,
                    account: account.as_ref().map(|a| a.id),
                    anon_id,
                    ip_hash: self.ip_hash(caller),
                    created_at: confab_core::now_ms(),
                },
            )
            .await?;
        Ok(Uploaded { image, anon_token })
    }

    /// The pictures a new comment names, checked: the forum takes pictures, no more than the
    /// limit, each uploaded to this forum by this caller. In the order given. That each is
    /// still unattached is checked by the store in the comment's transaction (after a retry's
    /// idempotency key replays the first comment, which already took them).
    pub(crate) async fn attachable_images(
        &self,
        forum: &Forum,
        caller: &Caller,
        account: Option<confab_core::id::AccountId>,
        ids: &[i64],
    ) -> Result<Vec<ImageRef>, DomainError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Self::check_images_on(forum)?;
        let max = self.config.images.max_per_comment;
        if ids.len() > max {
            return Err(DomainError::invalid(format!(
                "a comment may carry at most {max} pictures"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if !ids.iter().all(|i| seen.insert(*i)) {
            return Err(DomainError::invalid("a picture is named twice"));
        }
        let metas = self.store.images(forum, ids).await?;
        ids.iter()
            .map(|id| {
                let m = metas
                    .iter()
                    .find(|m| m.image.id == *id)
                    .filter(|m| match account {
                        Some(a) => m.account == Some(a),
                        None => {
                            m.account.is_none() && m.anon_id.is_some() && m.anon_id == caller.anon
                        }
                    })
                    .ok_or_else(|| confab_store::rules::image_taken(*id))?;
                Ok(m.image.clone())
            })
            .collect()
    }

    /// A picture's bytes, if its address is right and its comment is shown (published, or
    /// waiting for a moderator); a removed one (its comment deleted or spam) is gone (410).
    pub async fn image(
        &self,
        id: i64,
        hash: &str,
        format: StoredFormat,
    ) -> Result<ServedImage, DomainError> {
        let missing = || DomainError::not_found("picture");
        let img = self.store.image_data(id).await?.ok_or_else(missing)?;
        if img.meta.image.hash != hash || img.meta.image.format != format {
            return Err(missing());
        }
        match img.comment_status {
            None => Err(missing()),
            Some(CommentStatus::Approved | CommentStatus::Pending) => Ok(ServedImage {
                mime: format.mime(),
                data: img.data,
            }),
            Some(CommentStatus::Deleted | CommentStatus::Spam) => {
                Err(refused(ErrorCode::Gone, "this picture was removed"))
            }
        }
    }

    /// A moderator removes one picture from a comment (the comment stays).
    pub async fn remove_image(
        self: &Arc<Self>,
        m: &super::moderation::Moderating,
        comment: CommentId,
        image: i64,
    ) -> Result<Option<confab_store::WritePos>, DomainError> {
        let forum = m.forum().clone();
        let Written { value, at } = self
            .store
            .remove_image(&forum, comment, image, m.account().id)
            .await?;
        let thread = value.ok_or_else(|| DomainError::not_found("picture"))?;
        self.after_thread_write(&forum, &thread, at);
        // Live readers: the comment as it is now (its other pictures), if it is public.
        if let Some(c) = self
            .store
            .comment(comment, confab_store::ReadFrom::Primary)
            .await?
        {
            let ev = if c.status == CommentStatus::Approved {
                super::realtime::LiveEvent::Updated {
                    thread_seq: thread.seq,
                    comment: self.comment_view(&forum, c).await?,
                }
            } else {
                super::realtime::LiveEvent::Changed {
                    thread_seq: thread.seq,
                }
            };
            self.publish(forum.id, &thread.ident, ev);
        }
        Ok(at)
    }

    /// Forgets uploads never attached within `[images] unattached_hours`.
    pub(crate) async fn prune_images(&self) -> Result<u64, DomainError> {
        let hours = i64::try_from(self.config.images.unattached_hours).unwrap_or(i64::MAX / 4);
        let before = confab_core::now_ms() - hours.saturating_mul(3_600_000);
        self.store.prune_images(before).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const LIMITS: DecodeLimits = DecodeLimits {
        max_bytes: 1 << 20,
        max_pixels: 4_000_000,
    };

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    /// A PNG whose header declares `w`x`h` but carries (almost) no pixel data: a bomb.
    pub(crate) fn bomb_png(w: u32, h: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        // A few bytes of compressed zeros: the pixels would need 7.5 GB.
        chunk(
            &mut out,
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        );
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut h = flate2::Crc::new();
        h.update(kind);
        h.update(data);
        out.extend_from_slice(&h.sum().to_be_bytes());
    }

    #[test]
    fn a_png_is_re_encoded_as_png_with_its_size() {
        let p = process(&png(40, 30), LIMITS).unwrap();
        assert_eq!((p.format, p.width, p.height), (StoredFormat::Png, 40, 30));
        assert_eq!(p.hash.len(), 32);
        assert_eq!(image::guess_format(&p.data).unwrap(), ImageFormat::Png);
    }

    #[test]
    fn a_jpeg_stays_jpeg_and_loses_its_exif() {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(16, 8, image::Rgb([9, 9, 9])));
        let mut jpg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpg), ImageFormat::Jpeg)
            .unwrap();
        // An APP1 Exif segment right after SOI.
        let exif = b"Exif\0\0MM\0*\0\0\0\x08GPSsecret";
        let mut with = jpg[..2].to_vec();
        with.extend_from_slice(&[0xFF, 0xE1]);
        with.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        with.extend_from_slice(exif);
        with.extend_from_slice(&jpg[2..]);
        let p = process(&with, LIMITS).unwrap();
        assert_eq!((p.format, p.width, p.height), (StoredFormat::Jpeg, 16, 8));
        let found = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(found(&with, b"Exif"));
        assert!(!found(&p.data, b"Exif"));
        assert!(!found(&p.data, b"GPSsecret"));
    }

    #[test]
    fn a_bomb_is_refused_from_its_header() {
        let e = process(&bomb_png(50_000, 50_000), LIMITS).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("50000x50000"), "{}", e.message);
    }

    #[test]
    fn text_and_unknown_formats_are_refused_whatever_their_name() {
        let e = process(b"hello, I am not a picture", LIMITS).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedMediaType);
        // A format the image crate knows but Confab does not take (BMP).
        let e = process(b"BM\0\0\0\0\0\0\0\0", LIMITS).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedMediaType);
    }

    #[test]
    fn too_many_bytes_are_refused() {
        let e = process(
            &png(40, 30),
            DecodeLimits {
                max_bytes: 10,
                max_pixels: 1000,
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn a_truncated_picture_is_refused_not_a_panic() {
        let p = png(40, 30);
        let e = process(&p[..p.len() / 2], LIMITS).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn a_gif_becomes_a_png_of_its_first_frame() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            5,
            4,
            image::Rgba([1, 2, 3, 255]),
        ));
        let mut gif = Vec::new();
        img.write_to(&mut Cursor::new(&mut gif), ImageFormat::Gif)
            .unwrap();
        let p = process(&gif, LIMITS).unwrap();
        assert_eq!((p.format, p.width, p.height), (StoredFormat::Png, 5, 4));
    }
}

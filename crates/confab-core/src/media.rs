//! Pictures attached to comments: the reference a comment row keeps, and its public address.
//!
//! The bytes live behind `confab_store::MediaStore`; decoding and re-encoding is the server's
//! (`confab_server::service::media`). What is here is pure: the shape kept with a comment (a
//! small JSON array in the comment's own row, so a page brings its pictures with its comments)
//! and the content-addressed path a picture is served at.

use serde::{Deserialize, Serialize};

/// The formats Confab stores (every accepted upload is re-encoded into one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredFormat {
    Jpeg,
    Png,
}

impl StoredFormat {
    pub fn ext(self) -> &'static str {
        match self {
            StoredFormat::Jpeg => "jpg",
            StoredFormat::Png => "png",
        }
    }
    pub fn mime(self) -> &'static str {
        match self {
            StoredFormat::Jpeg => "image/jpeg",
            StoredFormat::Png => "image/png",
        }
    }
    pub fn parse(s: &str) -> Option<StoredFormat> {
        match s {
            "jpeg" => Some(StoredFormat::Jpeg),
            "png" => Some(StoredFormat::Png),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            StoredFormat::Jpeg => "jpeg",
            StoredFormat::Png => "png",
        }
    }
}

/// A picture as a comment keeps it: enough to draw it (size, to reserve its box) and to name
/// its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// The image's id (it carries its shard, as comment ids do).
    pub id: i64,
    /// SHA-256 (hex, first 32 characters) of the stored bytes: the address changes with them.
    pub hash: String,
    pub width: u32,
    pub height: u32,
    pub format: StoredFormat,
}

impl ImageRef {
    /// The path it is served at (content-addressed: cached for a year, never changes).
    pub fn path(&self) -> String {
        image_path(self.id, &self.hash, self.format)
    }
}

/// `/api/v1/images/{id}/{hash}.{ext}`.
pub fn image_path(id: i64, hash: &str, format: StoredFormat) -> String {
    format!("/api/v1/images/{id}/{hash}.{}", format.ext())
}

/// A comment's pictures as its row keeps them (`None`: no pictures, a NULL column).
pub fn encode_refs(refs: &[ImageRef]) -> Option<String> {
    if refs.is_empty() {
        None
    } else {
        serde_json::to_string(refs).ok()
    }
}

/// The pictures of a comment row (a column that does not parse is no pictures: the comment
/// still shows).
pub fn decode_refs(col: Option<&str>) -> Vec<ImageRef> {
    col.and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// The served file name `{hash}.{ext}` split into hash and format, if it is one.
pub fn parse_file_name(name: &str) -> Option<(&str, StoredFormat)> {
    let (hash, ext) = name.rsplit_once('.')?;
    let format = match ext {
        "jpg" => StoredFormat::Jpeg,
        "png" => StoredFormat::Png,
        _ => return None,
    };
    (hash.len() == 32
        && hash
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some((hash, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_round_trip_and_a_broken_column_is_no_pictures() {
        let r = ImageRef {
            id: 42,
            hash: "0123456789abcdef0123456789abcdef".into(),
            width: 640,
            height: 480,
            format: StoredFormat::Jpeg,
        };
        let col = encode_refs(std::slice::from_ref(&r));
        assert_eq!(decode_refs(col.as_deref()), vec![r.clone()]);
        assert_eq!(encode_refs(&[]), None);
        assert!(decode_refs(Some("{not json")).is_empty());
        assert!(decode_refs(None).is_empty());
        assert_eq!(
            r.path(),
            "/api/v1/images/42/0123456789abcdef0123456789abcdef.jpg"
        );
    }

    #[test]
    fn only_a_stored_name_parses() {
        let h = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_file_name(&format!("{h}.png")),
            Some((h, StoredFormat::Png))
        );
        assert_eq!(parse_file_name(&format!("{h}.gif")), None);
        assert_eq!(parse_file_name("abc.png"), None);
        assert_eq!(parse_file_name(&format!("{}.jpg", h.to_uppercase())), None);
        assert_eq!(parse_file_name(h), None);
    }
}

//! Content encodings: bodies are compressed once and kept (static assets at start, thread
//! pages the first time a client that accepts gzip asks for them), never per request.

use flate2::Compression;
use std::io::Write;

/// Bodies shorter than this are sent as they are: gzip's framing would eat the gain.
pub const MIN_GZIP_LEN: usize = 1024;

/// `body` gzipped at `level`, or `None` if it is too short to be worth it.
pub fn gzip(body: &[u8], level: Compression) -> Option<Vec<u8>> {
    if body.len() < MIN_GZIP_LEN {
        return None;
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), level);
    enc.write_all(body).ok()?;
    enc.finish().ok()
}

/// Whether an `Accept-Encoding` header value accepts gzip (`gzip;q=0` refuses it).
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .is_some_and(|q| q.parse::<f32>().map_or(true, |q| q <= 0.0))
        });
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("gzip, deflate, br, zstd"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("gzip; q=0.000"));
        assert!(!accepts_gzip("gzip;q=x"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip("xgzip"));
        assert!(!accepts_gzip(""));
    }

    #[test]
    fn short_bodies_are_left_alone_and_long_ones_round_trip() {
        assert_eq!(gzip(b"{}", Compression::fast()), None);
        let body =
            "{\"comments\":[".to_string() + &"{\"body\":\"hello there\"},".repeat(500) + "]}";
        let gz = gzip(body.as_bytes(), Compression::fast()).unwrap();
        assert!(gz.len() * 5 < body.len(), "{} -> {}", body.len(), gz.len());
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
            .unwrap();
        assert_eq!(out, body);
    }
}

//! Uploaded files: the rules both tiers (origin and edge worker) apply, so that a file accepted or
//! served by one is accepted or served the same way by the other.
//!
//! - [`sniff`] decides a file's type from its first bytes (magic numbers), never from its name
//!   or a declared header; [`check_claim`] refuses a file whose name or declared type says
//!   "image" when the bytes say otherwise (an HTML page named `cat.png`).
//! - Only [`INLINE_TYPES`] are shown inline; everything else is served as a download with
//!   [`SANDBOX_CSP`], so an uploaded HTML or SVG file never runs in our origin.
//! - [`UploadTicketClaims`] is what the origin signs (EdDSA, like access tokens) to let one user
//!   upload one file into one room; the edge verifies it with the public key only.

use crate::ids::{RoomId, UserId};
use serde::{Deserialize, Serialize};

/// The default largest upload, in bytes (25 MB).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;

/// The content types shown inline (as images); everything else is a download.
pub const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The `Content-Security-Policy` on every served file: nothing in it may run, load or submit.
pub const SANDBOX_CSP: &str =
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

/// `Cache-Control` for served files: keys are immutable (a new upload gets a new key).
pub const IMMUTABLE_CACHE: &str = "private, max-age=31536000, immutable";

/// The JWT audience of upload tickets, so a ticket is never taken for an access token (which has
/// no audience) nor the other way round.
pub const TICKET_AUDIENCE: &str = "confab-upload";

/// How long an upload ticket stays valid, in seconds.
pub const TICKET_TTL_SECS: i64 = 10 * 60;

/// Longest file name kept, in characters (longer names are cut).
pub const MAX_NAME_CHARS: usize = 200;

/// The claims of an upload ticket (an EdDSA-signed JWT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadTicketClaims {
    /// Issuer, always [`crate::claims::ISSUER`].
    pub iss: String,
    /// Audience, always [`TICKET_AUDIENCE`].
    pub aud: String,
    /// The uploader.
    pub sub: UserId,
    /// The room the file is for.
    pub room: RoomId,
    /// The storage key the file must be written to (unguessable; also the attachment id).
    pub key: String,
    /// The file name, already cleaned by [`clean_name`].
    pub name: String,
    /// The most bytes accepted.
    pub max: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

/// Whether a content type is shown inline.
pub fn is_inline(content_type: &str) -> bool {
    INLINE_TYPES.contains(&content_type)
}

/// A storage key is 32 lowercase hex digits (128 random bits): unguessable, and safe in paths.
pub fn is_valid_key(key: &str) -> bool {
    key.len() == 32
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Decides a file's content type from its first bytes. Images are recognised by their magic
/// numbers; markup (HTML, SVG, XML) is recognised so it is never mistaken for an image or text;
/// other valid UTF-8 is `text/plain`; the rest is `application/octet-stream`.
pub fn sniff(head: &[u8]) -> &'static str {
    const MAGIC: [(&[u8], &str); 8] = [
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"OggS", "audio/ogg"),
    ];
    for (magic, ty) in MAGIC {
        if head.starts_with(magic) {
            return ty;
        }
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return "image/webp";
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return "video/mp4";
    }
    if let Some(markup) = sniff_markup(head) {
        return markup;
    }
    // Cut a multi-byte character at the end of the sniffed window without calling it binary.
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if valid && !head.contains(&0) {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

/// HTML, SVG or XML, judged as browsers sniff them: the first tag after whitespace, a BOM or
/// comments, without regard to case.
fn sniff_markup(head: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if !text.starts_with('<') {
        return None;
    }
    if text.contains("<svg") {
        return Some("image/svg+xml");
    }
    const HTML: [&str; 12] = [
        "<!doctype html",
        "<html",
        "<head",
        "<body",
        "<script",
        "<iframe",
        "<title",
        "<style",
        "<div",
        "<a ",
        "<img",
        "<p",
    ];
    if HTML.iter().any(|t| text.contains(t)) {
        return Some("text/html");
    }
    if text.starts_with("<?xml") {
        return Some("application/xml");
    }
    Some("text/html")
}

/// The content type a file name's extension claims, for the types we police.
fn claimed_by_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" | "jfif" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The name or declared type says one thing, the bytes another.
    #[error("the file's content ({detected}) does not match its claimed type ({claimed})")]
    Mismatch {
        /// What the name or declared type claimed.
        claimed: String,
        /// What the bytes are.
        detected: String,
    },
    /// Empty file.
    #[error("the file is empty")]
    Empty,
}

/// Refuses a file whose name or declared content type claims an image it is not. Other claims
/// are not trusted but not refused either: the detected type decides how the file is served.
pub fn check_claim(name: &str, declared: Option<&str>, detected: &str) -> Result<(), FileError> {
    let declared = declared
        .map(|d| {
            d.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|d| d.starts_with("image/"));
    let by_name = claimed_by_name(name).map(str::to_owned);
    for claimed in [by_name, declared].into_iter().flatten() {
        let same = claimed == detected || (claimed == "image/jpg" && detected == "image/jpeg");
        if !same {
            return Err(FileError::Mismatch {
                claimed,
                detected: detected.to_owned(),
            });
        }
    }
    Ok(())
}

/// A display-safe file name: path parts, control characters and quotes removed, at most
/// [`MAX_NAME_CHARS`] characters; `file` when nothing is left.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\\'))
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned
    }
}

/// The `Content-Disposition` header for a served file: `inline` only for the inline image types,
/// `attachment` otherwise, with the name in both ASCII and RFC 5987 forms.
pub fn content_disposition(content_type: &str, name: &str) -> String {
    let kind = if is_inline(content_type) {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| !matches!(c, '"' | '\\' | '%' | ';'))
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// A parsed `Range: bytes=...` header against a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No (usable) range: send the whole file.
    Full,
    /// Send bytes `start..=end`.
    Part {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// The range lies outside the file: answer 416.
    Unsatisfiable,
}

/// Parses a single-range `Range` header (multiple ranges are answered with the whole file).
pub fn parse_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // The last `b` bytes.
        match b.parse::<u64>() {
            Ok(0) => return ByteRange::Unsatisfiable,
            Ok(n) => (len.saturating_sub(n), len.saturating_sub(1)),
            Err(_) => return ByteRange::Full,
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return ByteRange::Full;
        };
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            match b.parse::<u64>() {
                Ok(e) => e.min(len.saturating_sub(1)),
                Err(_) => return ByteRange::Full,
            }
        };
        (start, end)
    };
    if len == 0 || range.0 >= len || range.0 > range.1 {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part {
        start: range.0,
        end: range.1,
    }
}

/// Whether an `If-None-Match` header matches the entity tag `etag` (quoted form).
pub fn etag_matches(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(h) = if_none_match else {
        return false;
    };
    let bare = etag.trim_start_matches("W/");
    h.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.trim_start_matches("W/") == bare
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_images_and_markup() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), "image/jpeg");
        assert_eq!(sniff(b"GIF89a.."), "image/gif");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"  <!DOCTYPE html><p>x"), "text/html");
        assert_eq!(sniff(b"<?xml version='1.0'?><svg xmlns="), "image/svg+xml");
        assert_eq!(sniff(b"\xef\xbb\xbf<script>alert(1)</script>"), "text/html");
        assert_eq!(sniff(b"hello, world\n"), "text/plain");
        assert_eq!(sniff(b"\0\x01\x02binary"), "application/octet-stream");
        assert_eq!(
            sniff("é".as_bytes().get(..1).unwrap_or_default()),
            "text/plain"
        );
    }

    #[test]
    fn image_names_must_hold_images() {
        assert!(check_claim("cat.png", None, "image/png").is_ok());
        assert!(check_claim("cat.PNG", None, "text/html").is_err());
        assert!(check_claim("cat.jpg", Some("image/png"), "image/jpeg").is_err());
        assert!(check_claim("notes", Some("image/gif"), "text/plain").is_err());
        assert!(check_claim("page.html", Some("text/html"), "text/html").is_ok());
        assert!(check_claim("x.bin", Some("application/octet-stream"), "text/html").is_ok());
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("a\"b\r\n.txt"), "ab.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(&"x".repeat(500)).len(), MAX_NAME_CHARS);
    }

    #[test]
    fn dispositions() {
        assert!(content_disposition("image/png", "a.png").starts_with("inline;"));
        assert!(content_disposition("image/svg+xml", "a.svg").starts_with("attachment;"));
        assert!(content_disposition("text/html", "a.html").starts_with("attachment;"));
        assert_eq!(
            content_disposition("text/plain", "é \"x\".txt"),
            "attachment; filename=\"_ x.txt\"; filename*=UTF-8''%C3%A9%20%22x%22.txt"
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), ByteRange::Full);
        assert_eq!(
            parse_range(Some("bytes=0-3"), 10),
            ByteRange::Part { start: 0, end: 3 }
        );
        assert_eq!(
            parse_range(Some("bytes=5-"), 10),
            ByteRange::Part { start: 5, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-4"), 10),
            ByteRange::Part { start: 6, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=2-100"), 10),
            ByteRange::Part { start: 2, end: 9 }
        );
        assert_eq!(parse_range(Some("bytes=10-"), 10), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), ByteRange::Full);
    }

    #[test]
    fn etags() {
        assert!(etag_matches(Some("\"abc\""), "\"abc\""));
        assert!(etag_matches(Some("W/\"abc\", \"x\""), "\"abc\""));
        assert!(etag_matches(Some("*"), "\"abc\""));
        assert!(!etag_matches(Some("\"abd\""), "\"abc\""));
        assert!(!etag_matches(None, "\"abc\""));
    }

    #[test]
    fn keys() {
        assert!(is_valid_key("0123456789abcdef0123456789abcdef"));
        assert!(!is_valid_key("0123456789abcdef0123456789abcdeF"));
        assert!(!is_valid_key("../etc"));
    }
}

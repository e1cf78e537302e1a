//! Link previews: the address policy both tiers apply before fetching a page, and (with the
//! `preview` feature) the one function that turns a fetched page into a [`LinkPreview`].
//!
//! The policy is at least as strict as Synapse's suggested `url_preview_ip_range_blacklist`:
//! see [`is_forbidden_ip`]. Host names are checked after the URL parser has normalised odd IPv4
//! spellings (`2130706433`, `127.1`, `0x7f.1`) into addresses, and names that always mean this
//! machine (`localhost`, `*.localhost`) are refused before any lookup. The fetcher must still
//! check every address a name resolves to, and connect only to a checked one.

#[cfg(feature = "preview")]
use crate::api::LinkPreview;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Largest page body read, in bytes; the rest is not downloaded.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The whole fetch (all redirects included) must finish within this many seconds.
pub const FETCH_TIMEOUT_SECS: u64 = 5;
/// Redirects followed at most; each target is checked like the first URL.
pub const MAX_REDIRECTS: usize = 3;
/// Longest title kept, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Longest description kept, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Longest URL accepted for a preview, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Largest preview image fetched, in bytes; larger ones are not shown.
pub const MAX_IMAGE_BYTES: usize = 1024 * 1024;

/// The link under which a preview's image is served by the tier that made the preview
/// (`preview_base` is the origin's `{public URL}/api/preview` or the edge's `{origin}/preview`).
/// Viewers' browsers load the image from there, never from the page's site: the third party
/// sees one fetch by the server (then cached), not who read the message and when. The link
/// names the posted page, not the image, so only an image a previewed page declares can be
/// fetched through it.
pub fn image_link(preview_base: &str, posted_url: &str) -> String {
    let mut encoded = String::new();
    for b in posted_url.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{}/image?url={encoded}", preview_base.trim_end_matches('/'))
}

/// Why a URL may not be fetched for a preview. The message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not an absolute http(s) URL.
    #[error("only http and https URLs can be previewed")]
    Scheme,
    /// A URL that does not parse, is too long, or carries credentials.
    #[error("not a valid URL")]
    Invalid,
    /// The host is, or resolves to, an address we never fetch (private, loopback, ...).
    #[error("this address cannot be previewed")]
    Forbidden,
}

/// Whether an address is one we never fetch: loopback, private (RFC 1918, ULA), CGNAT
/// (100.64/10), link-local (including 169.254.169.254, the cloud metadata address), multicast,
/// broadcast, unspecified, reserved, benchmarking and documentation ranges, and every IPv6 form
/// that embeds an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo) when that address is
/// forbidden, or always where the embedding cannot be checked.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    const NETS: [([u8; 4], u32); 17] = [
        ([0, 0, 0, 0], 8),       // "this network"
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // CGNAT
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, cloud metadata
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // TEST-NET-1
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // TEST-NET-2
        ([203, 0, 113, 0], 24),  // TEST-NET-3
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, broadcast
        ([255, 255, 255, 255], 32),
        ([100, 100, 100, 200], 32), // Alibaba metadata (inside CGNAT already; named for clarity)
    ];
    NETS.iter().any(|(net, prefix)| in_v4(ip, *net, *prefix))
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    // IPv4-mapped ::ffff:a.b.c.d and the deprecated IPv4-compatible ::a.b.c.d (which also
    // covers :: and ::1): judge the embedded IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    if bits >> 32 == 0 {
        return bits <= 1 || is_forbidden_v4(Ipv4Addr::from(bits as u32));
    }
    // NAT64 (64:ff9b::/96): the embedded address is what is reached.
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return is_forbidden_v4(Ipv4Addr::from(bits as u32));
    }
    // 6to4 (2002::/16): the IPv4 address sits in bits 16..48.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return is_forbidden_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    const NETS: [([u16; 8], u32); 10] = [
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),  // local-use NAT64
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard-only
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),     // IETF assignments, incl. Teredo 2001::/32
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),     // documentation (2024)
        ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),     // segment routing
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),      // unique local
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),     // link-local
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),     // site-local (deprecated)
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),      // multicast
    ];
    NETS.iter().any(|(net, prefix)| in_v6(ip, *net, *prefix))
}

/// Whether a host name always means this machine or the local network, so it is refused
/// without a lookup.
pub fn is_forbidden_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.ends_with(".local")
        || h.ends_with(".internal")
        || h.ends_with(".home.arpa")
        || h == "metadata.google.internal"
        || !h.contains('.')
}

/// `host:port` pairs that lift the address policy for exactly those (tests only), parsed from
/// `CONFAB_PREVIEW_ALLOWLIST` (comma-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist(Vec<(String, u16)>);

impl Allowlist {
    /// Parses `host:port,host:port`; entries without a valid port are ignored.
    pub fn parse(s: &str) -> Self {
        let pairs = s
            .split(',')
            .filter_map(|e| {
                let (host, port) = e.trim().rsplit_once(':')?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Some((host.to_ascii_lowercase(), port.parse().ok()?))
            })
            .collect();
        Self(pairs)
    }

    /// Whether `host` (as the URL spells it, brackets removed) and `port` are allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0
            .iter()
            .any(|(h, p)| *p == port && h.eq_ignore_ascii_case(host))
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the address policy made of a URL's host.
#[cfg(feature = "preview")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An allowlisted `host:port` (tests): fetch it as it is.
    Allowed,
    /// An address that passed the policy.
    Address(IpAddr),
    /// A name that passed the name checks: every address it resolves to must be checked with
    /// [`is_forbidden_ip`] before connecting.
    Name(String),
}

/// Parses a preview URL and applies the policy to its scheme, form and host.
#[cfg(feature = "preview")]
pub fn parse_url(raw: &str) -> Result<url::Url, PolicyError> {
    if raw.len() > MAX_URL_BYTES {
        return Err(PolicyError::Invalid);
    }
    let parsed = url::Url::parse(raw.trim()).map_err(|_| PolicyError::Invalid)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(PolicyError::Scheme);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(PolicyError::Invalid);
    }
    Ok(parsed)
}

/// Applies the address policy to a parsed http(s) URL's host. The URL parser has already turned
/// `2130706433`, `127.1` and `0x7f000001` into 127.0.0.1.
#[cfg(feature = "preview")]
pub fn check_host(url: &url::Url, allow: &Allowlist) -> Result<Target, PolicyError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(PolicyError::Scheme);
    }
    let port = url.port_or_known_default().ok_or(PolicyError::Invalid)?;
    let host = url.host().ok_or(PolicyError::Invalid)?;
    let spelled = url.host_str().unwrap_or_default();
    if allow.allows(spelled, port) {
        return Ok(Target::Allowed);
    }
    match host {
        url::Host::Ipv4(v4) => {
            let ip = IpAddr::V4(v4);
            if is_forbidden_ip(ip) {
                Err(PolicyError::Forbidden)
            } else {
                Ok(Target::Address(ip))
            }
        }
        url::Host::Ipv6(v6) => {
            let ip = IpAddr::V6(v6);
            if is_forbidden_ip(ip) {
                Err(PolicyError::Forbidden)
            } else {
                Ok(Target::Address(ip))
            }
        }
        url::Host::Domain(name) => {
            if is_forbidden_name(name) {
                Err(PolicyError::Forbidden)
            } else {
                Ok(Target::Name(name.to_owned()))
            }
        }
    }
}

/// Whether a `Content-Type` header names an HTML page.
pub fn is_html(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "text/html" || essence == "application/xhtml+xml"
}

/// Builds a preview from a page's HTML: title, description, image and site name from OpenGraph
/// (`og:*`), then Twitter cards (`twitter:*`), then `<title>` and `<meta name=description>`.
/// The card's `url` is always `posted_url`, the link as it was posted (never `og:url` nor a
/// redirect target, which the page controls); `page_url` is where the page was fetched from
/// (after redirects), against which relative image URLs are resolved. `image` is the image's
/// own address (http(s) only), for the fetcher: tiers serve it to browsers only through
/// [`image_link`].
#[cfg(feature = "preview")]
pub fn extract(html: &str, posted_url: &str, page_url: &str) -> LinkPreview {
    use scraper::{Html, Selector};

    let doc = Html::parse_document(html);
    let mut meta: Vec<(String, String)> = Vec::new();
    if let Ok(sel) = Selector::parse("meta") {
        for el in doc.select(&sel) {
            let v = el.value();
            let key = v.attr("property").or_else(|| v.attr("name"));
            if let (Some(k), Some(c)) = (key, v.attr("content")) {
                meta.push((k.trim().to_ascii_lowercase(), c.to_owned()));
            }
        }
    }
    let find = |keys: &[&str]| -> Option<String> {
        keys.iter().find_map(|k| {
            meta.iter()
                .find(|(name, c)| name == k && !c.trim().is_empty())
                .map(|(_, c)| c.clone())
        })
    };
    let title_tag = Selector::parse("title").ok().and_then(|sel| {
        doc.select(&sel)
            .next()
            .map(|t| t.text().collect::<String>())
    });
    let base = url::Url::parse(page_url).ok();
    let absolute = |s: String| -> Option<String> {
        let joined = match &base {
            Some(b) => b.join(s.trim()).ok()?,
            None => url::Url::parse(s.trim()).ok()?,
        };
        matches!(joined.scheme(), "http" | "https").then(|| joined.to_string())
    };
    let title = find(&["og:title", "twitter:title"])
        .or(title_tag)
        .and_then(|t| tidy(&t, MAX_TITLE_CHARS));
    let description = find(&["og:description", "twitter:description", "description"])
        .and_then(|d| tidy(&d, MAX_DESCRIPTION_CHARS));
    let image = find(&[
        "og:image",
        "og:image:url",
        "twitter:image",
        "twitter:image:src",
    ])
    .and_then(absolute);
    let site_name = find(&["og:site_name"])
        .and_then(|s| tidy(&s, MAX_TITLE_CHARS))
        .or_else(|| base.as_ref().and_then(|b| b.host_str().map(str::to_owned)));
    LinkPreview {
        url: posted_url.to_owned(),
        title,
        description,
        image,
        site_name,
    }
}

/// Collapses whitespace and cuts to `max` characters; `None` when nothing is left.
#[cfg(feature = "preview")]
fn tidy(s: &str, max: usize) -> Option<String> {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = joined.chars().take(max).collect();
    (!cut.is_empty()).then_some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        is_forbidden_ip(s.parse().expect("an address"))
    }

    #[test]
    fn private_and_special_ranges_are_forbidden() {
        for a in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "192.0.0.8",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ] {
            assert!(forbidden(a), "{a} must be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for a in [
            "93.184.216.34",
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!forbidden(a), "{a} must be allowed");
        }
    }

    #[test]
    fn local_names_are_forbidden() {
        for n in [
            "localhost",
            "LOCALHOST.",
            "a.localhost",
            "printer.local",
            "intranet",
        ] {
            assert!(is_forbidden_name(n), "{n}");
        }
        assert!(!is_forbidden_name("example.com"));
    }

    #[test]
    fn allowlist_matches_exact_pairs() {
        let a = Allowlist::parse("127.0.0.1:8081, [::1]:9000,bad");
        assert!(a.allows("127.0.0.1", 8081));
        assert!(!a.allows("127.0.0.1", 8082));
        assert!(a.allows("[::1]", 9000));
        assert!(!a.allows("localhost", 8081));
    }

    #[cfg(feature = "preview")]
    #[test]
    fn odd_spellings_and_schemes_are_refused() {
        let none = Allowlist::default();
        for u in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://127.1/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://10.1.2.3:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:8080/",
            "http://LocalHost./",
            "https://100.64.0.1/",
            "http://0/",
        ] {
            let url = parse_url(u).expect("parses");
            assert_eq!(check_host(&url, &none), Err(PolicyError::Forbidden), "{u}");
        }
        for u in [
            "file:///etc/passwd",
            "ftp://example.com/",
            "gopher://x/",
            "data:text/html,hi",
            "javascript:alert(1)",
        ] {
            assert_eq!(parse_url(u).err(), Some(PolicyError::Scheme), "{u}");
        }
        assert_eq!(
            parse_url("http://user:pw@example.com/").err(),
            Some(PolicyError::Invalid)
        );
        let url = parse_url("http://example.com/").expect("parses");
        assert_eq!(
            check_host(&url, &none),
            Ok(Target::Name("example.com".into()))
        );
        let allow = Allowlist::parse("127.0.0.1:4000");
        let url = parse_url("http://127.0.0.1:4000/x").expect("parses");
        assert_eq!(check_host(&url, &allow), Ok(Target::Allowed));
        let url = parse_url("http://127.0.0.1:4001/x").expect("parses");
        assert_eq!(check_host(&url, &allow), Err(PolicyError::Forbidden));
    }

    #[cfg(feature = "preview")]
    #[test]
    fn extracts_opengraph_then_twitter_then_title() {
        let html = r#"<!doctype html><html><head>
            <title>  Plain   title </title>
            <meta property="og:title" content="OG title">
            <meta name="twitter:description" content="Card description">
            <meta property="og:image" content="/img/cat.png">
            <meta property="og:site_name" content="Example">
            </head><body>hi</body></html>"#;
        let p = extract(
            html,
            "https://example.com/a/b?c=1",
            "https://example.com/a/b?c=1",
        );
        assert_eq!(p.title.as_deref(), Some("OG title"));
        assert_eq!(p.description.as_deref(), Some("Card description"));
        assert_eq!(p.image.as_deref(), Some("https://example.com/img/cat.png"));
        assert_eq!(p.site_name.as_deref(), Some("Example"));
        assert_eq!(p.url, "https://example.com/a/b?c=1");

        let p = extract(
            "<html><head><title>Only\n title</title><meta name=description content=d>\
             <meta property=og:image content='javascript:alert(1)'></head></html>",
            "http://example.org/",
            "http://example.org/",
        );
        assert_eq!(p.title.as_deref(), Some("Only title"));
        assert_eq!(p.description.as_deref(), Some("d"));
        assert_eq!(p.image, None);
        assert_eq!(p.site_name.as_deref(), Some("example.org"));
    }

    #[cfg(feature = "preview")]
    #[test]
    fn the_card_links_to_the_posted_url() {
        let html = r#"<meta property="og:url" content="https://elsewhere.example/phish">
            <meta property="og:title" content="T"><meta property="og:image" content="i.png">"#;
        let p = extract(html, "https://short.example/x", "https://example.com/a/");
        assert_eq!(
            p.url, "https://short.example/x",
            "not og:url, not the redirect target"
        );
        assert_eq!(p.image.as_deref(), Some("https://example.com/a/i.png"));
    }

    #[test]
    fn image_links_name_the_posted_page() {
        assert_eq!(
            image_link(
                "https://chat.example/api/preview/",
                "https://a.example/x?y=1&z"
            ),
            "https://chat.example/api/preview/image?url=https%3A%2F%2Fa.example%2Fx%3Fy%3D1%26z"
        );
    }
}

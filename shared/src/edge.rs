//! The client's address as the edge worker tells it to the origin (feature `edge`).
//!
//! Behind the edge, every request reaches the origin from a Cloudflare address, so per-address
//! limits (login throttling, sockets per address) would lump all clients together. The edge
//! therefore names the client's address (Cloudflare's `CF-Connecting-IP`) in
//! [`CLIENT_ADDRESS_HEADER`], signed with a secret the two share (`CONFAB_EDGE_SECRET` on
//! both): `{address} {unix seconds} {HMAC-SHA256, hex}`. The origin takes the address only when
//! the signature holds and the time is within [`MAX_SKEW_SECS`] of its own clock; anything else
//! (no secret configured, a header sent by a client, a forged or stale one) is ignored.
//!
//! The secret itself never travels: a header seen in a log lets nobody claim another address,
//! and replaying it claims only the same address for at most [`MAX_SKEW_SECS`].

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;

/// The request header that carries the signed client address.
pub const CLIENT_ADDRESS_HEADER: &str = "x-confab-client-address";

/// How far a signature's time may be from the verifier's clock, either way, in seconds.
pub const MAX_SKEW_SECS: i64 = 60;

/// The shortest secret either side accepts (`openssl rand -base64 32` gives 44 characters).
pub const MIN_SECRET_LEN: usize = 32;

/// What is signed: a fixed label (so the MAC means nothing elsewhere), the address, the time.
fn mac(secret: &[u8], address: &str, at: i64) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(b"confab-client-address\n");
    m.update(address.as_bytes());
    m.update(b"\n");
    m.update(at.to_string().as_bytes());
    m
}

/// The header value naming `address` at time `now` (seconds since the Unix epoch).
pub fn sign(secret: &[u8], address: IpAddr, now: i64) -> String {
    let address = address.to_string();
    let tag = mac(secret, &address, now).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("{address} {now} {hex}")
}

/// Why a header value was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not `{address} {seconds} {64 hex digits}`.
    Malformed,
    /// The signature does not hold for this secret.
    BadSignature,
    /// Signed with this secret, but `skew` seconds away from now (beyond [`MAX_SKEW_SECS`]): a
    /// replay, or the two clocks disagree.
    Stale { skew: i64 },
}

/// The address a header value names, if it was signed with `secret` within
/// [`MAX_SKEW_SECS`] of `now`. The signature is compared in constant time.
pub fn verify(secret: &[u8], value: &str, now: i64) -> Result<IpAddr, Refused> {
    let mut parts = value.trim().split(' ');
    let (Some(address), Some(at), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Malformed);
    };
    let ip: IpAddr = address.parse().map_err(|_| Refused::Malformed)?;
    let at: i64 = at.parse().map_err(|_| Refused::Malformed)?;
    let sig = decode_hex(sig).ok_or(Refused::Malformed)?;
    mac(secret, address, at)
        .verify_slice(&sig)
        .map_err(|_| Refused::BadSignature)?;
    let skew = now.saturating_sub(at);
    if skew.abs() > MAX_SKEW_SECS {
        return Err(Refused::Stale { skew });
    }
    Ok(ip)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn a_signed_address_verifies_within_the_skew() {
        for a in ["203.0.113.7", "2001:db8::1"] {
            let v = sign(SECRET, ip(a), 1_000);
            assert_eq!(verify(SECRET, &v, 1_000), Ok(ip(a)));
            assert_eq!(verify(SECRET, &v, 1_000 + MAX_SKEW_SECS), Ok(ip(a)));
            assert_eq!(verify(SECRET, &v, 1_000 - MAX_SKEW_SECS), Ok(ip(a)));
        }
    }

    #[test]
    fn stale_forged_and_malformed_values_are_refused() {
        let v = sign(SECRET, ip("203.0.113.7"), 1_000);
        assert_eq!(
            verify(SECRET, &v, 1_000 + MAX_SKEW_SECS + 1),
            Err(Refused::Stale {
                skew: MAX_SKEW_SECS + 1
            })
        );
        assert_eq!(
            verify(b"another secret, just as long....", &v, 1_000),
            Err(Refused::BadSignature)
        );
        // The address or the time changed under the signature.
        let sig = v.rsplit(' ').next().expect("a signature");
        for forged in [
            format!("198.51.100.1 1000 {sig}"),
            format!("203.0.113.7 1001 {sig}"),
        ] {
            assert_eq!(verify(SECRET, &forged, 1_000), Err(Refused::BadSignature));
        }
        for bad in [
            "",
            "203.0.113.7",
            "203.0.113.7 1000",
            "not-an-ip 1000 00",
            "203.0.113.7 soon 00",
            "203.0.113.7 1000 zz",
            &format!("{v} extra"),
            &format!("203.0.113.7 1000 {}", &sig[..62]),
        ] {
            assert_eq!(verify(SECRET, bad, 1_000), Err(Refused::Malformed), "{bad}");
        }
    }
}

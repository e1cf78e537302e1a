//! permessage-deflate (RFC 7692) without context takeover in either direction.
//!
//! Without context takeover every message is compressed and inflated on its own, so a
//! connection keeps no deflate state at all: the compressor and the inflater (a few hundred
//! KiB each) belong to the thread and are reset between messages. A connection with context
//! takeover would keep ~300 KiB for its whole life (docs/BENCHMARKS.md); the bytes it would
//! save are not worth that at thousands of connections per instance. The same property makes
//! a frame's compressed form identical for every recipient, so a server can compress a
//! fanned-out frame once ([`compress`]) and send those bytes to each connection that
//! negotiated the extension.

use crate::Error;
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const NAME: &str = "permessage-deflate";

/// What a server answers to an offer it accepts: neither side keeps context between messages.
pub const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// What a client offers: the server must not keep context (this client's inflater does not),
/// and this client will not either.
pub const OFFER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The four bytes a sync flush ends with, removed by the sender and put back by the receiver
/// (RFC 7692 section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Whether a server can accept one of the permessage-deflate offers in the values of a
/// request's `Sec-WebSocket-Extensions` headers. An offer is acceptable when its parameters are
/// the RFC's and valid, and it does not limit the server's window below deflate's default
/// (this implementation compresses with a 32 KiB window). Offers for other extensions are
/// ignored.
pub fn server_accepts<'a>(header_values: impl IntoIterator<Item = &'a str>) -> bool {
    header_values
        .into_iter()
        .flat_map(|value| value.split(','))
        .filter_map(|offer| {
            let mut parts = offer.split(';').map(str::trim);
            (parts.next()? == NAME).then_some(parts)
        })
        .any(offer_is_acceptable)
}

fn offer_is_acceptable<'a>(params: impl Iterator<Item = &'a str>) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    for param in params {
        if param.is_empty() {
            continue;
        }
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        if seen.contains(&name) {
            return false;
        }
        seen.push(name);
        let window_bits = |v: Option<&str>| v.and_then(|v| v.parse::<u8>().ok());
        let ok = match name {
            "server_no_context_takeover" | "client_no_context_takeover" => value.is_none(),
            // The server's window: only the default is accepted.
            "server_max_window_bits" => window_bits(value) == Some(15),
            // The client may use a smaller window; we inflate with the largest.
            "client_max_window_bits" => {
                value.is_none() || window_bits(value).is_some_and(|b| (8..=15).contains(&b))
            }
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a server's `Sec-WebSocket-Extensions` answer to [`OFFER`] is one a client can work
/// with: permessage-deflate with `server_no_context_takeover` (this side's inflater is reset
/// between messages). `Ok(false)`: the server declined (no extension).
pub fn client_accepts(header_value: Option<&str>) -> Result<bool, Error> {
    let Some(value) = header_value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(false);
    };
    let mut parts = value.split(';').map(str::trim);
    if parts.next() != Some(NAME) || value.contains(',') {
        return Err(Error::Handshake(
            "the server chose an extension that was not offered",
        ));
    }
    let params: Vec<&str> = parts.collect();
    if !params.contains(&"server_no_context_takeover") {
        return Err(Error::Handshake(
            "the server keeps deflate context between messages",
        ));
    }
    Ok(true)
}

thread_local! {
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Compresses one message's payload (raw deflate, sync flush, the tail removed), with this
/// thread's compressor, reset afterwards.
pub fn compress(data: &[u8]) -> Bytes {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let consumed = c.total_in() as usize;
            // A sync flush of valid input cannot fail; on the impossible error, send what
            // was produced so far as if complete would corrupt the stream, so panic instead.
            #[allow(clippy::expect_used)]
            c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .expect("deflate of a complete buffer");
            if c.total_in() as usize == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        Bytes::from(out)
    })
}

/// Inflates one message's payload with this thread's inflater (reset first: the peer agreed
/// to keep no context). More than `limit` bytes of output is [`Error::TooBig`], found without
/// inflating further (a small compressed message can expand a thousandfold).
pub fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    INFLATER.with(|d| {
        let mut d = d.borrow_mut();
        d.reset(false);
        let mut out = Vec::with_capacity((data.len() * 3).max(64).min(limit.saturating_add(1)));
        for input in [data, &TAIL[..]] {
            let mut pos = 0;
            loop {
                if out.len() == out.capacity() {
                    let room = out.capacity().min(limit.saturating_add(1) - out.len());
                    out.reserve(room.max(64));
                }
                let (before_in, before_out) = (d.total_in(), out.len());
                let status = d
                    .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| Error::Protocol("invalid deflate data"))?;
                pos += (d.total_in() - before_in) as usize;
                if out.len() > limit {
                    return Err(Error::TooBig);
                }
                if status == Status::StreamEnd {
                    return Ok(out);
                }
                if pos == input.len() && out.len() < out.capacity() {
                    break;
                }
                if d.total_in() == before_in
                    && out.len() == before_out
                    && out.len() < out.capacity()
                {
                    return Err(Error::Protocol("invalid deflate data"));
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn browser_offers_are_accepted() {
        // Chromium's and Firefox's offers.
        assert!(server_accepts([
            "permessage-deflate; client_max_window_bits"
        ]));
        assert!(server_accepts(["permessage-deflate"]));
        assert!(server_accepts([OFFER]));
        assert!(server_accepts([
            "x-webkit-deflate-frame, permessage-deflate"
        ]));
        assert!(server_accepts([
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=12"
        ]));
    }

    #[test]
    fn offers_we_cannot_honour_are_declined() {
        assert!(!server_accepts([]));
        assert!(!server_accepts(["x-webkit-deflate-frame"]));
        assert!(!server_accepts([
            "permessage-deflate; server_max_window_bits=10"
        ]));
        assert!(!server_accepts([
            "permessage-deflate; client_max_window_bits=7"
        ]));
        assert!(!server_accepts(["permessage-deflate; unknown"]));
        assert!(!server_accepts([
            "permessage-deflate; server_no_context_takeover=1"
        ]));
        assert!(!server_accepts([
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover"
        ]));
    }

    #[test]
    fn clients_need_the_server_to_reset_between_messages() {
        assert!(!client_accepts(None).unwrap());
        assert!(client_accepts(Some(RESPONSE)).unwrap());
        assert!(client_accepts(Some("permessage-deflate; client_no_context_takeover")).is_err());
        assert!(client_accepts(Some("x-other")).is_err());
    }

    #[test]
    fn the_rfc_example_inflates() {
        // RFC 7692 section 7.2.3.1: "Hello" compressed.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate(&hello, 100).unwrap(), b"Hello");
        // 7.2.3.3: a stored (uncompressed) block.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate(&stored, 100).unwrap(), b"Hello");
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = compress(&vec![0; 1 << 20]);
        assert!(
            zeros.len() < (1 << 20) / 50,
            "1 MiB of zeros deflates to {} bytes",
            zeros.len()
        );
        assert!(matches!(inflate(&zeros, 65_536), Err(Error::TooBig)));
        assert_eq!(inflate(&zeros, 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert!(matches!(
            inflate(&[0xff; 16], 1000),
            Err(Error::Protocol(_))
        ));
    }

    proptest! {
        #[test]
        fn compress_then_inflate_is_the_identity(data: Vec<u8>) {
            let packed = compress(&data);
            prop_assert_eq!(inflate(&packed, data.len()).unwrap(), data);
        }
    }
}

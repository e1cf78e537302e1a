//! The frame layer of RFC 6455 (section 5.2): reading and writing one frame's header, and
//! masking. Pure functions over byte slices, so every rule is tested without a socket.

use crate::Error;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continue,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Result<Self, Error> {
        Ok(match bits {
            0x0 => Self::Continue,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return Err(Error::Protocol("reserved opcode")),
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continue => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented.
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// One frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    /// Set on the first frame of a compressed message (RFC 7692).
    pub rsv1: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
}

/// The longest header: 2 bytes, an 8-byte length and a 4-byte mask.
pub const MAX_HEADER: usize = 14;

impl Header {
    /// Reads a header from the start of `buf`: `None` while `buf` holds only part of it,
    /// else the header and its length in bytes. RSV2/RSV3 (no extension of ours defines them)
    /// and a malformed control frame are protocol errors.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, Error> {
        let [first, second, ..] = *buf else {
            return Ok(None);
        };
        if first & 0x30 != 0 {
            return Err(Error::Protocol("reserved bits set"));
        }
        let opcode = OpCode::from_bits(first & 0x0F)?;
        let fin = first & 0x80 != 0;
        let rsv1 = first & 0x40 != 0;
        let masked = second & 0x80 != 0;
        let (len, mut at) = match second & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut eight = [0; 8];
                    eight.copy_from_slice(b);
                    let len = u64::from_be_bytes(eight);
                    if len >> 63 != 0 {
                        return Err(Error::Protocol("frame length over 2^63"));
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        let mask = if masked {
            let Some(key) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        if opcode.is_control() && (!fin || len > 125) {
            return Err(Error::Protocol("fragmented or oversized control frame"));
        }
        Ok(Some((
            Self {
                fin,
                rsv1,
                opcode,
                mask,
                len,
            },
            at,
        )))
    }

    /// Appends this header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let first =
            self.opcode.bits() | if self.fin { 0x80 } else { 0 } | if self.rsv1 { 0x40 } else { 0 };
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        out.push(first);
        match self.len {
            len @ 0..=125 => out.push(mask_bit | len as u8),
            len @ 126..=0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

/// Masks (or unmasks: the operation is its own inverse) `data` with `key`.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let word = u32::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let masked = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i];
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn header(opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> Header {
        Header {
            fin: true,
            rsv1: false,
            opcode,
            mask,
            len,
        }
    }

    #[test]
    fn lengths_use_the_three_encodings() {
        for (len, size) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut out = Vec::new();
            header(OpCode::Binary, len, None).write(&mut out);
            assert_eq!(out.len(), size, "length {len}");
            assert_eq!(Header::parse(&out).unwrap().unwrap().0.len, len);
        }
    }

    #[test]
    fn a_partial_header_asks_for_more() {
        let mut out = Vec::new();
        header(OpCode::Text, 70_000, Some([1, 2, 3, 4])).write(&mut out);
        for cut in 0..out.len() {
            assert_eq!(Header::parse(&out[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(Header::parse(&out).unwrap().is_some());
    }

    #[test]
    fn reserved_bits_and_opcodes_are_refused() {
        assert!(Header::parse(&[0x81 | 0x20, 0]).is_err(), "rsv2");
        assert!(Header::parse(&[0x81 | 0x10, 0]).is_err(), "rsv3");
        assert!(Header::parse(&[0x83, 0]).is_err(), "opcode 3");
        assert!(Header::parse(&[0x8B, 0]).is_err(), "opcode 11");
        // RSV1 is the compression bit: the header layer reports it, the connection decides.
        assert!(Header::parse(&[0xC1, 0]).unwrap().unwrap().0.rsv1);
    }

    #[test]
    fn control_frames_are_short_and_whole() {
        assert!(Header::parse(&[0x09, 0]).is_err(), "fragmented ping");
        assert!(
            Header::parse(&[0x89, 126, 0, 126]).is_err(),
            "126-byte ping"
        );
        assert!(Header::parse(&[0x89, 125]).unwrap().is_some());
    }

    #[test]
    fn a_length_with_the_top_bit_is_refused() {
        let mut buf = vec![0x82, 127];
        buf.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert!(Header::parse(&buf).is_err());
    }

    proptest! {
        #[test]
        fn headers_round_trip(fin: bool, rsv1: bool, len in 0u64..(1 << 40), mask: Option<[u8; 4]>, op in 0usize..3) {
            let opcode = [OpCode::Continue, OpCode::Text, OpCode::Binary][op];
            let h = Header { fin, rsv1, opcode, mask, len };
            let mut out = Vec::new();
            h.write(&mut out);
            prop_assert_eq!(Header::parse(&out).unwrap(), Some((h, out.len())));
        }

        #[test]
        fn masking_twice_is_the_identity(data: Vec<u8>, key: [u8; 4]) {
            let mut masked = data.clone();
            apply_mask(&mut masked, key);
            for (i, (m, d)) in masked.iter().zip(&data).enumerate() {
                prop_assert_eq!(*m, d ^ key[i % 4]);
            }
            apply_mask(&mut masked, key);
            prop_assert_eq!(masked, data);
        }
    }
}

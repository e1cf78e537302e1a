//! One WebSocket connection after its handshake: reading frames into messages (defragmenting,
//! inflating, answering pings and closes) and writing messages as frames.

use crate::frame::{apply_mask, Header, OpCode};
use crate::{deflate, CloseFrame, Error, Message, Utf8Bytes};
use bytes::Bytes;
use futures::{Sink, Stream};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Which end of the connection this is: a client masks what it sends, a server requires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// A connection's settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub role: Role,
    /// Whether permessage-deflate was negotiated (without context takeover, both ways).
    pub deflate: bool,
    /// The largest frame and message accepted, compressed or inflated, in bytes.
    pub max_message: usize,
    /// Messages shorter than this are sent uncompressed even when deflate is on: they would
    /// barely shrink, or grow.
    pub compress_min: usize,
}

impl Options {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            deflate: false,
            max_message: 64 << 20,
            compress_min: 128,
        }
    }
}

/// How much is read from the socket at once, into the stack.
const READ_CHUNK: usize = 4096;
/// Queued output above which `poll_ready` writes before accepting more.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// A fragmented message being assembled.
#[derive(Debug)]
struct Partial {
    opcode: OpCode,
    compressed: bool,
    data: Vec<u8>,
}

/// A WebSocket connection over the byte stream `S`. See the crate documentation.
#[derive(Debug)]
pub struct WebSocket<S> {
    io: S,
    options: Options,
    /// Input not yet parsed: only ever part of a frame, or frames after one returned.
    read: Vec<u8>,
    partial: Option<Partial>,
    /// Output not yet written (`written` bytes of it already are); freed once all is written.
    out: Vec<u8>,
    written: usize,
    sent_close: bool,
    received_close: bool,
    /// The stream ended or failed: nothing more will be read.
    read_done: bool,
}

impl<S> WebSocket<S> {
    /// A connection over a stream whose handshake is done. `already_read`: bytes that came
    /// after the handshake in the same read.
    pub fn new(io: S, options: Options, already_read: Vec<u8>) -> Self {
        Self {
            io,
            options,
            read: already_read,
            partial: None,
            out: Vec::new(),
            written: 0,
            sent_close: false,
            received_close: false,
            read_done: false,
        }
    }

    /// Whether permessage-deflate is on.
    pub fn compresses(&self) -> bool {
        self.options.deflate
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Queues one frame.
    fn queue(&mut self, opcode: OpCode, rsv1: bool, payload: &[u8]) {
        let mask = match self.options.role {
            Role::Client => Some(rand::random::<[u8; 4]>()),
            Role::Server => None,
        };
        Header {
            fin: true,
            rsv1,
            opcode,
            mask,
            len: payload.len() as u64,
        }
        .write(&mut self.out);
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.out[start..], key);
        }
    }

    /// Queues a data message, compressed when deflate is on and it is long enough.
    fn queue_data(&mut self, opcode: OpCode, payload: &[u8], deflated: Option<&Bytes>) {
        if self.options.deflate && payload.len() >= self.options.compress_min {
            match deflated {
                Some(d) => self.queue(opcode, true, d),
                None => self.queue(opcode, true, &deflate::compress(payload)),
            }
        } else {
            self.queue(opcode, false, payload);
        }
    }

    fn queue_close(&mut self, frame: Option<&CloseFrame>) {
        if self.sent_close {
            return;
        }
        self.sent_close = true;
        let mut payload = Vec::new();
        if let Some(f) = frame {
            payload.extend_from_slice(&f.code.to_be_bytes());
            // A control frame's payload is at most 125 bytes; cut the reason at a char boundary.
            let mut end = f.reason.len().min(123);
            while !f.reason.is_char_boundary(end) {
                end -= 1;
            }
            payload.extend_from_slice(&f.reason.as_bytes()[..end]);
        }
        self.queue(OpCode::Close, false, &payload);
    }

    /// Parses complete frames from the start of `buf` until one completes a message: returns
    /// it (if any) and how many bytes were used. Pings and closes are answered here (queued).
    fn parse(&mut self, buf: &[u8]) -> Result<(Option<Message>, usize), Error> {
        let mut used = 0;
        while let Some((header, header_len)) = Header::parse(&buf[used..])? {
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            if header.len > (self.options.max_message - so_far) as u64 {
                return Err(Error::TooBig);
            }
            let end = used + header_len + header.len as usize;
            if buf.len() < end {
                break;
            }
            let mut payload = buf[used + header_len..end].to_vec();
            used = end;
            match (self.options.role, header.mask) {
                (Role::Server, Some(key)) => apply_mask(&mut payload, key),
                (Role::Client, None) => {}
                (Role::Server, None) => return Err(Error::Protocol("unmasked client frame")),
                (Role::Client, Some(_)) => return Err(Error::Protocol("masked server frame")),
            }
            if let Some(message) = self.on_frame(header, payload)? {
                return Ok((Some(message), used));
            }
        }
        Ok((None, used))
    }

    fn on_frame(&mut self, header: Header, payload: Vec<u8>) -> Result<Option<Message>, Error> {
        if header.rsv1
            && !(self.options.deflate && matches!(header.opcode, OpCode::Text | OpCode::Binary))
        {
            return Err(Error::Protocol("RSV1 set without compression"));
        }
        match header.opcode {
            OpCode::Ping => {
                if !self.sent_close {
                    self.queue(OpCode::Pong, false, &payload);
                }
                Ok(Some(Message::Ping(payload.into())))
            }
            OpCode::Pong => Ok(Some(Message::Pong(payload.into()))),
            OpCode::Close => {
                let frame = close_frame(payload)?;
                self.received_close = true;
                self.queue_close(frame.as_ref());
                Ok(Some(Message::Close(frame)))
            }
            OpCode::Text | OpCode::Binary => {
                if self.partial.is_some() {
                    return Err(Error::Protocol("a new message before the last one ended"));
                }
                let partial = Partial {
                    opcode: header.opcode,
                    compressed: header.rsv1,
                    data: payload,
                };
                if header.fin {
                    return self.complete(partial).map(Some);
                }
                self.partial = Some(partial);
                Ok(None)
            }
            OpCode::Continue => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(Error::Protocol("a continuation without a message"));
                };
                partial.data.extend_from_slice(&payload);
                if !header.fin {
                    return Ok(None);
                }
                let partial = self.partial.take().ok_or(Error::Protocol("no message"))?;
                self.complete(partial).map(Some)
            }
        }
    }

    fn complete(&mut self, partial: Partial) -> Result<Message, Error> {
        let data = match partial.compressed {
            true => deflate::inflate(&partial.data, self.options.max_message)?,
            false => partial.data,
        };
        Ok(match partial.opcode {
            OpCode::Text => Message::Text(
                Utf8Bytes::try_from(Bytes::from(data)).map_err(|_| Error::InvalidText)?,
            ),
            _ => Message::Binary(data.into()),
        })
    }
}

/// A close frame's payload: nothing, or a valid status code and a UTF-8 reason.
fn close_frame(payload: Vec<u8>) -> Result<Option<CloseFrame>, Error> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(Error::Protocol("a close frame of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(Error::Protocol("invalid close code"));
            }
            let reason = Utf8Bytes::try_from(Bytes::from(payload).slice(2..))
                .map_err(|_| Error::InvalidText)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

impl<S: AsyncWrite + Unpin> WebSocket<S> {
    /// Writes queued output until all of it is written (then frees the buffer) or the socket
    /// would block.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(
                    std::io::Error::from(std::io::ErrorKind::WriteZero).into()
                ));
            }
            self.written += n;
        }
        self.out = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.sent_close && this.received_close {
                // The closing handshake is complete: try to get our answer out, then stop.
                let _ = this.poll_write_out(cx);
                return Poll::Ready(None);
            }
            if !this.read.is_empty() {
                let buffered = std::mem::take(&mut this.read);
                match this.parse(&buffered) {
                    Ok((message, used)) => {
                        if used < buffered.len() {
                            this.read = buffered;
                            this.read.drain(..used);
                        }
                        if let Some(m) = message {
                            return Poll::Ready(Some(Ok(this.answered(m, cx))));
                        }
                    }
                    Err(e) => return Poll::Ready(Some(Err(this.failed(e)))),
                }
            }
            if this.read_done {
                return Poll::Ready(None);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(this.failed(e.into())))),
                Poll::Ready(Ok(())) => {}
            }
            let input = buf.filled();
            if input.is_empty() {
                this.read_done = true;
                return Poll::Ready(None);
            }
            if !this.read.is_empty() {
                this.read.extend_from_slice(input);
                continue;
            }
            // Nothing was pending: parse straight from the stack, keep only what is left.
            match this.parse(input) {
                Ok((message, used)) => {
                    this.read.extend_from_slice(&input[used..]);
                    if let Some(m) = message {
                        return Poll::Ready(Some(Ok(this.answered(m, cx))));
                    }
                }
                Err(e) => return Poll::Ready(Some(Err(this.failed(e)))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// A message about to be returned: if reading it queued an answer (a pong, our close),
    /// try to write it now rather than at the next send.
    fn answered(&mut self, message: Message, cx: &mut Context<'_>) -> Message {
        if matches!(message, Message::Ping(_) | Message::Close(_)) {
            let _ = self.poll_write_out(cx);
        }
        message
    }

    /// A read error ends reading: the input after it cannot be trusted.
    fn failed(&mut self, e: Error) -> Error {
        self.read_done = true;
        self.read = Vec::new();
        self.partial = None;
        e
    }
}

impl<S: AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.out.len() - self.written > WRITE_HIGH_WATER {
            ready!(self.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        if self.sent_close {
            return Err(Error::Closed);
        }
        match message {
            Message::Text(text) => self.queue_data(OpCode::Text, text.as_bytes(), None),
            Message::Binary(data) => self.queue_data(OpCode::Binary, &data, None),
            Message::Shared(shared) => {
                let deflated = (self.options.deflate
                    && shared.text().len() >= self.options.compress_min)
                    .then(|| shared.deflated());
                self.queue_data(OpCode::Text, shared.text().as_bytes(), deflated);
            }
            Message::Ping(data) => self.queue(OpCode::Ping, false, &data[..data.len().min(125)]),
            Message::Pong(data) => self.queue(OpCode::Pong, false, &data[..data.len().min(125)]),
            Message::Close(frame) => self.queue_close(frame.as_ref()),
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx).map_err(Error::from)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.io)
            .poll_shutdown(cx)
            .map_err(Error::from)
    }
}

//! Reading the client: size limits, the per-connection frame and change rates, and decoding
//! text frames into typed [`ClientFrame`]s (anything else is refused with `bad_request` and
//! changes nothing). Rate-limit violations are answered `rate_limited`; a client that keeps
//! violating is disconnected.

use super::{close, Stop};
use crate::error::ApiError;
use confab_shared::protocol::ClientFrame;
use confab_ws::Message;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::time::Instant;

/// Rate-limit violations tolerated within [`STRIKE_WINDOW`] before the socket is closed.
const MAX_STRIKES: u32 = 20;
const STRIKE_WINDOW: Duration = Duration::from_secs(10);

/// What one inbound message is.
pub enum Inbound {
    /// A client frame to act on.
    Frame(ClientFrame),
    /// Refused: answer with this error (no `ref`: the frame could not be read).
    Refused(ApiError),
    /// Over the frame rate.
    RateLimited,
    /// Nothing to do (pings, pongs).
    Nothing,
}

/// The reading side of a session.
pub struct Reader {
    max_frame: usize,
    frames: DefaultDirectRateLimiter,
    changes: DefaultDirectRateLimiter,
    strikes: u32,
    strikes_since: Instant,
    /// When the client last sent anything (for the idle timeout).
    pub last_inbound: Instant,
    frames_in: metrics::Counter,
}

fn limiter(per_sec: u32, burst: u32) -> DefaultDirectRateLimiter {
    let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(per_sec);
    RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst))
}

impl Reader {
    /// Frames up to `max_frame` bytes, `frame_rate` frames and `change_rate` changes (posts,
    /// edits, deletions) per second, with bursts of twice that.
    pub fn new(max_frame: usize, frame_rate: u32, change_rate: u32) -> Self {
        Self {
            max_frame,
            frames: limiter(frame_rate, frame_rate.saturating_mul(2)),
            changes: limiter(change_rate, change_rate.saturating_mul(2)),
            strikes: 0,
            strikes_since: Instant::now(),
            last_inbound: Instant::now(),
            frames_in: metrics::counter!("confab_ws_frames_in_total"),
        }
    }

    /// Reads what the socket yielded.
    pub fn read(
        &mut self,
        inbound: Option<Result<Message, confab_ws::Error>>,
    ) -> Result<Inbound, Stop> {
        let message = match inbound {
            None => return Err(Stop::Gone),
            // The transport refuses frames over its cap (4x the limit) from their header,
            // before buffering them, and messages that inflate past it.
            Some(Err(confab_ws::Error::TooBig)) => {
                return Err(Stop::Close(close::TOO_BIG, "frame too large"))
            }
            Some(Err(confab_ws::Error::Protocol(_))) => {
                return Err(Stop::Close(close::PROTOCOL, "protocol error"))
            }
            Some(Err(confab_ws::Error::InvalidText)) => {
                return Err(Stop::Close(
                    close::INVALID_TEXT,
                    "text frames must be UTF-8",
                ))
            }
            Some(Err(_)) => return Err(Stop::Gone),
            Some(Ok(message)) => message,
        };
        self.last_inbound = Instant::now();
        self.frames_in.increment(1);
        match message {
            Message::Text(text) => {
                if text.len() > self.max_frame {
                    return Err(Stop::Close(close::TOO_BIG, "frame too large"));
                }
                if self.frames.check().is_err() {
                    return Ok(Inbound::RateLimited);
                }
                Ok(match ClientFrame::decode(text.as_str()) {
                    Ok(frame) => Inbound::Frame(frame),
                    Err(e) => Inbound::Refused(ApiError::BadRequest(e.0)),
                })
            }
            Message::Binary(data) => {
                if data.len() > self.max_frame {
                    return Err(Stop::Close(close::TOO_BIG, "frame too large"));
                }
                Ok(Inbound::Refused(ApiError::BadRequest(
                    "binary frames are not supported: send JSON text".into(),
                )))
            }
            // Pongs only prove liveness; pings are answered by the WebSocket layer.
            // (A shared message is only ever sent.)
            Message::Ping(_) | Message::Pong(_) | Message::Shared(_) => Ok(Inbound::Nothing),
            Message::Close(_) => Err(Stop::Gone),
        }
    }

    /// Whether one more change (post, edit, delete) fits the change rate.
    pub fn allow_change(&mut self) -> bool {
        self.changes.check().is_ok()
    }

    /// Counts a rate-limit violation; stops the session when they keep coming.
    pub fn strike(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        if now.duration_since(self.strikes_since) > STRIKE_WINDOW {
            self.strikes = 0;
            self.strikes_since = now;
        }
        self.strikes += 1;
        if self.strikes > MAX_STRIKES {
            return Err(Stop::Close(close::POLICY, "rate limit exceeded"));
        }
        Ok(())
    }
}

//! Writing to the client. Every write is bounded by the write timeout: a client that stops
//! reading is dropped, never waited for (while it waits, its mailbox keeps filling until its
//! rooms are resynced, so memory stays bounded). A burst of mail is written with one flush:
//! frames are only queued in the transport's write buffer (a few KiB, allocated while used)
//! until the burst ends, so a busy connection costs one system call per burst, not per frame.

use super::{Stop, Transport};
use crate::fanout::Frame;
use confab_shared::protocol::ServerFrame;
use confab_ws::{Message, Utf8Bytes};
use futures::{FutureExt, SinkExt};
use std::future::Future;
use std::time::Duration;

/// A session's writing state.
pub struct Writer {
    limit: Duration,
    /// True while a burst is written with one flush.
    batching: bool,
    /// Frames queued during the current burst.
    batched: u64,
    /// Frames written but not yet added to `frames_out` (added at each tick and at the end:
    /// one shared counter update per connection per tick, not per frame).
    unreported: u64,
    frames_out: metrics::Counter,
}

impl Writer {
    /// A writer that gives up on a blocked write after `limit`.
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            batching: false,
            batched: 0,
            unreported: 0,
            frames_out: metrics::counter!("confab_ws_frames_out_total"),
        }
    }

    /// Writes (or, in a burst, queues) one message.
    pub async fn send<T: Transport>(&mut self, io: &mut T, message: Message) -> Result<(), Stop> {
        if self.batching {
            bounded(self.limit, io.feed(message)).await?;
            self.batched += 1;
        } else {
            bounded(self.limit, io.send(message)).await?;
        }
        self.unreported += 1;
        Ok(())
    }

    /// Serializes and writes one frame.
    pub async fn frame<T: Transport>(
        &mut self,
        io: &mut T,
        frame: &ServerFrame,
    ) -> Result<(), Stop> {
        self.send(io, Message::Text(Utf8Bytes::from(frame.to_json())))
            .await
    }

    /// Writes a frame serialized (and, for connections that compress, deflated) once for
    /// every recipient.
    pub async fn shared<T: Transport>(&mut self, io: &mut T, frame: &Frame) -> Result<(), Stop> {
        self.send(io, Message::Shared(frame.shared())).await
    }

    /// Starts a burst: writes are queued until [`Writer::end_burst`].
    pub fn begin_burst(&mut self) {
        self.batching = true;
    }

    /// Ends a burst: flushes what it queued, with one write.
    pub async fn end_burst<T: Transport>(&mut self, io: &mut T) -> Result<(), Stop> {
        self.batching = false;
        if std::mem::take(&mut self.batched) == 0 {
            return Ok(());
        }
        bounded(self.limit, io.flush()).await
    }

    /// Adds the frames written since the last report to the shared counter.
    pub fn report(&mut self) {
        self.frames_out
            .increment(std::mem::take(&mut self.unreported));
    }
}

/// Completes a write, or gives up on the client after `limit`. The deadline (a timer) is only
/// set up when the write cannot complete at once.
async fn bounded(
    limit: Duration,
    write: impl Future<Output = Result<(), confab_ws::Error>>,
) -> Result<(), Stop> {
    let mut write = std::pin::pin!(write);
    let done = match (&mut write).now_or_never() {
        Some(done) => done,
        None => match tokio::time::timeout(limit, write).await {
            Ok(done) => done,
            Err(_) => {
                metrics::counter!("confab_slow_client_drops_total").increment(1);
                tracing::info!("dropping a client that stopped reading");
                return Err(Stop::Gone);
            }
        },
    };
    done.map_err(|_| Stop::Gone)
}

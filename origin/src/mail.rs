//! Outgoing e-mail over SMTP (`CONFAB_SMTP_URL`): what registration by e-mail confirmation
//! sends. Handlers queue a message and return at once (so an answer never takes longer for one
//! kind of mail than another); one task sends them, in order, each within [`SEND_TIMEOUT`].
//! The queue is bounded: when it is full the message is dropped and logged (the person can
//! register again), never waited for.

use lettre::message::{header::ContentType, Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Messages waiting to be sent at most.
const QUEUE: usize = 256;
/// The longest one message may take to send.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// A handle for queueing mail. Cheap to share (in `AppState`).
pub struct Mailer {
    from: Mailbox,
    queue: mpsc::Sender<Message>,
}

impl Mailer {
    /// Starts the sending task for the SMTP server at `url` (lettre's URL form:
    /// `smtp://user:pass@host:587?tls=required`, `smtps://host`, `smtp://host:25`), writing as
    /// `from`. It stops when `shutdown` is cancelled.
    pub fn start(
        url: &str,
        from: &str,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Self, JoinHandle<()>)> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("CONFAB_MAIL_FROM {from:?} is not an address: {e}"))?;
        let (queue, mut rx) = mpsc::channel::<Message>(QUEUE);
        let task = tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = rx.recv() => match next {
                        Some(m) => m,
                        None => break,
                    },
                };
                match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
                    Ok(Ok(_)) => metrics::counter!("confab_mail_sent_total").increment(1),
                    Ok(Err(e)) => tracing::warn!(error = %e, "sending mail failed"),
                    Err(_) => tracing::warn!("sending mail timed out"),
                }
            }
        });
        Ok((Self { from, queue }, task))
    }

    /// Queues a plain-text message to `to`; false (logged) when it cannot be queued.
    pub fn send(&self, to: &str, subject: &str, body: String) -> bool {
        let to: Mailbox = match to.parse() {
            Ok(to) => to,
            Err(e) => {
                tracing::warn!(error = %e, "not a deliverable address");
                return false;
            }
        };
        let built = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let message = match built {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "building a message failed");
                return false;
            }
        };
        match self.queue.try_send(message) {
            Ok(()) => true,
            Err(_) => {
                tracing::warn!("the mail queue is full: message dropped");
                false
            }
        }
    }
}

//! The periodic checks that an open socket's login session is still valid, a query per round
//! rather than one per socket.
//!
//! Revocations reach open sockets as user events (`SessionsRevoked`); the check every
//! `CONFAB_REVALIDATE_SECS` is the safety net for what no event announced (a session revoked
//! by `confab admin`, an event a full mailbox dropped). One query per socket per interval is
//! 500 queries a second at 30,000 sockets; here the checks asked within [`LINGER`] of a
//! round's first share one query.
//!
//! A session does not wait for its answer (a socket that waited would hold its deliveries
//! for the linger): it asks and goes on, and a round tells the sessions it found revoked
//! the way a revocation is always told, a `SessionsRevoked` event in their mailbox. A check
//! that cannot be asked (the queue is full) or answered (the database failed) leaves the
//! socket open until the next one, as a failed check always did.

use crate::broker::{Hub, UserEvent};
use crate::store::DynStore;
use confab_shared::ids::{SessionId, UserId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a round waits for more checks after its first.
const LINGER: Duration = Duration::from_millis(200);
/// The most sessions one round checks, and the checks that may wait for a round.
const ROUND: usize = 2000;

/// This instance's session checks.
#[derive(Debug)]
pub struct SessionChecks {
    asked: mpsc::Sender<(UserId, SessionId)>,
}

impl SessionChecks {
    /// Starts the task that runs the rounds; it ends when this handle is dropped.
    pub fn start(store: DynStore, hub: Arc<Hub>) -> Self {
        let (asked, rx) = mpsc::channel(ROUND);
        tokio::spawn(run(store, hub, rx));
        Self { asked }
    }

    /// Asks for the user's login session to be checked by the next round; if it has ended,
    /// its sockets here get `SessionsRevoked`.
    pub fn ask(&self, user: UserId, session: SessionId) {
        if self.asked.try_send((user, session)).is_err() {
            metrics::counter!("confab_session_checks_skipped_total").increment(1);
        }
    }
}

async fn run(store: DynStore, hub: Arc<Hub>, mut rx: mpsc::Receiver<(UserId, SessionId)>) {
    let mut round = Vec::new();
    while let Some(first) = rx.recv().await {
        round.push(first);
        let gather = tokio::time::sleep(LINGER);
        tokio::pin!(gather);
        while round.len() < ROUND {
            tokio::select! {
                _ = &mut gather => break,
                next = rx.recv() => match next {
                    Some(check) => round.push(check),
                    None => break,
                },
            }
        }
        let ids: Vec<SessionId> = round.iter().map(|&(_, session)| session).collect();
        metrics::histogram!("confab_session_checks_per_round").record(ids.len() as f64);
        match crate::metrics::db("sessions_active", store.sessions_active(&ids)).await {
            Ok(active) => {
                for (user, session) in round.drain(..) {
                    if !active.contains(&session) {
                        hub.deliver_user(user, UserEvent::SessionsRevoked(Some(session)));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = ?e, sessions = ids.len(), "session checks failed");
                round.clear();
            }
        }
    }
}

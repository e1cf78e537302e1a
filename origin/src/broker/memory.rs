//! The in-process broker of the embedded default.
//!
//! A change's life here: `append` takes the room's next seq and queues the entry under one
//! short lock (so the queue is in seq order), the [`Persister`] writes queued entries to the
//! store in batches (one transaction, one fsync per batch), and only after the commit does it
//! deliver them to the hub and answer the senders. So an `ack` means the entry is on disk, and
//! no one ever sees an entry that could be lost. Recovery reads the store, which holds every
//! acknowledged entry.
//!
//! The queue is bounded (`queue_capacity`): when it is full, changes fail with a retryable
//! `unavailable` instead of piling up memory.

use super::{
    entry_delivery, event_delivery, Accepted, Broker, BrokerError, Change, Hub, Recovery, UserEvent,
};
use crate::store::{AppendOutcome, DynStore, LogEntry};
use crate::time::now_ms;
use async_trait::async_trait;
use confab_shared::ids::{ClientRef, MessageId, RoomId, UserId};
use confab_shared::protocol::{ChatMessage, ServerFrame, UserPublic};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Most entries written in one transaction.
const MAX_BATCH: usize = 256;
/// Answers to recent changes remembered per room, so a resend is answered from memory without
/// using up a seq (older resends are caught by the store's unique rules).
const RECENT_ANSWERS: usize = 256;

struct Job {
    entry: LogEntry,
    key: (bool, UserId, ClientRef),
    done: oneshot::Sender<Result<Accepted, BrokerError>>,
}

/// A room's log position, since the room was first touched.
struct RoomSeq {
    /// The seq the next entry gets.
    next: i64,
    /// The highest committed seq.
    committed: i64,
    /// The answers to the last committed changes: (is a post, actor, reference) → answer.
    answers: VecDeque<((bool, UserId, ClientRef), Accepted)>,
}

/// The key a change's answer is remembered by (posts and other changes are separate
/// namespaces, as in the store).
fn answer_key(change: &Change) -> (bool, UserId, ClientRef) {
    (change.is_post(), change.actor.id, change.reference.clone())
}

struct Shared {
    hub: Arc<Hub>,
    store: DynStore,
    /// Log positions, loaded from the store on first use. Locked only for map operations,
    /// never across an await.
    rooms: Mutex<HashMap<RoomId, RoomSeq>>,
}

impl Shared {
    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomId, RoomSeq>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes sure the room's log position is loaded.
    async fn load(&self, room: RoomId) -> Result<(), BrokerError> {
        if self.rooms().contains_key(&room) {
            return Ok(());
        }
        let last = self.store.last_seq(room).await?;
        self.rooms().entry(room).or_insert(RoomSeq {
            next: last + 1,
            committed: last,
            answers: VecDeque::new(),
        });
        Ok(())
    }

    /// Records a committed entry and delivers it to the room's local listeners.
    fn committed(&self, entry: &LogEntry, key: (bool, UserId, ClientRef)) {
        let (room, seq) = (entry.event.room(), entry.event.seq());
        if let Some(log) = self.rooms().get_mut(&room) {
            log.committed = log.committed.max(seq);
            if log.answers.len() == RECENT_ANSWERS {
                log.answers.pop_front();
            }
            let accepted = Accepted {
                id: entry.event.message_id(),
                seq,
            };
            log.answers.push_back((key, accepted));
        }
        crate::metrics::since_accepted("confab_fanout_seconds", entry.at);
        self.hub.deliver(room, entry_delivery(&entry.event));
    }
}

/// The in-process broker.
pub struct MemoryBroker {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Job>,
    stop: CancellationToken,
    persister: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl MemoryBroker {
    /// Starts the broker and its persister task.
    pub fn start(hub: Arc<Hub>, store: DynStore, queue_capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            hub,
            store,
            rooms: Mutex::new(HashMap::new()),
        });
        let (tx, rx) = mpsc::channel(queue_capacity.max(1));
        let stop = CancellationToken::new();
        let persister = Persister {
            shared: shared.clone(),
            rx,
            stop: stop.clone(),
        };
        Self {
            shared,
            queue: tx,
            stop,
            persister: tokio::sync::Mutex::new(Some(tokio::spawn(persister.run()))),
        }
    }
}

/// Writes queued entries in batches and delivers them once committed.
struct Persister {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Job>,
    stop: CancellationToken,
}

impl Persister {
    async fn run(mut self) {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        loop {
            let received = tokio::select! {
                n = self.rx.recv_many(&mut jobs, MAX_BATCH) => n,
                _ = self.stop.cancelled(), if !self.rx.is_closed() => {
                    // Refuse new work, then drain what was accepted into the queue.
                    self.rx.close();
                    continue;
                }
            };
            if received == 0 {
                break;
            }
            self.write(&mut jobs).await;
        }
    }

    async fn write(&self, jobs: &mut Vec<Job>) {
        let batch: Vec<LogEntry> = jobs.iter().map(|j| j.entry.clone()).collect();
        metrics::histogram!("confab_persist_batch_size").record(batch.len() as f64);
        let outcome = crate::metrics::db("append", self.shared.store.append(&batch)).await;
        match outcome {
            Ok(outcomes) => {
                for (job, outcome) in jobs.drain(..).zip(outcomes) {
                    let accepted = match outcome {
                        AppendOutcome::Appended => {
                            crate::metrics::since_accepted(
                                "confab_persist_lag_seconds",
                                job.entry.at,
                            );
                            self.shared.committed(&job.entry, job.key);
                            Accepted {
                                id: job.entry.event.message_id(),
                                seq: job.entry.event.seq(),
                            }
                        }
                        AppendOutcome::Duplicate { id, seq } => Accepted { id, seq },
                    };
                    // The sender may have gone (socket closed); the entry stands regardless.
                    let _gone = job.done.send(Ok(accepted));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, batch = batch.len(), "writing the room log failed");
                for job in jobs.drain(..) {
                    let _gone = job
                        .done
                        .send(Err(BrokerError::Unavailable("could not store the change")));
                }
            }
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn append(&self, change: Change) -> Result<Accepted, BrokerError> {
        self.shared.load(change.room).await?;
        let (done, accepted) = oneshot::channel();
        {
            let mut rooms = self.shared.rooms();
            let log = rooms
                .get_mut(&change.room)
                .ok_or(BrokerError::Unavailable("room state missing"))?;
            let key = answer_key(&change);
            if let Some((_, first)) = log.answers.iter().rev().find(|(k, _)| *k == key) {
                return Ok(*first);
            }
            let mut entry = change.entry(now_ms());
            entry.event.set_seq(log.next);
            // try_send under the lock keeps the queue in seq order; the seq is only used up
            // once the entry is queued. A resend of an older change is recognised by the
            // store's unique (room, actor, reference) rules and answered with the first entry.
            self.queue
                .try_send(Job { entry, key, done })
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => {
                        BrokerError::Unavailable("server busy: retry shortly")
                    }
                    mpsc::error::TrySendError::Closed(_) => {
                        BrokerError::Unavailable("server shutting down: retry shortly")
                    }
                })?;
            log.next += 1;
        }
        accepted.await.unwrap_or(Err(BrokerError::Unavailable(
            "server shutting down: retry shortly",
        )))
    }

    async fn answered(
        &self,
        room: RoomId,
        actor: UserId,
        reference: &ClientRef,
    ) -> Result<Option<Accepted>, BrokerError> {
        // Every acknowledged entry is in the store.
        super::stored_answer(&self.shared.store, room, actor, reference).await
    }

    async fn message(
        &self,
        room: RoomId,
        id: MessageId,
    ) -> Result<Option<ChatMessage>, BrokerError> {
        super::stored_message(&self.shared.store, room, id).await
    }

    async fn publish_event(&self, room: RoomId, frame: ServerFrame) -> Result<(), BrokerError> {
        self.shared.hub.deliver(room, event_delivery(&frame));
        Ok(())
    }

    async fn publish_user_event(&self, user: UserId, event: UserEvent) -> Result<(), BrokerError> {
        self.shared.hub.deliver_user(user, event);
        Ok(())
    }

    async fn recover(
        &self,
        room: RoomId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Recovery, BrokerError> {
        if after_seq >= self.last_seq(room).await? {
            return Ok(Recovery::from_page(Vec::new(), limit));
        }
        let events = self
            .shared
            .store
            .events_after(room, after_seq, limit + 1)
            .await?;
        Ok(Recovery::from_page(events, limit))
    }

    async fn last_seq(&self, room: RoomId) -> Result<i64, BrokerError> {
        self.shared.load(room).await?;
        Ok(self
            .shared
            .rooms()
            .get(&room)
            .map(|log| log.committed)
            .unwrap_or(0))
    }

    async fn set_presence(
        &self,
        room: RoomId,
        user: &UserPublic,
        online: bool,
    ) -> Result<(), BrokerError> {
        // One process: a local transition is a global one.
        self.publish_event(
            room,
            ServerFrame::Presence {
                room,
                user: user.clone(),
                online,
            },
        )
        .await
    }

    async fn online(&self, room: RoomId) -> Result<Vec<UserPublic>, BrokerError> {
        Ok(self.shared.hub.present(room))
    }

    async fn shutdown(&self) {
        self.stop.cancel();
        if let Some(handle) = self.persister.lock().await.take() {
            if let Err(e) = handle.await {
                tracing::error!(error = ?e, "persister task failed");
            }
        }
    }
}

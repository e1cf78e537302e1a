//! The in-process broker of the embedded default.
//!
//! A message's life here: `publish_message` takes the room's next seq and queues the message
//! under one short lock (so the queue is in seq order), the [`Persister`] writes queued messages
//! to the store in batches (one statement, one transaction, one fsync per batch), and only after
//! the commit does it deliver them to the hub and answer the senders. So an `ack` means the
//! message is on disk, and no one ever sees a message that could be lost.
//!
//! The queue is bounded (`queue_capacity`): when it is full, sends fail with a retryable
//! `unavailable` instead of piling up memory.

use super::{Accepted, Broker, BrokerError, Outgoing, Recovery};
use crate::gateway::hub::{Delivery, DeliveryKind, RoomHub, UserEvent};
use crate::store::{DynStore, InsertOutcome, NewMessage};
use crate::time::now_ms;
use async_trait::async_trait;
use confab_shared::ids::{MessageId, RoomId, UserId};
use confab_shared::protocol::{ChatMessage, ServerFrame, UserPublic};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most messages written in one statement.
const MAX_BATCH: usize = 256;
/// Recent messages kept per room for fast recovery (older ones come from the store).
const RECENT_PER_ROOM: usize = 256;

struct Job {
    message: NewMessage,
    done: oneshot::Sender<Result<Accepted, BrokerError>>,
}

/// What the broker remembers of a room since it was first touched.
struct RoomLog {
    /// The seq the next message gets.
    next_seq: i64,
    /// The highest committed seq.
    committed: i64,
    /// The last committed messages, ascending by seq, without deleted ones.
    recent: VecDeque<ChatMessage>,
}

struct Shared {
    hub: Arc<RoomHub>,
    store: DynStore,
    /// Room logs, loaded from the store on first use. Locked only for map and deque
    /// operations, never across an await.
    rooms: Mutex<HashMap<RoomId, RoomLog>>,
}

impl Shared {
    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomId, RoomLog>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes sure the room's log is loaded.
    async fn load(&self, room: RoomId) -> Result<(), BrokerError> {
        if self.rooms().contains_key(&room) {
            return Ok(());
        }
        let last = self.store.last_seq(room).await?;
        self.rooms().entry(room).or_insert(RoomLog {
            next_seq: last + 1,
            committed: last,
            recent: VecDeque::new(),
        });
        Ok(())
    }

    /// Records a committed message and delivers it to the room's local listeners.
    fn committed(&self, message: &NewMessage) {
        let chat = message.to_chat();
        let delivery = Delivery::new(
            DeliveryKind::Message {
                seq: chat.seq,
                author: chat.author.clone(),
            },
            &ServerFrame::Message(chat.clone()),
        );
        {
            let mut rooms = self.rooms();
            if let Some(log) = rooms.get_mut(&message.room) {
                log.committed = log.committed.max(message.seq);
                if log.recent.len() == RECENT_PER_ROOM {
                    log.recent.pop_front();
                }
                log.recent.push_back(chat);
            }
        }
        crate::metrics::since_accepted("confab_fanout_seconds", message.created_at);
        self.hub.deliver(message.room, delivery);
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
    pub fn start(hub: Arc<RoomHub>, store: DynStore, queue_capacity: usize) -> Self {
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

/// Writes queued messages in batches and delivers them once committed.
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
        let batch: Vec<NewMessage> = jobs.iter().map(|j| j.message.clone()).collect();
        metrics::histogram!("confab_persist_batch_size").record(batch.len() as f64);
        let outcome =
            crate::metrics::db("insert_messages", self.shared.store.insert_messages(&batch)).await;
        match outcome {
            Ok(outcomes) => {
                for (job, outcome) in jobs.drain(..).zip(outcomes) {
                    let accepted = match outcome {
                        InsertOutcome::Inserted => {
                            crate::metrics::since_accepted(
                                "confab_persist_lag_seconds",
                                job.message.created_at,
                            );
                            self.shared.committed(&job.message);
                            Accepted {
                                id: job.message.id,
                                seq: job.message.seq,
                            }
                        }
                        InsertOutcome::Duplicate { id, seq } => Accepted { id, seq },
                    };
                    // The sender may have gone (socket closed); the message stands regardless.
                    let _gone = job.done.send(Ok(accepted));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, batch = batch.len(), "writing messages failed");
                for job in jobs.drain(..) {
                    let _gone = job
                        .done
                        .send(Err(BrokerError::Unavailable("could not store the message")));
                }
            }
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish_message(&self, msg: Outgoing) -> Result<Accepted, BrokerError> {
        self.shared.load(msg.room).await?;
        let (done, accepted) = oneshot::channel();
        {
            let mut rooms = self.shared.rooms();
            let log = rooms
                .get_mut(&msg.room)
                .ok_or(BrokerError::Unavailable("room state missing"))?;
            // A resend of something recent: answer from memory. Older resends are caught by
            // the store's unique (room, author, client_msg_id) rule.
            if let Some(m) = log
                .recent
                .iter()
                .rev()
                .find(|m| m.author.id == msg.author.id && m.client_msg_id == msg.client_msg_id)
            {
                return Ok(Accepted {
                    id: m.id,
                    seq: m.seq,
                });
            }
            let message = NewMessage {
                id: MessageId(Uuid::now_v7()),
                room: msg.room,
                seq: log.next_seq,
                author: msg.author,
                client_msg_id: msg.client_msg_id,
                body: msg.body.into_inner(),
                attachment: msg.attachment,
                created_at: now_ms(),
            };
            // try_send under the lock keeps the queue in seq order; the seq is only used up
            // once the message is queued.
            self.queue
                .try_send(Job { message, done })
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => {
                        BrokerError::Unavailable("server busy: retry shortly")
                    }
                    mpsc::error::TrySendError::Closed(_) => {
                        BrokerError::Unavailable("server shutting down: retry shortly")
                    }
                })?;
            log.next_seq += 1;
        }
        accepted.await.unwrap_or(Err(BrokerError::Unavailable(
            "server shutting down: retry shortly",
        )))
    }

    async fn publish_event(&self, room: RoomId, frame: ServerFrame) -> Result<(), BrokerError> {
        // Keep the recent-history cache true to edits and deletions.
        match &frame {
            ServerFrame::Edited {
                id,
                body,
                edited_at,
                ..
            } => {
                if let Some(log) = self.shared.rooms().get_mut(&room) {
                    if let Some(m) = log.recent.iter_mut().find(|m| m.id == *id) {
                        m.body.clone_from(body);
                        m.edited_at = Some(*edited_at);
                    }
                }
            }
            ServerFrame::Deleted { id, .. } => {
                if let Some(log) = self.shared.rooms().get_mut(&room) {
                    log.recent.retain(|m| m.id != *id);
                }
            }
            _ => {}
        }
        self.shared.hub.deliver(room, Delivery::event(&frame));
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
        self.shared.load(room).await?;
        {
            let rooms = self.shared.rooms();
            if let Some(log) = rooms.get(&room) {
                if after_seq >= log.committed {
                    return Ok(Recovery {
                        messages: Vec::new(),
                        complete: true,
                    });
                }
                if log.recent.front().is_some_and(|m| m.seq <= after_seq + 1) {
                    let messages: Vec<ChatMessage> = log
                        .recent
                        .iter()
                        .filter(|m| m.seq > after_seq)
                        .take(limit as usize + 1)
                        .cloned()
                        .collect();
                    return Ok(Recovery::from_page(messages, limit));
                }
            }
        }
        let messages = self
            .shared
            .store
            .messages_after(room, after_seq, limit + 1)
            .await?;
        Ok(Recovery::from_page(messages, limit))
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

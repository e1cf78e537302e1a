//! A `Session` driven without a socket: its transport is a pair of channels, so the test
//! decides when the client reads. The state behind it is real (SQLite store, in-process broker,
//! the local fan-out), built by `startup::build_state` without a listener.
#![allow(clippy::unwrap_used)]

use confab_origin::auth::AuthUser;
use confab_origin::broker::{entry_delivery, Change};
use confab_origin::gateway::session::Session;
use confab_origin::state::AppState;
use confab_origin::store::{NewUser, RoomRecord};
use confab_origin::Config;
use confab_shared::domain::MessageBody;
use confab_shared::events::{MessageEdited, RoomEvent};
use confab_shared::ids::{ClientMsgId, MessageId, RoomId, SessionId, UserId};
use confab_shared::protocol::{ServerFrame, UserPublic};
use confab_ws::Message;
use futures::channel::mpsc;
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use uuid::Uuid;

/// The server's end of a fake socket.
struct FakeSocket {
    inbound: mpsc::Receiver<Result<Message, confab_ws::Error>>,
    outbound: mpsc::Sender<Message>,
}

impl Stream for FakeSocket {
    type Item = Result<Message, confab_ws::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inbound.poll_next_unpin(cx)
    }
}

impl Sink<Message> for FakeSocket {
    type Error = confab_ws::Error;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.outbound
            .poll_ready(cx)
            .map_err(|_| confab_ws::Error::Closed)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.outbound
            .start_send(item)
            .map_err(|_| confab_ws::Error::Closed)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.outbound)
            .poll_flush(cx)
            .map_err(|_| confab_ws::Error::Closed)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.outbound)
            .poll_close(cx)
            .map_err(|_| confab_ws::Error::Closed)
    }
}

/// The client's end.
struct Client {
    tx: mpsc::Sender<Result<Message, confab_ws::Error>>,
    rx: mpsc::Receiver<Message>,
}

impl Client {
    async fn send(&mut self, frame: serde_json::Value) {
        self.tx
            .send(Ok(Message::Text(frame.to_string().into())))
            .await
            .unwrap();
    }

    async fn next(&mut self) -> ServerFrame {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.rx.next())
                .await
                .expect("a frame in time")
                .expect("the session is running");
            match m {
                Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                // A fanned-out frame, serialized once for every recipient.
                Message::Shared(s) => return serde_json::from_str(s.text()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

struct Fixture {
    state: AppState,
    room: RoomId,
    user: UserPublic,
    session: SessionId,
    _dir: tempfile::TempDir,
}

async fn fixture(room_buffer: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.room_buffer = room_buffer;
    let state = confab_origin::startup::build_state(config, "http://127.0.0.1:1")
        .await
        .unwrap()
        .state;
    let user = state
        .store
        .create_user(NewUser {
            id: UserId(Uuid::now_v7()),
            username: "ann".into(),
            username_folded: "ann".into(),
            email: "ann@example.com".into(),
            email_folded: "ann@example.com".into(),
            password_hash: "unused".into(),
            created_at: 1,
        })
        .await
        .unwrap()
        .public();
    let session = SessionId(Uuid::now_v7());
    state
        .store
        .create_session(session, user.id, b"refresh", i64::MAX, 1)
        .await
        .unwrap();
    let room = RoomId(Uuid::now_v7());
    state
        .store
        .create_room(RoomRecord {
            id: room,
            name: "general".into(),
            kind: confab_shared::conversation::RoomKind::Room,
            visibility: confab_shared::conversation::Visibility::Public,
            topic: None,
            created_by: user.id,
            created_at: 1,
        })
        .await
        .unwrap();
    Fixture {
        state,
        room,
        user,
        session,
        _dir: dir,
    }
}

/// Starts a session whose outbound channel holds `outbound` frames before writes block.
fn connect(f: &Fixture, outbound: usize) -> (Client, tokio::task::JoinHandle<()>) {
    let (tx, inbound) = mpsc::channel(16);
    let (out, rx) = mpsc::channel(outbound);
    let auth = AuthUser {
        id: f.user.id,
        session: f.session,
        username: f.user.username.clone(),
        access: Default::default(),
    };
    let task = tokio::spawn(Session::run(
        f.state.clone(),
        auth,
        FakeSocket {
            inbound,
            outbound: out,
        },
    ));
    (Client { tx, rx }, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_speaks_the_protocol_over_any_transport() {
    let f = fixture(256).await;
    let (mut c, task) = connect(&f, 64);
    assert!(matches!(c.next().await, ServerFrame::Ready { .. }));
    c.send(serde_json::json!({"type": "subscribe", "room": f.room}))
        .await;
    assert!(matches!(
        c.next().await,
        ServerFrame::Subscribed { last_seq: 0, .. }
    ));
    c.send(
        serde_json::json!({"type": "send", "room": f.room, "client_msg_id": "c1", "body": "hi"}),
    )
    .await;
    let mut got = Vec::new();
    while got.len() < 2 {
        match c.next().await {
            f @ (ServerFrame::Entry(_) | ServerFrame::Ack { .. }) => got.push(f),
            ServerFrame::Presence { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(got
        .iter()
        .any(|f| matches!(f, ServerFrame::Entry(RoomEvent::Message(m)) if m.body == "hi")));
    assert!(got
        .iter()
        .any(|f| matches!(f, ServerFrame::Ack { seq: 1, .. })));
    c.send(serde_json::json!({"type": "ping"})).await;
    assert!(matches!(c.next().await, ServerFrame::Pong));
    drop(c);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the session ends when its transport does")
        .unwrap();
    let (rooms, users) = f.state.hub.sizes();
    assert_eq!((rooms, users), (0, 0), "it left the hub");
}

/// The client stops reading: the session blocks on its write, its mailbox fills up to the room
/// buffer, and the rest is not queued but noted; once the client reads again it gets what
/// fitted, then `resync`, and recovering with `after_seq` gives everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_resynced_not_buffered() {
    let f = fixture(4).await;
    let (mut c, _task) = connect(&f, 1);
    assert!(matches!(c.next().await, ServerFrame::Ready { .. }));
    c.send(serde_json::json!({"type": "subscribe", "room": f.room}))
        .await;
    assert!(matches!(c.next().await, ServerFrame::Subscribed { .. }));
    // Twenty entries while the client reads nothing (the hub delivers them at once).
    for seq in 1..=20 {
        let entry = RoomEvent::Edited(MessageEdited {
            room: f.room,
            seq,
            id: MessageId(Uuid::nil()),
            body: format!("entry {seq}"),
            edited_at: seq,
        });
        f.state.hub.deliver(f.room, entry_delivery(&entry));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut seqs = Vec::new();
    loop {
        match c.next().await {
            ServerFrame::Entry(e) => seqs.push(e.seq()),
            ServerFrame::Resync { room } => {
                assert_eq!(room, f.room);
                break;
            }
            ServerFrame::Presence { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(
        seqs.len() < 20 && seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, and not everything was buffered: {seqs:?}"
    );
    // The room is unsubscribed: further entries do not reach it until it resubscribes.
    let posted = f
        .state
        .broker
        .append(Change::post(
            f.room,
            f.user.clone(),
            ClientMsgId::parse("late").unwrap(),
            MessageBody::parse("after the resync").unwrap(),
            None,
        ))
        .await
        .unwrap();
    c.send(serde_json::json!({"type": "subscribe", "room": f.room, "after_seq": 0}))
        .await;
    loop {
        match c.next().await {
            ServerFrame::Entry(RoomEvent::Message(m)) => assert_eq!(m.seq, posted.seq),
            ServerFrame::Subscribed {
                recovered,
                last_seq,
                ..
            } => {
                assert!(recovered);
                assert_eq!(last_seq, posted.seq);
                break;
            }
            ServerFrame::Presence { .. } | ServerFrame::Activity { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

//! Test harness: the real server on 127.0.0.1:0 with a fresh data directory, real HTTP
//! clients with cookie jars, and real WebSocket clients.
#![allow(dead_code, clippy::unwrap_used)]

use confab_origin::{Application, Config};
use confab_shared::api::{Me, Room};
use confab_shared::claims::ACCESS_COOKIE;
use confab_shared::events::RoomEvent;
use confab_shared::protocol::ServerFrame;
use futures::{SinkExt, StreamExt};
use reqwest::cookie::CookieStore;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub dir: Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server with the defaults and a fresh data directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `tweak` adjusts the test configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_in(dir, tweak).await
    }

    /// Starts a server on an existing data directory.
    pub async fn start_in(dir: Arc<tempfile::TempDir>, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_tests(dir.path());
        tweak(&mut config);
        let app = Application::build(config).await.unwrap();
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        Self {
            addr,
            base: format!("http://{addr}"),
            dir,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Sends the stop signal without waiting.
    pub fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Stops gracefully and waits until the server has finished.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .expect("server stops in time")
                .unwrap()
                .unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn register(&self, name: &str) -> Client {
        Client::register(self, name).await
    }
}

/// A user with a cookie jar.
pub struct Client {
    pub http: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    pub base: String,
    pub addr: SocketAddr,
    pub me: Me,
}

pub fn password() -> &'static str {
    "correct horse battery"
}

impl Client {
    /// A fresh cookie jar and HTTP client.
    fn fresh() -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        (http, jar)
    }

    pub fn anonymous(_server: &TestServer) -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
        Self::fresh()
    }

    /// Registers `name` at `base` (`http://IP:PORT`: a server, an instance or a load balancer).
    pub async fn register_at(base: &str, name: &str) -> Self {
        let (http, jar) = Self::fresh();
        let res = http
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password()}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            201,
            "register {name}: {}",
            res.text().await.unwrap()
        );
        let me: Me = res.json().await.unwrap();
        Self::at(http, jar, base, me)
    }

    /// Logs `login` in at `base`, as a new client (a second device).
    pub async fn login_at(base: &str, login: &str) -> Self {
        let (http, jar) = Self::fresh();
        let res = http
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"login": login, "password": password()}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let me: Me = res.json().await.unwrap();
        Self::at(http, jar, base, me)
    }

    fn at(http: reqwest::Client, jar: Arc<reqwest::cookie::Jar>, base: &str, me: Me) -> Self {
        let addr = base.trim_start_matches("http://").parse().unwrap();
        Self {
            http,
            jar,
            base: base.into(),
            addr,
            me,
        }
    }

    /// The same user's cookies, pointed at another server (another instance).
    pub fn via(&self, base: &str) -> Self {
        Self::at(self.http.clone(), self.jar.clone(), base, self.me.clone())
    }

    pub async fn register(server: &TestServer, name: &str) -> Self {
        Self::register_at(&server.base, name).await
    }

    /// The same user, logged in again as a new client (a second device).
    pub async fn login_again(&self, server: &TestServer) -> Self {
        Self::login_at(&server.base, &self.me.username).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The Cookie header this client would send to `path`.
    pub fn cookie_header(&self, path: &str) -> String {
        let url = reqwest::Url::parse(&self.url(path)).unwrap();
        self.jar
            .cookies(&url)
            .map(|h| h.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    pub fn access_token(&self) -> String {
        self.cookie_header("/")
            .split("; ")
            .find_map(|kv| kv.strip_prefix(&format!("{ACCESS_COOKIE}=")))
            .unwrap()
            .to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .put(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .patch(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.http.delete(self.url(path)).send().await.unwrap()
    }

    /// Creates a private room.
    pub async fn create_private_room(&self, name: &str) -> Room {
        let res = self
            .post("/api/rooms", json!({"name": name, "visibility": "private"}))
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    pub async fn create_room(&self, name: &str) -> Room {
        let res = self.post("/api/rooms", json!({"name": name})).await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    pub async fn join(&self, room: &Room) {
        let res = self
            .post(&format!("/api/rooms/{}/join", room.id), json!({}))
            .await;
        assert_eq!(res.status(), 200);
    }

    pub async fn ws(&self) -> Ws {
        self.ws_with_origin(None).await.unwrap()
    }

    pub async fn ws_with_origin(
        &self,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("cookie", self.cookie_header("/").parse().unwrap());
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await?;
        let mut ws = Ws { stream };
        let ready = ws.next().await;
        assert!(matches!(ready, ServerFrame::Ready { .. }), "{ready:?}");
        Ok(ws)
    }
}

/// A WebSocket client speaking JSON frames.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, text: String) {
        self.stream.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next server frame, within [`WAIT`].
    pub async fn next(&mut self) -> ServerFrame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a frame arrives in time")
                .expect("the socket is open")
                .expect("the socket works");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Skips frames until one matches.
    pub async fn expect(&mut self, mut pred: impl FnMut(&ServerFrame) -> bool) -> ServerFrame {
        loop {
            let f = self.next().await;
            if pred(&f) {
                return f;
            }
        }
    }

    /// Waits for the server to close the socket; returns the close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("the socket closes in time");
            match msg {
                Some(Ok(Message::Close(frame))) => return frame,
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Asserts nothing but pings arrives for `d`.
    pub async fn quiet_for(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    pub async fn subscribe(&mut self, room: &Room, after_seq: Option<i64>) -> ServerFrame {
        let mut frame = json!({"type": "subscribe", "room": room.id});
        if let Some(s) = after_seq {
            frame["after_seq"] = json!(s);
        }
        self.send(frame).await;
        self.expect(|f| matches!(f, ServerFrame::Subscribed { .. }))
            .await
    }

    /// Sends a message and waits for its ack; returns (id, seq).
    pub async fn say(&mut self, room: &Room, id: &str, body: &str) -> (String, i64) {
        self.send(json!({"type": "send", "room": room.id, "client_msg_id": id, "body": body}))
            .await;
        match self
            .expect(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
            .await
        {
            ServerFrame::Ack { id, seq, .. } => (id.to_string(), seq),
            other => panic!("send {id} failed: {other:?}"),
        }
    }

    /// Sends `edit` or `delete` (or any frame with a `ref`) and waits for the ack or error
    /// answering that `ref`.
    pub async fn change(&mut self, frame: Value) -> ServerFrame {
        let reference = frame["ref"].as_str().unwrap().to_owned();
        self.send(frame).await;
        self.expect(|f| match f {
            ServerFrame::Ack { reference: r, .. } => r.as_str() == reference,
            ServerFrame::Error { reference: r, .. } => r.as_deref() == Some(reference.as_str()),
            _ => false,
        })
        .await
    }

    /// Edits a message; the ack or error.
    pub async fn edit(&mut self, room: &Room, id: &str, body: &str, r: &str) -> ServerFrame {
        self.change(json!({"type": "edit", "room": room.id, "id": id, "body": body, "ref": r}))
            .await
    }

    /// Deletes a message; the ack or error.
    pub async fn delete(&mut self, room: &Room, id: &str, r: &str) -> ServerFrame {
        self.change(json!({"type": "delete", "room": room.id, "id": id, "ref": r}))
            .await
    }

    /// Subscribes with `after_seq` and collects the replayed entries up to `subscribed`:
    /// (entries, last_seq, recovered).
    pub async fn recover(&mut self, room: &Room, after_seq: i64) -> (Vec<RoomEvent>, i64, bool) {
        self.send(json!({"type": "subscribe", "room": room.id, "after_seq": after_seq}))
            .await;
        let mut entries = Vec::new();
        loop {
            match self.next().await {
                ServerFrame::Entry(e) => entries.push(e),
                ServerFrame::Subscribed {
                    last_seq,
                    recovered,
                    ..
                } => return (entries, last_seq, recovered),
                _ => {}
            }
        }
    }
}

//! `cargo run --release -- [connections] [frames]` — compares, on loopback TCP inside one
//! process, Confab's WebSocket layer (tokio-tungstenite 0.29, the buffer sizes of
//! `origin/src/gateway/upgrade.rs`) with yawc 0.5 without and with permessage-deflate
//! (RFC 7692; no context takeover both ways, one shared deflate pool, so an idle connection
//! keeps no deflate state):
//!
//! - heap bytes held per idle server-side connection, after it wrote a `ready`-sized frame
//!   and read one client frame (a counting global allocator: exact live bytes);
//! - one server connection writing `frames` chat `message` frames to one client reading them:
//!   frames per process CPU second (server + client in this process) and bytes on the wire
//!   per frame (counted under the client's TCP stream).
//!
//! Prints one JSON object.

use futures::{SinkExt, StreamExt};
use std::alloc::{GlobalAlloc, Layout, System};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call goes to the system allocator unchanged; this only counts bytes. (The
// workspace forbids unsafe code; this crate is outside it, and this is its only unsafe.)
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as i64 - l.size() as i64, Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// A Confab `message` frame as the fan-out sends it (shape of `ServerFrame::Entry`).
fn message_frame(i: u64) -> String {
    serde_json::json!({
        "type": "message", "id": format!("0193a6f2-7c1e-7b55-9d3a-{:012x}", i),
        "room": "0193a6f0-11aa-7c3d-8e21-5f6a7b8c9d0e", "seq": 1000 + i,
        "author": {"id": "0193a6ef-2b3c-7d4e-9f50-61728394a5b6", "username": format!("user{}", i % 97)},
        "body": format!("lg {} {} hello everyone, see you at the standup", i % 97, 1_764_600_000_000_000u64 + i * 1_000_003),
        "client_msg_id": format!("m{i}"), "attachment": null,
        "created_at": 1_764_600_000_000u64 + i, "edited_at": null
    })
    .to_string()
}

const READY: &str = r#"{"type":"ready","user":{"id":"0193a6ef-2b3c-7d4e-9f50-61728394a5b6","username":"user17"},"idle_timeout_ms":60000}"#;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Tungstenite,
    Yawc,
    YawcDeflate,
    /// Context takeover both ways: each connection keeps its own deflate state.
    YawcDeflateTakeover,
}

fn yawc_options(kind: Kind, pool: &yawc::DeflatePool) -> yawc::Options {
    let o = yawc::Options::default()
        .with_read_buffer_capacity(1024)
        .with_write_buffer_capacity(1024)
        .with_max_payload_read(64 * 1024);
    match kind {
        Kind::YawcDeflate => o
            .with_low_latency_compression()
            .server_no_context_takeover()
            .client_no_context_takeover()
            .with_deflate_pool(pool.clone())
            .with_compression_threshold(64),
        Kind::YawcDeflateTakeover => o
            .with_low_latency_compression()
            .with_compression_threshold(64),
        _ => o,
    }
}

const EXT: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
const EXT_TAKEOVER: &str = "permessage-deflate";

fn extensions(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::YawcDeflate => Some(EXT),
        Kind::YawcDeflateTakeover => Some(EXT_TAKEOVER),
        _ => None,
    }
}

enum Server {
    T(tokio_tungstenite::WebSocketStream<TcpStream>),
    Y(yawc::WebSocket<TcpStream>),
}

impl Server {
    async fn new(kind: Kind, s: TcpStream, pool: &yawc::DeflatePool) -> Self {
        match kind {
            Kind::Tungstenite => {
                let c = WebSocketConfig::default()
                    .read_buffer_size(1024)
                    .write_buffer_size(8192);
                Server::T(
                    tokio_tungstenite::WebSocketStream::from_raw_socket(s, Role::Server, Some(c))
                        .await,
                )
            }
            _ => {
                let ext = extensions(kind);
                let ws = yawc::WebSocket::from_stream_with_extensions(
                    s,
                    yawc::Role::Server,
                    ext,
                    yawc_options(kind, pool),
                )
                .expect("yawc server");
                Server::Y(ws)
            }
        }
    }

    async fn send(&mut self, text: String, flush: bool) {
        match self {
            Server::T(ws) => {
                if flush {
                    ws.send(Message::Text(text.into())).await.expect("send")
                } else {
                    ws.feed(Message::Text(text.into())).await.expect("feed")
                }
            }
            Server::Y(ws) => {
                if flush {
                    ws.send(yawc::Frame::text(text)).await.expect("send")
                } else {
                    ws.feed(yawc::Frame::text(text)).await.expect("feed")
                }
            }
        }
    }

    async fn flush(&mut self) {
        match self {
            Server::T(ws) => ws.flush().await.expect("flush"),
            Server::Y(ws) => ws.flush().await.expect("flush"),
        }
    }

    async fn recv(&mut self) -> usize {
        match self {
            Server::T(ws) => match ws.next().await {
                Some(Ok(m)) => m.len(),
                other => panic!("{other:?}"),
            },
            Server::Y(ws) => match ws.next().await {
                Some(f) => f.payload().len(),
                None => panic!("closed"),
            },
        }
    }
}

/// A masked client text frame, as a browser sends `{"type":"ping"}`.
fn client_ping() -> Vec<u8> {
    let payload = br#"{"type":"ping"}"#;
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

async fn pair(l: &TcpListener) -> (TcpStream, TcpStream) {
    let addr = l.local_addr().expect("addr");
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    (c.expect("connect"), s.expect("accept").0)
}

async fn idle_bytes(kind: Kind, n: usize) -> f64 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pool = yawc::DeflatePool::new(4);
    let mut held = Vec::with_capacity(n);
    let ping = client_ping();
    let mut buf = vec![0u8; 4096];
    // Streams and the vector first, so only the WebSocket layer is counted.
    let mut raw = Vec::with_capacity(n);
    for _ in 0..n {
        raw.push(pair(&l).await);
    }
    let before = LIVE.load(Relaxed);
    for (mut client, server) in raw {
        let mut ws = Server::new(kind, server, &pool).await;
        ws.send(READY.to_string(), true).await;
        let _ = client.read(&mut buf).await.expect("read ready");
        client.write_all(&ping).await.expect("ping");
        ws.recv().await;
        held.push((client, ws));
    }
    let after = LIVE.load(Relaxed);
    drop(held);
    (after - before) as f64 / n as f64
}

/// Counts bytes read under the client.
struct Counted<S>(S, Arc<AtomicU64>);
impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = b.filled().len();
        let r = Pin::new(&mut self.0).poll_read(cx, b);
        self.1
            .fetch_add((b.filled().len() - before) as u64, Relaxed);
        r
    }
}
impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .expect("fields")
        .split_whitespace()
        .collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

async fn throughput(kind: Kind, frames: u64) -> serde_json::Value {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pool = yawc::DeflatePool::new(4);
    let (client, server) = pair(&l).await;
    let wire = Arc::new(AtomicU64::new(0));
    let client = Counted(client, wire.clone());
    let texts: Vec<String> = (0..256).map(message_frame).collect();
    let payload: u64 = (0..frames)
        .map(|i| texts[(i % 256) as usize].len() as u64)
        .sum();
    let reader = tokio::spawn(async move {
        let mut got = 0u64;
        match kind {
            Kind::Tungstenite => {
                let mut ws =
                    tokio_tungstenite::WebSocketStream::from_raw_socket(client, Role::Client, None)
                        .await;
                while got < frames {
                    match ws.next().await {
                        Some(Ok(Message::Text(_))) => got += 1,
                        other => panic!("{other:?}"),
                    }
                }
            }
            _ => {
                let ext = extensions(kind);
                let mut ws = yawc::WebSocket::from_stream_with_extensions(
                    client,
                    yawc::Role::Client,
                    ext,
                    yawc_options(kind, &yawc::DeflatePool::new(1)),
                )
                .expect("client");
                while got < frames {
                    match ws.next().await {
                        Some(f) if f.opcode() == yawc::OpCode::Text => got += 1,
                        other => panic!("{:?}", other.map(|f| f.opcode())),
                    }
                }
            }
        }
    });
    let mut ws = Server::new(kind, server, &pool).await;
    let cpu0 = cpu_seconds();
    let t0 = std::time::Instant::now();
    // Bursts of 8 frames, one flush each (as the session writes a burst of mail).
    for i in 0..frames {
        ws.send(texts[(i % 256) as usize].clone(), false).await;
        if i % 8 == 7 {
            ws.flush().await;
        }
    }
    ws.flush().await;
    reader.await.expect("reader");
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    serde_json::json!({
        "frames": frames,
        "wall_s": (secs * 1000.0).round() / 1000.0,
        "cpu_s": cpu,
        "frames_per_cpu_second": (frames as f64 / cpu.max(0.01)).round(),
        "payload_bytes_per_frame": (payload as f64 / frames as f64).round(),
        "wire_bytes_per_frame": ((wire.load(Relaxed) as f64 / frames as f64) * 10.0).round() / 10.0,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let frames: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let mut out = serde_json::Map::new();
    for kind in [
        Kind::Tungstenite,
        Kind::Yawc,
        Kind::YawcDeflate,
        Kind::YawcDeflateTakeover,
    ] {
        let idle = idle_bytes(kind, n).await;
        let t = throughput(kind, frames).await;
        out.insert(
            format!("{kind:?}"),
            serde_json::json!({
                "idle_connections": n,
                "heap_bytes_per_idle_server_connection": idle.round(),
                "throughput": t,
            }),
        );
    }
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}

//! `confab-loadgen`: drives a Confab deployment with thousands of real WebSocket clients, for
//! what k6 cannot do on one small machine (10,000+ concurrent connections).
//!
//! Scenario (the same as `k6/chat.js`): USERS users register, are grouped into rooms of
//! ROOM_SIZE, connect to `/ws`, subscribe to their room (from the seq they have, as a real client
//! does: a subscription that lands after the room's first sends recovers them, as after a
//! `resync`; each entry is counted once, by its seq), and each sends a message every
//! INTERVAL_MS for DURATION. Every receipt by another member is timed from the send (the body
//! carries the send time), into an HDR histogram. Results: connect-time and delivery-latency
//! percentiles, delivered/expected ratio, session success, errors, as JSON.
//!
//! Connections are spread over several source addresses (127.0.0.x) so ephemeral ports do not
//! run out, and the file-descriptor limit is raised to the hard limit (20,000 here): one process
//! holds up to about 19,000 connections. `--processes N` runs N processes over disjoint ranges of
//! the users (whole rooms each, so every message stays inside one process), each with its own
//! file-descriptor budget, started together once all have registered their users; their results
//! are merged exactly (the HDR histograms added, not percentiles averaged).
//!
//! `--report-every SECS` prints one JSON line per interval of the sending phase (that interval's
//! delivery percentiles and counts) and compares the first and last windows in the results: what
//! a soak run needs to see a slow drift.

use anyhow::{anyhow, bail, ensure, Context};
use base64::Engine as _;
use clap::Parser;
use confab_shared::events::RoomEvent;
use confab_shared::protocol::ServerFrame;
use confab_ws::Message;
use futures::{SinkExt, StreamExt};
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpSocket;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Parser)]
#[command(name = "confab-loadgen", version, about)]
struct Args {
    /// The deployment (load balancer or instance).
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:18080")]
    base_url: String,
    /// Concurrent users.
    #[arg(long, env = "USERS", default_value_t = 1000)]
    users: usize,
    /// Users per room.
    #[arg(long, env = "ROOM_SIZE", default_value_t = 10)]
    room_size: usize,
    /// Each user sends one message this often, in milliseconds (0: connect and stay idle).
    #[arg(long, env = "INTERVAL_MS", default_value_t = 1000)]
    interval_ms: u64,
    /// How long the sending phase lasts, in seconds.
    #[arg(long, env = "DURATION", default_value_t = 30)]
    duration: u64,
    /// Spread the connections over this many seconds.
    #[arg(long, default_value_t = 10)]
    ramp_secs: u64,
    /// Source addresses for the connections, comma-separated (all of 127.0.0.0/8 is loopback).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4"
    )]
    source_ips: Vec<IpAddr>,
    /// HTTP requests in flight while registering users and rooms.
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// Write the JSON results here as well as to stdout.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Password for the generated users.
    #[arg(long, default_value = "loadgen-password")]
    password: String,
    /// Run as this many processes, each with its own file-descriptor budget, over disjoint
    /// ranges of the users (whole rooms each); their results are merged exactly.
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// With --processes: process i uses the (i mod n)-th of these URLs as its base URL (e.g.
    /// the origin instances directly, when one load balancer cannot hold every connection).
    #[arg(long, value_delimiter = ',')]
    spread_over: Vec<String>,
    /// Set by --processes for each process it starts: this one's share of the users, "i/N".
    #[arg(long, hide = true, value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Set by --processes: the run id its processes share (user and room names).
    #[arg(long, hide = true)]
    run_id: Option<String>,
    /// Print one JSON line per this many seconds of the sending phase: that interval's delivery
    /// percentiles and counts.
    #[arg(long)]
    report_every: Option<u64>,
    /// Where the interval lines go (default: stderr).
    #[arg(long)]
    report_out: Option<std::path::PathBuf>,
    /// With --report-every: the results compare the first and the last this many seconds of the
    /// sending phase (whole intervals, at most a third of the phase each).
    #[arg(long, default_value_t = 300)]
    window_secs: u64,
    /// Offer permessage-deflate (RFC 7692) on every connection; the results say how many
    /// sessions the server agreed it with and the bytes received per frame.
    #[arg(long)]
    deflate: bool,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("expected i/N")?;
    let (i, n) = (
        i.parse::<usize>().map_err(|e| e.to_string())?,
        n.parse::<usize>().map_err(|e| e.to_string())?,
    );
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need i < N"));
    }
    Ok((i, n))
}

/// The users shard `i` of `n` drives: whole rooms, as evenly as the rooms allow.
fn shard_users(users: usize, room_size: usize, shard: Option<(usize, usize)>) -> Range<usize> {
    let Some((i, n)) = shard else {
        return 0..users;
    };
    let room_size = room_size.max(1);
    let rooms = users.div_ceil(room_size);
    let first = rooms * i / n;
    let last = rooms * (i + 1) / n;
    (first * room_size).min(users)..(last * room_size).min(users)
}

/// Nanoseconds since the start of the run: the clock every client shares.
fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
    resyncs: AtomicU64,
    /// Sessions that agreed permessage-deflate.
    deflated: AtomicU64,
    /// Messages received, and the bytes they took on the wire (headers included).
    frames_in: AtomicU64,
    wire_bytes_in: AtomicU64,
}

impl Counters {
    /// Whether every message sent was acknowledged and delivered to the room's other members.
    fn all_delivered(&self, room_size: usize) -> bool {
        let acked = self.acked.load(Relaxed);
        acked >= self.sent.load(Relaxed)
            && self.delivered.load(Relaxed) >= acked * (room_size as u64).saturating_sub(1)
    }
}

/// The longest a client waits after the end for what is still on its way.
const DRAIN_CAP: Duration = Duration::from_secs(10);

struct Shared {
    counters: Counters,
    /// Delivery latency in microseconds.
    latency: Mutex<Histogram<u64>>,
    /// Connect time (TCP + upgrade + ready) in microseconds.
    connect: Mutex<Histogram<u64>>,
}

/// 1 µs to 10 minutes, 3 significant figures (values above saturate).
fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant, valid bounds")
}

fn record(h: &Mutex<Histogram<u64>>, micros: u64) {
    if let Ok(mut h) = h.lock() {
        h.saturating_record(micros.max(1));
    }
}

struct User {
    cookie: String,
    room: String,
}

/// Registers a user (the target must run with CONFAB_REGISTRATION=open, as scripts/cluster and
/// scripts/bench start it).
async fn register(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<String> {
    let res = http
        .post(format!("{base}/api/auth/register"))
        .json(&serde_json::json!({"username": name, "email": format!("{name}@load.test"), "password": password}))
        .send()
        .await?;
    if res.status() != 201 {
        bail!(
            "register {name}: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        );
    }
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("confab_access="))
        .and_then(|c| c.split(';').next())
        .context("no access cookie")?
        .to_owned();
    Ok(cookie)
}

/// Registers the users of `range` (whole rooms), creates their rooms, and joins each user to
/// theirs. Names carry the global index, so processes sharing a run id never collide.
async fn setup(args: &Args, run: &str, range: Range<usize>) -> anyhow::Result<Vec<User>> {
    let http = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let started = Instant::now();
    let users = range.len();
    let first_room = range.start / args.room_size.max(1);
    let mut tasks = Vec::with_capacity(users);
    for i in range {
        let (http, gate, base, pw) = (
            http.clone(),
            gate.clone(),
            args.base_url.clone(),
            args.password.clone(),
        );
        let name = format!("lg{run}u{i}");
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            register(&http, &base, &name, &pw).await
        }));
    }
    let mut cookies = Vec::with_capacity(users);
    for t in tasks {
        cookies.push(t.await??);
    }
    eprintln!("registered {users} users in {:.1?}", started.elapsed());
    let rooms = users.div_ceil(args.room_size.max(1));
    let mut room_ids = Vec::with_capacity(rooms);
    for r in 0..rooms {
        let owner = &cookies[r * args.room_size];
        let res = http
            .post(format!("{}/api/rooms", args.base_url))
            .header("cookie", owner)
            .json(&serde_json::json!({"name": format!("lg{run}r{}", first_room + r)}))
            .send()
            .await?;
        if res.status() != 201 {
            bail!("create room: {}", res.status());
        }
        let room: serde_json::Value = res.json().await?;
        room_ids.push(room["id"].as_str().context("room id")?.to_owned());
    }
    let mut joins = Vec::new();
    for (i, cookie) in cookies.iter().enumerate() {
        if i % args.room_size == 0 {
            continue;
        }
        let (http, gate, base) = (http.clone(), gate.clone(), args.base_url.clone());
        let (cookie, room) = (cookie.clone(), room_ids[i / args.room_size].clone());
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let res = http
                .post(format!("{base}/api/rooms/{room}/join"))
                .header("cookie", cookie)
                .send()
                .await?;
            anyhow::ensure!(res.status() == 200, "join: {}", res.status());
            anyhow::Ok(())
        }));
    }
    for j in joins {
        j.await??;
    }
    eprintln!("{rooms} rooms ready after {:.1?}", started.elapsed());
    Ok(cookies
        .into_iter()
        .enumerate()
        .map(|(i, cookie)| User {
            cookie,
            room: room_ids[i / args.room_size].clone(),
        })
        .collect())
}

/// One client: connect, subscribe, send on a timer, time every receipt, until `until`.
/// When a client connects, when everyone starts sending (after all have connected), and when
/// the sending stops.
#[derive(Clone, Copy)]
struct Schedule {
    connect_at: Instant,
    send_from: Instant,
    until: Instant,
}

async fn client(args: Arc<Args>, shared: Arc<Shared>, me: usize, user: User, at: Schedule) -> bool {
    let (start_at, until) = (at.connect_at, at.until);
    tokio::time::sleep_until(start_at.into()).await;
    let c = &shared.counters;
    let connected = connect(&args, me, &user).await;
    let (mut ws, connect_time) = match connected {
        Ok(x) => x,
        Err(e) => {
            if c.failed.fetch_add(1, Relaxed) < 5 {
                eprintln!("user {me}: {e:#}");
            }
            return false;
        }
    };
    record(&shared.connect, connect_time.as_micros() as u64);
    c.connected.fetch_add(1, Relaxed);
    if ws.compresses() {
        c.deflated.fetch_add(1, Relaxed);
    }
    let mut frames_in = 1u64; // `ready`
                              // As a client that keeps its place: subscribed from seq 0 (the run's rooms are new), so a
                              // client whose subscription lands after its room's first sends gets them by recovery, as it
                              // does after a `resync`; each entry is counted once, by its seq.
    let mut rx = Receiver {
        me,
        room: user.room.clone(),
        last_seq: 0,
    };
    if ws.send(rx.subscribe()).await.is_err() {
        c.dropped.fetch_add(1, Relaxed);
        return false;
    }
    let me_tag = format!("lg {me} ");
    let interval = Duration::from_millis(args.interval_ms.max(1));
    // Start sending at a random point of the first interval so sends spread evenly.
    let first = at.send_from
        + Duration::from_millis(rand::thread_rng().gen_range(0..args.interval_ms.max(1)));
    let mut ticker = tokio::time::interval_at(first.into(), interval);
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    let deadline = tokio::time::sleep_until(until.into());
    tokio::pin!(deadline);
    let mut n = 0u64;
    let ok = loop {
        tokio::select! {
            _ = &mut deadline => break true,
            _ = ticker.tick(), if args.interval_ms > 0 => {
                n += 1;
                let frame = serde_json::json!({
                    "type": "send", "room": user.room, "client_msg_id": format!("m{n}"),
                    "body": format!("{me_tag}{}", now_ns()),
                });
                if ws.send(Message::Text(frame.to_string().into())).await.is_err() {
                    break false;
                }
                c.sent.fetch_add(1, Relaxed);
            }
            _ = ping.tick() => {
                if ws.send(Message::Text(r#"{"type":"ping"}"#.into())).await.is_err() {
                    break false;
                }
            }
            msg = ws.next() => match msg.inspect(|_| frames_in += 1) {
                Some(Ok(Message::Text(t))) => {
                    if rx.receive(&t, &shared) && ws.send(rx.subscribe()).await.is_err() {
                        break false;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break false,
                Some(Ok(_)) => {}
            },
        }
    };
    if !ok {
        c.dropped.fetch_add(1, Relaxed);
    }
    // Drain, so that messages sent just before the end are counted: until every message this
    // process sent is acknowledged and delivered to all the others in its room, or for at most
    // DRAIN_CAP (a session that failed never gets its deliveries); then close.
    let grace = tokio::time::sleep(DRAIN_CAP);
    tokio::pin!(grace);
    let mut check = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = &mut grace => break,
            _ = check.tick() => if c.all_delivered(args.room_size) { break },
            msg = ws.next() => match msg.inspect(|_| frames_in += 1) {
                Some(Ok(Message::Text(t))) => {
                    if rx.receive(&t, &shared) && ws.send(rx.subscribe()).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    }
    let _ = ws.send(Message::Close(None)).await;
    c.frames_in.fetch_add(frames_in, Relaxed);
    c.wire_bytes_in.fetch_add(ws.get_ref().bytes_in, Relaxed);
    ok
}

/// What one client has received of its room.
struct Receiver {
    me: usize,
    room: String,
    /// The last seq of the room this client has.
    last_seq: i64,
}

impl Receiver {
    /// The room's subscription, from the last seq this client has.
    fn subscribe(&self) -> Message {
        let frame =
            serde_json::json!({"type": "subscribe", "room": self.room, "after_seq": self.last_seq});
        Message::Text(frame.to_string().into())
    }

    /// Counts one frame; true when the room must be subscribed again (`resync`).
    fn receive(&mut self, text: &str, shared: &Shared) -> bool {
        let c = &shared.counters;
        match serde_json::from_str::<ServerFrame>(text) {
            Ok(ServerFrame::Entry(event)) => {
                // Recovery and the live stream may both carry an entry: count it once.
                if event.seq() <= self.last_seq {
                    return false;
                }
                self.last_seq = event.seq();
                if let RoomEvent::Message(m) = event {
                    let tagged = m.body.strip_prefix("lg ").and_then(|r| r.split_once(' '));
                    if let Some((from, sent)) = tagged {
                        if let (Ok(from), Ok(sent)) = (from.parse::<usize>(), sent.parse::<u64>()) {
                            if from != self.me {
                                c.delivered.fetch_add(1, Relaxed);
                                record(&shared.latency, now_ns().saturating_sub(sent) / 1000);
                            }
                        }
                    }
                }
            }
            Ok(ServerFrame::Ack { .. }) => {
                c.acked.fetch_add(1, Relaxed);
            }
            Ok(ServerFrame::Error { .. }) => {
                c.errors.fetch_add(1, Relaxed);
            }
            Ok(ServerFrame::Resync { .. }) => {
                c.resyncs.fetch_add(1, Relaxed);
                return true;
            }
            _ => {}
        }
        false
    }
}

type Ws = confab_ws::WebSocket<Counted>;

/// A TCP stream that counts the bytes it reads.
struct Counted {
    inner: TcpStream,
    bytes_in: u64,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.bytes_in += (buf.filled().len() - before) as u64;
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn connect(args: &Args, me: usize, user: &User) -> anyhow::Result<(Ws, Duration)> {
    let url = url::Url::parse(&args.base_url)?;
    let host = url.host_str().context("host")?;
    let port = url.port_or_known_default().context("port")?;
    let target: SocketAddr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .context("address")?;
    let started = Instant::now();
    let source = args.source_ips[me % args.source_ips.len()];
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    let options = confab_ws::Options {
        deflate: args.deflate,
        ..confab_ws::Options::new(confab_ws::Role::Client)
    };
    let stream = Counted {
        inner: stream,
        bytes_in: 0,
    };
    let authority = format!("{host}:{port}");
    let headers = [("Cookie", user.cookie.as_str())];
    let mut ws =
        confab_ws::handshake::connect(stream, &authority, "/ws", &headers, options).await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("\"ready\"") => Ok((ws, started.elapsed())),
        other => bail!("no ready frame: {other:?}"),
    }
}

#[derive(Serialize, Deserialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    count: u64,
}

fn percentiles_of(h: &Histogram<u64>) -> Percentiles {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Percentiles {
        p50: ms(0.5),
        p90: ms(0.9),
        p99: ms(0.99),
        p999: ms(0.999),
        max: h.max() as f64 / 1000.0,
        count: h.len(),
    }
}

/// A histogram as text for the results: HDR V2 + DEFLATE, base64 (any HdrHistogram
/// implementation reads it).
fn encode(h: &Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn decode(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
}

#[derive(Serialize, Deserialize)]
struct Results {
    base_url: String,
    users: usize,
    room_size: usize,
    interval_ms: u64,
    duration_s: u64,
    processes: usize,
    sessions_ok: u64,
    sessions_failed: u64,
    session_success_ratio: f64,
    connect_ms: Percentiles,
    delivery_ms: Percentiles,
    sent: u64,
    acked: u64,
    delivered: u64,
    expected: u64,
    delivered_ratio: f64,
    errors: u64,
    resyncs: u64,
    /// Sessions that agreed permessage-deflate (with --deflate).
    #[serde(default)]
    deflate_sessions: u64,
    /// Messages received by every session, the bytes they took on the wire (frame headers
    /// included, the handshake's response too), and the mean per message.
    #[serde(default)]
    frames_in: u64,
    #[serde(default)]
    wire_bytes_in: u64,
    #[serde(default)]
    wire_bytes_per_frame_in: f64,
    /// With --report-every: the first and the last window of the sending phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    windows: Option<Windows>,
    /// Delivery latency in µs (see `encode`): what merging processes adds up.
    delivery_histogram: String,
    /// Connect time in µs.
    connect_histogram: String,
}

/// A mean, to one decimal.
fn per(total: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        (total as f64 / count as f64 * 10.0).round() / 10.0
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// One process's results from the several that `--processes` ran: counts summed, histograms
/// added, percentiles read from the sum.
fn merge(base_url: String, parts: Vec<Results>) -> anyhow::Result<Results> {
    let first = parts.first().context("no results to merge")?;
    let (mut delivery, mut connect) = (histogram(), histogram());
    for p in &parts {
        delivery.add(decode(&p.delivery_histogram)?)?;
        connect.add(decode(&p.connect_histogram)?)?;
    }
    let sum = |f: fn(&Results) -> u64| parts.iter().map(f).sum::<u64>();
    let users = parts.iter().map(|p| p.users).sum::<usize>();
    let (sessions_ok, delivered, expected) = (
        sum(|p| p.sessions_ok),
        sum(|p| p.delivered),
        sum(|p| p.expected),
    );
    Ok(Results {
        base_url,
        users,
        room_size: first.room_size,
        interval_ms: first.interval_ms,
        duration_s: first.duration_s,
        processes: parts.len(),
        sessions_ok,
        sessions_failed: sum(|p| p.sessions_failed),
        session_success_ratio: ratio(sessions_ok, users as u64),
        connect_ms: percentiles_of(&connect),
        delivery_ms: percentiles_of(&delivery),
        sent: sum(|p| p.sent),
        acked: sum(|p| p.acked),
        delivered,
        expected,
        delivered_ratio: ratio(delivered, expected),
        errors: sum(|p| p.errors),
        resyncs: sum(|p| p.resyncs),
        deflate_sessions: sum(|p| p.deflate_sessions),
        frames_in: sum(|p| p.frames_in),
        wire_bytes_in: sum(|p| p.wire_bytes_in),
        wire_bytes_per_frame_in: per(sum(|p| p.wire_bytes_in), sum(|p| p.frames_in)),
        windows: None,
        delivery_histogram: encode(&delivery)?,
        connect_histogram: encode(&connect)?,
    })
}

/// Drops `--name VALUE` and `--name=VALUE` from a command line.
fn without_flags(args: Vec<OsString>, names: &[&str]) -> Vec<OsString> {
    let mut kept = Vec::with_capacity(args.len());
    let mut skip_value = false;
    for a in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let text = a.to_string_lossy();
        if names.contains(&text.as_ref()) {
            skip_value = true;
        } else if !names.iter().any(|n| text.starts_with(&format!("{n}="))) {
            kept.push(a);
        }
    }
    kept
}

/// `--processes N`: starts this program N times with `--shard i/N` (the same command line
/// otherwise), lets them all register their users, starts them together, and merges what they
/// report. Each process has its own file-descriptor limit (20,000 on the development machine).
async fn run_processes(args: &Args) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    ensure!(
        args.report_every.is_none(),
        "--report-every runs in one process only"
    );
    let n = args.processes;
    let exe = std::env::current_exe()?;
    let run = format!("{:x}", rand::thread_rng().gen::<u32>());
    let passed = without_flags(
        std::env::args_os().skip(1).collect(),
        &["--processes", "--out"],
    );
    let mut children = Vec::with_capacity(n);
    for i in 0..n {
        let mut child = tokio::process::Command::new(&exe)
            .args(&passed)
            .arg("--shard")
            .arg(format!("{i}/{n}"))
            .arg("--run-id")
            .arg(&run)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start a load-generator process")?;
        let out = tokio::io::BufReader::new(child.stdout.take().context("child stdout")?);
        children.push((child, out));
    }
    // Registration takes each process a different time: start the chat only when all are ready.
    for (i, (_, out)) in children.iter_mut().enumerate() {
        let mut line = String::new();
        out.read_line(&mut line).await?;
        ensure!(line.trim() == "ready", "process {i} failed during setup");
    }
    for (child, _) in &mut children {
        let stdin = child.stdin.as_mut().context("child stdin")?;
        stdin.write_all(b"go\n").await?;
        stdin.flush().await?;
    }
    let mut parts = Vec::with_capacity(n);
    for (i, (mut child, mut out)) in children.into_iter().enumerate() {
        let mut json = String::new();
        out.read_to_string(&mut json).await?;
        let status = child.wait().await?;
        ensure!(status.success(), "process {i}: {status}");
        parts.push(serde_json::from_str(&json).with_context(|| format!("process {i} results"))?);
    }
    let base = if args.spread_over.is_empty() {
        args.base_url.clone()
    } else {
        args.spread_over.join(",")
    };
    let results = merge(base, parts)?;
    emit(&results, args.out.as_deref())
}

fn emit(results: &Results, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(results)?;
    println!("{json}");
    if let Some(out) = out {
        std::fs::write(out, &json)?;
    }
    Ok(())
}

/// The counters and the delivery histogram at one moment of the sending phase.
struct Snapshot {
    at: Instant,
    latency: Histogram<u64>,
    connected: u64,
    sent: u64,
    acked: u64,
    delivered: u64,
    errors: u64,
    dropped: u64,
    resyncs: u64,
}

impl Snapshot {
    fn take(shared: &Shared) -> Self {
        let c = &shared.counters;
        Snapshot {
            at: Instant::now(),
            latency: shared
                .latency
                .lock()
                .map(|h| h.clone())
                .unwrap_or_else(|_| histogram()),
            connected: c.connected.load(Relaxed),
            sent: c.sent.load(Relaxed),
            acked: c.acked.load(Relaxed),
            delivered: c.delivered.load(Relaxed),
            errors: c.errors.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            resyncs: c.resyncs.load(Relaxed),
        }
    }

    /// The deliveries recorded since `earlier`.
    fn latency_since(&self, earlier: &Snapshot) -> anyhow::Result<Histogram<u64>> {
        let mut h = self.latency.clone();
        h.subtract(&earlier.latency)?;
        Ok(h)
    }
}

/// One `--report-every` line: what happened between two snapshots.
#[derive(Serialize)]
struct IntervalReport {
    /// Seconds from the start of the sending phase to the end of this interval.
    t_s: f64,
    interval_s: f64,
    connected: u64,
    sent: u64,
    acked: u64,
    delivered: u64,
    errors: u64,
    dropped: u64,
    resyncs: u64,
    delivery_ms: Percentiles,
    /// The last line: from the last whole interval to the end, the final drain included.
    last: bool,
}

fn interval_report(
    from: Instant,
    a: &Snapshot,
    b: &Snapshot,
    last: bool,
) -> anyhow::Result<IntervalReport> {
    Ok(IntervalReport {
        t_s: (b.at - from).as_secs_f64(),
        interval_s: (b.at - a.at).as_secs_f64(),
        connected: b.connected,
        sent: b.sent - a.sent,
        acked: b.acked - a.acked,
        delivered: b.delivered - a.delivered,
        errors: b.errors - a.errors,
        dropped: b.dropped - a.dropped,
        resyncs: b.resyncs - a.resyncs,
        delivery_ms: percentiles_of(&b.latency_since(a)?),
        last,
    })
}

type ReportSink = Box<dyn std::io::Write + Send>;

/// Snapshots at `from`, `from + every`, … up to `until`, a line per interval into `sink`.
async fn report(
    shared: Arc<Shared>,
    from: Instant,
    until: Instant,
    every: Duration,
    mut sink: ReportSink,
) -> anyhow::Result<(Vec<Snapshot>, ReportSink)> {
    tokio::time::sleep_until(from.into()).await;
    let mut snapshots = vec![Snapshot::take(&shared)];
    for k in 1u32.. {
        let at = from + every * k;
        if at > until {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let now = Snapshot::take(&shared);
        if let Some(prev) = snapshots.last() {
            let line = serde_json::to_string(&interval_report(from, prev, &now, false)?)?;
            writeln!(sink, "{line}")?;
            sink.flush()?;
        }
        snapshots.push(now);
    }
    Ok((snapshots, sink))
}

/// The first and the last window of the sending phase, for a soak run to compare.
#[derive(Serialize, Deserialize)]
struct Windows {
    window_s: u64,
    first: Percentiles,
    last: Percentiles,
}

/// `snapshots[k]` was taken `k * every` into the sending phase of `duration` seconds; `end`
/// after the final drain.
fn windows(
    snapshots: &[Snapshot],
    end: &Snapshot,
    every: u64,
    duration: u64,
    window: u64,
) -> anyhow::Result<Windows> {
    let every = every.max(1);
    let intervals = (window.min(duration / 3) / every).max(1) as usize;
    let start = snapshots.first().context("no snapshot")?;
    let first = match snapshots.get(intervals) {
        Some(s) => s.latency_since(start)?,
        None => end.latency_since(start)?,
    };
    let from = (duration.saturating_sub(intervals as u64 * every) / every) as usize;
    let base = &snapshots[from.min(snapshots.len() - 1)];
    Ok(Windows {
        window_s: intervals as u64 * every,
        first: percentiles_of(&first),
        last: percentiles_of(&end.latency_since(base)?),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.processes > 1 && args.shard.is_none() {
        return run_processes(&args).await;
    }
    if let Some((i, _)) = args.shard {
        if !args.spread_over.is_empty() {
            args.base_url = args.spread_over[i % args.spread_over.len()].clone();
        }
    }
    let args = Arc::new(args);
    let range = shard_users(args.users, args.room_size, args.shard);
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    if (limit as usize) < range.len() + 100 {
        bail!(
            "file-descriptor limit {limit} is too low for {} users",
            range.len()
        );
    }
    now_ns();
    let run = args
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{:x}", rand::thread_rng().gen::<u32>()));
    let users = setup(&args, &run, range).await?;
    if args.shard.is_some() {
        // Tell the parent this process is ready, and wait for its word to start.
        use tokio::io::AsyncBufReadExt;
        println!("ready");
        std::io::stdout().flush()?;
        let mut go = String::new();
        tokio::io::BufReader::new(tokio::io::stdin())
            .read_line(&mut go)
            .await?;
        ensure!(go.trim() == "go", "the parent process went away");
    }
    let shared = Arc::new(Shared {
        counters: Counters::default(),
        latency: Mutex::new(histogram()),
        connect: Mutex::new(histogram()),
    });
    let begin = Instant::now() + Duration::from_millis(200);
    let ramp = Duration::from_secs(args.ramp_secs);
    let until = begin + ramp + Duration::from_secs(args.duration);
    let n = users.len();
    let mut tasks = Vec::with_capacity(n);
    for (i, user) in users.into_iter().enumerate() {
        let start_at = begin + ramp.mul_f64(i as f64 / n.max(1) as f64);
        let at = Schedule {
            connect_at: start_at,
            send_from: begin + ramp,
            until,
        };
        tasks.push(tokio::spawn(client(
            args.clone(),
            shared.clone(),
            i,
            user,
            at,
        )));
    }
    let reporter = match args.report_every {
        Some(every) => {
            let sink: ReportSink = match &args.report_out {
                Some(path) => Box::new(std::fs::File::create(path).context("--report-out")?),
                None => Box::new(std::io::stderr()),
            };
            let every = Duration::from_secs(every.max(1));
            Some(tokio::spawn(report(
                shared.clone(),
                begin + ramp,
                until,
                every,
                sink,
            )))
        }
        None => None,
    };
    let progress = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let c = &shared.counters;
                let p99 = shared
                    .latency
                    .lock()
                    .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)
                    .unwrap_or(0.0);
                eprintln!(
                    "connected {:>6}  failed {:>4}  sent {:>8}  acked {:>8}  delivered {:>9}  p99 {:>8.1} ms",
                    c.connected.load(Relaxed), c.failed.load(Relaxed), c.sent.load(Relaxed),
                    c.acked.load(Relaxed), c.delivered.load(Relaxed), p99
                );
            }
        })
    };
    let mut ok = 0u64;
    for t in tasks {
        if t.await.unwrap_or(false) {
            ok += 1;
        }
    }
    progress.abort();
    let windows = match reporter {
        Some(reporter) => {
            let (snapshots, mut sink) = reporter.await??;
            let end = Snapshot::take(&shared);
            let start = begin + ramp;
            if let Some(prev) = snapshots.last() {
                let line = serde_json::to_string(&interval_report(start, prev, &end, true)?)?;
                writeln!(sink, "{line}")?;
                sink.flush()?;
            }
            let every = args.report_every.unwrap_or(1);
            Some(windows(
                &snapshots,
                &end,
                every,
                args.duration,
                args.window_secs,
            )?)
        }
        None => None,
    };
    let c = &shared.counters;
    let acked = c.acked.load(Relaxed);
    let expected = acked * (args.room_size as u64 - 1);
    let delivered = c.delivered.load(Relaxed);
    let (latency, connect) = (
        shared
            .latency
            .lock()
            .map(|h| h.clone())
            .map_err(|_| anyhow!("poisoned"))?,
        shared
            .connect
            .lock()
            .map(|h| h.clone())
            .map_err(|_| anyhow!("poisoned"))?,
    );
    let results = Results {
        base_url: args.base_url.clone(),
        users: n,
        room_size: args.room_size,
        interval_ms: args.interval_ms,
        duration_s: args.duration,
        processes: 1,
        sessions_ok: ok,
        sessions_failed: n as u64 - ok,
        session_success_ratio: ratio(ok, n as u64),
        connect_ms: percentiles_of(&connect),
        delivery_ms: percentiles_of(&latency),
        sent: c.sent.load(Relaxed),
        acked,
        delivered,
        expected,
        delivered_ratio: ratio(delivered, expected),
        errors: c.errors.load(Relaxed),
        resyncs: c.resyncs.load(Relaxed),
        deflate_sessions: c.deflated.load(Relaxed),
        frames_in: c.frames_in.load(Relaxed),
        wire_bytes_in: c.wire_bytes_in.load(Relaxed),
        wire_bytes_per_frame_in: per(c.wire_bytes_in.load(Relaxed), c.frames_in.load(Relaxed)),
        windows,
        delivery_histogram: encode(&latency)?,
        connect_histogram: encode(&connect)?,
    };
    if args.shard.is_some() {
        // The parent reads this and writes the merged results.
        println!("{}", serde_json::to_string(&results)?);
        return Ok(());
    }
    emit(&results, args.out.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_counts_each_entry_once_and_resubscribes_from_the_seq_it_has() {
        use confab_shared::ids::{ClientMsgId, MessageId, RoomId, UserId};
        use confab_shared::protocol::{ChatMessage, UserPublic};
        let entry = |seq: i64, body: &str| {
            let m = ChatMessage {
                id: MessageId(uuid::Uuid::from_u128(seq as u128)),
                room: RoomId(uuid::Uuid::from_u128(7)),
                seq,
                author: UserPublic {
                    id: UserId(uuid::Uuid::from_u128(1)),
                    username: "lg".into(),
                },
                bot: false,
                body: body.into(),
                client_msg_id: ClientMsgId::parse("c").unwrap(),
                attachment: None,
                created_at: 0,
                edited_at: None,
                deleted_at: None,
                reply_to: None,
                mentions: Vec::new(),
                reactions: Vec::new(),
                pinned: false,
            };
            serde_json::to_string(&ServerFrame::Entry(RoomEvent::Message(m))).unwrap()
        };
        let shared = Shared {
            counters: Counters::default(),
            latency: Mutex::new(histogram()),
            connect: Mutex::new(histogram()),
        };
        let mut rx = Receiver {
            me: 3,
            room: "r".into(),
            last_seq: 0,
        };
        let sent = now_ns();
        // Recovered, then the same entry again from the live stream; one of this client's own;
        // one that is not the load generator's.
        for (seq, from) in [(1, 5), (2, 6), (2, 6), (1, 5), (3, 3)] {
            assert!(!rx.receive(&entry(seq, &format!("lg {from} {sent}")), &shared));
        }
        assert!(!rx.receive(&entry(4, "hello"), &shared));
        assert_eq!(shared.counters.delivered.load(Relaxed), 2);
        assert_eq!(rx.last_seq, 4);
        let Message::Text(again) = rx.subscribe() else {
            panic!("a text frame")
        };
        let again: serde_json::Value = serde_json::from_str(&again).unwrap();
        assert_eq!(again["after_seq"], 4);
        let resync = ServerFrame::Resync {
            room: RoomId(uuid::Uuid::from_u128(7)),
        };
        assert!(rx.receive(&serde_json::to_string(&resync).unwrap(), &shared));
        assert_eq!(shared.counters.resyncs.load(Relaxed), 1);
    }

    #[test]
    fn shards_cover_the_users_in_whole_rooms() {
        for (users, room, n) in [(30_000, 10, 3), (3_000, 10, 4), (1_005, 10, 3), (7, 10, 2)] {
            let ranges: Vec<_> = (0..n)
                .map(|i| shard_users(users, room, Some((i, n))))
                .collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[n - 1].end, users);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert_eq!(w[0].end % room, 0, "a room split between processes");
            }
        }
        assert_eq!(shard_users(1000, 10, None), 0..1000);
    }

    #[test]
    fn merged_percentiles_come_from_the_summed_histograms() {
        // One process saw only fast deliveries, the other only slow ones: the merged p99 is the
        // slow one, which no average of the two p99s gives.
        let (mut fast, mut slow) = (histogram(), histogram());
        for _ in 0..985 {
            fast.saturating_record(1_000);
        }
        for _ in 0..15 {
            slow.saturating_record(80_000);
        }
        let part = |h: &Histogram<u64>| -> Results {
            Results {
                base_url: String::new(),
                users: 10,
                room_size: 10,
                interval_ms: 1000,
                duration_s: 1,
                processes: 1,
                sessions_ok: 10,
                sessions_failed: 0,
                session_success_ratio: 1.0,
                connect_ms: percentiles_of(h),
                delivery_ms: percentiles_of(h),
                sent: h.len(),
                acked: h.len(),
                delivered: h.len(),
                expected: h.len(),
                delivered_ratio: 1.0,
                errors: 0,
                resyncs: 0,
                deflate_sessions: 0,
                frames_in: 0,
                wire_bytes_in: 0,
                wire_bytes_per_frame_in: 0.0,
                windows: None,
                delivery_histogram: encode(h).expect("encode"),
                connect_histogram: encode(h).expect("encode"),
            }
        };
        let merged = merge(String::new(), vec![part(&fast), part(&slow)]).expect("merge");
        assert_eq!(merged.delivery_ms.count, 1000);
        assert_eq!(merged.delivered, 1000);
        assert_eq!(merged.users, 20);
        assert!((merged.delivery_ms.p50 - 1.0).abs() < 0.01);
        assert!((merged.delivery_ms.p99 - 80.0).abs() < 0.1);
        assert!((merged.delivery_ms.max - 80.0).abs() < 0.1);
    }

    #[test]
    fn flags_for_the_parent_are_not_passed_on() {
        let args = [
            "--users",
            "30",
            "--processes",
            "3",
            "--out=x.json",
            "--duration",
            "5",
        ]
        .map(OsString::from)
        .to_vec();
        let kept = without_flags(args, &["--processes", "--out"]);
        assert_eq!(
            kept,
            ["--users", "30", "--duration", "5"].map(OsString::from)
        );
    }
}

//! `confab-loadgen`: drives a Confab deployment with thousands of real WebSocket clients, for
//! what k6 cannot do on one small machine (10,000+ concurrent connections).
//!
//! Scenario (the same as `k6/chat.js`): USERS users register, are grouped into rooms of
//! ROOM_SIZE, connect to `/ws`, subscribe to their room, and each sends a message every
//! INTERVAL_MS for DURATION. Every receipt by another member is timed from the send (the body
//! carries the send time), into an HDR histogram. Results: connect-time and delivery-latency
//! percentiles, delivered/expected ratio, session success, errors, as JSON.
//!
//! Connections are spread over several source addresses (127.0.0.x) so ephemeral ports do not
//! run out, and the file-descriptor limit is raised to the hard limit (20,000 here): one process
//! holds up to about 19,000 connections.

use anyhow::{bail, Context};
use clap::Parser;
use confab_shared::events::RoomEvent;
use confab_shared::protocol::ServerFrame;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rand::Rng;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

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
}

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

/// Registers everyone, creates the rooms, and joins each user to theirs.
async fn setup(args: &Args, run: &str) -> anyhow::Result<Vec<User>> {
    let http = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.users);
    for i in 0..args.users {
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
    let mut cookies = Vec::with_capacity(args.users);
    for t in tasks {
        cookies.push(t.await??);
    }
    eprintln!(
        "registered {} users in {:.1?}",
        args.users,
        started.elapsed()
    );
    let rooms = args.users.div_ceil(args.room_size.max(1));
    let mut room_ids = Vec::with_capacity(rooms);
    for r in 0..rooms {
        let owner = &cookies[r * args.room_size];
        let res = http
            .post(format!("{}/api/rooms", args.base_url))
            .header("cookie", owner)
            .json(&serde_json::json!({"name": format!("lg{run}r{r}")}))
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
    let subscribe = serde_json::json!({"type": "subscribe", "room": user.room}).to_string();
    if ws.send(Message::Text(subscribe.into())).await.is_err() {
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
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerFrame>(&t) {
                    Ok(ServerFrame::Entry(RoomEvent::Message(m))) => {
                        if let Some(rest) = m.body.strip_prefix("lg ") {
                            let mut parts = rest.split(' ');
                            let from: Option<usize> = parts.next().and_then(|p| p.parse().ok());
                            let sent: Option<u64> = parts.next().and_then(|p| p.parse().ok());
                            if let (Some(from), Some(sent)) = (from, sent) {
                                if from != me {
                                    c.delivered.fetch_add(1, Relaxed);
                                    record(&shared.latency, now_ns().saturating_sub(sent) / 1000);
                                }
                            }
                        }
                    }
                    Ok(ServerFrame::Ack { .. }) => { c.acked.fetch_add(1, Relaxed); }
                    Ok(ServerFrame::Error { .. }) => { c.errors.fetch_add(1, Relaxed); }
                    Ok(ServerFrame::Resync { .. }) => {
                        c.resyncs.fetch_add(1, Relaxed);
                        let again = serde_json::json!({"type": "subscribe", "room": user.room}).to_string();
                        if ws.send(Message::Text(again.into())).await.is_err() { break false; }
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break false,
                Some(Ok(_)) => {}
            },
        }
    };
    if !ok {
        c.dropped.fetch_add(1, Relaxed);
    }
    // Drain briefly so messages sent just before the end are counted, then close.
    let grace = tokio::time::sleep(Duration::from_secs(2));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            _ = &mut grace => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(ServerFrame::Entry(RoomEvent::Message(m))) = serde_json::from_str::<ServerFrame>(&t) {
                        if let Some((from, sent)) = m.body.strip_prefix("lg ").and_then(|r| r.split_once(' ')) {
                            if from.parse::<usize>().ok() != Some(me) {
                                if let Ok(sent) = sent.parse::<u64>() {
                                    c.delivered.fetch_add(1, Relaxed);
                                    record(&shared.latency, now_ns().saturating_sub(sent) / 1000);
                                }
                            }
                        }
                    } else if t.contains("\"type\":\"ack\"") {
                        c.acked.fetch_add(1, Relaxed);
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    }
    let _ = ws.close(None).await;
    ok
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

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
    let ws_url = format!("ws://{host}:{port}/ws");
    let mut req = ws_url.into_client_request()?;
    req.headers_mut().insert("cookie", user.cookie.parse()?);
    // Small buffers: thousands of connections live in this one process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("\"ready\"") => Ok((ws, started.elapsed())),
        other => bail!("no ready frame: {other:?}"),
    }
}

#[derive(Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    count: u64,
}

fn percentiles_ms(h: &Mutex<Histogram<u64>>) -> Percentiles {
    let h = h.lock().map(|h| h.clone()).unwrap_or_else(|_| histogram());
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

#[derive(Serialize)]
struct Results {
    base_url: String,
    users: usize,
    room_size: usize,
    interval_ms: u64,
    duration_s: u64,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    if (limit as usize) < args.users + 100 {
        bail!(
            "file-descriptor limit {limit} is too low for {} users",
            args.users
        );
    }
    now_ns();
    let run: String = format!("{:x}", rand::thread_rng().gen::<u32>());
    let users = setup(&args, &run).await?;
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
    let c = &shared.counters;
    let acked = c.acked.load(Relaxed);
    let expected = acked * (args.room_size as u64 - 1);
    let delivered = c.delivered.load(Relaxed);
    let results = Results {
        base_url: args.base_url.clone(),
        users: n,
        room_size: args.room_size,
        interval_ms: args.interval_ms,
        duration_s: args.duration,
        sessions_ok: ok,
        sessions_failed: n as u64 - ok,
        session_success_ratio: ok as f64 / n.max(1) as f64,
        connect_ms: percentiles_ms(&shared.connect),
        delivery_ms: percentiles_ms(&shared.latency),
        sent: c.sent.load(Relaxed),
        acked,
        delivered,
        expected,
        delivered_ratio: if expected == 0 {
            1.0
        } else {
            delivered as f64 / expected as f64
        },
        errors: c.errors.load(Relaxed),
        resyncs: c.resyncs.load(Relaxed),
    };
    let json = serde_json::to_string_pretty(&results)?;
    println!("{json}");
    if let Some(out) = &args.out {
        std::fs::write(out, &json)?;
    }
    Ok(())
}

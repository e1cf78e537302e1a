//! A server connection driven over an in-memory pipe: by our own client (both roles, with and
//! without deflate), and by hand-made frames for the rules a well-behaved client never breaks.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use confab_ws::frame::{apply_mask, Header, OpCode};
use confab_ws::{deflate, CloseFrame, Error, Message, Options, Role, Shared, WebSocket};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn options(role: Role, deflate: bool) -> Options {
    Options {
        deflate,
        max_message: 64 * 1024,
        ..Options::new(role)
    }
}

fn pair(deflate: bool) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (
        WebSocket::new(a, options(Role::Server, deflate), Vec::new()),
        WebSocket::new(b, options(Role::Client, deflate), Vec::new()),
    )
}

async fn next(ws: &mut WebSocket<DuplexStream>) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a message in time")
        .expect("the connection is open")
        .unwrap()
}

fn text(s: &str) -> Message {
    Message::Text(s.to_owned().into())
}

#[tokio::test]
async fn messages_cross_both_ways_with_and_without_deflate() {
    for deflate in [false, true] {
        let (mut server, mut client) = pair(deflate);
        let long = "a chat message that is long enough to be compressed ".repeat(20);
        for m in ["short", long.as_str(), ""] {
            client.send(text(m)).await.unwrap();
            assert_eq!(next(&mut server).await, text(m), "deflate {deflate}");
            server.send(text(m)).await.unwrap();
            assert_eq!(next(&mut client).await, text(m), "deflate {deflate}");
        }
        let shared = Arc::new(Shared::new(long.clone().into()));
        server.send(Message::Shared(shared.clone())).await.unwrap();
        assert_eq!(next(&mut client).await, text(&long));
        server
            .send(Message::Binary(Bytes::from_static(&[0, 1, 2])))
            .await
            .unwrap();
        assert_eq!(
            next(&mut client).await,
            Message::Binary(Bytes::from_static(&[0, 1, 2]))
        );
    }
}

/// Reads whatever the server wrote, as raw bytes.
async fn raw_output(peer: &mut DuplexStream) -> Vec<u8> {
    let mut buf = vec![0; 1 << 16];
    let n = tokio::time::timeout(Duration::from_secs(5), peer.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf.truncate(n);
    buf
}

fn server_over_raw(deflate: bool) -> (WebSocket<DuplexStream>, DuplexStream) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (
        WebSocket::new(a, options(Role::Server, deflate), Vec::new()),
        b,
    )
}

/// A masked client frame.
fn client_frame(opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let key = [7, 1, 200, 33];
    let mut out = Vec::new();
    Header {
        fin,
        rsv1,
        opcode,
        mask: Some(key),
        len: payload.len() as u64,
    }
    .write(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key);
    out
}

#[tokio::test]
async fn a_shared_frame_is_sent_compressed_once_and_identically() {
    let (mut server, mut peer) = server_over_raw(true);
    let body = r#"{"type":"entry","entry":{"type":"message","body":"hello hello hello hello hello hello"}}"#
        .repeat(3);
    let shared = Arc::new(Shared::new(body.clone().into()));
    server.send(Message::Shared(shared.clone())).await.unwrap();
    let wire = raw_output(&mut peer).await;
    let (header, at) = Header::parse(&wire).unwrap().unwrap();
    assert!(header.rsv1, "compressed");
    assert!(header.mask.is_none(), "a server does not mask");
    assert_eq!(
        &wire[at..],
        &shared.deflated()[..],
        "the shared compressed bytes"
    );
    assert!(
        wire.len() < body.len() / 2,
        "{} bytes for {}",
        wire.len(),
        body.len()
    );
    assert_eq!(
        deflate::inflate(&wire[at..], 1 << 16).unwrap(),
        body.as_bytes()
    );

    // Below the threshold, and without deflate, frames go out as they are.
    server.send(text("hi")).await.unwrap();
    let wire = raw_output(&mut peer).await;
    assert_eq!(wire, [0x81, 2, b'h', b'i']);
}

#[tokio::test]
async fn fragments_are_joined_and_pings_between_them_answered() {
    let (mut server, mut peer) = server_over_raw(true);
    let compressed = deflate::compress(b"Hello, fragmented and compressed world");
    let (one, two) = compressed.split_at(compressed.len() / 2);
    let mut input = client_frame(OpCode::Text, false, true, one);
    input.extend(client_frame(OpCode::Ping, true, false, b"are you there"));
    input.extend(client_frame(OpCode::Continue, true, false, two));
    // Written one byte at a time: every partial state of the parser is visited.
    for byte in input {
        peer.write_all(&[byte]).await.unwrap();
    }
    assert_eq!(
        next(&mut server).await,
        Message::Ping(Bytes::from_static(b"are you there"))
    );
    let pong = raw_output(&mut peer).await;
    assert_eq!(pong[0], 0x8A, "a pong");
    assert_eq!(&pong[2..], b"are you there");
    assert_eq!(
        next(&mut server).await,
        text("Hello, fragmented and compressed world")
    );
}

async fn expect_error(input: Vec<u8>, deflate: bool) -> Error {
    let (mut server, mut peer) = server_over_raw(deflate);
    peer.write_all(&input).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), server.next())
        .await
        .unwrap()
        .expect("an error, not the end")
        .expect_err("the input is refused");
    assert!(
        server.next().await.is_none(),
        "nothing is read after an error"
    );
    e
}

#[tokio::test]
async fn what_the_protocol_forbids_is_refused() {
    let unmasked = {
        let mut out = Vec::new();
        Header {
            fin: true,
            rsv1: false,
            opcode: OpCode::Text,
            mask: None,
            len: 2,
        }
        .write(&mut out);
        out.extend_from_slice(b"hi");
        out
    };
    assert!(matches!(
        expect_error(unmasked, false).await,
        Error::Protocol(_)
    ));
    let compressed_without_deflate =
        client_frame(OpCode::Text, true, true, &deflate::compress(b"hi"));
    assert!(matches!(
        expect_error(compressed_without_deflate, false).await,
        Error::Protocol(_)
    ));
    let bad_utf8 = client_frame(OpCode::Text, true, false, &[0xff, 0xfe]);
    assert!(matches!(
        expect_error(bad_utf8, false).await,
        Error::InvalidText
    ));
    let lone_continuation = client_frame(OpCode::Continue, true, false, b"x");
    assert!(matches!(
        expect_error(lone_continuation, false).await,
        Error::Protocol(_)
    ));
    let mut interrupted = client_frame(OpCode::Text, false, false, b"x");
    interrupted.extend(client_frame(OpCode::Text, true, false, b"y"));
    assert!(matches!(
        expect_error(interrupted, false).await,
        Error::Protocol(_)
    ));
    let bad_close = client_frame(OpCode::Close, true, false, &999u16.to_be_bytes());
    assert!(matches!(
        expect_error(bad_close, false).await,
        Error::Protocol(_)
    ));
}

#[tokio::test]
async fn size_limits_hold_before_buffering_and_after_inflating() {
    // The header alone says too big: no payload needs to arrive.
    let mut header = Vec::new();
    Header {
        fin: true,
        rsv1: false,
        opcode: OpCode::Text,
        mask: Some([1; 4]),
        len: 1 << 30,
    }
    .write(&mut header);
    assert!(matches!(expect_error(header, false).await, Error::TooBig));
    // Fragments adding up to more than the limit.
    let mut fragments = client_frame(OpCode::Binary, false, false, &[0; 40_000]);
    fragments.extend(client_frame(OpCode::Continue, true, false, &[0; 40_000]));
    assert!(matches!(
        expect_error(fragments, false).await,
        Error::TooBig
    ));
    // A small compressed message that inflates past the limit.
    let bomb = client_frame(
        OpCode::Text,
        true,
        true,
        &deflate::compress(&[b'a'; 1 << 20]),
    );
    assert!(matches!(expect_error(bomb, true).await, Error::TooBig));
}

#[tokio::test]
async fn the_closing_handshake_completes_from_either_side() {
    // The client closes: the server answers with the same code and its stream ends.
    let (mut server, mut client) = pair(false);
    let bye = CloseFrame {
        code: 1000,
        reason: "bye".into(),
    };
    client
        .send(Message::Close(Some(bye.clone())))
        .await
        .unwrap();
    assert_eq!(next(&mut server).await, Message::Close(Some(bye.clone())));
    assert_eq!(next(&mut client).await, Message::Close(Some(bye.clone())));
    assert!(server.next().await.is_none());
    assert!(client.next().await.is_none());
    assert!(matches!(
        server.send(text("late")).await,
        Err(Error::Closed)
    ));

    // The server closes: frames still in flight are read until the client's answer.
    let (mut server, mut client) = pair(true);
    client.send(text("in flight")).await.unwrap();
    let policy = CloseFrame {
        code: 1008,
        reason: "rate limit exceeded".into(),
    };
    server
        .send(Message::Close(Some(policy.clone())))
        .await
        .unwrap();
    assert_eq!(
        next(&mut client).await,
        Message::Close(Some(policy.clone()))
    );
    assert_eq!(next(&mut server).await, text("in flight"));
    assert_eq!(next(&mut server).await, Message::Close(Some(policy)));
    assert!(server.next().await.is_none());
}

#[tokio::test]
async fn buffers_are_released_once_written_and_read() {
    let (mut server, mut client) = pair(true);
    for _ in 0..100 {
        server.feed(text(&"x".repeat(1000))).await.unwrap();
    }
    server.flush().await.unwrap();
    for _ in 0..100 {
        next(&mut client).await;
    }
    for idle in [format!("{server:?}"), format!("{client:?}")] {
        assert!(
            idle.contains("read: []") && idle.contains("out: []"),
            "{idle}"
        );
    }
}

#[tokio::test]
async fn the_client_handshake_agrees_deflate_with_a_server() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move {
        let mut a = a;
        let mut buf = vec![0; 4096];
        let n = a.read(&mut buf).await.unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .to_owned();
        assert!(request.contains("Sec-WebSocket-Extensions: permessage-deflate"));
        assert!(request.contains("Cookie: a=b"));
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: {}\r\n\r\n",
            deflate::RESPONSE
        );
        a.write_all(response.as_bytes()).await.unwrap();
        let mut ws = WebSocket::new(a, options(Role::Server, true), Vec::new());
        ws.send(text(&"compressed ".repeat(50))).await.unwrap();
        ws
    });
    let mut client = confab_ws::handshake::connect(
        b,
        "localhost",
        "/ws",
        &[("Cookie", "a=b")],
        Options {
            deflate: true,
            ..Options::new(Role::Client)
        },
    )
    .await
    .unwrap();
    assert!(client.compresses());
    assert_eq!(next(&mut client).await, text(&"compressed ".repeat(50)));
    server.await.unwrap();
}

//! The `confab` binary as a newcomer runs it: help text, start-up output, a hard crash
//! (SIGKILL) that must not lose any acknowledged message, and `confab admin` beside a running
//! server.
#![allow(clippy::unwrap_used)]

mod common;

use common::Client;
use confab_shared::api::MessagePage;
use confab_shared::protocol::ServerFrame;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_confab");

#[test]
fn help_documents_every_setting_and_its_variable() {
    let top = Command::new(BIN).arg("--help").output().unwrap();
    let top = String::from_utf8(top.stdout).unwrap();
    for cmd in ["serve", "migrate", "keygen"] {
        assert!(top.contains(cmd), "{top}");
    }
    let serve = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let serve = String::from_utf8(serve.stdout).unwrap();
    for (flag, var) in [
        ("--listen", "CONFAB_LISTEN"),
        ("--data-dir", "CONFAB_DATA_DIR"),
        ("--database-url", "CONFAB_DATABASE_URL"),
        ("--public-url", "CONFAB_PUBLIC_URL"),
        ("--allowed-origins", "CONFAB_ALLOWED_ORIGINS"),
        ("--jwt-private-key-file", "CONFAB_JWT_PRIVATE_KEY_FILE"),
        ("--max-frame-bytes", "CONFAB_MAX_FRAME_BYTES"),
        ("--vapid-private-key-file", "CONFAB_VAPID_PRIVATE_KEY_FILE"),
        ("--push-coalesce-ms", "CONFAB_PUSH_COALESCE_MS"),
        ("--push-queue-capacity", "CONFAB_PUSH_QUEUE_CAPACITY"),
        ("--digest-delay-secs", "CONFAB_DIGEST_DELAY_SECS"),
    ] {
        assert!(
            serve.contains(flag) && serve.contains(var),
            "{flag} / {var} missing:\n{serve}"
        );
    }
    assert!(serve.contains("[default: 127.0.0.1:8080]"));
    assert!(serve.contains("[default: ./data]"));
}

#[test]
fn keygen_prints_a_usable_pem_and_migrate_applies_migrations() {
    let out = Command::new(BIN).arg("keygen").output().unwrap();
    let pem = String::from_utf8(out.stdout).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(confab_origin::auth::tokens::JwtKeys::from_pem(&pem).is_ok());

    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .env_remove("CONFAB_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("confab.db").exists());
}

/// A child server that is killed when dropped, so a failing test leaves nothing running.
struct Running(Child);

impl Running {
    /// SIGKILL, and reap.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `confab serve` on a free port in `dir`; returns the child and its URL.
fn spawn_server(dir: &Path) -> (Running, String) {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--send-rate",
            "10000",
            "--frame-rate",
            "10000",
            "--data-dir",
        ])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env_remove("CONFAB_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("Confab is running at ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (Running(child), url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_a_hard_crash() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let (mut child, url) = spawn_server(dir.path());
    assert!(url.starts_with("http://127.0.0.1:"));
    let ann = Client::register_at(&url, "ann").await;
    let room = ann.create_room("durable").await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let mut acked = Vec::new();
    for i in 0..50 {
        let (id, seq) = a
            .say(&room, &format!("m{i}"), &format!("message {i}"))
            .await;
        acked.push((id, seq));
    }
    // Fire more without waiting, then kill -9 while they are in flight.
    for i in 50..80 {
        a.send(json!({"type": "send", "room": room.id, "client_msg_id": format!("m{i}"), "body": format!("message {i}")})).await;
    }
    let mut in_flight_acks = Vec::new();
    while in_flight_acks.len() < 5 {
        if let ServerFrame::Ack { id, seq, .. } = a.next().await {
            in_flight_acks.push((id.to_string(), seq));
        }
    }
    child.kill(); // SIGKILL
    acked.extend(in_flight_acks);

    let (mut child, url) = spawn_server(dir.path());
    let ann = Client::login_at(&url, "ann").await;
    let page: MessagePage = ann
        .get(&format!("/api/rooms/{}/messages?limit=100", room.id))
        .await
        .json()
        .await
        .unwrap();
    let stored: std::collections::HashMap<String, i64> = page
        .messages
        .iter()
        .map(|m| (m.id.to_string(), m.seq))
        .collect();
    for (id, seq) in &acked {
        assert_eq!(
            stored.get(id),
            Some(seq),
            "acked message {id} (seq {seq}) survived"
        );
    }
    child.kill();
}

/// Runs `confab admin --data-dir DIR ARGS...`; its standard output.
fn admin(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(dir)
        .args(args)
        .env("CONFAB_ADMIN_PASSWORD", "operator password")
        .env_remove("CONFAB_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "confab admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confab_admin_manages_accounts_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = spawn_server(dir.path());
    let http = reqwest::Client::new();
    let login = |name: &'static str, password: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let res = http
                .post(format!("{url}/api/auth/login"))
                .json(&serde_json::json!({"login": name, "password": password}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, body)
        }
    };

    let made = admin(
        dir.path(),
        &[
            "create-user",
            "--username",
            "root",
            "--email",
            "root@example.com",
            "--admin",
        ],
    );
    assert!(made.contains("as admin"), "{made}");
    let (status, me) = login("root", "operator password".into()).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("admin")));

    // An invite made on the command line admits once on the running server.
    let out = admin(dir.path(), &["create-invite", "--uses", "1"]);
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("code: "))
        .unwrap()
        .to_owned();
    for (name, expected) in [("ann", 201), ("bob", 403)] {
        let res = http
            .post(format!("{url}/api/auth/register"))
            .json(
                &serde_json::json!({"username": name, "email": format!("{name}@example.com"),
                "password": "correct horse battery", "invite": code}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), expected, "{name}");
    }

    admin(dir.path(), &["deactivate", "ann"]);
    let (status, _) = login("ann", "correct horse battery".into()).await;
    assert_eq!(status, 403);
    let out = admin(dir.path(), &["reset-password", "root"]);
    let temporary = out
        .lines()
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.starts_with("temporary"))
        })
        .unwrap()
        .1
        .to_owned();
    let (status, body) = login("root", temporary).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("password_change_required"))
    );
    let list = admin(dir.path(), &["list-users"]);
    assert!(
        list.lines()
            .any(|l| l.contains("\tann\t") && l.ends_with("deactivated")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.contains("\troot\t") && l.contains("admin")),
        "{list}"
    );
}

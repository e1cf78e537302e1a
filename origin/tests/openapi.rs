//! The API description kept in step with the code: every route of the routers is in the
//! OpenAPI document with its methods, every operation of the document is served, every route
//! the README names is in it, and every WebSocket frame type of `confab-shared` is in the
//! AsyncAPI document. (`scripts/test` validates both with `openapi-spec-validator`.)
#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use confab_origin::http::openapi::{Direction, ENDPOINTS, FRAMES};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A path with its parameters' names blanked (`/api/rooms/{}`), for comparing.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn documented() -> BTreeSet<(String, String)> {
    ENDPOINTS
        .iter()
        .map(|e| (e.method.to_owned(), shape(e.path)))
        .collect()
}

/// (method, path) of every `.route("...", ...)` in `origin/src/http`, as served (`/api` in
/// front of all but the top-level routes).
fn routed() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("origin/src/http")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let open = rest.find('"').unwrap();
            let close = open + 1 + rest[open + 1..].find('"').unwrap();
            let route = &rest[open + 1..close];
            // The methods: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let mut end = close;
            for (i, c) in rest[close..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = close + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let methods = &rest[close..end];
            if route == "/" {
                continue; // the page saying the web client is not built
            }
            let top_level = file == "health.rs" || route == "/ws" || route.starts_with("/hooks");
            let full = if top_level {
                route.to_owned()
            } else {
                format!("/api{route}")
            };
            for (m, name) in [
                ("get(", "GET"),
                ("post(", "POST"),
                ("put(", "PUT"),
                ("patch(", "PATCH"),
                ("delete(", "DELETE"),
            ] {
                let called = methods.match_indices(m).any(|(i, _)| {
                    i == 0 || !methods[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if called {
                    out.insert((name.to_owned(), shape(&full)));
                }
            }
        }
    }
    out
}

#[test]
fn every_route_of_the_routers_is_documented() {
    let routed = routed();
    assert!(routed.len() > 60, "the routes were read: {routed:?}");
    let documented = documented();
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document: {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&routed).collect();
    assert!(stale.is_empty(), "documented but not routed: {stale:?}");
}

#[test]
fn every_route_the_readme_names_is_documented() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let documented: BTreeSet<String> = ENDPOINTS.iter().map(|e| shape(e.path)).collect();
    let mut named = BTreeSet::new();
    for span in readme.split('`').skip(1).step_by(2) {
        let mut words = span.split_whitespace();
        let (Some(method), Some(path)) = (words.next(), words.next()) else {
            continue;
        };
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
            continue;
        }
        let path = path.split('?').next().unwrap();
        let origin = ["/api/", "/ws", "/healthz", "/readyz", "/metrics", "/hooks/"];
        if origin.iter().any(|p| path.starts_with(p)) {
            named.insert(shape(path));
        }
    }
    assert!(named.len() > 20, "README routes were read: {named:?}");
    let missing: Vec<_> = named.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "README routes missing from the document: {missing:?}"
    );
}

/// The `"type"`s of one union in the generated TypeScript.
fn frame_types(ts: &str, union: &str) -> BTreeSet<String> {
    let start = ts.find(&format!("export type {union} = ")).unwrap();
    let decl = &ts[start..];
    let decl = &decl[..decl[1..].find("\nexport ").map_or(decl.len(), |i| i + 1)];
    decl.match_indices("\"type\": \"")
        .map(|(i, m)| {
            let rest = &decl[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

#[test]
fn every_websocket_frame_is_described() {
    let ts = std::fs::read_to_string(repo().join("web/src/generated/protocol.ts")).unwrap();
    let described = |d: Direction| -> BTreeSet<String> {
        FRAMES
            .iter()
            .filter(|f| f.direction == d)
            .map(|f| f.name.to_owned())
            .collect()
    };
    let client = frame_types(&ts, "ClientFrame");
    assert!(client.contains("subscribe") && client.contains("send"));
    assert_eq!(client, described(Direction::ToServer));
    let mut server = frame_types(&ts, "ServerFrame");
    server.extend(frame_types(&ts, "RoomEvent"));
    assert!(server.contains("ack") && server.contains("member_added"));
    assert_eq!(server, described(Direction::ToClient));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_are_served_and_every_operation_exists() {
    let server = TestServer::start_with(|c| c.metrics_token = Some("check".into())).await;
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["paths"].as_object().unwrap().len(), {
        let paths: BTreeSet<_> = ENDPOINTS.iter().map(|e| e.path).collect();
        paths.len()
    });
    let asyncapi: Value = http
        .get(server.url("/api/asyncapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        asyncapi["channels"]["ws"]["messages"]
            .as_object()
            .unwrap()
            .len(),
        FRAMES.len()
    );
    let page = http
        .get(server.url("/api/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for e in ENDPOINTS {
        assert!(
            page.contains(&e.path.replace('&', "&amp;")),
            "{} on the page",
            e.path
        );
    }

    // Each documented operation reaches a handler: not the API's "no such endpoint", not 405.
    for e in ENDPOINTS {
        let path = e
            .path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "0190f3c4-0000-7000-8000-000000000000"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = reqwest::Method::from_bytes(e.method.as_bytes()).unwrap();
        let mut req = http.request(method, server.url(&path));
        if e.path == "/metrics" {
            req = req.bearer_auth("check"); // served only with the token (404 otherwise)
        }
        let res = req
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert_ne!(status, 405, "{} {}", e.method, e.path);
        assert!(
            !body.contains("no such endpoint"),
            "{} {}: {status} {body}",
            e.method,
            e.path
        );
        if !e.path.starts_with("/api/") && status == 404 {
            assert!(
                body.contains("\"error\""),
                "{} {}: not routed",
                e.method,
                e.path
            );
        }
    }
    server.stop().await;
}

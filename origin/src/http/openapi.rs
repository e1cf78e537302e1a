//! The API described: an OpenAPI 3.1 document of every HTTP route (`GET /api/openapi.json`), an
//! AsyncAPI 3.0 document of the WebSocket's frames (`GET /api/asyncapi.json`), and a page that
//! shows both (`GET /api/docs`), all built from [`ENDPOINTS`] and [`FRAMES`].
//!
//! The tables are kept in step with the code by tests (`tests/openapi.rs`): every route
//! of the routers must be in [`ENDPOINTS`] with its methods (and every entry must be served),
//! every route the README names must be here, and every frame type of `confab-shared`'s
//! `ClientFrame`, `ServerFrame` and `RoomEvent` (read from their generated TypeScript, which
//! the shared crate's own test keeps fresh) must be in [`FRAMES`]. The document is validated
//! with `openapi-spec-validator` by `scripts/test`.

use crate::state::AppState;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    None,
    /// A signed-in user (session cookie or access token), or an API token where its scopes
    /// allow (`read`: `GET`; `post`: `POST /api/rooms/{id}/messages`).
    User,
    /// A signed-in site administrator.
    Admin,
}

/// One operation of the HTTP API.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    /// The `confab-shared` type of the JSON body (or the form it takes), if it has one.
    pub body: Option<&'static str>,
}

const fn ep(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    auth: Auth,
    body: Option<&'static str>,
    summary: &'static str,
) -> Endpoint {
    Endpoint {
        method,
        path,
        tag,
        summary,
        auth,
        body,
    }
}

use Auth::{Admin, None as Anyone, User};

/// Every HTTP operation the origin serves.
pub const ENDPOINTS: &[Endpoint] = &[
    ep(
        "POST",
        "/api/auth/register",
        "auth",
        Anyone,
        Some("RegisterRequest"),
        "Create an account (and sign in); by invite, open or closed per CONFAB_REGISTRATION",
    ),
    ep(
        "GET",
        "/api/auth/confirm",
        "auth",
        Anyone,
        None,
        "Follow a confirmation link (?token=): creates the account and signs in",
    ),
    ep(
        "POST",
        "/api/auth/login",
        "auth",
        Anyone,
        Some("LoginRequest"),
        "Sign in by username or e-mail",
    ),
    ep(
        "POST",
        "/api/auth/logout",
        "auth",
        Anyone,
        None,
        "End this session",
    ),
    ep(
        "POST",
        "/api/auth/refresh",
        "auth",
        Anyone,
        None,
        "Trade the refresh cookie for fresh tokens",
    ),
    ep("GET", "/api/me", "me", User, None, "The signed-in user"),
    ep(
        "PATCH",
        "/api/me",
        "me",
        User,
        Some("UpdateMeRequest"),
        "Change your settings",
    ),
    ep(
        "POST",
        "/api/me/password",
        "me",
        User,
        Some("ChangePasswordRequest"),
        "Change your password (ends your other sessions)",
    ),
    ep(
        "GET",
        "/api/me/tokens",
        "tokens",
        User,
        None,
        "Your API tokens (no secrets)",
    ),
    ep(
        "POST",
        "/api/me/tokens",
        "tokens",
        User,
        Some("CreateTokenRequest"),
        "Make an API token (shown once)",
    ),
    ep(
        "DELETE",
        "/api/me/tokens/{id}",
        "tokens",
        User,
        None,
        "Revoke an API token (its sockets close)",
    ),
    ep(
        "GET",
        "/api/me/bots",
        "bots",
        User,
        None,
        "Your bot accounts",
    ),
    ep(
        "POST",
        "/api/me/bots",
        "bots",
        User,
        Some("CreateBotRequest"),
        "Make a bot account",
    ),
    ep(
        "DELETE",
        "/api/me/bots/{id}",
        "bots",
        User,
        None,
        "Delete a bot (deactivates it, ends its tokens)",
    ),
    ep(
        "GET",
        "/api/me/bots/{id}/tokens",
        "bots",
        User,
        None,
        "A bot's tokens",
    ),
    ep(
        "POST",
        "/api/me/bots/{id}/tokens",
        "bots",
        User,
        Some("CreateTokenRequest"),
        "Make a token for a bot (shown once)",
    ),
    ep(
        "DELETE",
        "/api/me/bots/{id}/tokens/{token}",
        "bots",
        User,
        None,
        "Revoke a bot's token",
    ),
    ep(
        "GET",
        "/api/invites",
        "invites",
        User,
        None,
        "Invites (all for administrators, your own otherwise)",
    ),
    ep(
        "POST",
        "/api/invites",
        "invites",
        User,
        Some("CreateInviteRequest"),
        "Make an invite {uses, expires_in_secs} → {code, url}",
    ),
    ep(
        "DELETE",
        "/api/invites/{id}",
        "invites",
        User,
        None,
        "Revoke an invite",
    ),
    ep(
        "GET",
        "/api/admin/users",
        "admin",
        Admin,
        None,
        "Accounts (?q= searches usernames and e-mails; &after=&limit=)",
    ),
    ep(
        "POST",
        "/api/admin/users",
        "admin",
        Admin,
        Some("{username, email, password, role?}"),
        "Create an account",
    ),
    ep(
        "PATCH",
        "/api/admin/users/{id}",
        "admin",
        Admin,
        Some("UpdateUserRequest"),
        "Change an account's site role",
    ),
    ep(
        "POST",
        "/api/admin/users/{id}/deactivate",
        "admin",
        Admin,
        None,
        "Deactivate an account: its sessions and sockets end on every instance",
    ),
    ep(
        "POST",
        "/api/admin/users/{id}/reactivate",
        "admin",
        Admin,
        None,
        "Reactivate an account",
    ),
    ep(
        "POST",
        "/api/admin/users/{id}/reset-password",
        "admin",
        Admin,
        None,
        "Set a temporary password that must be changed at the next sign-in",
    ),
    ep(
        "DELETE",
        "/api/admin/rooms/{id}",
        "admin",
        Admin,
        None,
        "Delete a room for everyone",
    ),
    ep(
        "DELETE",
        "/api/admin/messages/{id}",
        "admin",
        Admin,
        None,
        "Remove any message",
    ),
    ep(
        "GET",
        "/api/admin/audit",
        "admin",
        Admin,
        None,
        "The audit log, newest first (?before=&limit=)",
    ),
    ep(
        "GET",
        "/api/rooms",
        "rooms",
        User,
        None,
        "Rooms (?q=&scope=joined|discover|all&cursor=&limit=)",
    ),
    ep(
        "POST",
        "/api/rooms",
        "rooms",
        User,
        Some("CreateRoomRequest"),
        "Create a room (you become its owner)",
    ),
    ep("GET", "/api/rooms/{id}", "rooms", User, None, "One room"),
    ep(
        "PATCH",
        "/api/rooms/{id}",
        "rooms",
        User,
        Some("UpdateRoomRequest"),
        "Rename a room or set its topic (owner, admins)",
    ),
    ep(
        "POST",
        "/api/rooms/{id}/join",
        "rooms",
        User,
        None,
        "Join a public room",
    ),
    ep(
        "POST",
        "/api/rooms/{id}/leave",
        "rooms",
        User,
        None,
        "Leave a room",
    ),
    ep(
        "GET",
        "/api/rooms/{id}/members",
        "members",
        User,
        None,
        "Members with roles and presence",
    ),
    ep(
        "POST",
        "/api/rooms/{id}/members",
        "members",
        User,
        Some("UserRequest"),
        "Add a member (owner, admins)",
    ),
    ep(
        "DELETE",
        "/api/rooms/{id}/members/{user}",
        "members",
        User,
        None,
        "Remove a member (or yourself)",
    ),
    ep(
        "PATCH",
        "/api/rooms/{id}/members/{user}",
        "members",
        User,
        Some("RoleRequest"),
        "Change a member's role (owner)",
    ),
    ep(
        "GET",
        "/api/rooms/{id}/bans",
        "members",
        User,
        None,
        "Bans (owner, admins)",
    ),
    ep(
        "POST",
        "/api/rooms/{id}/bans",
        "members",
        User,
        Some("UserRequest"),
        "Ban someone (owner, admins)",
    ),
    ep(
        "DELETE",
        "/api/rooms/{id}/bans/{user}",
        "members",
        User,
        None,
        "Lift a ban",
    ),
    ep(
        "GET",
        "/api/rooms/{id}/messages",
        "messages",
        User,
        None,
        "A page of history (?before_seq= or ?around_seq=, &limit=)",
    ),
    ep(
        "POST",
        "/api/rooms/{id}/messages",
        "messages",
        User,
        Some("PostMessageRequest"),
        "Post a message; answered with the WebSocket's ack, idempotent by client_msg_id",
    ),
    ep(
        "GET",
        "/api/rooms/{id}/events",
        "messages",
        User,
        None,
        "The room's log after a seq (?after_seq=&limit=)",
    ),
    ep(
        "GET",
        "/api/rooms/{id}/pins",
        "messages",
        User,
        None,
        "Pinned messages",
    ),
    ep(
        "POST",
        "/api/rooms/{id}/read",
        "messages",
        User,
        Some("ReadRequest"),
        "Move your read marker",
    ),
    ep(
        "GET",
        "/api/rooms/{id}/receipts",
        "messages",
        User,
        None,
        "How far members have read",
    ),
    ep(
        "GET",
        "/api/rooms/{id}/webhooks",
        "webhooks",
        User,
        None,
        "A room's incoming webhooks (owner, admins)",
    ),
    ep(
        "POST",
        "/api/rooms/{id}/webhooks",
        "webhooks",
        User,
        Some("CreateWebhookRequest"),
        "Make an incoming webhook → {id, url} (owner, admins)",
    ),
    ep(
        "DELETE",
        "/api/rooms/{id}/webhooks/{hook}",
        "webhooks",
        User,
        None,
        "Revoke a webhook",
    ),
    ep(
        "POST",
        "/hooks/{secret}",
        "webhooks",
        Anyone,
        Some("WebhookPost"),
        "Post into the webhook's room: {text, username?} (Slack-compatible)",
    ),
    ep(
        "PATCH",
        "/api/messages/{id}",
        "messages",
        User,
        Some("EditMessageRequest"),
        "Edit your message",
    ),
    ep(
        "DELETE",
        "/api/messages/{id}",
        "messages",
        User,
        None,
        "Delete your message",
    ),
    ep(
        "PUT",
        "/api/messages/{id}/reactions/{emoji}",
        "messages",
        User,
        None,
        "React",
    ),
    ep(
        "DELETE",
        "/api/messages/{id}/reactions/{emoji}",
        "messages",
        User,
        None,
        "Take a reaction back",
    ),
    ep(
        "PUT",
        "/api/messages/{id}/pin",
        "messages",
        User,
        None,
        "Pin a message",
    ),
    ep(
        "DELETE",
        "/api/messages/{id}/pin",
        "messages",
        User,
        None,
        "Unpin a message",
    ),
    ep(
        "GET",
        "/api/users",
        "people",
        User,
        None,
        "Find people by username prefix (?q=&cursor=&limit=)",
    ),
    ep(
        "POST",
        "/api/dms",
        "people",
        User,
        Some("CreateDmRequest"),
        "Open the direct conversation with these people",
    ),
    ep(
        "GET",
        "/api/search",
        "search",
        User,
        None,
        "Search messages in your rooms (?q=&room=&cursor=&limit=)",
    ),
    ep(
        "POST",
        "/api/uploads",
        "files",
        User,
        Some("multipart: room_id, file"),
        "Upload a file into a room",
    ),
    ep(
        "PUT",
        "/api/uploads",
        "files",
        Anyone,
        Some("the file's bytes (Authorization: Bearer TICKET)"),
        "Upload with a ticket",
    ),
    ep(
        "POST",
        "/api/uploads/ticket",
        "files",
        User,
        Some("UploadTicketRequest"),
        "Ask for an upload ticket",
    ),
    ep(
        "GET",
        "/api/files/{key}",
        "files",
        User,
        None,
        "A file (members of its room)",
    ),
    ep(
        "GET",
        "/api/files/{key}/access",
        "files",
        User,
        None,
        "Whether you may read a file (for the edge)",
    ),
    ep(
        "GET",
        "/api/preview",
        "files",
        User,
        None,
        "A link preview (?url=)",
    ),
    ep(
        "GET",
        "/api/preview/image",
        "files",
        User,
        None,
        "A link preview's image (?url=)",
    ),
    ep(
        "GET",
        "/api/openapi.json",
        "meta",
        Anyone,
        None,
        "This document",
    ),
    ep(
        "GET",
        "/api/asyncapi.json",
        "meta",
        Anyone,
        None,
        "The WebSocket protocol (AsyncAPI 3.0)",
    ),
    ep(
        "GET",
        "/api/docs",
        "meta",
        Anyone,
        None,
        "The API reference as a page",
    ),
    ep(
        "GET",
        "/ws",
        "websocket",
        User,
        None,
        "The WebSocket (see /api/asyncapi.json): session cookie or Authorization: Bearer",
    ),
    ep("GET", "/healthz", "health", Anyone, None, "Liveness"),
    ep(
        "GET",
        "/readyz",
        "health",
        Anyone,
        None,
        "Readiness (checks the database)",
    ),
    ep(
        "GET",
        "/metrics",
        "health",
        Anyone,
        None,
        "Prometheus metrics (with CONFAB_METRICS_TOKEN as a bearer token)",
    ),
    ep(
        "GET",
        "/api/push/key",
        "notifications",
        User,
        None,
        "The VAPID public key for PushManager.subscribe (404 with push off)",
    ),
    ep(
        "POST",
        "/api/push/subscriptions",
        "notifications",
        User,
        Some("PushSubscriptionRequest"),
        "Turn push on for this browser (known push services over https only; 422 otherwise)",
    ),
    ep(
        "DELETE",
        "/api/push/subscriptions",
        "notifications",
        User,
        Some("PushUnsubscribeRequest"),
        "Turn push off for this browser",
    ),
    ep(
        "PATCH",
        "/api/rooms/{id}/notifications",
        "notifications",
        User,
        Some("NotificationLevelRequest"),
        "Your notification level for a room: all, mentions or none",
    ),
    ep(
        "GET",
        "/api/me/notifications",
        "notifications",
        User,
        None,
        "Your notification settings and room levels",
    ),
    ep(
        "GET",
        "/api/notifications/email/off",
        "notifications",
        Anyone,
        None,
        "The one-click link of a digest e-mail (?token=): turns these e-mails off",
    ),
];

/// Which way a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (`ClientFrame`).
    ToServer,
    /// Server to client (`ServerFrame`, including the log entries of `RoomEvent`).
    ToClient,
}

/// One WebSocket frame type.
#[derive(Debug, Clone, Copy)]
pub struct FrameDoc {
    pub direction: Direction,
    /// Its `"type"`.
    pub name: &'static str,
    /// Its fields besides `type`.
    pub fields: &'static str,
    pub summary: &'static str,
}

const fn frame(
    direction: Direction,
    name: &'static str,
    fields: &'static str,
    summary: &'static str,
) -> FrameDoc {
    FrameDoc {
        direction,
        name,
        fields,
        summary,
    }
}

use Direction::{ToClient, ToServer};

/// Every WebSocket frame, by its `type`.
pub const FRAMES: &[FrameDoc] = &[
    frame(
        ToServer,
        "subscribe",
        "room, after_seq?",
        "Receive a room's live entries (after replaying those after after_seq)",
    ),
    frame(
        ToServer,
        "unsubscribe",
        "room",
        "Stop receiving a room's entries",
    ),
    frame(
        ToServer,
        "send",
        "room, client_msg_id, body, attachment?, reply_to?",
        "Post a message (needs the post scope with a token)",
    ),
    frame(
        ToServer,
        "react",
        "room, message, emoji, on, ref",
        "React or take a reaction back",
    ),
    frame(ToServer, "edit", "room, id, body, ref", "Edit your message"),
    frame(ToServer, "delete", "room, id, ref", "Delete your message"),
    frame(ToServer, "typing", "room", "You are typing"),
    frame(ToServer, "read", "room, seq", "You have read up to seq"),
    frame(
        ToServer,
        "visibility",
        "visible",
        "Whether this tab is visible (a hidden tab's rooms get pushes)",
    ),
    frame(ToServer, "ping", "", "Keep-alive; answered with pong"),
    frame(ToClient, "ready", "user, ...", "The session is open"),
    frame(
        ToClient,
        "subscribed",
        "room, last_seq, recovered, online",
        "A subscription is live",
    ),
    frame(
        ToClient,
        "ack",
        "room, ref, client_msg_id?, id, seq",
        "Your change is committed",
    ),
    frame(
        ToClient,
        "presence",
        "room, user, online",
        "Someone came or went",
    ),
    frame(ToClient, "typing", "room, user", "Someone is typing"),
    frame(
        ToClient,
        "activity",
        "room, seq, unread, ...",
        "A new message in a room you watch but have not subscribed",
    ),
    frame(
        ToClient,
        "read",
        "room, user, seq",
        "A member's read receipt",
    ),
    frame(
        ToClient,
        "resync",
        "room",
        "You missed entries: subscribe again with after_seq",
    ),
    frame(
        ToClient,
        "membership",
        "room, member",
        "You joined or left a room elsewhere",
    ),
    frame(
        ToClient,
        "error",
        "code, message, ref?",
        "A request failed; nothing changed",
    ),
    frame(ToClient, "pong", "", "Answer to ping"),
    frame(
        ToClient,
        "message",
        "id, room, seq, author, body, client_msg_id, ...",
        "Log entry: a new message",
    ),
    frame(
        ToClient,
        "edited",
        "room, seq, id, body, edited_at",
        "Log entry: a message was edited",
    ),
    frame(
        ToClient,
        "deleted",
        "room, seq, id",
        "Log entry: a message was deleted",
    ),
    frame(
        ToClient,
        "reaction",
        "room, seq, message, user, emoji, on",
        "Log entry: a reaction changed",
    ),
    frame(
        ToClient,
        "pinned",
        "room, seq, message, by",
        "Log entry: a message was pinned",
    ),
    frame(
        ToClient,
        "unpinned",
        "room, seq, message, by",
        "Log entry: a message was unpinned",
    ),
    frame(
        ToClient,
        "member_added",
        "room, seq, user, by, role",
        "Log entry: someone became a member",
    ),
    frame(
        ToClient,
        "member_removed",
        "room, seq, user, by, ...",
        "Log entry: someone stopped being a member",
    ),
    frame(
        ToClient,
        "role_changed",
        "room, seq, user, role, by",
        "Log entry: a member's role changed",
    ),
    frame(
        ToClient,
        "room_updated",
        "room, seq, name?, topic?, by",
        "Log entry: the room's name or topic changed",
    ),
];

/// The routes serving the documents, under `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/asyncapi.json", get(asyncapi))
        .route("/docs", get(page))
}

/// `{name}` parameters of a path.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// The OpenAPI 3.1 document for a server at `public_url`.
pub fn openapi_document(public_url: &str) -> Value {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let mut item = match paths.remove(e.path) {
            Some(Value::Object(item)) => item,
            _ => Map::new(),
        };
        let parameters: Vec<Value> = path_parameters(e.path)
            .into_iter()
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let op_id = format!(
            "{}{}",
            e.method.to_lowercase(),
            e.path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let s = s.trim_start_matches('{').trim_end_matches('}');
                    let mut c = s.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
                .replace(['-', '.', '_'], "")
        );
        let mut op = json!({
            "operationId": op_id,
            "summary": e.summary,
            "tags": [e.tag],
            "responses": {
                "default": {
                    "description": "The answer; errors are {\"error\": {code, message}}",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                },
                "200": {"description": "Done"}
            }
        });
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        match e.auth {
            Auth::None => op["security"] = json!([]),
            Auth::User => op["security"] = json!([{"cookie": []}, {"bearer": []}]),
            Auth::Admin => op["security"] = json!([{"cookie": []}]),
        }
        if let Some(body) = e.body {
            op["requestBody"] = json!({
                "description": format!("confab-shared `{body}`"),
                "required": true,
                "content": {"application/json": {"schema": {"type": "object", "description": body}}}
            });
        }
        item.insert(e.method.to_lowercase(), op);
        paths.insert(e.path.to_owned(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Confab",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Confab's HTTP API. The WebSocket at /ws is described in /api/asyncapi.json. \
                            Bodies are the JSON types of the confab-shared crate (TypeScript: web/src/generated/protocol.ts)."
        },
        "servers": [{"url": public_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": confab_shared::claims::ACCESS_COOKIE},
                "bearer": {"type": "http", "scheme": "bearer", "description": "An access token, or an API token (cfb_...) within its scopes"}
            },
            "schemas": {
                "ErrorBody": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
                    }}
                }
            }
        }
    })
}

/// The AsyncAPI 3.0 document of the WebSocket.
pub fn asyncapi_document(public_url: &str) -> Value {
    let host = public_url
        .split("://")
        .nth(1)
        .unwrap_or(public_url)
        .trim_end_matches('/');
    let mut messages = Map::new();
    let mut send = Vec::new();
    let mut receive = Vec::new();
    for f in FRAMES {
        let key = format!(
            "{}_{}",
            if f.direction == Direction::ToServer {
                "client"
            } else {
                "server"
            },
            f.name
        );
        messages.insert(
            key.clone(),
            json!({
                "name": f.name,
                "summary": f.summary,
                "payload": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"const": f.name}},
                    "description": format!("Fields: {}", if f.fields.is_empty() { "none" } else { f.fields })
                }
            }),
        );
        let r = json!({"$ref": format!("#/channels/ws/messages/{key}")});
        if f.direction == Direction::ToServer {
            send.push(r);
        } else {
            receive.push(r);
        }
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {"title": "Confab WebSocket", "version": env!("CARGO_PKG_VERSION"),
                 "description": "JSON text frames tagged by \"type\", defined in confab-shared (ClientFrame, ServerFrame, RoomEvent)."},
        "servers": {"origin": {"host": host, "protocol": "ws"}},
        "channels": {"ws": {"address": "/ws", "messages": messages}},
        "operations": {
            "send": {"action": "receive", "channel": {"$ref": "#/channels/ws"}, "messages": send,
                     "summary": "Frames clients send"},
            "receive": {"action": "send", "channel": {"$ref": "#/channels/ws"}, "messages": receive,
                        "summary": "Frames the server sends"}
        }
    })
}

async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(openapi_document(&state.uploads.public_url))
}

async fn asyncapi(State(state): State<AppState>) -> Json<Value> {
    Json(asyncapi_document(&state.uploads.public_url))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The reference as one page (no scripts: the CSP allows none from elsewhere).
async fn page() -> impl IntoResponse {
    let mut html = String::from(
        "<!doctype html><meta charset=utf-8><title>Confab API</title>\
         <style>body{font:15px system-ui;margin:2rem;max-width:70rem}td,th{padding:.2rem .6rem;text-align:left;vertical-align:top}\
         code{font-size:13px}h2{margin-top:2rem}</style><h1>Confab API</h1>\
         <p>Machine-readable: <a href=\"/api/openapi.json\">OpenAPI 3.1</a> (HTTP), \
         <a href=\"/api/asyncapi.json\">AsyncAPI 3.0</a> (WebSocket). Errors are \
         <code>{\"error\": {code, message}}</code>.</p>",
    );
    let mut tags: Vec<&str> = ENDPOINTS.iter().map(|e| e.tag).collect();
    tags.dedup();
    let mut seen = Vec::new();
    for tag in tags {
        if seen.contains(&tag) {
            continue;
        }
        seen.push(tag);
        html.push_str(&format!("<h2>{}</h2><table>", escape(tag)));
        for e in ENDPOINTS.iter().filter(|e| e.tag == tag) {
            let who = match e.auth {
                Auth::None => "anyone",
                Auth::User => "signed in / token",
                Auth::Admin => "administrators",
            };
            html.push_str(&format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.method,
                escape(e.path),
                escape(e.summary),
                e.body.map(|b| format!("<code>{}</code>", escape(b))).unwrap_or_default(),
                who
            ));
        }
        html.push_str("</table>");
    }
    for (title, dir) in [
        ("WebSocket: client frames", Direction::ToServer),
        ("WebSocket: server frames", Direction::ToClient),
    ] {
        html.push_str(&format!("<h2>{title}</h2><table>"));
        for f in FRAMES.iter().filter(|f| f.direction == dir) {
            html.push_str(&format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                f.name,
                escape(f.fields),
                escape(f.summary)
            ));
        }
        html.push_str("</table>");
    }
    Html(html)
}

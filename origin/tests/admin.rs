//! Running a site, against the real server on both databases (SQLite, and a fresh PostgreSQL
//! database per test on the local server at CONFAB_TEST_POSTGRES_URL): registration modes and
//! invites, site administration and its audit log, API tokens, bots, incoming webhooks; and a
//! deactivation cut off on every instance (two instances on Redis).
#![allow(clippy::unwrap_used)]

mod common;

use common::{password, Client, TestServer};
use confab_origin::config::Registration;
use confab_origin::Config;
use confab_shared::api::{MessagePage, Room};
use confab_shared::protocol::ServerFrame;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn postgres_admin_url() -> String {
    std::env::var("CONFAB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn redis_url() -> String {
    std::env::var("CONFAB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh PostgreSQL database, dropped when the test ends.
struct PgDatabase {
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create() -> Self {
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&postgres_admin_url())
            .await
            .unwrap();
        let name = format!("confab_admin_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let base = postgres_admin_url();
        let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
        Self { name, url }
    }

    async fn drop_now(self) {
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&postgres_admin_url())
            .await
            .unwrap();
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&admin)
        .await;
    }
}

/// A server on `backend` whose settings `tweak` adjusts; the PostgreSQL database (if any) is
/// returned to be dropped after the server stops.
async fn start(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
) -> (TestServer, Option<PgDatabase>) {
    match backend {
        Backend::Sqlite => (TestServer::start_with(tweak).await, None),
        Backend::Postgres => {
            let db = PgDatabase::create().await;
            let dir = Arc::new(tempfile::tempdir().unwrap());
            let key = dir.path().join("key.pem");
            std::fs::write(&key, confab_origin::auth::tokens::generate_pem().unwrap()).unwrap();
            let url = db.url.clone();
            let server = TestServer::start_in(dir, move |c| {
                c.database_url = Some(url);
                c.jwt_private_key_file = Some(key);
                // Web Push needs a configured VAPID key outside the embedded default; these
                // tests are not about it.
                c.push.enabled = false;
                tweak(c);
            })
            .await;
            (server, Some(db))
        }
    }
}

async fn finish(server: TestServer, db: Option<PgDatabase>) {
    server.stop().await;
    if let Some(db) = db {
        db.drop_now().await;
    }
}

/// Registers at `base`; the status and body.
async fn register_raw(base: &str, name: &str, invite: Option<&str>) -> (u16, Value) {
    let mut body =
        json!({"username": name, "email": format!("{name}@example.com"), "password": password()});
    if let Some(code) = invite {
        body["invite"] = json!(code);
    }
    post_raw(base, "/api/auth/register", &body).await
}

async fn login_raw(base: &str, login: &str, password: &str, new: Option<&str>) -> (u16, Value) {
    let mut body = json!({"login": login, "password": password});
    if let Some(n) = new {
        body["new_password"] = json!(n);
    }
    post_raw(base, "/api/auth/login", &body).await
}

/// POSTs `body` to `base` + `path` with no cookies; the status and JSON body.
async fn post_raw(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn invite(admin: &Client, uses: u32, secs: u64) -> String {
    let (status, body) = json_of(
        admin
            .post(
                "/api/invites",
                json!({"uses": uses, "expires_in_secs": secs}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["url"]
        .as_str()
        .unwrap()
        .ends_with(body["code"].as_str().unwrap()));
    body["code"].as_str().unwrap().to_owned()
}

async fn audit_actions(admin: &Client) -> Vec<String> {
    let (status, body) = json_of(admin.get("/api/admin/audit?limit=200").await).await;
    assert_eq!(status, 200, "{body}");
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// A client using an API token (no cookies).
struct Bearer {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Bearer {
    fn new(base: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.into(),
            token: token.into(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn ws(&self) -> common::Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("{}/ws", self.base.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        let (stream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut ws = common::Ws { stream };
        assert!(matches!(ws.next().await, ServerFrame::Ready { .. }));
        ws
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends!(
    invite_mode_needs_a_valid_invite_and_enforces_uses_and_expiry,
    users_invite_when_the_site_allows_it,
    closed_mode_lets_only_administrators_create_accounts,
    a_deactivated_user_is_cut_off_at_once_and_cannot_sign_in,
    administration_is_for_administrators_and_every_action_is_audited,
    tokens_are_scoped_and_a_revoked_one_stops_at_once,
    bots_act_only_in_their_rooms_within_their_scopes,
    webhooks_post_into_their_room_only_and_are_rate_limited,
);

/// The default mode: the first account is free and administers the site; after it, only a
/// valid invite admits, for as many uses as it has, until it expires.
async fn invite_mode_needs_a_valid_invite_and_enforces_uses_and_expiry(backend: Backend) {
    let (server, db) = start(backend, |c| c.registration = Registration::Invite).await;
    let admin = server.register("root").await;
    assert_eq!(admin.me.role, confab_shared::admin::SiteRole::Admin);

    let (status, body) = register_raw(&server.base, "nobody", None).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = register_raw(&server.base, "guesser", Some("cfi_not-a-real-code")).await;
    assert_eq!(status, 403);

    let code = invite(&admin, 2, 3600).await;
    for name in ["ann", "bob"] {
        let (status, body) = register_raw(&server.base, name, Some(&code)).await;
        assert_eq!(status, 201, "{name}: {body}");
        assert_eq!(body["role"], "user", "only the first account administers");
    }
    let (status, _) = register_raw(&server.base, "cat", Some(&code)).await;
    assert_eq!(status, 403, "the invite's two uses are spent");

    // Users may not invite unless the site allows it.
    let ann = Client::login_at(&server.base, "ann").await;
    let res = ann
        .post("/api/invites", json!({"uses": 1, "expires_in_secs": 60}))
        .await;
    assert_eq!(res.status(), 403);

    let short = invite(&admin, 5, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = register_raw(&server.base, "dan", Some(&short)).await;
    assert_eq!(status, 403, "the invite has expired");

    // A revoked invite admits nobody.
    let (_, created) = json_of(
        admin
            .post("/api/invites", json!({"uses": 5, "expires_in_secs": 3600}))
            .await,
    )
    .await;
    let res = admin
        .delete(&format!("/api/invites/{}", created["id"].as_str().unwrap()))
        .await;
    assert_eq!(res.status(), 204);
    let (status, _) =
        register_raw(&server.base, "eve", Some(created["code"].as_str().unwrap())).await;
    assert_eq!(status, 403);
    let (_, list) = json_of(admin.get("/api/invites").await).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i.get("code").is_none()));
    finish(server, db).await;
}

/// With CONFAB_INVITES_BY_USERS, anyone signed in invites; each sees and revokes only their own.
async fn users_invite_when_the_site_allows_it(backend: Backend) {
    let (server, db) = start(backend, |c| {
        c.registration = Registration::Invite;
        c.invites_by_users = true;
    })
    .await;
    let admin = server.register("root").await;
    let root_code = invite(&admin, 1, 3600).await;
    let (status, _) = register_raw(&server.base, "ann", Some(&root_code)).await;
    assert_eq!(status, 201);
    let ann = Client::login_at(&server.base, "ann").await;
    let code = invite(&ann, 1, 3600).await;
    let (status, _) = register_raw(&server.base, "bob", Some(&code)).await;
    assert_eq!(status, 201);
    let (_, mine) = json_of(ann.get("/api/invites").await).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "only her own: {mine}");
    let (_, all) = json_of(admin.get("/api/invites").await).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let roots = all
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["created_by"] == json!(admin.me.id))
        .unwrap();
    let res = ann
        .delete(&format!("/api/invites/{}", roots["id"].as_str().unwrap()))
        .await;
    assert_eq!(res.status(), 404, "not hers to revoke");
    finish(server, db).await;
}

async fn closed_mode_lets_only_administrators_create_accounts(backend: Backend) {
    let (server, db) = start(backend, |c| c.registration = Registration::Closed).await;
    let (status, _) = register_raw(&server.base, "first", None).await;
    assert_eq!(
        status, 403,
        "closed: not even the first account registers itself"
    );
    finish(server, db).await;

    // Open: anyone registers; the first account is still the administrator.
    let (server, db) = start(backend, |c| c.registration = Registration::Open).await;
    let admin = server.register("root").await;
    assert_eq!(admin.me.role, confab_shared::admin::SiteRole::Admin);
    let ann = server.register("ann").await;
    assert_eq!(ann.me.role, confab_shared::admin::SiteRole::User);
    let res = admin
        .post(
            "/api/admin/users",
            json!({"username": "made", "email": "made@example.com", "password": password()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    Client::login_at(&server.base, "made").await;
    assert!(audit_actions(&admin).await.contains(&"user.create".into()));
    finish(server, db).await;
}

async fn a_deactivated_user_is_cut_off_at_once_and_cannot_sign_in(backend: Backend) {
    let (server, db) = start(backend, |_| {}).await;
    let admin = server.register("root").await;
    let bob = server.register("bob").await;
    let room = bob.create_room("bobs").await;
    let mut ws = bob.ws().await;
    ws.subscribe(&room, None).await;

    let started = Instant::now();
    let res = admin
        .post(
            &format!("/api/admin/users/{}/deactivate", bob.me.id),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    ws.closed().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "socket closed after {took:?}"
    );
    assert_eq!(bob.get("/api/me").await.status(), 401);
    let (status, body) = login_raw(&server.base, "bob", password(), None).await;
    assert_eq!(status, 403, "{body}");

    let res = admin
        .post(
            &format!("/api/admin/users/{}/reactivate", bob.me.id),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (status, _) = login_raw(&server.base, "bob", password(), None).await;
    assert_eq!(status, 200);
    let actions = audit_actions(&admin).await;
    assert_eq!(actions[..2], ["user.reactivate", "user.deactivate"]);
    finish(server, db).await;
}

async fn administration_is_for_administrators_and_every_action_is_audited(backend: Backend) {
    let (server, db) = start(backend, |_| {}).await;
    let admin = server.register("root").await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;

    // Non-admins get 403 everywhere under /api/admin.
    let id = bob.me.id;
    for res in [
        ann.get("/api/admin/users?q=b").await,
        ann.get("/api/admin/audit").await,
        ann.post(&format!("/api/admin/users/{id}/deactivate"), json!({}))
            .await,
        ann.post(&format!("/api/admin/users/{id}/reset-password"), json!({}))
            .await,
        ann.patch(&format!("/api/admin/users/{id}"), json!({"role": "admin"}))
            .await,
    ] {
        assert_eq!(res.status(), 403);
    }

    // Search by name or address.
    let (status, page) = json_of(admin.get("/api/admin/users?q=BO").await).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob"]);

    // Roles: ann becomes an administrator; the last one cannot step down.
    let res = admin
        .patch(
            &format!("/api/admin/users/{}", ann.me.id),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(ann.get("/api/admin/audit").await.status(), 200);
    let res = ann
        .patch(
            &format!("/api/admin/users/{}", ann.me.id),
            json!({"role": "user"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = admin
        .patch(
            &format!("/api/admin/users/{}", admin.me.id),
            json!({"role": "user"}),
        )
        .await;
    assert_eq!(res.status(), 409, "the last administrator stays");

    // A password reset: bob's sessions end, and his next sign-in must set a new password.
    let (status, reset) = json_of(
        admin
            .post(&format!("/api/admin/users/{id}/reset-password"), json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bob.get("/api/me").await.status(), 401);
    let temporary = reset["temporary_password"].as_str().unwrap();
    let (status, body) = login_raw(&server.base, "bob", password(), None).await;
    assert_eq!(status, 401, "the old password is gone: {body}");
    let (status, body) = login_raw(&server.base, "bob", temporary, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("password_change_required"))
    );
    let (status, _) = login_raw(&server.base, "bob", temporary, Some("a brand new password")).await;
    assert_eq!(status, 200);
    let (status, _) = login_raw(&server.base, "bob", "a brand new password", None).await;
    assert_eq!(status, 200);

    // Any message can be removed, any room deleted.
    let bob = ann;
    let room = bob.create_room("doomed").await;
    let mut ws = bob.ws().await;
    ws.subscribe(&room, None).await;
    let (message, _) = ws.say(&room, "m1", "remove me").await;
    let res = admin
        .delete(&format!("/api/admin/messages/{message}"))
        .await;
    assert_eq!(res.status(), 200);
    ws.expect(|f| {
        matches!(
            f,
            ServerFrame::Entry(confab_shared::events::RoomEvent::Deleted(_))
        )
    })
    .await;
    let res = admin.delete(&format!("/api/admin/rooms/{}", room.id)).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        bob.get(&format!("/api/rooms/{}", room.id)).await.status(),
        404
    );
    let (_, rooms) = json_of(bob.get("/api/rooms?scope=all").await).await;
    assert!(rooms["rooms"].as_array().unwrap().is_empty(), "{rooms}");
    assert_eq!(
        bob.post(&format!("/api/rooms/{}/join", room.id), json!({}))
            .await
            .status(),
        404
    );

    let actions = audit_actions(&admin).await;
    for a in [
        "user.role",
        "user.reset_password",
        "message.remove",
        "room.delete",
    ] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
    // Paged, newest first.
    let (_, first) = json_of(admin.get("/api/admin/audit?limit=2").await).await;
    let before = first["next_before"].as_i64().unwrap();
    let (_, older) = json_of(
        admin
            .get(&format!("/api/admin/audit?limit=2&before={before}"))
            .await,
    )
    .await;
    assert!(older["entries"][0]["id"].as_i64().unwrap() < before);
    finish(server, db).await;
}

async fn make_token(client: &Client, path: &str, scopes: Value) -> (String, String) {
    let (status, body) = json_of(
        client
            .post(path, json!({"name": "t", "scopes": scopes}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["token"].as_str().unwrap().starts_with("cfb_"));
    (
        body["id"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

async fn tokens_are_scoped_and_a_revoked_one_stops_at_once(backend: Backend) {
    let (server, db) = start(backend, |_| {}).await;
    let ann = server.register("ann").await;
    let room = ann.create_room("general").await;
    let (_, read) = make_token(&ann, "/api/me/tokens", json!(["read"])).await;
    let (post_id, post) = make_token(&ann, "/api/me/tokens", json!(["read", "post"])).await;
    let read = Bearer::new(&server.base, &read);
    let post = Bearer::new(&server.base, &post);

    assert_eq!(read.get("/api/me").await.status(), 200);
    assert_eq!(
        read.get(&format!("/api/rooms/{}/messages", room.id))
            .await
            .status(),
        200
    );
    let send = json!({"client_msg_id": "c-1", "body": "hello *bots*"});
    let path = format!("/api/rooms/{}/messages", room.id);
    assert_eq!(
        read.post(&path, send.clone()).await.status(),
        403,
        "read cannot post"
    );
    // Tokens cannot change anything else, nor make more tokens.
    assert_eq!(
        post.post("/api/rooms", json!({"name": "x"})).await.status(),
        403
    );
    assert_eq!(
        post.post("/api/me/tokens", json!({"name": "y", "scopes": ["read"]}))
            .await
            .status(),
        403
    );
    assert_eq!(post.get("/api/me/tokens").await.status(), 403);

    let (status, ack) = json_of(post.post(&path, send.clone()).await).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["type"], "ack");
    let (_, again) = json_of(post.post(&path, send).await).await;
    assert_eq!(again, ack, "a resend gets the same ack");
    let (_, page) = json_of(ann.get(&path).await).await;
    let page: MessagePage = serde_json::from_value(page).unwrap();
    assert_eq!(page.messages.len(), 1);
    assert!(
        !page.messages[0].bot,
        "a person's token posts as the person"
    );

    // The WebSocket takes the token too, within its scopes.
    let mut ws = read.ws().await;
    ws.subscribe(&room, None).await;
    ws.send(json!({"type": "send", "room": room.id, "client_msg_id": "w-1", "body": "no"}))
        .await;
    let refused = ws.expect(|f| matches!(f, ServerFrame::Error { .. })).await;
    assert!(matches!(
        refused,
        ServerFrame::Error {
            code: confab_shared::ErrorCode::Forbidden,
            ..
        }
    ));
    let mut posting = post.ws().await;
    posting.subscribe(&room, None).await;

    // Revoked: requests fail and its socket closes, at once.
    let res = ann.delete(&format!("/api/me/tokens/{post_id}")).await;
    assert_eq!(res.status(), 204);
    assert_eq!(post.get("/api/me").await.status(), 401);
    let started = Instant::now();
    posting.closed().await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        read.get("/api/me").await.status(),
        200,
        "the other token still works"
    );
    let (_, list) = json_of(ann.get("/api/me/tokens").await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    finish(server, db).await;
}

async fn bots_act_only_in_their_rooms_within_their_scopes(backend: Backend) {
    let (server, db) = start(backend, |_| {}).await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let ours = ann.create_room("ours").await;
    let theirs = bob.create_room("theirs").await;
    let (status, bot) = json_of(
        ann.post("/api/me/bots", json!({"name": "deploy-bot"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{bot}");
    let bot_id = bot["id"].as_str().unwrap().to_owned();
    let (_, token) = make_token(
        &ann,
        &format!("/api/me/bots/{bot_id}/tokens"),
        json!(["post"]),
    )
    .await;
    let bot = Bearer::new(&server.base, &token);
    // Bob cannot mint tokens for ann's bot.
    assert_eq!(
        bob.post(
            &format!("/api/me/bots/{bot_id}/tokens"),
            json!({"name": "x", "scopes": ["post"]})
        )
        .await
        .status(),
        404
    );

    let say = |room: &Room, id: &str| {
        (
            format!("/api/rooms/{}/messages", room.id),
            json!({"client_msg_id": id, "body": "beep"}),
        )
    };
    let (path, body) = say(&ours, "b-1");
    assert_eq!(
        bot.post(&path, body).await.status(),
        403,
        "not a member yet"
    );
    let res = ann
        .post(
            &format!("/api/rooms/{}/members", ours.id),
            json!({"user": bot_id}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (path, body) = say(&ours, "b-2");
    assert_eq!(bot.post(&path, body).await.status(), 200);
    let (path, body) = say(&theirs, "b-3");
    assert_eq!(bot.post(&path, body).await.status(), 403, "not its room");
    assert_eq!(
        bot.post(&format!("/api/rooms/{}/join", theirs.id), json!({}))
            .await
            .status(),
        403,
        "a token cannot join rooms"
    );
    assert_eq!(
        bot.get(&format!("/api/rooms/{}/messages", ours.id))
            .await
            .status(),
        403,
        "post only: no reading"
    );
    // A bot cannot sign in with a password.
    let (status, _) = login_raw(&server.base, "deploy-bot", "!bot", None).await;
    assert_eq!(status, 401);
    let (_, page) = json_of(ann.get(&format!("/api/rooms/{}/messages", ours.id)).await).await;
    let page: MessagePage = serde_json::from_value(page).unwrap();
    assert_eq!(page.messages.last().unwrap().author.username, "deploy-bot");
    assert!(page.messages.last().unwrap().bot, "marked as a bot's");

    // Bots are rate-limited like users (10 a second, bursts of 20): 60 posts sent at once
    // cannot all pass, however slowly a loaded machine serves them one by one.
    let statuses = futures::future::join_all((0..60).map(|i| {
        let (path, body) = say(&ours, &format!("r-{i}"));
        let bot = &bot;
        async move { bot.post(&path, body).await.status().as_u16() }
    }))
    .await;
    assert!(statuses.contains(&429), "{statuses:?}");

    let (_, bots) = json_of(ann.get("/api/me/bots").await).await;
    assert_eq!(bots.as_array().unwrap().len(), 1);
    assert_eq!(
        ann.delete(&format!("/api/me/bots/{bot_id}")).await.status(),
        204
    );
    let (path, body) = say(&ours, "b-9");
    assert_eq!(
        bot.post(&path, body).await.status(),
        401,
        "a deleted bot's tokens end"
    );
    finish(server, db).await;
}

async fn webhooks_post_into_their_room_only_and_are_rate_limited(backend: Backend) {
    let (server, db) = start(backend, |_| {}).await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("alerts").await;
    let other = ann.create_room("quiet").await;
    bob.join(&room).await;
    let res = bob
        .post(
            &format!("/api/rooms/{}/webhooks", room.id),
            json!({"name": "ci"}),
        )
        .await;
    assert_eq!(res.status(), 403, "only the room's managers");
    let (status, hook) = json_of(
        ann.post(
            &format!("/api/rooms/{}/webhooks", room.id),
            json!({"name": "CI"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let url = hook["url"].as_str().unwrap().to_owned();
    let secret = url.rsplit_once("/hooks/").unwrap().1.to_owned();
    assert!(url.ends_with(&format!("/hooks/{secret}")));
    let hook_url = server.url(&format!("/hooks/{secret}"));

    let http = reqwest::Client::new();
    let res = http
        .post(&hook_url)
        .json(&json!({"text": "build *passed*", "username": "jenkins"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, page) = json_of(ann.get(&format!("/api/rooms/{}/messages", room.id)).await).await;
    let page: MessagePage = serde_json::from_value(page).unwrap();
    let posted = page.messages.last().unwrap();
    assert_eq!(posted.body, "**jenkins:** build *passed*");
    assert!(posted.author.username.starts_with("CI-"));
    assert!(posted.bot);
    let (_, quiet) = json_of(ann.get(&format!("/api/rooms/{}/messages", other.id)).await).await;
    assert!(
        quiet["messages"].as_array().unwrap().is_empty(),
        "its room only"
    );

    // A wrong secret gets 404, and takes as long as a near miss of the right one (a coarse
    // check from outside, interleaved to share the machine's noise: both are one hash and one
    // indexed lookup, and the final comparison is constant-time).
    let near = format!(
        "{}{}",
        &secret[..secret.len() - 1],
        if secret.ends_with('A') { 'B' } else { 'A' }
    );
    let far = confab_origin::auth::secrets::generate("cfw_");
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..20 {
        for (i, s) in [&near, &far].into_iter().enumerate() {
            let started = Instant::now();
            let res = http
                .post(server.url(&format!("/hooks/{s}")))
                .json(&json!({"text": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 404, "round {round}");
            times[i].push(started.elapsed());
        }
    }
    for t in &mut times {
        t.sort();
    }
    let (a, b) = (times[0][10], times[1][10]);
    assert!(
        a.abs_diff(b) < Duration::from_millis(10),
        "median near miss {a:?}, median unknown {b:?}"
    );

    // Slack's shape alone is enough; rate-limited per webhook (60 posts at once cannot all pass).
    let statuses = futures::future::join_all((0..60).map(|i| {
        let (http, hook_url) = (&http, &hook_url);
        async move {
            http.post(hook_url)
                .json(&json!({"text": format!("n{i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );

    // Listed without the secret; revoked, it is gone.
    let (_, list) = json_of(ann.get(&format!("/api/rooms/{}/webhooks", room.id)).await).await;
    assert!(list[0].get("url").is_none());
    let id = hook["id"].as_str().unwrap();
    assert_eq!(
        ann.delete(&format!("/api/rooms/{}/webhooks/{id}", room.id))
            .await
            .status(),
        204
    );
    let res = http
        .post(&hook_url)
        .json(&json!({"text": "late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    finish(server, db).await;
}

/// Two instances on one Redis and one PostgreSQL: deactivating on one closes the user's
/// sockets on the other within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivation_cuts_the_user_off_on_every_instance() {
    let db = PgDatabase::create().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("key.pem");
    std::fs::write(&key, confab_origin::auth::tokens::generate_pem().unwrap()).unwrap();
    let instance = |dir: Arc<tempfile::TempDir>| {
        let url = db.url.clone();
        let key = key.clone();
        TestServer::start_in(dir, move |c| {
            c.database_url = Some(url);
            c.redis_url = Some(redis_url());
            c.jwt_private_key_file = Some(key);
            c.push.enabled = false;
        })
    };
    let a = instance(dir.clone()).await;
    let b = instance(Arc::new(tempfile::tempdir().unwrap())).await;
    let admin = a.register("root").await;
    let bob = b.register("bob").await;
    let mut on_b = bob.ws().await;
    let mut on_a = bob.via(&a.base).ws().await;

    let started = Instant::now();
    let res = admin
        .post(
            &format!("/api/admin/users/{}/deactivate", bob.me.id),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    on_a.closed().await;
    on_b.closed().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "cut off after {took:?}");
    assert_eq!(bob.get("/api/me").await.status(), 401);
    let (status, _) = login_raw(&b.base, "bob", password(), None).await;
    assert_eq!(status, 403);
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}

//! Incoming webhooks. A room's owner or admins create one (`POST /api/rooms/{id}/webhooks
//! {name}` → `{id, url}`, the url ending in `/hooks/{secret}`), list them and revoke them
//! (`GET`, `DELETE /api/rooms/{id}/webhooks/{hook}`). Each has its own bot account, a member of
//! the room. `POST /hooks/{secret}` with `{"text": ..., "username"?: ...}` (Slack's shape)
//! posts into that room only, as that bot, through the same checks, log and Markdown rules as
//! any message, rate limited per webhook like a connection.
//!
//! Secrets are looked up by their SHA-256 hash and checked again in constant time: an unknown
//! or revoked secret costs the same hash and one indexed lookup, and gets 404.

use super::{ApiJson, ApiPath};
use crate::auth::{secrets, Access, AuthUser};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::admin::WebhookRecord;
use crate::time::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use confab_shared::admin::{CreateWebhookRequest, Webhook, WebhookPost};
use confab_shared::ids::{ClientMsgId, RoomId};
use uuid::Uuid;

/// The management routes, under `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms/{id}/webhooks", get(list).post(create))
        .route("/rooms/{id}/webhooks/{hook}", delete(revoke))
}

/// `POST /hooks/{secret}`, outside `/api` (called by other servers, not browsers).
pub fn hooks_router() -> Router<AppState> {
    Router::new().route("/hooks/{secret}", post(incoming))
}

/// Fails unless the caller (signed in) owns or administers the room.
async fn room_manager(state: &AppState, room: RoomId, user: &AuthUser) -> Result<(), ApiError> {
    if user.access != Access::Session {
        return Err(ApiError::Forbidden("an API token cannot do this"));
    }
    super::rooms::require_member(state, room, user).await?;
    let role = state.store.member_role(room, user.id).await?;
    if !role.is_some_and(|r| r.manages()) {
        return Err(ApiError::Forbidden(
            "only the room's owner and admins manage its webhooks",
        ));
    }
    Ok(())
}

fn view(state: &AppState, h: &WebhookRecord, secret: Option<&str>) -> Webhook {
    Webhook {
        id: h.id,
        room: h.room,
        name: h.name.clone(),
        bot: h.bot,
        url: secret.map(|s| {
            format!(
                "{}/hooks/{s}",
                state.uploads.public_url.trim_end_matches('/')
            )
        }),
        created_at: h.created_at,
    }
}

/// A bot name from a webhook's name: its letters, digits, `_` and `-`, then a random suffix
/// (names are unique site-wide).
fn bot_name(name: &str) -> String {
    let base: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(20)
        .collect();
    let suffix = &Uuid::new_v4().simple().to_string()[..6];
    if base.is_empty() {
        format!("hook-{suffix}")
    } else {
        format!("{base}-{suffix}")
    }
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(room): ApiPath<RoomId>,
    ApiJson(req): ApiJson<CreateWebhookRequest>,
) -> Result<(StatusCode, Json<Webhook>), ApiError> {
    room_manager(&state, room, &user).await?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::Validation(
            "name must be 1-64 printable characters".into(),
        ));
    }
    let bot = super::tokens::new_bot(&state, user.id, &bot_name(name), None).await?;
    crate::membership::add(&state, &user.public(), room, bot.id).await?;
    let secret = secrets::generate(secrets::WEBHOOK_PREFIX);
    let hook = WebhookRecord {
        id: Uuid::now_v7(),
        room,
        bot: bot.id,
        bot_name: bot.username.clone(),
        name: name.to_owned(),
        secret_hash: secrets::hash(&secret),
        created_by: user.id,
        created_at: now_ms(),
    };
    state.store.create_webhook(&hook).await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, &hook, Some(&secret))),
    ))
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(room): ApiPath<RoomId>,
) -> Result<Json<Vec<Webhook>>, ApiError> {
    room_manager(&state, room, &user).await?;
    let hooks = state.store.webhooks(room).await?;
    Ok(Json(hooks.iter().map(|h| view(&state, h, None)).collect()))
}

async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((room, hook)): ApiPath<(RoomId, Uuid)>,
) -> Result<StatusCode, ApiError> {
    room_manager(&state, room, &user).await?;
    if !state.store.revoke_webhook(room, hook, now_ms()).await? {
        return Err(ApiError::NotFound("no such webhook"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The name a post gives beside the webhook's, made safe to put in bold at the start of the
/// text: one line, no Markdown emphasis marks, at most 64 characters.
fn shown_name(name: &str) -> Option<String> {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '*' | '_' | '`' | '[' | ']' | '\\'))
        .take(64)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

async fn incoming(
    State(state): State<AppState>,
    ApiPath(secret): ApiPath<String>,
    ApiJson(req): ApiJson<WebhookPost>,
) -> Result<Json<confab_shared::protocol::ServerFrame>, ApiError> {
    let not_found = || ApiError::NotFound("no such webhook");
    let hook = state
        .store
        .webhook_by_secret(&secrets::hash(&secret))
        .await?
        .filter(|h| secrets::matches(&secret, &h.secret_hash))
        .ok_or_else(not_found)?;
    // Removed from the room (kicked, banned): the webhook no longer posts there.
    if !state.store.is_member(hook.room, hook.bot).await? {
        return Err(not_found());
    }
    state
        .posts
        .check(hook.id)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let text = match req.username.as_deref().and_then(shown_name) {
        Some(name) => format!("**{name}:** {}", req.text),
        None => req.text,
    };
    // Each call is a new message (Slack's webhooks have no idempotency key).
    let client_msg_id = ClientMsgId::parse(&Uuid::now_v7().simple().to_string())
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("a uuid is a valid client_msg_id")))?;
    let author = confab_shared::protocol::UserPublic {
        id: hook.bot,
        username: hook.bot_name.clone(),
    };
    let post = crate::chat::Post {
        client_msg_id: client_msg_id.clone(),
        body: &text,
        attachment: None,
        reply_to: None,
        bot: true,
    };
    let accepted = crate::chat::post(&state, &author, hook.room, post).await?;
    let id = accepted
        .id
        .ok_or(ApiError::Unavailable("unexpected broker answer"))?;
    Ok(Json(confab_shared::protocol::ServerFrame::Ack {
        room: hook.room,
        reference: client_msg_id.clone().into(),
        client_msg_id: Some(client_msg_id),
        id,
        seq: accepted.seq,
    }))
}

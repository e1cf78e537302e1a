//! Changing messages over HTTP: editing and deleting (their author only, still a member of the
//! room), reactions and pins. Each is an entry of the room's log, like the WebSocket's `edit`,
//! `delete` and `react`; the answer carries the entry's seq.

use super::{ApiJson, ApiPath};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::{patch, put};
use axum::{Json, Router};
use confab_shared::api::{ChangeAck, EditMessageRequest};
use confab_shared::ids::{ClientRef, MessageId, RoomId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/messages/{id}", patch(edit).delete(delete))
        .route(
            "/messages/{id}/reactions/{emoji}",
            put(react_on).delete(react_off),
        )
        .route("/messages/{id}/pin", put(pin).delete(unpin))
}

fn ack(accepted: crate::broker::Accepted, id: MessageId) -> Json<ChangeAck> {
    Json(ChangeAck {
        id: accepted.id.unwrap_or(id),
        seq: accepted.seq,
    })
}

/// The room of a message the caller may see (a member of its room), or 404.
async fn room_of(state: &AppState, id: MessageId, user: &AuthUser) -> Result<RoomId, ApiError> {
    let message = state
        .store
        .message(id)
        .await?
        .ok_or(ApiError::NotFound("no such message"))?;
    if !state.store.is_member(message.room, user.id).await? {
        return Err(ApiError::NotFound("no such message"));
    }
    Ok(message.room)
}

/// A fresh reference: an HTTP request that is not answered may be repeated, and is then a
/// new change (an edit with the same text, or a delete answered `not_found`).
fn fresh_reference() -> ClientRef {
    ClientRef::from(uuid::Uuid::new_v4())
}

async fn edit(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<MessageId>,
    ApiJson(req): ApiJson<EditMessageRequest>,
) -> Result<Json<ChangeAck>, ApiError> {
    let room = room_of(&state, id, &user).await?;
    let accepted = crate::chat::edit(
        &state,
        &user.public(),
        room,
        id,
        &req.body,
        fresh_reference(),
    )
    .await?;
    Ok(ack(accepted, id))
}

async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<MessageId>,
) -> Result<Json<ChangeAck>, ApiError> {
    let room = room_of(&state, id, &user).await?;
    let accepted = crate::chat::delete(&state, &user.public(), room, id, fresh_reference()).await?;
    Ok(ack(accepted, id))
}

async fn react(
    state: &AppState,
    user: &AuthUser,
    id: MessageId,
    emoji: &str,
    on: bool,
) -> Result<Json<ChangeAck>, ApiError> {
    let room = room_of(state, id, user).await?;
    let accepted = crate::chat::react(
        state,
        &user.public(),
        room,
        id,
        emoji,
        on,
        fresh_reference(),
    )
    .await?;
    Ok(ack(accepted, id))
}

async fn react_on(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, emoji)): ApiPath<(MessageId, String)>,
) -> Result<Json<ChangeAck>, ApiError> {
    react(&state, &user, id, &emoji, true).await
}

async fn react_off(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, emoji)): ApiPath<(MessageId, String)>,
) -> Result<Json<ChangeAck>, ApiError> {
    react(&state, &user, id, &emoji, false).await
}

async fn set_pin(
    state: &AppState,
    user: &AuthUser,
    id: MessageId,
    on: bool,
) -> Result<Json<ChangeAck>, ApiError> {
    let room = room_of(state, id, user).await?;
    let accepted = crate::chat::pin(state, &user.public(), room, id, on, fresh_reference()).await?;
    Ok(ack(accepted, id))
}

async fn pin(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<MessageId>,
) -> Result<Json<ChangeAck>, ApiError> {
    set_pin(&state, &user, id, true).await
}

async fn unpin(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<MessageId>,
) -> Result<Json<ChangeAck>, ApiError> {
    set_pin(&state, &user, id, false).await
}

/// `POST /api/rooms/{id}/messages`: posts as the caller (for scripts and bots, with a `post`
/// token), through the same checks, log and Markdown rules as the WebSocket's `send`, rate
/// limited per poster like a connection. Answered with the WebSocket's `ack` frame; a resend
/// with the same `client_msg_id` gets the same ack and posts nothing.
pub async fn post_message(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(room): ApiPath<RoomId>,
    ApiJson(req): ApiJson<confab_shared::admin::PostMessageRequest>,
) -> Result<Json<confab_shared::protocol::ServerFrame>, ApiError> {
    super::rooms::require_member(&state, room, &user).await?;
    state
        .posts
        .check(user.id.0)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let post = crate::chat::Post {
        client_msg_id: req.client_msg_id.clone(),
        body: &req.body,
        attachment: None,
        reply_to: req.reply_to,
        bot: matches!(user.access, crate::auth::Access::Token { bot: true, .. }),
    };
    let accepted = crate::chat::post(&state, &user.public(), room, post).await?;
    let id = accepted
        .id
        .ok_or(ApiError::Unavailable("unexpected broker answer"))?;
    Ok(Json(confab_shared::protocol::ServerFrame::Ack {
        room,
        reference: ClientRef::from(req.client_msg_id.clone()),
        client_msg_id: Some(req.client_msg_id),
        id,
        seq: accepted.seq,
    }))
}

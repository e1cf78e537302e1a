//! Editing and deleting messages over HTTP, by their author only (still a member of the
//! room). Each is an entry of the room's log, like the WebSocket's `edit` and `delete`; the
//! answer carries the entry's seq.

use super::{ApiJson, ApiPath};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::patch;
use axum::{Json, Router};
use confab_shared::api::{ChangeAck, EditMessageRequest};
use confab_shared::ids::{ClientRef, MessageId, RoomId};

pub fn router() -> Router<AppState> {
    Router::new().route("/messages/{id}", patch(edit).delete(delete))
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
    Ok(Json(ChangeAck {
        id: accepted.id,
        seq: accepted.seq,
    }))
}

async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<MessageId>,
) -> Result<Json<ChangeAck>, ApiError> {
    let room = room_of(&state, id, &user).await?;
    let accepted = crate::chat::delete(&state, &user.public(), room, id, fresh_reference()).await?;
    Ok(Json(ChangeAck {
        id: accepted.id,
        seq: accepted.seq,
    }))
}

//! Editing and deleting messages, by their author only; the room sees `edited` / `deleted`.

use super::{ApiJson, ApiPath};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::MessageMeta;
use crate::time::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::patch;
use axum::Router;
use confab_shared::api::EditMessageRequest;
use confab_shared::domain::MessageBody;
use confab_shared::ids::MessageId;
use confab_shared::protocol::ServerFrame;

pub fn router() -> Router<AppState> {
    Router::new().route("/messages/{id}", patch(edit).delete(delete))
}

/// The message, if the caller wrote it and is still a member of its room.
async fn own_message(
    state: &AppState,
    id: MessageId,
    user: &AuthUser,
) -> Result<MessageMeta, ApiError> {
    let meta = state
        .store
        .message_meta(id)
        .await?
        .ok_or(ApiError::NotFound("no such message"))?;
    if !state.store.is_member(meta.room, user.id).await? {
        return Err(ApiError::NotFound("no such message"));
    }
    if meta.author != user.id {
        return Err(ApiError::Forbidden("only the author can change a message"));
    }
    Ok(meta)
}

async fn edit(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<MessageId>,
    ApiJson(req): ApiJson<EditMessageRequest>,
) -> Result<StatusCode, ApiError> {
    let body = MessageBody::parse(&req.body)?;
    let meta = own_message(&state, id, &user).await?;
    let now = now_ms();
    if !state.store.edit_message(id, body.as_str(), now).await? {
        return Err(ApiError::NotFound("no such message"));
    }
    state
        .broker
        .publish_event(
            meta.room,
            ServerFrame::Edited {
                room: meta.room,
                id,
                seq: meta.seq,
                body: body.into_inner(),
                edited_at: now,
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<MessageId>,
) -> Result<StatusCode, ApiError> {
    let meta = own_message(&state, id, &user).await?;
    if !state.store.delete_message(id, now_ms()).await? {
        return Err(ApiError::NotFound("no such message"));
    }
    state
        .broker
        .publish_event(
            meta.room,
            ServerFrame::Deleted {
                room: meta.room,
                id,
                seq: meta.seq,
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

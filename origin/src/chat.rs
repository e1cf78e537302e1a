//! What members do to a room's log — post, edit, delete — with the checks that both the
//! WebSocket commands and the HTTP API apply before the broker appends the change. The caller
//! has checked that the actor is a member of the room (the gateway from its view of the
//! connection's rooms, the HTTP API from the store). Errors are [`ApiError`]s, which both
//! callers turn into what their clients see (a status and body, or an `error` frame).

use crate::broker::{Accepted, Change};
use crate::error::ApiError;
use crate::state::AppState;
use confab_shared::domain::MessageBody;
use confab_shared::ids::{ClientMsgId, ClientRef, MessageId, RoomId};
use confab_shared::protocol::{AttachmentRef, ChatMessage, UserPublic};

/// Posts a message. With an attachment (the sender's own upload into this room) the text is a
/// caption and may be empty. A resend with the same `client_msg_id` gets the first answer.
pub async fn post(
    state: &AppState,
    author: &UserPublic,
    room: RoomId,
    client_msg_id: ClientMsgId,
    body: &str,
    attachment: Option<&AttachmentRef>,
) -> Result<Accepted, ApiError> {
    let body = match attachment {
        Some(_) => MessageBody::parse_caption(body)?,
        None => MessageBody::parse(body)?,
    };
    let attachment = match attachment {
        None => None,
        Some(r) => Some(
            state
                .uploads
                .resolve(&state.store, author.id, room, &r.0)
                .await?,
        ),
    };
    let change = Change::post(room, author.clone(), client_msg_id, body, attachment);
    Ok(state.broker.append(change).await?)
}

/// Replaces the text of the actor's own message.
pub async fn edit(
    state: &AppState,
    actor: &UserPublic,
    room: RoomId,
    id: MessageId,
    body: &str,
    reference: ClientRef,
) -> Result<Accepted, ApiError> {
    let body = MessageBody::parse(body)?;
    change_own_message(
        state,
        actor,
        room,
        id,
        reference,
        |actor, reference, message| Change::edit(actor, reference, message, body),
    )
    .await
}

/// Deletes the actor's own message.
pub async fn delete(
    state: &AppState,
    actor: &UserPublic,
    room: RoomId,
    id: MessageId,
    reference: ClientRef,
) -> Result<Accepted, ApiError> {
    change_own_message(state, actor, room, id, reference, Change::delete).await
}

/// Appends a change of the actor's own live message: a resend is answered as the first time
/// (even when the message has changed since, e.g. a resent delete); otherwise the message must
/// exist in the room, not be deleted, and be the actor's.
async fn change_own_message(
    state: &AppState,
    actor: &UserPublic,
    room: RoomId,
    id: MessageId,
    reference: ClientRef,
    change: impl FnOnce(UserPublic, ClientRef, ChatMessage) -> Change,
) -> Result<Accepted, ApiError> {
    if let Some(first) = state.broker.answered(room, actor.id, &reference).await? {
        return Ok(first);
    }
    let message = state
        .broker
        .message(room, id)
        .await?
        .filter(|m| !m.is_deleted())
        .ok_or(ApiError::NotFound("no such message"))?;
    if message.author.id != actor.id {
        return Err(ApiError::Forbidden("only the author can change a message"));
    }
    let change = change(actor.clone(), reference, message);
    Ok(state.broker.append(change).await?)
}

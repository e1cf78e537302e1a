//! What members do to a room's messages — post (with a reply and mentions), edit, delete,
//! react, pin — with the checks that both the WebSocket commands and the HTTP API apply before
//! the broker appends the change to the room's log. The caller
//! has checked that the actor is a member of the room (the gateway from its view of the
//! connection's rooms, the HTTP API from the store). Errors are [`ApiError`]s, which both
//! callers turn into what their clients see (a status and body, or an `error` frame).

use crate::broker::{Accepted, Change, ChangeKind};
use crate::error::ApiError;
use crate::state::AppState;
use confab_shared::conversation::{mentioned_usernames, Emoji, ReplyTo, RoomKind, Visibility};
use confab_shared::domain::MessageBody;
use confab_shared::ids::{ClientMsgId, ClientRef, MessageId, RoomId};
use confab_shared::protocol::{AttachmentRef, ChatMessage, UserPublic};

/// What a member posts.
pub struct Post<'a> {
    pub client_msg_id: ClientMsgId,
    pub body: &'a str,
    /// An upload of the sender's into this room; the text may then be empty.
    pub attachment: Option<&'a AttachmentRef>,
    /// The message of this room it answers.
    pub reply_to: Option<MessageId>,
    /// Whether the author is a bot account (marked on the message).
    pub bot: bool,
}

/// Posts a message. Its `@mentions` are resolved to the room's members; a reply quotes a live
/// message of the same room. A resend with the same `client_msg_id` gets the first answer.
pub async fn post(
    state: &AppState,
    author: &UserPublic,
    room: RoomId,
    post: Post<'_>,
) -> Result<Accepted, ApiError> {
    let body = match post.attachment {
        Some(_) => MessageBody::parse_caption(post.body)?,
        None => MessageBody::parse(post.body)?,
    };
    let attachment = match post.attachment {
        None => None,
        Some(r) => Some(
            state
                .uploads
                .resolve(&state.store, author.id, room, &r.0)
                .await?,
        ),
    };
    let reply_to = match post.reply_to {
        None => None,
        Some(id) => match live_message(state, room, id).await {
            Ok(parent) => Some(ReplyTo::of(&parent)),
            Err(ApiError::NotFound(_)) => {
                return Err(ApiError::Validation(
                    "reply_to must be a live message of this room".into(),
                ))
            }
            Err(e) => return Err(e),
        },
    };
    let named = mentioned_usernames(body.as_str());
    let mentions = if named.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .members_named(room, &named)
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect()
    };
    let text = body.as_str().to_owned();
    let mut change = Change::post(room, author.clone(), post.client_msg_id, body, attachment);
    if let ChangeKind::Post {
        reply_to: r,
        mentions: m,
        bot,
        ..
    } = &mut change.kind
    {
        *r = reply_to;
        *m = mentions.clone();
        *bot = post.bot;
    }
    let accepted = state.broker.append(change).await?;
    if let Some(id) = accepted.id {
        state
            .notifier
            .posted(crate::notify::Posted {
                room,
                seq: accepted.seq,
                message: id,
                author,
                body: &text,
                mentions: &mentions,
            })
            .await;
    }
    Ok(accepted)
}

/// A live (not deleted) message of the room, as it is now; `not_found` otherwise.
async fn live_message(
    state: &AppState,
    room: RoomId,
    id: MessageId,
) -> Result<ChatMessage, ApiError> {
    state
        .broker
        .message(room, id)
        .await?
        .filter(|m| !m.is_deleted())
        .ok_or(ApiError::NotFound("no such message"))
}

/// Sets the actor's reaction with `emoji` on a live message of the room (adding one they have,
/// or taking back one they do not have, changes nothing).
pub async fn react(
    state: &AppState,
    actor: &UserPublic,
    room: RoomId,
    message: MessageId,
    emoji: &str,
    on: bool,
    reference: ClientRef,
) -> Result<Accepted, ApiError> {
    let emoji = Emoji::parse(emoji)?;
    if let Some(first) = state.broker.answered(room, actor.id, &reference).await? {
        return Ok(first);
    }
    live_message(state, room, message).await?;
    let change = Change {
        room,
        actor: actor.clone(),
        reference,
        kind: ChangeKind::React { message, emoji, on },
    };
    Ok(state.broker.append(change).await?)
}

/// Pins or unpins a live message: any member may in a public room or a direct conversation,
/// only the owner and admins in a private room.
pub async fn pin(
    state: &AppState,
    actor: &UserPublic,
    room: RoomId,
    message: MessageId,
    on: bool,
    reference: ClientRef,
) -> Result<Accepted, ApiError> {
    if let Some(first) = state.broker.answered(room, actor.id, &reference).await? {
        return Ok(first);
    }
    let record = state
        .store
        .room(room)
        .await?
        .ok_or(ApiError::NotFound("no such room"))?;
    if record.kind == RoomKind::Room && record.visibility == Visibility::Private {
        let role = state.store.member_role(room, actor.id).await?;
        if !role.is_some_and(|r| r.manages()) {
            return Err(ApiError::Forbidden(
                "only the owner and admins pin in a private room",
            ));
        }
    }
    live_message(state, room, message).await?;
    let change = Change {
        room,
        actor: actor.clone(),
        reference,
        kind: ChangeKind::Pin { message, on },
    };
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
    let message = live_message(state, room, id).await?;
    if message.author.id != actor.id {
        return Err(ApiError::Forbidden("only the author can change a message"));
    }
    let change = change(actor.clone(), reference, message);
    Ok(state.broker.append(change).await?)
}

/// Tells the room's subscribers how far the user has read, unless they keep that to
/// themselves. Best effort: a receipt lost is replaced by the next.
pub async fn publish_receipt(state: &AppState, user: &UserPublic, room: RoomId, seq: i64) {
    let shares = match state.store.user_by_id(user.id).await {
        Ok(Some(u)) => u.share_read_receipts,
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = ?e, "reading the receipt setting failed");
            false
        }
    };
    if !shares {
        return;
    }
    let frame = confab_shared::protocol::ServerFrame::Read {
        room,
        user: user.clone(),
        seq,
    };
    if let Err(e) = state.broker.publish_event(room, frame).await {
        tracing::warn!(error = ?e, "publishing a read receipt failed");
    }
}

//! Rooms: create, search and page through, get, join, leave, members, history, the log's
//! catch-up, read markers.

use super::{ApiJson, ApiPath, ApiQuery};
use crate::auth::AuthUser;
use crate::broker::UserEvent;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{RoomCursor, RoomQuery, RoomRecord};
use crate::time::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use confab_shared::api::{
    CreateRoomRequest, EventPage, Member, MessagePage, ReadRequest, Room, RoomPage, RoomScope,
};
use confab_shared::domain::RoomName;
use confab_shared::ids::RoomId;
use serde::Deserialize;
use std::collections::HashSet;
use uuid::Uuid;

/// Default and largest page sizes.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;
/// Default and largest pages of a room's log (the WebSocket replays up to 500 at once too).
const DEFAULT_EVENTS: u32 = 100;
const MAX_EVENTS: u32 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms", get(list).post(create))
        .route("/rooms/{id}", get(get_room))
        .route("/rooms/{id}/join", post(join))
        .route("/rooms/{id}/leave", post(leave))
        .route("/rooms/{id}/members", get(members))
        .route("/rooms/{id}/messages", get(history))
        .route("/rooms/{id}/events", get(events))
        .route("/rooms/{id}/read", post(read))
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    limit_within(limit, DEFAULT_PAGE, MAX_PAGE)
}

fn limit_within(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::Validation(format!(
            "limit must be between 1 and {max}"
        ))),
    }
}

/// Fails with 403 unless the user is a member of the room (404 when there is no such room).
pub async fn require_member(
    state: &AppState,
    room: RoomId,
    user: &AuthUser,
) -> Result<(), ApiError> {
    if state.store.is_member(room, user.id).await? {
        return Ok(());
    }
    match state.store.room(room).await? {
        Some(_) => Err(ApiError::Forbidden("you are not a member of this room")),
        None => Err(ApiError::NotFound("no such room")),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    q: Option<String>,
    #[serde(default)]
    scope: RoomScope,
    cursor: Option<String>,
    limit: Option<u32>,
}

fn encode_cursor(c: &RoomCursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode_cursor(s: &str) -> Result<RoomCursor, ApiError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::BadRequest("cursor is not one this server gave".into()))
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<RoomPage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let name_contains = q.q.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if name_contains
        .as_ref()
        .is_some_and(|s| s.chars().count() > 64)
    {
        return Err(ApiError::Validation(
            "search text is longer than 64 characters".into(),
        ));
    }
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let query = RoomQuery {
        user: user.id,
        scope: q.scope,
        name_contains,
        after,
        limit,
    };
    let mut rows = crate::metrics::db("list_rooms", state.store.list_rooms(&query)).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|(_, c)| encode_cursor(c))
    } else {
        None
    };
    Ok(Json(RoomPage {
        rooms: rows.into_iter().map(|(r, _)| r).collect(),
        next_cursor,
    }))
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateRoomRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let name = RoomName::parse(&req.name)?;
    let id = RoomId(Uuid::now_v7());
    state
        .store
        .create_room(RoomRecord {
            id,
            name: name.into_inner(),
            created_by: user.id,
            created_at: now_ms(),
        })
        .await?;
    state
        .broker
        .publish_user_event(
            user.id,
            UserEvent::Membership {
                room: id,
                member: true,
            },
        )
        .await?;
    let room = room_view(&state, id, &user).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

async fn room_view(state: &AppState, id: RoomId, user: &AuthUser) -> Result<Room, ApiError> {
    state
        .store
        .room_for(id, user.id)
        .await?
        .ok_or(ApiError::NotFound("no such room"))
}

async fn get_room(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<Json<Room>, ApiError> {
    Ok(Json(room_view(&state, id, &user).await?))
}

async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<Json<Room>, ApiError> {
    if state.store.room(id).await?.is_none() {
        return Err(ApiError::NotFound("no such room"));
    }
    if state.store.join_room(id, user.id, now_ms()).await? {
        state
            .broker
            .publish_user_event(
                user.id,
                UserEvent::Membership {
                    room: id,
                    member: true,
                },
            )
            .await?;
    }
    Ok(Json(room_view(&state, id, &user).await?))
}

async fn leave(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<StatusCode, ApiError> {
    if state.store.room(id).await?.is_none() {
        return Err(ApiError::NotFound("no such room"));
    }
    if state.store.leave_room(id, user.id).await? {
        state
            .broker
            .publish_user_event(
                user.id,
                UserEvent::Membership {
                    room: id,
                    member: false,
                },
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn members(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<Json<Vec<Member>>, ApiError> {
    require_member(&state, id, &user).await?;
    let online: HashSet<_> = state
        .broker
        .online(id)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let members = state.store.members(id).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|(user, joined_at)| Member {
                online: online.contains(&user.id),
                user,
                joined_at,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    before_seq: Option<i64>,
    limit: Option<u32>,
}

async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let limit = page_limit(q.limit)?;
    if q.before_seq.is_some_and(|s| s < 1) {
        return Err(ApiError::Validation("before_seq must be at least 1".into()));
    }
    require_member(&state, id, &user).await?;
    let mut messages = crate::metrics::db(
        "messages_before",
        state.store.messages_before(id, q.before_seq, limit + 1),
    )
    .await?;
    let has_more = messages.len() > limit as usize;
    if has_more {
        // Oldest first: the extra row is the first one.
        messages.remove(0);
    }
    Ok(Json(MessagePage { messages, has_more }))
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after_seq: Option<i64>,
    limit: Option<u32>,
}

/// The room's log after `after_seq` (default 0: from the start), members only.
async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = limit_within(q.limit, DEFAULT_EVENTS, MAX_EVENTS)?;
    let after_seq = q.after_seq.unwrap_or(0);
    if after_seq < 0 {
        return Err(ApiError::Validation(
            "after_seq must not be negative".into(),
        ));
    }
    require_member(&state, id, &user).await?;
    // The last seq first: every entry up to it is then in the recovery (or past its limit).
    let last_seq = state.broker.last_seq(id).await?;
    let recovery = state.broker.recover(id, after_seq, limit).await?;
    Ok(Json(EventPage {
        last_seq: recovery
            .events
            .last()
            .map_or(last_seq, |e| e.seq().max(last_seq)),
        complete: recovery.complete,
        events: recovery.events,
    }))
}

async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
    ApiJson(req): ApiJson<ReadRequest>,
) -> Result<StatusCode, ApiError> {
    if req.seq < 0 {
        return Err(ApiError::Validation("seq must not be negative".into()));
    }
    require_member(&state, id, &user).await?;
    let seq = state.store.mark_read(id, user.id, req.seq).await?;
    state
        .broker
        .publish_user_event(user.id, UserEvent::ReadMarker { room: id, seq })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

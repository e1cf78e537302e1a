//! Rooms: create, search and page through, get, rename, join, leave, members (add, remove,
//! roles), bans, history (and around a seq), the log's catch-up, pins, read markers and
//! receipts. Membership rules live in [`crate::membership`].

use super::{decode_cursor, encode_cursor, limit_within, ApiJson, ApiPath, ApiQuery};
use crate::auth::AuthUser;
use crate::broker::UserEvent;
use crate::error::ApiError;
use crate::membership;
use crate::state::AppState;
use crate::store::{MemberRecord, RoomQuery};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use confab_shared::api::{
    Ban, CreateRoomRequest, EventPage, Member, MessagePage, Pin, ReadRequest, Receipt, RoleRequest,
    Room, RoomPage, RoomScope, UpdateRoomRequest, UserRequest,
};
use confab_shared::conversation::Visibility;
use confab_shared::ids::{RoomId, UserId};
use serde::Deserialize;
use std::collections::HashSet;

/// Default and largest page sizes.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;
/// Default and largest pages of a room's log (the WebSocket replays up to 500 at once too).
const DEFAULT_EVENTS: u32 = 100;
const MAX_EVENTS: u32 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms", get(list).post(create))
        .route("/rooms/{id}", get(get_room).patch(update))
        .route("/rooms/{id}/join", post(join))
        .route("/rooms/{id}/leave", post(leave))
        .route("/rooms/{id}/members", get(members).post(add_member))
        .route(
            "/rooms/{id}/members/{user}",
            delete(remove_member).patch(set_role),
        )
        .route("/rooms/{id}/bans", get(bans).post(ban))
        .route("/rooms/{id}/bans/{user}", delete(unban))
        .route(
            "/rooms/{id}/messages",
            get(history).post(super::messages::post_message),
        )
        .route("/rooms/{id}/events", get(events))
        .route("/rooms/{id}/pins", get(pins))
        .route("/rooms/{id}/read", post(read))
        .route("/rooms/{id}/receipts", get(receipts))
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    limit_within(limit, DEFAULT_PAGE, MAX_PAGE)
}

/// Fails unless the user is a member of the room: 403 for a public room, 404 for a private
/// room or direct conversation (whose existence outsiders do not learn), 404 when there is none.
pub async fn require_member(
    state: &AppState,
    room: RoomId,
    user: &AuthUser,
) -> Result<(), ApiError> {
    if state.store.is_member(room, user.id).await? {
        return Ok(());
    }
    match state.store.room(room).await? {
        Some(r) if r.visibility == Visibility::Public => {
            Err(ApiError::Forbidden("you are not a member of this room"))
        }
        _ => Err(ApiError::NotFound("no such room")),
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
    let id = membership::create(
        &state,
        &user.public(),
        &req.name,
        req.visibility.unwrap_or_default(),
        req.topic.as_deref(),
    )
    .await?;
    let room = room_view(&state, id, &user).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

/// A room as the user sees it; a private one only by its members.
pub async fn room_view(state: &AppState, id: RoomId, user: &AuthUser) -> Result<Room, ApiError> {
    let room = state
        .store
        .room_for(id, user.id)
        .await?
        .ok_or(ApiError::NotFound("no such room"))?;
    if room.visibility == Visibility::Private && !room.joined {
        return Err(ApiError::NotFound("no such room"));
    }
    Ok(room)
}

async fn get_room(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<Json<Room>, ApiError> {
    Ok(Json(room_view(&state, id, &user).await?))
}

async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
    ApiJson(req): ApiJson<UpdateRoomRequest>,
) -> Result<Json<Room>, ApiError> {
    membership::update(
        &state,
        &user.public(),
        id,
        req.name.as_deref(),
        req.topic.as_deref(),
    )
    .await?;
    Ok(Json(room_view(&state, id, &user).await?))
}

async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<Json<Room>, ApiError> {
    membership::join(&state, &user.public(), id).await?;
    Ok(Json(room_view(&state, id, &user).await?))
}

async fn leave(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<StatusCode, ApiError> {
    membership::leave(&state, &user.public(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn member_of(record: MemberRecord, online: &HashSet<UserId>) -> Member {
    Member {
        online: online.contains(&record.user.id),
        role: record.role,
        user: record.user,
        joined_at: record.joined_at,
    }
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
        members.into_iter().map(|m| member_of(m, &online)).collect(),
    ))
}

async fn add_member(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
    ApiJson(req): ApiJson<UserRequest>,
) -> Result<Json<Member>, ApiError> {
    let added = membership::add(&state, &user.public(), id, req.user).await?;
    Ok(Json(member_of(added, &HashSet::new())))
}

async fn remove_member(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, target)): ApiPath<(RoomId, UserId)>,
) -> Result<StatusCode, ApiError> {
    membership::remove(&state, &user.public(), id, target, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_role(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, target)): ApiPath<(RoomId, UserId)>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> Result<Json<Member>, ApiError> {
    let changed = membership::set_role(&state, &user.public(), id, target, req.role).await?;
    Ok(Json(member_of(changed, &HashSet::new())))
}

async fn bans(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<Json<Vec<Ban>>, ApiError> {
    require_member(&state, id, &user).await?;
    let role = state.store.member_role(id, user.id).await?;
    if !role.is_some_and(|r| r.manages()) {
        return Err(ApiError::Forbidden("only the owner and admins see bans"));
    }
    Ok(Json(state.store.bans(id).await?))
}

async fn ban(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
    ApiJson(req): ApiJson<UserRequest>,
) -> Result<StatusCode, ApiError> {
    membership::remove(&state, &user.public(), id, req.user, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unban(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, target)): ApiPath<(RoomId, UserId)>,
) -> Result<StatusCode, ApiError> {
    membership::unban(&state, &user.public(), id, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    before_seq: Option<i64>,
    around_seq: Option<i64>,
    limit: Option<u32>,
}

async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let limit = page_limit(q.limit)?;
    if q.before_seq.is_some_and(|s| s < 1) || q.around_seq.is_some_and(|s| s < 1) {
        return Err(ApiError::Validation(
            "before_seq and around_seq must be at least 1".into(),
        ));
    }
    if q.before_seq.is_some() && q.around_seq.is_some() {
        return Err(ApiError::Validation(
            "give before_seq or around_seq, not both".into(),
        ));
    }
    require_member(&state, id, &user).await?;
    let store = &state.store;
    if let Some(around) = q.around_seq {
        // Half before the seq, the rest from it on.
        let before = limit / 2;
        let mut older = store
            .messages_before(id, Some(around), before + 1, user.id)
            .await?;
        let has_more = older.len() > before as usize;
        if has_more {
            older.remove(0);
        }
        let after = limit - older.len() as u32;
        let mut newer = store.messages_from(id, around, after + 1, user.id).await?;
        let has_newer = newer.len() > after as usize;
        newer.truncate(after as usize);
        older.extend(newer);
        return Ok(Json(MessagePage {
            messages: older,
            has_more,
            has_newer,
        }));
    }
    let mut messages = crate::metrics::db(
        "messages_before",
        store.messages_before(id, q.before_seq, limit + 1, user.id),
    )
    .await?;
    let has_more = messages.len() > limit as usize;
    if has_more {
        // Oldest first: the extra row is the first one.
        messages.remove(0);
    }
    Ok(Json(MessagePage {
        messages,
        has_more,
        has_newer: false,
    }))
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

async fn pins(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<Json<Vec<Pin>>, ApiError> {
    require_member(&state, id, &user).await?;
    Ok(Json(state.store.pins(id, user.id).await?))
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
    crate::chat::publish_receipt(&state, &user.public(), id, seq).await;
    state.notifier.read(user.id, id, seq).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn receipts(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<Json<Vec<Receipt>>, ApiError> {
    require_member(&state, id, &user).await?;
    Ok(Json(state.store.receipts(id, user.id).await?))
}

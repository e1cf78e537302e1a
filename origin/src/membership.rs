//! Who is in a room, and who decides: joining, adding, removing (kicking, leaving), banning,
//! roles, the room's name and topic, and direct conversations. Each change is written to the
//! store at once (every later request's authorization reads it there), announced to the users
//! it concerns on every instance (their sockets start or stop receiving the room at once), and
//! recorded in the room's log (members see it live and on recovery).
//!
//! The rules: the owner and admins manage a room (add, remove, ban, rename); only the owner
//! changes roles, and hands the room over by making someone else owner (becoming an admin).
//! An admin cannot remove or ban the owner or another admin. The owner cannot leave while
//! others remain. Private rooms are joined only by being added; banned users cannot join or be
//! added until unbanned. Direct conversations have fixed members and no owner.

use crate::broker::{Change, ChangeKind, UserEvent};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{MemberRecord, RoomRecord};
use crate::time::now_ms;
use confab_shared::conversation::{RoomKind, RoomRole, RoomTopic, Visibility, MAX_DM_OTHERS};
use confab_shared::domain::RoomName;
use confab_shared::events::{MemberAdded, MemberRemoved, RoleChanged, RoomEvent, RoomUpdated};
use confab_shared::ids::{ClientRef, RoomId, UserId};
use confab_shared::protocol::UserPublic;

/// A room that exists, or 404.
async fn room(state: &AppState, id: RoomId) -> Result<RoomRecord, ApiError> {
    state
        .store
        .room(id)
        .await?
        .ok_or(ApiError::NotFound("no such room"))
}

/// A named room (not a direct conversation), or 403.
async fn named_room(state: &AppState, id: RoomId) -> Result<RoomRecord, ApiError> {
    let record = room(state, id).await?;
    if record.kind == RoomKind::Dm {
        return Err(ApiError::Forbidden(
            "a direct conversation's members cannot change",
        ));
    }
    Ok(record)
}

/// The actor's role, failing with 403 (404 for a private room they cannot see) when they are
/// not a member.
async fn role_of(
    state: &AppState,
    record: &RoomRecord,
    user: UserId,
) -> Result<RoomRole, ApiError> {
    match state.store.member_role(record.id, user).await? {
        Some(role) => Ok(role),
        None if record.visibility == Visibility::Private => Err(ApiError::NotFound("no such room")),
        None => Err(ApiError::Forbidden("you are not a member of this room")),
    }
}

/// The actor's role, failing with 403 unless it manages the room.
async fn manager(
    state: &AppState,
    record: &RoomRecord,
    user: UserId,
) -> Result<RoomRole, ApiError> {
    let role = role_of(state, record, user).await?;
    if !role.manages() {
        return Err(ApiError::Forbidden("only the owner and admins can do that"));
    }
    Ok(role)
}

/// A user who exists, or 404.
async fn user(state: &AppState, id: UserId) -> Result<UserPublic, ApiError> {
    state
        .store
        .users_by_ids(&[id])
        .await?
        .pop()
        .ok_or(ApiError::NotFound("no such user"))
}

/// Records a change of the room's state in its log. The change is made already: when the log
/// cannot take the entry, the request fails with a retryable error that says so.
async fn announce(
    state: &AppState,
    actor: &UserPublic,
    room: RoomId,
    event: RoomEvent,
) -> Result<(), ApiError> {
    let change = Change {
        room,
        actor: actor.clone(),
        reference: ClientRef::from(uuid::Uuid::new_v4()),
        kind: ChangeKind::Record(event),
    };
    state.broker.append(change).await.map_err(|e| {
        tracing::warn!(error = %e, %room, "a membership change could not be recorded in the log");
        ApiError::Unavailable(
            "the change was made, but not announced yet: members see it after a reload",
        )
    })?;
    Ok(())
}

/// Tells the user's connections, on every instance, that they joined or left the room.
async fn tell(state: &AppState, user: UserId, room: RoomId, member: bool) -> Result<(), ApiError> {
    state
        .broker
        .publish_user_event(user, UserEvent::Membership { room, member })
        .await?;
    Ok(())
}

/// Adds `user` to the room with `role` (nothing when they are a member already), tells them
/// and records it.
async fn admit(
    state: &AppState,
    by: &UserPublic,
    record: &RoomRecord,
    user: &UserPublic,
    role: RoomRole,
) -> Result<(), ApiError> {
    if state.store.is_banned(record.id, user.id).await? {
        return Err(ApiError::Forbidden("banned from this room: unban first"));
    }
    if !state
        .store
        .add_member(record.id, user.id, role, now_ms())
        .await?
    {
        return Ok(());
    }
    tell(state, user.id, record.id, true).await?;
    let event = RoomEvent::MemberAdded(MemberAdded {
        room: record.id,
        seq: 0,
        user: user.clone(),
        role,
        by: by.clone(),
    });
    announce(state, by, record.id, event).await
}

/// Creates a room, its creator its owner.
pub async fn create(
    state: &AppState,
    by: &UserPublic,
    name: &str,
    visibility: Visibility,
    topic: Option<&str>,
) -> Result<RoomId, ApiError> {
    let name = RoomName::parse(name)?;
    let topic = topic
        .map(RoomTopic::parse)
        .transpose()?
        .and_then(RoomTopic::into_option);
    let id = RoomId(uuid::Uuid::now_v7());
    state
        .store
        .create_room(RoomRecord {
            id,
            name: name.into_inner(),
            kind: RoomKind::Room,
            visibility,
            topic,
            created_by: by.id,
            created_at: now_ms(),
        })
        .await?;
    tell(state, by.id, id, true).await?;
    Ok(id)
}

/// Joins a public room.
pub async fn join(state: &AppState, by: &UserPublic, room_id: RoomId) -> Result<(), ApiError> {
    let record = room(state, room_id).await?;
    if record.kind == RoomKind::Dm || record.visibility == Visibility::Private {
        if state.store.is_member(room_id, by.id).await? {
            return Ok(());
        }
        // A private room is not visible to those outside it.
        return Err(ApiError::NotFound("no such room"));
    }
    admit(state, by, &record, by, RoomRole::Member).await
}

/// Adds a member (the owner or an admin).
pub async fn add(
    state: &AppState,
    by: &UserPublic,
    room_id: RoomId,
    user_id: UserId,
) -> Result<MemberRecord, ApiError> {
    let record = named_room(state, room_id).await?;
    manager(state, &record, by.id).await?;
    let user = user(state, user_id).await?;
    admit(state, by, &record, &user, RoomRole::Member).await?;
    member(state, room_id, user_id).await
}

/// A member's record, or 404.
pub async fn member(
    state: &AppState,
    room_id: RoomId,
    user_id: UserId,
) -> Result<MemberRecord, ApiError> {
    state
        .store
        .members(room_id)
        .await?
        .into_iter()
        .find(|m| m.user.id == user_id)
        .ok_or(ApiError::NotFound("no such member"))
}

/// Removes `user_id`: themselves (leaving), or someone else (the owner or an admin; with `ban`,
/// also banning them, member or not).
pub async fn remove(
    state: &AppState,
    by: &UserPublic,
    room_id: RoomId,
    user_id: UserId,
    ban: bool,
) -> Result<(), ApiError> {
    let record = named_room(state, room_id).await?;
    let own_role = role_of(state, &record, by.id).await?;
    let target_role = state.store.member_role(room_id, user_id).await?;
    if user_id == by.id {
        if ban {
            return Err(ApiError::Validation("you cannot ban yourself".into()));
        }
        if own_role == RoomRole::Owner && state.store.members(room_id).await?.len() > 1 {
            return Err(ApiError::Conflict(
                "the owner cannot leave while others remain: hand over ownership first",
            ));
        }
    } else {
        if !own_role.manages() {
            return Err(ApiError::Forbidden("only the owner and admins can do that"));
        }
        if let Some(target) = target_role {
            if own_role != RoomRole::Owner && target.manages() {
                return Err(ApiError::Forbidden(
                    "only the owner can remove or ban an admin, and nobody the owner",
                ));
            }
            if target == RoomRole::Owner {
                return Err(ApiError::Forbidden("the owner cannot be removed"));
            }
        }
    }
    let target = user(state, user_id).await?;
    let removed = if ban {
        state.store.ban(room_id, user_id, by.id, now_ms()).await?;
        target_role.is_some()
    } else {
        state.store.remove_member(room_id, user_id).await?
    };
    if !removed && !ban {
        return Err(ApiError::NotFound("no such member"));
    }
    if removed {
        // Their sockets stop receiving the room now, on every instance.
        tell(state, user_id, room_id, false).await?;
        let event = RoomEvent::MemberRemoved(MemberRemoved {
            room: room_id,
            seq: 0,
            user: target,
            by: by.clone(),
            banned: ban,
        });
        announce(state, by, room_id, event).await?;
    }
    Ok(())
}

/// Leaves a room (nothing when not a member).
pub async fn leave(state: &AppState, by: &UserPublic, room_id: RoomId) -> Result<(), ApiError> {
    room(state, room_id).await?;
    if !state.store.is_member(room_id, by.id).await? {
        return Ok(());
    }
    remove(state, by, room_id, by.id, false).await
}

/// Lifts a ban (the owner or an admin).
pub async fn unban(
    state: &AppState,
    by: &UserPublic,
    room_id: RoomId,
    user_id: UserId,
) -> Result<(), ApiError> {
    let record = named_room(state, room_id).await?;
    manager(state, &record, by.id).await?;
    if !state.store.unban(room_id, user_id).await? {
        return Err(ApiError::NotFound("no such ban"));
    }
    Ok(())
}

/// Changes a member's role (the owner only). Making someone `owner` hands the room over: the
/// previous owner becomes an admin.
pub async fn set_role(
    state: &AppState,
    by: &UserPublic,
    room_id: RoomId,
    user_id: UserId,
    role: RoomRole,
) -> Result<MemberRecord, ApiError> {
    let record = named_room(state, room_id).await?;
    if role_of(state, &record, by.id).await? != RoomRole::Owner {
        return Err(ApiError::Forbidden("only the owner changes roles"));
    }
    if user_id == by.id {
        return Err(ApiError::Conflict(
            "the owner's role changes only by handing the room over",
        ));
    }
    let target = member(state, room_id, user_id).await?;
    if target.role == role {
        return Ok(target);
    }
    state.store.set_role(room_id, user_id, role).await?;
    let mut changes = vec![(target.user.clone(), role)];
    if role == RoomRole::Owner {
        state
            .store
            .set_role(room_id, by.id, RoomRole::Admin)
            .await?;
        changes.push((by.clone(), RoomRole::Admin));
    }
    for (user, role) in changes {
        let event = RoomEvent::RoleChanged(RoleChanged {
            room: room_id,
            seq: 0,
            user,
            role,
            by: by.clone(),
        });
        announce(state, by, room_id, event).await?;
    }
    member(state, room_id, user_id).await
}

/// Renames a room and/or sets its topic (the owner or an admin).
pub async fn update(
    state: &AppState,
    by: &UserPublic,
    room_id: RoomId,
    name: Option<&str>,
    topic: Option<&str>,
) -> Result<(), ApiError> {
    let name = name.map(RoomName::parse).transpose()?;
    let topic = topic
        .map(RoomTopic::parse)
        .transpose()?
        .map(RoomTopic::into_option);
    let record = named_room(state, room_id).await?;
    manager(state, &record, by.id).await?;
    if name.is_none() && topic.is_none() {
        return Ok(());
    }
    state
        .store
        .update_room(
            room_id,
            name.as_ref().map(RoomName::as_str),
            topic.as_ref().map(|t| t.as_deref()),
        )
        .await?;
    let now = room(state, room_id).await?;
    let event = RoomEvent::RoomUpdated(RoomUpdated {
        room: room_id,
        seq: 0,
        name: now.name,
        topic: now.topic,
        by: by.clone(),
    });
    announce(state, by, room_id, event).await
}

/// The direct conversation between `by` and `others` (1 to 8 other existing users): the same
/// one every time for the same set of people.
pub async fn open_dm(
    state: &AppState,
    by: &UserPublic,
    others: &[UserId],
) -> Result<RoomId, ApiError> {
    let mut people: Vec<UserId> = others.iter().copied().filter(|u| *u != by.id).collect();
    people.sort();
    people.dedup();
    if people.is_empty() {
        return Err(ApiError::Validation(
            "a direct conversation needs someone besides you".into(),
        ));
    }
    if people.len() > MAX_DM_OTHERS {
        return Err(ApiError::Validation(format!(
            "a direct conversation has at most {MAX_DM_OTHERS} other people"
        )));
    }
    if state.store.users_by_ids(&people).await?.len() != people.len() {
        return Err(ApiError::Validation(
            "unknown user in the conversation".into(),
        ));
    }
    people.push(by.id);
    people.sort();
    let key = people
        .iter()
        .map(UserId::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let id = state
        .store
        .open_dm(
            RoomRecord {
                id: RoomId(uuid::Uuid::now_v7()),
                name: String::new(),
                kind: RoomKind::Dm,
                visibility: Visibility::Private,
                topic: None,
                created_by: by.id,
                created_at: now_ms(),
            },
            &key,
            &people,
        )
        .await?;
    for user in &people {
        tell(state, *user, id, true).await?;
    }
    Ok(id)
}

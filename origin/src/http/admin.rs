//! Site administration under `/api/admin` (site administrators only, signed in, never by API
//! token): accounts (search, create, role, deactivate, reactivate, reset password), rooms
//! (delete), messages (remove), and the audit log every one of these actions is written to.
//!
//! Deactivating ends the account's sessions and tokens in the database, then tells every
//! instance (`UserEvent::SessionsRevoked(None)` through the broker), whose sessions close the
//! account's sockets at once.

use super::{ApiJson, ApiPath, ApiQuery, SiteAdmin};
use crate::auth::{password, AuthUser};
use crate::broker::UserEvent;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::admin::{Admission, NewAudit};
use crate::store::NewUser;
use crate::time::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use confab_shared::admin::{
    AdminUser, AdminUserPage, AuditPage, PasswordReset, SiteRole, UpdateUserRequest,
};
use confab_shared::domain::{Email, Password, Username};
use confab_shared::ids::{ClientRef, MessageId, RoomId, UserId};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{id}", axum::routing::patch(update_user))
        .route("/admin/users/{id}/deactivate", post(deactivate))
        .route("/admin/users/{id}/reactivate", post(reactivate))
        .route("/admin/users/{id}/reset-password", post(reset_password))
        .route("/admin/rooms/{id}", delete(delete_room))
        .route("/admin/messages/{id}", delete(remove_message))
        .route("/admin/audit", get(audit))
}

/// Writes an administrator's action to the audit log.
pub async fn record(
    state: &AppState,
    actor: &AuthUser,
    action: &'static str,
    target_user: Option<UserId>,
    target_room: Option<RoomId>,
    detail: Option<String>,
) -> Result<(), ApiError> {
    state
        .store
        .audit(NewAudit {
            at: now_ms(),
            actor: Some(actor.id),
            actor_name: actor.username.clone(),
            action,
            target_user,
            target_room,
            detail,
        })
        .await?;
    Ok(())
}

#[derive(serde::Deserialize)]
struct UserQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
    limit: Option<u32>,
}

/// Accounts whose username or e-mail contains `q`, by username, paged.
async fn users(
    State(state): State<AppState>,
    _admin: SiteAdmin,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<AdminUserPage>, ApiError> {
    let limit = super::limit_within(query.limit, 50, 200)?;
    let after: Option<String> = query
        .after
        .as_deref()
        .map(super::decode_cursor)
        .transpose()?;
    let mut rows = state
        .store
        .admin_users(query.q.trim(), after.as_deref(), limit)
        .await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|(_, folded)| super::encode_cursor(folded))
    } else {
        None
    };
    Ok(Json(AdminUserPage {
        users: rows.into_iter().map(|(u, _)| u).collect(),
        next,
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    username: String,
    email: String,
    password: String,
    #[serde(default)]
    role: SiteRole,
}

/// Creates an account (how accounts are made when registration is `closed`).
async fn create_user(
    State(state): State<AppState>,
    SiteAdmin(admin): SiteAdmin,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<AdminUser>), ApiError> {
    let username = Username::parse(&req.username)?;
    let email = Email::parse(&req.email)?;
    let password = Password::parse(&req.password)?;
    let hash = password::hash(password.expose().to_owned()).await?;
    let user = state
        .store
        .register_user(
            NewUser::new(username, email, hash),
            Admission::Operator(req.role),
            now_ms(),
        )
        .await?;
    record(
        &state,
        &admin,
        "user.create",
        Some(user.id),
        None,
        Some(user.role.as_str().into()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(admin_view(&user))))
}

fn admin_view(u: &crate::store::UserRecord) -> AdminUser {
    AdminUser {
        id: u.id,
        username: u.username.clone(),
        email: u.email.clone(),
        role: u.role,
        bot: u.bot_owner.is_some(),
        deactivated_at: u.deactivated_at,
        must_change_password: u.must_change_password,
        created_at: u.created_at,
    }
}

/// The account, or 404.
async fn target(state: &AppState, id: UserId) -> Result<crate::store::UserRecord, ApiError> {
    state
        .store
        .user_by_id(id)
        .await?
        .ok_or(ApiError::NotFound("no such user"))
}

/// Refuses to leave the site without an active administrator.
async fn keeps_an_admin(state: &AppState, user: &crate::store::UserRecord) -> Result<(), ApiError> {
    if user.role == SiteRole::Admin
        && user.deactivated_at.is_none()
        && state.store.active_admins().await? <= 1
    {
        return Err(ApiError::Conflict(
            "this is the last active administrator: name another first",
        ));
    }
    Ok(())
}

/// Changes an account's site role.
async fn update_user(
    State(state): State<AppState>,
    SiteAdmin(admin): SiteAdmin,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> Result<Json<AdminUser>, ApiError> {
    let user = target(&state, id).await?;
    if user.bot_owner.is_some() && req.role == SiteRole::Admin {
        return Err(ApiError::Validation(
            "a bot cannot be an administrator".into(),
        ));
    }
    if req.role != SiteRole::Admin {
        keeps_an_admin(&state, &user).await?;
    }
    state.store.set_site_role(id, req.role).await?;
    record(
        &state,
        &admin,
        "user.role",
        Some(id),
        None,
        Some(req.role.as_str().into()),
    )
    .await?;
    Ok(Json(admin_view(&target(&state, id).await?)))
}

/// Deactivates an account: it cannot sign in, and its sessions, tokens and sockets end now,
/// on every instance.
async fn deactivate(
    State(state): State<AppState>,
    SiteAdmin(admin): SiteAdmin,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<AdminUser>, ApiError> {
    let user = target(&state, id).await?;
    keeps_an_admin(&state, &user).await?;
    state.store.set_deactivated(id, Some(now_ms())).await?;
    // No pushes reach a deactivated account's browsers (they would not reach the room anyway).
    state.store.delete_user_push(id).await?;
    record(&state, &admin, "user.deactivate", Some(id), None, None).await?;
    state
        .broker
        .publish_user_event(id, UserEvent::SessionsRevoked(None))
        .await?;
    Ok(Json(admin_view(&target(&state, id).await?)))
}

/// Lets a deactivated account sign in again (its old sessions and tokens stay ended).
async fn reactivate(
    State(state): State<AppState>,
    SiteAdmin(admin): SiteAdmin,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<AdminUser>, ApiError> {
    target(&state, id).await?;
    state.store.set_deactivated(id, None).await?;
    record(&state, &admin, "user.reactivate", Some(id), None, None).await?;
    Ok(Json(admin_view(&target(&state, id).await?)))
}

/// A temporary password the user must replace at their next sign-in; their login sessions
/// end (API tokens stay: they do not depend on the password).
async fn reset_password(
    State(state): State<AppState>,
    SiteAdmin(admin): SiteAdmin,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<PasswordReset>, ApiError> {
    let user = target(&state, id).await?;
    if user.bot_owner.is_some() {
        return Err(ApiError::Validation("a bot has no password".into()));
    }
    let temporary = crate::auth::secrets::generate("")[..20].to_owned();
    let hash = password::hash(temporary.clone()).await?;
    state.store.reset_password(id, &hash, now_ms()).await?;
    // A password change ends the user's push subscriptions, as one of their own does.
    state.store.delete_user_push(id).await?;
    record(&state, &admin, "user.reset_password", Some(id), None, None).await?;
    state
        .broker
        .publish_user_event(id, UserEvent::SessionsRevoked(None))
        .await?;
    Ok(Json(PasswordReset {
        temporary_password: temporary,
    }))
}

/// Deletes a room for everyone: it disappears from every listing, its members are removed
/// (their sockets stop receiving it at once), its webhooks stop working.
async fn delete_room(
    State(state): State<AppState>,
    SiteAdmin(admin): SiteAdmin,
    ApiPath(id): ApiPath<RoomId>,
) -> Result<StatusCode, ApiError> {
    let members = state
        .store
        .delete_room(id, now_ms())
        .await?
        .ok_or(ApiError::NotFound("no such room"))?;
    record(&state, &admin, "room.delete", None, Some(id), None).await?;
    for member in members {
        state
            .broker
            .publish_user_event(
                member,
                UserEvent::Membership {
                    room: id,
                    member: false,
                },
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Removes any message (as its author's delete would: a `deleted` entry of the room's log).
async fn remove_message(
    State(state): State<AppState>,
    SiteAdmin(admin): SiteAdmin,
    ApiPath(id): ApiPath<MessageId>,
) -> Result<Json<confab_shared::api::ChangeAck>, ApiError> {
    let message = state
        .store
        .message(id)
        .await?
        .filter(|m| !m.is_deleted())
        .ok_or(ApiError::NotFound("no such message"))?;
    let room = message.room;
    let change =
        crate::broker::Change::delete(admin.public(), ClientRef::from(Uuid::new_v4()), message);
    let accepted = state.broker.append(change).await?;
    record(
        &state,
        &admin,
        "message.remove",
        None,
        Some(room),
        Some(id.to_string()),
    )
    .await?;
    Ok(Json(confab_shared::api::ChangeAck {
        id: accepted.id.unwrap_or(id),
        seq: accepted.seq,
    }))
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

/// The audit log, newest first.
async fn audit(
    State(state): State<AppState>,
    _admin: SiteAdmin,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = super::limit_within(query.limit, 50, 200)?;
    let entries = state.store.audit_page(query.before, limit).await?;
    let next_before = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}

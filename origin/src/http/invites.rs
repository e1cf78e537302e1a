//! Invites: `POST /api/invites {uses, expires_in_secs}` → `{code, url, ...}` (site
//! administrators, or every user with `CONFAB_INVITES_BY_USERS`), `GET /api/invites` (all of
//! them for administrators, one's own for others), `DELETE /api/invites/{id}`. The code is shown
//! once and stored as its SHA-256 hash; registering with it (`POST /api/auth/register
//! {invite}`) uses one of its uses, in the transaction that creates the account.

use super::{ApiJson, ApiPath};
use crate::auth::{secrets, AuthUser};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::admin::NewInvite;
use crate::time::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use confab_shared::admin::{CreateInviteRequest, Invite, SiteRole};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invites", get(list).post(create))
        .route("/invites/{id}", delete(revoke))
}

/// Longest life of an invite.
const MAX_EXPIRY_SECS: u64 = 90 * 86_400;

/// Whether the caller administers the site.
async fn is_admin(state: &AppState, user: &AuthUser) -> Result<bool, ApiError> {
    Ok(state
        .store
        .user_by_id(user.id)
        .await?
        .is_some_and(|u| u.role == SiteRole::Admin && u.deactivated_at.is_none()))
}

/// The sign-up link of a code (the web client reads it from the path).
pub fn invite_url(state: &AppState, code: &str) -> String {
    format!(
        "{}/invite/{code}",
        state.uploads.public_url.trim_end_matches('/')
    )
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateInviteRequest>,
) -> Result<(StatusCode, Json<Invite>), ApiError> {
    let admin = is_admin(&state, &user).await?;
    if !admin && !state.config.invites_by_users {
        return Err(ApiError::Forbidden("only site administrators may invite"));
    }
    if !(1..=1000).contains(&req.uses) {
        return Err(ApiError::Validation(
            "uses must be between 1 and 1000".into(),
        ));
    }
    if !(1..=MAX_EXPIRY_SECS).contains(&req.expires_in_secs) {
        return Err(ApiError::Validation(format!(
            "expires_in_secs must be between 1 and {MAX_EXPIRY_SECS}"
        )));
    }
    let code = secrets::generate(secrets::INVITE_PREFIX);
    let now = now_ms();
    let invite = NewInvite {
        id: uuid::Uuid::now_v7(),
        code_hash: secrets::hash(&code),
        created_by: user.id,
        uses: req.uses,
        expires_at: now + (req.expires_in_secs as i64) * 1000,
        created_at: now,
    };
    state.store.create_invite(invite.clone()).await?;
    if admin {
        super::admin::record(
            &state,
            &user,
            "invite.create",
            None,
            None,
            Some(format!("{} uses", req.uses)),
        )
        .await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(Invite {
            id: invite.id,
            url: Some(invite_url(&state, &code)),
            code: Some(code),
            uses: invite.uses,
            used: 0,
            expires_at: invite.expires_at,
            created_at: now,
            created_by: user.id,
            revoked_at: None,
        }),
    ))
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<Invite>>, ApiError> {
    let by = (!is_admin(&state, &user).await?).then_some(user.id);
    Ok(Json(state.store.invites(by).await?))
}

async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    let admin = is_admin(&state, &user).await?;
    let by = (!admin).then_some(user.id);
    if !state.store.revoke_invite(id, by, now_ms()).await? {
        return Err(ApiError::NotFound("no such invite"));
    }
    if admin {
        super::admin::record(
            &state,
            &user,
            "invite.revoke",
            None,
            None,
            Some(id.to_string()),
        )
        .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

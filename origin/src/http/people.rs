//! People: finding users by name, and direct conversations with them.

use super::{decode_cursor, encode_cursor, limit_within, ApiJson, ApiQuery};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_shared::api::{CreateDmRequest, Room, UserPage};
use serde::Deserialize;

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(users))
        .route("/dms", post(open_dm))
}

#[derive(Debug, Deserialize)]
struct UsersQuery {
    #[serde(default)]
    q: String,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// People whose username starts with `q` (any logged-in user may look; only names and ids are
/// shown, never e-mail addresses).
async fn users(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiQuery(q): ApiQuery<UsersQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let limit = limit_within(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let prefix = q.q.trim();
    if prefix.chars().count() > 32 {
        return Err(ApiError::Validation("q is longer than a username".into()));
    }
    let after: Option<String> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut users = state
        .store
        .users_by_prefix(prefix, after.as_deref(), limit)
        .await?;
    let next_cursor = if users.len() > limit as usize {
        users.truncate(limit as usize);
        users
            .last()
            .map(|u| encode_cursor(&u.username.to_lowercase()))
    } else {
        None
    };
    Ok(Json(UserPage { users, next_cursor }))
}

/// The direct conversation with these people.
async fn open_dm(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateDmRequest>,
) -> Result<Json<Room>, ApiError> {
    let id = crate::membership::open_dm(&state, &user.public(), &req.users).await?;
    Ok(Json(super::rooms::room_view(&state, id, &user).await?))
}

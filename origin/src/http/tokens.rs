//! Personal API tokens and bot accounts, managed by their owner while signed in (never with a
//! token): `GET/POST /api/me/tokens`, `DELETE /api/me/tokens/{id}`, `GET/POST /api/me/bots`,
//! `DELETE /api/me/bots/{id}`, `GET/POST /api/me/bots/{id}/tokens`,
//! `DELETE /api/me/bots/{id}/tokens/{token}`.
//!
//! A token is shown once (`cfb_...`) and stored as its SHA-256 hash, as a session of its user,
//! so revoking it ends its sockets at once on every instance (`SessionsRevoked`). A bot is an
//! account with an owner and no password; its owner adds it to rooms like any member, and it
//! acts only there, only within its tokens' scopes.

use super::{ApiJson, ApiPath};
use crate::auth::{secrets, Access, AuthUser};
use crate::broker::UserEvent;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::NewUser;
use crate::time::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use confab_shared::admin::{Bot, CreateBotRequest, CreateTokenRequest, TokenCreated, TokenInfo};
use confab_shared::domain::Username;
use confab_shared::ids::{SessionId, UserId};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me/tokens", get(my_tokens).post(create_my_token))
        .route("/me/tokens/{id}", delete(revoke_my_token))
        .route("/me/bots", get(bots).post(create_bot))
        .route("/me/bots/{id}", delete(delete_bot))
        .route(
            "/me/bots/{id}/tokens",
            get(bot_tokens).post(create_bot_token),
        )
        .route("/me/bots/{id}/tokens/{token}", delete(revoke_bot_token))
}

/// Only a signed-in owner manages tokens and bots (a token cannot make more tokens).
fn signed_in(user: &AuthUser) -> Result<(), ApiError> {
    if user.access != Access::Session {
        return Err(ApiError::Forbidden("an API token cannot do this"));
    }
    Ok(())
}

/// Makes a token for `owner_of_token`.
async fn issue(
    state: &AppState,
    user: UserId,
    req: CreateTokenRequest,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::Validation("name must be 1-64 characters".into()));
    }
    if req.scopes.is_empty() {
        return Err(ApiError::Validation(
            "scopes must name at least one of read, post".into(),
        ));
    }
    let token = secrets::generate(secrets::TOKEN_PREFIX);
    let id = SessionId(Uuid::now_v7());
    state
        .store
        .create_token(
            id,
            user,
            name,
            &req.scopes,
            &secrets::hash(&token),
            now_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(TokenCreated { id: id.0, token })))
}

/// Revokes a token of `user` and ends the sockets opened with it.
async fn revoke(state: &AppState, user: UserId, id: Uuid) -> Result<StatusCode, ApiError> {
    if !state
        .store
        .revoke_token(user, SessionId(id), now_ms())
        .await?
    {
        return Err(ApiError::NotFound("no such token"));
    }
    state
        .broker
        .publish_user_event(user, UserEvent::SessionsRevoked(Some(SessionId(id))))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn my_tokens(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    signed_in(&user)?;
    Ok(Json(state.store.tokens(user.id).await?))
}

async fn create_my_token(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    signed_in(&user)?;
    issue(&state, user.id, req).await
}

async fn revoke_my_token(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    signed_in(&user)?;
    revoke(&state, user.id, id).await
}

/// The caller's bot, or 404.
async fn my_bot(state: &AppState, user: &AuthUser, bot: UserId) -> Result<(), ApiError> {
    signed_in(user)?;
    let found = state.store.user_by_id(bot).await?;
    match found {
        Some(b) if b.bot_owner == Some(user.id) && b.deactivated_at.is_none() => Ok(()),
        _ => Err(ApiError::NotFound("no such bot")),
    }
}

async fn bots(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<Bot>>, ApiError> {
    signed_in(&user)?;
    let bots = state.store.bots(user.id).await?;
    Ok(Json(
        bots.into_iter()
            .map(|(b, avatar_url)| Bot {
                id: b.id,
                username: b.username,
                avatar_url,
                owner: user.id,
                created_at: b.created_at,
            })
            .collect(),
    ))
}

/// A bot's password hash: not a PHC string, so no password ever verifies against it.
pub const NO_PASSWORD: &str = "!bot";

/// Creates a bot account (unique name, like a username) owned by the caller.
pub async fn new_bot(
    state: &AppState,
    owner: UserId,
    name: &str,
    avatar_url: Option<&str>,
) -> Result<crate::store::UserRecord, ApiError> {
    let username = Username::parse(name)?;
    let id = UserId(Uuid::now_v7());
    // Bots have no mail; the address only keeps the column unique.
    let email = format!("bot-{}@bots.invalid", id.0.simple());
    Ok(state
        .store
        .create_bot(
            NewUser {
                id,
                username_folded: username.folded(),
                username: username.into_inner(),
                email_folded: email.clone(),
                email,
                password_hash: NO_PASSWORD.into(),
                created_at: now_ms(),
            },
            owner,
            avatar_url,
        )
        .await?)
}

async fn create_bot(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateBotRequest>,
) -> Result<(StatusCode, Json<Bot>), ApiError> {
    signed_in(&user)?;
    let avatar = req
        .avatar_url
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    if let Some(a) = avatar {
        if !a.starts_with("https://") || a.chars().count() > 500 {
            return Err(ApiError::Validation(
                "avatar_url must be an https URL of at most 500 characters".into(),
            ));
        }
    }
    let bot = new_bot(&state, user.id, &req.name, avatar).await?;
    Ok((
        StatusCode::CREATED,
        Json(Bot {
            id: bot.id,
            username: bot.username,
            avatar_url: avatar.map(str::to_owned),
            owner: user.id,
            created_at: bot.created_at,
        }),
    ))
}

/// Deletes a bot: the account is deactivated (its messages stay), its tokens and sockets end.
async fn delete_bot(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(bot): ApiPath<UserId>,
) -> Result<StatusCode, ApiError> {
    my_bot(&state, &user, bot).await?;
    state.store.set_deactivated(bot, Some(now_ms())).await?;
    state
        .broker
        .publish_user_event(bot, UserEvent::SessionsRevoked(None))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn bot_tokens(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(bot): ApiPath<UserId>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    my_bot(&state, &user, bot).await?;
    Ok(Json(state.store.tokens(bot).await?))
}

async fn create_bot_token(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(bot): ApiPath<UserId>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    my_bot(&state, &user, bot).await?;
    issue(&state, bot, req).await
}

async fn revoke_bot_token(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((bot, token)): ApiPath<(UserId, Uuid)>,
) -> Result<StatusCode, ApiError> {
    my_bot(&state, &user, bot).await?;
    revoke(&state, bot, token).await
}

//! Accounts and login sessions: register, login, logout, refresh, me, change password.
//!
//! Cookies: the access token (JWT, at most 15 minutes) in `confab_access` on `/`, the refresh
//! token in `confab_refresh` on `/api/auth` only. Both HttpOnly and SameSite=Lax, and Secure when
//! the public URL is https.

use super::{ApiJson, ClientAddr};
use crate::auth::tokens::{hash_refresh_token, new_refresh_token};
use crate::auth::{access_token, password, AuthUser};
use crate::broker::UserEvent;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{NewUser, RefreshOutcome, UserRecord};
use crate::time::{now_ms, now_secs};
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use confab_shared::api::{ChangePasswordRequest, LoginRequest, Me, RegisterRequest};
use confab_shared::claims::{ACCESS_COOKIE, REFRESH_COOKIE};
use confab_shared::domain::{Email, Password, Username};
use confab_shared::ids::{SessionId, UserId};
use cookie::{Cookie, SameSite};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/refresh", post(refresh))
        .route("/me", get(me).patch(update_me))
        .route("/me/password", post(change_password))
}

fn me_of(user: &UserRecord) -> Me {
    Me {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        created_at: user.created_at,
        share_read_receipts: user.share_read_receipts,
    }
}

fn cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    path: &'static str,
    max_age_secs: i64,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .path(path)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
}

fn refresh_ttl_secs(state: &AppState) -> i64 {
    state.config.refresh_ttl_days as i64 * 86_400
}

/// Cookies carrying a fresh access token and the given refresh token.
fn session_cookies(
    state: &AppState,
    jar: CookieJar,
    user: &UserRecord,
    session: SessionId,
    refresh_token: String,
) -> Result<CookieJar, ApiError> {
    let ttl = state.config.access_ttl_secs as i64;
    let access = state
        .keys
        .sign(user.id, session, &user.username, now_secs(), ttl)?;
    Ok(jar
        .add(cookie(state, ACCESS_COOKIE, access, "/", ttl))
        .add(cookie(
            state,
            REFRESH_COOKIE,
            refresh_token,
            "/api/auth",
            refresh_ttl_secs(state),
        )))
}

/// Starts a new login session for the user and returns its cookies.
async fn start_session(
    state: &AppState,
    jar: CookieJar,
    user: &UserRecord,
) -> Result<CookieJar, ApiError> {
    let session = SessionId(Uuid::new_v4());
    let (token, hash) = new_refresh_token();
    let now = now_ms();
    state
        .store
        .create_session(
            session,
            user.id,
            &hash,
            now + refresh_ttl_secs(state) * 1000,
            now,
        )
        .await?;
    session_cookies(state, jar, user, session, token)
}

fn clear_cookies(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(ACCESS_COOKIE).path("/"))
        .remove(Cookie::build(REFRESH_COOKIE).path("/api/auth"))
}

async fn register(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    jar: CookieJar,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let username = Username::parse(&req.username)?;
    let email = Email::parse(&req.email)?;
    let password = Password::parse(&req.password)?;
    state
        .throttle
        .check(None, addr)
        .map_err(|t| ApiError::RateLimited {
            retry_after: t.retry_after,
        })?;
    let hash = password::hash(password.expose().to_owned()).await?;
    let user = state
        .store
        .create_user(NewUser {
            id: UserId(Uuid::now_v7()),
            username_folded: username.folded(),
            username: username.into_inner(),
            email_folded: email.folded(),
            email: email.into_inner(),
            password_hash: hash,
            created_at: now_ms(),
        })
        .await?;
    let jar = start_session(&state, jar, &user).await?;
    Ok((StatusCode::CREATED, jar, axum::Json(me_of(&user))))
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    jar: CookieJar,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let login = req.login.trim().to_lowercase();
    if login.is_empty() || login.chars().count() > 254 {
        return Err(ApiError::Validation(
            "login must be a username or an email".into(),
        ));
    }
    state
        .throttle
        .check(Some(&login), addr)
        .map_err(|t| ApiError::RateLimited {
            retry_after: t.retry_after,
        })?;
    // Never hash unbounded input: anything over the password limit cannot match.
    if req.password.chars().count() > 128 {
        return Err(ApiError::InvalidCredentials);
    }
    let user = state.store.user_by_login(&login).await?;
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let user = match user {
        Some(user) if ok => user,
        _ => return Err(ApiError::InvalidCredentials),
    };
    let jar = start_session(&state, jar, &user).await?;
    Ok((jar, axum::Json(me_of(&user))))
}

/// Ends the caller's session (found from the access token even when it has expired), so its
/// refresh token and its sockets stop working.
async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    parts: Parts,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(claims) =
        access_token(&parts).and_then(|t| state.keys.verify_ignoring_expiry(&t).ok())
    {
        state.store.revoke_session(claims.sid, now_ms()).await?;
        state
            .broker
            .publish_user_event(claims.sub, UserEvent::SessionsRevoked(Some(claims.sid)))
            .await?;
    }
    Ok((StatusCode::NO_CONTENT, clear_cookies(jar)))
}

async fn refresh(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<impl IntoResponse, ApiError> {
    let Some(presented) = jar.get(REFRESH_COOKIE).map(|c| c.value().to_owned()) else {
        return Err(ApiError::Unauthorized);
    };
    let (token, hash) = new_refresh_token();
    let now = now_ms();
    let outcome = state
        .store
        .rotate_refresh(
            &hash_refresh_token(&presented),
            &hash,
            now + refresh_ttl_secs(&state) * 1000,
            now,
        )
        .await?;
    match outcome {
        RefreshOutcome::Rotated { user, session } => {
            let user = state
                .store
                .user_by_id(user)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            let jar = session_cookies(&state, jar, &user, session, token)?;
            Ok((jar, axum::Json(me_of(&user))).into_response())
        }
        RefreshOutcome::Reused { user, session } => {
            tracing::warn!(%session, "refresh token reused: session revoked");
            state
                .broker
                .publish_user_event(user, UserEvent::SessionsRevoked(Some(session)))
                .await?;
            Ok((clear_cookies(jar), ApiError::Unauthorized).into_response())
        }
        RefreshOutcome::Invalid => Ok((clear_cookies(jar), ApiError::Unauthorized).into_response()),
    }
}

async fn me(State(state): State<AppState>, user: AuthUser) -> Result<axum::Json<Me>, ApiError> {
    let user = state
        .store
        .user_by_id(user.id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(axum::Json(me_of(&user)))
}

/// Changes the caller's settings.
async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<confab_shared::api::UpdateMeRequest>,
) -> Result<axum::Json<Me>, ApiError> {
    if let Some(share) = req.share_read_receipts {
        state.store.set_share_read_receipts(user.id, share).await?;
    }
    me(State(state), user).await
}

/// Changes the password, ends every session of the user (other devices are logged out, their
/// sockets closed) and starts a new one for this client.
async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    jar: CookieJar,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let new_password = Password::parse(&req.new_password)?;
    let user = state
        .store
        .user_by_id(caller.id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if req.current_password.chars().count() > 128
        || !password::verify(req.current_password, Some(user.password_hash.clone())).await?
    {
        return Err(ApiError::Forbidden("the current password is wrong"));
    }
    let hash = password::hash(new_password.expose().to_owned()).await?;
    state.store.set_password_hash(user.id, &hash).await?;
    state.store.revoke_user_sessions(user.id, now_ms()).await?;
    state
        .broker
        .publish_user_event(user.id, UserEvent::SessionsRevoked(None))
        .await?;
    let jar = start_session(&state, jar, &user).await?;
    Ok((jar, axum::Json(me_of(&user))))
}

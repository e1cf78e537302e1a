//! Accounts and login sessions: register, login, logout, refresh, me, change password.
//!
//! Logins and password changes share the guessing limits of `crate::auth::throttle`.
//!
//! Cookies: the access token (JWT, at most 15 minutes) in `confab_access` on `/`, the refresh
//! token in `confab_refresh` on `/api/auth` only. Both HttpOnly and SameSite=Lax, and Secure when
//! the public URL is https.

use super::{ApiJson, ClientAddr};
use crate::auth::throttle::{AccountKey, Throttled};
use crate::auth::tokens::{hash_refresh_token, new_refresh_token};
use crate::auth::{access_token, password, AuthUser};
use crate::broker::UserEvent;
use crate::config::Registration;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::admin::Admission;
use crate::store::{NewUser, RefreshOutcome, UserRecord};
use crate::time::{now_ms, now_secs};
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use confab_shared::api::{
    ChangePasswordRequest, LoginRequest, Me, RegisterRequest, RegistrationPending,
};
use confab_shared::claims::{ACCESS_COOKIE, REFRESH_COOKIE};
use confab_shared::domain::{Email, Password, Username};
use confab_shared::ids::SessionId;
use cookie::{Cookie, SameSite};
use std::time::Instant;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/confirm", get(confirm))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/refresh", post(refresh))
        .route("/me", get(me).patch(update_me))
        .route("/me/password", post(change_password))
}

async fn me_of(state: &AppState, user: &UserRecord) -> Result<Me, ApiError> {
    let notify = state.store.notify_settings(user.id).await?;
    Ok(Me {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        created_at: user.created_at,
        share_read_receipts: user.share_read_receipts,
        push_previews: notify.push_previews,
        email_notifications: notify.email,
        role: user.role,
    })
}

/// How `CONFAB_REGISTRATION` admits a registration carrying `invite`.
fn admission(state: &AppState, invite: Option<&str>) -> Admission {
    match state.config.registration {
        Registration::Open => Admission::Open,
        Registration::Invite => Admission::Invite(invite.map(crate::auth::secrets::hash)),
        Registration::Closed => Admission::Closed,
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

fn throttled(t: Throttled) -> ApiError {
    ApiError::RateLimited {
        retry_after: t.retry_after,
    }
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
) -> Result<axum::response::Response, ApiError> {
    let username = Username::parse(&req.username)?;
    let email = Email::parse(&req.email)?;
    let password = Password::parse(&req.password)?;
    state.throttle.check_address(addr).map_err(throttled)?;
    let hash = password::hash(password.expose().to_owned()).await?;
    if let Some(mailer) = &state.mailer {
        return register_by_mail(&state, mailer, username, email, hash, req.invite).await;
    }
    let user = state
        .store
        .register_user(
            NewUser::new(username, email, hash),
            admission(&state, req.invite.as_deref()),
            now_ms(),
        )
        .await?;
    let jar = start_session(&state, jar, &user).await?;
    Ok((
        StatusCode::CREATED,
        jar,
        axum::Json(me_of(&state, &user).await?),
    )
        .into_response())
}

/// How long a confirmation link works.
const CONFIRM_TTL_MS: i64 = 24 * 3600 * 1000;

/// A registration waiting for its address to be confirmed: sealed into the link mailed to the
/// address (nothing is stored, so nothing tells a taken address from a new one).
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingRegistration {
    username: String,
    email: String,
    password_hash: String,
    expires_at: i64,
    /// The invite it was made with; used when the link is followed.
    #[serde(default)]
    invite: Option<String>,
}

/// Registration when the server confirms addresses: the same 202 whether or not the address
/// has an account. A new address gets a link that creates the account; an address that has
/// one gets a note saying so (and no link). Usernames are public, so a taken one still gets
/// 409. The password was hashed in both cases, and mail is only queued, so the answer takes
/// as long either way.
async fn register_by_mail(
    state: &AppState,
    mailer: &crate::mail::Mailer,
    username: Username,
    email: Email,
    password_hash: String,
    invite: Option<String>,
) -> Result<axum::response::Response, ApiError> {
    if state
        .store
        .user_by_login(&username.folded())
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict("username is taken"));
    }
    let public = &state.uploads.public_url;
    match state.store.user_by_login(&email.folded()).await? {
        Some(owner) => {
            mailer.send(
                email.as_str(),
                "Someone tried to register with your address",
                format!(
                    "Someone tried to create a Confab account at {public} with this e-mail \
                     address. It already belongs to your account \"{}\": sign in there. If it \
                     was not you, you need not do anything.\n",
                    owner.username
                ),
            );
        }
        None => {
            let pending = PendingRegistration {
                username: username.into_inner(),
                email: email.as_str().to_owned(),
                password_hash,
                expires_at: now_ms() + CONFIRM_TTL_MS,
                invite,
            };
            let plain = serde_json::to_vec(&pending).map_err(anyhow::Error::new)?;
            let sealed = state.keys.seal(&plain)?;
            mailer.send(
                email.as_str(),
                "Confirm your Confab account",
                format!(
                    "To finish creating your Confab account \"{}\" at {public}, open this link \
                     within 24 hours:\n\n{public}/api/auth/confirm?token={sealed}\n\n\
                     If you did not ask for it, ignore this message.\n",
                    pending.username
                ),
            );
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(RegistrationPending {
            message: "Check your e-mail: the link in it finishes the registration.".into(),
        }),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
struct ConfirmQuery {
    token: String,
}

/// The link of a confirmation mail: creates the account, signs it in and opens the client.
async fn confirm(
    State(state): State<AppState>,
    jar: CookieJar,
    super::ApiQuery(q): super::ApiQuery<ConfirmQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let invalid =
        || ApiError::BadRequest("this confirmation link is not valid or has expired".into());
    let pending: PendingRegistration = state
        .keys
        .open(&q.token)
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .ok_or_else(invalid)?;
    if pending.expires_at < now_ms() {
        return Err(invalid());
    }
    let username = Username::parse(&pending.username)?;
    let email = Email::parse(&pending.email)?;
    // Used twice, or the name or address was taken meanwhile: the store's unique rules say 409.
    // The invite is used now: a link of a used-up invite creates nothing.
    let user = state
        .store
        .register_user(
            NewUser::new(username, email, pending.password_hash),
            admission(&state, pending.invite.as_deref()),
            now_ms(),
        )
        .await?;
    let jar = start_session(&state, jar, &user).await?;
    Ok((jar, axum::response::Redirect::to("/")))
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
    state.throttle.check_address(addr).map_err(throttled)?;
    let user = state.store.user_by_login(&login).await?;
    // The budget is the account's, however it was named; a name of no account has its own.
    let account = match &user {
        Some(u) => AccountKey::User(u.id),
        None => AccountKey::Unknown(login),
    };
    state
        .throttle
        .check_account(&account, addr, Instant::now())
        .map_err(throttled)?;
    // Never hash unbounded input: anything over the password limit cannot match.
    let ok = req.password.chars().count() <= 128
        && password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let user = match user {
        Some(user) if ok => user,
        _ => {
            state
                .throttle
                .record_failure(&account, addr, Instant::now());
            return Err(ApiError::InvalidCredentials);
        }
    };
    // Told only to whoever knows the password.
    if user.deactivated_at.is_some() {
        return Err(ApiError::Forbidden("this account is deactivated"));
    }
    if user.must_change_password {
        let Some(new_password) = req.new_password else {
            return Err(ApiError::PasswordChangeRequired);
        };
        let new_password = Password::parse(&new_password)?;
        let hash = password::hash(new_password.expose().to_owned()).await?;
        state.store.set_password_hash(user.id, &hash).await?;
    }
    let jar = start_session(&state, jar, &user).await?;
    Ok((jar, axum::Json(me_of(&state, &user).await?)))
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
        // This browser's push subscriptions end with its session: no pushes after logout.
        state.store.delete_session_push(claims.sid).await?;
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
            Ok((jar, axum::Json(me_of(&state, &user).await?)).into_response())
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
    Ok(axum::Json(me_of(&state, &user).await?))
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
    if req.push_previews.is_some() || req.email_notifications.is_some() {
        state
            .store
            .set_notify_settings(user.id, req.push_previews, req.email_notifications)
            .await?;
    }
    me(State(state), user).await
}

/// Changes the password, ends every session of the user (other devices are logged out, their
/// sockets closed) and starts a new one for this client.
async fn change_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
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
    // The current password is guessed like a login's: the same budgets, shared with logins.
    state.throttle.check_address(addr).map_err(throttled)?;
    let account = AccountKey::User(user.id);
    state
        .throttle
        .check_account(&account, addr, Instant::now())
        .map_err(throttled)?;
    if req.current_password.chars().count() > 128
        || !password::verify(req.current_password, Some(user.password_hash.clone())).await?
    {
        state
            .throttle
            .record_failure(&account, addr, Instant::now());
        return Err(ApiError::Forbidden("the current password is wrong"));
    }
    let hash = password::hash(new_password.expose().to_owned()).await?;
    state.store.set_password_hash(user.id, &hash).await?;
    state.store.revoke_user_sessions(user.id, now_ms()).await?;
    // Every browser is logged out, so none keeps receiving pushes.
    state.store.delete_user_push(user.id).await?;
    state
        .broker
        .publish_user_event(user.id, UserEvent::SessionsRevoked(None))
        .await?;
    let jar = start_session(&state, jar, &user).await?;
    Ok((jar, axum::Json(me_of(&state, &user).await?)))
}

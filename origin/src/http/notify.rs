//! Notifications: `GET /api/push/key`, `POST`/`DELETE /api/push/subscriptions`,
//! `PATCH /api/rooms/{id}/notifications`, `GET /api/me/notifications`, and the one-click
//! `GET /api/notifications/email/off?token=` of the e-mail digest.

use super::{ApiJson, ApiPath, ApiQuery};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::notify::endpoint;
use crate::state::AppState;
use crate::store::notify::{default_level, PushSubscriptionRecord};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use confab_shared::ids::RoomId;
use confab_shared::notify::{
    NotificationLevelRequest, NotificationSettings, PushKey, PushSubscriptionRequest,
    PushUnsubscribeRequest, RoomNotificationLevel,
};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/push/key", get(key))
        .route("/push/subscriptions", post(subscribe).delete(unsubscribe))
        .route("/rooms/{id}/notifications", patch(set_level))
        .route("/me/notifications", get(settings))
        .route("/notifications/email/off", get(email_off))
}

/// The VAPID public key; 404 when Web Push is off.
async fn key(State(state): State<AppState>, _user: AuthUser) -> Result<Json<PushKey>, ApiError> {
    let vapid = state
        .notifier
        .vapid
        .as_ref()
        .ok_or(ApiError::NotFound("Web Push is off on this server"))?;
    Ok(Json(PushKey {
        key: vapid.public_key().to_owned(),
    }))
}

/// Stores this browser's subscription, tied to the caller's login session. An endpoint that
/// is not an https URL of a known push service, or names a private address, gets 422 and
/// nothing is stored.
async fn subscribe(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<PushSubscriptionRequest>,
) -> Result<StatusCode, ApiError> {
    if !state.notifier.enabled() {
        return Err(ApiError::NotFound("Web Push is off on this server"));
    }
    let invalid = |e: endpoint::EndpointError| ApiError::Validation(e.to_string());
    let url = endpoint::check(&req.endpoint, &state.notifier.allow).map_err(invalid)?;
    endpoint::check_keys(&req.keys.p256dh, &req.keys.auth).map_err(invalid)?;
    state
        .store
        .put_push_subscription(&PushSubscriptionRecord {
            user: user.id,
            session: Some(user.session),
            endpoint: url.to_string(),
            p256dh: req.keys.p256dh,
            auth: req.keys.auth,
            created_at: crate::time::now_ms(),
        })
        .await?;
    Ok(StatusCode::CREATED)
}

/// Forgets one of the caller's subscriptions (this browser turned push off).
async fn unsubscribe(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<PushUnsubscribeRequest>,
) -> Result<StatusCode, ApiError> {
    let endpoint = url::Url::parse(req.endpoint.trim())
        .map(|u| u.to_string())
        .unwrap_or(req.endpoint);
    state
        .store
        .delete_push_subscription(user.id, &endpoint)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the caller's level in a room (members only).
async fn set_level(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<RoomId>,
    ApiJson(req): ApiJson<NotificationLevelRequest>,
) -> Result<Json<RoomNotificationLevel>, ApiError> {
    super::rooms::require_member(&state, id, &user).await?;
    state
        .store
        .set_notification_level(id, user.id, req.level)
        .await?;
    Ok(Json(RoomNotificationLevel {
        room: id,
        level: req.level,
    }))
}

/// The caller's settings and their level in each of their rooms.
async fn settings(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<NotificationSettings>, ApiError> {
    let chosen: HashMap<RoomId, _> = state
        .store
        .notification_levels(user.id)
        .await?
        .into_iter()
        .collect();
    let mut levels = Vec::new();
    for member in state.store.member_rooms(user.id).await? {
        let level = match chosen.get(&member.room) {
            Some(l) => *l,
            None => match state.store.room(member.room).await? {
                Some(r) => default_level(r.kind),
                None => continue,
            },
        };
        levels.push(RoomNotificationLevel {
            room: member.room,
            level,
        });
    }
    let own = state.store.notify_settings(user.id).await?;
    Ok(Json(NotificationSettings {
        push_enabled: state.notifier.enabled(),
        push_previews: own.push_previews,
        email_available: state.mailer.is_some(),
        email_notifications: own.email,
        levels,
    }))
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: String,
}

/// The digest's one-click "stop these e-mails": needs no login (the token is the secret).
async fn email_off(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<impl IntoResponse, ApiError> {
    if q.token.len() > 128 || !state.store.email_off(&q.token).await? {
        return Err(ApiError::NotFound("no such link"));
    }
    Ok(Html(
        "<!doctype html><title>Confab</title><h1>E-mail notifications are off</h1>\
         <p>You will get no more e-mail about messages you missed. Turn them on again in \
         Confab's notification settings.</p>",
    ))
}

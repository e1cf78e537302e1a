//! Uploads and file serving, the origin's half of the edge contract (the edge worker serves the
//! same paths without `/api`):
//!
//! - `POST /api/uploads` (multipart `room_id`, `file`): members only → 201 `Attachment`.
//! - `POST /api/uploads/ticket` `UploadTicketRequest`: members only → `UploadTicket`.
//! - `PUT /api/uploads` with `Authorization: Bearer {ticket}` and the bytes → 201 `Attachment`;
//!   at most the ticket's declared size, once, while its user is still a member of the room.
//! - `GET /api/files/{key}`: logged-in members of the file's room only (others 403, logged-out
//!   401); nosniff, sandboxing CSP, `Content-Disposition: attachment` but for inline images,
//!   ETag / `If-None-Match`, `Range`, a year of private caching (keys are immutable).
//! - `GET /api/files/{key}/access`: the same decision without the bytes (204, 403, 404, 401),
//!   for the edge worker, which serves `/files/{key}` from R2 and asks this with the user's own
//!   access token (it caches a 204 for at most 30 s).
//!
//! Uploads stream into the file store (bounded memory) and are capped in number per user and
//! per server (`crate::files::Uploads::admit`).

use super::ApiPath;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::files::{new_key, IncomingError};
use crate::state::AppState;
use crate::store::UploadRecord;
use crate::time::{now_ms, now_secs};
use axum::body::Body;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_shared::api::{UploadTicket, UploadTicketRequest};
use confab_shared::claims::ISSUER;
use confab_shared::files::{
    clean_name, content_disposition, etag_matches, is_valid_key, parse_range, ByteRange,
    UploadTicketClaims, IMMUTABLE_CACHE, SANDBOX_CSP, TICKET_AUDIENCE, TICKET_TTL_SECS,
};
use confab_shared::ids::RoomId;
use futures::StreamExt;

/// Room for multipart framing and the `room_id` field on top of the file itself.
const MULTIPART_SLACK: u64 = 64 * 1024;
/// How much of a refused body is read and dropped before answering, so that ordinary clients
/// read the answer rather than a reset connection.
const DRAIN_BYTES: u64 = 4 * 1024 * 1024;
/// ... and for at most this long, so a client that stopped sending gets its answer anyway.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/uploads",
            post(upload_multipart)
                .put(upload_with_ticket)
                // The handlers count bytes against CONFAB_MAX_UPLOAD_BYTES themselves.
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/uploads/ticket", post(ticket))
        .route("/files/{key}", get(serve))
        .route("/files/{key}/access", get(access))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!("the file is over the {limit}-byte limit"))
}

/// Refuses early when the declared length is already over the limit.
fn check_length(headers: &HeaderMap, limit: u64) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// What a failed body read means for the client.
fn incoming_error(e: &(dyn std::error::Error + 'static)) -> IncomingError {
    if super::deadline::is_body_timeout(e) {
        IncomingError::Timeout
    } else {
        IncomingError::Broken
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge("the body is too large".into());
    }
    match incoming_error(&e) {
        IncomingError::Timeout => ApiError::BadRequest(IncomingError::Timeout.to_string()),
        _ => ApiError::BadRequest("the multipart body is malformed".into()),
    }
}

async fn upload_multipart(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    let result = read_multipart(&state, &user, &headers, &mut form).await;
    if result.is_err() {
        // Read (and drop) a bounded rest of the body, so the client reads our answer rather
        // than a connection reset while it is still sending.
        let drain = async {
            let mut drained = 0u64;
            'fields: while let Ok(Some(mut field)) = form.next_field().await {
                while let Ok(Some(chunk)) = field.chunk().await {
                    drained += chunk.len() as u64;
                    if drained > DRAIN_BYTES {
                        break 'fields;
                    }
                }
            }
        };
        let _drained_in_time = tokio::time::timeout(DRAIN_TIME, drain).await;
    }
    result
}

/// The origin's own upload: `room_id` first (membership is checked before any file byte is
/// read), then `file`, streamed into the file store.
async fn read_multipart(
    state: &AppState,
    user: &AuthUser,
    headers: &HeaderMap,
    form: &mut Multipart,
) -> Result<Response, ApiError> {
    let limit = state.uploads.max_bytes;
    check_length(headers, limit + MULTIPART_SLACK)?;
    let _slots = state.uploads.admit(user.id)?;
    let mut room: Option<RoomId> = None;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("room_id") => {
                let text = field.text().await.map_err(multipart_error)?;
                let id = serde_json::from_value(serde_json::Value::String(text.trim().to_owned()))
                    .map_err(|_| ApiError::BadRequest("room_id is not a room id".into()))?;
                super::rooms::require_member(state, id, user).await?;
                room = Some(id);
            }
            Some("file") => {
                let Some(room) = room else {
                    return Err(ApiError::BadRequest(
                        "room_id must come before file in the form".into(),
                    ));
                };
                let record = UploadRecord {
                    key: new_key(),
                    room,
                    uploader: user.id,
                    name: clean_name(field.file_name().unwrap_or("file")),
                    content_type: None,
                    size: None,
                    created_at: now_ms(),
                };
                let declared = field.content_type().map(str::to_owned);
                let body = field.map(|chunk| chunk.map_err(|e| incoming_error(&e)));
                let attachment = state
                    .uploads
                    .receive(
                        &state.store,
                        &record,
                        declared.as_deref(),
                        Box::pin(body),
                        limit,
                        true,
                    )
                    .await?;
                return Ok((StatusCode::CREATED, Json(attachment)).into_response());
            }
            _ => {}
        }
    }
    Err(ApiError::BadRequest(match room {
        None => "missing field room_id".into(),
        Some(_) => "missing field file".into(),
    }))
}

async fn ticket(
    State(state): State<AppState>,
    user: AuthUser,
    super::ApiJson(req): super::ApiJson<UploadTicketRequest>,
) -> Result<Json<UploadTicket>, ApiError> {
    super::rooms::require_member(&state, req.room_id, &user).await?;
    if req.size <= 0 {
        return Err(ApiError::Validation("size must be at least 1".into()));
    }
    let declared = req.size as u64;
    if declared > state.uploads.max_bytes {
        return Err(too_large(state.uploads.max_bytes));
    }
    let now = now_secs();
    let record = UploadRecord {
        key: new_key(),
        room: req.room_id,
        uploader: user.id,
        name: clean_name(&req.name),
        content_type: None,
        size: None,
        created_at: now_ms(),
    };
    let claims = UploadTicketClaims {
        iss: ISSUER.to_owned(),
        aud: TICKET_AUDIENCE.to_owned(),
        sub: user.id,
        room: record.room,
        key: record.key.clone(),
        name: record.name.clone(),
        // The declared size is the most the ticket takes (origin and edge alike).
        max: declared,
        iat: now,
        exp: now + TICKET_TTL_SECS,
    };
    let ticket = state.keys.sign_ticket(&claims)?;
    state.store.insert_upload(&record).await?;
    let upload_url = match &state.uploads.edge_url {
        Some(edge) => format!("{}/uploads", edge.trim_end_matches('/')),
        None => format!("{}/api/uploads", state.uploads.public_url),
    };
    Ok(Json(UploadTicket {
        ticket,
        upload_url,
        max_bytes: declared as i64,
        expires_at: claims.exp * 1000,
    }))
}

async fn upload_with_ticket(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut stream = body.into_data_stream();
    let result = read_ticketed(&state, &headers, &mut stream).await;
    if result.is_err() {
        // As for multipart: drain a bounded rest so the answer reaches the client.
        let drain = async {
            let mut drained = 0u64;
            while let Some(Ok(chunk)) = stream.next().await {
                drained += chunk.len() as u64;
                if drained > DRAIN_BYTES {
                    break;
                }
            }
        };
        let _drained_in_time = tokio::time::timeout(DRAIN_TIME, drain).await;
    }
    result
}

/// A ticketed upload: the ticket is verified, its user must still be a member of its room,
/// and the ticket is claimed in one atomic step before any byte is read, so of two
/// concurrent uses exactly one proceeds (the other gets 409) and a stored file is never
/// written twice.
async fn read_ticketed(
    state: &AppState,
    headers: &HeaderMap,
    stream: &mut axum::body::BodyDataStream,
) -> Result<Response, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let claims = state
        .keys
        .verify_ticket(token)
        .map_err(|_| ApiError::Unauthorized)?;
    let limit = claims.max.min(state.uploads.max_bytes);
    check_length(headers, limit)?;
    let Some(record) = state.store.upload(&claims.key).await? else {
        return Err(ApiError::Unauthorized);
    };
    if record.uploader != claims.sub || record.room != claims.room {
        return Err(ApiError::Unauthorized);
    }
    if !state.store.is_member(record.room, record.uploader).await? {
        return Err(ApiError::Forbidden("you are not a member of this room"));
    }
    let _slots = state.uploads.admit(record.uploader)?;
    if !state.store.claim_upload(&record.key, now_ms()).await? {
        return Err(ApiError::Conflict("this ticket has already been used"));
    }
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = stream.map(|chunk| chunk.map_err(|e| incoming_error(&e)));
    let attachment = state
        .uploads
        .receive(
            &state.store,
            &record,
            declared.as_deref(),
            Box::pin(body),
            limit,
            false,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(attachment)).into_response())
}

/// Whether `user` may read the file under `key` now: it exists and `user` is a member of its
/// room (checked against the store, so leaving or removal takes effect at once).
async fn authorize(state: &AppState, user: &AuthUser, key: &str) -> Result<(), ApiError> {
    if !is_valid_key(key) {
        return Err(ApiError::NotFound("no such file"));
    }
    let Some(record) = state.store.upload(key).await? else {
        return Err(ApiError::NotFound("no such file"));
    };
    // The key is already known to the caller (it is unguessable); refusing with 403 rather
    // than 404 tells them nothing new.
    if !state.store.is_member(record.room, user.id).await? {
        return Err(ApiError::Forbidden(
            "only members of the file's room may read it",
        ));
    }
    Ok(())
}

async fn access(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &user, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn serve(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &user, &key).await?;
    let etag = format!("\"{key}\"");
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(meta) = state
        .uploads
        .files
        .head(&key)
        .await
        .map_err(anyhow::Error::new)?
    else {
        return Err(ApiError::NotFound("no such file"));
    };
    let mut out = HeaderMap::new();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    set(header::ETAG, &etag);
    set(header::CACHE_CONTROL, IMMUTABLE_CACHE);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::CONTENT_SECURITY_POLICY, SANDBOX_CSP);
    set(header::ACCEPT_RANGES, "bytes");
    set(header::CONTENT_TYPE, &meta.content_type);
    set(
        header::CONTENT_DISPOSITION,
        &content_disposition(&meta.content_type, &meta.name),
    );
    if etag_matches(header_str(header::IF_NONE_MATCH), &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    // A Range with If-Range naming another entity gets the whole file.
    let range_header = match header_str(header::IF_RANGE) {
        Some(tag) if tag != etag => None,
        _ => header_str(header::RANGE),
    };
    let (status, range) = match parse_range(range_header, meta.size) {
        ByteRange::Full => (StatusCode::OK, None),
        ByteRange::Part { start, end } => {
            set(
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{}", meta.size),
            );
            (StatusCode::PARTIAL_CONTENT, Some((start, end)))
        }
        ByteRange::Unsatisfiable => {
            set(header::CONTENT_RANGE, &format!("bytes */{}", meta.size));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out).into_response());
        }
    };
    let Some(body) = state
        .uploads
        .files
        .get(&key, range)
        .await
        .map_err(anyhow::Error::new)?
    else {
        return Err(ApiError::NotFound("no such file"));
    };
    Ok((status, out, body.bytes).into_response())
}

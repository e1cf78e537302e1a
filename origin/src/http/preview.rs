//! `GET /api/preview?url=`: a link preview for logged-in users, and
//! `GET /api/preview/image?url=`: that preview's image, fetched and served by this server (the
//! edge serves the same at `GET /preview` and `GET /preview/image`). See `crate::preview` for
//! the SSRF defences and the limits.

use super::ApiQuery;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::preview::PreviewError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use confab_shared::api::LinkPreview;
use confab_shared::files::SANDBOX_CSP;
use confab_shared::preview::{image_link, PolicyError};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/preview", get(preview))
        .route("/preview/image", get(image))
}

#[derive(Deserialize)]
struct PreviewQuery {
    url: String,
}

fn refused(e: PreviewError) -> ApiError {
    match e {
        PreviewError::Policy(PolicyError::Forbidden) => {
            ApiError::Forbidden("this address cannot be previewed")
        }
        PreviewError::Policy(e) => ApiError::BadRequest(e.to_string()),
        PreviewError::Busy => ApiError::Unavailable("too many previews in progress"),
        e @ PreviewError::UserBusy => ApiError::TooMany(e.to_string()),
        PreviewError::NoImage(why) => ApiError::NotFound(why),
        e @ PreviewError::Upstream(_) => ApiError::Validation(e.to_string()),
    }
}

async fn preview(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<LinkPreview>, ApiError> {
    let mut p = state
        .uploads
        .previews
        .preview(&q.url, user.id)
        .await
        .map_err(refused)?;
    // Browsers get our link to the image, never the page's own address for it.
    if p.image.is_some() {
        let base = format!("{}/api/preview", state.uploads.public_url);
        p.image = Some(image_link(&base, &p.url));
    }
    Ok(Json(p))
}

async fn image(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Response, ApiError> {
    let image = state
        .uploads
        .previews
        .image(&q.url, user.id)
        .await
        .map_err(refused)?;
    Ok((
        [
            (header::CONTENT_TYPE, image.content_type),
            (header::CACHE_CONTROL, "private, max-age=600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, SANDBOX_CSP),
            (header::CONTENT_DISPOSITION, "inline"),
        ],
        image.bytes,
    )
        .into_response())
}

//! `GET /api/preview?url=`: a link preview for logged-in users (the edge serves the same at
//! `GET /preview?url=`). See `crate::preview` for the SSRF defences.

use super::ApiQuery;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::preview::PreviewError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use confab_shared::api::LinkPreview;
use confab_shared::preview::PolicyError;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/preview", get(preview))
}

#[derive(Deserialize)]
struct PreviewQuery {
    url: String,
}

async fn preview(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<LinkPreview>, ApiError> {
    match state.uploads.previews.preview(&q.url).await {
        Ok(p) => Ok(Json(p)),
        Err(PreviewError::Policy(PolicyError::Forbidden)) => {
            Err(ApiError::Forbidden("this address cannot be previewed"))
        }
        Err(PreviewError::Policy(e)) => Err(ApiError::BadRequest(e.to_string())),
        Err(PreviewError::Busy) => Err(ApiError::Unavailable("too many previews in progress")),
        Err(e @ PreviewError::Upstream(_)) => Err(ApiError::Validation(e.to_string())),
    }
}

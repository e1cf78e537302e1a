//! Search over the messages of the rooms the caller is a member of now (SQLite FTS5 on the
//! embedded default, PostgreSQL full-text scaled out). What is typed is searched for as words,
//! never read as query syntax.

use super::{decode_cursor, encode_cursor, limit_within, ApiQuery};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{SearchCursor, SearchQuery};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use confab_shared::api::SearchPage;
use confab_shared::ids::RoomId;
use serde::Deserialize;

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 50;
/// The longest search text.
const MAX_QUERY_CHARS: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

#[derive(Debug, Deserialize)]
struct Query {
    #[serde(default)]
    q: String,
    room: Option<RoomId>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn search(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<SearchPage>, ApiError> {
    let limit = limit_within(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let text = q.q.trim();
    if text.is_empty() {
        return Err(ApiError::Validation("q: what to search for".into()));
    }
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::Validation(format!(
            "q is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    if let Some(room) = q.room {
        super::rooms::require_member(&state, room, &user).await?;
    }
    let after: Option<SearchCursor> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let query = SearchQuery {
        user: user.id,
        text: text.to_owned(),
        room: q.room,
        after,
        limit,
    };
    let mut hits = crate::metrics::db("search", state.store.search(&query)).await?;
    let next_cursor = if hits.len() > limit as usize {
        hits.truncate(limit as usize);
        hits.last().map(|(_, c)| encode_cursor(c))
    } else {
        None
    };
    Ok(Json(SearchPage {
        results: hits.into_iter().map(|(h, _)| h).collect(),
        next_cursor,
    }))
}

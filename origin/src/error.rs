//! The HTTP error type: every failure becomes `{"error": {"code", "message"}}` with the status
//! of its [`ErrorCode`]. Internal failures are logged once, with their cause chain, and answered
//! with a plain 500 that leaks nothing.

use crate::broker::BrokerError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_shared::api::{ErrorBody, ErrorDetail};
use confab_shared::domain::DomainError;
use confab_shared::protocol::ServerFrame;
use confab_shared::ErrorCode;
use std::time::Duration;

/// An HTTP API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Validation(String),
    #[error("not logged in")]
    Unauthorized,
    #[error("wrong login or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("an administrator reset this password: sign in with a new_password")]
    PasswordChangeRequired,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("too many attempts: retry later")]
    RateLimited { retry_after: Duration },
    /// A per-user or per-address cap on things held at once (sockets, uploads, previews):
    /// 429, retry once one of them has finished.
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Validation(_) => ErrorCode::Validation,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::PasswordChangeRequired => ErrorCode::PasswordChangeRequired,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::RateLimited { .. } | Self::TooMany(_) => ErrorCode::RateLimited,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl ApiError {
    /// The `error` frame that tells a WebSocket client about this failure, with the `ref`
    /// (request id or room) it answers. The one mapping from errors to what clients see,
    /// shared with the HTTP answer: the same code and message. Internal errors are logged
    /// here, once, and described in general terms.
    pub fn into_frame(self, reference: Option<String>) -> ServerFrame {
        if let Self::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        ServerFrame::Error {
            code: self.code(),
            message: self.to_string(),
            reference,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::Validation(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Refused(why) => Self::Forbidden(why),
            StoreError::Database(e) => Self::Internal(anyhow::Error::new(e)),
        }
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::Unavailable(why) => Self::Unavailable(why),
            BrokerError::Store(e) => e.into(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        if let Self::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after = match self {
            Self::RateLimited { retry_after } => Some(retry_after),
            Self::TooMany(_) => Some(Duration::from_secs(5)),
            _ => None,
        };
        if let Some(retry_after) = retry_after {
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

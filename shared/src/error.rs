//! Error codes: the machine-readable half of every HTTP error body and `error` frame.

use serde::{Deserialize, Serialize};

/// What went wrong, for programs. Each has a fixed HTTP status on the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed request or frame: bad JSON, unknown frame type, missing field (HTTP 400).
    BadRequest,
    /// Well-formed but invalid values, such as a too-long message (HTTP 422).
    Validation,
    /// Not logged in, or the session has ended (HTTP 401).
    Unauthorized,
    /// Wrong login or password (HTTP 401).
    InvalidCredentials,
    /// The sign-in is right, but an administrator reset the password: send it again with a
    /// `new_password` (HTTP 403).
    PasswordChangeRequired,
    /// Logged in but not allowed, such as a non-member reading a room (HTTP 403).
    Forbidden,
    /// No such thing, or not visible to you (HTTP 404).
    NotFound,
    /// Clashes with existing state, such as a taken username (HTTP 409).
    Conflict,
    /// Too many requests; slow down and retry later (HTTP 429).
    RateLimited,
    /// The body or frame is over its size limit (HTTP 413).
    PayloadTooLarge,
    /// Temporarily unable to accept the request; retrying later is safe (HTTP 503).
    Unavailable,
    /// A fault on the server's side; details are in its log, not here (HTTP 500).
    Internal,
}

impl ErrorCode {
    /// The HTTP status used for this code on the API.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Validation => 422,
            Self::Unauthorized | Self::InvalidCredentials => 401,
            Self::Forbidden | Self::PasswordChangeRequired => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::RateLimited => 429,
            Self::PayloadTooLarge => 413,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// Whether the same request may succeed if simply sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Unavailable | Self::Internal)
    }
}

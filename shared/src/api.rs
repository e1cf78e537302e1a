//! JSON bodies of the HTTP API under `/api`. Every error answer is an [`ErrorBody`].

use crate::error::ErrorCode;
use crate::events::RoomEvent;
use crate::ids::{MessageId, RoomId, UserId};
use crate::protocol::{ChatMessage, UserPublic};
use serde::{Deserialize, Serialize};

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorDetail {
    /// For programs.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

/// `POST /api/auth/register`. Registering also logs in (201 `Me`), unless the server confirms
/// e-mail addresses: then it answers 202 [`RegistrationPending`] whether or not the address
/// already has an account, and the account exists once the link mailed to it is followed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RegisterRequest {
    /// 3-32 characters of `[A-Za-z0-9_-]`.
    pub username: String,
    /// An email address.
    pub email: String,
    /// 8-128 characters.
    pub password: String,
}

/// The answer to a registration on a server that confirms e-mail addresses (202): the same for
/// a new address and for one that already has an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RegistrationPending {
    /// What to tell the person (check their inbox).
    pub message: String,
}

/// `POST /api/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LoginRequest {
    /// Username or email.
    pub login: String,
    /// The password.
    pub password: String,
}

/// `POST /api/me/password`. Ends every other session of the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ChangePasswordRequest {
    /// The password in use now.
    pub current_password: String,
    /// The new one, 8-128 characters.
    pub new_password: String,
}

/// The logged-in user (`GET /api/me`, and the answer to register, login and refresh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Me {
    /// Id.
    pub id: UserId,
    /// Username.
    pub username: String,
    /// Email.
    pub email: String,
    /// Registration time, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
}

/// `POST /api/rooms`. The creator joins the room.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateRoomRequest {
    /// 1-64 printable characters, unique regardless of case.
    pub name: String,
}

/// Which rooms `GET /api/rooms` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RoomScope {
    /// Rooms you are a member of.
    #[default]
    Joined,
    /// Rooms you are not a member of.
    Discover,
    /// Every room.
    All,
}

/// A room as listed for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Room {
    /// Id.
    pub id: RoomId,
    /// Name.
    pub name: String,
    /// Who created it.
    pub created_by: UserId,
    /// Creation time, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
    /// How many members it has.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub member_count: i64,
    /// Whether you are a member.
    pub joined: bool,
    /// The seq of the latest persisted message (0 when none).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub last_seq: i64,
    /// Your read marker (0 when not a member or nothing read).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub last_read_seq: i64,
    /// Messages by others after your read marker (0 when not a member).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub unread: i64,
}

/// One page of `GET /api/rooms?q=&scope=&cursor=&limit=`, ordered by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoomPage {
    /// The rooms.
    pub rooms: Vec<Room>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A member of a room (`GET /api/rooms/{id}/members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Member {
    /// Who.
    pub user: UserPublic,
    /// Whether they are in the room now (a connection subscribed to it).
    pub online: bool,
    /// When they joined, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub joined_at: i64,
}

/// One page of `GET /api/rooms/{id}/messages?before_seq=&limit=`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MessagePage {
    /// The messages, ascending by seq.
    pub messages: Vec<ChatMessage>,
    /// Whether older messages exist (ask again with `before_seq` = the first seq here).
    pub has_more: bool,
}

/// `PATCH /api/messages/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EditMessageRequest {
    /// The new text.
    pub body: String,
}

/// The answer to `PATCH` and `DELETE /api/messages/{id}`: the change is an entry of the room's
/// log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ChangeAck {
    /// The message changed.
    pub id: MessageId,
    /// The seq of the entry the change made.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
}

/// One page of a room's log, `GET /api/rooms/{id}/events?after_seq=&limit=`: the same entries
/// as the WebSocket delivers, for bots, scripts and clients that were away long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EventPage {
    /// The entries after `after_seq`, ascending by seq.
    pub events: Vec<RoomEvent>,
    /// The room's latest seq now. Ask again with `after_seq` = the last entry's seq while
    /// `complete` is false.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub last_seq: i64,
    /// Whether these are all the entries after `after_seq`.
    pub complete: bool,
}

/// `POST /api/rooms/{id}/read`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReadRequest {
    /// The highest seq seen.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
}

/// A link preview (`GET /api/preview?url=` on the origin, `GET /preview?url=` on the edge).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LinkPreview {
    /// The URL as it was posted: the card links there (never to `og:url` or a redirect
    /// target, which the page controls).
    pub url: String,
    /// `og:title`, `twitter:title` or `<title>`.
    pub title: Option<String>,
    /// `og:description`, `twitter:description` or `<meta name=description>`.
    pub description: Option<String>,
    /// The page's image (`og:image`, `twitter:image`), served by this server (or the edge):
    /// `{preview base}/image?url={posted URL}`, never the image's own address.
    pub image: Option<String>,
    /// `og:site_name`, else the host.
    pub site_name: Option<String>,
}

/// `POST /api/uploads/ticket`: permission to upload one file into a room (members only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UploadTicketRequest {
    /// The room the file is for.
    pub room_id: RoomId,
    /// The file's name, for display and downloads.
    pub name: String,
    /// The declared size in bytes.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub size: i64,
    /// The declared content type (checked against the bytes on upload).
    pub content_type: String,
}

/// An upload ticket: send the bytes to `upload_url` with `Authorization: Bearer {ticket}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UploadTicket {
    /// The signed ticket.
    pub ticket: String,
    /// Where to `PUT` the bytes (the edge, or the origin fallback).
    pub upload_url: String,
    /// The most bytes accepted.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub max_bytes: i64,
    /// When the ticket expires, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub expires_at: i64,
}

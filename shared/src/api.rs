//! JSON bodies of the HTTP API under `/api`. Every error answer is an [`ErrorBody`].

use crate::conversation::{RoomKind, RoomRole, Visibility};
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
    /// An invite code (needed when the server registers by invite).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub invite: Option<String>,
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
    /// The new password, when an administrator's reset requires one (the sign-in is refused
    /// with `password_change_required` without it).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub new_password: Option<String>,
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
    /// Whether the other members of your rooms see how far you have read.
    pub share_read_receipts: bool,
    /// Whether pushes to your browsers carry an excerpt of the message.
    pub push_previews: bool,
    /// Whether you get an e-mail digest of what you missed (when the server sends e-mail).
    pub email_notifications: bool,
    /// Your role on the site.
    #[serde(default)]
    pub role: crate::admin::SiteRole,
}

/// `PATCH /api/me`: your settings (fields left out stay as they are).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// Whether others see your read receipts (you always see your own unread counts).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub share_read_receipts: Option<bool>,
    /// Whether pushes carry an excerpt of the message (off: only the room and the author).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub push_previews: Option<bool>,
    /// Whether you get an e-mail digest of unread mentions and direct messages.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub email_notifications: Option<bool>,
}

/// `POST /api/rooms`. The creator joins the room as its `owner`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateRoomRequest {
    /// 1-64 printable characters, unique regardless of case.
    pub name: String,
    /// `public` (the default: listed, anyone may join) or `private` (members are added).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub visibility: Option<Visibility>,
    /// Up to 250 characters on one line.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub topic: Option<String>,
}

/// `PATCH /api/rooms/{id}` (owner or admin): fields left out stay as they are; an empty topic
/// clears it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UpdateRoomRequest {
    /// The new name.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub name: Option<String>,
    /// The new topic.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub topic: Option<String>,
}

/// `POST /api/rooms/{id}/members` (owner or admin) and `POST /api/rooms/{id}/bans`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    /// The user to add or ban.
    pub user: UserId,
}

/// `PATCH /api/rooms/{id}/members/{user}` (owner only). Making someone `owner` hands the room
/// over: the previous owner becomes an `admin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// The member's new role.
    pub role: RoomRole,
}

/// `POST /api/dms`: the direct conversation with these people (the same one every time for the
/// same set).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CreateDmRequest {
    /// 1 to 8 other people.
    pub users: Vec<UserId>,
}

/// One page of `GET /api/users?q=&cursor=&limit=`: people whose username starts with `q`, by
/// username.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UserPage {
    /// The people.
    pub users: Vec<UserPublic>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
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

/// A room (or direct conversation) as listed for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Room {
    /// Id.
    pub id: RoomId,
    /// Name (empty for a direct conversation: show `dm_with`).
    pub name: String,
    /// `room` or `dm`.
    pub kind: RoomKind,
    /// `public` or `private` (direct conversations are private).
    pub visibility: Visibility,
    /// The topic, if any.
    pub topic: Option<String>,
    /// Your role (null when you are not a member).
    pub role: Option<RoomRole>,
    /// For a direct conversation: the other people in it.
    pub dm_with: Vec<UserPublic>,
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
    /// The seq of the room's latest persisted log entry (0 when none).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub last_seq: i64,
    /// Your read marker (0 when not a member or nothing read).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub last_read_seq: i64,
    /// Messages by others after your read marker (0 when not a member).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub unread: i64,
    /// Of those, the ones that `@mention` you.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub mentions: i64,
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
    /// Their role.
    pub role: RoomRole,
    /// Whether they are in the room now (a connection subscribed to it).
    pub online: bool,
    /// When they joined, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub joined_at: i64,
}

/// One page of `GET /api/rooms/{id}/messages?before_seq=&limit=` (or `?around_seq=`), oldest
/// first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MessagePage {
    /// The messages, ascending by seq.
    pub messages: Vec<ChatMessage>,
    /// Whether older messages exist (ask again with `before_seq` = the first seq here).
    pub has_more: bool,
    /// For `around_seq`: whether newer messages exist (the live room has them all).
    #[serde(default)]
    pub has_newer: bool,
}

/// A banned user (`GET /api/rooms/{id}/bans`, owner or admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Ban {
    /// Who.
    pub user: UserPublic,
    /// Who banned them.
    pub by: UserPublic,
    /// When, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: i64,
}

/// A pinned message (`GET /api/rooms/{id}/pins`, newest pin first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Pin {
    /// The message, as it is now.
    pub message: ChatMessage,
    /// Who pinned it.
    pub by: UserPublic,
    /// When, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: i64,
}

/// How far a member has read (`GET /api/rooms/{id}/receipts`; members who do not share their
/// receipts are left out, except yourself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Receipt {
    /// Who.
    pub user: UserPublic,
    /// The highest seq they have read.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
}

/// A piece of a search result's excerpt: the text as it is, `hit` where it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ExcerptPart {
    /// Plain text (never markup).
    pub text: String,
    /// Whether this piece matched the search.
    pub hit: bool,
}

/// One message found by `GET /api/search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchHit {
    /// The room.
    pub room: RoomId,
    /// Its name (empty for a direct conversation).
    pub room_name: String,
    /// The message's seq (jump there with `GET /api/rooms/{room}/messages?around_seq=`).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The message.
    pub id: MessageId,
    /// Who wrote it.
    pub author: UserPublic,
    /// When, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
    /// The part of the text around the matches.
    pub excerpt: Vec<ExcerptPart>,
}

/// One page of `GET /api/search?q=&room=&cursor=&limit=`, best match first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchPage {
    /// The matches.
    pub results: Vec<SearchHit>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
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

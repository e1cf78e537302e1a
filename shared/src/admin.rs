//! Running a site: site roles, registration by invite, the administrators' API under
//! `/api/admin`, the audit log, personal API tokens, bot accounts and incoming webhooks.

use crate::ids::{ClientMsgId, MessageId, RoomId, UserId};
use serde::{Deserialize, Serialize};

/// A user's role on the whole site (not in a room).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SiteRole {
    /// Deactivates and reactivates accounts, resets passwords, names administrators, deletes
    /// any room, removes any message, reads the audit log.
    Admin,
    /// Everyone else.
    #[default]
    User,
}

impl SiteRole {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    /// Reads the stored spelling (anything unknown is `user`: no accidental admins).
    pub fn from_stored(s: &str) -> Self {
        if s == "admin" {
            Self::Admin
        } else {
            Self::User
        }
    }
}

/// `POST /api/invites`: an invite that lets `uses` people register within `expires_in_secs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// How many accounts it may create, 1-1000.
    pub uses: u32,
    /// Seconds until it stops working, 1 second to 90 days.
    pub expires_in_secs: u64,
}

/// An invite. `code` and `url` are shown only in the answer that creates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Invite {
    /// Its id (for revoking it).
    pub id: uuid::Uuid,
    /// The code to register with (`POST /api/auth/register {invite}`); only when created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub code: Option<String>,
    /// The sign-up link carrying the code; only when created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub url: Option<String>,
    /// Accounts it may create in all.
    pub uses: u32,
    /// Accounts it has created.
    pub used: u32,
    /// When it stops working, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub expires_at: i64,
    /// When it was made, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
    /// Who made it.
    pub created_by: UserId,
    /// Set once revoked.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub revoked_at: Option<i64>,
}

/// An account as administrators see it (`GET /api/admin/users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AdminUser {
    /// Id.
    pub id: UserId,
    /// Username.
    pub username: String,
    /// Email.
    pub email: String,
    /// Site role.
    pub role: SiteRole,
    /// Whether it is a bot account.
    pub bot: bool,
    /// When it was deactivated, if it is.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub deactivated_at: Option<i64>,
    /// Whether the next sign-in must choose a new password.
    pub must_change_password: bool,
    /// Registration time, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
}

/// A page of `GET /api/admin/users?q=&after=&limit=`, by username.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AdminUserPage {
    /// The accounts.
    pub users: Vec<AdminUser>,
    /// Pass as `after` for the next page; none when this is the last.
    pub next: Option<String>,
}

/// `PATCH /api/admin/users/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// The new site role.
    pub role: SiteRole,
}

/// The answer to `POST /api/admin/users/{id}/reset-password`: a temporary password to hand
/// to the user, who must choose a new one when signing in with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PasswordReset {
    /// Shown once.
    pub temporary_password: String,
}

/// One administrator action (`GET /api/admin/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditEntry {
    /// Position in the log (pages go by it).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    /// When, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: i64,
    /// Who (none: the `confab admin` command line).
    pub actor: Option<UserId>,
    /// Their username then (or `confab admin`).
    pub actor_name: String,
    /// What: `user.deactivate`, `user.reactivate`, `user.reset_password`, `user.role`,
    /// `user.create`, `room.delete`, `message.remove`, `invite.create`,
    /// `invite.revoke`.
    pub action: String,
    /// The account it concerned.
    pub target_user: Option<UserId>,
    /// The room it concerned.
    pub target_room: Option<RoomId>,
    /// More about it (a role, a message id).
    pub detail: Option<String>,
}

/// A page of the audit log, newest first (`GET /api/admin/audit?before=&limit=`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for older entries; none when this is the last page.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub next_before: Option<i64>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Read: `GET` requests, and subscribing on the WebSocket.
    Read,
    /// Post messages: `POST /api/rooms/{id}/messages` and `send` on the WebSocket.
    Post,
}

impl TokenScope {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Post => "post",
        }
    }
}

/// `POST /api/me/tokens` and `POST /api/me/bots/{id}/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A name to recognise it by, 1-64 characters.
    pub name: String,
    /// What it may do (at least one).
    pub scopes: Vec<TokenScope>,
}

/// A new token: `token` is shown only here (it is stored hashed). Send it as
/// `Authorization: Bearer TOKEN`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TokenCreated {
    /// Its id (for revoking it).
    pub id: uuid::Uuid,
    /// The secret.
    pub token: String,
}

/// A token as its owner sees it later (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TokenInfo {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<TokenScope>,
    /// When it was made, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
}

/// `POST /api/me/bots`: a bot account owned by the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CreateBotRequest {
    /// Its username (the rules of usernames).
    pub name: String,
    /// An https URL of its picture.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub avatar_url: Option<String>,
}

/// A bot account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Bot {
    /// Its user id (add it to rooms like any member).
    pub id: UserId,
    /// Its username.
    pub username: String,
    /// Its picture.
    pub avatar_url: Option<String>,
    /// Who owns it.
    pub owner: UserId,
    /// When it was made, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
}

/// `POST /api/rooms/{id}/messages`: posts as the caller (a bot with a `post` token, or anyone
/// signed in); answered with the WebSocket's `ack` frame, and a resend with the same
/// `client_msg_id` gets the same ack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    /// The sender's id for this message (1-64 of `[A-Za-z0-9_-]`).
    pub client_msg_id: ClientMsgId,
    /// Markdown text.
    pub body: String,
    /// The message of the room it answers.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub reply_to: Option<MessageId>,
}

/// `POST /api/rooms/{id}/webhooks` (room owners and admins).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// A name (1-64 characters), also the name its messages are posted under.
    pub name: String,
}

/// An incoming webhook. `url` (ending in `/hooks/{secret}`) is shown only when created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Webhook {
    /// Id.
    pub id: uuid::Uuid,
    /// The room it posts into.
    pub room: RoomId,
    /// Its name.
    pub name: String,
    /// The bot account its messages come from.
    pub bot: UserId,
    /// `POST` JSON `{text, username?}` here; only when created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub url: Option<String>,
    /// When it was made, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
}

/// The body of `POST /hooks/{secret}`, Slack-compatible: `{"text": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WebhookPost {
    /// Markdown text.
    pub text: String,
    /// A name to show beside the webhook's (prefixed to the text in bold).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub username: Option<String>,
}

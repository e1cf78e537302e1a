// Generated from the Rust crate confab-shared by shared/tests/typescript.rs. Do not edit.
// Regenerate: CONFAB_UPDATE_TS=1 cargo test -p confab-shared --features ts

export type UserId = string;

export type RoomId = string;

export type MessageId = string;

export type SessionId = string;

export type ClientMsgId = string;

export type ClientRef = string;

export type ErrorCode = "bad_request" | "validation" | "unauthorized" | "invalid_credentials" | "password_change_required" | "forbidden" | "not_found" | "conflict" | "rate_limited" | "payload_too_large" | "unavailable" | "internal";

export type UserPublic = { 
/**
 * The user's id.
 */
id: UserId, 
/**
 * The user's name.
 */
username: string, };

export type AttachmentRef = string;

export type Attachment = { 
/**
 * The reference the uploader cited.
 */
id: AttachmentRef, 
/**
 * The original file name, for display and downloads.
 */
name: string, 
/**
 * The content type detected from the file's bytes.
 */
content_type: string, 
/**
 * Size in bytes.
 */
size: number, 
/**
 * Where to fetch the file.
 */
url: string, 
/**
 * Whether the file is an image shown inline (png, jpeg, gif, webp); otherwise a download.
 */
inline: boolean, };

export type Visibility = "public" | "private";

export type RoomKind = "room" | "dm";

export type RoomRole = "member" | "admin" | "owner";

export type Emoji = string;

export type ReplyTo = { 
/**
 * The message answered.
 */
id: MessageId, 
/**
 * Who wrote it.
 */
author: UserPublic, 
/**
 * The start of its text (empty once it is deleted).
 */
excerpt: string, 
/**
 * Whether it has been deleted since.
 */
deleted: boolean, };

export type ReactionCount = { 
/**
 * The emoji.
 */
emoji: Emoji, 
/**
 * How many people reacted with it.
 */
count: number, 
/**
 * Whether you did.
 */
me: boolean, 
/**
 * Who did, in the order they reacted (so `reaction` entries can be applied exactly).
 */
users: Array<UserId>, };

export type ChatMessage = { 
/**
 * Unique message id.
 */
id: MessageId, 
/**
 * The room.
 */
room: RoomId, 
/**
 * Position in the room: 1, 2, 3... with no reuse. Gaps are possible, order is total.
 */
seq: number, 
/**
 * Who wrote it.
 */
author: UserPublic, 
/**
 * Whether the author is a bot account (a bot's token or an incoming webhook).
 */
bot?: boolean, 
/**
 * The text (already validated: up to 4000 characters; empty only with an attachment).
 * Markdown, rendered without raw HTML.
 */
body: string, 
/**
 * The author's id for this send, so the author's other tabs can match pending messages.
 */
client_msg_id: ClientMsgId, 
/**
 * An attached file, if any.
 */
attachment: Attachment | null, 
/**
 * When the server accepted it, milliseconds since the Unix epoch.
 */
created_at: number, 
/**
 * When it was last edited, milliseconds since the Unix epoch.
 */
edited_at: number | null, 
/**
 * Set only on a deleted message's tombstone (a replayed log entry of a message deleted
 * since): when it was deleted. Its body is then empty and it has no attachment.
 */
deleted_at?: number, 
/**
 * The message this one answers, as that message is now.
 */
reply_to?: ReplyTo, 
/**
 * The members `@mentioned` in the text.
 */
mentions?: Array<UserId>, 
/**
 * Its reactions as they are now (history pages only; see `RoomEvent`).
 */
reactions?: Array<ReactionCount>, 
/**
 * Whether it is pinned to the room.
 */
pinned?: boolean, };

export type RoomEvent = { "type": "message" } & ChatMessage | { "type": "edited" } & MessageEdited | { "type": "deleted" } & MessageDeleted | { "type": "reaction" } & ReactionChanged | { "type": "pinned" } & PinChanged | { "type": "unpinned" } & PinChanged | { "type": "member_added" } & MemberAdded | { "type": "member_removed" } & MemberRemoved | { "type": "role_changed" } & RoleChanged | { "type": "room_updated" } & RoomUpdated;

export type MessageEdited = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * This entry's position in the room's log.
 */
seq: number, 
/**
 * The message edited.
 */
id: MessageId, 
/**
 * Its new text (empty when the message has been deleted since).
 */
body: string, 
/**
 * When, milliseconds since the Unix epoch.
 */
edited_at: number, };

export type MessageDeleted = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * This entry's position in the room's log.
 */
seq: number, 
/**
 * The message deleted.
 */
id: MessageId, };

export type ReactionChanged = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * This entry's position in the room's log.
 */
seq: number, 
/**
 * The message reacted to.
 */
message: MessageId, 
/**
 * The emoji.
 */
emoji: Emoji, 
/**
 * Who reacted.
 */
user: UserPublic, 
/**
 * True when added, false when taken back.
 */
on: boolean, };

export type PinChanged = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * This entry's position in the room's log.
 */
seq: number, 
/**
 * The message.
 */
message: MessageId, 
/**
 * Who pinned or unpinned it.
 */
by: UserPublic, };

export type MemberAdded = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * This entry's position in the room's log.
 */
seq: number, 
/**
 * The new member.
 */
user: UserPublic, 
/**
 * Their role.
 */
role: RoomRole, 
/**
 * Who added them (themselves when they joined).
 */
by: UserPublic, };

export type MemberRemoved = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * This entry's position in the room's log.
 */
seq: number, 
/**
 * The former member.
 */
user: UserPublic, 
/**
 * Who removed them (themselves when they left).
 */
by: UserPublic, 
/**
 * Whether they were banned (they cannot come back until unbanned).
 */
banned: boolean, };

export type RoleChanged = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * This entry's position in the room's log.
 */
seq: number, 
/**
 * The member.
 */
user: UserPublic, 
/**
 * Their role now.
 */
role: RoomRole, 
/**
 * Who changed it.
 */
by: UserPublic, };

export type RoomUpdated = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * This entry's position in the room's log.
 */
seq: number, 
/**
 * The room's name now.
 */
name: string, 
/**
 * Its topic now (null: none).
 */
topic: string | null, 
/**
 * Who changed it.
 */
by: UserPublic, };

export type ClientFrame = { "type": "subscribe", 
/**
 * The room (you must be a member).
 */
room: RoomId, 
/**
 * The last seq you have; omit for live events only.
 */
after_seq?: number, } | { "type": "unsubscribe", 
/**
 * The room.
 */
room: RoomId, } | { "type": "send", 
/**
 * The room (you must be a member).
 */
room: RoomId, 
/**
 * Your id for this message; a retry with the same id is not posted twice.
 */
client_msg_id: ClientMsgId, 
/**
 * The text, 1-4000 characters after trimming; may be empty when a file is attached.
 */
body: string, 
/**
 * An uploaded file to attach (the `id` of the upload's `Attachment`).
 */
attachment?: AttachmentRef, 
/**
 * The message (of the same room) this one answers.
 */
reply_to?: MessageId, } | { "type": "react", 
/**
 * The message's room (you must be a member).
 */
room: RoomId, 
/**
 * The message.
 */
message: MessageId, 
/**
 * One emoji.
 */
emoji: string, 
/**
 * Add or take back.
 */
on: boolean, 
/**
 * Your id for this request; a retry with the same one is applied once.
 */
ref: ClientRef, } | { "type": "edit", 
/**
 * The message's room (you must be a member).
 */
room: RoomId, 
/**
 * The message (yours).
 */
id: MessageId, 
/**
 * The new text, 1-4000 characters after trimming.
 */
body: string, 
/**
 * Your id for this request; a retry with the same one is applied once.
 */
ref: ClientRef, } | { "type": "delete", 
/**
 * The message's room (you must be a member).
 */
room: RoomId, 
/**
 * The message (yours).
 */
id: MessageId, 
/**
 * Your id for this request; a retry with the same one is applied once.
 */
ref: ClientRef, } | { "type": "typing", 
/**
 * The room.
 */
room: RoomId, } | { "type": "visibility", 
/**
 * False while the tab is hidden.
 */
visible: boolean, } | { "type": "read", 
/**
 * The room.
 */
room: RoomId, 
/**
 * The highest seq you have seen.
 */
seq: number, } | { "type": "ping", };

export type ServerFrame = { "type": "ready", 
/**
 * Who you are.
 */
user: UserPublic, 
/**
 * Send something (for example `ping`) at least this often or be disconnected.
 */
idle_timeout_ms: number, } | { "type": "subscribed", 
/**
 * The room.
 */
room: RoomId, 
/**
 * The room's latest seq at subscription time.
 */
last_seq: number, 
/**
 * True when every message after `after_seq` was delivered; false means reload history.
 */
recovered: boolean, 
/**
 * Who is in the room now.
 */
online: Array<UserPublic>, } | { "type": "ack", 
/**
 * The room.
 */
room: RoomId, 
/**
 * The request's id: the `client_msg_id` of a `send`, the `ref` of anything else.
 */
ref: ClientRef, 
/**
 * For a `send`: the id you sent.
 */
client_msg_id?: ClientMsgId, 
/**
 * The message posted, edited or deleted.
 */
id: MessageId, 
/**
 * The seq of the log entry your request made (for a resend, the first one's).
 */
seq: number, } | { "type": "presence", 
/**
 * The room.
 */
room: RoomId, 
/**
 * Who.
 */
user: UserPublic, 
/**
 * True on entering, false on leaving.
 */
online: boolean, } | { "type": "typing", 
/**
 * The room.
 */
room: RoomId, 
/**
 * Who.
 */
user: UserPublic, } | { "type": "activity", 
/**
 * The room.
 */
room: RoomId, 
/**
 * The new message's seq.
 */
seq: number, 
/**
 * Messages after your read marker.
 */
unread: number, 
/**
 * Who wrote it (for a notification; no content is sent).
 */
author: UserPublic, 
/**
 * Whether it `@mentions` you.
 */
mention: boolean, } | { "type": "read", 
/**
 * The room.
 */
room: RoomId, 
/**
 * Who.
 */
user: UserPublic, 
/**
 * The highest seq they have read.
 */
seq: number, } | { "type": "resync", 
/**
 * The room.
 */
room: RoomId, } | { "type": "membership", 
/**
 * The room.
 */
room: RoomId, 
/**
 * True when you are now a member.
 */
member: boolean, } | { "type": "error", 
/**
 * What went wrong.
 */
code: ErrorCode, 
/**
 * For people.
 */
message: string, 
/**
 * The `client_msg_id`, `ref` or room the error is about, if any.
 */
ref: string | null, } | { "type": "pong" } | RoomEvent;

export type ErrorBody = { 
/**
 * The error.
 */
error: ErrorDetail, };

export type ErrorDetail = { 
/**
 * For programs.
 */
code: ErrorCode, 
/**
 * For people.
 */
message: string, };

export type RegisterRequest = { 
/**
 * 3-32 characters of `[A-Za-z0-9_-]`.
 */
username: string, 
/**
 * An email address.
 */
email: string, 
/**
 * 8-128 characters.
 */
password: string, 
/**
 * An invite code (needed when the server registers by invite).
 */
invite?: string, };

export type RegistrationPending = { 
/**
 * What to tell the person (check their inbox).
 */
message: string, };

export type LoginRequest = { 
/**
 * Username or email.
 */
login: string, 
/**
 * The password.
 */
password: string, 
/**
 * The new password, when an administrator's reset requires one (the sign-in is refused
 * with `password_change_required` without it).
 */
new_password?: string, };

export type ChangePasswordRequest = { 
/**
 * The password in use now.
 */
current_password: string, 
/**
 * The new one, 8-128 characters.
 */
new_password: string, };

export type Me = { 
/**
 * Id.
 */
id: UserId, 
/**
 * Username.
 */
username: string, 
/**
 * Email.
 */
email: string, 
/**
 * Registration time, milliseconds since the Unix epoch.
 */
created_at: number, 
/**
 * Whether the other members of your rooms see how far you have read.
 */
share_read_receipts: boolean, 
/**
 * Whether pushes to your browsers carry an excerpt of the message.
 */
push_previews: boolean, 
/**
 * Whether you get an e-mail digest of what you missed (when the server sends e-mail).
 */
email_notifications: boolean, 
/**
 * Your role on the site.
 */
role: SiteRole, };

export type UpdateMeRequest = { 
/**
 * Whether others see your read receipts (you always see your own unread counts).
 */
share_read_receipts?: boolean, 
/**
 * Whether pushes carry an excerpt of the message (off: only the room and the author).
 */
push_previews?: boolean, 
/**
 * Whether you get an e-mail digest of unread mentions and direct messages.
 */
email_notifications?: boolean, };

export type CreateRoomRequest = { 
/**
 * 1-64 printable characters, unique regardless of case.
 */
name: string, 
/**
 * `public` (the default: listed, anyone may join) or `private` (members are added).
 */
visibility?: Visibility, 
/**
 * Up to 250 characters on one line.
 */
topic?: string, };

export type UpdateRoomRequest = { 
/**
 * The new name.
 */
name?: string, 
/**
 * The new topic.
 */
topic?: string, };

export type UserRequest = { 
/**
 * The user to add or ban.
 */
user: UserId, };

export type RoleRequest = { 
/**
 * The member's new role.
 */
role: RoomRole, };

export type CreateDmRequest = { 
/**
 * 1 to 8 other people.
 */
users: Array<UserId>, };

export type UserPage = { 
/**
 * The people.
 */
users: Array<UserPublic>, 
/**
 * Pass as `cursor` for the next page; null on the last page.
 */
next_cursor: string | null, };

export type RoomScope = "joined" | "discover" | "all";

export type Room = { 
/**
 * Id.
 */
id: RoomId, 
/**
 * Name (empty for a direct conversation: show `dm_with`).
 */
name: string, 
/**
 * `room` or `dm`.
 */
kind: RoomKind, 
/**
 * `public` or `private` (direct conversations are private).
 */
visibility: Visibility, 
/**
 * The topic, if any.
 */
topic: string | null, 
/**
 * Your role (null when you are not a member).
 */
role: RoomRole | null, 
/**
 * For a direct conversation: the other people in it.
 */
dm_with: Array<UserPublic>, 
/**
 * Who created it.
 */
created_by: UserId, 
/**
 * Creation time, milliseconds since the Unix epoch.
 */
created_at: number, 
/**
 * How many members it has.
 */
member_count: number, 
/**
 * Whether you are a member.
 */
joined: boolean, 
/**
 * The seq of the room's latest persisted log entry (0 when none).
 */
last_seq: number, 
/**
 * Your read marker (0 when not a member or nothing read).
 */
last_read_seq: number, 
/**
 * Messages by others after your read marker (0 when not a member).
 */
unread: number, 
/**
 * Of those, the ones that `@mention` you.
 */
mentions: number, };

export type RoomPage = { 
/**
 * The rooms.
 */
rooms: Array<Room>, 
/**
 * Pass as `cursor` for the next page; null on the last page.
 */
next_cursor: string | null, };

export type Member = { 
/**
 * Who.
 */
user: UserPublic, 
/**
 * Their role.
 */
role: RoomRole, 
/**
 * Whether they are in the room now (a connection subscribed to it).
 */
online: boolean, 
/**
 * When they joined, milliseconds since the Unix epoch.
 */
joined_at: number, };

export type MessagePage = { 
/**
 * The messages, ascending by seq.
 */
messages: Array<ChatMessage>, 
/**
 * Whether older messages exist (ask again with `before_seq` = the first seq here).
 */
has_more: boolean, 
/**
 * For `around_seq`: whether newer messages exist (the live room has them all).
 */
has_newer: boolean, };

export type Ban = { 
/**
 * Who.
 */
user: UserPublic, 
/**
 * Who banned them.
 */
by: UserPublic, 
/**
 * When, milliseconds since the Unix epoch.
 */
at: number, };

export type Pin = { 
/**
 * The message, as it is now.
 */
message: ChatMessage, 
/**
 * Who pinned it.
 */
by: UserPublic, 
/**
 * When, milliseconds since the Unix epoch.
 */
at: number, };

export type Receipt = { 
/**
 * Who.
 */
user: UserPublic, 
/**
 * The highest seq they have read.
 */
seq: number, };

export type ExcerptPart = { 
/**
 * Plain text (never markup).
 */
text: string, 
/**
 * Whether this piece matched the search.
 */
hit: boolean, };

export type SearchHit = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * Its name (empty for a direct conversation).
 */
room_name: string, 
/**
 * The message's seq (jump there with `GET /api/rooms/{room}/messages?around_seq=`).
 */
seq: number, 
/**
 * The message.
 */
id: MessageId, 
/**
 * Who wrote it.
 */
author: UserPublic, 
/**
 * When, milliseconds since the Unix epoch.
 */
created_at: number, 
/**
 * The part of the text around the matches.
 */
excerpt: Array<ExcerptPart>, };

export type SearchPage = { 
/**
 * The matches.
 */
results: Array<SearchHit>, 
/**
 * Pass as `cursor` for the next page; null on the last page.
 */
next_cursor: string | null, };

export type EditMessageRequest = { 
/**
 * The new text.
 */
body: string, };

export type ChangeAck = { 
/**
 * The message changed.
 */
id: MessageId, 
/**
 * The seq of the entry the change made.
 */
seq: number, };

export type EventPage = { 
/**
 * The entries after `after_seq`, ascending by seq.
 */
events: Array<RoomEvent>, 
/**
 * The room's latest seq now. Ask again with `after_seq` = the last entry's seq while
 * `complete` is false.
 */
last_seq: number, 
/**
 * Whether these are all the entries after `after_seq`.
 */
complete: boolean, };

export type ReadRequest = { 
/**
 * The highest seq seen.
 */
seq: number, };

export type LinkPreview = { 
/**
 * The URL as it was posted: the card links there (never to `og:url` or a redirect
 * target, which the page controls).
 */
url: string, 
/**
 * `og:title`, `twitter:title` or `<title>`.
 */
title: string | null, 
/**
 * `og:description`, `twitter:description` or `<meta name=description>`.
 */
description: string | null, 
/**
 * The page's image (`og:image`, `twitter:image`), served by this server (or the edge):
 * `{preview base}/image?url={posted URL}`, never the image's own address.
 */
image: string | null, 
/**
 * `og:site_name`, else the host.
 */
site_name: string | null, };

export type UploadTicketRequest = { 
/**
 * The room the file is for.
 */
room_id: RoomId, 
/**
 * The file's name, for display and downloads.
 */
name: string, 
/**
 * The declared size in bytes.
 */
size: number, 
/**
 * The declared content type (checked against the bytes on upload).
 */
content_type: string, };

export type UploadTicket = { 
/**
 * The signed ticket.
 */
ticket: string, 
/**
 * Where to `PUT` the bytes (the edge, or the origin fallback).
 */
upload_url: string, 
/**
 * The most bytes accepted.
 */
max_bytes: number, 
/**
 * When the ticket expires, milliseconds since the Unix epoch.
 */
expires_at: number, };

export type NotificationLevel = "all" | "mentions" | "none";

export type PushKey = { 
/**
 * The key.
 */
key: string, };

export type PushKeys = { 
/**
 * The browser's P-256 public key (base64url).
 */
p256dh: string, 
/**
 * The browser's 16-byte authentication secret (base64url).
 */
auth: string, };

export type PushSubscriptionRequest = { 
/**
 * The push service's URL for this browser.
 */
endpoint: string, 
/**
 * Its keys.
 */
keys: PushKeys, };

export type PushUnsubscribeRequest = { 
/**
 * The endpoint given when subscribing.
 */
endpoint: string, };

export type NotificationLevelRequest = { 
/**
 * The new level.
 */
level: NotificationLevel, };

export type RoomNotificationLevel = { 
/**
 * The room.
 */
room: RoomId, 
/**
 * Your level there (the default when you never chose).
 */
level: NotificationLevel, };

export type NotificationSettings = { 
/**
 * Whether the server has Web Push on (then `GET /api/push/key` answers).
 */
push_enabled: boolean, 
/**
 * Whether pushes carry an excerpt of the message (`PATCH /api/me {push_previews}`).
 */
push_previews: boolean, 
/**
 * Whether the server sends e-mail at all (SMTP configured).
 */
email_available: boolean, 
/**
 * Whether you get an e-mail digest of mentions and direct messages you have not read
 * after a while (`PATCH /api/me {email_notifications}`).
 */
email_notifications: boolean, 
/**
 * Your level in each of your rooms.
 */
levels: Array<RoomNotificationLevel>, };

export type PushPayload = { "type": "message", 
/**
 * This push's id: a repeat (pushes are delivered at least once) is ignored.
 */
id: string, 
/**
 * The notification's tag: one per room, so a room's notifications replace each other.
 */
tag: string, 
/**
 * The room.
 */
room: RoomId, 
/**
 * The room's name (for a direct conversation: the author's name).
 */
room_name: string, 
/**
 * The newest message's author.
 */
author: string, 
/**
 * The newest message's text, shortened; absent when the user turned previews off.
 */
excerpt?: string, 
/**
 * The newest message.
 */
message: MessageId, 
/**
 * Its seq in the room's log.
 */
seq: number, 
/**
 * How many notified messages of the room are waiting (since the user last read it).
 */
count: number, 
/**
 * Whether one of them mentions the user (or the room is a direct conversation).
 */
mention: boolean, } | { "type": "close", 
/**
 * This push's id.
 */
id: string, 
/**
 * The tag of the notification to close.
 */
tag: string, 
/**
 * The room.
 */
room: RoomId, };

export type SiteRole = "admin" | "user";

export type CreateInviteRequest = { 
/**
 * How many accounts it may create, 1-1000.
 */
uses: number, 
/**
 * Seconds until it stops working, 1 second to 90 days.
 */
expires_in_secs: bigint, };

export type Invite = { 
/**
 * Its id (for revoking it).
 */
id: string, 
/**
 * The code to register with (`POST /api/auth/register {invite}`); only when created.
 */
code?: string, 
/**
 * The sign-up link carrying the code; only when created.
 */
url?: string, 
/**
 * Accounts it may create in all.
 */
uses: number, 
/**
 * Accounts it has created.
 */
used: number, 
/**
 * When it stops working, milliseconds since the Unix epoch.
 */
expires_at: number, 
/**
 * When it was made, milliseconds since the Unix epoch.
 */
created_at: number, 
/**
 * Who made it.
 */
created_by: UserId, 
/**
 * Set once revoked.
 */
revoked_at: number | null, };

export type AdminUser = { 
/**
 * Id.
 */
id: UserId, 
/**
 * Username.
 */
username: string, 
/**
 * Email.
 */
email: string, 
/**
 * Site role.
 */
role: SiteRole, 
/**
 * Whether it is a bot account.
 */
bot: boolean, 
/**
 * When it was deactivated, if it is.
 */
deactivated_at: number | null, 
/**
 * Whether the next sign-in must choose a new password.
 */
must_change_password: boolean, 
/**
 * Registration time, milliseconds since the Unix epoch.
 */
created_at: number, };

export type AdminUserPage = { 
/**
 * The accounts.
 */
users: Array<AdminUser>, 
/**
 * Pass as `after` for the next page; none when this is the last.
 */
next: string | null, };

export type UpdateUserRequest = { 
/**
 * The new site role.
 */
role: SiteRole, };

export type PasswordReset = { 
/**
 * Shown once.
 */
temporary_password: string, };

export type AuditEntry = { 
/**
 * Position in the log (pages go by it).
 */
id: number, 
/**
 * When, milliseconds since the Unix epoch.
 */
at: number, 
/**
 * Who (none: the `confab admin` command line).
 */
actor: UserId | null, 
/**
 * Their username then (or `confab admin`).
 */
actor_name: string, 
/**
 * What: `user.deactivate`, `user.reactivate`, `user.reset_password`, `user.role`,
 * `user.create`, `room.delete`, `message.remove`, `invite.create`,
 * `invite.revoke`.
 */
action: string, 
/**
 * The account it concerned.
 */
target_user: UserId | null, 
/**
 * The room it concerned.
 */
target_room: RoomId | null, 
/**
 * More about it (a role, a message id).
 */
detail: string | null, };

export type AuditPage = { 
/**
 * The entries.
 */
entries: Array<AuditEntry>, 
/**
 * Pass as `before` for older entries; none when this is the last page.
 */
next_before: number | null, };

export type TokenScope = "read" | "post";

export type CreateTokenRequest = { 
/**
 * A name to recognise it by, 1-64 characters.
 */
name: string, 
/**
 * What it may do (at least one).
 */
scopes: Array<TokenScope>, };

export type TokenCreated = { 
/**
 * Its id (for revoking it).
 */
id: string, 
/**
 * The secret.
 */
token: string, };

export type TokenInfo = { 
/**
 * Id.
 */
id: string, 
/**
 * Name.
 */
name: string, 
/**
 * Scopes.
 */
scopes: Array<TokenScope>, 
/**
 * When it was made, milliseconds since the Unix epoch.
 */
created_at: number, };

export type CreateBotRequest = { 
/**
 * Its username (the rules of usernames).
 */
name: string, 
/**
 * An https URL of its picture.
 */
avatar_url?: string, };

export type Bot = { 
/**
 * Its user id (add it to rooms like any member).
 */
id: UserId, 
/**
 * Its username.
 */
username: string, 
/**
 * Its picture.
 */
avatar_url: string | null, 
/**
 * Who owns it.
 */
owner: UserId, 
/**
 * When it was made, milliseconds since the Unix epoch.
 */
created_at: number, };

export type PostMessageRequest = { 
/**
 * The sender's id for this message (1-64 of `[A-Za-z0-9_-]`).
 */
client_msg_id: ClientMsgId, 
/**
 * Markdown text.
 */
body: string, 
/**
 * The message of the room it answers.
 */
reply_to?: MessageId, };

export type CreateWebhookRequest = { 
/**
 * A name (1-64 characters), also the name its messages are posted under.
 */
name: string, };

export type Webhook = { 
/**
 * Id.
 */
id: string, 
/**
 * The room it posts into.
 */
room: RoomId, 
/**
 * Its name.
 */
name: string, 
/**
 * The bot account its messages come from.
 */
bot: UserId, 
/**
 * `POST` JSON `{text, username?}` here; only when created.
 */
url?: string, 
/**
 * When it was made, milliseconds since the Unix epoch.
 */
created_at: number, };

export type WebhookPost = { 
/**
 * Markdown text.
 */
text: string, 
/**
 * A name to show beside the webhook's (prefixed to the text in bold).
 */
username?: string, };


//! The SQL behind [`Store`](super::Store), shared by SQLite and PostgreSQL: one macro,
//! [`sql_store`], instantiated for each driver, plus the helpers it uses.

use super::StoreError;

/// Maps unique violations to [`StoreError::Conflict`] with a message naming what clashed.
pub fn map_conflict(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            // SQLite names the column ("rooms.name_folded"), PostgreSQL the constraint.
            let msg = format!("{} {}", db.message(), db.constraint().unwrap_or_default());
            // A look-alike (same skeleton) counts as taken: a name that differs only in case
            // breaks both rules, and the database names either.
            let what = if msg.contains("username") {
                "username is taken"
            } else if msg.contains("email") {
                "email is already registered"
            } else if msg.contains("name_folded")
                || msg.contains("rooms_name_key")
                || msg.contains("name_skeleton")
            {
                "a room with that name exists"
            } else {
                "already exists"
            };
            return StoreError::Conflict(what);
        }
    }
    StoreError::Database(e)
}

/// The columns `message_from_row` reads (from [`MESSAGE_FROM`]).
pub const MESSAGE_COLUMNS: &str =
    "m.id, m.room_id, m.seq, m.author_id, u.username, m.client_msg_id, \
     m.body, m.attachment, m.created_at, m.edited_at, m.deleted_at, m.mentions, m.pinned_at, \
     m.reply_to_id, p.body AS reply_body, p.deleted_at AS reply_deleted_at, \
     pu.id AS reply_author_id, pu.username AS reply_author, \
     (u.bot_owner IS NOT NULL) AS author_bot";

/// A message with its author and the message it answers (as that one is now).
pub const MESSAGE_FROM: &str = "messages m JOIN users u ON u.id = m.author_id \
     LEFT JOIN messages p ON p.id = m.reply_to_id LEFT JOIN users pu ON pu.id = p.author_id";

/// The columns `event_from_row` reads (from `room_events`).
pub const EVENT_COLUMNS: &str = "room_id, seq, kind, message_id, body, data, created_at";

/// The columns `user_from_row` reads (from `users`).
pub const USER_COLUMNS: &str =
    "id, username, email, password_hash, created_at, share_read_receipts, site_role, \
     deactivated_at, must_change_password, bot_owner";

/// The folded name of a direct conversation: a control character first, which no room name
/// may hold, so it never clashes with a room's.
pub fn dm_folded_name(dm_key: &str) -> String {
    format!("\u{1}dm:{dm_key}")
}

/// Marks around the matched words in search snippets (private-use characters).
pub const HIT_START: char = '\u{E000}';
pub const HIT_END: char = '\u{E001}';

/// Splits a snippet with [`HIT_START`]/[`HIT_END`] marks into plain pieces.
pub fn excerpt_parts(snippet: &str) -> Vec<confab_shared::api::ExcerptPart> {
    let mut out = Vec::new();
    let mut hit = false;
    for piece in snippet.split([HIT_START, HIT_END]) {
        if !piece.is_empty() {
            out.push(confab_shared::api::ExcerptPart {
                text: piece.to_owned(),
                hit,
            });
        }
        hit = !hit;
    }
    out
}

/// The words of a search as literal terms: each is quoted for FTS5 (a double quote doubled),
/// so nothing typed is read as an operator, a prefix or a column filter.
pub fn fts5_literal(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// Builds reactions from (message, emoji, user) rows in reaction order.
pub fn reactions_by_message(
    rows: Vec<(uuid::Uuid, String, uuid::Uuid)>,
    viewer: confab_shared::ids::UserId,
) -> std::collections::HashMap<uuid::Uuid, Vec<confab_shared::conversation::ReactionCount>> {
    use confab_shared::conversation::{Emoji, ReactionCount};
    use confab_shared::ids::UserId;
    let mut out: std::collections::HashMap<uuid::Uuid, Vec<ReactionCount>> =
        std::collections::HashMap::new();
    for (message, emoji, user) in rows {
        let Ok(emoji) = Emoji::parse(&emoji) else {
            continue;
        };
        let list = out.entry(message).or_default();
        let at = match list.iter().position(|r| r.emoji == emoji) {
            Some(i) => i,
            None => {
                list.push(ReactionCount {
                    emoji,
                    count: 0,
                    me: false,
                    users: Vec::new(),
                });
                list.len() - 1
            }
        };
        let r = &mut list[at];
        r.count += 1;
        r.me |= user == viewer.0;
        r.users.push(UserId(user));
    }
    out
}

/// Merges two seq-ordered runs of a room's log into its first `limit` entries.
pub fn merge_by_seq(
    a: Vec<confab_shared::events::RoomEvent>,
    b: Vec<confab_shared::events::RoomEvent>,
    limit: usize,
) -> Vec<confab_shared::events::RoomEvent> {
    let mut out = Vec::with_capacity((a.len() + b.len()).min(limit));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while out.len() < limit {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.seq() <= y.seq() => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}

/// The columns `room_from_row` reads (from `rooms r LEFT JOIN room_members m`). The room's
/// last seq is the larger of its last message's and its last other entry's.
pub const ROOM_COLUMNS: &str = "r.id, r.name, r.name_folded, r.created_by, r.created_at, \
     r.kind, r.visibility, r.topic, m.role, \
     (SELECT COUNT(*) FROM room_members c WHERE c.room_id = r.id) AS member_count, \
     m.user_id IS NOT NULL AS joined, \
     COALESCE((SELECT MAX(x.seq) FROM messages x WHERE x.room_id = r.id), 0) AS last_message_seq, \
     COALESCE((SELECT MAX(e.seq) FROM room_events e WHERE e.room_id = r.id), 0) AS last_event_seq, \
     COALESCE(m.last_read_seq, 0) AS last_read_seq, \
     CASE WHEN m.user_id IS NULL THEN 0 ELSE \
       (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.last_read_seq \
          AND x.author_id <> m.user_id AND x.deleted_at IS NULL) END AS unread, \
     CASE WHEN m.user_id IS NULL THEN 0 ELSE \
       (SELECT COUNT(*) FROM message_mentions mm JOIN messages x ON x.id = mm.message_id \
          WHERE mm.room_id = r.id AND mm.user_id = m.user_id AND mm.seq > m.last_read_seq \
          AND x.author_id <> m.user_id AND x.deleted_at IS NULL) END AS mentions";

/// A room kind as stored.
pub fn kind_str(kind: confab_shared::conversation::RoomKind) -> &'static str {
    match kind {
        confab_shared::conversation::RoomKind::Room => "room",
        confab_shared::conversation::RoomKind::Dm => "dm",
    }
}

/// A stored room kind.
pub fn kind_of(s: &str) -> confab_shared::conversation::RoomKind {
    match s {
        "dm" => confab_shared::conversation::RoomKind::Dm,
        _ => confab_shared::conversation::RoomKind::Room,
    }
}

/// A visibility as stored.
pub fn visibility_str(v: confab_shared::conversation::Visibility) -> &'static str {
    match v {
        confab_shared::conversation::Visibility::Public => "public",
        confab_shared::conversation::Visibility::Private => "private",
    }
}

/// A stored visibility.
pub fn visibility_of(s: &str) -> confab_shared::conversation::Visibility {
    match s {
        "private" => confab_shared::conversation::Visibility::Private,
        _ => confab_shared::conversation::Visibility::Public,
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`: `needle` anywhere.
pub fn like_pattern(needle: &str) -> String {
    format!("%{}", like_prefix(needle))
}

/// A LIKE pattern (with `ESCAPE '\'`) for text starting with `needle`.
pub fn like_prefix(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 1);
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Implements [`Store`](crate::store::Store) for a store type holding `pool: sqlx::Pool<$db>`.
/// The SQL is written once, in the dialect SQLite and PostgreSQL share (`$N` placeholders,
/// `RETURNING`, `ON CONFLICT`, row values); only the driver types differ.
macro_rules! sql_store {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
            fn user_from_row(row: &$row) -> Result<UserRecord, sqlx::Error> {
                Ok(UserRecord {
                    id: UserId(row.try_get("id")?),
                    username: row.try_get("username")?,
                    email: row.try_get("email")?,
                    password_hash: row.try_get("password_hash")?,
                    created_at: row.try_get("created_at")?,
                    share_read_receipts: row.try_get("share_read_receipts")?,
                    role: confab_shared::admin::SiteRole::from_stored(
                        row.try_get::<String, _>("site_role")?.as_str(),
                    ),
                    deactivated_at: row.try_get("deactivated_at")?,
                    must_change_password: row.try_get("must_change_password")?,
                    bot_owner: row.try_get::<Option<Uuid>, _>("bot_owner")?.map(UserId),
                })
            }

            fn message_from_row(row: &$row) -> Result<ChatMessage, sqlx::Error> {
                let attachment: Option<String> = row.try_get("attachment")?;
                let client_msg_id: String = row.try_get("client_msg_id")?;
                Ok(ChatMessage {
                    id: MessageId(row.try_get("id")?),
                    room: RoomId(row.try_get("room_id")?),
                    seq: row.try_get("seq")?,
                    author: UserPublic {
                        id: UserId(row.try_get("author_id")?),
                        username: row.try_get("username")?,
                    },
                    bot: row.try_get("author_bot")?,
                    body: row.try_get("body")?,
                    client_msg_id: ClientMsgId::parse(&client_msg_id)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    attachment: attachment
                        .map(|a| serde_json::from_str(&a))
                        .transpose()
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    created_at: row.try_get("created_at")?,
                    edited_at: row.try_get("edited_at")?,
                    deleted_at: row.try_get("deleted_at")?,
                    reply_to: Self::reply_from_row(row)?,
                    mentions: row
                        .try_get::<Option<String>, _>("mentions")?
                        .map(|m| serde_json::from_str(&m))
                        .transpose()
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
                        .unwrap_or_default(),
                    reactions: Vec::new(),
                    pinned: row.try_get::<Option<i64>, _>("pinned_at")?.is_some(),
                })
            }

            /// The message a message answers, as it is now (none while it is not written yet).
            fn reply_from_row(row: &$row) -> Result<Option<ReplyTo>, sqlx::Error> {
                let Some(id) = row.try_get::<Option<Uuid>, _>("reply_to_id")? else {
                    return Ok(None);
                };
                let Some(author) = row.try_get::<Option<Uuid>, _>("reply_author_id")? else {
                    return Ok(None);
                };
                let deleted = row.try_get::<Option<i64>, _>("reply_deleted_at")?.is_some();
                let body: Option<String> = row.try_get("reply_body")?;
                Ok(Some(ReplyTo {
                    id: MessageId(id),
                    author: UserPublic {
                        id: UserId(author),
                        username: row.try_get("reply_author")?,
                    },
                    excerpt: if deleted {
                        String::new()
                    } else {
                        confab_shared::conversation::excerpt(&body.unwrap_or_default())
                    },
                    deleted,
                }))
            }

            /// Adds each message's reactions, as `viewer` sees them.
            async fn with_reactions(
                &self,
                mut messages: Vec<ChatMessage>,
                viewer: UserId,
            ) -> Result<Vec<ChatMessage>, sqlx::Error> {
                if messages.is_empty() {
                    return Ok(messages);
                }
                let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                    "SELECT message_id, emoji, user_id FROM message_reactions WHERE active AND message_id IN (",
                );
                let mut ids = b.separated(", ");
                for m in &messages {
                    ids.push_bind(m.id.0);
                }
                b.push(") ORDER BY seq");
                let rows: Vec<(Uuid, String, Uuid)> =
                    b.build_query_as().fetch_all(&self.pool).await?;
                let mut by_message = $crate::store::sql::reactions_by_message(rows, viewer);
                for m in &mut messages {
                    if let Some(r) = by_message.remove(&m.id.0) {
                        m.reactions = r;
                    }
                }
                Ok(messages)
            }

            /// Messages by a `WHERE` clause over `m` (binds: room, then `seq_bind`), with the
            /// order and limit given, as `viewer` sees them.
            async fn messages_where(
                &self,
                room: RoomId,
                clause: &str,
                seq_bind: i64,
                order: &str,
                limit: u32,
                viewer: UserId,
            ) -> Result<Vec<ChatMessage>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM {} WHERE m.room_id = $1 AND {clause} ORDER BY {order} LIMIT $3",
                    $crate::store::sql::MESSAGE_COLUMNS,
                    $crate::store::sql::MESSAGE_FROM
                );
                let rows = sqlx::query(&sql)
                    .bind(room.0)
                    .bind(seq_bind)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                let messages = rows
                    .iter()
                    .map(Self::message_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(self.with_reactions(messages, viewer).await?)
            }

            /// Fills `dm_with` for the direct conversations among `rooms`.
            async fn with_dm_members(
                &self,
                mut rooms: Vec<(Room, RoomCursor)>,
                viewer: UserId,
            ) -> Result<Vec<(Room, RoomCursor)>, sqlx::Error> {
                let dms: Vec<Uuid> = rooms
                    .iter()
                    .filter(|(r, _)| r.kind == RoomKind::Dm)
                    .map(|(r, _)| r.id.0)
                    .collect();
                if dms.is_empty() {
                    return Ok(rooms);
                }
                let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                    "SELECT m.room_id, u.id, u.username FROM room_members m JOIN users u ON u.id = m.user_id WHERE m.user_id <> ",
                );
                b.push_bind(viewer.0);
                b.push(" AND m.room_id IN (");
                let mut ids = b.separated(", ");
                for id in &dms {
                    ids.push_bind(*id);
                }
                b.push(") ORDER BY u.username_folded");
                let rows: Vec<(Uuid, Uuid, String)> =
                    b.build_query_as().fetch_all(&self.pool).await?;
                for (room, id, username) in rows {
                    if let Some((r, _)) = rooms.iter_mut().find(|(r, _)| r.id.0 == room) {
                        r.dm_with.push(UserPublic {
                            id: UserId(id),
                            username,
                        });
                    }
                }
                Ok(rooms)
            }

            fn event_from_row(row: &$row) -> Result<RoomEvent, sqlx::Error> {
                let room = RoomId(row.try_get("room_id")?);
                let seq: i64 = row.try_get("seq")?;
                let kind: String = row.try_get("kind")?;
                // Kinds with more fields than these columns are stored whole.
                if let Some(data) = row.try_get::<Option<String>, _>("data")? {
                    let mut event: RoomEvent = serde_json::from_str(&data)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                    event.set_seq(seq);
                    return Ok(event);
                }
                let id: Option<Uuid> = row.try_get("message_id")?;
                let id = MessageId(id.ok_or_else(|| {
                    sqlx::Error::Decode(format!("{kind} entry without a message").into())
                })?);
                Ok(match kind.as_str() {
                    "edited" => RoomEvent::Edited(MessageEdited {
                        room,
                        seq,
                        id,
                        body: row.try_get::<Option<String>, _>("body")?.unwrap_or_default(),
                        edited_at: row.try_get("created_at")?,
                    }),
                    "deleted" => RoomEvent::Deleted(MessageDeleted { room, seq, id }),
                    other => {
                        return Err(sqlx::Error::Decode(
                            format!("unknown room log entry kind {other:?}").into(),
                        ))
                    }
                })
            }

            /// Folds one entry (other than a new message) into the messages as they are now.
            async fn fold(
                conn: &mut <$db as sqlx::Database>::Connection,
                event: &RoomEvent,
                at: i64,
            ) -> Result<(), sqlx::Error> {
                match event {
                    RoomEvent::Message(_) => {}
                    RoomEvent::Edited(e) => {
                        let done = sqlx::query(
                            "UPDATE messages SET body = $1, edited_at = $2, edited_seq = $3 \
                             WHERE id = $4 AND deleted_at IS NULL \
                               AND (edited_seq IS NULL OR edited_seq < $3)",
                        )
                        .bind(&e.body)
                        .bind(e.edited_at)
                        .bind(e.seq)
                        .bind(e.id.0)
                        .execute(&mut *conn)
                        .await?;
                        if done.rows_affected() == 0 {
                            // An edit of a message deleted meanwhile keeps no text.
                            sqlx::query(
                                "UPDATE room_events SET body = '' WHERE room_id = $1 AND seq = $2 \
                                 AND EXISTS (SELECT 1 FROM messages WHERE id = $3 AND deleted_at IS NOT NULL)",
                            )
                            .bind(e.room.0)
                            .bind(e.seq)
                            .bind(e.id.0)
                            .execute(&mut *conn)
                            .await?;
                        }
                    }
                    RoomEvent::Reaction(r) => {
                        // The entry with the highest seq decides, whatever the order.
                        sqlx::query(
                            "INSERT INTO message_reactions (message_id, user_id, emoji, room_id, active, seq) \
                             VALUES ($1, $2, $3, $4, $5, $6) \
                             ON CONFLICT (message_id, user_id, emoji) DO UPDATE \
                             SET active = excluded.active, seq = excluded.seq \
                             WHERE message_reactions.seq < excluded.seq",
                        )
                        .bind(r.message.0)
                        .bind(r.user.id.0)
                        .bind(r.emoji.as_str())
                        .bind(r.room.0)
                        .bind(r.on)
                        .bind(r.seq)
                        .execute(&mut *conn)
                        .await?;
                    }
                    RoomEvent::Pinned(p) | RoomEvent::Unpinned(p) => {
                        let on = matches!(event, RoomEvent::Pinned(_));
                        sqlx::query(
                            "UPDATE messages SET pinned_at = $1, pinned_by = $2, pin_seq = $3 \
                             WHERE id = $4 AND deleted_at IS NULL AND (pin_seq IS NULL OR pin_seq < $3)",
                        )
                        .bind(on.then_some(at))
                        .bind(on.then_some(p.by.id.0))
                        .bind(p.seq)
                        .bind(p.message.0)
                        .execute(&mut *conn)
                        .await?;
                    }
                    // Membership, roles and room settings were written by the request that
                    // made them (authorization reads them at once); the entry only records it.
                    RoomEvent::MemberAdded(_)
                    | RoomEvent::MemberRemoved(_)
                    | RoomEvent::RoleChanged(_)
                    | RoomEvent::RoomUpdated(_) => {}
                    RoomEvent::Deleted(d) => {
                        sqlx::query(
                            "UPDATE messages SET body = '', attachment = NULL, deleted_at = $1, \
                             pinned_at = NULL, pinned_by = NULL \
                             WHERE id = $2 AND deleted_at IS NULL",
                        )
                        .bind(at)
                        .bind(d.id.0)
                        .execute(&mut *conn)
                        .await?;
                        sqlx::query(
                            "UPDATE room_events SET body = '' WHERE message_id = $1 AND kind = 'edited'",
                        )
                        .bind(d.id.0)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                Ok(())
            }

            fn room_from_row(row: &$row) -> Result<(Room, RoomCursor), sqlx::Error> {
                let id = RoomId(row.try_get("id")?);
                let last_message: i64 = row.try_get("last_message_seq")?;
                let last_event: i64 = row.try_get("last_event_seq")?;
                let kind: String = row.try_get("kind")?;
                let visibility: String = row.try_get("visibility")?;
                let role: Option<String> = row.try_get("role")?;
                let room = Room {
                    id,
                    name: row.try_get("name")?,
                    kind: $crate::store::sql::kind_of(&kind),
                    visibility: $crate::store::sql::visibility_of(&visibility),
                    topic: row.try_get("topic")?,
                    role: role.as_deref().and_then(RoomRole::parse),
                    dm_with: Vec::new(),
                    mentions: row.try_get("mentions")?,
                    created_by: UserId(row.try_get("created_by")?),
                    created_at: row.try_get("created_at")?,
                    member_count: row.try_get("member_count")?,
                    joined: row.try_get("joined")?,
                    last_seq: last_message.max(last_event),
                    last_read_seq: row.try_get("last_read_seq")?,
                    unread: row.try_get("unread")?,
                };
                let cursor = RoomCursor {
                    name_folded: row.try_get("name_folded")?,
                    id,
                };
                Ok((room, cursor))
            }

        }

#[async_trait::async_trait]
        impl $crate::store::Store for $store {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        sqlx::query(
            "INSERT INTO users (id, username, username_folded, username_skeleton, email, email_folded, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user.id.0)
        .bind(&user.username)
        .bind(&user.username_folded)
        .bind(confab_shared::domain::skeleton(&user.username))
        .bind(&user.email)
        .bind(&user.email_folded)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err($crate::store::sql::map_conflict)?;
        Ok(UserRecord::inserted(user, confab_shared::admin::SiteRole::User, None))
    }

    async fn user_by_login(&self, folded: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            &format!(
                "SELECT {} FROM users WHERE username_folded = $1 OR email_folded = $1",
                $crate::store::sql::USER_COLUMNS
            ),
        )
        .bind(folded)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Self::user_from_row).transpose()?)
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            &format!("SELECT {} FROM users WHERE id = $1", $crate::store::sql::USER_COLUMNS),
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Self::user_from_row).transpose()?)
    }

    async fn set_share_read_receipts(&self, user: UserId, share: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET share_read_receipts = $1 WHERE id = $2")
            .bind(share)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn users_by_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserPublic>, StoreError> {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, username FROM users WHERE username_folded LIKE $1 ESCAPE '\\' \
             AND username_folded > $2 ORDER BY username_folded LIMIT $3",
        )
        .bind($crate::store::sql::like_prefix(&prefix.to_lowercase()))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, username)| UserPublic { id: UserId(id), username })
            .collect())
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<UserPublic>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut b: sqlx::QueryBuilder<$db> =
            sqlx::QueryBuilder::new("SELECT id, username FROM users WHERE id IN (");
        let mut list = b.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        b.push(")");
        let rows: Vec<(Uuid, String)> = b.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|(id, username)| UserPublic { id: UserId(id), username })
            .collect())
    }

    async fn set_password_hash(&self, user: UserId, hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET password_hash = $1, must_change_password = FALSE WHERE id = $2")
            .bind(hash)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_session(
        &self,
        session: SessionId,
        user: UserId,
        refresh_hash: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO sessions (id, user_id, created_at) VALUES ($1, $2, $3)")
            .bind(session.0)
            .bind(user.0)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(refresh_hash)
        .bind(session.0)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        presented_hash: &[u8],
        new_hash: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Write first, so the transaction takes the write lock at once (no read-to-write upgrade).
        let used = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
             AND expires_at > $1 \
             AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL) \
             RETURNING session_id",
        )
        .bind(now)
        .bind(presented_hash)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = used {
            let session: Uuid = row.try_get("session_id")?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(new_hash)
            .bind(session)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            let user: Uuid = sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = $1")
                .bind(session)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Rotated {
                user: UserId(user),
                session: SessionId(session),
            });
        }
        let reused = sqlx::query(
            "SELECT t.session_id, s.user_id FROM refresh_tokens t \
             JOIN sessions s ON s.id = t.session_id \
             WHERE t.token_hash = $1 AND t.used_at IS NOT NULL",
        )
        .bind(presented_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match reused {
            Some(row) => {
                let session: Uuid = row.try_get("session_id")?;
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(session)
                .execute(&mut *tx)
                .await?;
                RefreshOutcome::Reused {
                    user: UserId(row.try_get("user_id")?),
                    session: SessionId(session),
                }
            }
            None => RefreshOutcome::Invalid,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn session_active(&self, session: SessionId) -> Result<bool, StoreError> {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL)",
        )
        .bind(session.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(found)
    }

    async fn sessions_active(
        &self,
        sessions: &[SessionId],
    ) -> Result<std::collections::HashSet<SessionId>, StoreError> {
        let mut active = std::collections::HashSet::with_capacity(sessions.len());
        // In lists of a bounded length (SQLite's limit on a statement's parameters).
        for chunk in sessions.chunks(1000) {
            let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                "SELECT id FROM sessions WHERE revoked_at IS NULL AND id IN (",
            );
            let mut ids = b.separated(", ");
            for session in chunk {
                ids.push_bind(session.0);
            }
            b.push(")");
            let found: Vec<Uuid> = b.build_query_scalar().fetch_all(&self.pool).await?;
            active.extend(found.into_iter().map(SessionId));
        }
        Ok(active)
    }

    async fn revoke_session(&self, session: SessionId, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(session.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        now: i64,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(now)
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    async fn create_room(&self, room: RoomRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rooms (id, name, name_folded, name_skeleton, created_by, created_at, kind, visibility, topic) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(room.id.0)
        .bind(&room.name)
        .bind(room.name.to_lowercase())
        .bind(confab_shared::domain::skeleton(&room.name))
        .bind(room.created_by.0)
        .bind(room.created_at)
        .bind($crate::store::sql::kind_str(room.kind))
        .bind($crate::store::sql::visibility_str(room.visibility))
        .bind(room.topic.as_deref())
        .execute(&mut *tx)
        .await
        .map_err($crate::store::sql::map_conflict)?;
        sqlx::query(
            "INSERT INTO room_members (room_id, user_id, joined_at, role) VALUES ($1, $2, $3, 'owner')",
        )
        .bind(room.id.0)
        .bind(room.created_by.0)
        .bind(room.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn open_dm(
        &self,
        room: RoomRecord,
        dm_key: &str,
        members: &[UserId],
    ) -> Result<RoomId, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Two requests for the same people at once: one inserts, both read the same id.
        sqlx::query(
            "INSERT INTO rooms (id, name, name_folded, created_by, created_at, kind, visibility, dm_key) \
             VALUES ($1, '', $2, $3, $4, 'dm', 'private', $5) \
             ON CONFLICT (dm_key) WHERE dm_key IS NOT NULL DO NOTHING",
        )
        .bind(room.id.0)
        .bind($crate::store::sql::dm_folded_name(dm_key))
        .bind(room.created_by.0)
        .bind(room.created_at)
        .bind(dm_key)
        .execute(&mut *tx)
        .await
        .map_err($crate::store::sql::map_conflict)?;
        let id: Uuid = sqlx::query_scalar("SELECT id FROM rooms WHERE dm_key = $1")
            .bind(dm_key)
            .fetch_one(&mut *tx)
            .await?;
        for member in members {
            sqlx::query(
                "INSERT INTO room_members (room_id, user_id, joined_at, role) VALUES ($1, $2, $3, 'member') \
                 ON CONFLICT (room_id, user_id) DO NOTHING",
            )
            .bind(id)
            .bind(member.0)
            .bind(room.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(RoomId(id))
    }

    async fn update_room(
        &self,
        room: RoomId,
        name: Option<&str>,
        topic: Option<Option<&str>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(name) = name {
            sqlx::query(
                "UPDATE rooms SET name = $1, name_folded = $2, name_skeleton = $3 WHERE id = $4",
            )
                .bind(name)
                .bind(name.to_lowercase())
                .bind(confab_shared::domain::skeleton(name))
                .bind(room.0)
                .execute(&mut *tx)
                .await
                .map_err($crate::store::sql::map_conflict)?;
        }
        if let Some(topic) = topic {
            sqlx::query("UPDATE rooms SET topic = $1 WHERE id = $2")
                .bind(topic)
                .bind(room.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn room(&self, id: RoomId) -> Result<Option<RoomRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, kind, visibility, topic, created_by, created_at FROM rooms WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("kind")?;
        let visibility: String = row.try_get("visibility")?;
        Ok(Some(RoomRecord {
            id: RoomId(row.try_get("id")?),
            name: row.try_get("name")?,
            kind: $crate::store::sql::kind_of(&kind),
            visibility: $crate::store::sql::visibility_of(&visibility),
            topic: row.try_get("topic")?,
            created_by: UserId(row.try_get("created_by")?),
            created_at: row.try_get("created_at")?,
        }))
    }

    async fn room_for(&self, id: RoomId, user: UserId) -> Result<Option<Room>, StoreError> {
        let sql = format!(
            "SELECT {} FROM rooms r \
             LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $1 WHERE r.id = $2 AND r.deleted_at IS NULL",
            $crate::store::sql::ROOM_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(user.0)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        let Some(found) = row.as_ref().map(Self::room_from_row).transpose()? else {
            return Ok(None);
        };
        let mut rooms = self.with_dm_members(vec![found], user).await?;
        Ok(rooms.pop().map(|(r, _)| r))
    }

    async fn list_rooms(&self, q: &RoomQuery) -> Result<Vec<(Room, RoomCursor)>, StoreError> {
        let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
            "SELECT {} FROM rooms r \
             LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = ",
            $crate::store::sql::ROOM_COLUMNS
        ));
        b.push_bind(q.user.0);
        b.push(" WHERE r.deleted_at IS NULL");
        // Non-members see public rooms only; direct conversations only their members.
        match q.scope {
            RoomScope::Joined => b.push(" AND m.user_id IS NOT NULL"),
            RoomScope::Discover => b
                .push(" AND m.user_id IS NULL AND r.kind = 'room' AND r.visibility = 'public' \
                       AND NOT EXISTS (SELECT 1 FROM room_bans x WHERE x.room_id = r.id AND x.user_id = ")
                .push_bind(q.user.0)
                .push(")"),
            RoomScope::All => b.push(
                " AND (m.user_id IS NOT NULL OR (r.kind = 'room' AND r.visibility = 'public'))",
            ),
        };
        if let Some(needle) = &q.name_contains {
            b.push(" AND r.kind = 'room' AND r.name_folded LIKE ")
                .push_bind($crate::store::sql::like_pattern(&needle.to_lowercase()))
                .push(" ESCAPE '\\'");
        }
        if let Some(after) = &q.after {
            b.push(" AND (r.name_folded, r.id) > (")
                .push_bind(after.name_folded.clone())
                .push(", ")
                .push_bind(after.id.0)
                .push(")");
        }
        b.push(" ORDER BY r.name_folded, r.id LIMIT ")
            .push_bind(i64::from(q.limit) + 1);
        let rows = b.build().fetch_all(&self.pool).await?;
        let rooms = rows
            .iter()
            .map(Self::room_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.with_dm_members(rooms, q.user).await?)
    }

    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO room_members (room_id, user_id, joined_at, role, last_read_seq) \
             VALUES ($1, $2, $3, $4, (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room_id = $1)) \
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room.0)
        .bind(user.0)
        .bind(now)
        .bind(role.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2)",
        )
        .bind(room.0)
        .bind(user.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(found)
    }

    async fn member_role(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<RoomRole>, StoreError> {
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2",
        )
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(role.as_deref().and_then(RoomRole::parse))
    }

    async fn set_role(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE room_members SET role = $1 WHERE room_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(room.0)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ban(&self, room: RoomId, user: UserId, by: UserId, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO room_bans (room_id, user_id, banned_by, banned_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room.0)
        .bind(user.0)
        .bind(by.0)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn unban(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM room_bans WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM room_bans WHERE room_id = $1 AND user_id = $2)",
        )
        .bind(room.0)
        .bind(user.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(found)
    }

    async fn bans(&self, room: RoomId) -> Result<Vec<Ban>, StoreError> {
        let rows: Vec<(Uuid, String, Uuid, String, i64)> = sqlx::query_as(
            "SELECT u.id, u.username, b.id, b.username, x.banned_at FROM room_bans x \
             JOIN users u ON u.id = x.user_id JOIN users b ON b.id = x.banned_by \
             WHERE x.room_id = $1 ORDER BY x.banned_at DESC",
        )
        .bind(room.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, username, by, by_name, at)| Ban {
                user: UserPublic { id: UserId(id), username },
                by: UserPublic { id: UserId(by), username: by_name },
                at,
            })
            .collect())
    }

    async fn members_named(
        &self,
        room: RoomId,
        folded: &[String],
    ) -> Result<Vec<UserPublic>, StoreError> {
        if folded.is_empty() {
            return Ok(Vec::new());
        }
        let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
            "SELECT u.id, u.username FROM room_members m JOIN users u ON u.id = m.user_id WHERE m.room_id = ",
        );
        b.push_bind(room.0);
        b.push(" AND u.username_folded IN (");
        let mut names = b.separated(", ");
        for name in folded {
            names.push_bind(name.as_str());
        }
        b.push(")");
        let rows: Vec<(Uuid, String)> = b.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|(id, username)| UserPublic { id: UserId(id), username })
            .collect())
    }

    async fn member_rooms(&self, user: UserId) -> Result<Vec<MemberRoom>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.room_id, m.last_read_seq, \
               (SELECT COUNT(*) FROM messages x WHERE x.room_id = m.room_id \
                  AND x.seq > m.last_read_seq AND x.author_id <> m.user_id \
                  AND x.deleted_at IS NULL) AS unread \
             FROM room_members m WHERE m.user_id = $1",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRoom {
                    room: RoomId(r.try_get("room_id")?),
                    last_read_seq: r.try_get("last_read_seq")?,
                    unread: r.try_get("unread")?,
                })
            })
            .collect()
    }

    async fn members(&self, room: RoomId) -> Result<Vec<MemberRecord>, StoreError> {
        let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
            "SELECT u.id, u.username, m.role, m.joined_at FROM room_members m \
             JOIN users u ON u.id = m.user_id WHERE m.room_id = $1 ORDER BY u.username_folded",
        )
        .bind(room.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, username, role, joined_at)| MemberRecord {
                user: UserPublic { id: UserId(id), username },
                role: RoomRole::parse(&role).unwrap_or(RoomRole::Member),
                joined_at,
            })
            .collect())
    }

    async fn receipts(&self, room: RoomId, viewer: UserId) -> Result<Vec<Receipt>, StoreError> {
        let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT u.id, u.username, m.last_read_seq FROM room_members m \
             JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = $1 AND (u.share_read_receipts OR u.id = $2) ORDER BY u.username_folded",
        )
        .bind(room.0)
        .bind(viewer.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, username, seq)| Receipt {
                user: UserPublic { id: UserId(id), username },
                seq,
            })
            .collect())
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: i64) -> Result<i64, StoreError> {
        let marker: Option<i64> = sqlx::query_scalar(
            "UPDATE room_members SET last_read_seq = CASE WHEN last_read_seq < $1 THEN $1 ELSE last_read_seq END \
             WHERE room_id = $2 AND user_id = $3 RETURNING last_read_seq",
        )
        .bind(seq)
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(marker.unwrap_or(0))
    }

    async fn unread(&self, room: RoomId, user: UserId) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages x JOIN room_members m \
               ON m.room_id = x.room_id AND m.user_id = $1 \
             WHERE x.room_id = $2 AND x.seq > m.last_read_seq AND x.author_id <> $1 \
               AND x.deleted_at IS NULL",
        )
        .bind(user.0)
        .bind(room.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    async fn append(&self, batch: &[LogEntry]) -> Result<Vec<AppendOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = Self::begin_write(&self.pool).await?;
        // Appends to the same room are serialized (two workers may hold batches of one room):
        // otherwise a message and an edit of it, written at once, could each miss the other
        // (the edit finding no message to change, the message's fold finding no edit yet).
        let mut rooms: Vec<Uuid> = batch.iter().map(|e| e.event.room().0).collect();
        rooms.sort_unstable();
        rooms.dedup();
        Self::lock_rooms(&mut *tx, &rooms).await?;

        // New messages, in one statement.
        let messages: Vec<&ChatMessage> = batch
            .iter()
            .filter_map(|e| match &e.event {
                RoomEvent::Message(m) => Some(m),
                _ => None,
            })
            .collect();
        let mut new_messages: HashSet<Uuid> = HashSet::new();
        if !messages.is_empty() {
            let mut attachments = Vec::with_capacity(messages.len());
            for m in &messages {
                attachments.push(
                    m.attachment
                        .as_ref()
                        .map(serde_json::to_string)
                        .transpose()
                        .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?,
                );
            }
            let mut mentions = Vec::with_capacity(messages.len());
            for m in &messages {
                mentions.push(if m.mentions.is_empty() {
                    None
                } else {
                    Some(
                        serde_json::to_string(&m.mentions)
                            .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?,
                    )
                });
            }
            let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                "INSERT INTO messages (id, room_id, seq, author_id, client_msg_id, body, attachment, \
                 created_at, reply_to_id, mentions) ",
            );
            b.push_values(
                messages.iter().zip(attachments.iter().zip(&mentions)),
                |mut row, (m, (a, mentioned))| {
                    row.push_bind(m.id.0)
                        .push_bind(m.room.0)
                        .push_bind(m.seq)
                        .push_bind(m.author.id.0)
                        .push_bind(m.client_msg_id.as_str())
                        .push_bind(m.body.as_str())
                        .push_bind(a.as_deref())
                        .push_bind(m.created_at)
                        .push_bind(m.reply_to.as_ref().map(|r| r.id.0))
                        .push_bind(mentioned.as_deref());
                },
            );
            b.push(" ON CONFLICT (room_id, author_id, client_msg_id) DO NOTHING RETURNING id");
            new_messages = b
                .build_query_scalar::<Uuid>()
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
            // Who each new message mentions, for unread-mention counts.
            let mentioned: Vec<(&ChatMessage, &UserId)> = messages
                .iter()
                .filter(|m| new_messages.contains(&m.id.0))
                .flat_map(|m| m.mentions.iter().map(move |u| (*m, u)))
                .collect();
            if !mentioned.is_empty() {
                let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                    "INSERT INTO message_mentions (message_id, room_id, user_id, seq) ",
                );
                b.push_values(&mentioned, |mut row, (m, user)| {
                    row.push_bind(m.id.0)
                        .push_bind(m.room.0)
                        .push_bind(user.0)
                        .push_bind(m.seq);
                });
                b.push(" ON CONFLICT (message_id, user_id) DO NOTHING");
                b.build().execute(&mut *tx).await?;
            }
        }

        // Every other entry, in one statement.
        let others: Vec<&LogEntry> = batch
            .iter()
            .filter(|e| !matches!(e.event, RoomEvent::Message(_)))
            .collect();
        let mut new_events: HashSet<(Uuid, i64)> = HashSet::new();
        if !others.is_empty() {
            let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                "INSERT INTO room_events (room_id, seq, kind, actor_id, client_ref, message_id, body, data, created_at) ",
            );
            b.push_values(&others, |mut row, e| {
                // Edits and deletions fit the columns (an edit's text can then be emptied
                // on its own); every other kind is stored whole.
                let (body, data) = match &e.event {
                    RoomEvent::Edited(ed) => (Some(ed.body.as_str()), None),
                    RoomEvent::Deleted(_) => (None, None),
                    other => (None, Some(other.to_json())),
                };
                row.push_bind(e.event.room().0)
                    .push_bind(e.event.seq())
                    .push_bind(e.event.kind())
                    .push_bind(e.actor.0)
                    .push_bind(e.reference.as_str())
                    .push_bind(e.event.message_id().map(|m| m.0))
                    .push_bind(body)
                    .push_bind(data)
                    .push_bind(e.at);
            });
            b.push(" ON CONFLICT (room_id, actor_id, client_ref) DO NOTHING RETURNING room_id, seq");
            let rows = b.build().fetch_all(&mut *tx).await?;
            for row in &rows {
                new_events.insert((row.try_get("room_id")?, row.try_get("seq")?));
            }
            for e in &others {
                if new_events.contains(&(e.event.room().0, e.event.seq())) {
                    Self::fold(&mut *tx, &e.event, e.at).await?;
                }
            }
        }

        // A message written after entries about it (two workers took its batch and a later
        // one): fold those entries into it now.
        if !new_messages.is_empty() {
            let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {} FROM room_events WHERE message_id IN (",
                $crate::store::sql::EVENT_COLUMNS
            ));
            let mut ids = b.separated(", ");
            for id in &new_messages {
                ids.push_bind(*id);
            }
            b.push(") ORDER BY seq");
            let rows = b.build().fetch_all(&mut *tx).await?;
            for row in &rows {
                let key: (Uuid, i64) = (row.try_get("room_id")?, row.try_get("seq")?);
                if new_events.contains(&key) {
                    continue;
                }
                let at: i64 = row.try_get("created_at")?;
                let event = Self::event_from_row(row)?;
                Self::fold(&mut *tx, &event, at).await?;
            }
        }

        // Answers, with the first entry's for duplicates.
        let mut out = Vec::with_capacity(batch.len());
        for e in batch {
            let outcome = match &e.event {
                RoomEvent::Message(m) if new_messages.contains(&m.id.0) => AppendOutcome::Appended,
                RoomEvent::Message(m) => {
                    let row = sqlx::query(
                        "SELECT id, seq FROM messages WHERE room_id = $1 AND author_id = $2 AND client_msg_id = $3",
                    )
                    .bind(m.room.0)
                    .bind(m.author.id.0)
                    .bind(m.client_msg_id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                    AppendOutcome::Duplicate {
                        id: Some(MessageId(row.try_get("id")?)),
                        seq: row.try_get("seq")?,
                    }
                }
                other if new_events.contains(&(other.room().0, other.seq())) => {
                    AppendOutcome::Appended
                }
                other => {
                    let row = sqlx::query(
                        "SELECT message_id, seq FROM room_events WHERE room_id = $1 AND actor_id = $2 AND client_ref = $3",
                    )
                    .bind(other.room().0)
                    .bind(e.actor.0)
                    .bind(e.reference.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                    AppendOutcome::Duplicate {
                        id: row.try_get::<Option<Uuid>, _>("message_id")?.map(MessageId),
                        seq: row.try_get("seq")?,
                    }
                }
            };
            out.push(outcome);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn messages_before(
        &self,
        room: RoomId,
        before_seq: Option<i64>,
        limit: u32,
        viewer: UserId,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let mut out = self
            .messages_where(
                room,
                "m.seq < $2 AND m.deleted_at IS NULL",
                before_seq.unwrap_or(i64::MAX),
                "m.seq DESC",
                limit,
                viewer,
            )
            .await?;
        out.reverse();
        Ok(out)
    }

    async fn messages_from(
        &self,
        room: RoomId,
        from_seq: i64,
        limit: u32,
        viewer: UserId,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.messages_where(
            room,
            "m.seq >= $2 AND m.deleted_at IS NULL",
            from_seq,
            "m.seq ASC",
            limit,
            viewer,
        )
        .await
    }

    async fn pins(&self, room: RoomId, viewer: UserId) -> Result<Vec<Pin>, StoreError> {
        let sql = format!(
            "SELECT {}, m.pinned_by, pb.username AS pinned_by_name FROM {} \
             JOIN users pb ON pb.id = m.pinned_by \
             WHERE m.room_id = $1 AND m.pinned_at IS NOT NULL AND m.deleted_at IS NULL \
             ORDER BY m.pinned_at DESC, m.seq DESC",
            $crate::store::sql::MESSAGE_COLUMNS,
            $crate::store::sql::MESSAGE_FROM
        );
        let rows = sqlx::query(&sql).bind(room.0).fetch_all(&self.pool).await?;
        let mut pins = Vec::with_capacity(rows.len());
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let m = Self::message_from_row(row)?;
            pins.push((
                UserPublic {
                    id: UserId(row.try_get("pinned_by")?),
                    username: row.try_get("pinned_by_name")?,
                },
                row.try_get::<i64, _>("pinned_at")?,
            ));
            messages.push(m);
        }
        let messages = self.with_reactions(messages, viewer).await?;
        Ok(messages
            .into_iter()
            .zip(pins)
            .map(|(message, (by, at))| Pin { message, by, at })
            .collect())
    }

    async fn search(
        &self,
        q: &$crate::store::SearchQuery,
    ) -> Result<Vec<(SearchHit, $crate::store::SearchCursor)>, StoreError> {
        let rows = self.search_rows(q).await?;
        rows.iter()
            .map(|row| -> Result<_, StoreError> {
                let room = RoomId(row.try_get("room_id")?);
                let seq: i64 = row.try_get("seq")?;
                let rank: f64 = row.try_get("rank")?;
                let snippet: String = row.try_get("snippet")?;
                let hit = SearchHit {
                    room,
                    room_name: row.try_get("room_name")?,
                    seq,
                    id: MessageId(row.try_get("id")?),
                    author: UserPublic {
                        id: UserId(row.try_get("author_id")?),
                        username: row.try_get("username")?,
                    },
                    created_at: row.try_get("created_at")?,
                    excerpt: $crate::store::sql::excerpt_parts(&snippet),
                };
                Ok((hit, $crate::store::SearchCursor { rank, room, seq }))
            })
            .collect()
    }

    async fn events_after(
        &self,
        room: RoomId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3",
            $crate::store::sql::MESSAGE_COLUMNS,
            $crate::store::sql::MESSAGE_FROM
        );
        let messages = sqlx::query(&sql)
            .bind(room.0)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Self::message_from_row(r).map(|m| RoomEvent::Message(m.as_log_entry())))
            .collect::<Result<Vec<_>, _>>()?;
        let sql = format!(
            "SELECT {} FROM room_events WHERE room_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3",
            $crate::store::sql::EVENT_COLUMNS
        );
        let others = sqlx::query(&sql)
            .bind(room.0)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok($crate::store::sql::merge_by_seq(messages, others, limit as usize))
    }

    async fn last_seq(&self, room: RoomId) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM messages WHERE room_id = $1 \
             UNION ALL SELECT MAX(seq) AS s FROM room_events WHERE room_id = $1) t",
        )
        .bind(room.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn message(&self, id: MessageId) -> Result<Option<ChatMessage>, StoreError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE m.id = $1",
            $crate::store::sql::MESSAGE_COLUMNS,
            $crate::store::sql::MESSAGE_FROM
        );
        let row = sqlx::query(&sql).bind(id.0).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(Self::message_from_row).transpose()?)
    }

    async fn entry_by_ref(
        &self,
        room: RoomId,
        actor: UserId,
        reference: &ClientRef,
    ) -> Result<Option<(Option<MessageId>, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT message_id, seq FROM room_events WHERE room_id = $1 AND actor_id = $2 AND client_ref = $3",
        )
        .bind(room.0)
        .bind(actor.0)
        .bind(reference.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((
            row.try_get::<Option<Uuid>, _>("message_id")?.map(MessageId),
            row.try_get("seq")?,
        )))
    }

    async fn insert_upload(&self, u: &crate::store::UploadRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO uploads (id, room_id, uploader_id, name, content_type, size, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&u.key)
        .bind(u.room.0)
        .bind(u.uploader.0)
        .bind(&u.name)
        .bind(&u.content_type)
        .bind(u.size)
        .bind(u.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upload(&self, key: &str) -> Result<Option<crate::store::UploadRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, room_id, uploader_id, name, content_type, size, created_at \
             FROM uploads WHERE id = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(crate::store::UploadRecord {
            key: row.try_get("id")?,
            room: RoomId(row.try_get("room_id")?),
            uploader: UserId(row.try_get("uploader_id")?),
            name: row.try_get("name")?,
            content_type: row.try_get("content_type")?,
            size: row.try_get("size")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    async fn fill_missing_skeletons(&self) -> Result<u64, StoreError> {
        let mut filled = 0;
        for (table, id_col, name_col, key_col) in [
            ("users", "id", "username", "username_skeleton"),
            ("rooms", "id", "name", "name_skeleton"),
        ] {
            // Direct conversations have no name (and no look-alike key).
            let rows = sqlx::query(&format!(
                "SELECT {id_col} AS id, {name_col} AS name FROM {table} \
                 WHERE {key_col} IS NULL AND {name_col} <> ''"
            ))
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                let id: Uuid = row.try_get("id")?;
                let name: String = row.try_get("name")?;
                let set = sqlx::query(&format!(
                    "UPDATE {table} SET {key_col} = $1 WHERE {id_col} = $2"
                ))
                .bind(confab_shared::domain::skeleton(&name))
                .bind(id)
                .execute(&self.pool)
                .await;
                match set.map_err($crate::store::sql::map_conflict) {
                    Ok(_) => filled += 1,
                    Err(StoreError::Conflict(_)) => {
                        tracing::warn!(table, %id, "an older look-alike name keeps no skeleton")
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(filled)
    }

    async fn claim_upload(&self, key: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE uploads SET claimed_at = $1 \
             WHERE id = $2 AND claimed_at IS NULL AND content_type IS NULL",
        )
        .bind(now)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn complete_upload(
        &self,
        key: &str,
        content_type: &str,
        size: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET content_type = $1, size = $2 WHERE id = $3")
            .bind(content_type)
            .bind(size)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
    };
}
pub(crate) use sql_store;

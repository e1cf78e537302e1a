//! What notifications need from the database (migration `20261201000300_push.sql`): push
//! subscriptions, each member's level per room, each user's notification settings, and the
//! missed mentions and direct messages an e-mail digest lists. [`NotifyStore`] is a supertrait
//! of [`Store`](super::Store); `notify_store!` implements it for both drivers with the same SQL.

use super::StoreError;
use async_trait::async_trait;
use confab_shared::conversation::RoomKind;
use confab_shared::ids::{MessageId, RoomId, SessionId, UserId};
use confab_shared::notify::NotificationLevel;

/// A browser's push subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscriptionRecord {
    pub user: UserId,
    /// The login session that made it (logging out of that browser removes it).
    pub session: Option<SessionId>,
    /// Checked when stored: https, a known push service, a public address.
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub created_at: i64,
}

/// A member who may be notified of a new message in a room: one with a push subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub room: RoomId,
    pub user: UserId,
    /// Their chosen level; `None`: the room kind's default.
    pub level: Option<NotificationLevel>,
    pub push_previews: bool,
}

/// A user's notification settings (defaults when they never chose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserNotifySettings {
    pub push_previews: bool,
    pub email: bool,
}

/// A mention or direct message that its recipient has not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedMessage {
    pub user: UserId,
    pub room: RoomId,
    pub room_name: String,
    pub kind: RoomKind,
    pub message: MessageId,
    pub seq: i64,
    pub author: String,
    pub body: String,
    pub created_at: i64,
}

/// The default level of a room kind: direct conversations `all`, rooms `mentions`.
pub fn default_level(kind: RoomKind) -> NotificationLevel {
    match kind {
        RoomKind::Dm => NotificationLevel::All,
        _ => NotificationLevel::Mentions,
    }
}

/// The notification half of the store.
#[async_trait]
pub trait NotifyStore: Send + Sync + 'static {
    /// Stores a subscription; an endpoint already stored (the same browser subscribing again,
    /// perhaps for another account) is replaced.
    async fn put_push_subscription(&self, sub: &PushSubscriptionRecord) -> Result<(), StoreError>;
    /// Removes the user's subscription with this endpoint; whether there was one.
    async fn delete_push_subscription(
        &self,
        user: UserId,
        endpoint: &str,
    ) -> Result<bool, StoreError>;
    /// Removes a subscription the push service says is gone (404/410).
    async fn delete_push_endpoint(&self, endpoint: &str) -> Result<bool, StoreError>;
    /// Removes the subscriptions made by a login session (its browser logged out).
    async fn delete_session_push(&self, session: SessionId) -> Result<u64, StoreError>;
    /// Removes every subscription of the user (password change).
    async fn delete_user_push(&self, user: UserId) -> Result<u64, StoreError>;
    /// The user's subscriptions.
    async fn push_subscriptions(
        &self,
        user: UserId,
    ) -> Result<Vec<PushSubscriptionRecord>, StoreError>;

    /// Sets a member's level in a room.
    async fn set_notification_level(
        &self,
        room: RoomId,
        user: UserId,
        level: NotificationLevel,
    ) -> Result<(), StoreError>;
    /// The levels the user chose, by room (rooms without a choice are left out).
    async fn notification_levels(
        &self,
        user: UserId,
    ) -> Result<Vec<(RoomId, NotificationLevel)>, StoreError>;
    /// The members of these rooms who have a push subscription, with what deciding their
    /// notification needs: one query for a whole batch of new messages, and none of a room's
    /// members when nobody there could be pushed to.
    async fn notify_recipients(&self, rooms: &[RoomId]) -> Result<Vec<Recipient>, StoreError>;

    /// The user's settings.
    async fn notify_settings(&self, user: UserId) -> Result<UserNotifySettings, StoreError>;
    /// Changes the user's settings (`None`: unchanged).
    async fn set_notify_settings(
        &self,
        user: UserId,
        push_previews: Option<bool>,
        email: Option<bool>,
    ) -> Result<(), StoreError>;
    /// The secret of the user's "stop these e-mails" link, made on first use.
    async fn email_token(&self, user: UserId, fresh: &str) -> Result<String, StoreError>;
    /// Turns e-mail off for the user whose link this is; whether the token named one.
    async fn email_off(&self, token: &str) -> Result<bool, StoreError>;
    /// Unread mentions and direct messages created in `(since, until]` (and after each
    /// user's last digest), of users with e-mail on, in rooms they have not muted; at most
    /// `limit`, by user and time.
    async fn missed_messages(
        &self,
        since: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<MissedMessage>, StoreError>;
    /// Records that the user's missed messages up to `until` have been considered.
    async fn set_digest_after(&self, user: UserId, until: i64) -> Result<(), StoreError>;
}

/// Implements [`NotifyStore`] for a store type holding `pool: sqlx::Pool<$db>`.
macro_rules! notify_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::notify::NotifyStore for $store {
            async fn put_push_subscription(
                &self,
                sub: &$crate::store::notify::PushSubscriptionRecord,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO push_subscriptions \
                     (id, user_id, session_id, endpoint, p256dh, auth, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, \
                     session_id = excluded.session_id, p256dh = excluded.p256dh, \
                     auth = excluded.auth, created_at = excluded.created_at",
                )
                .bind(uuid::Uuid::now_v7())
                .bind(sub.user.0)
                .bind(sub.session.map(|s| s.0))
                .bind(&sub.endpoint)
                .bind(&sub.p256dh)
                .bind(&sub.auth)
                .bind(sub.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_push_subscription(
                &self,
                user: UserId,
                endpoint: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2",
                )
                .bind(user.0)
                .bind(endpoint)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_push_endpoint(&self, endpoint: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1")
                    .bind(endpoint)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_session_push(&self, session: SessionId) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM push_subscriptions WHERE session_id = $1")
                    .bind(session.0)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn delete_user_push(&self, user: UserId) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM push_subscriptions WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn push_subscriptions(
                &self,
                user: UserId,
            ) -> Result<Vec<$crate::store::notify::PushSubscriptionRecord>, StoreError> {
                let rows: Vec<(Option<uuid::Uuid>, String, String, String, i64)> =
                    sqlx::query_as(
                        "SELECT session_id, endpoint, p256dh, auth, created_at \
                         FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at",
                    )
                    .bind(user.0)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(session, endpoint, p256dh, auth, created_at)| {
                        $crate::store::notify::PushSubscriptionRecord {
                            user,
                            session: session.map(SessionId),
                            endpoint,
                            p256dh,
                            auth,
                            created_at,
                        }
                    })
                    .collect())
            }

            async fn set_notification_level(
                &self,
                room: RoomId,
                user: UserId,
                level: confab_shared::notify::NotificationLevel,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO room_notification_levels (room_id, user_id, level) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (room_id, user_id) DO UPDATE SET level = excluded.level",
                )
                .bind(room.0)
                .bind(user.0)
                .bind(level.as_str())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn notification_levels(
                &self,
                user: UserId,
            ) -> Result<Vec<(RoomId, confab_shared::notify::NotificationLevel)>, StoreError> {
                let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(
                    "SELECT l.room_id, l.level FROM room_notification_levels l \
                     JOIN room_members m ON m.room_id = l.room_id AND m.user_id = l.user_id \
                     WHERE l.user_id = $1",
                )
                .bind(user.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(room, level)| {
                        confab_shared::notify::NotificationLevel::parse(&level)
                            .map(|l| (RoomId(room), l))
                    })
                    .collect())
            }

            async fn notify_recipients(
                &self,
                rooms: &[RoomId],
            ) -> Result<Vec<$crate::store::notify::Recipient>, StoreError> {
                if rooms.is_empty() {
                    return Ok(Vec::new());
                }
                let mut b: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                    "SELECT m.room_id, m.user_id, l.level, s.push_previews \
                     FROM room_members m \
                     LEFT JOIN room_notification_levels l \
                       ON l.room_id = m.room_id AND l.user_id = m.user_id \
                     LEFT JOIN notification_settings s ON s.user_id = m.user_id \
                     WHERE EXISTS (SELECT 1 FROM push_subscriptions p WHERE p.user_id = m.user_id) \
                       AND m.room_id IN (",
                );
                let mut list = b.separated(", ");
                for room in rooms {
                    list.push_bind(room.0);
                }
                b.push(")");
                let rows: Vec<(uuid::Uuid, uuid::Uuid, Option<String>, Option<bool>)> =
                    b.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(room, user, level, previews)| $crate::store::notify::Recipient {
                            room: RoomId(room),
                            user: UserId(user),
                            level: level.as_deref().and_then(
                                confab_shared::notify::NotificationLevel::parse,
                            ),
                            push_previews: previews.unwrap_or(true),
                        },
                    )
                    .collect())
            }

            async fn notify_settings(
                &self,
                user: UserId,
            ) -> Result<$crate::store::notify::UserNotifySettings, StoreError> {
                let row: Option<(bool, bool)> = sqlx::query_as(
                    "SELECT push_previews, email FROM notification_settings WHERE user_id = $1",
                )
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
                let (push_previews, email) = row.unwrap_or((true, true));
                Ok($crate::store::notify::UserNotifySettings {
                    push_previews,
                    email,
                })
            }

            async fn set_notify_settings(
                &self,
                user: UserId,
                push_previews: Option<bool>,
                email: Option<bool>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO notification_settings (user_id, push_previews, email) \
                     VALUES ($1, COALESCE($2, TRUE), COALESCE($3, TRUE)) \
                     ON CONFLICT (user_id) DO UPDATE SET \
                     push_previews = COALESCE($2, notification_settings.push_previews), \
                     email = COALESCE($3, notification_settings.email)",
                )
                .bind(user.0)
                .bind(push_previews)
                .bind(email)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn email_token(&self, user: UserId, fresh: &str) -> Result<String, StoreError> {
                sqlx::query(
                    "INSERT INTO notification_settings (user_id, email_token) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET email_token = \
                     COALESCE(notification_settings.email_token, excluded.email_token)",
                )
                .bind(user.0)
                .bind(fresh)
                .execute(&self.pool)
                .await?;
                let token: Option<String> = sqlx::query_scalar(
                    "SELECT email_token FROM notification_settings WHERE user_id = $1",
                )
                .bind(user.0)
                .fetch_one(&self.pool)
                .await?;
                Ok(token.unwrap_or_else(|| fresh.to_owned()))
            }

            async fn email_off(&self, token: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE notification_settings SET email = FALSE WHERE email_token = $1",
                )
                .bind(token)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn missed_messages(
                &self,
                since: i64,
                until: i64,
                limit: u32,
            ) -> Result<Vec<$crate::store::notify::MissedMessage>, StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT rm.user_id, m.room_id, r.name, r.kind, m.id, m.seq, au.username, \
                       m.body, m.created_at \
                     FROM messages m \
                     JOIN room_members rm ON rm.room_id = m.room_id \
                       AND m.seq > rm.last_read_seq AND m.author_id <> rm.user_id \
                     JOIN rooms r ON r.id = m.room_id \
                     JOIN users au ON au.id = m.author_id \
                     LEFT JOIN notification_settings s ON s.user_id = rm.user_id \
                     LEFT JOIN room_notification_levels l \
                       ON l.room_id = m.room_id AND l.user_id = rm.user_id \
                     WHERE m.deleted_at IS NULL AND m.created_at > $1 AND m.created_at <= $2 \
                       AND m.created_at > COALESCE(s.digest_after, 0) \
                       AND COALESCE(s.email, TRUE) \
                       AND COALESCE(l.level, 'default') <> 'none' \
                       AND (r.kind = 'dm' OR EXISTS (SELECT 1 FROM message_mentions mm \
                         WHERE mm.message_id = m.id AND mm.user_id = rm.user_id)) \
                     ORDER BY rm.user_id, m.created_at LIMIT $3",
                )
                .bind(since)
                .bind(until)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let kind: String = r.try_get("kind")?;
                        Ok($crate::store::notify::MissedMessage {
                            user: UserId(r.try_get("user_id")?),
                            room: RoomId(r.try_get("room_id")?),
                            room_name: r.try_get("name")?,
                            kind: $crate::store::sql::kind_of(&kind),
                            message: MessageId(r.try_get("id")?),
                            seq: r.try_get("seq")?,
                            author: r.try_get("username")?,
                            body: r.try_get("body")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn set_digest_after(&self, user: UserId, until: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO notification_settings (user_id, digest_after) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET digest_after = excluded.digest_after",
                )
                .bind(user.0)
                .bind(until)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use notify_store;

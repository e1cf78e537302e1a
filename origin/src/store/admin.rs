//! What running a site stores (migration `20261201000400_admin.sql`): site roles, deactivation
//! and password resets, registration by invite (and the first account), API tokens (sessions
//! with a token hash), bot accounts, incoming webhooks, deleted rooms, and the
//! audit log. [`AdminStore`] is a supertrait of [`Store`](super::Store), implemented for both
//! databases by [`admin_sql_store`] (the same SQL).

use super::{NewUser, StoreError, UserRecord};
use async_trait::async_trait;
use confab_shared::admin::{AdminUser, AuditEntry, Invite, SiteRole, TokenInfo, TokenScope};
use confab_shared::ids::{RoomId, SessionId, UserId};

/// How a new account is admitted. Whatever it says, the first account of the site (while
/// `site_state.first_account_claimed` is false) is admitted and becomes an administrator,
/// except under [`Admission::Closed`].
#[derive(Debug, Clone)]
pub enum Admission {
    /// Anyone.
    Open,
    /// With the invite whose code hashes to this (none given: refused).
    Invite(Option<Vec<u8>>),
    /// Nobody but the first account... which closed registration does not admit either.
    Closed,
    /// An operator or administrator creates the account with this role.
    Operator(SiteRole),
}

/// A new invite.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub id: uuid::Uuid,
    pub code_hash: Vec<u8>,
    pub created_by: UserId,
    pub uses: u32,
    pub expires_at: i64,
    pub created_at: i64,
}

/// What an API token stands for.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// The token's session (its id).
    pub session: SessionId,
    pub user: UserId,
    pub username: String,
    pub scopes: Vec<TokenScope>,
    /// Whether the token's user is a bot.
    pub bot: bool,
}

/// A webhook's stored fields.
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    pub id: uuid::Uuid,
    pub room: RoomId,
    pub bot: UserId,
    pub bot_name: String,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub created_by: UserId,
    pub created_at: i64,
}

/// A new audit-log entry.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub at: i64,
    /// None: the command line.
    pub actor: Option<UserId>,
    pub actor_name: String,
    pub action: &'static str,
    pub target_user: Option<UserId>,
    pub target_room: Option<RoomId>,
    pub detail: Option<String>,
}

/// Stores scopes as `read,post`.
pub fn scopes_to_stored(scopes: &[TokenScope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads stored scopes (unknown words are dropped: never more than was granted).
pub fn scopes_from_stored(s: &str) -> Vec<TokenScope> {
    s.split(',')
        .filter_map(|w| match w {
            "read" => Some(TokenScope::Read),
            "post" => Some(TokenScope::Post),
            _ => None,
        })
        .collect()
}

/// Running a site: see the module documentation.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Creates an account if `admission` allows it (or it is the site's first, which then
    /// becomes an administrator), consuming one use of an invite, in one transaction.
    /// `Refused` when not admitted, `Conflict` when the name or address is taken.
    async fn register_user(
        &self,
        user: NewUser,
        admission: Admission,
        now: i64,
    ) -> Result<UserRecord, StoreError>;
    /// Creates a bot account owned by `owner` (no password can match its hash).
    async fn create_bot(
        &self,
        user: NewUser,
        owner: UserId,
        avatar_url: Option<&str>,
    ) -> Result<UserRecord, StoreError>;
    /// The bots `owner` owns that are not deactivated, by name, with their avatars.
    async fn bots(&self, owner: UserId) -> Result<Vec<(UserRecord, Option<String>)>, StoreError>;
    /// Sets the site role; false when there is no such user.
    async fn set_site_role(&self, user: UserId, role: SiteRole) -> Result<bool, StoreError>;
    /// Administrators that are not deactivated.
    async fn active_admins(&self) -> Result<i64, StoreError>;
    /// Deactivates (`Some(now)`) or reactivates (`None`) an account; false when there is no
    /// such user. Deactivating revokes every session and token of it, in the same transaction.
    async fn set_deactivated(&self, user: UserId, at: Option<i64>) -> Result<bool, StoreError>;
    /// Sets a temporary password the next sign-in must replace, and revokes every session.
    async fn reset_password(&self, user: UserId, hash: &str, now: i64) -> Result<bool, StoreError>;
    /// Accounts whose username or email contains `q` (folded), after the folded username
    /// `after`, by folded username; up to `limit + 1`.
    async fn admin_users(
        &self,
        q: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(AdminUser, String)>, StoreError>;

    async fn create_invite(&self, invite: NewInvite) -> Result<(), StoreError>;
    /// Invites, newest first (all, or those `by` made).
    async fn invites(&self, by: Option<UserId>) -> Result<Vec<Invite>, StoreError>;
    /// Revokes an invite (only `by`'s own unless None); false when there is none.
    async fn revoke_invite(
        &self,
        id: uuid::Uuid,
        by: Option<UserId>,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Makes an API token: a session of `user` with no refresh token.
    async fn create_token(
        &self,
        id: SessionId,
        user: UserId,
        name: &str,
        scopes: &[TokenScope],
        hash: &[u8],
        now: i64,
    ) -> Result<(), StoreError>;
    /// The live token with this hash, of an account that is not deactivated.
    async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRecord>, StoreError>;
    /// The user's live tokens, newest first.
    async fn tokens(&self, user: UserId) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revokes one of the user's tokens; false when there is none.
    async fn revoke_token(&self, user: UserId, id: SessionId, now: i64)
        -> Result<bool, StoreError>;

    async fn create_webhook(&self, hook: &WebhookRecord) -> Result<(), StoreError>;
    /// The live webhook whose secret hashes to this, in a room that is not deleted.
    async fn webhook_by_secret(&self, hash: &[u8]) -> Result<Option<WebhookRecord>, StoreError>;
    /// The room's live webhooks, newest first.
    async fn webhooks(&self, room: RoomId) -> Result<Vec<WebhookRecord>, StoreError>;
    /// Revokes a webhook of the room (and deactivates its bot); false when there is none.
    async fn revoke_webhook(
        &self,
        room: RoomId,
        id: uuid::Uuid,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Deletes a room for everyone: marks it deleted and removes every member, whose ids are
    /// returned (None: no such room, or deleted already).
    async fn delete_room(&self, room: RoomId, now: i64) -> Result<Option<Vec<UserId>>, StoreError>;

    async fn audit(&self, entry: NewAudit) -> Result<(), StoreError>;
    /// Entries older than `before` (all when None), newest first; up to `limit`.
    async fn audit_page(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Implements [`AdminStore`] for a store type holding `pool: sqlx::Pool<$db>`, in the SQL
/// both databases share.
macro_rules! admin_sql_store {
    ($store:ty, $db:ty, $row:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::admin::AdminStore for $store {
            async fn register_user(
                &self,
                user: NewUser,
                admission: $crate::store::admin::Admission,
                now: i64,
            ) -> Result<UserRecord, StoreError> {
                use $crate::store::admin::Admission;
                use confab_shared::admin::SiteRole;
                let mut tx = Self::begin_write(&self.pool).await?;
                let first = !matches!(admission, Admission::Closed)
                    && sqlx::query(
                        "UPDATE site_state SET first_account_claimed = TRUE \
                         WHERE id = 1 AND first_account_claimed = FALSE",
                    )
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                let role = match (&admission, first) {
                    (Admission::Operator(role), _) => *role,
                    (_, true) => SiteRole::Admin,
                    (Admission::Open, false) => SiteRole::User,
                    (Admission::Closed, false) => {
                        return Err(StoreError::Refused(
                            "registration is closed: an administrator creates accounts",
                        ))
                    }
                    (Admission::Invite(code), false) => {
                        let refused = StoreError::Refused(
                            "registration needs a valid invite (this one is unknown, used up, revoked or expired)",
                        );
                        let Some(code) = code else {
                            return Err(StoreError::Refused("registration needs an invite"));
                        };
                        let used = sqlx::query(
                            "UPDATE invites SET used = used + 1 WHERE code_hash = $1 \
                             AND used < uses AND expires_at > $2 AND revoked_at IS NULL",
                        )
                        .bind(code.as_slice())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if used != 1 {
                            return Err(refused);
                        }
                        SiteRole::User
                    }
                };
                sqlx::query(
                    "INSERT INTO users (id, username, username_folded, username_skeleton, email, email_folded, password_hash, created_at, site_role) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(user.id.0)
                .bind(&user.username)
                .bind(&user.username_folded)
                .bind(confab_shared::domain::skeleton(&user.username))
                .bind(&user.email)
                .bind(&user.email_folded)
                .bind(&user.password_hash)
                .bind(user.created_at)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await
                .map_err($crate::store::sql::map_conflict)?;
                tx.commit().await?;
                Ok(UserRecord::inserted(user, role, None))
            }

            async fn create_bot(
                &self,
                user: NewUser,
                owner: UserId,
                avatar_url: Option<&str>,
            ) -> Result<UserRecord, StoreError> {
                sqlx::query(
                    "INSERT INTO users (id, username, username_folded, username_skeleton, email, email_folded, password_hash, created_at, bot_owner, avatar_url) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(user.id.0)
                .bind(&user.username)
                .bind(&user.username_folded)
                .bind(confab_shared::domain::skeleton(&user.username))
                .bind(&user.email)
                .bind(&user.email_folded)
                .bind(&user.password_hash)
                .bind(user.created_at)
                .bind(owner.0)
                .bind(avatar_url)
                .execute(&self.pool)
                .await
                .map_err($crate::store::sql::map_conflict)?;
                Ok(UserRecord::inserted(user, confab_shared::admin::SiteRole::User, Some(owner)))
            }

            async fn bots(
                &self,
                owner: UserId,
            ) -> Result<Vec<(UserRecord, Option<String>)>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT {}, avatar_url FROM users WHERE bot_owner = $1 AND deactivated_at IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.bot_id = users.id) \
                     ORDER BY username_folded",
                    $crate::store::sql::USER_COLUMNS
                ))
                .bind(owner.0)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push((Self::user_from_row(row)?, row.try_get("avatar_url")?));
                }
                Ok(out)
            }

            async fn set_site_role(
                &self,
                user: UserId,
                role: confab_shared::admin::SiteRole,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE users SET site_role = $1 WHERE id = $2")
                    .bind(role.as_str())
                    .bind(user.0)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn active_admins(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users WHERE site_role = 'admin' AND deactivated_at IS NULL",
                )
                .fetch_one(&self.pool)
                .await?)
            }

            async fn set_deactivated(&self, user: UserId, at: Option<i64>) -> Result<bool, StoreError> {
                let mut tx = Self::begin_write(&self.pool).await?;
                let done = sqlx::query("UPDATE users SET deactivated_at = $1 WHERE id = $2")
                    .bind(at)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
                if let Some(now) = at {
                    sqlx::query(
                        "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn reset_password(&self, user: UserId, hash: &str, now: i64) -> Result<bool, StoreError> {
                let mut tx = Self::begin_write(&self.pool).await?;
                let done = sqlx::query(
                    "UPDATE users SET password_hash = $1, must_change_password = TRUE WHERE id = $2 AND bot_owner IS NULL",
                )
                .bind(hash)
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND token_hash IS NULL",
                )
                .bind(now)
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn admin_users(
                &self,
                q: &str,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<(AdminUser, String)>, StoreError> {
                let pattern = $crate::store::sql::like_pattern(&q.to_lowercase());
                let rows = sqlx::query(&format!(
                    "SELECT {}, username_folded FROM users \
                     WHERE (username_folded LIKE $1 ESCAPE '\\' OR email_folded LIKE $1 ESCAPE '\\') \
                     AND username_folded > $2 ORDER BY username_folded LIMIT $3",
                    $crate::store::sql::USER_COLUMNS
                ))
                .bind(pattern)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit) + 1)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let u = Self::user_from_row(row)?;
                    out.push((
                        AdminUser {
                            id: u.id,
                            username: u.username,
                            email: u.email,
                            role: u.role,
                            bot: u.bot_owner.is_some(),
                            deactivated_at: u.deactivated_at,
                            must_change_password: u.must_change_password,
                            created_at: u.created_at,
                        },
                        row.try_get("username_folded")?,
                    ));
                }
                Ok(out)
            }

            async fn create_invite(&self, i: $crate::store::admin::NewInvite) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO invites (id, code_hash, created_by, uses, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(i.id)
                .bind(i.code_hash.as_slice())
                .bind(i.created_by.0)
                .bind(i64::from(i.uses))
                .bind(i.expires_at)
                .bind(i.created_at)
                .execute(&self.pool)
                .await
                .map_err($crate::store::sql::map_conflict)?;
                Ok(())
            }

            async fn invites(&self, by: Option<UserId>) -> Result<Vec<Invite>, StoreError> {
                let rows: Vec<(Uuid, i64, i64, i64, i64, Uuid, Option<i64>)> = sqlx::query_as(
                    "SELECT id, uses, used, expires_at, created_at, created_by, revoked_at FROM invites \
                     WHERE ($1 IS NULL OR created_by = $1) ORDER BY created_at DESC LIMIT 500",
                )
                .bind(by.map(|u| u.0))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, uses, used, expires_at, created_at, created_by, revoked_at)| Invite {
                        id,
                        code: None,
                        url: None,
                        uses: u32::try_from(uses).unwrap_or(0),
                        used: u32::try_from(used).unwrap_or(0),
                        expires_at,
                        created_at,
                        created_by: UserId(created_by),
                        revoked_at,
                    })
                    .collect())
            }

            async fn revoke_invite(
                &self,
                id: uuid::Uuid,
                by: Option<UserId>,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE invites SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
                     AND ($3 IS NULL OR created_by = $3)",
                )
                .bind(now)
                .bind(id)
                .bind(by.map(|u| u.0))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_token(
                &self,
                id: SessionId,
                user: UserId,
                name: &str,
                scopes: &[confab_shared::admin::TokenScope],
                hash: &[u8],
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, created_at, token_hash, token_name, scopes) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.0)
                .bind(user.0)
                .bind(now)
                .bind(hash)
                .bind(name)
                .bind($crate::store::admin::scopes_to_stored(scopes))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn token_by_hash(
                &self,
                hash: &[u8],
            ) -> Result<Option<$crate::store::admin::TokenRecord>, StoreError> {
                let row: Option<(Uuid, Uuid, String, String, Option<Uuid>)> = sqlx::query_as(
                    "SELECT s.id, u.id, u.username, s.scopes, u.bot_owner FROM sessions s \
                     JOIN users u ON u.id = s.user_id \
                     WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND u.deactivated_at IS NULL",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(session, user, username, scopes, owner)| {
                    $crate::store::admin::TokenRecord {
                        session: SessionId(session),
                        user: UserId(user),
                        username,
                        scopes: $crate::store::admin::scopes_from_stored(&scopes),
                        bot: owner.is_some(),
                    }
                }))
            }

            async fn tokens(&self, user: UserId) -> Result<Vec<TokenInfo>, StoreError> {
                let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
                    "SELECT id, token_name, scopes, created_at FROM sessions \
                     WHERE user_id = $1 AND token_hash IS NOT NULL AND revoked_at IS NULL \
                     ORDER BY created_at DESC",
                )
                .bind(user.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, scopes, created_at)| TokenInfo {
                        id,
                        name,
                        scopes: $crate::store::admin::scopes_from_stored(&scopes),
                        created_at,
                    })
                    .collect())
            }

            async fn revoke_token(
                &self,
                user: UserId,
                id: SessionId,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 \
                     AND token_hash IS NOT NULL AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id.0)
                .bind(user.0)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_webhook(
                &self,
                h: &$crate::store::admin::WebhookRecord,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO webhooks (id, room_id, bot_id, name, secret_hash, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(h.id)
                .bind(h.room.0)
                .bind(h.bot.0)
                .bind(&h.name)
                .bind(h.secret_hash.as_slice())
                .bind(h.created_by.0)
                .bind(h.created_at)
                .execute(&self.pool)
                .await
                .map_err($crate::store::sql::map_conflict)?;
                Ok(())
            }

            async fn webhook_by_secret(
                &self,
                hash: &[u8],
            ) -> Result<Option<$crate::store::admin::WebhookRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT w.id, w.room_id, w.bot_id, u.username AS bot_name, w.name, w.secret_hash, \
                     w.created_by, w.created_at FROM webhooks w JOIN users u ON u.id = w.bot_id \
                     JOIN rooms r ON r.id = w.room_id \
                     WHERE w.secret_hash = $1 AND w.revoked_at IS NULL AND r.deleted_at IS NULL",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::webhook_from_row).transpose().map_err(Into::into)
            }

            async fn webhooks(
                &self,
                room: RoomId,
            ) -> Result<Vec<$crate::store::admin::WebhookRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT w.id, w.room_id, w.bot_id, u.username AS bot_name, w.name, w.secret_hash, \
                     w.created_by, w.created_at FROM webhooks w JOIN users u ON u.id = w.bot_id \
                     WHERE w.room_id = $1 AND w.revoked_at IS NULL ORDER BY w.created_at DESC",
                )
                .bind(room.0)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(Self::webhook_from_row)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(Into::into)
            }

            async fn revoke_webhook(
                &self,
                room: RoomId,
                id: uuid::Uuid,
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = Self::begin_write(&self.pool).await?;
                let bot: Option<Uuid> = sqlx::query_scalar(
                    "UPDATE webhooks SET revoked_at = $1 WHERE id = $2 AND room_id = $3 \
                     AND revoked_at IS NULL RETURNING bot_id",
                )
                .bind(now)
                .bind(id)
                .bind(room.0)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(bot) = bot {
                    sqlx::query("UPDATE users SET deactivated_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(bot)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(bot.is_some())
            }

            async fn delete_room(
                &self,
                room: RoomId,
                now: i64,
            ) -> Result<Option<Vec<UserId>>, StoreError> {
                let mut tx = Self::begin_write(&self.pool).await?;
                let done = sqlx::query(
                    "UPDATE rooms SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(room.0)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(None);
                }
                let members: Vec<Uuid> = sqlx::query_scalar(
                    "DELETE FROM room_members WHERE room_id = $1 RETURNING user_id",
                )
                .bind(room.0)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query("UPDATE webhooks SET revoked_at = $1 WHERE room_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(room.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(members.into_iter().map(UserId).collect()))
            }

            async fn audit(&self, e: $crate::store::admin::NewAudit) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO audit_log (at, actor_id, actor_name, action, target_user, target_room, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(e.at)
                .bind(e.actor.map(|u| u.0))
                .bind(&e.actor_name)
                .bind(e.action)
                .bind(e.target_user.map(|u| u.0))
                .bind(e.target_room.map(|r| r.0))
                .bind(e.detail.as_deref())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn audit_page(
                &self,
                before: Option<i64>,
                limit: u32,
            ) -> Result<Vec<AuditEntry>, StoreError> {
                #[allow(clippy::type_complexity)]
                let rows: Vec<(i64, i64, Option<Uuid>, String, String, Option<Uuid>, Option<Uuid>, Option<String>)> =
                    sqlx::query_as(
                        "SELECT id, at, actor_id, actor_name, action, target_user, target_room, detail \
                         FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
                    )
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, at, actor, actor_name, action, target_user, target_room, detail)| {
                        AuditEntry {
                            id,
                            at,
                            actor: actor.map(UserId),
                            actor_name,
                            action,
                            target_user: target_user.map(UserId),
                            target_room: target_room.map(RoomId),
                            detail,
                        }
                    })
                    .collect())
            }
        }

        impl $store {
            fn webhook_from_row(row: &$row) -> Result<$crate::store::admin::WebhookRecord, sqlx::Error> {
                Ok($crate::store::admin::WebhookRecord {
                    id: row.try_get("id")?,
                    room: RoomId(row.try_get("room_id")?),
                    bot: UserId(row.try_get("bot_id")?),
                    bot_name: row.try_get("bot_name")?,
                    name: row.try_get("name")?,
                    secret_hash: row.try_get("secret_hash")?,
                    created_by: UserId(row.try_get("created_by")?),
                    created_at: row.try_get("created_at")?,
                })
            }
        }
    };
}
pub(crate) use admin_sql_store;

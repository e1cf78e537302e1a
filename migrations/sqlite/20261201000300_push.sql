-- Notifications that reach people with no tab open: Web Push subscriptions (one per browser,
-- tied to the login session that made it, so logging out of that browser removes it), each
-- member's notification level per room, and each user's notification settings (previews in
-- pushes, the e-mail digest of what they missed).

CREATE TABLE push_subscriptions (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id BLOB REFERENCES sessions (id) ON DELETE SET NULL,
    endpoint   TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT push_subscriptions_endpoint_key UNIQUE (endpoint)
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
CREATE INDEX push_subscriptions_session ON push_subscriptions (session_id);

-- A member's level in a room: 'all', 'mentions' or 'none'. No row: the default (direct
-- conversations 'all', rooms 'mentions').
CREATE TABLE room_notification_levels (
    room_id BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    level   TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

-- No row: the defaults (previews on, e-mail on). `email_token` is the secret of the one-click
-- "stop these e-mails" link; `digest_after` the creation time up to which missed messages have
-- been considered for a digest already.
CREATE TABLE notification_settings (
    user_id       BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    push_previews BOOLEAN NOT NULL DEFAULT TRUE,
    email         BOOLEAN NOT NULL DEFAULT TRUE,
    email_token   TEXT,
    digest_after  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX notification_settings_token ON notification_settings (email_token);

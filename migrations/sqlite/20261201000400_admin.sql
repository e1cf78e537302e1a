-- Running it for real: site roles, deactivation, password resets, registration by invite,
-- API tokens and bot accounts, incoming webhooks, deleted rooms, the audit log.

-- `admin` or `user`. Accounts older than this migration are users: an operator names the
-- first admin with `confab admin make-admin`.
ALTER TABLE users ADD COLUMN site_role TEXT NOT NULL DEFAULT 'user';
-- Set while the account is deactivated: it cannot sign in and has no live sessions.
ALTER TABLE users ADD COLUMN deactivated_at INTEGER;
-- Set by an administrator's password reset: the next sign-in must choose a new password.
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
-- A bot account's owner (NULL: a person). Bots have no password and act only by token.
ALTER TABLE users ADD COLUMN bot_owner BLOB REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE users ADD COLUMN avatar_url TEXT;

-- One row: whether the first account (which becomes an administrator without an invite) has
-- been made. Claimed in the transaction that creates it, so two racing registrations cannot
-- both be first.
CREATE TABLE site_state (
    id                    INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    first_account_claimed BOOLEAN NOT NULL
);
INSERT INTO site_state (id, first_account_claimed) VALUES (1, EXISTS (SELECT 1 FROM users));

-- Invites: the code is shown once and stored as its SHA-256 hash.
CREATE TABLE invites (
    id         BLOB PRIMARY KEY NOT NULL,
    code_hash  BLOB NOT NULL,
    created_by BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    uses       INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    CONSTRAINT invites_code_key UNIQUE (code_hash)
);

-- Personal API tokens (and bots' tokens) are sessions too, so that revoking one, and every
-- check of a live session (requests, sockets), works the same way. A login session has no
-- token_hash; a token's is the SHA-256 of the token, which is shown once.
ALTER TABLE sessions ADD COLUMN token_hash BLOB;
ALTER TABLE sessions ADD COLUMN token_name TEXT;
-- Comma-separated scopes (`read`, `post`) of a token; NULL for a login session.
ALTER TABLE sessions ADD COLUMN scopes TEXT;
CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash) WHERE token_hash IS NOT NULL;

-- Incoming webhooks: POST /hooks/{secret} posts into the room as the webhook's bot.
CREATE TABLE webhooks (
    id          BLOB PRIMARY KEY NOT NULL,
    room_id     BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    bot_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_by  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    CONSTRAINT webhooks_secret_key UNIQUE (secret_hash)
);
CREATE INDEX webhooks_room ON webhooks (room_id);

-- A room an administrator deleted (gone for everyone; its rows stay so that entries still on
-- their way to the database find their room).
ALTER TABLE rooms ADD COLUMN deleted_at INTEGER;

-- What administrators did, newest last.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor_id    BLOB,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_user BLOB,
    target_room BLOB,
    detail      TEXT
);

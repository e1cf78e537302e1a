-- Confab schema, SQLite flavour. Ids are UUIDs stored as 16-byte blobs; times are Unix milliseconds.

CREATE TABLE users (
    id              BLOB PRIMARY KEY NOT NULL,
    username        TEXT NOT NULL,
    username_folded TEXT NOT NULL,
    email           TEXT NOT NULL,
    email_folded    TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username_folded),
    CONSTRAINT users_email_key UNIQUE (email_folded)
);

-- A login session is one refresh-token family.
CREATE TABLE sessions (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Refresh tokens are stored as SHA-256 hashes. A used token stays (used_at set) so that its
-- reuse is detected and revokes the family.
CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE rooms (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    name_folded TEXT NOT NULL,
    created_by  BLOB NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    CONSTRAINT rooms_name_key UNIQUE (name_folded)
);
-- rooms_name_key's index also serves the (name_folded, id) keyset order of room listings.

CREATE TABLE room_members (
    room_id       BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at     INTEGER NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id, room_id);

CREATE TABLE messages (
    id            BLOB PRIMARY KEY NOT NULL,
    room_id       BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    author_id     BLOB NOT NULL REFERENCES users (id),
    client_msg_id TEXT NOT NULL,
    body          TEXT NOT NULL,
    attachment    TEXT,
    created_at    INTEGER NOT NULL,
    edited_at     INTEGER,
    deleted_at    INTEGER,
    CONSTRAINT messages_room_seq_key UNIQUE (room_id, seq),
    CONSTRAINT messages_client_msg_key UNIQUE (room_id, author_id, client_msg_id)
);
-- messages_room_seq_key's index serves history, recovery, last seq and unread counts.

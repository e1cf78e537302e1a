-- Confab schema, PostgreSQL flavour. Times are Unix milliseconds (BIGINT), like the SQLite one.

CREATE TABLE users (
    id              UUID PRIMARY KEY,
    username        TEXT NOT NULL,
    username_folded TEXT NOT NULL,
    email           TEXT NOT NULL,
    email_folded    TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username_folded),
    CONSTRAINT users_email_key UNIQUE (email_folded)
);

-- A login session is one refresh-token family.
CREATE TABLE sessions (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Refresh tokens are stored as SHA-256 hashes; used ones stay so reuse is detected.
CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE rooms (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    name_folded TEXT NOT NULL,
    created_by  UUID NOT NULL REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    CONSTRAINT rooms_name_key UNIQUE (name_folded)
);
-- Room search is a substring match on the folded name: a trigram index would serve it at scale
-- (pg_trgm); the keyset order (name_folded, id) is served by this index.
CREATE INDEX rooms_name_order ON rooms (name_folded, id);

CREATE TABLE room_members (
    room_id       UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at     BIGINT NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
-- Membership by user (room lists, a session's member rooms).
CREATE INDEX room_members_user ON room_members (user_id, room_id);

CREATE TABLE messages (
    id            UUID PRIMARY KEY,
    room_id       UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    author_id     UUID NOT NULL REFERENCES users (id),
    client_msg_id TEXT NOT NULL,
    body          TEXT NOT NULL,
    attachment    TEXT,
    created_at    BIGINT NOT NULL,
    edited_at     BIGINT,
    deleted_at    BIGINT,
    CONSTRAINT messages_room_seq_key UNIQUE (room_id, seq),
    CONSTRAINT messages_client_msg_key UNIQUE (room_id, author_id, client_msg_id)
);
-- messages_room_seq_key's index serves history (before_seq), recovery (after_seq), last seq and
-- unread counts (seq > marker).

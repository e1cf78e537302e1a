-- Uploaded files (see the SQLite twin). `id` is the unguessable storage key, 32 hex digits.
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    room_id      UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    uploader_id  UUID NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    content_type TEXT,
    size         BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX uploads_room ON uploads (room_id);

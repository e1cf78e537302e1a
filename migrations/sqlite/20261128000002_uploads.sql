-- Uploaded files. `id` is the file's unguessable storage key (32 hex digits) and its attachment
-- id. A row is written when the upload is allowed (a ticket) or made (the origin fallback);
-- `content_type` and `size` are filled once the bytes are in storage and have been checked.
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY NOT NULL,
    room_id      BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    uploader_id  BLOB NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    content_type TEXT,
    size         INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX uploads_room ON uploads (room_id);

-- Conversations: rooms with a kind (room or direct conversation), a visibility and a topic;
-- members with roles; bans; replies, mentions, reactions and pins on messages; read-receipt
-- sharing. Membership, roles and room settings are written here at once by the request that
-- changes them (authorization reads them) and recorded in the room's log; reactions and pins
-- are folded from the log (see the store's append).

ALTER TABLE rooms ADD COLUMN kind TEXT NOT NULL DEFAULT 'room';
ALTER TABLE rooms ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';
ALTER TABLE rooms ADD COLUMN topic TEXT;
-- A direct conversation's members, sorted and joined: one conversation per set of people.
ALTER TABLE rooms ADD COLUMN dm_key TEXT;
CREATE UNIQUE INDEX rooms_dm_key ON rooms (dm_key) WHERE dm_key IS NOT NULL;

ALTER TABLE room_members ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
UPDATE room_members SET role = 'owner'
 WHERE EXISTS (SELECT 1 FROM rooms r WHERE r.id = room_members.room_id AND r.created_by = room_members.user_id);

CREATE TABLE room_bans (
    room_id   BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by BLOB NOT NULL REFERENCES users (id),
    banned_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

-- The message a message answers (no foreign key: the answered one may be written later by
-- another worker).
ALTER TABLE messages ADD COLUMN reply_to_id BLOB;
-- Pinned state, with the seq of the entry that set it (entries may be written out of order).
ALTER TABLE messages ADD COLUMN pinned_at INTEGER;
ALTER TABLE messages ADD COLUMN pinned_by BLOB;
ALTER TABLE messages ADD COLUMN pin_seq INTEGER;

-- The members a message mentions (a JSON array of ids, as delivered), and the same as rows
-- for unread-mention counts.
ALTER TABLE messages ADD COLUMN mentions TEXT;
CREATE TABLE message_mentions (
    message_id BLOB NOT NULL,
    room_id    BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX message_mentions_user ON message_mentions (user_id, room_id, seq);

-- Each user's reaction with each emoji: on or off, as set by the entry with the highest seq.
CREATE TABLE message_reactions (
    message_id BLOB NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    room_id    BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    active     BOOLEAN NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

ALTER TABLE users ADD COLUMN share_read_receipts BOOLEAN NOT NULL DEFAULT TRUE;

-- Full-text search (FTS5), kept in step with the messages by triggers; a deleted message's
-- empty body leaves the index. The index keys are the messages' rowids (never VACUUM without
-- `INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')` afterwards: VACUUM may renumber
-- them).
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content = 'messages', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts (rowid, body) VALUES (new.rowid, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
  INSERT INTO messages_fts (rowid, body) VALUES (new.rowid, new.body);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

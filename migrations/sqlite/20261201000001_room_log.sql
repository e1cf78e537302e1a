-- The room log. Every change to what a room shows is an entry with the room's next seq: new
-- messages are rows of `messages` (their seq is their log position), every other entry (an
-- edit, a deletion, and the kinds later features add) is a row here. Replaying a room's log
-- after seq N reads both tables above N, merged by seq. `messages` also holds each message as
-- it is now (the folded view that history pages show).
CREATE TABLE room_events (
    room_id    BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    -- The entry's type on the wire: 'edited', 'deleted', ...
    kind       TEXT NOT NULL,
    -- Who made the change, and their id for the request (unique per actor and room, so a
    -- resent request is recognised and answered like the first).
    actor_id   BLOB NOT NULL REFERENCES users (id),
    client_ref TEXT NOT NULL,
    -- The message the entry is about, if any (no foreign key: a worker may write an edit before
    -- the message it edits; see the store's append).
    message_id BLOB,
    -- An edit's text; emptied when the message is deleted.
    body       TEXT,
    -- Fields of kinds that have more than these, as JSON.
    data       TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq),
    CONSTRAINT room_events_ref_key UNIQUE (room_id, actor_id, client_ref)
);
CREATE INDEX room_events_message ON room_events (message_id) WHERE message_id IS NOT NULL;

-- The seq of the edit whose text a message shows, so edits applied out of order (by two
-- workers) never let an older text win.
ALTER TABLE messages ADD COLUMN edited_seq INTEGER;

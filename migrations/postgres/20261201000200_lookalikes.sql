-- Look-alike names: usernames and room names are unique by their UTS #39 confusable skeleton
-- (`confab_shared::domain::skeleton`), so `aIice` cannot register beside `alice`. Computed by
-- the server (SQL cannot); rows older than this migration are filled in at start-up, and a
-- NULL (an old look-alike pair, of which only the first gets its key) never clashes.
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
CREATE UNIQUE INDEX users_username_skeleton_key ON users (username_skeleton);
ALTER TABLE rooms ADD COLUMN name_skeleton TEXT;
CREATE UNIQUE INDEX rooms_name_skeleton_key ON rooms (name_skeleton);

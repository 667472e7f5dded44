-- A refresh rewrites a session's last_seen and expires. With both indexed,
-- every refresh rewrote three b-tree pages (and wrote three WAL frames);
-- now the indexes change only when a session's prune bucket does.
--
-- prune_at is expires rounded up to the next ten minutes (0: never), kept
-- by the store; the prune query filters on the exact expires after using
-- the index, so rows are deleted no later than before, only found through
-- a coarser key.
ALTER TABLE sessions ADD COLUMN prune_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET prune_at = ((expires + 599999) / 600000) * 600000 WHERE expires != 0;
DROP INDEX sessions_by_expires;
CREATE INDEX sessions_by_prune ON sessions (prune_at) WHERE prune_at != 0;

-- A user's sessions are few; they are sorted by last_seen in memory
-- rather than kept sorted in an index that every refresh would rewrite.
DROP INDEX sessions_by_user;
CREATE INDEX sessions_by_user ON sessions (realm, user_id);

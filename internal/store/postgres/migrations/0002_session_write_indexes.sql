-- A refresh rewrites a session's last_seen and expires. With both indexed,
-- no refresh could be a heap-only (HOT) update: each wrote a new entry into
-- every index of the table. Now the indexed columns change only when a
-- session's prune bucket does (prune_at: expires rounded up to ten
-- minutes, kept by the store), and a user's few sessions are sorted in
-- memory rather than by an index on last_seen.
ALTER TABLE sessions ADD COLUMN prune_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET prune_at = ((expires + 599999) / 600000) * 600000 WHERE expires <> 0;
DROP INDEX sessions_by_expires;
CREATE INDEX sessions_by_prune ON sessions (prune_at) WHERE prune_at <> 0;
DROP INDEX sessions_by_user;
CREATE INDEX sessions_by_user ON sessions (realm, user_id);

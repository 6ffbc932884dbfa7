-- Strongroom regional store, SQLite schema version 6: revoked tokens stay, and last use.
-- Times are INTEGER microseconds since the Unix epoch, UTC.
-- Keep in step with ../../postgres/schema/006_token_revocation.sql and docs/storage.md.

-- A revoked token keeps its row: when it was revoked, and by which token
-- (NULL: not by a token, or not revoked). RevokeToken sets both, for the
-- token and every token it made, and theirs, in one transaction; a token
-- with revoked set authenticates nobody (the API answers token_revoked),
-- and revoking it again is refused (already_revoked).
ALTER TABLE tokens ADD COLUMN revoked INTEGER;
ALTER TABLE tokens ADD COLUMN revoked_by TEXT REFERENCES tokens (id) CHECK (revoked_by IS NULL OR revoked IS NOT NULL);

-- When the token last authenticated a request, to the minute: written at
-- most once per token and minute (TouchToken), best effort, not audited.
ALTER TABLE tokens ADD COLUMN last_used INTEGER;

-- Strongroom regional store, PostgreSQL schema version 6: revoked tokens stay, and last use.
-- Times are timestamptz (microsecond precision).
-- Keep in step with ../../sqlite/schema/006_token_revocation.sql and docs/storage.md.

-- A revoked token keeps its row: when it was revoked, and by which token
-- (NULL: not by a token, or not revoked). RevokeToken sets both, for the
-- token and every token it made, and theirs, in one transaction; a token
-- with revoked set authenticates nobody (the API answers token_revoked),
-- and revoking it again is refused (already_revoked).
ALTER TABLE tokens ADD COLUMN revoked timestamptz;
ALTER TABLE tokens ADD COLUMN revoked_by text REFERENCES tokens (id);
ALTER TABLE tokens ADD CONSTRAINT tokens_revoked_by_check CHECK (revoked_by IS NULL OR revoked IS NOT NULL);

-- When the token last authenticated a request, to the minute: written at
-- most once per token and minute (TouchToken), best effort, not audited.
ALTER TABLE tokens ADD COLUMN last_used timestamptz;

-- Strongroom regional store, PostgreSQL schema version 4: who made each token.
-- Times are timestamptz (microsecond precision).
-- Keep in step with ../../sqlite/schema/004_token_parent.sql and docs/storage.md.

-- The token whose holder made this one (POST /v1/tokens); NULL for a token
-- made otherwise (strongroom server --init, strongroom dev). Deleting a
-- token deletes the tokens it made, and theirs, in the same transaction.
ALTER TABLE tokens ADD COLUMN parent text REFERENCES tokens (id);

-- DeleteToken: the tokens a token made.
CREATE INDEX tokens_parent ON tokens (parent) WHERE parent IS NOT NULL;

-- Strongroom regional store, SQLite schema version 3: the audit log.
-- Times are INTEGER microseconds since the Unix epoch, UTC.
-- Keep in step with ../../postgres/schema/003_audit.sql and docs/storage.md.

-- One row per entry (internal/audit.Entry), one column per field, and no
-- encoded copy: verification recomputes every hash from these columns, so
-- altering any of them is detected. Never updated nor deleted.
CREATE TABLE audit_log (
	seq     INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
	time    INTEGER NOT NULL,
	actor   TEXT    NOT NULL,
	role    TEXT    NOT NULL DEFAULT '',
	tenant  TEXT    NOT NULL DEFAULT '',
	action  TEXT    NOT NULL,
	key     TEXT    NOT NULL DEFAULT '',
	outcome TEXT    NOT NULL CHECK (outcome IN ('ok', 'refused', 'error')),
	reason  TEXT    NOT NULL DEFAULT '',
	remote  TEXT    NOT NULL DEFAULT '',
	request TEXT    NOT NULL DEFAULT '',
	detail  TEXT    NOT NULL DEFAULT '',
	count   INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
	prev    BLOB    NOT NULL CHECK (length(prev) = 32),
	hash    BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

-- AuditEntries by tenant, and by time.
CREATE INDEX audit_log_tenant ON audit_log (tenant, seq);
CREATE INDEX audit_log_time ON audit_log (time);

-- The appender state (internal/audit.State.MarshalBinary: the chain head and
-- the Merkle tree's compact range), in one row, written in the transaction of
-- every append. It starts as the empty log's.
CREATE TABLE audit_state (
	id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	state BLOB    NOT NULL CHECK (length(state) >= 41)
) STRICT;

-- version 1, size 0, a zero head: 41 bytes.
INSERT INTO audit_state (id, state) VALUES (1, X'0100000000000000000000000000000000000000000000000000000000000000000000000000000000');

-- Signed checkpoints (internal/audit.SignCheckpoint) of the log at size
-- entries; created is when the row was stored.
CREATE TABLE audit_checkpoints (
	size    INTEGER NOT NULL CHECK (size >= 0),
	signed  BLOB    NOT NULL CHECK (length(signed) BETWEEN 1 AND 1024),
	created INTEGER NOT NULL,
	UNIQUE (size, signed)
) STRICT;

-- Strongroom regional store, PostgreSQL schema version 3: the audit log.
-- Times are timestamptz (microsecond precision).
-- Keep in step with ../../sqlite/schema/003_audit.sql and docs/storage.md.

-- One row per entry (internal/audit.Entry), one column per field, and no
-- encoded copy: verification recomputes every hash from these columns, so
-- altering any of them is detected. Never updated nor deleted.
CREATE TABLE audit_log (
	seq     bigint      NOT NULL PRIMARY KEY CHECK (seq >= 1),
	time    timestamptz NOT NULL,
	actor   text        NOT NULL,
	role    text        NOT NULL DEFAULT '',
	tenant  text        NOT NULL DEFAULT '',
	action  text        NOT NULL,
	key     text        NOT NULL DEFAULT '',
	outcome text        NOT NULL CHECK (outcome IN ('ok', 'refused', 'error')),
	reason  text        NOT NULL DEFAULT '',
	remote  text        NOT NULL DEFAULT '',
	request text        NOT NULL DEFAULT '',
	detail  text        NOT NULL DEFAULT '',
	count   bigint      NOT NULL DEFAULT 0 CHECK (count >= 0),
	prev    bytea       NOT NULL CHECK (octet_length(prev) = 32),
	hash    bytea       NOT NULL CHECK (octet_length(hash) = 32)
);

-- AuditEntries by tenant, and by time.
CREATE INDEX audit_log_tenant ON audit_log (tenant, seq);
CREATE INDEX audit_log_time ON audit_log (time);

-- The appender state (internal/audit.State.MarshalBinary: the chain head and
-- the Merkle tree's compact range), in one row that every append locks
-- (SELECT … FOR UPDATE) and writes in its transaction. It starts as the
-- empty log's.
CREATE TABLE audit_state (
	id    integer NOT NULL PRIMARY KEY CHECK (id = 1),
	state bytea   NOT NULL CHECK (octet_length(state) >= 41)
);

-- version 1, size 0, a zero head: 41 bytes.
INSERT INTO audit_state (id, state) VALUES (1, decode('01' || repeat('00', 40), 'hex'));

-- Signed checkpoints (internal/audit.SignCheckpoint) of the log at size
-- entries; created is when the row was stored.
CREATE TABLE audit_checkpoints (
	size    bigint      NOT NULL CHECK (size >= 0),
	signed  bytea       NOT NULL CHECK (octet_length(signed) BETWEEN 1 AND 1024),
	created timestamptz NOT NULL,
	UNIQUE (size, signed)
);

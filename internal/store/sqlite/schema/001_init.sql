-- Strongroom regional store, SQLite schema version 1.
-- Times are INTEGER microseconds since the Unix epoch, UTC.
-- Keep in step with ../../postgres/schema/001_init.sql and docs/storage.md.

CREATE TABLE tenants (
	id                 TEXT    NOT NULL PRIMARY KEY CHECK (length(id) IN (32, 36)),
	name               TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),
	env                TEXT    NOT NULL CHECK (env IN ('production', 'developer', 'sandbox')),
	created            INTEGER NOT NULL,
	derivation_opt_out INTEGER NOT NULL DEFAULT 1 CHECK (derivation_opt_out IN (0, 1))
) STRICT;

CREATE TABLE tokens (
	id      TEXT    NOT NULL PRIMARY KEY CHECK (length(id) IN (32, 36)),
	hash    BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
	role    TEXT    NOT NULL CHECK (role IN ('operator', 'tenant-admin', 'app', 'auditor')),
	tenant  TEXT    REFERENCES tenants (id),           -- NULL: every tenant
	created INTEGER NOT NULL,
	expires INTEGER CHECK (expires IS NULL OR expires > created), -- NULL: never
	name    TEXT    NOT NULL DEFAULT '',
	CHECK (tenant IS NOT NULL OR role IN ('operator', 'auditor'))
) STRICT;

CREATE INDEX tokens_tenant ON tokens (tenant);

CREATE TABLE releases (
	id        TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
	bundle    BLOB    NOT NULL CHECK (length(bundle) > 0),
	installed INTEGER NOT NULL
) STRICT;

-- One row per (tenant, type) that has ever had a key. Rotate, DestroyKey and
-- RestoreKey write and read it as on PostgreSQL (where they lock the row
-- with SELECT … FOR UPDATE); SQLite serialises every writer with BEGIN
-- IMMEDIATE, so the read locks nothing more here.
CREATE TABLE key_series (
	tenant TEXT NOT NULL REFERENCES tenants (id),
	type   TEXT NOT NULL CHECK (type IN ('data', 'deterministic', 'search_index', 'event_bus', 'analytics')),
	PRIMARY KEY (tenant, type)
) STRICT, WITHOUT ROWID;

CREATE TABLE keys (
	tenant      TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	version     INTEGER NOT NULL CHECK (version BETWEEN 1 AND 4294967295),
	state       TEXT    NOT NULL CHECK (state IN ('active', 'archived', 'destroyed')),
	source      TEXT    NOT NULL CHECK (source IN ('hsm', 'uploaded')),
	derivation  TEXT    NOT NULL CHECK (derivation IN ('pbkdf2', 'none')),
	release_id  TEXT    NOT NULL REFERENCES releases (id),
	wrapped     BLOB,                                  -- NULL once destroyed
	fingerprint BLOB CHECK (fingerprint IS NULL OR length(fingerprint) > 0),
	created     INTEGER NOT NULL,
	destroyed   INTEGER,                               -- NULL unless destroyed
	PRIMARY KEY (tenant, type, version),
	FOREIGN KEY (tenant, type) REFERENCES key_series (tenant, type),
	CHECK ((state = 'destroyed') = (wrapped IS NULL)),
	CHECK ((state = 'destroyed') = (destroyed IS NOT NULL))
) STRICT, WITHOUT ROWID;

-- The backstop: never two active keys of one tenant and type.
CREATE UNIQUE INDEX keys_one_active ON keys (tenant, type) WHERE state = 'active';
-- Never the same fingerprint twice for one tenant (any type, any state).
CREATE UNIQUE INDEX keys_fingerprint ON keys (tenant, fingerprint) WHERE fingerprint IS NOT NULL;

-- Strongroom regional store, PostgreSQL schema version 1.
-- Times are timestamptz (microsecond precision).
-- Keep in step with ../../sqlite/schema/001_init.sql and docs/storage.md.

CREATE TABLE tenants (
	id                 text        NOT NULL PRIMARY KEY
		CHECK (id ~ '^[0-9a-f]{32}$' OR id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
	name               text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
	env                text        NOT NULL CHECK (env IN ('production', 'developer', 'sandbox')),
	created            timestamptz NOT NULL,
	derivation_opt_out boolean     NOT NULL DEFAULT true
);

CREATE TABLE tokens (
	id      text        NOT NULL PRIMARY KEY
		CHECK (id ~ '^[0-9a-f]{32}$' OR id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
	hash    bytea       NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
	role    text        NOT NULL CHECK (role IN ('operator', 'tenant-admin', 'app', 'auditor')),
	tenant  text        REFERENCES tenants (id),           -- NULL: every tenant
	created timestamptz NOT NULL,
	expires timestamptz CHECK (expires IS NULL OR expires > created), -- NULL: never
	name    text        NOT NULL DEFAULT '',
	CHECK (tenant IS NOT NULL OR role IN ('operator', 'auditor'))
);

CREATE INDEX tokens_tenant ON tokens (tenant);

CREATE TABLE releases (
	id        text        NOT NULL PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$'),
	bundle    bytea       NOT NULL CHECK (octet_length(bundle) > 0),
	installed timestamptz NOT NULL
);

-- One row per (tenant, type) that has ever had a key: Rotate, DestroyKey and
-- RestoreKey lock it (SELECT … FOR UPDATE) so that they run one at a time per
-- series, across every KMS node sharing the database.
CREATE TABLE key_series (
	tenant text NOT NULL REFERENCES tenants (id),
	type   text NOT NULL CHECK (type IN ('data', 'deterministic', 'search_index', 'event_bus', 'analytics')),
	PRIMARY KEY (tenant, type)
);

CREATE TABLE keys (
	tenant      text        NOT NULL,
	type        text        NOT NULL,
	version     bigint      NOT NULL CHECK (version BETWEEN 1 AND 4294967295),
	state       text        NOT NULL CHECK (state IN ('active', 'archived', 'destroyed')),
	source      text        NOT NULL CHECK (source IN ('hsm', 'uploaded')),
	derivation  text        NOT NULL CHECK (derivation IN ('pbkdf2', 'none')),
	release_id  text        NOT NULL REFERENCES releases (id),
	wrapped     bytea,                                      -- NULL once destroyed
	fingerprint bytea CHECK (fingerprint IS NULL OR octet_length(fingerprint) > 0),
	created     timestamptz NOT NULL,
	destroyed   timestamptz,                                -- NULL unless destroyed
	PRIMARY KEY (tenant, type, version),
	FOREIGN KEY (tenant, type) REFERENCES key_series (tenant, type),
	CHECK ((state = 'destroyed') = (wrapped IS NULL)),
	CHECK ((state = 'destroyed') = (destroyed IS NOT NULL))
);

-- The backstop: never two active keys of one tenant and type.
CREATE UNIQUE INDEX keys_one_active ON keys (tenant, type) WHERE state = 'active';
-- Never the same fingerprint twice for one tenant (any type, any state).
CREATE UNIQUE INDEX keys_fingerprint ON keys (tenant, fingerprint) WHERE fingerprint IS NOT NULL;

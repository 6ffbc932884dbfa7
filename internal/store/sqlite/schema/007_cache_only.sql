-- Strongroom regional store, SQLite schema version 7: cache-only keys.
-- Times are INTEGER microseconds since the Unix epoch, UTC.
-- Keep in step with ../../postgres/schema/007_cache_only.sql and docs/storage.md.

-- keys gains the source 'cache-only', whose secret is never stored (wrapped
-- is always NULL). SQLite cannot alter a CHECK constraint: the table is
-- made again, with the same columns, rows and indexes (nothing references
-- keys, so dropping the old one checks no foreign key).
CREATE TABLE keys_007 (
	tenant      TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	version     INTEGER NOT NULL CHECK (version BETWEEN 1 AND 4294967295),
	state       TEXT    NOT NULL CHECK (state IN ('active', 'archived', 'destroyed')),
	source      TEXT    NOT NULL CHECK (source IN ('hsm', 'uploaded', 'cache-only')),
	derivation  TEXT    NOT NULL CHECK (derivation IN ('pbkdf2', 'none')),
	release_id  TEXT    NOT NULL REFERENCES releases (id),
	wrapped     BLOB,                                  -- NULL once destroyed, and for cache-only keys
	fingerprint BLOB CHECK (fingerprint IS NULL OR length(fingerprint) > 0),
	created     INTEGER NOT NULL,
	destroyed   INTEGER,                               -- NULL unless destroyed
	PRIMARY KEY (tenant, type, version),
	FOREIGN KEY (tenant, type) REFERENCES key_series (tenant, type),
	CHECK ((state = 'destroyed' OR source = 'cache-only') = (wrapped IS NULL)),
	CHECK ((state = 'destroyed') = (destroyed IS NOT NULL))
) STRICT, WITHOUT ROWID;

INSERT INTO keys_007 (tenant, type, version, state, source, derivation, release_id, wrapped, fingerprint, created, destroyed)
	SELECT tenant, type, version, state, source, derivation, release_id, wrapped, fingerprint, created, destroyed FROM keys;
DROP TABLE keys;
ALTER TABLE keys_007 RENAME TO keys;

CREATE UNIQUE INDEX keys_one_active ON keys (tenant, type) WHERE state = 'active';
CREATE UNIQUE INDEX keys_fingerprint ON keys (tenant, fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX keys_destroyed ON keys (destroyed) WHERE destroyed IS NOT NULL;

-- What a tenant's key services know Strongroom by, made on first need:
-- the recipient key pair (RSA-4096) and the mTLS client key pair (ECDSA
-- P-384) in the regional HSM under their labels, and the client key's
-- self-signed certificate. Never replaced nor deleted.
CREATE TABLE key_service_credentials (
	tenant          TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id),
	recipient_label TEXT    NOT NULL UNIQUE CHECK (length(recipient_label) BETWEEN 1 AND 128),
	client_label    TEXT    NOT NULL UNIQUE CHECK (length(client_label) BETWEEN 1 AND 128),
	client_cert     BLOB    NOT NULL CHECK (length(client_cert) BETWEEN 1 AND 16384),
	created         INTEGER NOT NULL
) STRICT;

-- One registration of a tenant's key service per cache-only key version.
-- The bearer secret is wrapped under the TWK of release_id (NULL for mtls).
-- Destroying the key version deletes its registration.
CREATE TABLE key_services (
	id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) IN (32, 36)),
	tenant     TEXT    NOT NULL,
	type       TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	url        TEXT    NOT NULL CHECK (length(url) BETWEEN 9 AND 2048),
	kid        TEXT    NOT NULL CHECK (length(kid) BETWEEN 1 AND 256),
	ca         BLOB    NOT NULL CHECK (length(ca) BETWEEN 1 AND 65536),
	auth       TEXT    NOT NULL CHECK (auth IN ('bearer', 'mtls')),
	oaep       TEXT    NOT NULL CHECK (oaep IN ('sha256', 'sha1')),
	release_id TEXT    REFERENCES releases (id),
	bearer     BLOB CHECK (bearer IS NULL OR length(bearer) BETWEEN 1 AND 8192),
	created    INTEGER NOT NULL,
	revoked    INTEGER,                                -- NULL unless the key service answered 410
	UNIQUE (tenant, type, version),
	FOREIGN KEY (tenant, type, version) REFERENCES keys (tenant, type, version),
	CHECK ((auth = 'bearer') = (bearer IS NOT NULL)),
	CHECK ((bearer IS NULL) = (release_id IS NULL))
) STRICT;

-- RevokedSince by time.
CREATE INDEX key_services_revoked ON key_services (revoked) WHERE revoked IS NOT NULL;

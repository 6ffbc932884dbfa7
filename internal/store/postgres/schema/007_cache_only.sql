-- Strongroom regional store, PostgreSQL schema version 7: cache-only keys.
-- Times are timestamptz (microsecond precision).
-- Keep in step with ../../sqlite/schema/007_cache_only.sql and docs/storage.md.

-- keys gains the source 'cache-only', whose secret is never stored (wrapped
-- is always NULL).
ALTER TABLE keys DROP CONSTRAINT keys_source_check;
ALTER TABLE keys ADD CONSTRAINT keys_source_check CHECK (source IN ('hsm', 'uploaded', 'cache-only'));
ALTER TABLE keys DROP CONSTRAINT keys_check;
ALTER TABLE keys ADD CONSTRAINT keys_check CHECK ((state = 'destroyed' OR source = 'cache-only') = (wrapped IS NULL));

-- What a tenant's key services know Strongroom by, made on first need:
-- the recipient key pair (RSA-4096) and the mTLS client key pair (ECDSA
-- P-384) in the regional HSM under their labels, and the client key's
-- self-signed certificate. Never replaced nor deleted.
CREATE TABLE key_service_credentials (
	tenant          text        NOT NULL PRIMARY KEY REFERENCES tenants (id),
	recipient_label text        NOT NULL UNIQUE CHECK (recipient_label ~ '^[ -~]{1,128}$'),
	client_label    text        NOT NULL UNIQUE CHECK (client_label ~ '^[ -~]{1,128}$'),
	client_cert     bytea       NOT NULL CHECK (octet_length(client_cert) BETWEEN 1 AND 16384),
	created         timestamptz NOT NULL
);

-- One registration of a tenant's key service per cache-only key version.
-- The bearer secret is wrapped under the TWK of release_id (NULL for mtls).
-- Destroying the key version deletes its registration.
CREATE TABLE key_services (
	id         text        NOT NULL PRIMARY KEY
		CHECK (id ~ '^[0-9a-f]{32}$' OR id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
	tenant     text        NOT NULL,
	type       text        NOT NULL,
	version    bigint      NOT NULL,
	url        text        NOT NULL CHECK (length(url) BETWEEN 9 AND 2048),
	kid        text        NOT NULL CHECK (length(kid) BETWEEN 1 AND 256),
	ca         bytea       NOT NULL CHECK (octet_length(ca) BETWEEN 1 AND 65536),
	auth       text        NOT NULL CHECK (auth IN ('bearer', 'mtls')),
	oaep       text        NOT NULL CHECK (oaep IN ('sha256', 'sha1')),
	release_id text        REFERENCES releases (id),
	bearer     bytea CHECK (bearer IS NULL OR octet_length(bearer) BETWEEN 1 AND 8192),
	created    timestamptz NOT NULL,
	revoked    timestamptz,                                -- NULL unless the key service answered 410
	UNIQUE (tenant, type, version),
	FOREIGN KEY (tenant, type, version) REFERENCES keys (tenant, type, version),
	CHECK ((auth = 'bearer') = (bearer IS NOT NULL)),
	CHECK ((bearer IS NULL) = (release_id IS NULL))
);

-- RevokedSince by time.
CREATE INDEX key_services_revoked ON key_services (revoked) WHERE revoked IS NOT NULL;

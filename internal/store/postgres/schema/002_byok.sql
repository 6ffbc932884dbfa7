-- Strongroom regional store, PostgreSQL schema version 2: bring your own key.
-- Times are timestamptz (microsecond precision).
-- Keep in step with ../../sqlite/schema/002_byok.sql and docs/storage.md.

-- One export key per tenant, wrapped under the TWK of the release that was
-- current when it was made. Never replaced nor deleted.
CREATE TABLE export_keys (
	tenant     text        NOT NULL PRIMARY KEY REFERENCES tenants (id),
	release_id text        NOT NULL REFERENCES releases (id),
	wrapped    bytea       NOT NULL CHECK (octet_length(wrapped) BETWEEN 1 AND 4096),
	created    timestamptz NOT NULL
);

-- BYOK upload certificates: the key pair is in the HSM under key_label.
CREATE TABLE upload_certs (
	id          text        NOT NULL PRIMARY KEY
		CHECK (id ~ '^[0-9a-f]{32}$' OR id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
	tenant      text        NOT NULL REFERENCES tenants (id),
	key_label   text        NOT NULL UNIQUE CHECK (key_label ~ '^[ -~]{1,128}$'),
	state       text        NOT NULL CHECK (state IN ('pending', 'active', 'retired')),
	csr         bytea CHECK (csr IS NULL OR octet_length(csr) BETWEEN 1 AND 16384),
	certificate bytea CHECK (certificate IS NULL OR octet_length(certificate) BETWEEN 1 AND 16384),
	not_before  timestamptz,                                -- NULL while pending
	not_after   timestamptz CHECK (not_after > not_before),
	created     timestamptz NOT NULL,
	retired     timestamptz,                                -- NULL unless retired
	CHECK ((not_before IS NULL) = (not_after IS NULL)),
	CHECK ((certificate IS NULL) = (not_before IS NULL)),
	CHECK (state <> 'active' OR certificate IS NOT NULL),
	CHECK ((state = 'retired') = (retired IS NOT NULL))
);

-- UploadCerts: a tenant's certificates, newest first.
CREATE INDEX upload_certs_tenant ON upload_certs (tenant, created);

-- DestroyedSince: destroyed keys by destruction time.
CREATE INDEX keys_destroyed ON keys (destroyed) WHERE destroyed IS NOT NULL;

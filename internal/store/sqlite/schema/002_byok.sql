-- Strongroom regional store, SQLite schema version 2: bring your own key.
-- Times are INTEGER microseconds since the Unix epoch, UTC.
-- Keep in step with ../../postgres/schema/002_byok.sql and docs/storage.md.

-- One export key per tenant, wrapped under the TWK of the release that was
-- current when it was made. Never replaced nor deleted.
CREATE TABLE export_keys (
	tenant     TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id),
	release_id TEXT    NOT NULL REFERENCES releases (id),
	wrapped    BLOB    NOT NULL CHECK (length(wrapped) BETWEEN 1 AND 4096),
	created    INTEGER NOT NULL
) STRICT;

-- BYOK upload certificates: the key pair is in the HSM under key_label.
CREATE TABLE upload_certs (
	id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) IN (32, 36)),
	tenant      TEXT    NOT NULL REFERENCES tenants (id),
	key_label   TEXT    NOT NULL UNIQUE CHECK (length(key_label) BETWEEN 1 AND 128),
	state       TEXT    NOT NULL CHECK (state IN ('pending', 'active', 'retired')),
	csr         BLOB CHECK (csr IS NULL OR length(csr) BETWEEN 1 AND 16384),
	certificate BLOB CHECK (certificate IS NULL OR length(certificate) BETWEEN 1 AND 16384),
	not_before  INTEGER,                               -- NULL while pending
	not_after   INTEGER CHECK (not_after > not_before),
	created     INTEGER NOT NULL,
	retired     INTEGER,                               -- NULL unless retired
	CHECK ((not_before IS NULL) = (not_after IS NULL)),
	CHECK ((certificate IS NULL) = (not_before IS NULL)),
	CHECK (state <> 'active' OR certificate IS NOT NULL),
	CHECK ((state = 'retired') = (retired IS NOT NULL))
) STRICT;

-- UploadCerts: a tenant's certificates, newest first.
CREATE INDEX upload_certs_tenant ON upload_certs (tenant, created);

-- DestroyedSince: destroyed keys by destruction time.
CREATE INDEX keys_destroyed ON keys (destroyed) WHERE destroyed IS NOT NULL;

-- Strongroom regional store, PostgreSQL schema version 5: the failed-upload limit.
-- Times are timestamptz (microsecond precision).
-- Keep in step with ../../sqlite/schema/005_upload_attempts.sql and docs/storage.md.

-- BYOK uploads that cost the regional HSM a private-key operation: a row is
-- written before the operation and deleted once the upload installed a key,
-- so the rows that stay are the failures. A tenant may start no upload while
-- it has the most rows a window allows (BeginUpload, which also deletes the
-- tenant's rows older than the window).
CREATE TABLE upload_attempts (
	id      text        NOT NULL PRIMARY KEY
		CHECK (id ~ '^[0-9a-f]{32}$' OR id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
	tenant  text        NOT NULL REFERENCES tenants (id),
	started timestamptz NOT NULL
);

CREATE INDEX upload_attempts_tenant ON upload_attempts (tenant, started);

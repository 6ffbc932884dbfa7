-- Strongroom regional store, SQLite schema version 5: the failed-upload limit.
-- Times are INTEGER microseconds since the Unix epoch, UTC.
-- Keep in step with ../../postgres/schema/005_upload_attempts.sql and docs/storage.md.

-- BYOK uploads that cost the regional HSM a private-key operation: a row is
-- written before the operation and deleted once the upload installed a key,
-- so the rows that stay are the failures. A tenant may start no upload while
-- it has the most rows a window allows (BeginUpload, which also deletes the
-- tenant's rows older than the window).
CREATE TABLE upload_attempts (
	id      TEXT    NOT NULL PRIMARY KEY CHECK (length(id) IN (32, 36)),
	tenant  TEXT    NOT NULL REFERENCES tenants (id),
	started INTEGER NOT NULL
) STRICT;

CREATE INDEX upload_attempts_tenant ON upload_attempts (tenant, started);

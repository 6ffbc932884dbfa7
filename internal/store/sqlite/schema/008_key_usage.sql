-- Strongroom regional store, SQLite schema version 8: key usage.
-- Times are INTEGER microseconds since the Unix epoch, UTC.
-- Keep in step with ../../postgres/schema/008_key_usage.sql and docs/storage.md.

-- What each key version was used for (docs/keys-usage.md): counters added
-- in the transactions that append the data plane's audit entries (the
-- aggregate's flush, each DEK delivery), never per request; and the last
-- data-at-rest report. A version never used has no row.
CREATE TABLE key_usage (
	tenant        TEXT    NOT NULL,
	type          TEXT    NOT NULL,
	version       INTEGER NOT NULL,
	encryptions   INTEGER NOT NULL DEFAULT 0 CHECK (encryptions >= 0),
	decryptions   INTEGER NOT NULL DEFAULT 0 CHECK (decryptions >= 0),
	deliveries    INTEGER NOT NULL DEFAULT 0 CHECK (deliveries >= 0),
	sealed        INTEGER NOT NULL DEFAULT 0 CHECK (sealed >= 0),  -- AES-256-GCM seals with a random nonce
	last_encrypt  INTEGER,                                         -- NULL = never
	last_decrypt  INTEGER,
	last_delivery INTEGER,
	rows_left     INTEGER CHECK (rows_left IS NULL OR rows_left >= 0),
	reported      INTEGER,                                         -- the data-at-rest report's time; NULL = none
	PRIMARY KEY (tenant, type, version),
	FOREIGN KEY (tenant, type, version) REFERENCES keys (tenant, type, version),
	CHECK ((rows_left IS NULL) = (reported IS NULL))
) STRICT, WITHOUT ROWID;

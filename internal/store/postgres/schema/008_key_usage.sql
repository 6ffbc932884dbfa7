-- Strongroom regional store, PostgreSQL schema version 8: key usage.
-- Times are timestamptz (microsecond precision).
-- Keep in step with ../../sqlite/schema/008_key_usage.sql and docs/storage.md.

-- What each key version was used for (docs/keys-usage.md): counters added
-- in the transactions that append the data plane's audit entries (the
-- aggregate's flush, each DEK delivery), never per request; and the last
-- data-at-rest report. A version never used has no row.
CREATE TABLE key_usage (
	tenant        text        NOT NULL,
	type          text        NOT NULL,
	version       bigint      NOT NULL,
	encryptions   bigint      NOT NULL DEFAULT 0 CHECK (encryptions >= 0),
	decryptions   bigint      NOT NULL DEFAULT 0 CHECK (decryptions >= 0),
	deliveries    bigint      NOT NULL DEFAULT 0 CHECK (deliveries >= 0),
	sealed        bigint      NOT NULL DEFAULT 0 CHECK (sealed >= 0),  -- AES-256-GCM seals with a random nonce
	last_encrypt  timestamptz,                                         -- NULL = never
	last_decrypt  timestamptz,
	last_delivery timestamptz,
	rows_left     bigint CHECK (rows_left IS NULL OR rows_left >= 0),
	reported      timestamptz,                                         -- the data-at-rest report's time; NULL = none
	PRIMARY KEY (tenant, type, version),
	FOREIGN KEY (tenant, type, version) REFERENCES keys (tenant, type, version),
	CHECK ((rows_left IS NULL) = (reported IS NULL))
);

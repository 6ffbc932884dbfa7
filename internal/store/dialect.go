package store

import (
	"database/sql"
	"time"
)

// Dialect is what the SQL of one engine does differently from the other's.
// Everything else — every statement, every scan, every rule — is this
// package's and the same for both.
//
// Placeholders are not in it: the statements use PostgreSQL's $1…$n, which
// modernc.org/sqlite binds to the n-th argument as well.
type Dialect struct {
	// Name names the engine in error messages: "sqlite" or "postgres".
	Name string
	// Time encodes a time argument, never zero (NullTime passes zero as
	// NULL): SQLite keeps INTEGER microseconds since the Unix epoch,
	// PostgreSQL timestamptz. Scanning takes either (timeValue).
	Time func(time.Time) any
	// ForUpdate is appended to a SELECT that locks the rows it reads until
	// its transaction ends: " FOR UPDATE" on PostgreSQL. On SQLite it is
	// empty: every write transaction holds the database's single write
	// lock from its start (BEGIN IMMEDIATE).
	ForUpdate string
	// WriteTx are the options of write transactions (PostgreSQL: READ
	// COMMITTED; SQLite: the default, with BEGIN IMMEDIATE set by the
	// connection).
	WriteTx *sql.TxOptions
	// MigrationLock, if not empty, is the first statement of the schema
	// migration's transaction: it serialises nodes that start at once
	// (PostgreSQL: a transaction-scoped advisory lock).
	MigrationLock string
	// MigrationsTable creates the schema_migrations table if it is
	// missing: version (integer), name (text), applied (a time).
	MigrationsTable string
	// Classify says what kind of failure a database error is.
	Classify func(error) Failure
	// CacheStatements: the store prepares the statements of its hot write
	// path once and reuses them per connection (stmts.go), for a driver
	// that compiles a statement's text every time it runs one (SQLite's).
	CacheStatements bool
	// Attempts is how many times a write transaction is tried in all when
	// it fails with a Retryable failure (at least 1).
	Attempts int
}

// FailureKind is what kind of database failure an error is.
type FailureKind int

// The kinds of failure that the store handles.
const (
	Other      FailureKind = iota
	Unique                 // a unique constraint or primary key was violated
	ForeignKey             // a foreign key was violated
	Retryable              // the transaction may succeed if tried again (serialization failure, deadlock)
)

// Failure is a classified database error.
type Failure struct {
	Kind FailureKind
	// Constraint is the violated constraint of a Unique failure, by the
	// name PostgreSQL gives it (tenants_name_key, keys_fingerprint…).
	Constraint string
}

// The unique constraints the store tells apart, by their PostgreSQL names.
// A unique failure on any other (a primary key) means that a row with the
// same ID exists.
const (
	uniqueTenantName   = "tenants_name_key"
	uniqueTokenHash    = "tokens_hash_key"
	uniqueCertKeyLabel = "upload_certs_key_label_key"
	uniqueFingerprint  = "keys_fingerprint"
)

// UniqueConstraints maps the columns that SQLite names in a unique
// violation ("UNIQUE constraint failed: tenants.name") to the constraint's
// PostgreSQL name, for the SQLite dialect's Classify.
var UniqueConstraints = map[string]string{
	"tenants.name":                  uniqueTenantName,
	"tokens.hash":                   uniqueTokenHash,
	"upload_certs.key_label":        uniqueCertKeyLabel,
	"keys.tenant, keys.fingerprint": uniqueFingerprint,
}

// timeValue scans a time column of either engine into *t: an INTEGER of
// microseconds (SQLite) or a timestamp (PostgreSQL), returned in UTC; NULL
// leaves the zero time.
type timeValue struct{ t *time.Time }

func (v timeValue) Scan(src any) error {
	switch x := src.(type) {
	case nil:
		*v.t = time.Time{}
	case int64:
		*v.t = time.UnixMicro(x).UTC()
	case time.Time:
		*v.t = x.UTC()
	default:
		return Errorf(ErrInvalid, "a time column holds a %T", src)
	}
	return nil
}

// NullTime is d.Time(t), or NULL for the zero time.
func (d Dialect) NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.Time(t)
}

// nullBlob passes a nil slice as NULL.
func nullBlob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// nilIfEmpty returns nil for a NULL (or empty) BLOB.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Package sqlite is the embedded store driver: SQLite through the pure-Go
// modernc.org/sqlite, for a single KMS node per region.
//
// A store is one database file, created with mode 0600 and refused if group
// or others may read it. Every connection runs with journal_mode=WAL,
// synchronous=FULL (each commit is fsynced to the WAL before it returns, so
// an acknowledged change survives a crash or power loss), foreign_keys=ON,
// secure_delete=ON, a busy timeout, and BEGIN IMMEDIATE for every write
// transaction: writers take SQLite's single write lock when they begin, so
// every read-check-write (Rotate above all) is serialised against every other
// writer, in this process or another, and a writer that finds the lock taken
// waits (up to BusyTimeout) rather than failing. The same lock serialises
// the audit log's appends.
//
// The statements are internal/store's; this package opens the database,
// says how SQLite differs ([Dialect]) and tells the watchers of a Store
// about destroyed keys (in this process only: SQLite has no notifications
// between processes).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/strongroom-kms/strongroom/internal/store"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// Scheme is the DSN prefix: sqlite:PATH, or sqlite::memory: for tests.
const Scheme = "sqlite:"

// Memory is the PATH of an in-memory database (one connection; gone at
// Close).
const Memory = ":memory:"

// BusyTimeout is how long a writer waits for another's write lock.
const BusyTimeout = 15 * time.Second

// maxConns bounds the pool of a file database: SQLite has one writer at a
// time, and WAL readers need few connections.
const maxConns = 8

// Open opens (creating it if missing, with mode 0600) the database that dsn
// names, sqlite:PATH or sqlite::memory:, and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*store.Store, error) {
	path, ok := strings.CutPrefix(dsn, Scheme)
	if !ok {
		return nil, fmt.Errorf("store: sqlite: %q is not a SQLite DSN: use sqlite:PATH or sqlite::memory:", dsn)
	}
	return OpenPath(ctx, path)
}

// OpenPath is Open for a path (or Memory).
func OpenPath(ctx context.Context, path string) (*store.Store, error) {
	s, _, err := open(ctx, path)
	return s, err
}

// open is OpenPath, and the engine (whose db tests use).
func open(ctx context.Context, path string) (*store.Store, *engine, error) {
	switch {
	case path == "":
		return nil, nil, errors.New("store: sqlite: no database path: use sqlite:PATH")
	case strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:"):
		return nil, nil, fmt.Errorf("store: sqlite: database path %q may not contain '?' or '#' nor start with file:", path)
	}
	memory := path == Memory
	if !memory {
		if err := createPrivate(path); err != nil {
			return nil, nil, err
		}
	}
	q := fmt.Sprintf("?_busy_timeout=%d&_foreign_keys=1&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate&_pragma=secure_delete(1)",
		BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", path+q)
	if err != nil {
		return nil, nil, fmt.Errorf("store: sqlite: %w", err)
	}
	if memory {
		// Every connection to :memory: is a database of its own: keep one.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else {
		db.SetMaxOpenConns(maxConns)
		db.SetMaxIdleConns(maxConns)
	}
	if err := checkPragmas(ctx, db, path, memory); err != nil {
		db.Close()
		return nil, nil, err
	}
	e := &engine{db: db, path: path, hub: newHub()}
	s, err := store.Open(ctx, db, Dialect, e, schemaFS)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return s, e, nil
}

// createPrivate creates path with mode 0600 if it does not exist, and
// refuses an existing file that group or others may access.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: sqlite: creating the database: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("store: sqlite: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("store: sqlite: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("store: sqlite: %s has mode %#o, but it holds wrapped keys and token hashes: "+
			"only its owner may access it (chmod 600 %s)", path, perm, path)
	}
	return nil
}

// checkPragmas makes sure that the DSN settings took effect.
func checkPragmas(ctx context.Context, db *sql.DB, path string, memory bool) error {
	want := map[string]string{"synchronous": "2", "foreign_keys": "1", "secure_delete": "1", "journal_mode": "wal"}
	if memory {
		want["journal_mode"] = "memory"
	}
	for p, w := range want {
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+p).Scan(&got); err != nil {
			return fmt.Errorf("store: sqlite: opening %s: %w", path, err)
		}
		if !strings.EqualFold(got, w) {
			return fmt.Errorf("store: sqlite: %s: PRAGMA %s is %q, want %q", path, p, got, w)
		}
	}
	return nil
}

// Dialect is how SQLite differs (store.Dialect).
var Dialect = store.Dialect{
	Name:      "sqlite",
	Time:      func(t time.Time) any { return t.UnixMicro() },
	ForUpdate: "", // every write transaction holds the write lock (BEGIN IMMEDIATE)
	WriteTx:   nil,
	MigrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY,
		name    TEXT    NOT NULL,
		applied INTEGER NOT NULL
	) STRICT`,
	Classify:        classify,
	CacheStatements: true, // modernc.org/sqlite compiles every statement it runs from a string
	Attempts:        1,    // a writer waits for the lock (busy timeout) instead of failing
}

// classify reads SQLite's extended result codes. A unique violation's
// message names the columns ("UNIQUE constraint failed: tenants.name"),
// which store.UniqueConstraints maps to the constraint's name.
func classify(err error) store.Failure {
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return store.Failure{}
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		_, cols, _ := strings.Cut(e.Error(), "constraint failed: ")
		cols, _, _ = strings.Cut(cols, " (")
		return store.Failure{Kind: store.Unique, Constraint: store.UniqueConstraints[strings.TrimSpace(cols)]}
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return store.Failure{Kind: store.ForeignKey}
	}
	return store.Failure{}
}

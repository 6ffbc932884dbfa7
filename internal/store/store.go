// Package store is the regional key server's storage: tenants, API tokens,
// installed releases, tenant keys and their lifecycle, bring-your-own-key
// records and the audit log, in one SQL implementation that runs on two
// engines:
//
//   - internal/store/sqlite: embedded SQLite (pure Go, modernc.org/sqlite),
//     the default, for a single KMS node per region;
//   - internal/store/postgres: PostgreSQL (jackc/pgx/v5 through
//     database/sql), for several KMS nodes per region sharing one database.
//
// Both engines run the statements of this package, which are written out
// in full, one constant each, next to the method that runs them: a reviewer
// reads every statement verbatim, and there is no query builder. They use
// PostgreSQL's $1…$n placeholders, which modernc.org/sqlite binds to the
// n-th argument too, so a statement is one text for both. What truly
// differs is a [Dialect] value (time encoding, error classification, the
// lock suffix, the migration lock, the retry policy); what an engine does
// its own way is its [Engine] (opening and its checks, and how other nodes
// hear of a destroyed key: PostgreSQL LISTEN/NOTIFY, or SQLite's in-process
// hub). internal/store/engine opens either from a DSN, and
// internal/store/storetest is the conformance suite both pass.
//
// # Concurrency
//
// Rotate, DestroyKey and RestoreKey first lock the (tenant, type) row of
// key_series (Rotate creates it), so they run one at a time per series
// across every node; on SQLite every write transaction already holds the
// database's single write lock from its start (BEGIN IMMEDIATE). Unique
// indexes back this up: one active key per (tenant, type), one fingerprint
// per tenant. Every append to the audit log locks the single audit_state
// row, after every other lock its transaction takes, so that the chain has
// one head and no transaction holding that lock waits for another.
//
// # Audited changes
//
// Every lifecycle write takes the audit entry of its change as an argument
// (rec audit.Entry) and appends it, with outcome ok, in the change's own
// transaction: there is no change without its entry and no entry without
// its change (S19). A write that fails appends nothing; the caller records
// the refusal itself (AppendAudit). A retried transaction appends the entry
// again in each attempt, and only the committed attempt counts. The
// lifecycle writes are the methods whose last parameter is rec audit.Entry.
//
// # Time
//
// Every timestamp is stored at microsecond precision in UTC (PostgreSQL's
// timestamptz precision): the store truncates the times it is given to the
// microsecond (see Time) and returns them in UTC. The store never reads the
// clock for domain data: callers pass Created, Installed, Now.
//
// # Key material
//
// The store holds only wrapped key material (tenant.Key.Wrapped, under a
// release's tenant wrapping key) and token hashes, never a token secret. No
// error message of this package contains key material, wrapped or not, nor
// a fingerprint or a token hash.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Store is a regional key server's storage over one database. It is safe
// for concurrent use, and several Stores (processes, KMS nodes) may share
// one database.
type Store struct {
	db     *sql.DB
	d      Dialect
	engine Engine
	subs   subscribers // WatchChanges, this Store's own changes
	// stmts are the statements prepared once (stmts.go), by their text;
	// nil unless the dialect caches statements. Set in Open, then only
	// read.
	stmts map[string]*sql.Stmt
}

// Engine is what one database engine does its own way, besides its
// Dialect: telling the nodes sharing the database of changes (Change), a
// destroyed key first.
type Engine interface {
	// Announce runs in the changing transaction, after the rows were
	// written (PostgreSQL: pg_notify, delivered only if it commits).
	Announce(ctx context.Context, tx *sql.Tx, c Change) error
	// Committed runs once the change committed (SQLite: tell this
	// process's watchers; after a destruction, let the WAL drop the
	// wrapped key's old pages).
	Committed(ctx context.Context, c Change)
	// Watch calls fn for the changes committed by every node that it
	// hears of and keep accepts (nil: every change), before any buffering
	// (Store.WatchChanges, Store.WatchDestroyed).
	Watch(ctx context.Context, keep func(Change) bool, fn func(Change)) error
	// Close ends the watchers, waiting a few seconds at most for a running
	// callback to return.
	Close()
}

// Open returns a Store over db, which an engine opened and checked, and
// brings the database's schema up to date with the engine's migrations
// (schema/NNN_name.sql files in fsys, see LoadMigrations). On error it
// closes nothing: the engine does.
func Open(ctx context.Context, db *sql.DB, d Dialect, e Engine, fsys fs.FS) (*Store, error) {
	s := &Store{db: db, d: d, engine: e}
	if err := s.migrate(ctx, fsys); err != nil {
		return nil, err
	}
	if err := s.prepareHot(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close ends the watchers (WatchDestroyed), waiting a few seconds at most
// for a running callback to return, and closes the database handles.
func (s *Store) Close() error {
	s.engine.Close()
	return errors.Join(s.closeStmts(), s.db.Close())
}

// Ping checks that the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.dbErr("ping", s.db.PingContext(ctx)) }

// WatchDestroyed starts watching and returns: it then calls fn (from one
// goroutine of its own, one call at a time, in order) for each key
// destroyed after it returned, until ctx is done. A nil fn → ErrInvalid.
// On PostgreSQL every node sharing the database hears of every destroy
// (LISTEN/NOTIFY on a dedicated connection, the notification sent in the
// destroying transaction, so delivered only if it commits); the SQLite
// engine tells the watchers of the same Store (one Store per process;
// another process on the same file is not told). Delivery is best effort: a
// lost connection is re-established (with backoff, until ctx is done), the
// SQLite engine drops what a watcher too slow to keep up has no room for,
// and what was missed is what DestroyedSince is for. It returns an error
// only if it cannot start (ctx done already, the store closed, the first
// LISTEN failed).
//
// Callers cancel ctx before closing the store. Close ends the watchers
// anyway (waiting a few seconds at most for a running fn to return), so
// that it never hangs on one.
func (s *Store) WatchDestroyed(ctx context.Context, fn func(tenant.KeyRef)) error {
	if fn == nil {
		return Errorf(ErrInvalid, "WatchDestroyed needs a function to call")
	}
	destroyed := func(c Change) bool { return c.Kind == KeyDestroyed }
	return s.engine.Watch(ctx, destroyed, func(c Change) { fn(c.Key) })
}

// read runs fn in a read-only transaction: one consistent snapshot on
// SQLite; on PostgreSQL (READ COMMITTED) each statement sees what was
// committed before it began.
func (s *Store) read(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.dbErr(op, err)
	}
	defer tx.Rollback()
	return s.dbErr(op, fn(tx))
}

// write runs fn in a write transaction and commits it, retrying it as the
// dialect says (PostgreSQL: serialization failures and deadlocks). An error
// from fn rolls back; errors of this package pass through, others are
// wrapped with op.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, fn)
		if attempt < s.d.Attempts && s.d.Classify(err).Kind == Retryable && ctx.Err() == nil {
			continue
		}
		return s.dbErr(op, err)
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, s.d.WriteTx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// change is a lifecycle write: fn makes the change in a write transaction
// (write), and then rec is appended, with outcome ok, last, in the same
// transaction. rec is checked before anything is written: an entry that
// does not validate (audit.Entry.Validate; a zero entry never does) fails
// the write with ErrInvalid.
func (s *Store) change(ctx context.Context, op string, rec audit.Entry, fn func(tx *sql.Tx) error) error {
	return s.changeLogged(ctx, op, rec, func(tx *sql.Tx, rec audit.Entry) ([]audit.Entry, error) {
		return []audit.Entry{rec}, fn(tx)
	})
}

// changeLogged is change for a change whose entries depend on what it
// finds: fn makes the change and returns the entries to append, made from
// rec (checked first, with outcome ok), such as rec with a longer Detail.
func (s *Store) changeLogged(ctx context.Context, op string, rec audit.Entry,
	fn func(tx *sql.Tx, rec audit.Entry) ([]audit.Entry, error)) error {
	rec.Outcome, rec.Reason = audit.OutcomeOK, ""
	if err := checkEntry(rec); err != nil {
		return err
	}
	return s.write(ctx, op, func(tx *sql.Tx) error {
		entries, err := fn(tx, rec)
		if err != nil {
			return err
		}
		_, err = s.appendAudit(ctx, tx, entries...)
		return err
	})
}

// dbErr wraps a database error; errors already from the store pass through.
func (s *Store) dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), "store: ") {
		return err
	}
	return fmt.Errorf("store: %s: %s: %w", s.d.Name, op, err)
}

// noRows reports whether err is a query's "no rows".
func noRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface{ Scan(dest ...any) error }

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// collect reads every row of a query with scan.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Engine names the database engine: "sqlite" or "postgres".
func (s *Store) Engine() string { return s.d.Name }

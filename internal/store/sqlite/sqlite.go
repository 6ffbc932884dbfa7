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
// the audit log's appends (audit.go).
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
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

// Store is a store.Store in a SQLite database.
type Store struct {
	db   *sql.DB
	path string
	hub  *hub // WatchDestroyed's watchers
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if missing, with mode 0600) the database that dsn
// names, sqlite:PATH or sqlite::memory:, and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*Store, error) {
	path, ok := strings.CutPrefix(dsn, Scheme)
	if !ok {
		return nil, fmt.Errorf("store: sqlite: %q is not a SQLite DSN: use sqlite:PATH or sqlite::memory:", dsn)
	}
	return OpenPath(ctx, path)
}

// OpenPath is Open for a path (or Memory).
func OpenPath(ctx context.Context, path string) (*Store, error) {
	switch {
	case path == "":
		return nil, errors.New("store: sqlite: no database path: use sqlite:PATH")
	case strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:"):
		return nil, fmt.Errorf("store: sqlite: database path %q may not contain '?' or '#' nor start with file:", path)
	}
	memory := path == Memory
	if !memory {
		if err := createPrivate(path); err != nil {
			return nil, err
		}
	}
	q := fmt.Sprintf("?_busy_timeout=%d&_foreign_keys=1&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate&_pragma=secure_delete(1)",
		BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", path+q)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
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
	s := &Store{db: db, path: path, hub: newHub()}
	if err := s.checkPragmas(ctx, memory); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
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
func (s *Store) checkPragmas(ctx context.Context, memory bool) error {
	want := map[string]string{"synchronous": "2", "foreign_keys": "1", "secure_delete": "1", "journal_mode": "wal"}
	if memory {
		want["journal_mode"] = "memory"
	}
	for p, w := range want {
		var got string
		if err := s.db.QueryRowContext(ctx, "PRAGMA "+p).Scan(&got); err != nil {
			return fmt.Errorf("store: sqlite: opening %s: %w", s.path, err)
		}
		if !strings.EqualFold(got, w) {
			return fmt.Errorf("store: sqlite: %s: PRAGMA %s is %q, want %q", s.path, p, got, w)
		}
	}
	return nil
}

// migrate applies the embedded schema in one write transaction.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := store.LoadMigrations(schemaFS, "schema")
	if err != nil {
		return err
	}
	return s.write(ctx, "migrating the schema", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER NOT NULL PRIMARY KEY,
			name    TEXT    NOT NULL,
			applied INTEGER NOT NULL
		) STRICT`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return err
		}
		if err := store.CheckSchemaVersion("SQLite", have, len(ms)); err != nil {
			return err
		}
		for _, m := range ms[have:] {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("store: sqlite: applying %s: %w", m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
				m.Version, m.Name, time.Now().UnixMicro()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close ends the watchers (WatchDestroyed), waiting a few seconds at most for
// their callbacks to return, and closes the database.
func (s *Store) Close() error {
	s.hub.close()
	return s.db.Close()
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return dbErr("ping", s.db.PingContext(ctx)) }

// write runs fn in a write transaction (BEGIN IMMEDIATE) and commits it. An
// error from fn rolls back; errors of the store package pass through, others
// are wrapped with op.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbErr(op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return dbErr(op, err)
	}
	if err := tx.Commit(); err != nil {
		return dbErr(op, err)
	}
	return nil
}

// read runs fn in a read transaction (one consistent snapshot).
func (s *Store) read(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return dbErr(op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return dbErr(op, err)
	}
	return nil
}

// dbErr wraps a database error; errors already from the store pass through.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), "store: ") {
		return err
	}
	return fmt.Errorf("store: sqlite: %s: %w", op, err)
}

// sqliteCode returns the extended result code of a SQLite error.
func sqliteCode(err error) int {
	var e *msqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isForeignKey(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY }

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

func bool01(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nilIfEmpty returns nil for a NULL (or empty) BLOB.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ---- tenants

const tenantCols = `id, name, env, created, derivation_opt_out`

func scanTenant(sc interface{ Scan(...any) error }) (store.Tenant, error) {
	var t store.Tenant
	var created int64
	var optOut int
	if err := sc.Scan(&t.ID, &t.Name, &t.Env, &created, &optOut); err != nil {
		return store.Tenant{}, err
	}
	t.Created, t.DerivationOptOut = fromMicros(created), optOut == 1
	return t, nil
}

// CreateTenant implements store.TenantStore.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) (store.Tenant, error) {
	t, err := t.Check()
	if err != nil {
		return store.Tenant{}, err
	}
	err = s.change(ctx, "creating a tenant", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tenants (`+tenantCols+`) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Name, string(t.Env), micros(t.Created), bool01(t.DerivationOptOut))
		if isUnique(err) {
			if strings.Contains(err.Error(), "tenants.name") {
				return store.Errorf(store.ErrExists, "a tenant named %q exists", t.Name)
			}
			return store.Errorf(store.ErrExists, "a tenant with ID %s exists", t.ID)
		}
		return err
	})
	if err != nil {
		return store.Tenant{}, err
	}
	return t, nil
}

// TenantByName implements store.TenantStore.
func (s *Store) TenantByName(ctx context.Context, name string) (store.Tenant, error) {
	if err := store.ValidTenantName(name); err != nil {
		return store.Tenant{}, err
	}
	t, err := scanTenant(s.db.QueryRowContext(ctx, `SELECT `+tenantCols+` FROM tenants WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Tenant{}, store.Errorf(store.ErrNotFound, "no tenant named %q", name)
	}
	return t, dbErr("reading a tenant", err)
}

// TenantByID implements store.TenantStore.
func (s *Store) TenantByID(ctx context.Context, id string) (store.Tenant, error) {
	if err := store.ValidID("tenant", id); err != nil {
		return store.Tenant{}, err
	}
	return tenantByID(ctx, s.db, id)
}

func tenantByID(ctx context.Context, q queryer, id string) (store.Tenant, error) {
	t, err := scanTenant(q.QueryRowContext(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Tenant{}, store.Errorf(store.ErrNotFound, "no tenant with ID %s", id)
	}
	return t, dbErr("reading a tenant", err)
}

// Tenants implements store.TenantStore.
func (s *Store) Tenants(ctx context.Context) ([]store.Tenant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tenantCols+` FROM tenants ORDER BY name`)
	if err != nil {
		return nil, dbErr("listing tenants", err)
	}
	defer rows.Close()
	var ts []store.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, dbErr("listing tenants", err)
		}
		ts = append(ts, t)
	}
	return ts, dbErr("listing tenants", rows.Err())
}

// ---- tokens

const tokenCols = `id, hash, role, tenant, created, expires, name`

// CreateToken implements store.TokenStore.
func (s *Store) CreateToken(ctx context.Context, tok store.Token) (store.Token, error) {
	tok, err := tok.Check()
	if err != nil {
		return store.Token{}, err
	}
	err = s.change(ctx, "creating a token", func(tx *sql.Tx) error {
		var tenant sql.NullString
		if tok.Tenant != "" {
			if _, err := tenantByID(ctx, tx, tok.Tenant); err != nil {
				return err
			}
			tenant = sql.NullString{String: tok.Tenant, Valid: true}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			tok.ID, tok.Hash[:], string(tok.Role), tenant, micros(tok.Created), nullMicros(tok.Expires), tok.Name)
		switch {
		case isUnique(err) && strings.Contains(err.Error(), "tokens.hash"):
			return store.Errorf(store.ErrExists, "a token with the same hash exists")
		case isUnique(err):
			return store.Errorf(store.ErrExists, "a token with ID %s exists", tok.ID)
		case isForeignKey(err):
			return store.Errorf(store.ErrNotFound, "no tenant with ID %s", tok.Tenant)
		}
		return err
	})
	if err != nil {
		return store.Token{}, err
	}
	return tok, nil
}

// TokenByHash implements store.TokenStore.
func (s *Store) TokenByHash(ctx context.Context, hash [32]byte) (store.Token, error) {
	var tok store.Token
	var h []byte
	var tenant sql.NullString
	var created int64
	var expires sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash[:]).
		Scan(&tok.ID, &h, &tok.Role, &tenant, &created, &expires, &tok.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, store.Errorf(store.ErrNotFound, "no token with that hash")
	}
	if err != nil {
		return store.Token{}, dbErr("reading a token", err)
	}
	if len(h) != len(tok.Hash) {
		return store.Token{}, fmt.Errorf("store: sqlite: token %s has a %d-byte hash", tok.ID, len(h))
	}
	copy(tok.Hash[:], h)
	tok.Tenant, tok.Created, tok.Expires = tenant.String, fromMicros(created), fromNullMicros(expires)
	return tok, nil
}

// DeleteToken implements store.TokenStore.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	if err := store.ValidID("token", id); err != nil {
		return err
	}
	return s.change(ctx, "deleting a token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.Errorf(store.ErrNotFound, "no token with ID %s", id)
		}
		return nil
	})
}

// ---- releases

// InstallRelease implements store.ReleaseStore.
func (s *Store) InstallRelease(ctx context.Context, r store.Release) (store.Release, error) {
	r, err := r.Check()
	if err != nil {
		return store.Release{}, err
	}
	var got store.Release
	err = s.change(ctx, "installing a release", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO releases (id, bundle, installed) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			r.ID, r.Bundle, micros(r.Installed)); err != nil {
			return err
		}
		var installed int64
		got.ID = r.ID
		if err := tx.QueryRowContext(ctx, `SELECT bundle, installed FROM releases WHERE id = ?`, r.ID).Scan(&got.Bundle, &installed); err != nil {
			return err
		}
		got.Installed = fromMicros(installed)
		if !bytes.Equal(got.Bundle, r.Bundle) {
			return store.Errorf(store.ErrConflict, "release %s is installed with a different bundle", r.ID)
		}
		return nil
	})
	if err != nil {
		return store.Release{}, err
	}
	return got, nil
}

// Releases implements store.ReleaseStore.
func (s *Store) Releases(ctx context.Context) ([]store.Release, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, bundle, installed FROM releases ORDER BY installed, id`)
	if err != nil {
		return nil, dbErr("listing releases", err)
	}
	defer rows.Close()
	var rs []store.Release
	for rows.Next() {
		var r store.Release
		var installed int64
		if err := rows.Scan(&r.ID, &r.Bundle, &installed); err != nil {
			return nil, dbErr("listing releases", err)
		}
		r.Installed = fromMicros(installed)
		rs = append(rs, r)
	}
	return rs, dbErr("listing releases", rows.Err())
}

// ---- keys

const keyCols = `tenant, type, version, state, source, derivation, release_id, wrapped, fingerprint, created, destroyed`

func scanKey(sc interface{ Scan(...any) error }) (store.Key, error) {
	var k store.Key
	var version, created int64
	var destroyed sql.NullInt64
	if err := sc.Scan(&k.Tenant, &k.Type, &version, &k.State, &k.Source, &k.Derivation, &k.Release,
		&k.Wrapped, &k.Fingerprint, &created, &destroyed); err != nil {
		return store.Key{}, err
	}
	k.Version, k.Created, k.Destroyed = uint32(version), fromMicros(created), fromNullMicros(destroyed)
	k.Wrapped, k.Fingerprint = nilIfEmpty(k.Wrapped), nilIfEmpty(k.Fingerprint)
	return k, nil
}

func nullBlob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// Rotate implements store.KeyStore. The whole read-check-write runs in one
// BEGIN IMMEDIATE transaction, which holds the database's write lock from its
// start: no other rotation, of any tenant, interleaves with it.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.Key, error) {
	req, err := req.Check()
	if err != nil {
		return store.Key{}, err
	}
	var k store.Key
	err = s.change(ctx, "rotating a key", func(tx *sql.Tx) error {
		if _, err := tenantByID(ctx, tx, req.Tenant); err != nil {
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM releases WHERE id = ?`, req.New.Release).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return store.Errorf(store.ErrNotFound, "release %s is not installed", req.New.Release)
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_series (tenant, type) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			req.Tenant, req.Type); err != nil {
			return err
		}
		var series store.Series
		var maxVersion int64
		var newest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0), max(created),
				count(CASE WHEN state <> 'destroyed' THEN 1 END)
			FROM keys WHERE tenant = ? AND type = ?`, req.Tenant, req.Type).Scan(&maxVersion, &newest, &series.Live); err != nil {
			return err
		}
		series.MaxVersion, series.Newest = uint32(maxVersion), fromNullMicros(newest)
		if req.New.Fingerprint != nil {
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM keys WHERE tenant = ? AND fingerprint = ?)`,
				req.Tenant, req.New.Fingerprint).Scan(&series.Duplicate); err != nil {
				return err
			}
		}
		var err error
		if k, err = req.Decide(series); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET state = 'archived' WHERE tenant = ? AND type = ? AND state = 'active'`,
			req.Tenant, req.Type); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			k.Tenant, k.Type, int64(k.Version), string(k.State), string(k.Source), string(k.Derivation), k.Release,
			k.Wrapped, nullBlob(k.Fingerprint), micros(k.Created))
		if isUnique(err) && strings.Contains(err.Error(), "keys.fingerprint") {
			return store.Errorf(store.ErrDuplicate, "tenant %s already has a key with the same fingerprint", req.Tenant)
		}
		return err
	})
	if err != nil {
		return store.Key{}, err
	}
	return k, nil
}

// Keys implements store.KeyStore.
func (s *Store) Keys(ctx context.Context, tenant, typ string) ([]store.Key, error) {
	if err := store.ValidID("tenant", tenant); err != nil {
		return nil, err
	}
	if typ != "" {
		if err := store.ValidType(typ); err != nil {
			return nil, err
		}
	}
	var ks []store.Key
	err := s.read(ctx, "listing keys", func(tx *sql.Tx) error {
		if _, err := tenantByID(ctx, tx, tenant); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+keyCols+` FROM keys WHERE tenant = ? AND (? = '' OR type = ?) ORDER BY type, version`,
			tenant, typ, typ)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			k, err := scanKey(rows)
			if err != nil {
				return err
			}
			ks = append(ks, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return ks, nil
}

// Key implements store.KeyStore.
func (s *Store) Key(ctx context.Context, tenant, typ string, version uint32) (store.Key, error) {
	if err := store.ValidKeyRef(tenant, typ, version); err != nil {
		return store.Key{}, err
	}
	return keyVersion(ctx, s.db, tenant, typ, version)
}

func keyVersion(ctx context.Context, q queryer, tenant, typ string, version uint32) (store.Key, error) {
	k, err := scanKey(q.QueryRowContext(ctx, `SELECT `+keyCols+` FROM keys WHERE tenant = ? AND type = ? AND version = ?`,
		tenant, typ, int64(version)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Key{}, store.Errorf(store.ErrNotFound, "tenant %s has no %s key version %d", tenant, typ, version)
	}
	return k, dbErr("reading a key", err)
}

// ActiveKey implements store.KeyStore.
func (s *Store) ActiveKey(ctx context.Context, tenant, typ string) (store.Key, error) {
	if err := store.ValidID("tenant", tenant); err != nil {
		return store.Key{}, err
	}
	if err := store.ValidType(typ); err != nil {
		return store.Key{}, err
	}
	k, err := scanKey(s.db.QueryRowContext(ctx, `SELECT `+keyCols+` FROM keys WHERE tenant = ? AND type = ? AND state = 'active'`,
		tenant, typ))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Key{}, store.Errorf(store.ErrNotFound, "tenant %s has no active %s key", tenant, typ)
	}
	return k, dbErr("reading a key", err)
}

// DestroyKey implements store.KeyStore. SQLite overwrites the freed bytes
// (secure_delete), and the WAL is checkpointed and truncated afterwards (best
// effort, truncateWAL), so that the wrapped key does not linger in the WAL.
// Once the destruction committed, the Store's watchers are told
// (WatchDestroyed). The fingerprint is kept.
func (s *Store) DestroyKey(ctx context.Context, tenant, typ string, version uint32, now time.Time) (store.Key, error) {
	if err := store.ValidKeyRef(tenant, typ, version); err != nil {
		return store.Key{}, err
	}
	now, err := store.CheckTime("destruction", now)
	if err != nil {
		return store.Key{}, err
	}
	var k store.Key
	err = s.change(ctx, "destroying a key", func(tx *sql.Tx) error {
		var err error
		if k, err = keyVersion(ctx, tx, tenant, typ, version); err != nil {
			return err
		}
		if k.State == store.StateDestroyed {
			return store.Errorf(store.ErrDestroyed, "tenant %s's %s key version %d was destroyed at %s",
				tenant, typ, version, k.Destroyed.Format(time.RFC3339Nano))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET state = 'destroyed', wrapped = NULL, destroyed = ?
			WHERE tenant = ? AND type = ? AND version = ?`, micros(now), tenant, typ, int64(version)); err != nil {
			return err
		}
		k.State, k.Wrapped, k.Destroyed = store.StateDestroyed, nil, now
		return nil
	})
	if err != nil {
		return store.Key{}, err
	}
	s.hub.notify(store.KeyRef{Tenant: tenant, Type: typ, Version: version})
	if s.path != Memory {
		s.truncateWAL(ctx)
	}
	return k, nil
}

// truncateWAL checkpoints the WAL into the database file and truncates it,
// so that destroyed keys' old pages do not linger there. Best effort: it
// waits at most 100 ms for other connections, and is skipped if they keep
// old frames in use (the WAL is then rewritten from its start later).
func (s *Store) truncateWAL(ctx context.Context) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return
	}
	defer c.Close()
	discard := func() { _ = c.Raw(func(any) error { return driver.ErrBadConn }) }
	if _, err := c.ExecContext(ctx, `PRAGMA busy_timeout = 100`); err != nil {
		discard()
		return
	}
	_, _ = c.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	if _, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, BusyTimeout.Milliseconds())); err != nil {
		discard() // never leave a pooled connection with the short timeout
	}
}

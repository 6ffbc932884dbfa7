// Package postgres is the shared store driver: PostgreSQL through
// jackc/pgx/v5, for several KMS nodes per region sharing one database.
//
// Transactions run at READ COMMITTED. Rotate, DestroyKey and RestoreKey
// first lock the (tenant, type) row of key_series (Rotate creates it: INSERT
// … ON CONFLICT DO NOTHING, then SELECT … FOR UPDATE), so that they run one
// at a time per series across every node; each later statement of the
// transaction reads a fresh snapshot taken after the lock was granted, and
// so sees every change committed by the previous holder. Unique indexes back
// this up: one active key per (tenant, type), one fingerprint per tenant.
// Transactions that fail with a serialization failure or a deadlock (40001,
// 40P01) are retried.
//
// Every append to the audit log locks the single audit_state row (SELECT …
// FOR UPDATE), which serialises appends across nodes; a lifecycle write
// appends its pending entry (store.WithAudit) at the end of its own
// transaction, so that this lock is always the last one taken (audit.go).
//
// The driver refuses a session with synchronous_commit=off: a commit must be
// durable before it is acknowledged.
//
// DestroyKey announces each destruction on NotifyChannel (pg_notify in its
// transaction), and WatchDestroyed LISTENs on a dedicated connection: every
// node sharing the database, this one included, hears of every destruction.
package postgres

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strongroom-kms/strongroom/internal/store"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// migrationLock is the pg_advisory_xact_lock key that serialises schema
// migrations of nodes starting at once ("strngrm1" as a big-endian int64).
const migrationLock int64 = 0x7374726e_67726d31

// maxAttempts bounds the retries of a transaction that failed with a
// serialization failure or a deadlock.
const maxAttempts = 5

// Store is a store.Store in a PostgreSQL database.
type Store struct {
	pool  *pgxpool.Pool
	watch *watchers // WatchDestroyed's goroutines
}

var _ store.Store = (*Store)(nil)

// IsDSN reports whether dsn is a PostgreSQL URL (postgres:// or
// postgresql://).
func IsDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// checkTransport refuses a connection that could be read or altered on the
// way: the database holds token hashes and key rows, so anyone on the path
// could mint an operator. Loopback and Unix sockets are fine; anything else
// needs TLS with a verified certificate and host name (sslmode=verify-full),
// and no plaintext fallback.
func checkTransport(c *pgx.ConnConfig) error {
	local := func(host string) bool {
		if strings.HasPrefix(host, "/") {
			return true
		}
		ip := net.ParseIP(host)
		return host == "localhost" || (ip != nil && ip.IsLoopback())
	}
	hosts := []*pgconn.FallbackConfig{{Host: c.Host, TLSConfig: c.TLSConfig}}
	hosts = append(hosts, c.Fallbacks...)
	for _, h := range hosts {
		if local(h.Host) {
			continue
		}
		if h.TLSConfig == nil || h.TLSConfig.InsecureSkipVerify {
			return fmt.Errorf("store: postgres: the connection to %s is not verified TLS; use sslmode=verify-full (with sslrootcert) for a database off this host", h.Host)
		}
	}
	return nil
}

// Open connects to the database that dsn (postgres://…) names and brings its
// schema up to date. The usual libpq settings apply (sslmode, PGPASSWORD,
// ~/.pgpass…).
func Open(ctx context.Context, dsn string) (*Store, error) {
	if !IsDSN(dsn) {
		return nil, errors.New("store: postgres: not a PostgreSQL DSN: use postgres://USER@HOST:PORT/DATABASE?sslmode=…")
	}
	cfg, err := pgxpool.ParseConfig(dsn) // its errors redact the password
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	if err := checkTransport(cfg.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	s := &Store{pool: pool, watch: newWatchers()}
	where := fmt.Sprintf("database %q on %s:%d", cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	var syncCommit string
	if err := pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&syncCommit); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres: connecting to %s: %w", where, err)
	}
	if syncCommit == "off" {
		pool.Close()
		return nil, fmt.Errorf("store: postgres: %s has synchronous_commit=off: an acknowledged key change could be lost in a crash; set it to on", where)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := store.LoadMigrations(schemaFS, "schema")
	if err != nil {
		return err
	}
	return s.write(ctx, "migrating the schema", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer     NOT NULL PRIMARY KEY,
			name    text        NOT NULL,
			applied timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return err
		}
		if err := store.CheckSchemaVersion("PostgreSQL", have, len(ms)); err != nil {
			return err
		}
		for _, m := range ms[have:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("store: postgres: applying %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return dbErr("ping", s.pool.Ping(ctx)) }

// Close ends the watchers (WatchDestroyed), waiting a few seconds at most for
// a running callback to return, and closes the connection pool, waiting for
// the connections in use to be released. The watchers' connections are not
// the pool's: a watcher never holds Close up beyond that wait.
func (s *Store) Close() error {
	s.watch.stop()
	s.pool.Close()
	return nil
}

// write runs fn in a READ COMMITTED transaction and commits it, retrying on
// serialization failures and deadlocks. Errors of the store package pass
// through; others are wrapped with op.
func (s *Store) write(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
		if attempt < maxAttempts && retryable(err) && ctx.Err() == nil {
			continue
		}
		return dbErr(op, err)
	}
}

func retryable(err error) bool {
	c := pgCode(err)
	return c == "40001" || c == "40P01"
}

// dbErr wraps a database error; errors already from the store pass through.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), "store: ") {
		return err
	}
	return fmt.Errorf("store: postgres: %s: %w", op, err)
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// constraint returns the constraint a unique (23505) or foreign-key (23503)
// violation broke, with its code.
func constraint(err error) (code, name string) {
	var e *pgconn.PgError
	if errors.As(err, &e) && (e.Code == "23505" || e.Code == "23503") {
		return e.Code, e.ConstraintName
	}
	return "", ""
}

func utc(t time.Time) time.Time { return t.UTC() }

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func nullBlob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// querier is what the pool and a transaction share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ---- tenants

const tenantCols = `id, name, env, created, derivation_opt_out`

func scanTenant(row pgx.Row) (store.Tenant, error) {
	var t store.Tenant
	var env string
	if err := row.Scan(&t.ID, &t.Name, &env, &t.Created, &t.DerivationOptOut); err != nil {
		return store.Tenant{}, err
	}
	t.Env, t.Created = store.Environment(env), utc(t.Created)
	return t, nil
}

// CreateTenant implements store.TenantStore.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) (store.Tenant, error) {
	t, err := t.Check()
	if err != nil {
		return store.Tenant{}, err
	}
	err = s.change(ctx, "creating a tenant", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tenants (`+tenantCols+`) VALUES ($1, $2, $3, $4, $5)`,
			t.ID, t.Name, string(t.Env), t.Created, t.DerivationOptOut)
		switch code, name := constraint(err); {
		case code == "23505" && name == "tenants_name_key":
			return store.Errorf(store.ErrExists, "a tenant named %q exists", t.Name)
		case code == "23505":
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
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Tenant{}, store.Errorf(store.ErrNotFound, "no tenant named %q", name)
	}
	return t, dbErr("reading a tenant", err)
}

// TenantByID implements store.TenantStore.
func (s *Store) TenantByID(ctx context.Context, id string) (store.Tenant, error) {
	if err := store.ValidID("tenant", id); err != nil {
		return store.Tenant{}, err
	}
	return tenantByID(ctx, s.pool, id)
}

func tenantByID(ctx context.Context, q querier, id string) (store.Tenant, error) {
	t, err := scanTenant(q.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Tenant{}, store.Errorf(store.ErrNotFound, "no tenant with ID %s", id)
	}
	return t, dbErr("reading a tenant", err)
}

// Tenants implements store.TenantStore.
func (s *Store) Tenants(ctx context.Context) ([]store.Tenant, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tenantCols+` FROM tenants ORDER BY name`)
	if err != nil {
		return nil, dbErr("listing tenants", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, dbErr("listing tenants", err)
	}
	return ts, nil
}

// ---- tokens

const tokenCols = `id, hash, role, tenant, created, expires, name`

// CreateToken implements store.TokenStore.
func (s *Store) CreateToken(ctx context.Context, tok store.Token) (store.Token, error) {
	tok, err := tok.Check()
	if err != nil {
		return store.Token{}, err
	}
	err = s.change(ctx, "creating a token", func(tx pgx.Tx) error {
		var tenant any
		if tok.Tenant != "" {
			if _, err := tenantByID(ctx, tx, tok.Tenant); err != nil {
				return err
			}
			tenant = tok.Tenant
		}
		_, err := tx.Exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			tok.ID, tok.Hash[:], string(tok.Role), tenant, tok.Created, nullTime(tok.Expires), tok.Name)
		switch code, name := constraint(err); {
		case code == "23505" && name == "tokens_hash_key":
			return store.Errorf(store.ErrExists, "a token with the same hash exists")
		case code == "23505":
			return store.Errorf(store.ErrExists, "a token with ID %s exists", tok.ID)
		case code == "23503":
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
	var role string
	var tenant *string
	var expires *time.Time
	err := s.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, hash[:]).
		Scan(&tok.ID, &h, &role, &tenant, &tok.Created, &expires, &tok.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Token{}, store.Errorf(store.ErrNotFound, "no token with that hash")
	}
	if err != nil {
		return store.Token{}, dbErr("reading a token", err)
	}
	if len(h) != len(tok.Hash) {
		return store.Token{}, fmt.Errorf("store: postgres: token %s has a %d-byte hash", tok.ID, len(h))
	}
	copy(tok.Hash[:], h)
	tok.Role, tok.Created, tok.Expires = store.Role(role), utc(tok.Created), fromNullTime(expires)
	if tenant != nil {
		tok.Tenant = *tenant
	}
	return tok, nil
}

// DeleteToken implements store.TokenStore.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	if err := store.ValidID("token", id); err != nil {
		return err
	}
	return s.change(ctx, "deleting a token", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM tokens WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.Errorf(store.ErrNotFound, "no token with ID %s", id)
		}
		return nil
	})
}

// ---- releases

// InstallRelease implements store.ReleaseStore. Two nodes installing the same
// release at once both succeed: the second INSERT waits for the first and
// does nothing.
func (s *Store) InstallRelease(ctx context.Context, r store.Release) (store.Release, error) {
	r, err := r.Check()
	if err != nil {
		return store.Release{}, err
	}
	var got store.Release
	err = s.change(ctx, "installing a release", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO releases (id, bundle, installed) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
			r.ID, r.Bundle, r.Installed); err != nil {
			return err
		}
		got.ID = r.ID
		if err := tx.QueryRow(ctx, `SELECT bundle, installed FROM releases WHERE id = $1`, r.ID).Scan(&got.Bundle, &got.Installed); err != nil {
			return err
		}
		got.Installed = utc(got.Installed)
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
	rows, err := s.pool.Query(ctx, `SELECT id, bundle, installed FROM releases ORDER BY installed, id`)
	if err != nil {
		return nil, dbErr("listing releases", err)
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Release, error) {
		var r store.Release
		err := row.Scan(&r.ID, &r.Bundle, &r.Installed)
		r.Installed = utc(r.Installed)
		return r, err
	})
	if err != nil {
		return nil, dbErr("listing releases", err)
	}
	return rs, nil
}

// ---- keys

const keyCols = `tenant, type, version, state, source, derivation, release_id, wrapped, fingerprint, created, destroyed`

func scanKey(row pgx.Row) (store.Key, error) {
	var k store.Key
	var version int64
	var state, source, derivation string
	var destroyed *time.Time
	if err := row.Scan(&k.Tenant, &k.Type, &version, &state, &source, &derivation, &k.Release,
		&k.Wrapped, &k.Fingerprint, &k.Created, &destroyed); err != nil {
		return store.Key{}, err
	}
	k.Version, k.State, k.Source, k.Derivation = uint32(version), store.KeyState(state), store.Source(source), store.Derivation(derivation)
	k.Created, k.Destroyed = utc(k.Created), fromNullTime(destroyed)
	if len(k.Wrapped) == 0 {
		k.Wrapped = nil
	}
	if len(k.Fingerprint) == 0 {
		k.Fingerprint = nil
	}
	return k, nil
}

// lockSeries takes the row lock that serialises Rotate, DestroyKey and
// RestoreKey on (tenant, type), creating the row if create is set. It reports whether the
// row exists.
func lockSeries(ctx context.Context, tx pgx.Tx, tenant, typ string, create bool) (bool, error) {
	if create {
		if _, err := tx.Exec(ctx, `INSERT INTO key_series (tenant, type) VALUES ($1, $2) ON CONFLICT DO NOTHING`, tenant, typ); err != nil {
			return false, err
		}
	}
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM key_series WHERE tenant = $1 AND type = $2 FOR UPDATE`, tenant, typ).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Rotate implements store.KeyStore.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.Key, error) {
	req, err := req.Check()
	if err != nil {
		return store.Key{}, err
	}
	var k store.Key
	err = s.change(ctx, "rotating a key", func(tx pgx.Tx) error {
		if _, err := tenantByID(ctx, tx, req.Tenant); err != nil {
			return err
		}
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM releases WHERE id = $1`, req.New.Release).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return store.Errorf(store.ErrNotFound, "release %s is not installed", req.New.Release)
		} else if err != nil {
			return err
		}
		if _, err := lockSeries(ctx, tx, req.Tenant, req.Type, true); err != nil {
			return err
		}
		// Under the lock: this snapshot sees every rotation committed before.
		var series store.Series
		var maxVersion int64
		var newest *time.Time
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0), max(created),
				count(*) FILTER (WHERE state <> 'destroyed')
			FROM keys WHERE tenant = $1 AND type = $2`, req.Tenant, req.Type).Scan(&maxVersion, &newest, &series.Live); err != nil {
			return err
		}
		series.MaxVersion, series.Newest = uint32(maxVersion), fromNullTime(newest)
		if req.New.Fingerprint != nil {
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM keys WHERE tenant = $1 AND fingerprint = $2)`,
				req.Tenant, req.New.Fingerprint).Scan(&series.Duplicate); err != nil {
				return err
			}
		}
		var err error
		if k, err = req.Decide(series); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE keys SET state = 'archived' WHERE tenant = $1 AND type = $2 AND state = 'active'`,
			req.Tenant, req.Type); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO keys (`+keyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)`,
			k.Tenant, k.Type, int64(k.Version), string(k.State), string(k.Source), string(k.Derivation), k.Release,
			k.Wrapped, nullBlob(k.Fingerprint), k.Created)
		if code, name := constraint(err); code == "23505" && name == "keys_fingerprint" {
			// A rotation of another type of this tenant, with the same
			// fingerprint, committed first (the series lock is per type).
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
	if _, err := tenantByID(ctx, s.pool, tenant); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyCols+` FROM keys WHERE tenant = $1 AND ($2 = '' OR type = $2) ORDER BY type, version`,
		tenant, typ)
	if err != nil {
		return nil, dbErr("listing keys", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Key, error) { return scanKey(r) })
	if err != nil {
		return nil, dbErr("listing keys", err)
	}
	return ks, nil
}

// Key implements store.KeyStore.
func (s *Store) Key(ctx context.Context, tenant, typ string, version uint32) (store.Key, error) {
	if err := store.ValidKeyRef(tenant, typ, version); err != nil {
		return store.Key{}, err
	}
	return keyVersion(ctx, s.pool, tenant, typ, version)
}

func keyVersion(ctx context.Context, q querier, tenant, typ string, version uint32) (store.Key, error) {
	k, err := scanKey(q.QueryRow(ctx, `SELECT `+keyCols+` FROM keys WHERE tenant = $1 AND type = $2 AND version = $3`,
		tenant, typ, int64(version)))
	if errors.Is(err, pgx.ErrNoRows) {
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
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM keys WHERE tenant = $1 AND type = $2 AND state = 'active'`,
		tenant, typ))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Key{}, store.Errorf(store.ErrNotFound, "tenant %s has no active %s key", tenant, typ)
	}
	return k, dbErr("reading a key", err)
}

// DestroyKey implements store.KeyStore. The old row version keeps the
// wrapped bytes until VACUUM reclaims it (and in the WAL and backups until
// they are recycled): see docs/storage.md. The fingerprint is kept. The
// transaction notifies NotifyChannel, so the watchers of every node hear of
// the destruction once it commits.
func (s *Store) DestroyKey(ctx context.Context, tenant, typ string, version uint32, now time.Time) (store.Key, error) {
	if err := store.ValidKeyRef(tenant, typ, version); err != nil {
		return store.Key{}, err
	}
	now, err := store.CheckTime("destruction", now)
	if err != nil {
		return store.Key{}, err
	}
	var k store.Key
	err = s.change(ctx, "destroying a key", func(tx pgx.Tx) error {
		if ok, err := lockSeries(ctx, tx, tenant, typ, false); err != nil {
			return err
		} else if !ok {
			return store.Errorf(store.ErrNotFound, "tenant %s has no %s key version %d", tenant, typ, version)
		}
		var err error
		if k, err = keyVersion(ctx, tx, tenant, typ, version); err != nil {
			return err
		}
		if k.State == store.StateDestroyed {
			return store.Errorf(store.ErrDestroyed, "tenant %s's %s key version %d was destroyed at %s",
				tenant, typ, version, k.Destroyed.Format(time.RFC3339Nano))
		}
		if _, err := tx.Exec(ctx, `UPDATE keys SET state = 'destroyed', wrapped = NULL, destroyed = $4
			WHERE tenant = $1 AND type = $2 AND version = $3`, tenant, typ, int64(version), now); err != nil {
			return err
		}
		k.State, k.Wrapped, k.Destroyed = store.StateDestroyed, nil, now
		return notifyDestroyed(ctx, tx, store.KeyRef{Tenant: tenant, Type: typ, Version: version})
	})
	if err != nil {
		return store.Key{}, err
	}
	return k, nil
}

// Package postgres is the shared store engine: PostgreSQL through
// jackc/pgx/v5 (its database/sql driver, pgx/v5/stdlib), for several KMS
// nodes per region sharing one database.
//
// The statements are internal/store's. Transactions run at READ COMMITTED:
// Rotate, DestroyKey and RestoreKey first lock the (tenant, type) row of
// key_series (SELECT … FOR UPDATE, [Dialect].ForUpdate), so that they run
// one at a time per series across every node; each later statement of the
// transaction reads a fresh snapshot taken after the lock was granted, and
// so sees every change committed by the previous holder. Every append to
// the audit log locks the single audit_state row the same way, last.
// Transactions that fail with a serialization failure or a deadlock (40001,
// 40P01) are retried; schema migrations of nodes starting at once are
// serialised by an advisory lock.
//
// Open refuses a connection that could be read or altered on the way
// (anything but loopback or a Unix socket without verified TLS), and a
// session with synchronous_commit=off: a commit must be durable before it
// is acknowledged.
//
// DestroyKey announces each destruction on NotifyChannel (pg_notify in its
// transaction), and WatchDestroyed LISTENs on a dedicated connection: every
// node sharing the database, this one included, hears of every destruction.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/strongroom-kms/strongroom/internal/store"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// maxConns bounds the connection pool of one node.
const maxConns = 16

// Dialect is how PostgreSQL differs (store.Dialect).
var Dialect = store.Dialect{
	Name:      "postgres",
	Time:      func(t time.Time) any { return t.UTC() },
	ForUpdate: " FOR UPDATE",
	WriteTx:   &sql.TxOptions{Isolation: sql.LevelReadCommitted},
	// "strngrm1" as a big-endian int64: the key of the advisory lock.
	MigrationLock: `SELECT pg_advisory_xact_lock(8319400230167670065)`,
	MigrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer     NOT NULL PRIMARY KEY,
		name    text        NOT NULL,
		applied timestamptz NOT NULL DEFAULT now()
	)`,
	Classify: classify,
	Attempts: 5,
}

// classify reads the SQLSTATE of a PostgreSQL error.
func classify(err error) store.Failure {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return store.Failure{}
	}
	switch e.Code {
	case "23505":
		return store.Failure{Kind: store.Unique, Constraint: e.ConstraintName}
	case "23503":
		return store.Failure{Kind: store.ForeignKey}
	case "40001", "40P01": // serialization failure, deadlock
		return store.Failure{Kind: store.Retryable}
	}
	return store.Failure{}
}

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
func Open(ctx context.Context, dsn string) (*store.Store, error) {
	s, _, _, err := openEngine(ctx, dsn)
	return s, err
}

// openEngine is Open, and the engine and database handle (which tests use).
func openEngine(ctx context.Context, dsn string) (*store.Store, *engine, *sql.DB, error) {
	if !IsDSN(dsn) {
		return nil, nil, nil, errors.New("store: postgres: not a PostgreSQL DSN: use postgres://USER@HOST:PORT/DATABASE?sslmode=…")
	}
	cfg, err := pgx.ParseConfig(dsn) // its errors redact the password
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store: postgres: %w", err)
	}
	if err := checkTransport(cfg); err != nil {
		return nil, nil, nil, err
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	where := fmt.Sprintf("database %q on %s:%d", cfg.Database, cfg.Host, cfg.Port)
	var syncCommit string
	if err := db.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&syncCommit); err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("store: postgres: connecting to %s: %w", where, err)
	}
	if syncCommit == "off" {
		db.Close()
		return nil, nil, nil, fmt.Errorf("store: postgres: %s has synchronous_commit=off: an acknowledged key change could be lost in a crash; set it to on", where)
	}
	e := &engine{cfg: cfg, watch: newWatchers()}
	s, err := store.Open(ctx, db, Dialect, e, schemaFS)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return s, e, db, nil
}

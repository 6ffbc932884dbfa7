package postgres

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

var (
	ctx = context.Background()
	rec = storetest.Rec
)

// testStore is a Store with what the tests reach beneath it: the engine's
// watchers and a database handle of its own for what an outsider with
// database access would do.
type testStore struct {
	*store.Store
	db    *sql.DB
	watch *watchers
}

func open(t *testing.T, dsn string) *testStore {
	t.Helper()
	s, e, db, err := openEngine(ctx, dsn)
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &testStore{Store: s, db: db, watch: e.watch}
}

func TestConformance(t *testing.T) {
	storetest.Postgres(t) // skip or fail before anything else
	storetest.Run(t, func(t *testing.T) *store.Store { return open(t, storetest.Postgres(t)).Store })
}

// TestConformanceShared: two nodes on one database.
func TestConformanceShared(t *testing.T) {
	storetest.Postgres(t) // skip or fail before anything else
	storetest.RunShared(t, func(t *testing.T) (*store.Store, *store.Store) {
		dsn := storetest.Postgres(t)
		return open(t, dsn).Store, open(t, dsn).Store
	})
}

func TestOpenErrors(t *testing.T) {
	for dsn, want := range map[string]string{
		"sqlite:x":                       "not a PostgreSQL DSN",
		"postgres://u:hunter2@[::1:5432": "store: postgres: ",
	} {
		_, err := Open(ctx, dsn)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) error = %v, want %q", dsn, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open() error %q shows the password", err)
		}
	}
}

func TestReopenAndNewerSchema(t *testing.T) {
	dsn := storetest.Postgres(t)
	s := open(t, dsn)
	tn, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, storeTime), rec)
	if err != nil {
		t.Fatal(err)
	}
	usageTenant, usage := storetest.SeedKeyUsage(t, s.Store)
	// A second node opening the same database: migrations are not re-applied.
	s2 := open(t, dsn)
	if _, err := s2.TenantByID(ctx, tn.ID); err != nil {
		t.Errorf("second Open: TenantByID() error = %v", err)
	}
	storetest.CheckKeyUsage(t, s2.Store, usageTenant, "", usage...)
	var n int
	ms, _ := store.LoadMigrations(schemaFS, "schema")
	if err := s2.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Errorf("schema_migrations has %d rows, %v, want %d", n, err, len(ms))
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (99, '099_future.sql')`); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, dsn)
	if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("Open(newer schema) error = %v, want ErrSchemaTooNew naming version 99", err)
	}
}

// TestConcurrentOpen: nodes starting at once against an empty database all
// open it; the schema is applied once (advisory lock).
func TestConcurrentOpen(t *testing.T) {
	dsn := storetest.Postgres(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := Open(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open() error = %v", err)
		}
	}
}

// TestSynchronousCommitOff: a session that would acknowledge commits before
// they are durable is refused.
func TestSynchronousCommitOff(t *testing.T) {
	dsn := storetest.Postgres(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	_, err := Open(ctx, dsn+sep+"synchronous_commit=off")
	if err == nil || !strings.Contains(err.Error(), "synchronous_commit=off") {
		t.Errorf("Open(synchronous_commit=off) error = %v, want a refusal", err)
	}
}

var storeTime = time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC)

func TestRemoteNeedsVerifiedTLS(t *testing.T) {
	for _, dsn := range []string{
		"postgres://kms@db.example/strongroom",
		"postgres://kms@db.example/strongroom?sslmode=disable",
		"postgres://kms@db.example/strongroom?sslmode=require",
		"postgres://kms@10.1.2.3:5432/strongroom?sslmode=prefer",
	} {
		if _, err := Open(context.Background(), dsn); err == nil || !strings.Contains(err.Error(), "verify-full") {
			t.Errorf("Open(%q) error = %v, want a refusal asking for verify-full", dsn, err)
		}
	}
}

// TestMigrateFromVersion1: a database written by a build that knew only
// 001_init.sql is brought up to date at open, its data kept.
func TestMigrateFromVersion1(t *testing.T) {
	dsn := storetest.Postgres(t)
	ms, err := store.LoadMigrations(schemaFS, "schema")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tenantID := tenant.NewID()
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`,
		ms[0].SQL,
		`INSERT INTO schema_migrations (version, name) VALUES (1, '001_init.sql')`,
		`INSERT INTO tenants VALUES ('` + tenantID + `', 'acme', 'production', now(), true)`,
		`INSERT INTO releases VALUES ('r1', '\x2d2d', now())`,
		`INSERT INTO key_series VALUES ('` + tenantID + `', 'data')`,
		`INSERT INTO keys VALUES ('` + tenantID + `', 'data', 1, 'destroyed', 'hsm', 'pbkdf2', 'r1', NULL, NULL, now(), '1970-01-01 00:00:01+00')`,
		`INSERT INTO keys VALUES ('` + tenantID + `', 'data', 2, 'active', 'hsm', 'pbkdf2', 'r1', '\x01', NULL, now(), NULL)`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
	}
	c.Close(ctx)

	s := open(t, dsn)
	storetest.MigratedV1(t, s.Store, s.db, tenantID, len(ms))
}

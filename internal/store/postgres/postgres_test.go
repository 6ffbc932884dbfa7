package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
)

var ctx = context.Background()

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Postgres(t) // skip or fail before anything else
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, storetest.Postgres(t)) })
}

// TestConformanceShared: two nodes on one database.
func TestConformanceShared(t *testing.T) {
	storetest.Postgres(t) // skip or fail before anything else
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		dsn := storetest.Postgres(t)
		return open(t, dsn), open(t, dsn)
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
	tn, err := s.CreateTenant(ctx, store.NewTenant("acme", store.EnvProduction, storeTime))
	if err != nil {
		t.Fatal(err)
	}
	// A second node opening the same database: migrations are not re-applied.
	s2 := open(t, dsn)
	if _, err := s2.TenantByID(ctx, tn.ID); err != nil {
		t.Errorf("second Open: TenantByID() error = %v", err)
	}
	var n int
	ms, _ := store.LoadMigrations(schemaFS, "schema")
	if err := s2.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Errorf("schema_migrations has %d rows, %v, want %d", n, err, len(ms))
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (99, '099_future.sql')`); err != nil {
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
	tenant := store.NewID()
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`,
		ms[0].SQL,
		`INSERT INTO schema_migrations (version, name) VALUES (1, '001_init.sql')`,
		`INSERT INTO tenants VALUES ('` + tenant + `', 'acme', 'production', now(), true)`,
		`INSERT INTO releases VALUES ('r1', '\x2d2d', now())`,
		`INSERT INTO key_series VALUES ('` + tenant + `', 'data')`,
		`INSERT INTO keys VALUES ('` + tenant + `', 'data', 1, 'destroyed', 'hsm', 'pbkdf2', 'r1', NULL, NULL, now(), '1970-01-01 00:00:01+00')`,
		`INSERT INTO keys VALUES ('` + tenant + `', 'data', 2, 'active', 'hsm', 'pbkdf2', 'r1', '\x01', NULL, now(), NULL)`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
	}
	c.Close(ctx)

	s := open(t, dsn)
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Errorf("schema_migrations has %d rows, %v, want %d", n, err, len(ms))
	}
	ks, err := s.DestroyedSince(ctx, time.Time{})
	if err != nil || len(ks) != 1 || ks[0].Version != 1 || !ks[0].Destroyed.Equal(time.Unix(1, 0)) {
		t.Errorf("DestroyedSince() after migrating = %+v, %v, want v1 destroyed at 1 s", ks, err)
	}
	if _, err := s.PutExportKey(ctx, store.ExportKey{Tenant: tenant, Release: "r1", Wrapped: []byte{1}, Created: time.Now()}); err != nil {
		t.Errorf("PutExportKey() after migrating error = %v", err)
	}
	if k, err := s.ActiveKey(ctx, tenant, store.TypeData); err != nil || k.Version != 2 {
		t.Errorf("ActiveKey() after migrating = v%d, %v, want v2", k.Version, err)
	}
	p := store.NewPendingAudit(audit.Entry{Time: time.Now(), Actor: audit.ActorCLI, Tenant: tenant, Action: audit.ActionDestroy, Key: "data/2"})
	if _, err := s.DestroyKey(store.WithAudit(ctx, p), tenant, store.TypeData, 2, time.Now()); err != nil || !p.Recorded() {
		t.Errorf("DestroyKey() with an audit entry after migrating: error = %v, recorded = %v", err, p.Recorded())
	}
	if st, err := s.AuditState(ctx); err != nil || st.Size() != 1 {
		t.Errorf("AuditState() after migrating and one append = size %d, %v, want 1", st.Size(), err)
	}
}

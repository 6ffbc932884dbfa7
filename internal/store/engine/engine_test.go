package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

var ctx = context.Background()

func TestOpenErrors(t *testing.T) {
	for dsn, want := range map[string]string{
		"":                          "the store DSN is not one",
		"strongroom.db":             "the store DSN is not one",
		"postgres//u:hunter2@h/db":  "the store DSN is not one",
		"mysql://u:hunter2@h/db":    `unknown store scheme "mysql"`,
		"sqlite:":                   "no database path",
		"postgres://u:hunter2@[::1": "store: postgres: ",
	} {
		s, err := Open(ctx, dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("Open(%q) error = %v, want %q", dsn, err, want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error %q shows the password", dsn, err)
		}
	}
}

func use(t *testing.T, s *store.Store) {
	t.Helper()
	defer s.Close()
	if _, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, time.Now()), storetest.Rec); err != nil {
		t.Errorf("CreateTenant() error = %v", err)
	}
}

func TestOpenSQLite(t *testing.T) {
	for _, dsn := range []string{"sqlite::memory:", "sqlite:" + filepath.Join(t.TempDir(), "s.db")} {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open(%q) error = %v", dsn, err)
		}
		if s.Engine() != "sqlite" {
			t.Errorf("Open(%q) is on %s, want sqlite", dsn, s.Engine())
		}
		use(t, s)
	}
}

func TestOpenPostgres(t *testing.T) {
	dsn := storetest.Postgres(t)
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open(postgres) error = %v", err)
	}
	if s.Engine() != "postgres" {
		t.Errorf("Open(postgres) is on %s, want postgres", s.Engine())
	}
	use(t, s)
}

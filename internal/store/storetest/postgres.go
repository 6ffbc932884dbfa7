package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the variable that ./scripts/test.sh sets to the URL of a
// throwaway PostgreSQL cluster's database: postgres://USER@127.0.0.1:PORT/DB.
// Its user must be allowed to create databases.
const PostgresEnv = "STRONGROOM_TEST_POSTGRES"

// Postgres creates a uniquely named, empty database for the test and returns
// its URL; the database is dropped (WITH (FORCE)) when the test ends.
//
// It needs STRONGROOM_TEST_POSTGRES, which ./scripts/test.sh exports. Without
// it the test is skipped, loudly, except in CI (CI=true), where it fails:
// there, PostgreSQL is required.
func Postgres(t testing.TB) (dsn string) {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("storetest: PostgreSQL is required in CI, but %s is unset; "+
				"run the tests with ./scripts/test.sh, which starts a throwaway PostgreSQL", PostgresEnv)
		}
		t.Skipf("storetest: SKIPPING this PostgreSQL test: %s is unset. "+
			"Run ./scripts/test.sh to start a throwaway PostgreSQL and run it", PostgresEnv)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("storetest: %s must be a postgres:// URL", PostgresEnv)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "strongroom_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("storetest: connecting to %s (%s): %v", PostgresEnv, u.Redacted(), err)
	}
	defer admin.Close(ctx)
	// name is [a-z0-9_] only: no quoting needed.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storetest: CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("storetest: dropping database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: DROP DATABASE %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Package engine opens a store on the engine that an operator's DSN names:
//
//	sqlite:PATH               an embedded SQLite database file (created 0600 if missing)
//	sqlite::memory:           an in-memory SQLite database (tests)
//	postgres://USER@HOST/DB   a PostgreSQL database shared by the region's KMS nodes
//	postgresql://…            the same
package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/postgres"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
)

// Open opens the store that dsn names and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*store.Store, error) {
	switch {
	case strings.HasPrefix(dsn, sqlite.Scheme):
		return sqlite.Open(ctx, dsn)
	case postgres.IsDSN(dsn):
		return postgres.Open(ctx, dsn)
	}
	scheme, _, ok := strings.Cut(dsn, ":")
	if !ok || strings.ContainsAny(scheme, "/@") {
		// Not even the scheme is printed: a mistyped DSN may hold a
		// password anywhere.
		return nil, fmt.Errorf("store: the store DSN is not one: use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE")
	}
	// Only the scheme: the rest may hold a password.
	return nil, fmt.Errorf("store: unknown store scheme %q: use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE", scheme)
}

package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// Migration is one step of an engine's schema: the file
// schema/NNN_name.sql embedded in the engine, applied in a transaction at
// open and recorded in the schema_migrations table.
type Migration struct {
	Version int
	Name    string // the file name
	SQL     string
}

var migrationRE = regexp.MustCompile(`^([0-9]{3})_[a-z0-9_]+\.sql$`)

// LoadMigrations reads the migrations in dir of fsys, ordered by version. The
// versions must run 1, 2, 3… without gaps; any other file is an error.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: reading the embedded schema: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		m := migrationRE.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("store: unexpected file %q in the embedded schema: use NNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: reading the embedded schema: %w", err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("store: embedded schema versions must run 1, 2, 3…: %s is version %d, want %d", m.Name, m.Version, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("store: the embedded schema is empty")
	}
	return ms, nil
}

// CheckSchemaVersion returns ErrSchemaTooNew if the database's recorded
// version (have) is newer than the newest this build knows (known).
func CheckSchemaVersion(driver string, have, known int) error {
	if have > known {
		return Errorf(ErrSchemaTooNew, "the %s database has schema version %d, but this build of Strongroom knows versions up to %d: "+
			"it was written by a newer Strongroom; run that version (or newer), never an older one, against it", driver, have, known)
	}
	return nil
}

// The statements of the migrations' bookkeeping. The table itself is the
// dialect's (Dialect.MigrationsTable).
const (
	qMigrationVersion = `SELECT coalesce(max(version), 0) FROM schema_migrations`
	qMigrationRecord  = `INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, $3)`
)

// migrate applies the migrations of fsys that the database lacks, in one
// write transaction (after the dialect's migration lock, if any).
func (s *Store) migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := LoadMigrations(fsys, "schema")
	if err != nil {
		return err
	}
	return s.write(ctx, "migrating the schema", func(tx *sql.Tx) error {
		if s.d.MigrationLock != "" {
			if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.d.MigrationsTable); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRowContext(ctx, qMigrationVersion).Scan(&have); err != nil {
			return err
		}
		if err := CheckSchemaVersion(s.d.Name, have, len(ms)); err != nil {
			return err
		}
		for _, m := range ms[have:] {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("store: %s: applying %s: %w", s.d.Name, m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, qMigrationRecord, m.Version, m.Name, s.d.Time(time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
}

package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

var (
	ctx = context.Background()
	rec = storetest.Rec
)

func openFile(t *testing.T) *store.Store {
	s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "strongroom.db"))
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() error = %v", err)
		}
	})
	return s
}

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, openFile)
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.Store {
		s, err := Open(ctx, "sqlite::memory:")
		if err != nil {
			t.Fatalf("Open(memory) error = %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for dsn, want := range map[string]string{
		"postgres://x":                 "not a SQLite DSN",
		"sqlite:":                      "no database path",
		"sqlite:" + dir + "/a.db?x=1":  "may not contain '?'",
		"sqlite:file:" + dir + "/a.db": "nor start with file:",
		"sqlite:" + dir:                "not a regular file",
		"sqlite:" + dir + "/no/such/a": "creating the database",
	} {
		s, err := Open(ctx, dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error containing %q", dsn, want)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "store: sqlite: ") {
			t.Errorf("Open(%q) error = %v, want \"store: sqlite: …%s…\"", dsn, err, want)
		}
	}
}

func TestFileModeAndPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, e, err := open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Write something so that the WAL exists.
	if _, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, time.Now()), rec); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	// Every pooled connection runs with the durable settings.
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := e.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		for p, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1",
			"secure_delete": "1", "busy_timeout": strconv.Itoa(int(BusyTimeout.Milliseconds()))} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+p).Scan(&got); err != nil || got != want {
				t.Errorf("connection %d: PRAGMA %s = %q, %v, want %q", i, p, got, err, want)
			}
		}
	}
}

func TestRefusesReadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, "sqlite:"+path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Open(mode 0644 file) error = %v, want a refusal that says chmod 600", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, time.Now()), rec)
	if err != nil {
		t.Fatal(err)
	}
	usageTenant, usage := storetest.SeedKeyUsage(t, s)
	s.Close()
	s, e, err := open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.TenantByID(ctx, tn.ID); err != nil {
		t.Errorf("after reopen, TenantByID() error = %v", err)
	}
	storetest.CheckKeyUsage(t, s, usageTenant, "", usage...)
	var n int
	ms, _ := store.LoadMigrations(schemaFS, "schema")
	if err := e.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Errorf("schema_migrations has %d rows, %v, want %d (migrations applied once)", n, err, len(ms))
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, e, err := open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (99, '099_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, "sqlite:"+path)
	if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("Open(newer schema) error = %v, want ErrSchemaTooNew naming version 99", err)
	}
}

// TestTwoStoresOneFile: two Stores on one file (two KMS processes) rotating
// the same series at once are serialised by BEGIN IMMEDIATE.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	a, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tn, err := a.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, now), rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.InstallRelease(ctx, release.Installation{ID: "r1", Bundle: []byte("-----BEGIN X-----\n-----END X-----\n"), Installed: now}, rec); err != nil {
		t.Fatal(err)
	}
	const n = 10
	errs := storetest.AtOnce(2*n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		_, err := s.Rotate(ctx, store.RotateRequest{Tenant: tn.ID, Type: tenant.TypeData, MinInterval: 24 * time.Hour, MaxKeys: 10, Now: now,
			New: tenant.Key{Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2, Release: "r1", Wrapped: []byte{byte(i), 1, 2, 3}}}, rec)
		return err
	})
	won := storetest.Succeeded(t, "Rotate", errs, store.ErrRateLimited)
	if won != 1 {
		t.Errorf("%d rotations succeeded across two stores, want 1", won)
	}
}

// TestCrash kills a process that rotates in a loop (SIGKILL, at a random
// point) and checks, after reopening, that every rotation it acknowledged is
// there and that exactly one key is active.
func TestCrash(t *testing.T) {
	if os.Getenv("STRONGROOM_SQLITE_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	if testing.Short() {
		t.Skip("slow")
	}
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tn, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, now), rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.InstallRelease(ctx, release.Installation{ID: "r1", Bundle: []byte("-----BEGIN X-----\n-----END X-----\n"), Installed: now}, rec); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
		cmd.Env = append(os.Environ(), "STRONGROOM_SQLITE_CRASH_CHILD="+path, "STRONGROOM_SQLITE_CRASH_TENANT="+tn.ID)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Read acknowledgements until the child has made some in this
		// round, kill it mid-flight, then read what it printed before it
		// died: those were acknowledged too.
		r := bufio.NewReader(out)
		acked, lines := 0, 0
		readLine := func() bool {
			l, err := r.ReadString('\n')
			if v, err := strconv.Atoi(strings.TrimSpace(l)); err == nil && v > acked {
				acked = v
			}
			lines++
			return err == nil
		}
		for lines < 3+round*5 && readLine() {
		}
		cmd.Process.Kill()
		for readLine() {
		}
		cmd.Wait()
		if acked == 0 {
			t.Fatalf("round %d: the child acknowledged no rotation", round)
		}

		s, err := Open(ctx, "sqlite:"+path)
		if err != nil {
			t.Fatalf("round %d: reopening after the crash: %v", round, err)
		}
		ks, err := s.Keys(ctx, tn.ID, tenant.TypeData)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, k := range ks {
			if k.State == tenant.StateActive {
				active++
			}
		}
		if len(ks) < acked || active != 1 {
			t.Fatalf("round %d: after a crash, %d keys (%d active), but %d rotations were acknowledged; want ≥ %d keys, 1 active",
				round, len(ks), active, acked, acked)
		}
		t.Logf("round %d: %d rotations acknowledged, %d keys found, 1 active", round, acked, len(ks))
	}
}

// crashChild rotates forever, printing each acknowledged version.
func crashChild() {
	path := os.Getenv("STRONGROOM_SQLITE_CRASH_CHILD")
	tenantID := os.Getenv("STRONGROOM_SQLITE_CRASH_TENANT")
	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; ; i++ {
		k, err := s.Rotate(ctx, store.RotateRequest{Tenant: tenantID, Type: tenant.TypeData, MaxKeys: 1 << 30, Now: now,
			New: tenant.Key{Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2, Release: "r1", Wrapped: []byte(strconv.Itoa(i))}}, rec)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("%d\n", k.Version)
	}
}

// TestDestroyErases: once destroyed, the wrapped bytes are in neither the
// database file nor the WAL (secure_delete and the WAL truncation).
func TestDestroyErases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tn, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, now), rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.InstallRelease(ctx, release.Installation{ID: "r1", Bundle: []byte("-----BEGIN X-----\n-----END X-----\n"), Installed: now}, rec); err != nil {
		t.Fatal(err)
	}
	marker := []byte(strings.Repeat("WRAPPED-KEY-MARKER:", 8))
	if _, err := s.Rotate(ctx, store.RotateRequest{Tenant: tn.ID, Type: tenant.TypeData, MaxKeys: 10, Now: now,
		New: tenant.Key{Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2, Release: "r1", Wrapped: marker}}, rec); err != nil {
		t.Fatal(err)
	}
	contains := func() bool {
		for _, p := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(p)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			if bytes.Contains(b, marker[:19]) {
				return true
			}
		}
		return false
	}
	if !contains() {
		t.Fatal("the wrapped key is not in the files before destruction: the test looks in the wrong place")
	}
	if _, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, now, rec); err != nil {
		t.Fatal(err)
	}
	if contains() {
		t.Error("the destroyed key's wrapped bytes are still in the database file or the WAL")
	}
}

// TestMigrateFromVersion1: a database written by a build that knew only
// 001_init.sql is brought up to date at open, its data kept.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	if err := createPrivate(path); err != nil {
		t.Fatal(err)
	}
	ms, err := store.LoadMigrations(schemaFS, "schema")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	tenantID := tenant.NewID()
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL) STRICT`,
		ms[0].SQL,
		`INSERT INTO schema_migrations VALUES (1, '001_init.sql', 0)`,
		`INSERT INTO tenants VALUES ('` + tenantID + `', 'acme', 'production', 0, 1)`,
		`INSERT INTO releases VALUES ('r1', x'2d2d', 0)`,
		`INSERT INTO key_series VALUES ('` + tenantID + `', 'data')`,
		`INSERT INTO keys VALUES ('` + tenantID + `', 'data', 1, 'destroyed', 'hsm', 'pbkdf2', 'r1', NULL, NULL, 0, 1000000)`,
		`INSERT INTO keys VALUES ('` + tenantID + `', 'data', 2, 'active', 'hsm', 'pbkdf2', 'r1', x'01', NULL, 0, NULL)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
	}
	db.Close()

	s, e, err := open(ctx, path)
	if err != nil {
		t.Fatalf("Open(version 1 database) error = %v", err)
	}
	defer s.Close()
	storetest.MigratedV1(t, s, e.db, tenantID, len(ms))
}

func mustWatch(t *testing.T, wctx context.Context, s *store.Store, fn func(tenant.KeyRef)) {
	t.Helper()
	if err := s.WatchDestroyed(wctx, fn); err != nil {
		t.Fatalf("WatchDestroyed() error = %v", err)
	}
}

func receive(t *testing.T, ch <-chan tenant.KeyRef) tenant.KeyRef {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r
	case <-timer.C:
		t.Fatal("the watcher heard of nothing within 10 s")
		return tenant.KeyRef{}
	}
}

// openWatched opens a store in memory, closed when the test ends, and a
// context for its watchers, cancelled before that.
func openWatched(t *testing.T) (*store.Store, *engine, context.Context) {
	t.Helper()
	s, e, err := open(ctx, Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	return s, e, wctx
}

// TestWatchSlowWatcher: a watcher that does not keep up never holds up a
// destruction: what its buffer has no room for is dropped for it, and the
// other watchers still hear of everything, in order.
func TestWatchSlowWatcher(t *testing.T) {
	s, e, wctx := openWatched(t)
	started, block := make(chan struct{}), make(chan struct{})
	slow := make(chan tenant.KeyRef, 2*watchBuffer)
	mustWatch(t, wctx, s, func(r tenant.KeyRef) {
		if r.Version == 1 {
			close(started)
		}
		<-block
		slow <- r
	})
	fast := make(chan tenant.KeyRef, 2*watchBuffer)
	mustWatch(t, wctx, s, func(r tenant.KeyRef) { fast <- r })

	tenantID := tenant.NewID()
	ref := func(v int) tenant.KeyRef {
		return tenant.KeyRef{Tenant: tenantID, Type: tenant.TypeData, Version: uint32(v)}
	}
	e.hub.notify(destroyed(ref(1)))
	<-started // the slow watcher is in its callback with v1; its buffer is empty
	if got := receive(t, fast); got != ref(1) {
		t.Fatalf("the fast watcher heard of %+v, want %+v", got, ref(1))
	}
	const n = watchBuffer + 10
	for v := 2; v <= n; v++ {
		e.hub.notify(destroyed(ref(v))) // never blocks
		// The fast watcher keeps up (here, by the test waiting for it).
		if got := receive(t, fast); got != ref(v) {
			t.Fatalf("the fast watcher heard of %+v, want %+v", got, ref(v))
		}
	}
	close(block)
	// v1, then the buffer's watchBuffer; the rest was dropped.
	for v := 1; v <= watchBuffer+1; v++ {
		if got := receive(t, slow); got != ref(v) {
			t.Fatalf("the slow watcher heard of %+v, want %+v", got, ref(v))
		}
	}
	e.hub.notify(destroyed(ref(n + 1)))
	if got := receive(t, slow); got != ref(n+1) {
		t.Errorf("after catching up, the slow watcher heard of %+v, want %+v (the overflow dropped)", got, ref(n+1))
	}
}

// destroyed is the Change of a destruction.
func destroyed(ref tenant.KeyRef) store.Change {
	return store.Change{Kind: store.KeyDestroyed, Key: ref}
}

// TestCloseEndsWatchers: Close ends the watchers whose context is still
// live, and does not hang on a callback that never returns.
func TestCloseEndsWatchers(t *testing.T) {
	s, e, err := open(ctx, Memory)
	if err != nil {
		t.Fatal(err)
	}
	mustWatch(t, ctx, s, func(tenant.KeyRef) {})
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close() with an idle watcher took %v", d)
	}
	e.hub.group.Wait() // returns: the watcher ended
	if err := s.WatchDestroyed(ctx, func(tenant.KeyRef) {}); err == nil {
		t.Error("WatchDestroyed() after Close succeeded, want an error")
	}

	s, e, err = open(ctx, Memory)
	if err != nil {
		t.Fatal(err)
	}
	block, started := make(chan struct{}), make(chan struct{})
	defer close(block)
	mustWatch(t, ctx, s, func(tenant.KeyRef) { close(started); <-block })
	e.hub.notify(destroyed(tenant.KeyRef{Tenant: tenant.NewID(), Type: tenant.TypeData, Version: 1}))
	<-started
	start = time.Now()
	s.Close()
	if d := time.Since(start); d < store.CloseWait || d > store.CloseWait+5*time.Second {
		t.Errorf("Close() with a callback that never returns took %v, want about %v", d, store.CloseWait)
	}
}

// TestWatchDestroyedNotCrowdedOut: a destruction watcher that is slow to
// drain its buffer never loses a destruction to other changes (a
// revocation of hundreds of tokens): they never enter its buffer.
func TestWatchDestroyedNotCrowdedOut(t *testing.T) {
	s, e, wctx := openWatched(t)
	block, started := make(chan struct{}), make(chan struct{})
	heard := make(chan tenant.KeyRef, 8)
	first := true
	mustWatch(t, wctx, s, func(r tenant.KeyRef) {
		if first {
			first = false
			close(started)
			<-block
		}
		heard <- r
	})
	ref := func(v uint32) tenant.KeyRef {
		return tenant.KeyRef{Tenant: tenant.NewID(), Type: tenant.TypeData, Version: v}
	}
	one, two := ref(1), ref(2)
	e.hub.notify(destroyed(one))
	<-started // the watcher is in its callback; its buffer is empty
	for range 2 * watchBuffer {
		e.hub.notify(store.Change{Kind: store.TokenRevoked, Token: tenant.NewID()})
	}
	e.hub.notify(destroyed(two))
	close(block)
	if got := receive(t, heard); got != one {
		t.Fatalf("heard %+v, want %+v", got, one)
	}
	if got := receive(t, heard); got != two {
		t.Errorf("after %d other changes, heard %+v, want the destruction %+v", 2*watchBuffer, got, two)
	}
}

package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

func TestParseNote(t *testing.T) {
	id, tok := tenant.NewID(), tenant.NewID()
	key := func(v uint32) store.Change {
		return store.Change{Kind: store.KeyDestroyed, Key: tenant.KeyRef{Tenant: id, Type: tenant.TypeData, Version: v}}
	}
	series := store.Change{Kind: store.KeysChanged, Key: tenant.KeyRef{Tenant: id, Type: tenant.TypeData}}
	for payload, want := range map[string]store.Change{
		`{"kind":"key.destroyed","tenant":"` + id + `","type":"data","version":3}`:             key(3),
		`{"kind":"keys.changed","tenant":"` + id + `","type":"data"}`:                          series,
		`{"kind":"token.revoked","token":"` + tok + `"}`:                                       {Kind: store.TokenRevoked, Token: tok},
		`{"kind":"tenant.changed","tenant":"` + id + `"}`:                                      {Kind: store.TenantChanged, Tenant: id},
		`{"tenant":"` + id + `","type":"data","version":3}`:                                    {},
		`{"kind":"key.destroyed","tenant":"` + id + `","type":"data","version":0}`:             {},
		`{"kind":"key.destroyed","tenant":"` + id + `","type":"blob","version":1}`:             {},
		`{"kind":"key.destroyed","tenant":"acme","type":"data","version":1}`:                   {},
		`{"kind":"key.destroyed","tenant":"` + id + `","type":"data","version":-1}`:            {},
		`{"kind":"key.destroyed","tenant":"` + id + `","type":"data","version":4294967296}`:    {},
		`{"kind":"key.destroyed","tenant":"` + id + `","type":"data","version":1,"token":"x"}`: {},
		`{"kind":"keys.changed","tenant":"` + id + `","type":"data","version":2}`:              {},
		`{"kind":"token.revoked","token":"` + tok + `","tenant":"` + id + `"}`:                 {},
		`{"kind":"token.revoked","token":"acme"}`:                                              {},
		`{"kind":"tenant.changed","tenant":"` + id + `","type":"data"}`:                        {},
		`{"kind":"tenant.gone","tenant":"` + id + `"}`:                                         {},
		`{"kind":"tenant.changed","tenant":"` + id + `","extra":1}`:                            {},
		`{"kind":"tenant.changed","tenant":"` + id + `"} {}`:                                   {},
		id + ` data 3`: {},
		``:             {},
	} {
		c, ok := parseNote(payload)
		if ok != (want != store.Change{}) || c != want {
			t.Errorf("parseNote(%q) = %+v, %v; want %+v", payload, c, ok, want)
		}
		if ok {
			round, err := notePayload(c)
			if err != nil {
				t.Errorf("notePayload(%+v) error = %v", c, err)
			}
			if back, _ := parseNote(round); back != c {
				t.Errorf("notePayload(%+v) = %s, which parses as %+v", c, round, back)
			}
		}
	}
	if _, err := notePayload(store.Change{Kind: store.TokenRevoked, Token: "acme"}); err == nil {
		t.Error("notePayload() of an invalid change succeeded")
	}
}

// watchEnv is a store with a tenant whose data keys v1…v5 exist, and a
// watcher of it.
type watchEnv struct {
	s        *testStore
	tenantID string
	heard    chan tenant.KeyRef
}

func newWatchEnv(t *testing.T, s *testStore) *watchEnv {
	t.Helper()
	tn, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, storeTime), rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.InstallRelease(ctx, release.Installation{ID: "r1", Bundle: []byte("-----BEGIN X-----\n-----END X-----\n"), Installed: storeTime}, rec); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.Rotate(ctx, store.RotateRequest{Tenant: tn.ID, Type: tenant.TypeData, MaxKeys: 10, Now: storeTime,
			New: tenant.Key{Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2, Release: "r1", Wrapped: []byte{byte(i)}}}, rec); err != nil {
			t.Fatal(err)
		}
	}
	return &watchEnv{s: s, tenantID: tn.ID, heard: make(chan tenant.KeyRef, 10)}
}

func (e *watchEnv) watch(t *testing.T, wctx context.Context) {
	t.Helper()
	if err := e.s.WatchDestroyed(wctx, func(r tenant.KeyRef) { e.heard <- r }); err != nil {
		t.Fatalf("WatchDestroyed() error = %v", err)
	}
}

// destroy destroys version v and checks that the watcher hears of it.
func (e *watchEnv) destroy(t *testing.T, v uint32) {
	t.Helper()
	if _, err := e.s.DestroyKey(ctx, tenant.KeyRef{Tenant: e.tenantID, Type: tenant.TypeData, Version: v}, storeTime, rec); err != nil {
		t.Fatal(err)
	}
	want := tenant.KeyRef{Tenant: e.tenantID, Type: tenant.TypeData, Version: v}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case got := <-e.heard:
		if got != want {
			t.Errorf("the watcher heard of %+v, want %+v", got, want)
		}
	case <-timer.C:
		t.Fatalf("the watcher did not hear of %+v within 10 s", want)
	}
}

// listeners counts the backends of the database that are LISTENing.
func listeners(t *testing.T, s *testStore) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+NotifyChannel+`'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWatchReconnects: a watcher whose connection is killed reconnects,
// LISTENs again and hears of later destructions.
func TestWatchReconnects(t *testing.T) {
	s := open(t, storetest.Postgres(t))
	listening := make(chan struct{}, 10)
	s.watch.listening = func() { listening <- struct{}{} }
	e := newWatchEnv(t, s)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.watch(t, wctx)
	<-listening
	e.destroy(t, 1)

	for round := range 2 {
		var killed int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN `+NotifyChannel+`'`).Scan(&killed); err != nil || killed != 1 {
			t.Fatalf("round %d: terminated %d listening backends, %v, want 1", round, killed, err)
		}
		timer := time.NewTimer(20 * time.Second)
		select {
		case <-listening:
		case <-timer.C:
			t.Fatalf("round %d: the watcher did not LISTEN again within 20 s", round)
		}
		timer.Stop()
		e.destroy(t, uint32(round+2))
	}
}

// TestWatchIgnoresForeignNotes: notifications on the channel that do not
// name a key are skipped.
func TestWatchIgnoresForeignNotes(t *testing.T) {
	s := open(t, storetest.Postgres(t))
	e := newWatchEnv(t, s)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.watch(t, wctx)
	for _, p := range []string{"", "garbage", `{"kind":"key.destroyed","tenant":"acme","type":"data","version":1}`, `{"version":1}`} {
		if _, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, p); err != nil {
			t.Fatal(err)
		}
	}
	e.destroy(t, 1)
	// A destruction rolled back is not heard of.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var eng engine
	if err := eng.Announce(ctx, tx, store.Change{Kind: store.KeyDestroyed, Key: tenant.KeyRef{Tenant: e.tenantID, Type: tenant.TypeData, Version: 4}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	e.destroy(t, 2)
}

// TestCloseEndsWatchers: Close ends the watchers whose context is still
// live, closes their connections, and does not hang on a callback that
// never returns.
func TestCloseEndsWatchers(t *testing.T) {
	dsn := storetest.Postgres(t)
	s, e, _, err := openEngine(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	other := open(t, dsn)
	if err := s.WatchDestroyed(ctx, func(tenant.KeyRef) {}); err != nil {
		t.Fatal(err)
	}
	if n := listeners(t, other); n != 1 {
		t.Fatalf("%d listening backends, want 1", n)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close() with an idle watcher took %v", d)
	}
	e.watch.group.Wait() // returns: the watcher ended
	if err := s.WatchDestroyed(ctx, func(tenant.KeyRef) {}); err == nil {
		t.Error("WatchDestroyed() after Close succeeded, want an error")
	}

	s2, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	env := newWatchEnv(t, &testStore{Store: s2})
	block, started := make(chan struct{}), make(chan struct{})
	defer close(block)
	if err := s2.WatchDestroyed(ctx, func(tenant.KeyRef) { close(started); <-block }); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.DestroyKey(ctx, tenant.KeyRef{Tenant: env.tenantID, Type: tenant.TypeData, Version: 1}, storeTime, rec); err != nil {
		t.Fatal(err)
	}
	<-started
	start = time.Now()
	s2.Close()
	if d := time.Since(start); d < store.CloseWait || d > store.CloseWait+5*time.Second {
		t.Errorf("Close() with a callback that never returns took %v, want about %v", d, store.CloseWait)
	}
}

// TestWatchHeartbeat: a watcher checks a silent connection and keeps it
// while the server answers.
func TestWatchHeartbeat(t *testing.T) {
	s := open(t, storetest.Postgres(t))
	s.watch.heartbeat = 20 * time.Millisecond
	alive := make(chan struct{}, 100)
	s.watch.alive = func() {
		select {
		case alive <- struct{}{}:
		default:
		}
	}
	listening := make(chan struct{}, 10)
	s.watch.listening = func() { listening <- struct{}{} }
	e := newWatchEnv(t, s)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.watch(t, wctx)
	<-listening
	for range 3 {
		timer := time.NewTimer(10 * time.Second)
		select {
		case <-alive:
		case <-timer.C:
			t.Fatal("no heartbeat check succeeded within 10 s")
		}
		timer.Stop()
	}
	e.destroy(t, 1)
	e.destroy(t, 2)
	if len(listening) != 0 {
		t.Error("the watcher reconnected, but its connection was fine")
	}
}

// Package nodetest gives tests real regional nodes: one world
// (internal/world) per test binary — a soft primary HSM, region eu1 and two
// officers, alice and bob, with quorum 2 — whose release ceremonies run
// once per release id, and nodes (internal/node) over real stores, SQLite
// or PostgreSQL, with those releases installed and loaded, on an injected
// clock.
//
// RSA-4096 key generation is the slow part, so the world is made on first
// use and kept until Cleanup, which a test binary's TestMain calls after
// m.Run.
package nodetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/lifecycle"
	"github.com/strongroom-kms/strongroom/internal/node"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/postgres"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/world"
)

// Region is the region of the test world.
const Region = "eu1"

// T0 is the time of the test world: its keys, certificate and officers.
var T0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// A Release is one release of the test world: its id, when its plan was
// made, and its PBKDF2 count.
type Release struct {
	ID         string
	Created    time.Time
	Iterations uint32
}

// The releases of the tests: 2026-1, then 2026-2 a day later, at the least
// PBKDF2 count so that cold derivations stay cheap; bench-600k at the
// default count, for cold-derivation benchmarks.
var (
	Release1     = Release{"2026-1", T0, plan.MinIterations}
	Release2     = Release{"2026-2", T0.Add(24 * time.Hour), plan.MinIterations}
	ReleaseBench = Release{"bench-600k", T0, plan.DefaultIterations}
)

var (
	worldOnce sync.Once
	theWorld  *world.World
	worldErr  error

	bundlesMu sync.Mutex
	bundles   = map[string][]byte{} // release id → eu1 bundle
)

// World returns the test binary's world, made on first use.
func World(tb testing.TB) *world.World {
	tb.Helper()
	worldOnce.Do(func() {
		theWorld, worldErr = world.New(context.Background(), world.Options{Officers: []string{"alice", "bob"}, Quorum: 2, Now: T0})
	})
	if worldErr != nil {
		tb.Fatalf("nodetest: making the world: %v", worldErr)
	}
	return theWorld
}

// Cleanup closes the world, if it was made. TestMain calls it after m.Run.
func Cleanup() {
	if theWorld != nil {
		theWorld.Close()
	}
}

// Bundle runs the ceremony of r (once per test binary) and returns its eu1
// bundle.
func Bundle(tb testing.TB, r Release) []byte {
	tb.Helper()
	w := World(tb)
	bundlesMu.Lock()
	defer bundlesMu.Unlock()
	if b, ok := bundles[r.ID]; ok {
		return b
	}
	rel, err := w.Release(context.Background(), r.ID, world.Spec{Created: r.Created, Iterations: r.Iterations})
	if err != nil {
		tb.Fatalf("nodetest: the ceremony of %s: %v", r.ID, err)
	}
	bundles[r.ID] = rel.Bundles[Region]
	return bundles[r.ID]
}

// Clock is an injected clock that tests move by hand.
type Clock struct{ ns atomic.Int64 }

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(t.UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Policy is a rotation policy (lifecycle.Policy).
type Policy struct {
	Interval func(env, keyType string) time.Duration
	Max      int
}

// RotationInterval implements lifecycle.Policy.
func (p Policy) RotationInterval(env, keyType string) time.Duration { return p.Interval(env, keyType) }

// MaxKeys implements lifecycle.Policy.
func (p Policy) MaxKeys() int { return p.Max }

// DefaultPolicy is the product's: a configuration file that sets nothing.
func DefaultPolicy() Policy {
	c := &config.Config{}
	return Policy{Interval: c.RotationInterval, Max: config.DefaultMaxKeys}
}

// ShortPolicy rotates as often as every and keeps max keys per type.
func ShortPolicy(every time.Duration, max int) Policy {
	return Policy{Interval: func(string, string) time.Duration { return every }, Max: max}
}

// SQLite opens a SQLite store in a file of the test's.
func SQLite(tb testing.TB) *store.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(tb.TempDir(), "strongroom.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open() error = %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// PostgresDSN makes a fresh PostgreSQL database for the test
// (storetest.Postgres: it skips loudly without one, and fails under
// CI=true).
func PostgresDSN(tb testing.TB) string { tb.Helper(); return storetest.Postgres(tb) }

// Postgres opens a store on dsn: several stores on one database are
// several KMS nodes.
func Postgres(tb testing.TB, dsn string) *store.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("postgres.Open() error = %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Node is a test node and its clock and policy.
type Node struct {
	*node.Node
	Clock  *Clock
	Policy lifecycle.Policy

	cacheOnly cacheonly.Options
}

// Options change a test node.
type Options struct {
	// Releases are installed in the store (if they are not yet) and loaded;
	// nil means none.
	Releases []Release
	// Policy is the rotation policy; nil means DefaultPolicy.
	Policy lifecycle.Policy
	// Clock is the node's clock; nil means a new one at T0.
	Clock *Clock
	// CacheOnly sets cache-only keys' max age and fetcher (their Now is
	// the node's clock).
	CacheOnly cacheonly.Options
}

// New makes a node over st on the test world's region; tb's cleanup closes
// its cache. Releases the store has installed already are loaded too.
func New(tb testing.TB, st node.Store, o Options) *Node {
	tb.Helper()
	if o.Policy == nil {
		o.Policy = DefaultPolicy()
	}
	if o.Clock == nil {
		o.Clock = NewClock(T0)
	}
	w := World(tb)
	n := &Node{Clock: o.Clock, Policy: o.Policy, cacheOnly: o.CacheOnly}
	var err error
	n.Node, err = node.New(node.Options{HSM: w.Regions[Region].HSM, Store: st, Trust: w.Trust(Region), Policy: o.Policy,
		Cache: keycache.Options{TTL: 24 * 365 * time.Hour}, CacheOnly: o.CacheOnly, Now: o.Clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Close)
	for _, r := range o.Releases {
		n.Install(tb, r)
	}
	if err := n.LoadReleases(context.Background(), nil); err != nil {
		tb.Fatal(err)
	}
	return n
}

// Peer is another node over st (a store on the same database as n's, or
// n's), with n's clock and policy, its own key cache, and a ring with the
// releases the store has installed.
func (n *Node) Peer(tb testing.TB, st node.Store) *Node {
	tb.Helper()
	return New(tb, st, Options{Policy: n.Policy, Clock: n.Clock, CacheOnly: n.cacheOnly})
}

// Install runs (once) the ceremony of r, installs its bundle in the store
// and loads it into the ring.
func (n *Node) Install(tb testing.TB, r Release) {
	tb.Helper()
	rec := Rec("")
	if _, _, err := n.Releases.Install(context.Background(), rec, Bundle(tb, r)); err != nil {
		tb.Fatalf("installing release %s: %v", r.ID, err)
	}
}

var tenantSeq atomic.Int64

// Tenant creates a tenant in environment env, named uniquely.
func (n *Node) Tenant(tb testing.TB, env tenant.Environment) tenant.Tenant {
	tb.Helper()
	name := fmt.Sprintf("t%d-%s", tenantSeq.Add(1), env)
	t, err := n.Tenants.Create(context.Background(), Rec(""), name, env)
	if err != nil {
		tb.Fatalf("creating tenant %s: %v", name, err)
	}
	return t
}

// Generate makes a new key of type typ for the tenant, or fails the test.
func (n *Node) Generate(tb testing.TB, tenantID, typ string) tenant.Key {
	tb.Helper()
	k, err := n.Keys.Generate(context.Background(), Rec(tenantID), tenantID, typ)
	if err != nil {
		tb.Fatalf("Generate(%s) error = %v", typ, err)
	}
	return k
}

// Rec is a fresh audit entry of a test's request, by an operator, about
// tenantID (or none).
func Rec(tenantID string) *audit.Entry {
	return &audit.Entry{Time: time.Now(), Actor: tenant.NewID(), Role: "operator", Tenant: tenantID,
		Action: "test.request", Request: tenant.NewID()[:16]}
}

// Engines opens a fresh store of each engine: SQLite in a file, and
// PostgreSQL (PostgresDSN: skipped loudly without one, required under
// CI=true).
func Engines() map[string]func(testing.TB) *store.Store {
	return map[string]func(testing.TB) *store.Store{
		"sqlite":   SQLite,
		"postgres": func(tb testing.TB) *store.Store { return Postgres(tb, PostgresDSN(tb)) },
	}
}

// SharedStores opens, for each engine, the stores of two nodes sharing one
// database: SQLite's is one store twice (the nodes of one process: SQLite
// serves one node per region), PostgreSQL's two stores on one fresh
// database (two processes).
func SharedStores() map[string]func(testing.TB) (a, b *store.Store) {
	return map[string]func(testing.TB) (*store.Store, *store.Store){
		"sqlite": func(tb testing.TB) (*store.Store, *store.Store) { s := SQLite(tb); return s, s },
		"postgres": func(tb testing.TB) (*store.Store, *store.Store) {
			dsn := PostgresDSN(tb)
			return Postgres(tb, dsn), Postgres(tb, dsn)
		},
	}
}

// WantErr fails the test unless errors.Is(err, want).
func WantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s error = %v, want %v", what, err, want)
	}
}

// CheckStates checks the states of a tenant's keys of typ, by version.
func (n *Node) CheckStates(t *testing.T, tenantID, typ string, want ...tenant.KeyState) {
	t.Helper()
	ks, err := n.Keys.Keys(context.Background(), tenantID, typ)
	if err != nil {
		t.Fatalf("Keys() error = %v", err)
	}
	var got []tenant.KeyState
	for i, k := range ks {
		got = append(got, k.State)
		if k.Version != uint32(i+1) {
			t.Errorf("Keys()[%d].Version = %d, want %d", i, k.Version, i+1)
		}
		if k.Wrapped != nil || k.Fingerprint != nil {
			t.Errorf("Keys()[%d] has key material", i)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Keys() states = %v, want %v", got, want)
	}
}

// Main runs a test binary's tests and then Cleanup: a package whose tests
// use nodetest calls it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

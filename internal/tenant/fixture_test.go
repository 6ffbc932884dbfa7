package tenant_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/ceremony"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/postgres"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The fixture is real: a soft primary HSM, a soft regional HSM for eu1
// enrolled with it, two crypto officers, and real ceremonies whose eu1
// bundles the tests load into a release.Ring. RSA-4096 key generation is
// slow, so the site is made once per package (lazily, on first use) and
// its releases once per id.

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

var (
	siteOnce sync.Once
	theSite  *site
	siteErr  error
	siteDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theSite != nil {
		theSite.primary.Close()
		theSite.eu1.Close()
	}
	if siteDir != "" {
		os.RemoveAll(siteDir)
	}
	os.Exit(code)
}

type site struct {
	primary, eu1 hsm.HSM
	pub          *enroll.Primary
	cert         *enroll.Certificate
	officers     []*officer.Signer

	mu       sync.Mutex
	releases map[string][]byte // release id → eu1 bundle
}

func getSite(tb testing.TB) *site {
	tb.Helper()
	siteOnce.Do(func() { theSite, siteErr = newSite() })
	if siteErr != nil {
		tb.Fatalf("test site: %v", siteErr)
	}
	return theSite
}

func newSite() (*site, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "strongroom-tenant-test")
	if err != nil {
		return nil, err
	}
	siteDir = dir
	s := &site{releases: map[string][]byte{}}
	if s.primary, err = soft.Open(ctx, filepath.Join(dir, "primary"), []byte("tenant test"), soft.Options{Create: true}); err != nil {
		return nil, err
	}
	if s.eu1, err = soft.Open(ctx, filepath.Join(dir, "eu1"), []byte("tenant test"), soft.Options{Create: true}); err != nil {
		return nil, err
	}
	pubPEM, err := enroll.InitPrimary(ctx, s.primary, t0)
	if err != nil {
		return nil, err
	}
	if s.pub, err = enroll.ParsePrimary(pubPEM); err != nil {
		return nil, err
	}
	reqPEM, err := enroll.InitRegion(ctx, s.eu1, "eu1", t0)
	if err != nil {
		return nil, err
	}
	req, err := enroll.ParseRequest(reqPEM)
	if err != nil {
		return nil, err
	}
	signer, err := s.primary.SigningKey(ctx, enroll.LabelPrimarySigning)
	if err != nil {
		return nil, err
	}
	if _, s.cert, err = enroll.Certify(ctx, signer, req, enroll.CertifyOptions{Now: t0}); err != nil {
		return nil, err
	}
	for _, n := range []string{"alice", "bob"} {
		key, _, err := officer.New(n, []byte("pass"), t0)
		if err != nil {
			return nil, err
		}
		o, err := officer.Open(key, []byte("pass"))
		if err != nil {
			return nil, err
		}
		s.officers = append(s.officers, o)
	}
	return s, nil
}

func (s *site) trust() release.Trust { return release.Trust{Primary: s.pub, Region: "eu1"} }

// bundle runs the ceremony of release id (once per package) and returns its
// eu1 bundle.
func (s *site) bundle(tb testing.TB, id string, created time.Time, iterations uint32) []byte {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.releases[id]; ok {
		return b
	}
	pl, err := plan.New(plan.Plan{Kind: plan.Release, Release: id, Created: created, Iterations: iterations,
		Primary: s.pub.SigningKeyID(), Regions: []*enroll.Certificate{s.cert},
		Officers: []*officer.Public{s.officers[0].Public(), s.officers[1].Public()}, Quorum: 2})
	if err != nil {
		tb.Fatal(err)
	}
	var approvals []plan.NamedApproval
	for _, o := range s.officers {
		approvals = append(approvals, plan.NamedApproval{Source: o.Public().Name, Data: plan.Approve(o, pl, created)})
	}
	out, err := ceremony.Run(context.Background(), s.primary, ceremony.Inputs{Plan: pl.Marshal(), Approvals: approvals},
		func() time.Time { return created })
	if err != nil {
		tb.Fatalf("ceremony.Run(%s) error = %v", id, err)
	}
	b := out.Files[release.FileName(id, "eu1")]
	s.releases[id] = b
	return b
}

// The releases of the tests: 2026-1, then 2026-2 a day later, at the least
// PBKDF2 count so that cold derivations stay cheap; bench-600k at the
// default count, for the cold-derivation benchmark.
type rel struct {
	id         string
	created    time.Time
	iterations uint32
}

var (
	rel1     = rel{"2026-1", t0, plan.MinIterations}
	rel2     = rel{"2026-2", t0.Add(24 * time.Hour), plan.MinIterations}
	relBench = rel{"bench-600k", t0, plan.DefaultIterations}
)

// clock is an injected clock that tests move by hand.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }

// policy is a tenant.Policy. The product's defaults come from config: a
// *config.Config's RotationInterval plus the max_keys setting.
type policy struct {
	interval func(env, keyType string) time.Duration
	max      int
}

func (p policy) RotationInterval(env, keyType string) time.Duration { return p.interval(env, keyType) }
func (p policy) MaxKeys() int                                       { return p.max }

// defaultPolicy is the product's: a configuration file that sets nothing.
func defaultPolicy() tenant.Policy {
	c := &config.Config{}
	return policy{interval: c.RotationInterval, max: config.DefaultMaxKeys}
}

// shortPolicy rotates as often as asked.
func shortPolicy(every time.Duration, max int) tenant.Policy {
	return policy{interval: func(string, string) time.Duration { return every }, max: max}
}

// env is one regional node: a store, a key cache, a ring with releases
// loaded (and installed in the store), and the Service.
type env struct {
	st    store.Store
	cache *keycache.Cache
	ring  *release.Ring
	clock *clock
	svc   *tenant.Service
	site  *site
	pol   tenant.Policy
}

// openSQLite opens a SQLite store in a file, as internal/store/sqlite's
// tests do.
func openSQLite(tb testing.TB) store.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(tb.TempDir(), "strongroom.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open() error = %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// openPostgres opens a fresh PostgreSQL database (storetest.Postgres skips
// loudly without one, and fails under CI=true).
func openPostgres(tb testing.TB) store.Store {
	tb.Helper()
	return openPostgresDSN(tb, storetest.Postgres(tb))
}

// openPostgresDSN opens a PostgreSQL store on dsn: several handles on one
// database are several KMS nodes.
func openPostgresDSN(tb testing.TB, dsn string) store.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("postgres.Open() error = %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func newEnv(tb testing.TB, st store.Store, pol tenant.Policy, rels ...rel) *env {
	tb.Helper()
	s := getSite(tb)
	e := &env{st: st, clock: newClock(t0), site: s, pol: pol}
	e.cache = keycache.New(keycache.Options{Now: e.clock.Now, TTL: 24 * 365 * time.Hour})
	tb.Cleanup(func() { e.cache.Close() })
	e.ring = release.NewRing(s.eu1, s.trust(), e.cache)
	for _, r := range rels {
		e.load(tb, r)
	}
	e.svc = tenant.NewService(st, e.ring, s.eu1, e.cache, pol, e.clock.Now)
	return e
}

// node returns another KMS node's Service over the same store and clock:
// its own key cache, and a ring with the releases the store has installed.
func (e *env) node(tb testing.TB) *tenant.Service { return e.nodeOn(tb, e.st).svc }

// nodeOn is another KMS node over st (a store on the same database as
// e.st), with e's clock and policy, its own key cache, and a ring with the
// releases the store has installed.
func (e *env) nodeOn(tb testing.TB, st store.Store) *env {
	tb.Helper()
	n := &env{st: st, clock: e.clock, site: e.site, pol: e.pol}
	n.cache = keycache.New(keycache.Options{Now: e.clock.Now, TTL: 24 * 365 * time.Hour})
	tb.Cleanup(n.cache.Close)
	n.ring = release.NewRing(e.site.eu1, e.site.trust(), n.cache)
	rs, err := st.Releases(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range rs {
		if _, err := n.ring.Load(context.Background(), r.ID, r.Bundle); err != nil {
			tb.Fatal(err)
		}
	}
	n.svc = tenant.NewService(st, n.ring, e.site.eu1, n.cache, e.pol, e.clock.Now)
	return n
}

// load runs (once) the ceremony of r, installs the bundle in the store and
// loads it into the ring.
func (e *env) load(tb testing.TB, r rel) {
	tb.Helper()
	ctx := context.Background()
	b := e.site.bundle(tb, r.id, r.created, r.iterations)
	if _, err := e.st.InstallRelease(ctx, store.Release{ID: r.id, Bundle: b, Installed: e.clock.Now()}); err != nil {
		tb.Fatalf("InstallRelease(%s) error = %v", r.id, err)
	}
	if _, err := e.ring.Load(ctx, r.id+".eu1.bundle", b); err != nil {
		tb.Fatalf("Ring.Load(%s) error = %v", r.id, err)
	}
}

var tenantSeq atomic.Int64

// tenant creates a tenant in environment env.
func (e *env) tenant(tb testing.TB, env store.Environment) store.Tenant {
	tb.Helper()
	name := fmt.Sprintf("t%d-%s", tenantSeq.Add(1), env)
	tn, err := e.st.CreateTenant(context.Background(), store.NewTenant(name, env, e.clock.Now()))
	if err != nil {
		tb.Fatalf("CreateTenant(%s) error = %v", name, err)
	}
	return tn
}

func (e *env) generate(tb testing.TB, tenantID, typ string) store.Key {
	tb.Helper()
	k, err := e.svc.Generate(context.Background(), tenantID, typ)
	if err != nil {
		tb.Fatalf("Generate(%s) error = %v", typ, err)
	}
	return k
}

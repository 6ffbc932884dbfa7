// Package apitest builds real API servers for tests: soft primary and
// regional HSMs, a real release ceremony and its bundle, a SQLite store, the
// release ring, the key cache and the tenant Service, behind
// httpapi.NewHandler.
//
// The HSMs and bundles (RSA-4096 key generation, the slow part) are made
// once per test binary (Shared); each NewServer has its own store, ring and
// cache.
package apitest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/ceremony"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Region is the region of the test site.
const Region = "eu1"

// The releases Shared makes, oldest first, and when.
var (
	Release1 = "2026-1"
	Release2 = "2026-2"
	T0       = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
)

// Site is a primary and one enrolled region, with release bundles for it.
type Site struct {
	dir     string
	Primary hsm.HSM
	Region  hsm.HSM
	Pub     *enroll.Primary
	Cert    *enroll.Certificate
	// Bundles are Region's bundles (PEM), by release id.
	Bundles map[string][]byte
}

var (
	sharedOnce sync.Once
	shared     *Site
	sharedErr  error
)

// Shared returns the test binary's site, made on first use. Call Cleanup
// from TestMain after m.Run.
func Shared() (*Site, error) {
	sharedOnce.Do(func() { shared, sharedErr = newSite() })
	return shared, sharedErr
}

// Cleanup closes the shared site's HSMs and removes its files.
func Cleanup() {
	if shared != nil {
		shared.Primary.Close()
		shared.Region.Close()
		os.RemoveAll(shared.dir)
	}
}

func newSite() (*Site, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "strongroom-apitest-")
	if err != nil {
		return nil, err
	}
	open := func(name string) (hsm.HSM, error) {
		return soft.Open(ctx, filepath.Join(dir, name), []byte("apitest"), soft.Options{Create: true})
	}
	s := &Site{dir: dir, Bundles: map[string][]byte{}}
	if s.Primary, err = open("primary"); err != nil {
		return nil, err
	}
	if s.Region, err = open(Region); err != nil {
		return nil, err
	}
	pubPEM, err := enroll.InitPrimary(ctx, s.Primary, T0)
	if err != nil {
		return nil, err
	}
	if s.Pub, err = enroll.ParsePrimary(pubPEM); err != nil {
		return nil, err
	}
	reqPEM, err := enroll.InitRegion(ctx, s.Region, Region, T0)
	if err != nil {
		return nil, err
	}
	req, err := enroll.ParseRequest(reqPEM)
	if err != nil {
		return nil, err
	}
	signer, err := s.Primary.SigningKey(ctx, enroll.LabelPrimarySigning)
	if err != nil {
		return nil, err
	}
	if _, s.Cert, err = enroll.Certify(ctx, signer, req, enroll.CertifyOptions{Now: T0}); err != nil {
		return nil, err
	}
	var officers []*officer.Signer
	for _, n := range []string{"alice", "bob"} {
		key, _, err := officer.New(n, []byte("pass"), T0)
		if err != nil {
			return nil, err
		}
		o, err := officer.Open(key, []byte("pass"))
		if err != nil {
			return nil, err
		}
		officers = append(officers, o)
	}
	for i, id := range []string{Release1, Release2} {
		at := T0.Add(time.Duration(i) * time.Hour)
		pl, err := plan.New(plan.Plan{Kind: plan.Release, Release: id, Created: at, Iterations: plan.MinIterations,
			Primary: s.Pub.SigningKeyID(), Regions: []*enroll.Certificate{s.Cert},
			Officers: []*officer.Public{officers[0].Public(), officers[1].Public()}, Quorum: 2})
		if err != nil {
			return nil, err
		}
		var approvals []plan.NamedApproval
		for _, o := range officers {
			approvals = append(approvals, plan.NamedApproval{Source: o.Public().Name, Data: plan.Approve(o, pl, at)})
		}
		out, err := ceremony.Run(ctx, s.Primary, ceremony.Inputs{Plan: pl.Marshal(), Approvals: approvals},
			func() time.Time { return at })
		if err != nil {
			return nil, fmt.Errorf("ceremony %s: %w", id, err)
		}
		b, ok := out.Files[release.FileName(id, Region)]
		if !ok {
			return nil, errors.New("the ceremony made no bundle for " + Region)
		}
		s.Bundles[id] = b
	}
	return s, nil
}

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// policy is the configuration's default rotation policy.
type policy struct{}

func (policy) RotationInterval(env, keyType string) time.Duration {
	return config.DefaultRotation(env, keyType)
}
func (policy) MaxKeys() int { return config.DefaultMaxKeys }

// Options change a Server.
type Options struct {
	// Releases are installed (stored and loaded) before the server starts;
	// nil means Release1.
	Releases []string
	Limits   config.Limits
	Logger   *slog.Logger
	// Wrap, if set, wraps the tenant Service the handler uses.
	Wrap func(httpapi.Keys) httpapi.Keys
}

// Server is one API server over its own store, ring and cache.
type Server struct {
	Site    *Site
	Handler http.Handler
	Deps    httpapi.Deps
	Store   store.Store
	Ring    *release.Ring
	Cache   *keycache.Cache
	Keys    *tenant.Service
	Clock   *Clock
	// Operator is an operator token's secret.
	Operator string
}

// NewServer makes a server on the shared site; tb's cleanup closes it.
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	site, err := Shared()
	if err != nil {
		tb.Fatalf("apitest: making the site: %v", err)
	}
	ctx := context.Background()
	st, err := sqlite.OpenPath(ctx, filepath.Join(tb.TempDir(), "store.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	cache := keycache.New(keycache.Options{})
	tb.Cleanup(cache.Close)
	clock := NewClock(T0.Add(24 * time.Hour))
	ring := release.NewRing(site.Region, release.Trust{Primary: site.Pub, Region: Region}, cache)
	rels := opts.Releases
	if rels == nil {
		rels = []string{Release1}
	}
	for _, id := range rels {
		if _, err := ring.Load(ctx, id, site.Bundles[id]); err != nil {
			tb.Fatal(err)
		}
		if _, err := st.InstallRelease(ctx, store.Release{ID: id, Bundle: site.Bundles[id], Installed: clock.Now()}); err != nil {
			tb.Fatal(err)
		}
	}
	svc := tenant.NewService(st, ring, site.Region, cache, policy{}, clock.Now)
	var keys httpapi.Keys = svc
	if opts.Wrap != nil {
		keys = opts.Wrap(svc)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := httpapi.Deps{Store: st, Ring: ring, Keys: keys, Region: Region, Limits: opts.Limits, Logger: logger, Now: clock.Now}
	s := &Server{Site: site, Handler: httpapi.NewHandler(d), Deps: d, Store: st, Ring: ring, Cache: cache, Keys: svc, Clock: clock}
	s.Operator = s.Token(tb, api.RoleOperator, "")
	return s
}

// Token stores a token of role for tenant (a tenant's name, or "") and
// returns its secret.
func (s *Server) Token(tb testing.TB, role, tenantName string) string {
	tb.Helper()
	ctx := context.Background()
	var id string
	if tenantName != "" {
		t, err := s.Store.TenantByName(ctx, tenantName)
		if err != nil {
			tb.Fatal(err)
		}
		id = t.ID
	}
	secret, tok, err := auth.New(role, id, "apitest "+role, time.Time{})
	if err != nil {
		tb.Fatal(err)
	}
	tok.Created = s.Clock.Now()
	if _, err := s.Store.CreateToken(ctx, tok); err != nil {
		tb.Fatal(err)
	}
	return secret
}

// Tenant creates a production tenant.
func (s *Server) Tenant(tb testing.TB, name string) store.Tenant {
	tb.Helper()
	t, err := s.Store.CreateTenant(context.Background(), store.NewTenant(name, store.EnvProduction, s.Clock.Now()))
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

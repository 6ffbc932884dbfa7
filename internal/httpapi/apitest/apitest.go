// Package apitest builds real API servers for tests: a real regional node
// (internal/node/nodetest: soft primary and regional HSMs, real release
// ceremonies and their bundles, a SQLite store, the release ring, the key
// cache and the services) behind httpapi.NewHandler.
//
// The HSMs and bundles (RSA-4096 key generation, the slow part) are made
// once per test binary (Shared); each NewServer has its own store, ring and
// cache.
package apitest

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Region is the region of the test site.
const Region = nodetest.Region

// The releases the servers install, oldest first, and T0, the time of the
// test world.
var (
	Release1 = nodetest.Release1.ID
	Release2 = nodetest.Release2.ID
	T0       = nodetest.T0
)

// Site is what the test binary's world (nodetest) gives the servers: the
// region's release bundles.
type Site struct {
	// Bundles are Region's bundles (PEM), by release id.
	Bundles map[string][]byte
}

var (
	sharedOnce sync.Once
	shared     *Site
)

// Shared returns the test binary's site, made on first use. Call Cleanup
// from TestMain after m.Run.
func Shared(tb testing.TB) *Site {
	tb.Helper()
	sharedOnce.Do(func() {
		shared = &Site{Bundles: map[string][]byte{}}
		for _, r := range []nodetest.Release{nodetest.Release1, nodetest.Release2} {
			shared.Bundles[r.ID] = nodetest.Bundle(tb, r)
		}
	})
	if shared == nil {
		tb.Fatal("apitest: the shared site could not be made")
	}
	return shared
}

// Cleanup closes the shared site's HSMs and removes its files.
func Cleanup() { nodetest.Cleanup() }

// Options change a Server.
type Options struct {
	// Releases are installed (stored and loaded) before the server starts;
	// nil means Release1.
	Releases []string
	Limits   config.Limits
	Logger   *slog.Logger
	// Wrap, if set, may replace services of the handler's dependencies
	// (to inject faults).
	Wrap func(*httpapi.Deps)
}

// Server is one API server over its own store, ring and cache.
type Server struct {
	Site    *Site
	Handler http.Handler
	Deps    httpapi.Deps
	Node    *nodetest.Node
	Store   *store.Store
	Clock   *nodetest.Clock
	// Operator is an operator token's secret.
	Operator string
}

// NewServer makes a server on the shared site; tb's cleanup closes it.
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	site := Shared(tb)
	st := nodetest.SQLite(tb)
	clock := nodetest.NewClock(T0.Add(24 * time.Hour))
	rels := opts.Releases
	if rels == nil {
		rels = []string{Release1}
	}
	var install []nodetest.Release
	for _, id := range rels {
		for _, r := range []nodetest.Release{nodetest.Release1, nodetest.Release2} {
			if r.ID == id {
				install = append(install, r)
			}
		}
	}
	n := nodetest.New(tb, st, nodetest.Options{Releases: install, Clock: clock})
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := n.API(opts.Limits, logger)
	if opts.Wrap != nil {
		opts.Wrap(&d)
	}
	s := &Server{Site: site, Handler: httpapi.NewHandler(d), Deps: d, Node: n, Store: st, Clock: clock}
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
	secret, _, err := s.Node.Tokens.Create(ctx, nodetest.Rec(id), auth.Identity{}, role, id, "apitest "+role, time.Time{})
	if err != nil {
		tb.Fatal(err)
	}
	return secret
}

// Tenant creates a production tenant.
func (s *Server) Tenant(tb testing.TB, name string) tenant.Tenant {
	tb.Helper()
	t, err := s.Node.Tenants.Create(context.Background(), nodetest.Rec(""), name, tenant.EnvProduction)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// Package node assembles a regional KMS node from its parts: over one
// regional HSM and one store, the node's key cache, its release ring and
// the services that act on them ([Node]). It holds no logic of its own:
// cmd/strongroom (server and dev), the API's tests and the services' tests
// build a node the same way, and hand its services to the HTTP API
// (internal/httpapi) as the narrow interfaces each handler uses.
//
// A request's way through a node, for a newcomer: internal/httpapi
// authenticates it (auth.Tokens), resolves its tenant (directory), decides
// access from the route table and calls one service — lifecycle (keys),
// dataplane (encrypt, decrypt, DEK delivery), byok (upload certificates,
// uploads, backups), cacheonly (tenants' key services), release.Installer or auditlog — which reads and
// writes internal/store through the small interface it declares, and asks
// the regional HSM (internal/hsm) or the release ring (internal/release)
// for key material.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/byok"
	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/dataplane"
	"github.com/strongroom-kms/strongroom/internal/directory"
	"github.com/strongroom-kms/strongroom/internal/exportkey"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/lifecycle"
	"github.com/strongroom-kms/strongroom/internal/metrics"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/rowcache"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Store is what the node's services keep their state in: the union of the
// small interfaces each declares (*store.Store implements it). Tests wrap a
// real store to interleave calls.
type Store interface {
	directory.Store
	auth.Store
	release.Installations
	exportkey.Store
	dataplane.Store
	lifecycle.Store
	byok.Store
	cacheonly.Store
	auditlog.Store
	keyusage.Store
	httpapi.Pinger
	rowcache.Watcher
}

var _ Store = (*store.Store)(nil)

// Options are a node's parts and settings.
type Options struct {
	// HSM is the regional HSM, opened; Store the region's store. The node
	// uses them and does not close them.
	HSM   hsm.HSM
	Store Store
	// Trust is what the node accepts release bundles from.
	Trust release.Trust
	// Policy is the rotation policy.
	Policy lifecycle.Policy
	// Cache sizes the key cache (zero fields: keycache's defaults).
	Cache keycache.Options
	// Rows sizes the cache of token, tenant and key rows (zero fields:
	// rowcache's defaults; the node's clock).
	Rows rowcache.Options
	// CacheOnly sets cache-only keys' max age and fetcher (zero fields:
	// cacheonly's defaults; the node's clock).
	CacheOnly cacheonly.Options
	// Metrics are the node's metrics (nil: new ones); New watches the key
	// cache and the readiness in them. To time the HSM and the store, give
	// HSM and Store wrapped by them (Metrics.HSM, Metrics.Store).
	Metrics *metrics.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Node is a regional node's parts: the key cache, the release ring, and
// the services over them.
type Node struct {
	Store Store
	Cache *keycache.Cache
	// Rows are the node's copies of the token, tenant and key rows that
	// every request reads (authentication, the tenant, the key).
	Rows       *rowcache.Cache
	Ring       *release.Ring
	Releases   *release.Installer
	Tenants    *directory.Directory
	Tokens     *auth.Tokens
	ExportKeys *exportkey.Service
	Data       *dataplane.Service
	Keys       *lifecycle.Service
	BYOK       *byok.Service
	CacheOnly  *cacheonly.Service
	Usage      *keyusage.Service
	Audit      *auditlog.Log
	// Aggregate counts the data plane for the audit log; the checkpointer
	// flushes it.
	Aggregate *auditlog.Aggregate
	// Metrics are the node's metrics, which its API serves.
	Metrics *metrics.Metrics
	region  string
	now     func() time.Time
	stop    context.CancelFunc // ends the row cache's watch
}

// New assembles a node. Its ring is empty: LoadReleases loads the
// installed releases. It starts watching the store's changes for the row
// cache (Store.WatchChanges), until Close: an error means the store is
// closed or cannot be watched.
func New(o Options) (*Node, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Cache.Now == nil {
		o.Cache.Now = o.Now
	}
	if o.Rows.Now == nil {
		o.Rows.Now = o.Now
	}
	n := &Node{Store: o.Store, Cache: keycache.New(o.Cache), Rows: rowcache.New(o.Store, o.Rows), region: o.Trust.Region, now: o.Now}
	var ctx context.Context
	ctx, n.stop = context.WithCancel(context.Background())
	if err := n.Rows.Watch(ctx, o.Store); err != nil {
		n.stop()
		n.Cache.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	// The request path reads tokens, tenants and keys from the row cache;
	// the lifecycle and the other services read the store itself.
	hot := hotStore{Store: o.Store, rows: n.Rows}
	n.Ring = release.NewRing(o.HSM, o.Trust, n.Cache)
	n.Releases = release.NewInstaller(n.Ring, o.Store, o.Now)
	n.Tenants = directory.New(hot, o.Now)
	n.Tokens = auth.NewTokens(hot, o.Now)
	n.ExportKeys = exportkey.New(o.Store, n.Ring, o.HSM, n.Cache, o.Now)
	n.Data = dataplane.New(o.Store, n.Ring, n.Cache, o.Now)
	n.Data.SetRows(n.Rows)
	n.Keys = lifecycle.New(o.Store, n.Ring, o.HSM, n.ExportKeys, n.Data, o.Policy, o.Now)
	n.BYOK = byok.New(o.Store, n.Ring, o.HSM, n.Keys, n.ExportKeys, o.Policy, o.Now)
	if o.CacheOnly.Now == nil {
		o.CacheOnly.Now = o.Now
	}
	n.CacheOnly = cacheonly.New(o.Store, o.HSM, n.Ring, n.Keys, o.Policy, o.CacheOnly)
	n.Data.SetCacheOnly(n.CacheOnly)
	n.Usage = keyusage.New(o.Store, o.Now)
	n.Audit = auditlog.New(o.Store, o.Trust.Region)
	n.Aggregate = &auditlog.Aggregate{Now: o.Now}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	n.Metrics = o.Metrics
	n.Metrics.WatchCache(n.Cache.Stats)
	n.Metrics.WatchRows(n.Rows.Stats)
	n.Metrics.WatchReadiness(n.readiness)
	return n, nil
}

// hotStore is the store as authentication and the tenant directory read
// it: tokens and tenants from the node's row cache, everything else from
// the store.
type hotStore struct {
	Store
	rows *rowcache.Cache
}

func (h hotStore) TokenByHash(ctx context.Context, hash [32]byte) (auth.Token, bool, error) {
	return h.rows.TokenByHash(ctx, hash)
}

func (h hotStore) TenantByName(ctx context.Context, name string) (tenant.Tenant, error) {
	return h.rows.TenantByName(ctx, name)
}

func (h hotStore) TenantByID(ctx context.Context, id string) (tenant.Tenant, error) {
	return h.rows.TenantByID(ctx, id)
}

// TouchToken records a token's use, and tells the row cache, whose copy
// would otherwise ask for the write again.
func (h hotStore) TouchToken(ctx context.Context, id string, at time.Time) error {
	if err := h.Store.TouchToken(ctx, id, at); err != nil {
		return err
	}
	h.rows.Touched(id, at)
	return nil
}

// readiness counts what GET /v1/ready counts: the releases loaded, and the
// problems (the ring's, and the store not answering).
func (n *Node) readiness(ctx context.Context) metrics.Readiness {
	r := metrics.Readiness{Releases: len(n.Ring.Releases()), Problems: len(n.Ring.Problems())}
	if n.Store.Ping(ctx) != nil {
		r.Problems++
	}
	return r
}

// LoadReleases loads every installed release into the ring (S7); report,
// if not nil, hears of each one's outcome. A release that fails keeps the
// node not ready.
func (n *Node) LoadReleases(ctx context.Context, report func(id string, m release.Meta, err error)) error {
	return n.Releases.LoadAll(ctx, report)
}

// API returns the HTTP API's dependencies: the node's services.
func (n *Node) API(limits config.Limits, logger *slog.Logger) httpapi.Deps {
	return httpapi.Deps{
		Tenants: n.Tenants, Tokens: n.Tokens, Releases: n.Releases, Ring: n.Ring,
		Keys: n.Keys, Data: n.Data, BYOK: n.BYOK, KeyServices: n.CacheOnly, Usage: n.Usage, Audit: n.Audit, Aggregate: n.Aggregate, Health: n.Store,
		Region: n.region, Limits: limits, Logger: logger, Metrics: n.Metrics, Now: n.now,
	}
}

// Handler is httpapi.NewHandler(n.API(limits, logger)).
func (n *Node) Handler(limits config.Limits, logger *slog.Logger) http.Handler {
	return httpapi.NewHandler(n.API(limits, logger))
}

// Close drops the key cache (its sealed secrets) and ends the row cache's
// watch. The HSM and the store are the caller's to close.
func (n *Node) Close() {
	n.stop()
	n.Cache.Close()
}

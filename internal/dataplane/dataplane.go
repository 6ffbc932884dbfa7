// Package dataplane is the data plane of a regional node: encrypting and
// decrypting for tenants' applications (S13) and delivering DEKs sealed
// with HPKE to clients that encrypt locally.
//
// A DEK is never stored. It is made on demand from the tenant secret that a
// key version wraps ([tenant.Unwrap] under the TWK of the release the key
// names) — derived with PBKDF2 from that release's KDF seed and salt
// (internal/derive, S1) or, in derivation mode none, the secret itself — and
// cached sealed in the node's key cache (internal/keycache) as
// dek/<tenant>/<type>/<version>, so a cold DEK costs one PBKDF2 run and
// concurrent misses share it. Every request reads the key's row first —
// from the node's row cache (internal/rowcache, [Service.SetRows]), which
// drops it as soon as the key changes on this node and within
// milliseconds on another (or, if that notification is lost, within its
// 5 s MaxAge) — so a destroyed key is refused on every node within that
// bound, its DEK cached or not; cached DEKs are evicted on destruction
// ([Service.Evict], [Service.EvictDestroyed]). The DEK's loader, and the
// check after a load, read the store itself: a DEK is never made from a
// key whose destruction committed before the load began.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Store is what the data plane reads (internal/store.Store): keys, and the
// destructions of keys; it appends the audit entries of DEK loads.
type Store interface {
	TenantByID(ctx context.Context, id string) (tenant.Tenant, error)
	Key(ctx context.Context, ref tenant.KeyRef) (tenant.Key, error)
	ActiveKey(ctx context.Context, tenantID, typ string) (tenant.Key, error)
	AppendAudit(ctx context.Context, entries ...audit.Entry) ([]audit.Entry, error)
	WatchDestroyed(ctx context.Context, fn func(tenant.KeyRef)) error
	DestroyedSince(ctx context.Context, since time.Time) ([]tenant.Key, error)
	RevokedSince(ctx context.Context, since time.Time) ([]tenant.KeyRef, error)
}

// CacheOnly gives the tenant secrets of cache-only keys, fetched from the
// tenants' key services (*cacheonly.Service).
type CacheOnly interface {
	// Secret fetches the tenant secret of a cache-only key.
	Secret(ctx context.Context, rec *audit.Entry, k tenant.Key) (secret.Key, error)
	// MaxAge bounds how long a cache-only key's DEK stays cached.
	MaxAge() time.Duration
	// Pending lists the keys whose retry is due.
	Pending() []tenant.KeyRef
	// Forget drops what the node knows of a destroyed key.
	Forget(ref tenant.KeyRef)
}

// Releases are the opened releases whose secrets unwrap tenant secrets and
// derive DEKs (*release.Ring).
type Releases interface {
	Meta(id string) (release.Meta, error)
	Secret(ctx context.Context, releaseID, name string) (secret.Key, error)
}

// Rows are where the data plane reads key rows on the request path: the
// node's copies of them (*rowcache.Cache), dropped when a key changes and
// read again after a few seconds at most; or the Store itself.
type Rows interface {
	TenantByID(ctx context.Context, id string) (tenant.Tenant, error)
	Key(ctx context.Context, ref tenant.KeyRef) (tenant.Key, error)
	ActiveKey(ctx context.Context, tenantID, typ string) (tenant.Key, error)
}

// Service is the data plane of one node. It is safe for concurrent use, and
// several Services (KMS nodes) may share one store.
type Service struct {
	st    Store
	rows  Rows
	ring  Releases
	cache *keycache.Cache
	now   func() time.Time
	cok   CacheOnly
}

// New returns a Service over the store, the opened releases and the node's
// key cache. now is the clock; nil means time.Now.
func New(st Store, ring Releases, cache *keycache.Cache, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, rows: st, ring: ring, cache: cache, now: now}
}

// SetRows makes the request path read key rows from rows (the node's row
// cache) instead of the store; the DEK loader still reads the store. Call
// it before serving.
func (s *Service) SetRows(rows Rows) { s.rows = rows }

// SetCacheOnly gives the data plane the source of cache-only keys' tenant
// secrets; without it, such keys are unavailable. Call it before serving.
func (s *Service) SetCacheOnly(c CacheOnly) { s.cok = c }

// cacheID is the key cache id of a key version's DEK.
func cacheID(r tenant.KeyRef) string { return "dek/" + r.String() }

// Evict drops the DEK of a key version from this node's cache, and cancels
// a load of it in flight (which then cannot put it back): the lifecycle
// calls it once a destruction committed.
func (s *Service) Evict(r tenant.KeyRef) { s.cache.Evict(cacheID(r)) }

// key reads one key version from the row cache (or the store, without
// one); version 0 is the active key (tenant.ErrNoActiveKey if there is
// none). A destroyed key is tenant.ErrKeyDestroyed; archived keys are
// returned as they are.
func (s *Service) key(ctx context.Context, r tenant.KeyRef) (tenant.Key, error) {
	return s.keyFrom(ctx, s.rows, r)
}

// keyFrom is key, reading from rows: the store itself where the DEK's
// loader must see every destruction committed before it (dek).
func (s *Service) keyFrom(ctx context.Context, rows Rows, r tenant.KeyRef) (tenant.Key, error) {
	if r.Version == 0 {
		k, err := rows.ActiveKey(ctx, r.Tenant, r.Type)
		if errors.Is(err, store.ErrNotFound) {
			// An unknown tenant is not found; a known one has no active key.
			if _, terr := rows.TenantByID(ctx, r.Tenant); terr != nil {
				return tenant.Key{}, fmt.Errorf("dataplane: %w", terr)
			}
			return tenant.Key{}, tenant.NoActiveKeyError(r.Tenant, r.Type)
		}
		if err != nil {
			return tenant.Key{}, fmt.Errorf("dataplane: reading the active key: %w", err)
		}
		return k, nil
	}
	k, err := rows.Key(ctx, r)
	if errors.Is(err, store.ErrNotFound) {
		return tenant.Key{}, reason.Wrap(store.ErrNotFound, err, "the tenant has no %s key version %d", r.Type, r.Version)
	}
	if err != nil {
		return tenant.Key{}, fmt.Errorf("dataplane: reading a key: %w", err)
	}
	if k.State == tenant.StateDestroyed || k.Wrapped == nil && k.Source != tenant.SourceCacheOnly {
		return tenant.Key{}, tenant.DestroyedError(k)
	}
	return k, nil
}

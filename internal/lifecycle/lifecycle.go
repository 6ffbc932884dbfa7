// Package lifecycle is the lifecycle of tenants' keys at a regional node
// (S8, S9): new key material, generated in the regional HSM or uploaded by
// the tenant (internal/byok), becomes the active key of its type while the
// previous active key becomes archived, atomically, under the rotation
// limits of the tenant's environment; keys are listed; and destroyed, which
// erases the wrapped secret and evicts every cached DEK.
//
// A tenant secret is stored only wrapped under the TWK of the release that
// was current when it was made ([tenant.Wrap]), with a keyed fingerprint
// (internal/exportkey) so that the same uploaded value is never accepted
// twice. Every change carries the request's audit entry, which the store
// appends in the change's own transaction.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Store is what the lifecycle reads and changes (internal/store.Store).
type Store interface {
	TenantByID(ctx context.Context, id string) (tenant.Tenant, error)
	Keys(ctx context.Context, tenantID, typ string) ([]tenant.Key, error)
	Rotate(ctx context.Context, req store.RotateRequest, rec audit.Entry) (tenant.Key, error)
	DestroyKey(ctx context.Context, ref tenant.KeyRef, now time.Time, rec audit.Entry) (tenant.Key, error)
}

// Releases are the opened releases whose TWK wraps new keys (*release.Ring).
type Releases interface {
	Current() (release.Meta, error)
	CurrentTWK(ctx context.Context) (release.Meta, secret.Key, error)
}

// Fingerprinter keys the fingerprints of tenant secrets
// (*exportkey.Service).
type Fingerprinter interface {
	Fingerprint(ctx context.Context, rec *audit.Entry, tenantID string, ts secret.Key) ([]byte, error)
}

// Evicter drops a destroyed key's cached DEK (*dataplane.Service).
type Evicter interface {
	Evict(ref tenant.KeyRef)
}

// Policy is the rotation policy: the least time between two keys of a type,
// by the tenant's environment, and the most active plus archived keys per
// type.
type Policy interface {
	RotationInterval(env, keyType string) time.Duration
	MaxKeys() int
}

// Service is the key lifecycle of a regional node. It is safe for
// concurrent use, and several Services (KMS nodes) may share one store.
type Service struct {
	st    Store
	ring  Releases
	rng   hsm.Randomer
	fp    Fingerprinter
	evict Evicter
	pol   Policy
	now   func() time.Time

	series *Locks
}

// New returns a Service over the store, the opened releases, the regional
// HSM (for random tenant secrets), the fingerprints, the data plane's DEK
// cache and the rotation policy. now is the clock; nil means time.Now.
func New(st Store, ring Releases, rng hsm.Randomer, fp Fingerprinter, evict Evicter, pol Policy, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, ring: ring, rng: rng, fp: fp, evict: evict, pol: pol, now: now, series: NewLocks()}
}

// Keys lists a tenant's keys of type typ ("" = every type), ordered by type
// then version, without key material.
func (s *Service) Keys(ctx context.Context, tenantID, typ string) ([]tenant.Key, error) {
	ks, err := s.st.Keys(ctx, tenantID, typ)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: listing keys: %w", err)
	}
	for i := range ks {
		ks[i] = ks[i].Meta()
	}
	return ks, nil
}

// Destroy destroys a key version, with rec (naming the key in it): the
// store erases its wrapped secret and marks it destroyed, then its DEK is
// evicted from this node's key cache (a load in flight is cancelled and
// cannot put it back). From then on its DEK is tenant.ErrKeyDestroyed on
// this node, and so is every ciphertext under it. Destroying the active key
// leaves the type without one (tenant.ErrNoActiveKey) until the next
// Generate. A key destroyed already is tenant.ErrKeyDestroyed (and
// store.ErrDestroyed); its cache entry is evicted all the same.
//
// Other nodes sharing the store drop their cached copy when the store tells
// them (dataplane's EvictDestroyed), or at the cache TTL.
func (s *Service) Destroy(ctx context.Context, rec *audit.Entry, ref tenant.KeyRef) (tenant.Key, error) {
	rec.Key = ref.Name()
	k, err := s.st.DestroyKey(ctx, ref, s.now(), *rec)
	if err == nil || errors.Is(err, store.ErrDestroyed) {
		s.evict.Evict(ref)
	}
	if errors.Is(err, store.ErrDestroyed) {
		return tenant.Key{}, reason.Wrap(tenant.ErrKeyDestroyed, err, "%s key version %d was destroyed already", ref.Type, ref.Version)
	}
	if errors.Is(err, store.ErrNotFound) {
		return tenant.Key{}, reason.Wrap(store.ErrNotFound, err, "the tenant has no %s key version %d", ref.Type, ref.Version)
	}
	if err != nil {
		return tenant.Key{}, fmt.Errorf("lifecycle: destroying a key: %w", err)
	}
	return k.Meta(), nil
}

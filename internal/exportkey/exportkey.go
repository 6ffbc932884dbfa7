// Package exportkey keeps each tenant's export key: 32 random bytes from the
// regional HSM, made the first time the tenant needs one and kept for the
// tenant's life, stored only wrapped under the TWK of the release that was
// current when it was made ([tenant.WrapExportKey]). It seals the tenant's
// backup files (internal/backup) and keys the fingerprints of its secrets
// ([Service.Fingerprint]), which the store keeps, never the secrets, to
// refuse the same uploaded value twice and to check that an imported
// backup holds the destroyed key's value.
//
// Every node of a region derives the same fingerprints and opens the same
// backups: the first node to store a tenant's export key wins, and every
// node loads every release.
package exportkey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Store is what the service keeps export keys in (internal/store.Store).
type Store interface {
	ExportKey(ctx context.Context, tenantID string) (tenant.ExportKey, error)
	PutExportKey(ctx context.Context, k tenant.ExportKey, rec audit.Entry) (tenant.ExportKey, error)
}

// Releases are the opened releases whose TWKs wrap export keys
// (*release.Ring).
type Releases interface {
	CurrentTWK(ctx context.Context) (release.Meta, secret.Key, error)
	Secret(ctx context.Context, releaseID, name string) (secret.Key, error)
}

// ActionCreate is the audit action of a tenant's export key being made
// (once per tenant).
const ActionCreate audit.Action = "tenant.export-key.create"

// ErrNone: the tenant has no export key in this region's database, so
// nothing was ever exported here.
var ErrNone = errors.New("exportkey: the tenant has no export key in this region")

// Service keeps the export keys of a region's tenants. It is safe for
// concurrent use.
type Service struct {
	st    Store
	ring  Releases
	rng   hsm.Randomer
	cache *keycache.Cache
	now   func() time.Time
}

// New returns a Service over the store, the opened releases, the regional
// HSM (for random keys) and the key cache (export keys are cached sealed,
// as export/<tenant>). now is the clock; nil means time.Now.
func New(st Store, ring Releases, rng hsm.Randomer, cache *keycache.Cache, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, ring: ring, rng: rng, cache: cache, now: now}
}

// cacheID is the key cache id of a tenant's export key.
func cacheID(tenantID string) string { return "export/" + tenantID }

// Key returns the tenant's export key, making and storing it on first use
// (the first node to store one wins; the others use it). Making it is
// recorded in the audit log as ActionCreate, in the transaction that stores
// it, on behalf of rec (the request that needed it; nil: the system). The
// caller destroys the result.
func (s *Service) Key(ctx context.Context, rec *audit.Entry, tenantID string) (secret.Key, error) {
	return s.load(ctx, rec, tenantID, true)
}

// Existing returns the tenant's export key, or ErrNone if it has none: it
// never makes one. The caller destroys the result.
func (s *Service) Existing(ctx context.Context, tenantID string) (secret.Key, error) {
	return s.load(ctx, nil, tenantID, false)
}

func (s *Service) load(ctx context.Context, rec *audit.Entry, tenantID string, create bool) (secret.Key, error) {
	return s.cache.GetOrLoad(ctx, cacheID(tenantID), func(ctx context.Context) (secret.Key, error) {
		k, err := s.st.ExportKey(ctx, tenantID)
		switch {
		case errors.Is(err, store.ErrNotFound) && !create:
			return secret.Key{}, ErrNone
		case errors.Is(err, store.ErrNotFound):
			k, err = s.make(ctx, rec, tenantID)
		}
		if err != nil {
			return secret.Key{}, fmt.Errorf("exportkey: the export key of tenant %s: %w", tenantID, err)
		}
		twk, err := s.ring.Secret(ctx, k.Release, release.SecretTWK)
		if err != nil {
			return secret.Key{}, fmt.Errorf("exportkey: the export key of tenant %s is wrapped under release %s: %w", tenantID, k.Release, err)
		}
		defer twk.Destroy()
		return tenant.UnwrapExportKey(twk, k)
	})
}

// make makes and stores a tenant's export key, or returns the one another
// node stored first.
func (s *Service) make(ctx context.Context, rec *audit.Entry, tenantID string) (tenant.ExportKey, error) {
	cur, twk, err := s.ring.CurrentTWK(ctx)
	if err != nil {
		return tenant.ExportKey{}, err
	}
	defer twk.Destroy()
	ek, err := hsm.RandomKey(ctx, s.rng)
	if err != nil {
		return tenant.ExportKey{}, err
	}
	defer ek.Destroy()
	wrapped, err := tenant.WrapExportKey(twk, tenantID, cur.ID, ek)
	if err != nil {
		return tenant.ExportKey{}, err
	}
	e := audit.Entry{Actor: audit.ActorSystem}
	if rec != nil {
		e = *rec
	}
	e.Time, e.Tenant, e.Key, e.Count = s.now(), tenantID, "", 0
	e.Action, e.Outcome, e.Reason = ActionCreate, audit.OutcomeOK, ""
	e.Detail = "the tenant's export key made in the HSM, wrapped under the TWK of release " + cur.ID
	k, err := s.st.PutExportKey(ctx, tenant.ExportKey{Tenant: tenantID, Release: cur.ID, Wrapped: wrapped, Created: s.now()}, e)
	// k is ours, or the one another node made first (and recorded).
	return k, err
}

// fingerprintInfo is the HKDF info of the fingerprint key.
const fingerprintInfo = "strongroom tenant secret fingerprint v1"

// Fingerprint is the keyed fingerprint of a tenant secret:
//
//	HMAC-SHA256(HKDF-SHA256(export key, salt = tenant id, info), secret)
//
// Without the tenant's export key it says nothing about the secret. It
// makes the export key if the tenant has none (Key), on behalf of rec.
func (s *Service) Fingerprint(ctx context.Context, rec *audit.Entry, tenantID string, ts secret.Key) ([]byte, error) {
	ek, err := s.Key(ctx, rec, tenantID)
	if err != nil {
		return nil, err
	}
	defer ek.Destroy()
	return fingerprint(ek, tenantID, ts)
}

// fingerprint is Fingerprint under the export key ek.
func fingerprint(ek secret.Key, tenantID string, ts secret.Key) ([]byte, error) {
	fk, err := primitive.HKDF(ek.Bytes(), []byte(tenantID), []byte(fingerprintInfo), 32)
	if err != nil {
		return nil, fmt.Errorf("exportkey: the fingerprint key: %w", err)
	}
	defer clear(fk)
	return primitive.HMAC(fk, ts.Bytes()), nil
}

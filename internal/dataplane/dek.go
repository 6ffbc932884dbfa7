package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/derive"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// DEK returns the data encryption key of key version r (version 0 = the
// active key, else tenant.ErrNoActiveKey) and the key without its material.
// The caller owns the DEK and destroys it. Archived keys give their DEK
// (their data must still decrypt); destroyed keys are
// tenant.ErrKeyDestroyed.
//
// The DEK is derived (S1, S10) from the tenant secret with the KDF seed,
// salt and iteration count of the release the key names — never merely the
// newest release — or, for a key in mode none, is the tenant secret itself.
// A cache miss is recorded in the audit log on behalf of rec (the request's
// entry; nil: the system).
func (s *Service) DEK(ctx context.Context, rec *audit.Entry, r tenant.KeyRef) (secret.Key, tenant.Key, error) {
	k, err := s.key(ctx, r)
	if err != nil {
		return secret.Key{}, tenant.Key{}, err
	}
	dek, err := s.dek(ctx, rec, k)
	if err != nil {
		return secret.Key{}, tenant.Key{}, err
	}
	return dek, k.Meta(), nil
}

// maxEvictedRetries bounds how often dek loads again after its load was
// evicted while the key is, by the store, still not destroyed.
const maxEvictedRetries = 2

// dek returns the DEK of k (read from the store, not destroyed) from the
// cache, loading it on a miss.
//
// Destruction (lifecycle's Destroy) writes the store, then evicts the cache
// id (Evict), which also cancels a load in flight (keycache.ErrEvicted). The
// loader reads the key from the store itself, so a load that starts after an
// eviction sees the destruction; and after a load this caller ran, the key's
// state is read once more before the DEK is returned. A DEK therefore never
// outlives, in the cache or in a caller's hands, a destruction that
// completed before the request was answered.
func (s *Service) dek(ctx context.Context, rec *audit.Entry, k tenant.Key) (secret.Key, error) {
	ref := k.KeyRef()
	id := cacheID(ref)
	var maxAge time.Duration // 0: the cache's TTL
	if k.Source == tenant.SourceCacheOnly && s.cok != nil {
		maxAge = s.cok.MaxAge()
	}
	for attempt := 0; ; attempt++ {
		loaded := false
		d, err := s.cache.GetOrLoadFor(ctx, id, maxAge, func(ctx context.Context) (secret.Key, error) {
			loaded = true
			return s.load(ctx, rec, ref)
		})
		if errors.Is(err, keycache.ErrEvicted) {
			if _, err := s.keyFrom(ctx, s.st, ref); err != nil {
				return secret.Key{}, err // destroyed meanwhile, most likely
			}
			if attempt < maxEvictedRetries {
				continue
			}
		}
		if err != nil {
			return secret.Key{}, fmt.Errorf("dataplane: the DEK of %s key version %d: %w", k.Type, k.Version, err)
		}
		if loaded {
			if _, err := s.keyFrom(ctx, s.st, ref); err != nil {
				d.Destroy()
				if errors.Is(err, tenant.ErrKeyDestroyed) {
					s.cache.Evict(id)
				}
				return secret.Key{}, err
			}
		}
		return d, nil
	}
}

// load is the cache loader of a DEK: it reads the key from the store (so
// that it sees a destruction that completed before it started), unwraps the
// tenant secret under the TWK of the key's release and derives the DEK.
func (s *Service) load(ctx context.Context, rec *audit.Entry, ref tenant.KeyRef) (secret.Key, error) {
	k, err := s.keyFrom(ctx, s.st, ref)
	if err != nil {
		return secret.Key{}, err
	}
	mode, err := derive.ParseMode(string(k.Derivation))
	if err != nil {
		return secret.Key{}, fmt.Errorf("dataplane: %w", err)
	}
	ts, err := s.tenantSecret(ctx, rec, k)
	if err != nil {
		return secret.Key{}, err
	}
	defer ts.Destroy()

	in := derive.Input{TenantID: k.Tenant, KeyType: k.Type, Version: k.Version, TenantSecret: ts}
	if mode == derive.ModePBKDF2 {
		// The release the key names: its id, its count, its seed and salt.
		m, err := s.ring.Meta(k.Release)
		if err != nil {
			return secret.Key{}, fmt.Errorf("dataplane: key version %d names release %s: %w", k.Version, k.Release, err)
		}
		seed, err := s.ring.Secret(ctx, m.ID, release.SecretKDFSeed)
		if err != nil {
			return secret.Key{}, fmt.Errorf("dataplane: the KDF seed of release %s: %w", m.ID, err)
		}
		defer seed.Destroy()
		salt, err := s.ring.Secret(ctx, m.ID, release.SecretKDFSalt)
		if err != nil {
			return secret.Key{}, fmt.Errorf("dataplane: the KDF salt of release %s: %w", m.ID, err)
		}
		defer salt.Destroy()
		in.Release, in.Iterations, in.Seed, in.Salt = m.ID, m.Iterations, seed, salt
	}
	dek, err := derive.DEK(mode, in)
	if err != nil {
		return secret.Key{}, fmt.Errorf("dataplane: deriving the DEK of %s key version %d: %w", k.Type, k.Version, err)
	}
	if err := s.auditLoad(ctx, rec, k); err != nil {
		dek.Destroy()
		return secret.Key{}, err
	}
	return dek, nil // the cache takes it
}

// tenantSecret is k's tenant secret: unwrapped under the TWK of the key's
// release or, for a cache-only key, fetched from the tenant's key service.
func (s *Service) tenantSecret(ctx context.Context, rec *audit.Entry, k tenant.Key) (secret.Key, error) {
	if k.Source == tenant.SourceCacheOnly {
		if s.cok == nil {
			return secret.Key{}, reason.New(tenant.ErrKeyUnavailable, "%s key version %d is cache-only, and this node fetches no cache-only keys", k.Type, k.Version)
		}
		return s.cok.Secret(ctx, rec, k)
	}
	twk, err := s.ring.Secret(ctx, k.Release, release.SecretTWK)
	if err != nil {
		return secret.Key{}, fmt.Errorf("dataplane: key version %d names release %s: %w", k.Version, k.Release, err)
	}
	defer twk.Destroy()
	ts, err := tenant.Unwrap(twk, k.Ref(), k.Wrapped)
	if err != nil {
		return secret.Key{}, fmt.Errorf("dataplane: %s key version %d: %w", k.Type, k.Version, err)
	}
	return ts, nil
}

// auditLoad records that a DEK was made from its wrapped tenant secret (a
// cache miss): the tenant secret unwrapped under its release's TWK and, in
// mode pbkdf2, the DEK derived. The entry names the request that caused it
// when there is one. If it cannot be recorded, the DEK is not used.
func (s *Service) auditLoad(ctx context.Context, rec *audit.Entry, k tenant.Key) error {
	e := audit.Entry{Actor: audit.ActorSystem}
	if rec != nil {
		e = *rec
	}
	e.Time, e.Tenant, e.Key = s.now(), k.Tenant, k.KeyRef().Name()
	e.Action, e.Outcome, e.Reason, e.Count = audit.ActionDerive, audit.OutcomeOK, "", 0
	e.Detail = "tenant secret unwrapped under the TWK of release " + k.Release + "; DEK derived with PBKDF2 into the key cache"
	if k.Derivation == tenant.DerivationNone {
		e.Action = audit.ActionUnwrap
		e.Detail = "tenant secret unwrapped under the TWK of release " + k.Release + " into the key cache as the DEK (derivation none)"
	}
	if k.Source == tenant.SourceCacheOnly {
		e.Detail = "tenant secret fetched from the tenant's key service; DEK derived with PBKDF2 (release " + k.Release + ") into the key cache"
	}
	if _, err := s.st.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("dataplane: recording the DEK load in the audit log: %w", err)
	}
	return nil
}

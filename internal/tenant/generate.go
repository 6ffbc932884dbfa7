package tenant

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// maxRotateAttempts bounds how often Generate re-reads and retries when a
// concurrent rotation took the version it wrapped for.
const maxRotateAttempts = 8

// Generate makes a new key of type typ for a tenant: 32 random bytes from
// the regional HSM, wrapped under the TWK of the current release, stored as
// the active key (the previous active key becomes archived, atomically).
// The rotation policy of the tenant's environment applies: a rotation too
// soon is a *store.RateLimitedError (errors.Is store.ErrRateLimited) that
// says when the next is allowed, and a type with Policy.MaxKeys active and
// archived keys is store.ErrTooManyKeys. It returns the new key without its
// material.
//
// The wrapping binds the version (Ref), so the version is chosen here: the
// highest stored version plus one, wrapped for and passed to the store,
// which refuses it if a concurrent rotation took it meanwhile; Generate then
// reads again and retries, a bounded number of times (store.ErrConflict).
// Concurrent Generates of one tenant and type cannot slip past the rate
// limit: the store decides under its rotation lock, on every node.
func (s *Service) Generate(ctx context.Context, tenantID, typ string) (store.Key, error) {
	_, req, twk, err := s.prepare(ctx, tenantID, typ)
	if err != nil {
		return store.Key{}, err
	}
	defer twk.Destroy()
	ts, err := s.random(ctx)
	if err != nil {
		return store.Key{}, err
	}
	defer ts.Destroy()
	if req.New.Fingerprint, err = s.fingerprint(ctx, tenantID, ts); err != nil {
		return store.Key{}, err
	}
	req.New.Source, req.New.Derivation = store.SourceHSM, store.DerivationPBKDF2
	return s.install(ctx, req, twk, ts)
}

// prepare checks the arguments of a new key of (tenant, type) and returns
// the tenant, a rotation request with the tenant's policy and the current
// release (New.Release), and that release's TWK, which the caller destroys.
func (s *Service) prepare(ctx context.Context, tenantID, typ string) (store.Tenant, store.RotateRequest, secret.Key, error) {
	fail := func(err error) (store.Tenant, store.RotateRequest, secret.Key, error) {
		return store.Tenant{}, store.RotateRequest{}, secret.Key{}, err
	}
	if err := store.ValidID("tenant", tenantID); err != nil {
		return fail(fmt.Errorf("tenant: %w", err))
	}
	if err := store.ValidType(typ); err != nil {
		return fail(fmt.Errorf("tenant: %w", err))
	}
	t, err := s.st.TenantByID(ctx, tenantID)
	if err != nil {
		return fail(fmt.Errorf("tenant: %w", err))
	}
	interval, maxKeys := s.pol.RotationInterval(string(t.Env), typ), s.pol.MaxKeys()
	if interval < 0 || maxKeys < 1 {
		return fail(fmt.Errorf("tenant: %w: the rotation policy gives interval %v and max keys %d for %s %s keys",
			store.ErrInvalid, interval, maxKeys, t.Env, typ))
	}
	cur, err := s.ring.Current()
	if err != nil {
		return fail(fmt.Errorf("tenant: no release to wrap a new key under: %w", err))
	}
	twk, err := s.ring.Secret(ctx, cur.ID, release.SecretTWK)
	if err != nil {
		return fail(fmt.Errorf("tenant: the TWK of release %s: %w", cur.ID, err))
	}
	return t, store.RotateRequest{
		Tenant:      tenantID,
		Type:        typ,
		New:         store.Key{Release: cur.ID},
		MinInterval: interval,
		MaxKeys:     maxKeys,
	}, twk, nil
}

// install wraps ts under twk for the next version of the series and makes it
// the active key, re-reading and retrying when another node's rotation took
// that version. req carries everything but New.Version, New.Wrapped and Now.
func (s *Service) install(ctx context.Context, req store.RotateRequest, twk, ts secret.Key) (store.Key, error) {
	tenantID, typ := req.Tenant, req.Type
	unlock, err := s.series.lock(ctx, tenantID, typ)
	if err != nil {
		return store.Key{}, fmt.Errorf("tenant: a new %s key: %w", typ, err)
	}
	defer unlock()
	var lastErr error
	for range maxRotateAttempts {
		next, err := s.nextVersion(ctx, tenantID, typ)
		if err != nil {
			return store.Key{}, err
		}
		ref, err := refOf(store.Key{Tenant: tenantID, Type: typ, Version: next, Release: req.New.Release,
			Source: req.New.Source, Derivation: req.New.Derivation})
		if err != nil {
			return store.Key{}, err
		}
		if req.New.Wrapped, err = Wrap(twk, ref, ts); err != nil {
			return store.Key{}, fmt.Errorf("tenant: wrapping the new key: %w", err)
		}
		req.Now = s.now()
		req.New.Version = next
		auditKey(ctx, typ, next)
		k, err := s.st.Rotate(ctx, req)
		if err == nil {
			return meta(k), nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return store.Key{}, fmt.Errorf("tenant: a new %s key: %w", typ, err)
		}
		// A concurrent rotation on another node took the version: wrap
		// again for the next one.
		lastErr = err
	}
	return store.Key{}, fmt.Errorf("tenant: a new %s key: %d concurrent rotations won in a row; try again: %w",
		typ, maxRotateAttempts, lastErr)
}

// auditKey names the key of the request's pending audit entry, which the
// store records in the transaction of the change (store.WithAudit).
func auditKey(ctx context.Context, typ string, version uint32) {
	if p := store.PendingAuditFrom(ctx); p != nil {
		p.SetKey(typ + "/" + strconv.FormatUint(uint64(version), 10))
	}
}

// nextVersion is the version the next key of (tenant, type) gets: one more
// than the highest stored version in any state (versions are never reused).
func (s *Service) nextVersion(ctx context.Context, tenantID, typ string) (uint32, error) {
	ks, err := s.st.Keys(ctx, tenantID, typ)
	if err != nil {
		return 0, fmt.Errorf("tenant: reading the keys: %w", err)
	}
	var max uint32
	for _, k := range ks {
		if k.Type == typ && k.Version > max {
			max = k.Version
		}
	}
	if max == ^uint32(0) {
		return 0, fmt.Errorf("tenant: %w: tenant %s has used every %s key version", store.ErrTooManyKeys, tenantID, typ)
	}
	return max + 1, nil
}

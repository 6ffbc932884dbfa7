package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// maxRotateAttempts bounds how often Install re-reads and retries when a
// concurrent rotation took the version it wrapped for.
const maxRotateAttempts = 8

// Material is new key material for a tenant's key of one type.
type Material struct {
	Tenant string // tenant ID
	Type   string // key type
	// Secret is the 32-byte tenant secret (or, in derivation mode none,
	// the DEK). Install does not keep it: the caller destroys it.
	Secret     secret.Key
	Source     tenant.Source
	Derivation tenant.Derivation
}

// Generate makes a new key of type typ for a tenant: 32 random bytes from
// the regional HSM, installed as the active key (Install). It returns the
// new key without its material.
func (s *Service) Generate(ctx context.Context, rec *audit.Entry, tenantID, typ string) (tenant.Key, error) {
	if _, err := s.Check(ctx, tenantID, typ); err != nil {
		return tenant.Key{}, err
	}
	ts, err := hsm.RandomKey(ctx, s.rng)
	if err != nil {
		return tenant.Key{}, fmt.Errorf("lifecycle: a new tenant secret: %w", err)
	}
	defer ts.Destroy()
	return s.Install(ctx, rec, Material{Tenant: tenantID, Type: typ, Secret: ts,
		Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2})
}

// Check refuses early a new key of (tenant, type) that Install would
// refuse: invalid arguments, an unknown tenant, no release to wrap under,
// and — from the keys as they are now — the rotation limit
// (*store.RateLimitedError, which says when the next is allowed) and the
// key count (store.ErrTooManyKeys). The store decides again, under its
// lock, when the key is installed. It returns the tenant.
func (s *Service) Check(ctx context.Context, tenantID, typ string) (tenant.Tenant, error) {
	t, req, err := s.request(ctx, tenantID, typ)
	if err != nil {
		return tenant.Tenant{}, err
	}
	if _, err := s.ring.Current(); err != nil {
		return tenant.Tenant{}, fmt.Errorf("lifecycle: no release to wrap a new key under: %w", err)
	}
	ks, err := s.st.Keys(ctx, tenantID, typ)
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("lifecycle: reading the keys: %w", err)
	}
	var series store.Series
	for _, k := range ks {
		if k.Version > series.MaxVersion {
			series.MaxVersion, series.Newest = k.Version, k.Created
		}
		if k.State != tenant.StateDestroyed {
			series.Live++
		}
	}
	req.Now = s.now()
	if _, err := req.Decide(series); err != nil {
		return tenant.Tenant{}, fmt.Errorf("lifecycle: a new %s key: %w", typ, err)
	}
	return t, nil
}

// request checks the arguments of a new key of (tenant, type) and returns
// the tenant and a rotation request with the tenant's policy.
func (s *Service) request(ctx context.Context, tenantID, typ string) (tenant.Tenant, store.RotateRequest, error) {
	fail := func(err error) (tenant.Tenant, store.RotateRequest, error) {
		return tenant.Tenant{}, store.RotateRequest{}, err
	}
	if err := store.ValidID("tenant", tenantID); err != nil {
		return fail(fmt.Errorf("lifecycle: %w", err))
	}
	if err := store.ValidType(typ); err != nil {
		return fail(fmt.Errorf("lifecycle: %w", err))
	}
	t, err := s.st.TenantByID(ctx, tenantID)
	if err != nil {
		return fail(fmt.Errorf("lifecycle: %w", err))
	}
	interval, maxKeys := s.pol.RotationInterval(string(t.Env), typ), s.pol.MaxKeys()
	if interval < 0 || maxKeys < 1 {
		return fail(fmt.Errorf("lifecycle: %w: the rotation policy gives interval %v and max keys %d for %s %s keys",
			store.ErrInvalid, interval, maxKeys, t.Env, typ))
	}
	return t, store.RotateRequest{Tenant: tenantID, Type: typ, MinInterval: interval, MaxKeys: maxKeys}, nil
}

// Install makes m the active key of its type (the previous active key
// becomes archived, atomically), with rec, which names the new key: the
// secret is fingerprinted (a value the tenant had before, in any type or
// state, is store.ErrDuplicate), wrapped under the TWK of the current
// release and stored. The rotation policy of the tenant's environment
// applies: a rotation too soon is a *store.RateLimitedError
// (errors.Is store.ErrRateLimited) that says when the next is allowed, and
// a type with Policy.MaxKeys active and archived keys is
// store.ErrTooManyKeys. It returns the new key without its material.
//
// The wrapping binds the version (tenant.Ref), so the version is chosen
// here: the highest stored version plus one, wrapped for and passed to the
// store, which refuses it if a concurrent rotation took it meanwhile;
// Install then reads again and retries, a bounded number of times.
// Concurrent Installs of one tenant and type cannot slip past the rate
// limit: the store decides under its rotation lock, on every node.
func (s *Service) Install(ctx context.Context, rec *audit.Entry, m Material) (tenant.Key, error) {
	_, req, err := s.request(ctx, m.Tenant, m.Type)
	if err != nil {
		return tenant.Key{}, err
	}
	cur, twk, err := s.ring.CurrentTWK(ctx)
	if err != nil {
		return tenant.Key{}, fmt.Errorf("lifecycle: %w", err)
	}
	defer twk.Destroy()
	req.New = tenant.Key{Release: cur.ID, Source: m.Source, Derivation: m.Derivation}
	if req.New.Fingerprint, err = s.fp.Fingerprint(ctx, rec, m.Tenant, m.Secret); err != nil {
		return tenant.Key{}, err
	}

	unlock, err := s.series.Lock(ctx, m.Tenant+"/"+m.Type)
	if err != nil {
		return tenant.Key{}, fmt.Errorf("lifecycle: a new %s key: %w", m.Type, err)
	}
	defer unlock()
	var lastErr error
	for range maxRotateAttempts {
		next, err := s.nextVersion(ctx, m.Tenant, m.Type)
		if err != nil {
			return tenant.Key{}, err
		}
		req.New.Tenant, req.New.Type, req.New.Version = m.Tenant, m.Type, next
		if req.New.Wrapped, err = tenant.Wrap(twk, req.New.Ref(), m.Secret); err != nil {
			return tenant.Key{}, fmt.Errorf("lifecycle: wrapping the new key: %w", err)
		}
		req.Now = s.now()
		rec.Key = req.New.KeyRef().Name()
		k, err := s.st.Rotate(ctx, req, *rec)
		if err == nil {
			return k.Meta(), nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return tenant.Key{}, fmt.Errorf("lifecycle: a new %s key: %w", m.Type, err)
		}
		// A concurrent rotation on another node took the version: wrap
		// again for the next one.
		lastErr = err
	}
	return tenant.Key{}, fmt.Errorf("lifecycle: a new %s key: %d concurrent rotations won in a row; try again: %w",
		m.Type, maxRotateAttempts, lastErr)
}

// nextVersion is the version the next key of (tenant, type) gets: one more
// than the highest stored version in any state (versions are never reused).
func (s *Service) nextVersion(ctx context.Context, tenantID, typ string) (uint32, error) {
	ks, err := s.st.Keys(ctx, tenantID, typ)
	if err != nil {
		return 0, fmt.Errorf("lifecycle: reading the keys: %w", err)
	}
	var max uint32
	for _, k := range ks {
		if k.Type == typ && k.Version > max {
			max = k.Version
		}
	}
	if max == ^uint32(0) {
		return 0, fmt.Errorf("lifecycle: %w: tenant %s has used every %s key version", store.ErrTooManyKeys, tenantID, typ)
	}
	return max + 1, nil
}

package tenant

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// Policy is the rotation policy: the least time between two keys of a type,
// by the tenant's environment, and the most active plus archived keys per
// type.
type Policy interface {
	RotationInterval(env, keyType string) time.Duration
	MaxKeys() int
}

// The service's errors, for errors.Is. Besides these, errors wrap the
// store's (store.ErrNotFound, store.ErrInvalid, store.ErrRateLimited as a
// *store.RateLimitedError that says when, store.ErrTooManyKeys) and
// envelope.ErrDecrypt.
var (
	// ErrNoActiveKey: the tenant has no active key of the type: it never
	// had one, or the active one was destroyed. Generate or upload one.
	ErrNoActiveKey = errors.New("tenant: no active key of this type: generate or upload one first")
	// ErrKeyDestroyed: the key version was destroyed; data under it can no
	// longer be decrypted by anyone.
	ErrKeyDestroyed = errors.New("tenant: the key was destroyed: data under it can no longer be decrypted")
	// ErrKeyArchived: an archived key was asked to do what only the active
	// key does (encrypt new data). Archived keys still decrypt. No method of
	// Service returns it today: Encrypt always takes the active key, and
	// SealDEK delivers archived DEKs on purpose (see SealDEK). It is here
	// for the callers that take an explicit version for new data.
	ErrKeyArchived = errors.New("tenant: the key is archived: it decrypts only; encrypt with the active key")
)

// Service is the tenant key lifecycle of a regional node: generation and
// rotation, destruction, and the DEKs of the data plane. It is safe for
// concurrent use, and several Services (KMS nodes) may share one store.
//
// Tenant secrets live in the store only wrapped under a release's TWK (from
// the Ring); DEKs live only in the key cache (sealed) and in the caller's
// hands, never in the store.
type Service struct {
	st    store.Store
	ring  *release.Ring
	h     hsm.HSM
	cache *keycache.Cache
	pol   Policy
	now   func() time.Time

	series *seriesLocks
}

// NewService returns a Service over the store, the opened releases, the
// regional HSM (for random tenant secrets), the key cache (for DEKs; it may
// be the ring's) and the rotation policy. now is the clock; nil means
// time.Now.
func NewService(st store.Store, ring *release.Ring, h hsm.HSM, cache *keycache.Cache, pol Policy, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, ring: ring, h: h, cache: cache, pol: pol, now: now, series: newSeriesLocks()}
}

// dekID is the cache id of a key version's DEK.
func dekID(tenantID, typ string, version uint32) string {
	return "dek/" + tenantID + "/" + typ + "/" + strconv.FormatUint(uint64(version), 10)
}

// meta returns k without its key material: the Service never hands out the
// wrapped secret or its fingerprint.
func meta(k store.Key) store.Key {
	k.Wrapped, k.Fingerprint = nil, nil
	return k
}

// refOf is the wrapping reference of a stored key.
func refOf(k store.Key) (Ref, error) {
	r := Ref{Tenant: k.Tenant, Type: k.Type, Version: k.Version, Release: k.Release}
	switch k.Source {
	case store.SourceHSM:
		r.Source = SourceHSM
	case store.SourceUploaded:
		r.Source = SourceUploaded
	default:
		return Ref{}, fmt.Errorf("tenant: key %s/%s/%d has unknown source %q", k.Tenant, k.Type, k.Version, k.Source)
	}
	switch k.Derivation {
	case store.DerivationPBKDF2:
		r.Derivation = DerivePBKDF2
	case store.DerivationNone:
		r.Derivation = DeriveNone
	default:
		return Ref{}, fmt.Errorf("tenant: key %s/%s/%d has unknown derivation %q", k.Tenant, k.Type, k.Version, k.Derivation)
	}
	return r, nil
}

// Keys lists a tenant's keys of type typ ("" = every type), ordered by type
// then version, without key material.
func (s *Service) Keys(ctx context.Context, tenantID, typ string) ([]store.Key, error) {
	ks, err := s.st.Keys(ctx, tenantID, typ)
	if err != nil {
		return nil, fmt.Errorf("tenant: listing keys: %w", err)
	}
	for i := range ks {
		ks[i] = meta(ks[i])
	}
	return ks, nil
}

// key reads one key version; version 0 is the active key (ErrNoActiveKey if
// there is none). A destroyed key is ErrKeyDestroyed; archived keys are
// returned as they are.
func (s *Service) key(ctx context.Context, tenantID, typ string, version uint32) (store.Key, error) {
	if version == 0 {
		k, err := s.st.ActiveKey(ctx, tenantID, typ)
		if errors.Is(err, store.ErrNotFound) {
			// An unknown tenant is not found; a known one has no active key.
			if _, terr := s.st.TenantByID(ctx, tenantID); terr != nil {
				return store.Key{}, fmt.Errorf("tenant: %w", terr)
			}
			return store.Key{}, fmt.Errorf("%w (tenant %s, type %s)", ErrNoActiveKey, tenantID, typ)
		}
		if err != nil {
			return store.Key{}, fmt.Errorf("tenant: reading the active key: %w", err)
		}
		return k, nil
	}
	k, err := s.st.Key(ctx, tenantID, typ, version)
	if err != nil {
		return store.Key{}, fmt.Errorf("tenant: reading a key: %w", err)
	}
	if k.State == store.StateDestroyed || k.Wrapped == nil {
		return store.Key{}, destroyedError(k)
	}
	return k, nil
}

func destroyedError(k store.Key) error {
	return fmt.Errorf("%w (tenant %s, type %s, version %d, at %s)", ErrKeyDestroyed,
		k.Tenant, k.Type, k.Version, k.Destroyed.UTC().Format(time.RFC3339))
}

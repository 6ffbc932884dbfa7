package cacheonly

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/lifecycle"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The audit actions of cache-only keys (docs/audit.md).
const (
	// ActionFetch: one fetch from a key service (ok, refused or error,
	// with the reason).
	ActionFetch audit.Action = "key.fetch"
	// ActionRevokeDetected: a key service answered that it revoked a key.
	ActionRevokeDetected audit.Action = "key.revoke-detected"
	// ActionRevokeLifted: a key service gave a revoked key again.
	ActionRevokeLifted audit.Action = "key.revoke-lifted"
)

// Bounds and defaults (docs/cache-only.md).
const (
	// DefaultMaxAge is the longest a fetched key's DEK stays in memory
	// (cache_only.max_age may lower it).
	DefaultMaxAge = 72 * time.Hour
	// RevokedRecheck is how often, at most, a node asks a key service
	// again about a key it revoked, when a request needs the key.
	RevokedRecheck = time.Minute
)

// ErrRegistrationRefused: the key service did not answer the test fetch
// of a registration correctly; nothing was registered.
var ErrRegistrationRefused = errors.New("cacheonly: the key service did not answer correctly: nothing was registered")

// Store is what cache-only keys read and change (internal/store.Store).
type Store interface {
	Keys(ctx context.Context, tenantID, typ string) ([]tenant.Key, error)
	TenantByID(ctx context.Context, id string) (tenant.Tenant, error)
	KeyService(ctx context.Context, ref tenant.KeyRef) (tenant.KeyService, error)
	KeyServices(ctx context.Context, tenantID string) ([]tenant.KeyService, error)
	RegisterKeyService(ctx context.Context, req store.RotateRequest, ks tenant.KeyService, rec audit.Entry) (tenant.Key, tenant.KeyService, error)
	RevokeKeyService(ctx context.Context, ref tenant.KeyRef, now time.Time, rec audit.Entry) (bool, error)
	LiftKeyServiceRevocation(ctx context.Context, ref tenant.KeyRef, rec audit.Entry) (bool, error)
	KeyServiceCredentials(ctx context.Context, tenantID string) (tenant.KeyServiceCredentials, error)
	SetKeyServiceCredentials(ctx context.Context, c tenant.KeyServiceCredentials) (tenant.KeyServiceCredentials, error)
	AppendAudit(ctx context.Context, entries ...audit.Entry) ([]audit.Entry, error)
}

// HSM is the regional HSM, which holds each tenant's recipient and client
// key pairs.
type HSM interface {
	Info() hsm.Info
	GenerateEncryptionKey(ctx context.Context, label string, use hsm.RSAUse) (hsm.EncryptionKey, error)
	EncryptionKey(ctx context.Context, label string) (hsm.EncryptionKey, error)
	GenerateSigningKey(ctx context.Context, label string) (hsm.SigningKey, error)
	SigningKey(ctx context.Context, label string) (hsm.SigningKey, error)
}

// Releases are the opened releases whose TWKs wrap bearer secrets
// (*release.Ring).
type Releases interface {
	CurrentTWK(ctx context.Context) (release.Meta, secret.Key, error)
	Secret(ctx context.Context, releaseID, name string) (secret.Key, error)
}

// Keys checks a new key early (*lifecycle.Service).
type Keys interface {
	Check(ctx context.Context, tenantID, typ string) (tenant.Tenant, error)
}

// Options configure a Service.
type Options struct {
	// MaxAge bounds how long a fetched key's DEK is cached; 0 or more than
	// DefaultMaxAge means DefaultMaxAge.
	MaxAge time.Duration
	// Fetcher fetches; nil means the zero Fetcher (with Now the service's
	// clock).
	Fetcher *Fetcher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is cache-only keys at a regional node. It is safe for concurrent
// use; its availability and revocation re-checks are the node's own.
type Service struct {
	st     Store
	h      HSM
	ring   Releases
	keys   Keys
	pol    lifecycle.Policy
	fetch  *Fetcher
	now    func() time.Time
	maxAge time.Duration

	tracker Tracker
	creds   *lifecycle.Locks // serialises making a tenant's credentials on this node
	mu      sync.Mutex
	asked   map[tenant.KeyRef]time.Time // when a revoked key was last asked about
}

// New returns a Service.
func New(st Store, h HSM, ring Releases, keys Keys, pol lifecycle.Policy, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxAge <= 0 || o.MaxAge > DefaultMaxAge {
		o.MaxAge = DefaultMaxAge
	}
	if o.Fetcher == nil {
		o.Fetcher = &Fetcher{Now: o.Now}
	}
	return &Service{st: st, h: h, ring: ring, keys: keys, pol: pol, fetch: o.Fetcher, now: o.Now, maxAge: o.MaxAge,
		creds: lifecycle.NewLocks(), asked: map[tenant.KeyRef]time.Time{}}
}

// MaxAge is how long a fetched key's DEK may stay cached.
func (s *Service) MaxAge() time.Duration { return s.maxAge }

// RecipientLabel and ClientLabel are the regional HSM labels of a
// tenant's recipient and client key pairs.
func RecipientLabel(tenantID string) string { return "strongroom-cok-" + tenantID }
func ClientLabel(tenantID string) string    { return "strongroom-cok-client-" + tenantID }

// Credentials are a tenant's key-service credentials as a tenant installs
// them: the recipient public key (PEM, PUBLIC KEY) and the client
// certificate (PEM, CERTIFICATE).
type Credentials struct {
	RecipientKey      string
	ClientCertificate string
}

// Credentials returns the tenant's key-service credentials, making them on
// first need: the recipient key pair (RSA-4096, RSA-OAEP decrypt) and the
// client key pair (ECDSA P-384) in the regional HSM, and the client's
// self-signed certificate. Concurrent first calls, on any nodes, end with
// the same credentials.
func (s *Service) Credentials(ctx context.Context, tenantID string) (Credentials, error) {
	c, err := s.credentials(ctx, tenantID)
	if err != nil {
		return Credentials{}, err
	}
	rk, err := s.h.EncryptionKey(ctx, c.Recipient)
	if err != nil {
		return Credentials{}, fmt.Errorf("cacheonly: the recipient key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(rk.RSAPublicKey())
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{
		RecipientKey:      string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		ClientCertificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.ClientCert})),
	}, nil
}

func (s *Service) credentials(ctx context.Context, tenantID string) (tenant.KeyServiceCredentials, error) {
	c, err := s.st.KeyServiceCredentials(ctx, tenantID)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return c, err
	}
	if _, err := s.st.TenantByID(ctx, tenantID); err != nil {
		return tenant.KeyServiceCredentials{}, fmt.Errorf("cacheonly: %w", err)
	}
	unlock, err := s.creds.Lock(ctx, tenantID)
	if err != nil {
		return tenant.KeyServiceCredentials{}, err
	}
	defer unlock()
	if c, err := s.st.KeyServiceCredentials(ctx, tenantID); err == nil {
		return c, nil
	}
	c = tenant.KeyServiceCredentials{Tenant: tenantID, Recipient: RecipientLabel(tenantID), ClientKey: ClientLabel(tenantID), Created: s.now()}
	if _, err := s.h.GenerateEncryptionKey(ctx, c.Recipient, hsm.UseDecrypt); err != nil && !errors.Is(err, hsm.ErrExists) {
		return tenant.KeyServiceCredentials{}, fmt.Errorf("cacheonly: making the recipient key pair in the HSM: %w", err)
	}
	sk, err := s.h.GenerateSigningKey(ctx, c.ClientKey)
	if errors.Is(err, hsm.ErrExists) {
		sk, err = s.h.SigningKey(ctx, c.ClientKey)
	}
	if err != nil {
		return tenant.KeyServiceCredentials{}, fmt.Errorf("cacheonly: making the client key pair in the HSM: %w", err)
	}
	if c.ClientCert, err = ClientCertificate(sk, tenantID, c.Created); err != nil {
		return tenant.KeyServiceCredentials{}, err
	}
	// Another node may have stored its own first: its certificate (for the
	// same key pair) wins.
	return s.st.SetKeyServiceCredentials(ctx, c)
}

// Request asks to register a tenant's key service for a new key version.
type Request struct {
	Tenant string // tenant ID
	Type   string
	URL    string
	KID    string
	CA     []byte // PEM
	Auth   string // tenant.AuthBearer or tenant.AuthMTLS
	// Bearer is the bearer secret (auth bearer only). Register does not
	// keep it: the caller destroys it.
	Bearer secret.Text
	OAEP   string // "" or tenant.OAEPSHA256, or tenant.OAEPSHA1
}

// Register registers a tenant's key service as a new key version of its
// type, of source cache-only, active at once (the previous active version
// archived; the rotation limits apply, as to a generated key), with rec,
// which names the new key. The key service must answer a test fetch
// correctly first (else ErrRegistrationRefused, saying why, and nothing is
// registered). The bearer secret is stored wrapped under the current
// release's TWK, bound to the registration.
func (s *Service) Register(ctx context.Context, rec *audit.Entry, req Request) (tenant.Key, tenant.KeyService, error) {
	ks, err := s.check(req)
	if err != nil {
		return tenant.Key{}, tenant.KeyService{}, err
	}
	t, err := s.keys.Check(ctx, req.Tenant, req.Type)
	if err != nil {
		return tenant.Key{}, tenant.KeyService{}, err
	}
	rec.Key = tenant.KeyRef{Type: req.Type}.Name()
	creds, err := s.credentials(ctx, req.Tenant)
	if err != nil {
		return tenant.Key{}, tenant.KeyService{}, err
	}
	m, err := s.fetchKey(ctx, rec, ks, creds, req.Bearer)
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			return tenant.Key{}, tenant.KeyService{}, reason.Wrap(ErrRegistrationRefused, err,
				"the key service did not answer the test fetch correctly (%s): %s; nothing was registered", fe.Reason, fe.Msg)
		}
		return tenant.Key{}, tenant.KeyService{}, err
	}
	m.Destroy()

	interval, maxKeys := s.pol.RotationInterval(string(t.Env), req.Type), s.pol.MaxKeys()
	var lastErr error
	for range 8 {
		next, err := s.nextVersion(ctx, req.Tenant, req.Type)
		if err != nil {
			return tenant.Key{}, tenant.KeyService{}, err
		}
		ks.Version = next
		rr := store.RotateRequest{Tenant: req.Tenant, Type: req.Type, MinInterval: interval, MaxKeys: maxKeys, Now: s.now(),
			New: tenant.Key{Source: tenant.SourceCacheOnly, Derivation: tenant.DerivationPBKDF2, Version: next}}
		cur, twk, err := s.ring.CurrentTWK(ctx)
		if err != nil {
			return tenant.Key{}, tenant.KeyService{}, fmt.Errorf("cacheonly: %w", err)
		}
		rr.New.Release = cur.ID
		if req.Auth == tenant.AuthBearer {
			ks.Release = cur.ID
			ks.Bearer, err = tenant.WrapBearer(twk, ks, req.Bearer)
		}
		twk.Destroy()
		if err != nil {
			return tenant.Key{}, tenant.KeyService{}, fmt.Errorf("cacheonly: wrapping the bearer secret: %w", err)
		}
		rec.Key = tenant.KeyRef{Type: req.Type, Version: next}.Name()
		k, stored, err := s.st.RegisterKeyService(ctx, rr, ks, *rec)
		if err == nil {
			s.tracker.Succeeded(k.KeyRef())
			return k.Meta(), stored.Meta(), nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return tenant.Key{}, tenant.KeyService{}, fmt.Errorf("cacheonly: registering the key service: %w", err)
		}
		lastErr = err
	}
	return tenant.Key{}, tenant.KeyService{}, fmt.Errorf("cacheonly: registering the key service: %w", lastErr)
}

// check validates a request and returns the registration it makes (without
// version, release and wrapped bearer).
func (s *Service) check(req Request) (tenant.KeyService, error) {
	if err := store.ValidID("tenant", req.Tenant); err != nil {
		return tenant.KeyService{}, fmt.Errorf("cacheonly: %w", err)
	}
	if req.OAEP == "" {
		req.OAEP = tenant.OAEPSHA256
	}
	ks := tenant.KeyService{ID: tenant.NewID(), Tenant: req.Tenant, Type: req.Type, Version: 1, URL: req.URL, KID: req.KID,
		CA: req.CA, Auth: req.Auth, OAEP: req.OAEP}
	switch req.Auth {
	case tenant.AuthBearer:
		if req.Bearer.IsZero() {
			return tenant.KeyService{}, reason.New(store.ErrInvalid, "auth bearer needs the bearer secret (bearer)")
		}
		ks.Release, ks.Bearer = "check", []byte{1} // for Check only
	case tenant.AuthMTLS:
		if !req.Bearer.IsZero() {
			return tenant.KeyService{}, reason.New(store.ErrInvalid, "a bearer secret is given only with auth bearer")
		}
	default:
		return tenant.KeyService{}, reason.New(store.ErrInvalid, "auth must be %q or %q, not %q", tenant.AuthBearer, tenant.AuthMTLS, req.Auth)
	}
	if req.Bearer.Len() > tenant.MaxBearer {
		return tenant.KeyService{}, reason.New(store.ErrInvalid, "the bearer secret is over %d bytes", tenant.MaxBearer)
	}
	if err := ks.Check(); err != nil {
		return tenant.KeyService{}, reason.Wrap(store.ErrInvalid, err, "%s", trimPrefix(err.Error()))
	}
	if _, err := roots(ks.CA); err != nil {
		return tenant.KeyService{}, reason.Wrap(store.ErrInvalid, err, "ca: %s", trimPrefix(err.Error()))
	}
	if ks.OAEP == tenant.OAEPSHA1 && !s.h.Info().SupportsOAEP(hsm.OAEPSHA1) {
		return tenant.KeyService{}, reason.New(hsm.ErrUnsupported, "this region's HSM cannot decrypt RSA-OAEP with SHA-1: register with oaep sha256")
	}
	// The version is chosen when the registration is stored; the test
	// fetch is recorded under the type alone.
	ks.Version, ks.Release, ks.Bearer = 0, "", nil
	return ks, nil
}

func trimPrefix(s string) string {
	for _, p := range []string{"tenant: ", "cacheonly: "} {
		if len(s) > len(p) && s[:len(p)] == p {
			return s[len(p):]
		}
	}
	return s
}

// roots is the pool of the certificates of a registration's CA PEM.
func roots(caPEM []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	rest, n := caPEM, 0
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("cacheonly: a certificate that does not parse: %w", err)
		}
		p.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("cacheonly: no CERTIFICATE in the PEM")
	}
	return p, nil
}

func (s *Service) nextVersion(ctx context.Context, tenantID, typ string) (uint32, error) {
	ks, err := s.st.Keys(ctx, tenantID, typ)
	if err != nil {
		return 0, fmt.Errorf("cacheonly: reading the keys: %w", err)
	}
	var max uint32
	for _, k := range ks {
		max = maxU32(max, k.Version)
	}
	if max == ^uint32(0) {
		return 0, fmt.Errorf("cacheonly: %w: every version is used", store.ErrTooManyKeys)
	}
	return max + 1, nil
}

func maxU32(a, b uint32) uint32 {
	if a > b {
		return a
	}
	return b
}

// List returns a tenant's registrations, without wrapped bearer secrets.
func (s *Service) List(ctx context.Context, tenantID string) ([]tenant.KeyService, error) {
	kss, err := s.st.KeyServices(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("cacheonly: %w", err)
	}
	return kss, nil
}

// The availabilities of a cache-only key at this node (Availability).
const (
	Available   = "available"
	Unavailable = "unavailable"
	Revoked     = "revoked"
)

// Availability is a registration's key's availability at this node:
// revoked (by the store), unavailable (its last fetch here failed), or
// available.
func (s *Service) Availability(ks tenant.KeyService) string {
	switch {
	case !ks.Revoked.IsZero():
		return Revoked
	case s.tracker.Unavailable(ks.KeyRef()):
		return Unavailable
	}
	return Available
}

// Pending lists the keys whose retry is due at this node now.
func (s *Service) Pending() []tenant.KeyRef { return s.tracker.Pending(s.now()) }

// Forget drops what this node knows of a key's availability (it was
// destroyed).
func (s *Service) Forget(ref tenant.KeyRef) {
	s.tracker.Forget(ref)
	s.mu.Lock()
	delete(s.asked, ref)
	s.mu.Unlock()
}

package storetest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// keyService is a registration for (tenantID, typ, version) with a bearer
// secret wrapped under release r1 (opaque bytes here).
func keyService(tenantID, typ string, version uint32) tenant.KeyService {
	return tenant.KeyService{ID: tenant.NewID(), Tenant: tenantID, Type: typ, Version: version,
		URL: "https://keys.acme.example:9443", KID: "acme-data-2026", CA: []byte("-----BEGIN CERTIFICATE-----\n…"),
		Auth: tenant.AuthBearer, OAEP: tenant.OAEPSHA256, Release: "r1", Bearer: []byte("opaque-wrapped-bytes")}
}

func cacheOnlyReq(tenantID, typ string, version uint32, now time.Time) store.RotateRequest {
	r := rotateReq(tenantID, typ, tenant.Key{Source: tenant.SourceCacheOnly, Derivation: tenant.DerivationPBKDF2, Release: "r1", Version: version}, now)
	return r
}

func mustRegister(t *testing.T, s *store.Store, req store.RotateRequest, ks tenant.KeyService) (tenant.Key, tenant.KeyService) {
	t.Helper()
	k, got, err := s.RegisterKeyService(ctx, req, ks, rec)
	if err != nil {
		t.Fatalf("RegisterKeyService() error = %v", err)
	}
	return k, got
}

func equalKeyService(a, b tenant.KeyService) bool {
	return a.ID == b.ID && a.Tenant == b.Tenant && a.Type == b.Type && a.Version == b.Version && a.URL == b.URL &&
		a.KID == b.KID && bytes.Equal(a.CA, b.CA) && a.Auth == b.Auth && a.OAEP == b.OAEP && a.Release == b.Release &&
		bytes.Equal(a.Bearer, b.Bearer) && a.Created.Equal(b.Created) && a.Revoked.Equal(b.Revoked)
}

// testKeyServices: a registration is a new active key of source cache-only
// without wrapped material (the previous one archived), under the rotation
// limits; it reads back as stored (the list without the wrapped bearer);
// it is revoked and lifted once each, audited, and forgotten with its key.
func testKeyServices(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	gen := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0))

	ks := keyService(tn.ID, tenant.TypeData, 2)
	// The rate limit applies as to any rotation; nothing is stored.
	_, _, err := s.RegisterKeyService(ctx, cacheOnlyReq(tn.ID, tenant.TypeData, 2, t0.Add(time.Hour)), ks, rec)
	var rl *store.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("RegisterKeyService() too soon error = %v, want *RateLimitedError", err)
	}
	if _, err := s.KeyService(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 2}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("KeyService() after a refused registration error = %v, want ErrNotFound", err)
	}
	// A version other than the next one is a conflict.
	_, _, err = s.RegisterKeyService(ctx, cacheOnlyReq(tn.ID, tenant.TypeData, 3, t0.Add(day)), keyService(tn.ID, tenant.TypeData, 3), rec)
	wantErr(t, "RegisterKeyService(version 3)", err, store.ErrConflict)

	k, got := mustRegister(t, s, cacheOnlyReq(tn.ID, tenant.TypeData, 2, t0.Add(day)), ks)
	ks.Created = t0.Add(day)
	if !equalKeyService(got, ks) {
		t.Errorf("RegisterKeyService() = %+v, want %+v", got, ks)
	}
	want := tenant.Key{Tenant: tn.ID, Type: tenant.TypeData, Version: 2, State: tenant.StateActive, Source: tenant.SourceCacheOnly,
		Derivation: tenant.DerivationPBKDF2, Release: "r1", Created: t0.Add(day)}
	checkKey(t, "RegisterKeyService() key", k, want)
	ref := refOf(k)
	stored, err := s.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	checkKey(t, "Key(cache-only)", stored, want)
	if prev, _ := s.Key(ctx, refOf(gen)); prev.State != tenant.StateArchived {
		t.Errorf("the generated key is %s after the registration, want archived", prev.State)
	}
	if r, err := s.KeyService(ctx, ref); err != nil || !equalKeyService(r, ks) {
		t.Errorf("KeyService() = %+v, %v, want %+v", r, err, ks)
	}
	list, err := s.KeyServices(ctx, tn.ID)
	if meta := ks.Meta(); err != nil || len(list) != 1 || !equalKeyService(list[0], meta) {
		t.Errorf("KeyServices() = %+v, %v, want [%+v] (without the bearer)", list, err, meta)
	}
	if _, err := s.KeyServices(ctx, tenant.NewID()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("KeyServices(unknown tenant) error = %v, want ErrNotFound", err)
	}

	// Revoked once (audited, listed by RevokedSince), lifted once.
	before := auditSize(t, s)
	revokeRec := audit.Entry{Time: t0, Actor: "system", Action: "key.revoke-detected", Tenant: tn.ID, Key: "data/2"}
	at := t0.Add(2 * day)
	if changed, err := s.RevokeKeyService(ctx, ref, at, revokeRec); err != nil || !changed {
		t.Fatalf("RevokeKeyService() = %v, %v, want a change", changed, err)
	}
	if changed, err := s.RevokeKeyService(ctx, ref, at.Add(time.Hour), revokeRec); err != nil || changed {
		t.Errorf("RevokeKeyService() again = %v, %v, want no change", changed, err)
	}
	if n := auditSize(t, s) - before; n != 1 {
		t.Errorf("two revocations appended %d entries, want 1", n)
	}
	if r, _ := s.KeyService(ctx, ref); !r.Revoked.Equal(at) {
		t.Errorf("KeyService().Revoked = %v, want %v", r.Revoked, at)
	}
	if refs, err := s.RevokedSince(ctx, at); err != nil || len(refs) != 1 || refs[0] != ref {
		t.Errorf("RevokedSince(at) = %v, %v, want [%v]", refs, err, ref)
	}
	if refs, err := s.RevokedSince(ctx, at.Add(time.Microsecond)); err != nil || len(refs) != 0 {
		t.Errorf("RevokedSince(after) = %v, %v, want none", refs, err)
	}
	liftRec := revokeRec
	liftRec.Action = "key.revoke-lifted"
	if changed, err := s.LiftKeyServiceRevocation(ctx, ref, liftRec); err != nil || !changed {
		t.Fatalf("LiftKeyServiceRevocation() = %v, %v, want a change", changed, err)
	}
	if changed, err := s.LiftKeyServiceRevocation(ctx, ref, liftRec); err != nil || changed {
		t.Errorf("LiftKeyServiceRevocation() again = %v, %v, want no change", changed, err)
	}
	if refs, _ := s.RevokedSince(ctx, time.Time{}); len(refs) != 0 {
		t.Errorf("RevokedSince() after the lift = %v, want none", refs)
	}
	if n := auditSize(t, s) - before; n != 2 {
		t.Errorf("revoke and lift appended %d entries, want 2", n)
	}
	if _, err := s.RevokeKeyService(ctx, refOf(gen), at, revokeRec); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeKeyService(a generated key) error = %v, want ErrNotFound", err)
	}

	// Destroying the key forgets the registration.
	mustDestroy(t, s, k, t0.Add(3*day))
	if _, err := s.KeyService(ctx, ref); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("KeyService() after the key's destruction error = %v, want ErrNotFound", err)
	}
}

// testKeyServiceValidation: what RegisterKeyService refuses, storing
// nothing.
func testKeyServiceValidation(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	for _, tc := range []struct {
		name string
		req  func(*store.RotateRequest)
		ks   func(*tenant.KeyService)
	}{
		{"wrapped material", func(r *store.RotateRequest) { r.New.Wrapped = []byte("x") }, nil},
		{"another source", func(r *store.RotateRequest) { r.New.Source = tenant.SourceHSM }, nil},
		{"no version", func(r *store.RotateRequest) { r.New.Version = 0 }, nil},
		{"http", nil, func(k *tenant.KeyService) { k.URL = "http://keys.acme.example" }},
		{"user in URL", nil, func(k *tenant.KeyService) { k.URL = "https://u:p@keys.acme.example" }},
		{"no kid", nil, func(k *tenant.KeyService) { k.KID = "" }},
		{"no CA", nil, func(k *tenant.KeyService) { k.CA = nil }},
		{"bad auth", nil, func(k *tenant.KeyService) { k.Auth = "basic" }},
		{"bad oaep", nil, func(k *tenant.KeyService) { k.OAEP = "md5" }},
		{"bearer without secret", nil, func(k *tenant.KeyService) { k.Bearer = nil }},
		{"mtls with secret", nil, func(k *tenant.KeyService) { k.Auth = tenant.AuthMTLS }},
		{"unknown release", nil, func(k *tenant.KeyService) { k.Release = "r9" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := cacheOnlyReq(tn.ID, tenant.TypeData, 1, t0)
			ks := keyService(tn.ID, tenant.TypeData, 1)
			if tc.req != nil {
				tc.req(&req)
			}
			if tc.ks != nil {
				tc.ks(&ks)
			}
			if _, _, err := s.RegisterKeyService(ctx, req, ks, rec); err == nil {
				t.Fatalf("RegisterKeyService() succeeded, want an error")
			} else if strings.Contains(err.Error(), "opaque-wrapped-bytes") {
				t.Errorf("error %q holds the wrapped bearer", err)
			}
			if ks, _ := s.Keys(ctx, tn.ID, ""); len(ks) != 0 {
				t.Errorf("a refused registration stored %d keys", len(ks))
			}
		})
	}
}

// testKeyServiceCredentials: the first credentials stored for a tenant
// win.
func testKeyServiceCredentials(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	if _, err := s.KeyServiceCredentials(ctx, tn.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("KeyServiceCredentials() of a new tenant error = %v, want ErrNotFound", err)
	}
	first := tenant.KeyServiceCredentials{Tenant: tn.ID, Recipient: "strongroom-cok-" + tn.ID, ClientKey: "strongroom-cok-client-" + tn.ID,
		ClientCert: []byte("cert 1"), Created: t0}
	second := first
	second.ClientCert, second.Created = []byte("cert 2"), t0.Add(time.Hour)
	for i, c := range []tenant.KeyServiceCredentials{first, second} {
		got, err := s.SetKeyServiceCredentials(ctx, c)
		if err != nil || !bytes.Equal(got.ClientCert, first.ClientCert) || !got.Created.Equal(t0) || got.Recipient != first.Recipient {
			t.Errorf("SetKeyServiceCredentials() #%d = %+v, %v, want the first", i+1, got, err)
		}
	}
	if got, err := s.KeyServiceCredentials(ctx, tn.ID); err != nil || !bytes.Equal(got.ClientCert, first.ClientCert) {
		t.Errorf("KeyServiceCredentials() = %+v, %v, want the first", got, err)
	}
	bad := first
	bad.Tenant = tenant.NewID()
	if _, err := s.SetKeyServiceCredentials(ctx, bad); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetKeyServiceCredentials(unknown tenant) error = %v, want ErrNotFound", err)
	}
}

// revokeAcross: a revocation through b is heard of by a's watchers, as a
// destruction is.
func revokeAcross(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	mustRelease(t, a, "r1")
	k, _ := mustRegister(t, a, cacheOnlyReq(tn.ID, tenant.TypeData, 1, t0), keyService(tn.ID, tenant.TypeData, 1))
	wa, _ := watch(t, a)
	revokeRec := audit.Entry{Time: t0, Actor: "system", Action: "key.revoke-detected", Tenant: tn.ID, Key: "data/1"}
	if changed, err := b.RevokeKeyService(ctx, refOf(k), t0.Add(day), revokeRec); err != nil || !changed {
		t.Fatalf("RevokeKeyService() = %v, %v", changed, err)
	}
	hear(t, "revoked through b", wa, refOf(k))
}

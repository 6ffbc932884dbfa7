package storetest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance tests of tenant keys: rotation, destruction, lookups,
// times and error messages.

// checkSeries checks that a tenant's keys of typ are exactly want, and that
// ActiveKey agrees.
func checkSeries(t *testing.T, s *store.Store, tenantID, typ string, want ...tenant.Key) {
	t.Helper()
	got, err := s.Keys(ctx, tenantID, typ)
	if err != nil {
		t.Fatalf("Keys(%s) error = %v", typ, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Keys(%s) = %d keys, want %d", typ, len(got), len(want))
	}
	var active *tenant.Key
	for i := range want {
		checkKey(t, fmt.Sprintf("Keys(%s)[%d]", typ, i), got[i], want[i])
		if want[i].State == tenant.StateActive {
			active = &want[i]
		}
	}
	a, err := s.ActiveKey(ctx, tenantID, typ)
	if active == nil {
		wantErr(t, "ActiveKey(none active)", err, store.ErrNotFound)
	} else if err != nil {
		t.Errorf("ActiveKey(%s) error = %v", typ, err)
	} else {
		checkKey(t, "ActiveKey", a, *active)
	}
}

func testRotateStates(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "2026-1")
	mustRelease(t, s, "2026-2")

	_, err := s.ActiveKey(ctx, tn.ID, tenant.TypeData)
	wantErr(t, "ActiveKey(before any rotation)", err, store.ErrNotFound)
	if ks, err := s.Keys(ctx, tn.ID, ""); err != nil || len(ks) != 0 {
		t.Errorf("Keys() before any rotation = %v, %v, want none", ks, err)
	}

	n1 := newKey("2026-1", "")
	v1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, n1, t0))
	want1 := n1
	want1.Tenant, want1.Type, want1.Version, want1.State, want1.Created = tn.ID, tenant.TypeData, 1, tenant.StateActive, t0
	checkKey(t, "Rotate() first key", v1, want1)
	checkSeries(t, s, tn.ID, tenant.TypeData, want1)

	// v1 active → v2 active, v1 archived.
	n2 := newKey("2026-2", "up-1")
	n2.Tenant, n2.Type, n2.State, n2.Created = tn.ID, tenant.TypeData, tenant.StateActive, t0.Add(day) // agreeing values are fine
	v2 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, n2, t0.Add(day)))
	want2 := n2
	want2.Version = 2
	checkKey(t, "Rotate() second key", v2, want2)
	want1.State = tenant.StateArchived
	checkSeries(t, s, tn.ID, tenant.TypeData, want1, want2)

	v3 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("2026-2", ""), t0.Add(2*day)))
	if v3.Version != 3 {
		t.Errorf("third key version = %d, want 3", v3.Version)
	}
	want2.State = tenant.StateArchived
	checkSeries(t, s, tn.ID, tenant.TypeData, want1, want2, v3)

	// Types are independent series: versions, active keys and rate limits.
	e1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeEventBus, newKey("2026-1", ""), t0.Add(2*day)))
	if e1.Version != 1 || e1.State != tenant.StateActive {
		t.Errorf("first event_bus key = v%d %s, want v1 active", e1.Version, e1.State)
	}
	checkSeries(t, s, tn.ID, tenant.TypeData, want1, want2, v3)
	all, err := s.Keys(ctx, tn.ID, "")
	if err != nil || len(all) != 4 || all[0].Type != tenant.TypeData || all[3].Type != tenant.TypeEventBus {
		t.Errorf("Keys(all types) = %d keys, %v, want 4: data v1-v3 then event_bus v1", len(all), err)
	}

	// Another tenant's series is independent too.
	other := mustTenant(t, s, "other")
	o1 := mustRotate(t, s, rotateReq(other.ID, tenant.TypeData, newKey("2026-1", ""), t0))
	if o1.Version != 1 {
		t.Errorf("other tenant's first key version = %d, want 1", o1.Version)
	}
	checkSeries(t, s, tn.ID, tenant.TypeData, want1, want2, v3)
}

func testRotateRateLimit(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	const interval = 4 * time.Hour
	req := func(now time.Time) store.RotateRequest {
		r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), now)
		r.MinInterval = interval
		return r
	}
	v1 := mustRotate(t, s, req(t0))
	for _, now := range []time.Time{t0, t0.Add(time.Microsecond), t0.Add(interval - time.Microsecond), t0.Add(-day)} {
		_, err := s.Rotate(ctx, req(now), rec)
		wantErr(t, "Rotate(within the interval)", err, store.ErrRateLimited)
		var rl *store.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("Rotate(within the interval) error %T is not a *store.RateLimitedError", err)
		}
		if want := v1.Created.Add(interval); !rl.Next.Equal(want) {
			t.Errorf("RateLimitedError.Next = %s, want previous.Created + MinInterval = %s",
				rl.Next.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
	}
	checkSeries(t, s, tn.ID, tenant.TypeData, v1)
	// Exactly at Next, it is allowed.
	v2 := mustRotate(t, s, req(t0.Add(interval)))
	if v2.Version != 2 {
		t.Errorf("rotation at Next: version %d, want 2", v2.Version)
	}
	// MinInterval 0: no limit.
	r := req(t0.Add(interval))
	r.MinInterval = 0
	mustRotate(t, s, r)

	// The newest key counts in any state: destroying it does not lift the limit.
	t1 := mustTenant(t, s, "dest")
	d1 := mustRotate(t, s, rotateReq(t1.ID, tenant.TypeData, newKey("r1", ""), t0))
	if _, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: t1.ID, Type: tenant.TypeData, Version: d1.Version}, t0.Add(time.Hour), rec); err != nil {
		t.Fatal(err)
	}
	_, err := s.Rotate(ctx, rotateReq(t1.ID, tenant.TypeData, newKey("r1", ""), t0.Add(2*time.Hour)), rec)
	var rl *store.RateLimitedError
	if !errors.As(err, &rl) || !rl.Next.Equal(t0.Add(day)) {
		t.Errorf("Rotate after destroying the newest key, within the interval: error = %v, want RateLimited with Next %s", err, t0.Add(day))
	}
}

func testRotateMaxKeys(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	req := func(now time.Time) store.RotateRequest {
		r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), now)
		r.MaxKeys = 3
		return r
	}
	var ks []tenant.Key
	for i := range 3 {
		ks = append(ks, mustRotate(t, s, req(t0.Add(time.Duration(i)*day))))
	}
	_, err := s.Rotate(ctx, req(t0.Add(3*day)), rec)
	wantErr(t, "Rotate(3 live keys, MaxKeys 3)", err, store.ErrTooManyKeys)
	// The rate limit is checked first.
	_, err = s.Rotate(ctx, req(t0.Add(2*day+time.Hour)), rec)
	wantErr(t, "Rotate(too many and too soon)", err, store.ErrRateLimited)
	// Destroyed keys do not count.
	if _, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, t0.Add(3*day), rec); err != nil {
		t.Fatal(err)
	}
	k4 := mustRotate(t, s, req(t0.Add(3*day)))
	if k4.Version != 4 {
		t.Errorf("version after destroying v1 = %d, want 4 (versions are never reused)", k4.Version)
	}
	_, err = s.Rotate(ctx, req(t0.Add(4*day)), rec)
	wantErr(t, "Rotate(3 live keys again)", err, store.ErrTooManyKeys)
	// The limit is per type.
	r := req(t0.Add(4 * day))
	r.Type = tenant.TypeAnalytics
	mustRotate(t, s, r)
	// MaxKeys 1: a first key only.
	r = req(t0)
	r.Type, r.MaxKeys = tenant.TypeSearchIndex, 1
	mustRotate(t, s, r)
	r.Now = t0.Add(day)
	_, err = s.Rotate(ctx, r, rec)
	wantErr(t, "Rotate(MaxKeys 1, second key)", err, store.ErrTooManyKeys)
}

func testRotateDuplicate(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	other := mustTenant(t, s, "other")
	mustRelease(t, s, "r1")
	mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "secret-a"), t0))
	// Same fingerprint, another type of the same tenant.
	_, err := s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeDeterministic, newKey("r1", "secret-a"), t0), rec)
	wantErr(t, "Rotate(same fingerprint, other type)", err, store.ErrDuplicate)
	// Same type, later.
	_, err = s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "secret-a"), t0.Add(day)), rec)
	wantErr(t, "Rotate(same fingerprint, same type)", err, store.ErrDuplicate)
	// Rate limit and count come first.
	_, err = s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "secret-a"), t0.Add(time.Hour)), rec)
	wantErr(t, "Rotate(duplicate and too soon)", err, store.ErrRateLimited)
	// Another tenant may have the same fingerprint (fingerprints are keyed per tenant by the caller).
	mustRotate(t, s, rotateReq(other.ID, tenant.TypeData, newKey("r1", "secret-a"), t0))
	// No fingerprint: never a duplicate.
	mustRotate(t, s, rotateReq(tn.ID, tenant.TypeDeterministic, newKey("r1", ""), t0))
	// An empty fingerprint is no fingerprint.
	k := newKey("r1", "")
	k.Fingerprint = []byte{}
	got := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeAnalytics, k, t0))
	if got.Fingerprint != nil {
		t.Errorf("an empty fingerprint was stored as %x, want nil", got.Fingerprint)
	}
	// Still refused once the key with that fingerprint is destroyed.
	if _, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, t0.Add(day), rec); err != nil {
		t.Fatal(err)
	}
	_, err = s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeEventBus, newKey("r1", "secret-a"), t0.Add(2*day)), rec)
	wantErr(t, "Rotate(fingerprint of a destroyed key)", err, store.ErrDuplicate)
	// Nothing was stored by the refusals.
	ks, _ := s.Keys(ctx, tn.ID, "")
	if len(ks) != 3 {
		t.Errorf("tenant has %d keys, want 3", len(ks))
	}
}

func testRotateNotFound(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	_, err := s.Rotate(ctx, rotateReq(tenant.NewID(), tenant.TypeData, newKey("r1", ""), t0), rec)
	wantErr(t, "Rotate(unknown tenant)", err, store.ErrNotFound)
	_, err = s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r9", ""), t0), rec)
	wantErr(t, "Rotate(release not installed)", err, store.ErrNotFound)
	if ks, err := s.Keys(ctx, tn.ID, ""); err != nil || len(ks) != 0 {
		t.Errorf("Keys() after refused rotations = %d keys, %v", len(ks), err)
	}
}

func testRotateValidation(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	for name, mod := range map[string]func(*store.RotateRequest){
		"invalid tenant":        func(r *store.RotateRequest) { r.Tenant = "acme" },
		"unknown type":          func(r *store.RotateRequest) { r.Type = "blob" },
		"empty type":            func(r *store.RotateRequest) { r.Type = "" },
		"negative MinInterval":  func(r *store.RotateRequest) { r.MinInterval = -time.Second },
		"MaxKeys 0":             func(r *store.RotateRequest) { r.MaxKeys = 0 },
		"zero Now":              func(r *store.RotateRequest) { r.Now = time.Time{} },
		"other tenant in New":   func(r *store.RotateRequest) { r.New.Tenant = tenant.NewID() },
		"other type in New":     func(r *store.RotateRequest) { r.New.Type = tenant.TypeAnalytics },
		"archived state":        func(r *store.RotateRequest) { r.New.State = tenant.StateArchived },
		"other Created":         func(r *store.RotateRequest) { r.New.Created = t0.Add(time.Second) },
		"Destroyed set":         func(r *store.RotateRequest) { r.New.Destroyed = t0 },
		"unknown source":        func(r *store.RotateRequest) { r.New.Source = "kms" },
		"unknown derivation":    func(r *store.RotateRequest) { r.New.Derivation = "hkdf" },
		"no wrapped material":   func(r *store.RotateRequest) { r.New.Wrapped = nil },
		"huge wrapped material": func(r *store.RotateRequest) { r.New.Wrapped = make([]byte, store.MaxWrapped+1) },
		"huge fingerprint":      func(r *store.RotateRequest) { r.New.Fingerprint = make([]byte, store.MaxFingerprint+1) },
		"invalid release":       func(r *store.RotateRequest) { r.New.Release = "" },
	} {
		r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0)
		mod(&r)
		_, err := s.Rotate(ctx, r, rec)
		wantErr(t, "Rotate("+name+")", err, store.ErrInvalid)
	}
	if ks, err := s.Keys(ctx, tn.ID, ""); err != nil || len(ks) != 0 {
		t.Errorf("Keys() after invalid rotations = %d keys, %v", len(ks), err)
	}
}

// testExpectedVersion: a caller that binds the version into the key sets the
// version it expects; the store refuses any other with ErrConflict.
func testExpectedVersion(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0)
	r.New.Version = 2
	_, err := s.Rotate(ctx, r, rec)
	wantErr(t, "Rotate(version 2 of an empty series)", err, store.ErrConflict)
	r.New.Version = 1
	if k, err := s.Rotate(ctx, r, rec); err != nil || k.Version != 1 {
		t.Fatalf("Rotate(version 1) = %d, %v", k.Version, err)
	}
	r.Now = t0.Add(48 * time.Hour)
	_, err = s.Rotate(ctx, r, rec) // still version 1: taken
	wantErr(t, "Rotate(version 1 again)", err, store.ErrConflict)
	r.New.Version = 2
	if k, err := s.Rotate(ctx, r, rec); err != nil || k.Version != 2 {
		t.Fatalf("Rotate(version 2) = %d, %v", k.Version, err)
	}
}

func testDestroy(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	v1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "fp-1"), t0))
	v2 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(day)))

	// Destroy an archived key.
	at := t0.Add(2 * day)
	d1, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, at, rec)
	if err != nil {
		t.Fatalf("DestroyKey(v1) error = %v", err)
	}
	want1 := v1
	want1.State, want1.Wrapped, want1.Destroyed = tenant.StateDestroyed, nil, at
	want1.Source, want1.Derivation = v1.Source, v1.Derivation
	checkKey(t, "DestroyKey(v1)", d1, want1)
	if d1.Fingerprint == nil {
		t.Error("a destroyed key lost its fingerprint, which must stay to refuse re-uploads")
	}
	v1.State = tenant.StateArchived
	checkSeries(t, s, tn.ID, tenant.TypeData, want1, v2)
	if got, err := s.Key(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}); err != nil || got.Wrapped != nil || got.State != tenant.StateDestroyed {
		t.Errorf("Key(destroyed v1) = %s, %v, want destroyed without wrapped material", fmtKey(got), err)
	}

	// Twice → ErrDestroyed, and nothing changes.
	_, err = s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, at.Add(time.Hour), rec)
	wantErr(t, "DestroyKey(destroyed)", err, store.ErrDestroyed)
	if got, _ := s.Key(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}); !got.Destroyed.Equal(at) {
		t.Errorf("a second DestroyKey changed Destroyed to %s", got.Destroyed)
	}

	// Destroy the active key: none is active.
	d2, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 2}, at, rec)
	if err != nil || d2.State != tenant.StateDestroyed {
		t.Fatalf("DestroyKey(active v2) = %s, %v", fmtKey(d2), err)
	}
	_, err = s.ActiveKey(ctx, tn.ID, tenant.TypeData)
	wantErr(t, "ActiveKey(after destroying the active key)", err, store.ErrNotFound)
	// A rotation makes a new active key, v3.
	v3 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), at))
	if v3.Version != 3 {
		t.Errorf("version after destroying every key = %d, want 3", v3.Version)
	}
	if a, err := s.ActiveKey(ctx, tn.ID, tenant.TypeData); err != nil || a.Version != 3 {
		t.Errorf("ActiveKey() = v%d, %v, want v3", a.Version, err)
	}

	_, err = s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 9}, at, rec)
	wantErr(t, "DestroyKey(missing version)", err, store.ErrNotFound)
	_, err = s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeAnalytics, Version: 1}, at, rec)
	wantErr(t, "DestroyKey(type without keys)", err, store.ErrNotFound)
	_, err = s.DestroyKey(ctx, tenant.KeyRef{Tenant: tenant.NewID(), Type: tenant.TypeData, Version: 1}, at, rec)
	wantErr(t, "DestroyKey(unknown tenant)", err, store.ErrNotFound)
	_, err = s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0}, at, rec)
	wantErr(t, "DestroyKey(version 0)", err, store.ErrInvalid)
	_, err = s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: "bogus", Version: 1}, at, rec)
	wantErr(t, "DestroyKey(invalid type)", err, store.ErrInvalid)
	_, err = s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 3}, time.Time{}, rec)
	wantErr(t, "DestroyKey(zero time)", err, store.ErrInvalid)
	if a, err := s.ActiveKey(ctx, tn.ID, tenant.TypeData); err != nil || a.Version != 3 || a.Wrapped == nil {
		t.Errorf("refused destructions changed the active key: %s, %v", fmtKey(a), err)
	}
}

func testKeyLookups(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	v1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0))
	if got, err := s.Key(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}); err != nil {
		t.Errorf("Key(v1) error = %v", err)
	} else {
		checkKey(t, "Key(v1)", got, v1)
	}
	_, err := s.Key(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 2})
	wantErr(t, "Key(missing version)", err, store.ErrNotFound)
	_, err = s.Key(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeDeterministic, Version: 1})
	wantErr(t, "Key(other type)", err, store.ErrNotFound)
	_, err = s.Key(ctx, tenant.KeyRef{Tenant: tenant.NewID(), Type: tenant.TypeData, Version: 1})
	wantErr(t, "Key(unknown tenant)", err, store.ErrNotFound)
	_, err = s.Keys(ctx, tenant.NewID(), "")
	wantErr(t, "Keys(unknown tenant)", err, store.ErrNotFound)
	_, err = s.ActiveKey(ctx, tenant.NewID(), tenant.TypeData)
	wantErr(t, "ActiveKey(unknown tenant)", err, store.ErrNotFound)
	if ks, err := s.Keys(ctx, tn.ID, tenant.TypeEventBus); err != nil || len(ks) != 0 {
		t.Errorf("Keys(type without keys) = %v, %v, want none", ks, err)
	}

	for name, fn := range map[string]func() error{
		"Keys(invalid tenant)": func() error { _, err := s.Keys(ctx, "acme", ""); return err },
		"Keys(invalid type)":   func() error { _, err := s.Keys(ctx, tn.ID, "Data"); return err },
		"Key(invalid tenant)": func() error {
			_, err := s.Key(ctx, tenant.KeyRef{Tenant: "", Type: tenant.TypeData, Version: 1})
			return err
		},
		"Key(invalid type)": func() error { _, err := s.Key(ctx, tenant.KeyRef{Tenant: tn.ID, Type: "", Version: 1}); return err },
		"Key(version 0)": func() error {
			_, err := s.Key(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0})
			return err
		},
		"ActiveKey(invalid tenant)": func() error { _, err := s.ActiveKey(ctx, "x", tenant.TypeData); return err },
		"ActiveKey(empty type)":     func() error { _, err := s.ActiveKey(ctx, tn.ID, ""); return err },
	} {
		wantErr(t, name, fn(), store.ErrInvalid)
	}

	// Every key type works.
	for i, typ := range tenant.KeyTypes() {
		if _, err := s.Rotate(ctx, rotateReq(tn.ID, typ, newKey("r1", fmt.Sprint("fp", i)), t0.Add(day)), rec); err != nil {
			t.Errorf("Rotate(type %s) error = %v", typ, err)
		}
	}
	if ks, err := s.Keys(ctx, tn.ID, ""); err != nil || len(ks) != 6 {
		t.Errorf("Keys(all) = %d keys, %v, want 6", len(ks), err)
	}
	// Returned slices are copies.
	a, _ := s.ActiveKey(ctx, tn.ID, tenant.TypeAnalytics)
	w := bytes.Clone(a.Wrapped)
	a.Wrapped[0] ^= 0xff
	if b, _ := s.ActiveKey(ctx, tn.ID, tenant.TypeAnalytics); !bytes.Equal(b.Wrapped, w) {
		t.Error("changing a returned key's Wrapped changed the stored key")
	}
}

func testTimestamps(t *testing.T, s *store.Store) {
	// Microsecond precision, UTC, in any input zone; finer input is truncated.
	zone := time.FixedZone("UTC+5:45", 5*3600+45*60)
	in := time.Date(2031, 12, 31, 23, 59, 59, 999999999, zone)
	want := in.Truncate(time.Microsecond).UTC()
	tn, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, in), rec)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.TenantByID(ctx, tn.ID)
	for what, ts := range map[string]time.Time{"CreateTenant result": tn.Created, "TenantByID": got.Created} {
		if !ts.Equal(want) || ts.Location() != time.UTC || ts.Nanosecond()%1000 != 0 {
			t.Errorf("%s Created = %s, want %s (UTC, microseconds)", what, ts.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
	}
	tok, err := s.CreateToken(ctx, auth.Token{Hash: hashOf("x"), Role: auth.RoleOperator, Created: in, Expires: in.Add(time.Microsecond)}, 0, rec)
	if err != nil {
		t.Fatal(err)
	}
	gt, _ := tokenByHash(s, tok.Hash)
	if !gt.Created.Equal(want) || !gt.Expires.Equal(want.Add(time.Microsecond)) || gt.Expires.Location() != time.UTC {
		t.Errorf("token times = %s, %s, want %s, +1µs", gt.Created, gt.Expires, want)
	}
	r, err := s.InstallRelease(ctx, release.Installation{ID: "r1", Bundle: bundle("r1"), Installed: in}, rec)
	if err != nil || !r.Installed.Equal(want) {
		t.Errorf("InstallRelease Installed = %s, %v, want %s", r.Installed, err, want)
	}
	rs, _ := s.Releases(ctx)
	if len(rs) != 1 || !rs[0].Installed.Equal(want) {
		t.Errorf("Releases() Installed = %+v, want %s", rs, want)
	}
	k := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), in))
	if !k.Created.Equal(want) {
		t.Errorf("Rotate() Created = %s, want %s", k.Created, want)
	}
	// The rate limit compares microsecond times: 1 ns after Next is "at Next".
	req := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), want.Add(day).Add(-time.Microsecond))
	_, err = s.Rotate(ctx, req, rec)
	wantErr(t, "Rotate(1µs before Next)", err, store.ErrRateLimited)
	req.Now = want.Add(day).Add(999 * time.Nanosecond)
	if k2, err := s.Rotate(ctx, req, rec); err != nil || !k2.Created.Equal(want.Add(day)) {
		t.Errorf("Rotate(at Next + 999ns) = %s, %v, want Created at Next", k2.Created, err)
	}
	d, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, in.Add(time.Hour), rec)
	if err != nil || !d.Destroyed.Equal(want.Add(time.Hour)) {
		t.Errorf("DestroyKey Destroyed = %s, %v", d.Destroyed, err)
	}
	g, _ := s.Key(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1})
	if !g.Destroyed.Equal(want.Add(time.Hour)) || g.Destroyed.Location() != time.UTC {
		t.Errorf("Key() Destroyed = %s, want %s", g.Destroyed, want.Add(time.Hour))
	}
	// Old dates survive too.
	old := time.Date(1971, 2, 3, 4, 5, 6, 7000, time.UTC)
	ot, err := s.CreateTenant(ctx, tenant.New("old", tenant.EnvSandbox, old), rec)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := s.TenantByID(ctx, ot.ID); !g.Created.Equal(old) {
		t.Errorf("Created 1971 round trip = %s, want %s", g.Created, old)
	}
}

// testErrorMessages provokes the errors that concern keys and checks that no
// message holds the wrapped key, the fingerprint or a token hash, in raw, hex
// or base64-ish form.
func testErrorMessages(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	k := newKey("r1", "secret-fp")
	v1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, k, t0))
	tok, err := s.CreateToken(ctx, auth.Token{Hash: hashOf("tok"), Role: auth.RoleOperator, Created: t0}, 0, rec)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	add := func(_ any, err error) { errs = append(errs, err) }
	add(s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, k, t0), rec))               // rate limited
	add(s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeDeterministic, k, t0), rec))      // duplicate
	add(s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeAnalytics, k, time.Time{}), rec)) // invalid
	big := k
	big.Wrapped = make([]byte, store.MaxWrapped+1)
	copy(big.Wrapped, k.Wrapped)
	add(s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeAnalytics, big, t0), rec))
	add(s.CreateToken(ctx, auth.Token{Hash: tok.Hash, Role: auth.RoleOperator, Created: t0}, 0, rec))
	add(tokenByHash(s, hashOf("nope")))
	add(s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, t0, rec))
	add(s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, t0, rec))
	secrets := [][]byte{v1.Wrapped, v1.Fingerprint, tok.Hash[:], k.Wrapped[:8], v1.Fingerprint[:8], tok.Hash[:8]}
	n := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		n++
		msg := err.Error() + fmt.Sprintf(" %v %+v %#v", err, err, err)
		if !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("error %q does not start with \"store: \"", err)
		}
		for _, sec := range secrets {
			for _, form := range []string{string(sec), hex.EncodeToString(sec), strings.ToUpper(hex.EncodeToString(sec)), fmt.Sprint(sec)} {
				if strings.Contains(msg, form) {
					t.Errorf("error %q contains key material or a hash", err.Error())
				}
			}
		}
	}
	if n != len(errs)-1 { // the first DestroyKey succeeds
		t.Errorf("%d of %d calls failed, want %d", n, len(errs), len(errs)-1)
	}
}

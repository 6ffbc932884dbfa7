// Package storetest is the conformance suite every store driver passes, and
// Postgres, which gives a test a throwaway PostgreSQL database.
//
// A driver's test calls Run with a function that opens a fresh, empty store;
// each subtest opens its own. The suite checks behaviour through the
// *store.Store interface only. It never sleeps: every time is injected.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Run runs the conformance suite. open must return a fresh, empty store and
// arrange (t.Cleanup) for it to be closed and removed.
func Run(t *testing.T, open func(t *testing.T) *store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *store.Store)
	}{
		{"Tenants", testTenants},
		{"TenantValidation", testTenantValidation},
		{"Tokens", testTokens},
		{"TokenValidation", testTokenValidation},
		{"Releases", testReleases},
		{"ReleaseValidation", testReleaseValidation},
		{"RotateStates", testRotateStates},
		{"RotateRateLimit", testRotateRateLimit},
		{"RotateMaxKeys", testRotateMaxKeys},
		{"RotateDuplicateFingerprint", testRotateDuplicate},
		{"RotateNotFound", testRotateNotFound},
		{"RotateValidation", testRotateValidation},
		{"ExpectedVersion", testExpectedVersion},
		{"Destroy", testDestroy},
		{"KeyLookups", testKeyLookups},
		{"Timestamps", testTimestamps},
		{"ErrorsNeverHoldKeyMaterial", testErrorMessages},
		{"ConcurrentRotateSameSeries", testConcurrentSame},
		{"ConcurrentRotateManyTenants", testConcurrentMany},
		{"ConcurrentDuplicateAcrossTypes", testConcurrentDuplicate},
		{"DerivationOptOut", testDerivationOptOut},
		{"ExportKey", testExportKey},
		{"ConcurrentExportKey", testConcurrentExportKey},
		{"UploadCerts", testUploadCerts},
		{"UploadCertValidation", testUploadCertValidation},
		{"Restore", testRestore},
		{"RestoreMaxKeys", testRestoreMaxKeys},
		{"RestoreValidation", testRestoreValidation},
		{"ConcurrentRestoreRotate", testConcurrentRestoreRotate},
		{"DestroyedSince", testDestroyedSince},
		{"WatchDestroyed", testWatchDestroyed},
		{"BYOKErrorsNeverHoldKeyMaterial", testBYOKErrorMessages},
		{"AuditAppend", testAuditAppend},
		{"AuditInvalid", testAuditInvalid},
		{"AuditFilters", testAuditFilters},
		{"AuditMany", testAuditMany},
		{"AuditCheckpoints", testAuditCheckpoints},
		{"AuditLifecycle", testAuditLifecycle},
		{"AuditEntryPerWrite", testAuditEntryPerWrite},
		{"AuditInvalidEntry", testAuditInvalidEntry},
		{"AuditConcurrent", testAuditConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

// Rec is the audit entry of lifecycle writes in tests that are not about
// the audit log: a valid one, which the store appends with each change.
var Rec = audit.Entry{Time: t0, Actor: "storetest", Action: "storetest.change"}

// rec is Rec, for the suite.
var rec = Rec

// t0 is the suite's epoch: microsecond-aligned, as the store keeps times.
var t0 = time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC)

const day = 24 * time.Hour

func mustTenant(t *testing.T, s *store.Store, name string) tenant.Tenant {
	t.Helper()
	tn, err := s.CreateTenant(ctx, tenant.New(name, tenant.EnvProduction, t0), rec)
	if err != nil {
		t.Fatalf("CreateTenant(%q) error = %v", name, err)
	}
	return tn
}

// bundle is a PEM release bundle stand-in.
func bundle(id string) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "STRONGROOM RELEASE BUNDLE", Bytes: []byte("bundle " + id)})
}

func mustRelease(t *testing.T, s *store.Store, id string) release.Installation {
	t.Helper()
	r, err := s.InstallRelease(ctx, release.Installation{ID: id, Bundle: bundle(id), Installed: t0}, rec)
	if err != nil {
		t.Fatalf("InstallRelease(%s) error = %v", id, err)
	}
	return r
}

// newKey is a new key with distinct wrapped bytes and, if fp != "", a
// fingerprint.
func newKey(release, fp string) tenant.Key {
	w := sha256.Sum256([]byte("wrapped " + release + fp + time.Now().String()))
	k := tenant.Key{Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2, Release: release, Wrapped: append(w[:], 0xee)}
	if fp != "" {
		f := sha256.Sum256([]byte("fingerprint " + fp))
		k.Source, k.Derivation, k.Fingerprint = tenant.SourceUploaded, tenant.DerivationNone, f[:]
	}
	return k
}

func rotateReq(tenantID, typ string, k tenant.Key, now time.Time) store.RotateRequest {
	return store.RotateRequest{Tenant: tenantID, Type: typ, New: k, MinInterval: day, MaxKeys: 10, Now: now}
}

func mustRotate(t *testing.T, s *store.Store, req store.RotateRequest) tenant.Key {
	t.Helper()
	k, err := s.Rotate(ctx, req, rec)
	if err != nil {
		t.Fatalf("Rotate(%s, %s, now=%s) error = %v", req.Tenant, req.Type, req.Now.Format(time.RFC3339Nano), err)
	}
	return k
}

// tokenByHash is TokenByHash with "not found" as store.ErrNotFound,
// checked to come with a zero token and a nil error.
func tokenByHash(s *store.Store, h [32]byte) (auth.Token, error) {
	tok, found, err := s.TokenByHash(ctx, h)
	if err == nil && !found {
		if tok != (auth.Token{}) {
			return tok, fmt.Errorf("TokenByHash() = %+v, found false: want a zero token", tok)
		}
		return tok, store.ErrNotFound
	}
	return tok, err
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s error = %v, want %v", what, err, want)
		return
	}
	if !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("%s error %q does not start with \"store: \"", what, err)
	}
}

func equalKey(a, b tenant.Key) bool {
	return a.Tenant == b.Tenant && a.Type == b.Type && a.Version == b.Version && a.State == b.State &&
		a.Source == b.Source && a.Derivation == b.Derivation && a.Release == b.Release &&
		bytes.Equal(a.Wrapped, b.Wrapped) && (a.Wrapped == nil) == (b.Wrapped == nil) &&
		bytes.Equal(a.Fingerprint, b.Fingerprint) && (a.Fingerprint == nil) == (b.Fingerprint == nil) &&
		a.Created.Equal(b.Created) && a.Destroyed.Equal(b.Destroyed)
}

func fmtKey(k tenant.Key) string {
	return fmt.Sprintf("{%s %s v%d %s %s %s rel=%s wrapped=%d bytes fp=%d bytes created=%s destroyed=%s}",
		k.Tenant, k.Type, k.Version, k.State, k.Source, k.Derivation, k.Release, len(k.Wrapped), len(k.Fingerprint),
		k.Created.Format(time.RFC3339Nano), k.Destroyed.Format(time.RFC3339Nano))
}

func checkKey(t *testing.T, what string, got, want tenant.Key) {
	t.Helper()
	if !equalKey(got, want) {
		t.Errorf("%s = %s, want %s", what, fmtKey(got), fmtKey(want))
	}
}

func equalTenant(a, b tenant.Tenant) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Env == b.Env && a.Created.Equal(b.Created) && a.DerivationOptOut == b.DerivationOptOut
}

func testTenants(t *testing.T, s *store.Store) {
	if ts, err := s.Tenants(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("Tenants() on a fresh store = %v, %v, want none", ts, err)
	}
	a := tenant.New("zeta", tenant.EnvProduction, t0)
	if !a.DerivationOptOut || store.ValidID("tenant", a.ID) != nil || len(a.ID) != 32 {
		t.Fatalf("NewTenant() = %+v: want a 32-hex-digit ID and DerivationOptOut true (the default)", a)
	}
	got, err := s.CreateTenant(ctx, a, rec)
	if err != nil || !equalTenant(got, a) {
		t.Fatalf("CreateTenant() = %+v, %v, want %+v", got, err, a)
	}
	// An empty ID is generated; DerivationOptOut false is kept; UUIDv4 IDs work.
	b, err := s.CreateTenant(ctx, tenant.Tenant{Name: "alpha-1", Env: tenant.EnvSandbox, Created: t0.Add(time.Hour)}, rec)
	if err != nil || store.ValidID("tenant", b.ID) != nil || b.DerivationOptOut {
		t.Fatalf("CreateTenant(no ID) = %+v, %v, want a generated ID and DerivationOptOut false", b, err)
	}
	c, err := s.CreateTenant(ctx, tenant.Tenant{ID: "0b7a3c2e-5f1d-4a8b-9c6d-1e2f3a4b5c6d", Name: "m0", Env: tenant.EnvDeveloper, Created: t0, DerivationOptOut: true}, rec)
	if err != nil {
		t.Fatalf("CreateTenant(UUIDv4 ID) error = %v", err)
	}

	for _, want := range []tenant.Tenant{a, b, c} {
		if got, err := s.TenantByName(ctx, want.Name); err != nil || !equalTenant(got, want) {
			t.Errorf("TenantByName(%q) = %+v, %v, want %+v", want.Name, got, err, want)
		}
		if got, err := s.TenantByID(ctx, want.ID); err != nil || !equalTenant(got, want) {
			t.Errorf("TenantByID(%s) = %+v, %v, want %+v", want.ID, got, err, want)
		}
	}
	ts, err := s.Tenants(ctx)
	if err != nil || len(ts) != 3 || ts[0].Name != "alpha-1" || ts[1].Name != "m0" || ts[2].Name != "zeta" {
		t.Errorf("Tenants() = %+v, %v, want alpha-1, m0, zeta in that order", ts, err)
	}

	dupName := tenant.New("zeta", tenant.EnvSandbox, t0)
	_, err = s.CreateTenant(ctx, dupName, rec)
	wantErr(t, "CreateTenant(same name)", err, store.ErrExists)
	dupID := a
	dupID.Name = "other"
	_, err = s.CreateTenant(ctx, dupID, rec)
	wantErr(t, "CreateTenant(same ID)", err, store.ErrExists)
	if ts, _ := s.Tenants(ctx); len(ts) != 3 {
		t.Errorf("after refused duplicates, %d tenants, want 3", len(ts))
	}

	_, err = s.TenantByName(ctx, "missing")
	wantErr(t, "TenantByName(missing)", err, store.ErrNotFound)
	_, err = s.TenantByID(ctx, tenant.NewID())
	wantErr(t, "TenantByID(missing)", err, store.ErrNotFound)
}

func testTenantValidation(t *testing.T, s *store.Store) {
	ok := tenant.New("fine", tenant.EnvProduction, t0)
	for name, mod := range map[string]func(*tenant.Tenant){
		"empty name":         func(x *tenant.Tenant) { x.Name = "" },
		"upper case":         func(x *tenant.Tenant) { x.Name = "Acme" },
		"leading hyphen":     func(x *tenant.Tenant) { x.Name = "-acme" },
		"underscore":         func(x *tenant.Tenant) { x.Name = "ac_me" },
		"64 characters":      func(x *tenant.Tenant) { x.Name = strings.Repeat("a", 64) },
		"space":              func(x *tenant.Tenant) { x.Name = "ac me" },
		"newline":            func(x *tenant.Tenant) { x.Name = "acme\n" },
		"unknown env":        func(x *tenant.Tenant) { x.Env = "staging" },
		"empty env":          func(x *tenant.Tenant) { x.Env = "" },
		"short ID":           func(x *tenant.Tenant) { x.ID = "abc" },
		"upper-case ID":      func(x *tenant.Tenant) { x.ID = strings.ToUpper(tenant.NewID()) },
		"UUIDv1 ID":          func(x *tenant.Tenant) { x.ID = "0b7a3c2e-5f1d-1a8b-9c6d-1e2f3a4b5c6d" },
		"zero Created":       func(x *tenant.Tenant) { x.Created = time.Time{} },
		"Created year 10000": func(x *tenant.Tenant) { x.Created = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		bad := ok
		mod(&bad)
		_, err := s.CreateTenant(ctx, bad, rec)
		wantErr(t, "CreateTenant("+name+")", err, store.ErrInvalid)
	}
	if _, err := s.CreateTenant(ctx, tenant.New(strings.Repeat("a", 63), tenant.EnvProduction, t0), rec); err != nil {
		t.Errorf("CreateTenant(63-character name) error = %v", err)
	}
	_, err := s.TenantByName(ctx, "Bad Name")
	wantErr(t, "TenantByName(invalid)", err, store.ErrInvalid)
	_, err = s.TenantByID(ctx, "not-an-id")
	wantErr(t, "TenantByID(invalid)", err, store.ErrInvalid)
	if ts, _ := s.Tenants(ctx); len(ts) != 1 {
		t.Errorf("after refused tenants, %d tenants, want 1", len(ts))
	}
}

func hashOf(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

func equalToken(a, b auth.Token) bool {
	return a.ID == b.ID && a.Hash == b.Hash && a.Role == b.Role && a.Tenant == b.Tenant &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires) && a.Name == b.Name
}

func testTokens(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	op := auth.Token{Hash: hashOf("op-secret"), Role: auth.RoleOperator, Created: t0, Name: "ops on-call"}
	op, err := s.CreateToken(ctx, op, rec)
	if err != nil || store.ValidID("token", op.ID) != nil {
		t.Fatalf("CreateToken(operator, all tenants) = %+v, %v, want a generated ID", op, err)
	}
	app := auth.Token{ID: tenant.NewID(), Hash: hashOf("app-secret"), Role: auth.RoleApp, Tenant: tn.ID,
		Created: t0, Expires: t0.Add(90 * day), Name: "billing ✓"}
	if got, err := s.CreateToken(ctx, app, rec); err != nil || !equalToken(got, app) {
		t.Fatalf("CreateToken(app) = %+v, %v, want %+v", got, err, app)
	}
	aud := auth.Token{Hash: hashOf("aud-secret"), Role: auth.RoleAuditor, Tenant: tn.ID, Created: t0}
	if aud, err = s.CreateToken(ctx, aud, rec); err != nil {
		t.Fatalf("CreateToken(auditor of one tenant) error = %v", err)
	}
	adm := auth.Token{Hash: hashOf("adm-secret"), Role: auth.RoleTenantAdmin, Tenant: tn.ID, Created: t0}
	if adm, err = s.CreateToken(ctx, adm, rec); err != nil {
		t.Fatalf("CreateToken(tenant-admin) error = %v", err)
	}

	for _, want := range []auth.Token{op, app, aud, adm} {
		if got, err := tokenByHash(s, want.Hash); err != nil || !equalToken(got, want) {
			t.Errorf("TokenByHash(%s) = %+v, %v, want %+v", want.ID, got, err, want)
		}
	}
	if !op.Expires.IsZero() {
		t.Errorf("operator token Expires = %v, want zero (never)", op.Expires)
	}
	if app.Expired(t0.Add(90*day-time.Microsecond)) || !app.Expired(t0.Add(90*day)) || op.Expired(t0.Add(1e5*day)) {
		t.Error("Token.Expired is wrong")
	}

	_, err = tokenByHash(s, hashOf("unknown"))
	wantErr(t, "TokenByHash(unknown)", err, store.ErrNotFound)

	dupHash := auth.Token{Hash: app.Hash, Role: auth.RoleOperator, Created: t0}
	_, err = s.CreateToken(ctx, dupHash, rec)
	wantErr(t, "CreateToken(same hash)", err, store.ErrExists)
	dupID := auth.Token{ID: app.ID, Hash: hashOf("other"), Role: auth.RoleOperator, Created: t0}
	_, err = s.CreateToken(ctx, dupID, rec)
	wantErr(t, "CreateToken(same ID)", err, store.ErrExists)
	noTenant := auth.Token{Hash: hashOf("orphan"), Role: auth.RoleApp, Tenant: tenant.NewID(), Created: t0}
	_, err = s.CreateToken(ctx, noTenant, rec)
	wantErr(t, "CreateToken(unknown tenant)", err, store.ErrNotFound)

	if err := s.DeleteToken(ctx, app.ID, rec); err != nil {
		t.Fatalf("DeleteToken() error = %v", err)
	}
	_, err = tokenByHash(s, app.Hash)
	wantErr(t, "TokenByHash(deleted)", err, store.ErrNotFound)
	wantErr(t, "DeleteToken(deleted)", s.DeleteToken(ctx, app.ID, rec), store.ErrNotFound)
	wantErr(t, "DeleteToken(invalid ID)", s.DeleteToken(ctx, "x", rec), store.ErrInvalid)
	if got, err := tokenByHash(s, op.Hash); err != nil || !equalToken(got, op) {
		t.Errorf("other tokens after DeleteToken: TokenByHash = %+v, %v", got, err)
	}
	// The hash of a deleted token is free again.
	if _, err := s.CreateToken(ctx, auth.Token{Hash: app.Hash, Role: auth.RoleApp, Tenant: tn.ID, Created: t0}, rec); err != nil {
		t.Errorf("CreateToken(hash of a deleted token) error = %v", err)
	}
}

func testTokenValidation(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	ok := auth.Token{Hash: hashOf("s"), Role: auth.RoleApp, Tenant: tn.ID, Created: t0}
	for name, mod := range map[string]func(*auth.Token){
		"unknown role":            func(x *auth.Token) { x.Role = "admin" },
		"empty role":              func(x *auth.Token) { x.Role = "" },
		"app for all tenants":     func(x *auth.Token) { x.Tenant = "" },
		"tenant-admin for all":    func(x *auth.Token) { x.Role, x.Tenant = auth.RoleTenantAdmin, "" },
		"invalid tenant ID":       func(x *auth.Token) { x.Tenant = "acme" },
		"invalid ID":              func(x *auth.Token) { x.ID = "token-1" },
		"zero hash":               func(x *auth.Token) { x.Hash = [32]byte{} },
		"zero Created":            func(x *auth.Token) { x.Created = time.Time{} },
		"Expires before Created":  func(x *auth.Token) { x.Expires = t0.Add(-time.Second) },
		"Expires equals Created":  func(x *auth.Token) { x.Expires = t0 },
		"name too long":           func(x *auth.Token) { x.Name = strings.Repeat("n", auth.MaxName+1) },
		"name with control chars": func(x *auth.Token) { x.Name = "a\x00b" },
		"name not UTF-8":          func(x *auth.Token) { x.Name = "\xff" },
	} {
		bad := ok
		mod(&bad)
		_, err := s.CreateToken(ctx, bad, rec)
		wantErr(t, "CreateToken("+name+")", err, store.ErrInvalid)
	}
	if _, err := tokenByHash(s, ok.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused token was stored: TokenByHash error = %v", err)
	}
}

func equalRelease(a, b release.Installation) bool {
	return a.ID == b.ID && bytes.Equal(a.Bundle, b.Bundle) && a.Installed.Equal(b.Installed)
}

func testReleases(t *testing.T, s *store.Store) {
	if rs, err := s.Releases(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("Releases() on a fresh store = %v, %v, want none", rs, err)
	}
	r2 := release.Installation{ID: "2026-2", Bundle: bundle("2026-2"), Installed: t0.Add(time.Hour)}
	r1 := release.Installation{ID: "2026-1", Bundle: bundle("2026-1"), Installed: t0}
	for _, r := range []release.Installation{r2, r1} {
		if got, err := s.InstallRelease(ctx, r, rec); err != nil || !equalRelease(got, r) {
			t.Fatalf("InstallRelease(%s) = %+v, %v", r.ID, got, err)
		}
	}
	// Idempotent: the same bytes again return the release as first installed.
	again := r1
	again.Bundle = bytes.Clone(r1.Bundle)
	again.Installed = t0.Add(day)
	if got, err := s.InstallRelease(ctx, again, rec); err != nil || !equalRelease(got, r1) {
		t.Errorf("InstallRelease(same bundle again) = %+v, %v, want the first installation %+v", got, err, r1)
	}
	other := release.Installation{ID: r1.ID, Bundle: bundle("something else"), Installed: t0.Add(day)}
	_, err := s.InstallRelease(ctx, other, rec)
	wantErr(t, "InstallRelease(different bundle, same ID)", err, store.ErrConflict)

	rs, err := s.Releases(ctx)
	if err != nil || len(rs) != 2 || !equalRelease(rs[0], r1) || !equalRelease(rs[1], r2) {
		t.Errorf("Releases() = %+v, %v, want [%s %s] (oldest first) with their first bundles", rs, err, r1.ID, r2.ID)
	}
}

func testReleaseValidation(t *testing.T, s *store.Store) {
	for name, r := range map[string]release.Installation{
		"empty ID":           {ID: "", Bundle: bundle("x"), Installed: t0},
		"ID with slash":      {ID: "2026/1", Bundle: bundle("x"), Installed: t0},
		"ID leading dot":     {ID: ".2026", Bundle: bundle("x"), Installed: t0},
		"ID too long":        {ID: strings.Repeat("r", 65), Bundle: bundle("x"), Installed: t0},
		"empty bundle":       {ID: "r1", Installed: t0},
		"bundle not PEM":     {ID: "r1", Bundle: []byte{0x30, 0x82, 0x01}, Installed: t0},
		"bundle too big":     {ID: "r1", Bundle: append(bundle("x"), make([]byte, store.MaxBundle)...), Installed: t0},
		"zero Installed":     {ID: "r1", Bundle: bundle("x")},
		"Installed too late": {ID: "r1", Bundle: bundle("x"), Installed: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		_, err := s.InstallRelease(ctx, r, rec)
		wantErr(t, "InstallRelease("+name+")", err, store.ErrInvalid)
	}
	if rs, _ := s.Releases(ctx); len(rs) != 0 {
		t.Errorf("refused releases were stored: %+v", rs)
	}
}

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
	tok, err := s.CreateToken(ctx, auth.Token{Hash: hashOf("x"), Role: auth.RoleOperator, Created: in, Expires: in.Add(time.Microsecond)}, rec)
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
	tok, err := s.CreateToken(ctx, auth.Token{Hash: hashOf("tok"), Role: auth.RoleOperator, Created: t0}, rec)
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
	add(s.CreateToken(ctx, auth.Token{Hash: tok.Hash, Role: auth.RoleOperator, Created: t0}, rec))
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

// testConcurrentSame: 20 goroutines rotate the same series at once with a
// 24 h limit: exactly one wins, 19 are rate limited, one key is active.
func testConcurrentSame(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	const n = 20
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Distinct times within the window: whichever wins, the others are limited.
			_, errs[i] = s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", fmt.Sprint("c", i)), t0.Add(time.Duration(i)*time.Minute)), rec)
		}()
	}
	close(start)
	wg.Wait()
	won, limited := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrRateLimited):
			limited++
		default:
			t.Errorf("goroutine %d: Rotate() error = %v, want nil or ErrRateLimited", i, err)
		}
	}
	if won != 1 || limited != n-1 {
		t.Errorf("concurrent rotations: %d succeeded and %d were rate limited, want 1 and %d", won, limited, n-1)
	}
	ks, err := s.Keys(ctx, tn.ID, tenant.TypeData)
	if err != nil || len(ks) != 1 || ks[0].State != tenant.StateActive || ks[0].Version != 1 {
		t.Errorf("after concurrent rotations, Keys() = %d keys, %v, want exactly v1 active", len(ks), err)
	}

	// Without a rate limit every rotation succeeds, one after another:
	// versions 2..21 without gaps, exactly one active.
	var wg2 sync.WaitGroup
	start2 := make(chan struct{})
	for i := range n {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			<-start2
			r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(day))
			r.MinInterval, r.MaxKeys = 0, 100
			_, errs[i] = s.Rotate(ctx, r, rec)
		}()
	}
	close(start2)
	wg2.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: Rotate(no limit) error = %v", i, err)
		}
	}
	ks, err = s.Keys(ctx, tn.ID, tenant.TypeData)
	if err != nil || len(ks) != n+1 {
		t.Fatalf("Keys() = %d keys, %v, want %d", len(ks), err, n+1)
	}
	active := 0
	for i, k := range ks {
		if k.Version != uint32(i+1) {
			t.Errorf("Keys()[%d].Version = %d, want %d", i, k.Version, i+1)
		}
		if k.State == tenant.StateActive {
			active++
		}
	}
	if active != 1 || ks[n].State != tenant.StateActive {
		t.Errorf("%d active keys, want exactly one, the newest", active)
	}
}

// testConcurrentMany: concurrent first rotations of 20 tenants all succeed.
func testConcurrentMany(t *testing.T, s *store.Store) {
	mustRelease(t, s, "r1")
	const n = 20
	tenants := make([]tenant.Tenant, n)
	for i := range tenants {
		tenants[i] = mustTenant(t, s, fmt.Sprintf("tenant-%02d", i))
	}
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.Rotate(ctx, rotateReq(tenants[i].ID, tenant.TypeData, newKey("r1", "same-secret"), t0), rec)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("tenant %d: Rotate() error = %v", i, err)
		}
	}
	for _, tn := range tenants {
		if k, err := s.ActiveKey(ctx, tn.ID, tenant.TypeData); err != nil || k.Version != 1 {
			t.Errorf("tenant %s: ActiveKey() = v%d, %v, want v1", tn.Name, k.Version, err)
		}
	}
}

// testConcurrentDuplicate: the same fingerprint uploaded at once as every key
// type of one tenant (different series, so different rotation locks on
// PostgreSQL): exactly one upload wins, the others are duplicates.
func testConcurrentDuplicate(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	types := tenant.KeyTypes()
	start := make(chan struct{})
	errs := make([]error, len(types))
	var wg sync.WaitGroup
	for i, typ := range types {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.Rotate(ctx, rotateReq(tn.ID, typ, newKey("r1", "uploaded twice"), t0), rec)
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrDuplicate):
		default:
			t.Errorf("%s: Rotate() error = %v, want nil or ErrDuplicate", types[i], err)
		}
	}
	ks, err := s.Keys(ctx, tn.ID, "")
	if won != 1 || err != nil || len(ks) != 1 {
		t.Errorf("%d uploads of one secret succeeded and %d keys stored (%v), want 1 and 1", won, len(ks), err)
	}
}

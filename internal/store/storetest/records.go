package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance tests of tenants, tokens and releases.

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
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires) && a.Name == b.Name && a.Parent == b.Parent &&
		a.Revoked.Equal(b.Revoked) && a.RevokedBy == b.RevokedBy && a.LastUsed.Equal(b.LastUsed)
}

func testTokens(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	op := auth.Token{Hash: hashOf("op-secret"), Role: auth.RoleOperator, Created: t0, Name: "ops on-call"}
	op, err := s.CreateToken(ctx, op, 0, rec)
	if err != nil || store.ValidID("token", op.ID) != nil {
		t.Fatalf("CreateToken(operator, all tenants) = %+v, %v, want a generated ID", op, err)
	}
	app := auth.Token{ID: tenant.NewID(), Hash: hashOf("app-secret"), Role: auth.RoleApp, Tenant: tn.ID,
		Created: t0, Expires: t0.Add(90 * day), Name: "billing ✓"}
	if got, err := s.CreateToken(ctx, app, 0, rec); err != nil || !equalToken(got, app) {
		t.Fatalf("CreateToken(app) = %+v, %v, want %+v", got, err, app)
	}
	aud := auth.Token{Hash: hashOf("aud-secret"), Role: auth.RoleAuditor, Tenant: tn.ID, Created: t0}
	if aud, err = s.CreateToken(ctx, aud, 0, rec); err != nil {
		t.Fatalf("CreateToken(auditor of one tenant) error = %v", err)
	}
	adm := auth.Token{Hash: hashOf("adm-secret"), Role: auth.RoleTenantAdmin, Tenant: tn.ID, Created: t0}
	if adm, err = s.CreateToken(ctx, adm, 0, rec); err != nil {
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
	_, err = s.CreateToken(ctx, dupHash, 0, rec)
	wantErr(t, "CreateToken(same hash)", err, store.ErrExists)
	dupID := auth.Token{ID: app.ID, Hash: hashOf("other"), Role: auth.RoleOperator, Created: t0}
	_, err = s.CreateToken(ctx, dupID, 0, rec)
	wantErr(t, "CreateToken(same ID)", err, store.ErrExists)
	noTenant := auth.Token{Hash: hashOf("orphan"), Role: auth.RoleApp, Tenant: tenant.NewID(), Created: t0}
	_, err = s.CreateToken(ctx, noTenant, 0, rec)
	wantErr(t, "CreateToken(unknown tenant)", err, store.ErrNotFound)

	// Revoked, the token keeps its record, with when and by whom.
	revokedAt := t0.Add(day)
	got, made, err := s.RevokeToken(ctx, app.ID, op.ID, revokedAt, rec)
	want := app
	want.Revoked, want.RevokedBy = revokedAt, op.ID
	if err != nil || len(made) != 0 || !equalToken(got, want) {
		t.Fatalf("RevokeToken() = %+v, %v, %v, want %+v and none made by it", got, made, err, want)
	}
	if got, err := tokenByHash(s, app.Hash); err != nil || !equalToken(got, want) || got.State(revokedAt) != auth.StateRevoked {
		t.Errorf("TokenByHash(revoked) = %+v, %v, want %+v", got, err, want)
	}
	_, _, err = s.RevokeToken(ctx, app.ID, op.ID, revokedAt.Add(time.Hour), rec)
	wantErr(t, "RevokeToken(revoked)", err, store.ErrRevoked)
	var re *store.RevokedError
	if !errors.As(err, &re) || re.ID != app.ID || !re.At.Equal(revokedAt) ||
		!strings.Contains(err.Error(), revokedAt.Format(time.RFC3339)) {
		t.Errorf("RevokeToken(revoked) error = %#v, want a *RevokedError saying %s", err, revokedAt.Format(time.RFC3339))
	}
	_, _, err = s.RevokeToken(ctx, tenant.NewID(), "", revokedAt, rec)
	wantErr(t, "RevokeToken(unknown)", err, store.ErrNotFound)
	for name, args := range map[string][2]string{"invalid ID": {"x", ""}, "invalid revoker": {op.ID, "x"}} {
		_, _, err = s.RevokeToken(ctx, args[0], args[1], revokedAt, rec)
		wantErr(t, "RevokeToken("+name+")", err, store.ErrInvalid)
	}
	_, _, err = s.RevokeToken(ctx, op.ID, "", time.Time{}, rec)
	wantErr(t, "RevokeToken(zero time)", err, store.ErrInvalid)
	if got, err := tokenByHash(s, op.Hash); err != nil || !equalToken(got, op) {
		t.Errorf("other tokens after RevokeToken: TokenByHash = %+v, %v", got, err)
	}
	// The hash of a revoked token stays taken: its record is kept.
	_, err = s.CreateToken(ctx, auth.Token{Hash: app.Hash, Role: auth.RoleApp, Tenant: tn.ID, Created: t0}, 0, rec)
	wantErr(t, "CreateToken(hash of a revoked token)", err, store.ErrExists)
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
		"invalid parent ID":       func(x *auth.Token) { x.Parent = "token-0" },
		"its own parent":          func(x *auth.Token) { x.ID = tenant.NewID(); x.Parent = x.ID },
		"revoked":                 func(x *auth.Token) { x.Revoked = t0 },
		"revoked by":              func(x *auth.Token) { x.RevokedBy = tenant.NewID() },
		"used":                    func(x *auth.Token) { x.LastUsed = t0 },
	} {
		bad := ok
		mod(&bad)
		_, err := s.CreateToken(ctx, bad, 0, rec)
		wantErr(t, "CreateToken("+name+")", err, store.ErrInvalid)
	}
	for name, limit := range map[string]int{"negative limit": -1} {
		_, err := s.CreateToken(ctx, ok, limit, rec)
		wantErr(t, "CreateToken("+name+")", err, store.ErrInvalid)
	}
	_, err := s.CreateToken(ctx, auth.Token{Hash: hashOf("g"), Role: auth.RoleOperator, Created: t0}, 5, rec)
	wantErr(t, "CreateToken(limit on a token of every tenant)", err, store.ErrInvalid)
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

package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance tests of who made which token: revoking a token revokes
// those it made, and keeps their records; listing tokens; recording their
// use; and the limit of live tokens per tenant and role.

// mustToken stores a token of role for tenantID (or every tenant) made by
// parent (or nothing), named name.
func mustToken(t *testing.T, s *store.Store, role auth.Role, tenantID, parent, name string) auth.Token {
	t.Helper()
	tok, err := s.CreateToken(ctx, auth.Token{Hash: hashOf(name), Role: role, Tenant: tenantID, Parent: parent, Created: t0, Name: name}, 0, rec)
	if err != nil {
		t.Fatalf("CreateToken(%s) error = %v", name, err)
	}
	return tok
}

// lastEntries are the newest n entries of the log.
func lastEntries(t *testing.T, s *store.Store, n int) []audit.Entry {
	t.Helper()
	var all []audit.Entry
	if err := s.AuditEntries(ctx, store.AuditFilter{}, func(e audit.Entry) error { all = append(all, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return all[max(0, len(all)-n):]
}

// wantRevoked checks that tok is stored revoked at at, by by.
func wantRevoked(t *testing.T, s *store.Store, tok auth.Token, at time.Time, by string) {
	t.Helper()
	got, err := tokenByHash(s, tok.Hash)
	if err != nil || !got.Revoked.Equal(at) || got.RevokedBy != by || got.ID != tok.ID {
		t.Errorf("TokenByHash(%s) = revoked %v by %q, %v, want revoked %v by %q", tok.Name, got.Revoked, got.RevokedBy, err, at, by)
	}
}

// wantLive checks that tok is stored and not revoked.
func wantLive(t *testing.T, s *store.Store, tok auth.Token) {
	t.Helper()
	if got, err := tokenByHash(s, tok.Hash); err != nil || !got.Revoked.IsZero() || got.RevokedBy != "" {
		t.Errorf("TokenByHash(%s) = revoked %v by %q, %v, want it live", tok.Name, got.Revoked, got.RevokedBy, err)
	}
}

func testTokenParents(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	op := mustToken(t, s, auth.RoleOperator, "", "", "op")
	admin := mustToken(t, s, auth.RoleTenantAdmin, tn.ID, op.ID, "admin")
	app1 := mustToken(t, s, auth.RoleApp, tn.ID, admin.ID, "app1")
	app2 := mustToken(t, s, auth.RoleApp, tn.ID, admin.ID, "app2")
	byOp := mustToken(t, s, auth.RoleApp, tn.ID, op.ID, "by-op")
	other := mustToken(t, s, auth.RoleOperator, "", "", "other op")
	if got, err := tokenByHash(s, app1.Hash); err != nil || got.Parent != admin.ID {
		t.Errorf("TokenByHash(app1).Parent = %q, %v, want %s", got.Parent, err, admin.ID)
	}
	if got, err := tokenByHash(s, op.Hash); err != nil || got.Parent != "" {
		t.Errorf("TokenByHash(op).Parent = %q, %v, want none", got.Parent, err)
	}
	_, err := s.CreateToken(ctx, auth.Token{Hash: hashOf("orphan"), Role: auth.RoleApp, Tenant: tn.ID, Parent: tenant.NewID(), Created: t0}, 0, rec)
	wantErr(t, "CreateToken(unknown parent)", err, store.ErrNotFound)

	// Revoking the tenant-admin revokes the app tokens it made, and one
	// entry, in the tenant's audit view, names them all.
	r := rec
	r.Detail = "POST /v1/tokens/{id}/revoke"
	first := t0.Add(time.Hour)
	got, made, err := s.RevokeToken(ctx, admin.ID, other.ID, first, r)
	wantMade := []string{app1.ID, app2.ID}
	slices.Sort(wantMade)
	if err != nil || got.ID != admin.ID || !got.Revoked.Equal(first) || !slices.Equal(made, wantMade) {
		t.Fatalf("RevokeToken(tenant-admin) = %+v, %v, %v, want it revoked with %v", got, made, err, wantMade)
	}
	for _, gone := range []auth.Token{admin, app1, app2} {
		wantRevoked(t, s, gone, first, other.ID)
	}
	for _, kept := range []auth.Token{op, byOp, other} {
		wantLive(t, s, kept)
	}
	e := lastEntries(t, s, 1)[0]
	want := fmt.Sprintf("POST /v1/tokens/{id}/revoke: token %s, and the 2 tokens made by it or by those it made: %s", admin.ID, strings.Join(wantMade, ", "))
	if e.Detail != want || e.Outcome != audit.OutcomeOK || e.Tenant != tn.ID {
		t.Errorf("the revocation's entry = %s %q of tenant %q, want ok %q of %s", e.Outcome, e.Detail, e.Tenant, want, tn.ID)
	}
	// A revoked token makes no more tokens.
	_, err = s.CreateToken(ctx, auth.Token{Hash: hashOf("late"), Role: auth.RoleApp, Tenant: tn.ID, Parent: admin.ID, Created: t0}, 0, rec)
	wantErr(t, "CreateToken(parent revoked)", err, store.ErrRevoked)

	// Revoking the operator revokes what it made, and what that made; the
	// tokens revoked before keep their first revocation.
	admin2 := mustToken(t, s, auth.RoleTenantAdmin, tn.ID, op.ID, "admin2")
	app3 := mustToken(t, s, auth.RoleApp, tn.ID, admin2.ID, "app3")
	second := t0.Add(2 * time.Hour)
	if _, made, err := s.RevokeToken(ctx, op.ID, op.ID, second, rec); err != nil || len(made) != 3 {
		t.Fatalf("RevokeToken(operator) = %v, %v, want 3 tokens revoked with it", made, err)
	}
	for _, gone := range []auth.Token{op, byOp, admin2, app3} {
		wantRevoked(t, s, gone, second, op.ID)
	}
	for _, before := range []auth.Token{admin, app1, app2} {
		wantRevoked(t, s, before, first, other.ID)
	}
	wantLive(t, s, other)
	if e := lastEntries(t, s, 1)[0]; !strings.Contains(e.Detail, "the 3 tokens made by it") || e.Tenant != rec.Tenant {
		t.Errorf("the revocation's entry says %q of tenant %q, want 3 tokens named, and the caller's tenant for an operator token", e.Detail, e.Tenant)
	}
	_, err = s.CreateToken(ctx, auth.Token{Hash: hashOf("later"), Role: auth.RoleApp, Tenant: tn.ID, Parent: op.ID, Created: t0}, 0, rec)
	wantErr(t, "CreateToken(parent revoked)", err, store.ErrRevoked)
}

// testTokenParentsMany: a token that made more tokens than one entry can
// name: the revocation's entries name every one of them.
func testTokenParentsMany(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	admin := mustToken(t, s, auth.RoleTenantAdmin, tn.ID, "", "admin")
	var made []string
	for i := range 60 {
		made = append(made, mustToken(t, s, auth.RoleApp, tn.ID, admin.ID, fmt.Sprint("app-", i)).ID)
	}
	before := auditSize(t, s)
	if _, _, err := s.RevokeToken(ctx, admin.ID, "", t0, rec); err != nil {
		t.Fatalf("RevokeToken() error = %v", err)
	}
	n := int(auditSize(t, s) - before)
	if n < 2 {
		t.Fatalf("revoking a token that made 60 appended %d entries, want several", n)
	}
	var details string
	for _, e := range lastEntries(t, s, n) {
		if !strings.Contains(e.Detail, admin.ID) || e.Action != rec.Action {
			t.Errorf("entry %q does not name the revoked token, or is not a %s entry", e.Detail, rec.Action)
		}
		details += e.Detail + "\n"
	}
	for _, id := range made {
		if strings.Count(details, id) != 1 {
			t.Errorf("token %s is named %d times in the revocation's entries, want once", id, strings.Count(details, id))
		}
	}
}

// testTokenList: every token, or a tenant's, oldest first, revoked ones
// too; one by ID.
func testTokenList(t *testing.T, s *store.Store) {
	acme := mustTenant(t, s, "acme")
	beta := mustTenant(t, s, "beta")
	var all []auth.Token
	for i, c := range []struct {
		role   auth.Role
		tenant string
	}{{auth.RoleOperator, ""}, {auth.RoleApp, acme.ID}, {auth.RoleTenantAdmin, beta.ID}, {auth.RoleApp, acme.ID}, {auth.RoleAuditor, ""}} {
		tok, err := s.CreateToken(ctx, auth.Token{Hash: hashOf(fmt.Sprint("list-", i)), Role: c.role, Tenant: c.tenant,
			Created: t0.Add(time.Duration(5-i) * time.Minute), Name: fmt.Sprint("t", i)}, 0, rec)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, tok)
	}
	revoked, _, err := s.RevokeToken(ctx, all[3].ID, all[0].ID, t0.Add(day), rec)
	if err != nil {
		t.Fatal(err)
	}
	all[3] = revoked
	byAge := slices.Clone(all)
	slices.Reverse(byAge) // created oldest last
	for name, c := range map[string]struct {
		tenant string
		want   []auth.Token
	}{
		"every token": {"", byAge},
		"acme":        {acme.ID, []auth.Token{all[3], all[1]}},
		"beta":        {beta.ID, []auth.Token{all[2]}},
		"no tokens":   {tenant.NewID(), nil},
	} {
		got, err := s.Tokens(ctx, c.tenant)
		if err != nil || !slices.EqualFunc(got, c.want, equalToken) {
			t.Errorf("Tokens(%s) = %+v, %v, want %+v", name, got, err, c.want)
		}
	}
	_, err = s.Tokens(ctx, "acme")
	wantErr(t, "Tokens(invalid tenant ID)", err, store.ErrInvalid)
	if got, err := s.TokenByID(ctx, all[3].ID); err != nil || !equalToken(got, all[3]) {
		t.Errorf("TokenByID(revoked) = %+v, %v, want %+v", got, err, all[3])
	}
	_, err = s.TokenByID(ctx, tenant.NewID())
	wantErr(t, "TokenByID(unknown)", err, store.ErrNotFound)
	_, err = s.TokenByID(ctx, "x")
	wantErr(t, "TokenByID(invalid)", err, store.ErrInvalid)
}

// testTokenTouch: TouchToken records a later use only, of a live token, and
// appends nothing to the audit log.
func testTokenTouch(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	tok := mustToken(t, s, auth.RoleApp, tn.ID, "", "app")
	size := auditSize(t, s)
	lastUsed := func() time.Time {
		t.Helper()
		got, err := tokenByHash(s, tok.Hash)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastUsed
	}
	if !lastUsed().IsZero() {
		t.Fatalf("a new token's LastUsed = %v, want zero", lastUsed())
	}
	for _, c := range []struct {
		at, want time.Time
	}{
		{t0.Add(time.Minute), t0.Add(time.Minute)},
		{t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},
		{t0.Add(2 * time.Minute), t0.Add(3 * time.Minute)}, // never back
		{t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},
	} {
		if err := s.TouchToken(ctx, tok.ID, c.at); err != nil {
			t.Fatalf("TouchToken(%v) error = %v", c.at, err)
		}
		if got := lastUsed(); !got.Equal(c.want) {
			t.Errorf("after TouchToken(%v), LastUsed = %v, want %v", c.at, got, c.want)
		}
	}
	if err := s.TouchToken(ctx, tenant.NewID(), t0); err != nil {
		t.Errorf("TouchToken(unknown) error = %v, want nil", err)
	}
	wantErr(t, "TouchToken(invalid ID)", s.TouchToken(ctx, "x", t0), store.ErrInvalid)
	wantErr(t, "TouchToken(zero time)", s.TouchToken(ctx, tok.ID, time.Time{}), store.ErrInvalid)
	if n := auditSize(t, s); n != size {
		t.Errorf("TouchToken appended %d audit entries, want none", n-size)
	}
	// A revoked token's use is not recorded.
	if _, _, err := s.RevokeToken(ctx, tok.ID, "", t0.Add(day), rec); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchToken(ctx, tok.ID, t0.Add(2*day)); err != nil || !lastUsed().Equal(t0.Add(3*time.Minute)) {
		t.Errorf("TouchToken(revoked) = %v, LastUsed %v, want it unchanged", err, lastUsed())
	}
}

func testTokenLimit(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	other := mustTenant(t, s, "other")
	app := func(tenantID, name string, expires time.Time) auth.Token {
		return auth.Token{Hash: hashOf(name), Role: auth.RoleApp, Tenant: tenantID, Created: t0, Expires: expires, Name: name}
	}
	for _, tok := range []auth.Token{
		app(tn.ID, "live", time.Time{}),
		app(tn.ID, "live until tomorrow", t0.Add(day)),
		app(tn.ID, "expired", t0.Add(-day).Add(time.Hour)),
		app(other.ID, "other tenant's", time.Time{}),
		{Hash: hashOf("admin"), Role: auth.RoleTenantAdmin, Tenant: tn.ID, Created: t0},
	} {
		if tok.Name == "expired" {
			tok.Created = t0.Add(-day)
		}
		if _, err := s.CreateToken(ctx, tok, 0, rec); err != nil {
			t.Fatalf("CreateToken(%s) error = %v", tok.Name, err)
		}
	}
	// A revoked token is not live, though it has not expired.
	revoked, err := s.CreateToken(ctx, app(tn.ID, "revoked", time.Time{}), 0, rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RevokeToken(ctx, revoked.ID, "", t0, rec); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateToken(ctx, app(tn.ID, "third", t0.Add(day)), 2, rec)
	wantErr(t, "CreateToken(two live, limit 2)", err, store.ErrTooManyTokens)
	if _, err := s.CreateToken(ctx, app(tn.ID, "third", t0.Add(day)), 3, rec); err != nil {
		t.Errorf("CreateToken(two live, one expired and one revoked, limit 3) error = %v", err)
	}
	later := app(tn.ID, "fourth", t0.Add(3*day))
	later.Created = t0.Add(2 * day) // two have expired by then
	if _, err := s.CreateToken(ctx, later, 3, rec); err != nil {
		t.Errorf("CreateToken(limit 3, when only one is live) error = %v", err)
	}
}

// testConcurrentTokenLimit is concurrentTokenLimit on one store.
func testConcurrentTokenLimit(t *testing.T, s *store.Store) { concurrentTokenLimit(t, s, s) }

// concurrentTokenLimit: 10 app tokens created at once, on two nodes, with
// a limit of 5: exactly 5 are stored, the others refused.
func concurrentTokenLimit(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	concurrentLimit(t, a, b, store.ErrTooManyTokens, func(s *store.Store, i, limit int) error {
		_, err := s.CreateToken(ctx, auth.Token{Hash: hashOf(fmt.Sprint("app-", i)), Role: auth.RoleApp, Tenant: tn.ID, Created: t0}, limit, rec)
		return err
	}, func() int {
		n := 0
		for i := range 10 {
			if _, err := tokenByHash(a, hashOf(fmt.Sprint("app-", i))); err == nil {
				n++
			}
		}
		return n
	})
}

// testConcurrentRevokeCreate is concurrentRevokeCreate on one store.
func testConcurrentRevokeCreate(t *testing.T, s *store.Store) { concurrentRevokeCreate(t, s, s) }

// concurrentRevokeCreate: a tenant-admin is revoked while it makes app
// tokens at once, on two nodes: each new token is either refused
// (ErrRevoked) or revoked with it, never left live.
func concurrentRevokeCreate(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	admin := mustToken(t, a, auth.RoleTenantAdmin, tn.ID, "", "admin")
	const n = 12
	errs := atOnce(n+1, a, b, func(s *store.Store, i int) error {
		if i == n {
			_, _, err := s.RevokeToken(ctx, admin.ID, "", t0.Add(time.Hour), rec)
			return err
		}
		_, err := s.CreateToken(ctx, auth.Token{Hash: hashOf(fmt.Sprint("app-", i)), Role: auth.RoleApp, Tenant: tn.ID,
			Parent: admin.ID, Created: t0}, 0, rec)
		return err
	})
	if errs[n] != nil {
		t.Fatalf("RevokeToken() error = %v", errs[n])
	}
	Succeeded(t, "CreateToken(while its maker is revoked)", errs[:n], store.ErrRevoked)
	toks, err := a.Tokens(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.Revoked.IsZero() {
			t.Errorf("token %s (%s) is live after its maker was revoked", tok.ID, tok.Name)
		}
	}
}

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

// The conformance tests of who made which token: deleting a token deletes
// those it made, and the limit of live tokens per tenant and role.

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

	// Deleting the tenant-admin deletes the app tokens it made, and one
	// entry names them all.
	r := rec
	r.Detail = "POST /v1/tokens/{id}/revoke"
	if err := s.DeleteToken(ctx, admin.ID, r); err != nil {
		t.Fatalf("DeleteToken(tenant-admin) error = %v", err)
	}
	for _, gone := range []auth.Token{admin, app1, app2} {
		_, err := tokenByHash(s, gone.Hash)
		wantErr(t, "TokenByHash("+gone.Name+", after its maker was deleted)", err, store.ErrNotFound)
	}
	for _, kept := range []auth.Token{op, byOp, other} {
		if _, err := tokenByHash(s, kept.Hash); err != nil {
			t.Errorf("TokenByHash(%s) after deleting the tenant-admin: %v", kept.Name, err)
		}
	}
	e := lastEntries(t, s, 1)[0]
	made := []string{app1.ID, app2.ID}
	slices.Sort(made)
	want := fmt.Sprintf("POST /v1/tokens/{id}/revoke: token %s, and the 2 tokens made by it or by those it made: %s", admin.ID, strings.Join(made, ", "))
	if e.Detail != want || e.Outcome != audit.OutcomeOK {
		t.Errorf("the deletion's entry = %s %q, want ok %q", e.Outcome, e.Detail, want)
	}

	// Deleting the operator deletes what it made, and what that made.
	admin2 := mustToken(t, s, auth.RoleTenantAdmin, tn.ID, op.ID, "admin2")
	app3 := mustToken(t, s, auth.RoleApp, tn.ID, admin2.ID, "app3")
	if err := s.DeleteToken(ctx, op.ID, rec); err != nil {
		t.Fatalf("DeleteToken(operator) error = %v", err)
	}
	for _, gone := range []auth.Token{op, byOp, admin2, app3} {
		_, err := tokenByHash(s, gone.Hash)
		wantErr(t, "TokenByHash("+gone.Name+", after the operator was deleted)", err, store.ErrNotFound)
	}
	if _, err := tokenByHash(s, other.Hash); err != nil {
		t.Errorf("TokenByHash(other operator) = %v", err)
	}
	if got := lastEntries(t, s, 1)[0].Detail; !strings.Contains(got, "the 3 tokens made by it") {
		t.Errorf("the deletion's entry says %q, want 3 tokens named", got)
	}
	_, err = s.CreateToken(ctx, auth.Token{Hash: hashOf("late"), Role: auth.RoleApp, Tenant: tn.ID, Parent: op.ID, Created: t0}, 0, rec)
	wantErr(t, "CreateToken(parent deleted)", err, store.ErrNotFound)
}

// testTokenParentsMany: a token that made more tokens than one entry can
// name: the deletion's entries name every one of them.
func testTokenParentsMany(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	admin := mustToken(t, s, auth.RoleTenantAdmin, tn.ID, "", "admin")
	var made []string
	for i := range 60 {
		made = append(made, mustToken(t, s, auth.RoleApp, tn.ID, admin.ID, fmt.Sprint("app-", i)).ID)
	}
	before := auditSize(t, s)
	if err := s.DeleteToken(ctx, admin.ID, rec); err != nil {
		t.Fatalf("DeleteToken() error = %v", err)
	}
	n := int(auditSize(t, s) - before)
	if n < 2 {
		t.Fatalf("deleting a token that made 60 appended %d entries, want several", n)
	}
	var details string
	for _, e := range lastEntries(t, s, n) {
		if !strings.Contains(e.Detail, admin.ID) || e.Action != rec.Action {
			t.Errorf("entry %q does not name the deleted token, or is not a %s entry", e.Detail, rec.Action)
		}
		details += e.Detail + "\n"
	}
	for _, id := range made {
		if strings.Count(details, id) != 1 {
			t.Errorf("token %s is named %d times in the deletion's entries, want once", id, strings.Count(details, id))
		}
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
	_, err := s.CreateToken(ctx, app(tn.ID, "third", t0.Add(day)), 2, rec)
	wantErr(t, "CreateToken(two live, limit 2)", err, store.ErrTooManyTokens)
	if _, err := s.CreateToken(ctx, app(tn.ID, "third", t0.Add(day)), 3, rec); err != nil {
		t.Errorf("CreateToken(two live and one expired, limit 3) error = %v", err)
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

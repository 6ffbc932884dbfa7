package httpapi_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// TestAuditRefusalStaysWithCaller: a tenant's token refused on another
// tenant's route is recorded under the caller's own tenant, so the other
// tenant's administrators never see who probed them, and the caller's
// operators do.
func TestAuditRefusalStaysWithCaller(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	acme, beta := e.Tenant(t, "acme"), e.Tenant(t, "beta")
	var prober api.Token
	e.call("POST", "/v1/tokens", e.Operator, api.CreateTokenRequest{Role: "tenant-admin", Tenant: "acme"}).want(t, 201, &prober)
	betaAdmin := e.Token(t, api.RoleTenantAdmin, "beta")
	e.call("GET", "/v1/tenants/beta/keys", prober.Secret, nil).wantError(t, 403, api.CodeForbidden)

	var betaLog api.AuditList
	e.call("GET", "/v1/tenants/beta/audit", betaAdmin, nil).want(t, 200, &betaLog)
	for _, a := range betaLog.Entries {
		if a.Actor == prober.ID {
			t.Errorf("beta's audit view shows acme's token: %+v", a)
		}
	}
	var all api.AuditList
	e.call("GET", "/v1/audit", e.Token(t, api.RoleAuditor, ""), nil).want(t, 200, &all)
	found := false
	for _, a := range all.Entries {
		if a.Actor == prober.ID && a.Action == "key.list" && a.Outcome == "refused" && a.Reason == api.CodeForbidden {
			found = true
			if a.Tenant != acme.ID {
				t.Errorf("the refusal is recorded under tenant %q, want the caller's %q (not %q)", a.Tenant, acme.ID, beta.ID)
			}
		}
	}
	if !found {
		t.Errorf("no refusal entry for acme's token in %+v", all.Entries)
	}
}

// TestUnauthenticatedRequestsAggregated: requests without a valid token
// cost no write to the store each: they are counted, and the next flush of
// the aggregate appends one token.use entry per address, route and reason,
// with the count.
func TestUnauthenticatedRequestsAggregated(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	unknown, _, err := auth.New(api.RoleOperator, "", "never stored", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	size := func() uint64 {
		t.Helper()
		st, err := e.Store.AuditState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	before := size()
	const n = 25
	for range n {
		e.call("GET", "/v1/tenants", unknown, nil).wantError(t, 401, api.CodeUnauthenticated)
	}
	if got := size(); got != before {
		t.Fatalf("%d unauthenticated requests appended %d audit entries before the flush, want none", n, got-before)
	}
	if err := e.Node.Aggregate.Flush(ctx, e.Node.Audit); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != before+1 {
		t.Fatalf("the flush appended %d entries, want 1", got-before)
	}
	var log api.AuditList
	e.call("GET", fmt.Sprintf("/v1/audit?after=%d", before), e.Operator, nil).want(t, 200, &log)
	a := log.Entries[0]
	if a.Action != "token.use" || a.Outcome != "refused" || a.Reason != api.CodeUnauthenticated || a.Count != n ||
		a.Actor != "anonymous" || a.Remote != "127.0.0.1" || !strings.HasSuffix(a.Detail, ": GET /v1/tenants") {
		t.Errorf("the aggregate entry = %+v, want token.use refused unauthenticated, count %d, from 127.0.0.1, naming GET /v1/tenants", a, n)
	}
}

// TestAuditNames: listed entries name their tenant and actor by name
// (tenant_name, actor_name) beside the ids; a refused tenant.create (a bad
// name, a name taken) is recorded under the caller, never under a tenant
// id that never came to exist.
func TestAuditNames(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	var op api.Token
	e.call("POST", "/v1/tokens", e.Operator, api.CreateTokenRequest{Role: api.RoleOperator, Name: "ops on-call"}).want(t, 201, &op)
	var acme api.Tenant
	e.call("POST", "/v1/tenants", op.Secret, api.CreateTenantRequest{Name: "acme", Env: "sandbox"}).want(t, 201, &acme)
	e.call("POST", "/v1/tenants", op.Secret, api.CreateTenantRequest{Name: "Acme!", Env: "sandbox"}).wantError(t, 400, api.CodeBadRequest)
	e.call("POST", "/v1/tenants", op.Secret, api.CreateTenantRequest{Name: "acme", Env: "sandbox"}).wantError(t, 409, api.CodeExists)
	var admin api.Token
	e.call("POST", "/v1/tokens", op.Secret, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: "acme", Name: "acme admin"}).want(t, 201, &admin)
	e.call("POST", "/v1/tenants/acme/keys", admin.Secret, api.GenerateKeyRequest{}).want(t, 201, nil)

	var log api.AuditList
	e.call("GET", "/v1/audit?limit=10000", e.Token(t, api.RoleAuditor, ""), nil).want(t, 200, &log)
	var creates []api.AuditEntry
	generated := false
	for _, a := range log.Entries {
		if a.Tenant != "" && a.Tenant != acme.ID {
			t.Errorf("entry %d names tenant %q, which does not exist", a.Seq, a.Tenant)
		}
		if a.Tenant == acme.ID && a.TenantName != "acme" {
			t.Errorf("entry %d: tenant_name %q, want acme", a.Seq, a.TenantName)
		}
		if a.Action == "tenant.create" {
			creates = append(creates, a)
		}
		if a.Action == "key.generate" && a.Outcome == "ok" {
			generated = true
			if a.Actor != admin.ID || a.ActorName != "acme admin" || a.TenantName != "acme" {
				t.Errorf("the generate entry = %+v, want actor %s named \"acme admin\", tenant acme", a, admin.ID)
			}
		}
	}
	if !generated || len(creates) != 3 {
		t.Fatalf("%d tenant.create entries (want 3), a generate: %v", len(creates), generated)
	}
	for _, a := range creates {
		if a.Actor != op.ID || a.ActorName != "ops on-call" {
			t.Errorf("tenant.create entry %d: actor %q named %q, want %s named \"ops on-call\"", a.Seq, a.Actor, a.ActorName, op.ID)
		}
		switch a.Outcome {
		case "ok":
			if a.Tenant != acme.ID {
				t.Errorf("the creation is recorded under tenant %q, want %q", a.Tenant, acme.ID)
			}
		default:
			if a.Tenant != "" || a.TenantName != "" {
				t.Errorf("a refused creation (%s) is recorded under tenant %q (%q), want the caller's (none)", a.Reason, a.Tenant, a.TenantName)
			}
		}
	}
	// The tenant's own view names it too.
	var mine api.AuditList
	e.call("GET", "/v1/tenants/acme/audit", admin.Secret, nil).want(t, 200, &mine)
	for _, a := range mine.Entries {
		if a.TenantName != "acme" {
			t.Errorf("acme's view: entry %d has tenant_name %q", a.Seq, a.TenantName)
		}
	}
}

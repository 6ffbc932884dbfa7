package httpapi_test

import (
	"testing"

	"github.com/strongroom-kms/strongroom/api"
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

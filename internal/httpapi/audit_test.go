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

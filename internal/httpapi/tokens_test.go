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

// TestAppTokensGoWithTheirTenantAdmin: a tenant-admin's app tokens are
// bounded per tenant (auth.MaxDelegated live ones, then 409
// too_many_tokens), and revoking the tenant-admin revokes them all at once,
// in one audit entry that names them; the operator's own tokens stay.
func TestAppTokensGoWithTheirTenantAdmin(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "acme")
	var admin, byOp api.Token
	e.call("POST", "/v1/tokens", e.Operator, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: "acme"}).want(t, 201, &admin)
	e.call("POST", "/v1/tokens", e.Operator, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme"}).want(t, 201, &byOp)
	var apps []api.Token
	for i := range auth.MaxDelegated - 1 { // and the operator's: MaxDelegated live
		var app api.Token
		e.call("POST", "/v1/tokens", admin.Secret, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", TTL: "24h",
			Name: fmt.Sprint("app ", i)}).want(t, 201, &app)
		apps = append(apps, app)
	}
	e.call("POST", "/v1/tokens", admin.Secret, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", TTL: "24h"}).
		wantError(t, 409, api.CodeTooManyTokens)
	// Expired tokens do not count.
	e.Clock.Add(25 * time.Hour)
	var late api.Token
	e.call("POST", "/v1/tokens", admin.Secret, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", TTL: "24h"}).want(t, 201, &late)
	apps = append(apps, late)
	// Operators are not bounded.
	e.call("POST", "/v1/tokens", e.Operator, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme"}).want(t, 201, nil)

	encrypt := func(secret string) int {
		return e.call("POST", "/v1/tenants/acme/encrypt", secret, api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: []byte("x")}}}).status
	}
	if got := encrypt(late.Secret); got != 200 {
		t.Fatalf("encrypt with a tenant-admin's app token = %d, want 200", got)
	}
	e.call("POST", "/v1/tokens/"+admin.ID+"/revoke", e.Operator, nil).want(t, 200, nil)
	for _, app := range []api.Token{apps[0], late} {
		if got := encrypt(app.Secret); got != 401 {
			t.Errorf("encrypt with an app token of the revoked tenant-admin = %d, want 401", got)
		}
	}
	if got := encrypt(byOp.Secret); got != 200 {
		t.Errorf("encrypt with the operator's app token = %d, want 200", got)
	}

	var log api.AuditList
	e.call("GET", "/v1/audit?limit=10000", e.Operator, nil).want(t, 200, &log)
	var details string
	for _, a := range log.Entries {
		if a.Action == "token.revoke" && a.Outcome == "ok" && strings.Contains(a.Detail, admin.ID) {
			details += a.Detail + "\n"
		}
	}
	if !strings.Contains(details, fmt.Sprintf("the %d tokens made by it", len(apps))) {
		t.Errorf("the revocation's entries say %q, want the %d tokens counted", details, len(apps))
	}
	for _, app := range apps {
		if !strings.Contains(details, app.ID) {
			t.Errorf("the revocation's entries do not name app token %s", app.ID)
		}
	}
}

package httpapi_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/byok"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// TestBYOKLimits: through the API, a tenant's sixth live upload certificate
// is 409 too_many_certificates, and after byok.MaxFailedUploads failed
// uploads the next is 429 rate_limited with next_allowed and Retry-After,
// and is recorded as refused.
func TestBYOKLimits(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "acme")
	admin := e.Token(t, api.RoleTenantAdmin, "acme")
	certs := "/v1/tenants/acme/upload-certificates"
	var uc api.UploadCert
	e.call("POST", certs, admin, api.CreateUploadCertRequest{}).want(t, 201, &uc)
	for range byok.MaxLiveCerts - 1 {
		e.call("POST", certs, admin, api.CreateUploadCertRequest{CSR: true}).want(t, 201, nil)
	}
	e.call("POST", certs, admin, api.CreateUploadCertRequest{CSR: true}).wantError(t, 409, api.CodeTooManyCerts)

	up := uploadRequest(t, uc.Certificate, bytes.Repeat([]byte{0x42}, 32))
	up.SHA256 = strings.Repeat("0", 64)
	path := "/v1/tenants/acme/keys/data/upload"
	for range byok.MaxFailedUploads {
		e.call("POST", path, admin, up).wantError(t, 400, api.CodeUploadRefused)
	}
	r := e.call("POST", path, admin, up)
	ae := r.wantError(t, 429, api.CodeRateLimited)
	if want := e.Clock.Now().Add(byok.FailedUploadWindow); ae.NextAllowed == nil || !ae.NextAllowed.Equal(want) {
		t.Errorf("next_allowed = %v, want %s", ae.NextAllowed, want)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra != int(byok.FailedUploadWindow/time.Second) {
		t.Errorf("Retry-After = %q, want %d", r.header.Get("Retry-After"), int(byok.FailedUploadWindow/time.Second))
	}
	var log api.AuditList
	e.call("GET", "/v1/tenants/acme/audit", admin, nil).want(t, 200, &log)
	last := log.Entries[len(log.Entries)-1]
	if last.Action != "key.upload" || last.Outcome != "refused" || last.Reason != api.CodeRateLimited {
		t.Errorf("the refusal is recorded as %s %s %s, want key.upload refused rate_limited", last.Action, last.Outcome, last.Reason)
	}
}

// TestAppTokensGoWithTheirTenantAdmin: a tenant-admin's app tokens are
// bounded per tenant (auth.MaxDelegated live ones, then 409
// too_many_tokens; revoked and expired ones do not count), and revoking the
// tenant-admin revokes them all at once,
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
	// Revoked tokens do not count: one revoked, one more may be made.
	e.call("POST", "/v1/tokens/"+apps[0].ID+"/revoke", admin.Secret, nil).want(t, 200, nil)
	var again api.Token
	e.call("POST", "/v1/tokens", admin.Secret, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", TTL: "24h"}).want(t, 201, &again)
	apps[0] = again // revoked with the tenant-admin below, unlike the one revoked already
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

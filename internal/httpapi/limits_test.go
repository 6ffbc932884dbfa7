package httpapi_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
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

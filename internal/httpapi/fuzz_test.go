package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// FuzzHandler drives the handler with arbitrary methods, paths, tokens,
// content types and bodies: it must never panic, and never answer 5xx
// other than the documented 503s (not_ready, timeout). Every error answer
// is an api.Error.
func FuzzHandler(f *testing.F) {
	s := apitest.NewServer(f, apitest.Options{})
	s.Tenant(f, "acme")
	s.Tenant(f, "beta")
	tokens := []string{"", s.Operator, s.Token(f, api.RoleAuditor, ""),
		s.Token(f, api.RoleTenantAdmin, "acme"), s.Token(f, api.RoleApp, "acme")}
	f.Add("POST", "/v1/tenants/acme/keys", uint8(1), "application/json", []byte(`{"type":"data"}`))
	f.Fuzz(func(t *testing.T, method, path string, who uint8, contentType string, body []byte) {
		req, err := http.NewRequest(method, "http://strongroom.test"+path, bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if tok := tokens[int(who)%len(tokens)]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		s.Handler.ServeHTTP(rec, req)
		res := rec.Result()
		var e api.Error
		if res.StatusCode >= 400 && method != "HEAD" {
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" {
				t.Fatalf("%s %q: status %d with body %q, not an api.Error", method, path, res.StatusCode, rec.Body.Bytes())
			}
		}
		if res.StatusCode >= 500 && !(res.StatusCode == 503 && (e.Code == api.CodeNotReady || e.Code == api.CodeTimeout)) {
			t.Fatalf("%s %q (token %d, %q, body %q): %d %s", method, path, who, contentType, body, res.StatusCode, rec.Body.Bytes())
		}
	})
}

package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// validBodies are well-formed bodies for each route with a body, aimed at
// the tenant "victim", so that a refusal can only be about access.
func validBodies(e *env) map[string]any {
	return map[string]any{
		"POST /v1/releases":              api.InstallReleaseRequest{Bundle: e.Site.Bundles[apitest.Release2]},
		"POST /v1/tenants":               api.CreateTenantRequest{Name: "intruder", Env: "sandbox"},
		"POST /v1/tokens":                api.CreateTokenRequest{Role: "app", Tenant: "victim"},
		"POST /v1/tenants/{tenant}/keys": api.GenerateKeyRequest{Type: "data"},
		"POST /v1/tenants/{tenant}/keys/{type}/{version}/destroy":     api.DestroyKeyRequest{Confirm: "victim/data/1"},
		"POST /v1/tenants/{tenant}/encrypt":                           api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: []byte("x")}}},
		"POST /v1/tenants/{tenant}/decrypt":                           api.DecryptRequest{Items: []api.DecryptItem{{Ciphertext: []byte("x")}}},
		"POST /v1/tenants/{tenant}/data-reports":                      api.DataReportRequest{Dataset: "users(ssn)", Versions: []api.DataReportCount{{Version: 1, Values: 3}}},
		"POST /v1/tenants/{tenant}/rewrap":                            api.RewrapRequest{Items: []api.RewrapItem{{Ciphertext: []byte("x")}}},
		"POST /v1/tenants/{tenant}/dek":                               api.DEKRequest{KEM: 0x20, PublicKey: make([]byte, 32)},
		"POST /v1/tenants/{tenant}/deks":                              api.DEKsRequest{KEM: 0x20, PublicKey: make([]byte, 32), Keys: []api.DEKKey{{}}},
		"POST /v1/tenants/{tenant}/settings":                          api.SetTenantRequest{DerivationOptOut: new(bool)},
		"POST /v1/tenants/{tenant}/upload-certificates":               api.CreateUploadCertRequest{},
		"POST /v1/tenants/{tenant}/upload-certificates/{id}/complete": api.CompleteUploadCertRequest{Certificate: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"},
		"POST /v1/tenants/{tenant}/keys/{type}/upload":                api.UploadKeyRequest{Wrapped: make([]byte, 512), SHA256: strings.Repeat("ab", 32)},
		"POST /v1/tenants/{tenant}/key-services":                      api.RegisterKeyServiceRequest{URL: "https://127.0.0.1:1", KID: "k", CA: "x", Auth: "mtls"},
		"POST /v1/tenants/{tenant}/keys/import":                       api.ImportKeyRequest{Backup: "-----BEGIN STRONGROOM KEY BACKUP-----\n-----END STRONGROOM KEY BACKUP-----\n"},
	}
}

// validQueries aim routes that are not about one tenant by their path, but
// may be by their query, at the tenant "victim".
var validQueries = map[string]string{
	"GET /v1/tokens": "?tenant=victim",
}

// selfRoutes act on the caller's own token only: every role may call them,
// and another tenant's token calling them acts on itself.
var selfRoutes = map[string]bool{
	"POST /v1/tokens/self/revoke": true,
	"GET /v1/tokens/self":         true,
}

// fill replaces the path parameters of a pattern.
func fill(pattern, tenant string) string {
	return strings.NewReplacer("{tenant}", tenant, "{type}", "data", "{version}", "1", "{id}", "0123456789abcdef0123456789abcdef").Replace(pattern)
}

// TestRouteTablePolicies: every route is either explicitly public or has a
// policy with roles, and a route without either cannot be built.
func TestRouteTablePolicies(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	public := map[string]bool{"GET /v1/health": true, "GET /v1/ready": true, "GET /v1/openapi.json": true}
	for _, rt := range httpapi.RoutesOf(e.Handler) {
		name := rt.Method + " " + rt.Pattern
		switch {
		case rt.Public && !public[name]:
			t.Errorf("%s is public: only %v may be", name, public)
		case !rt.Public && rt.Policy.Zero():
			t.Errorf("%s has no policy and is not marked public", name)
		case !rt.Public && rt.Policy.TenantScoped != strings.Contains(rt.Pattern, "{tenant}"):
			t.Errorf("%s: TenantScoped = %v", name, rt.Policy.TenantScoped)
		}
		for _, r := range rt.Policy.Roles {
			if !slices.Contains([]string{api.RoleOperator, api.RoleAuditor, api.RoleTenantAdmin, api.RoleApp}, r) {
				t.Errorf("%s admits unknown role %q", name, r)
			}
		}
		if err := rt.Check(); err != nil {
			t.Error(err)
		}
	}
	ok := func(c *httpapi.Call) (any, error) { return nil, nil }
	for _, rt := range []httpapi.Route{
		{Method: "GET", Pattern: "/v1/x", Handler: ok},
		{Method: "GET", Pattern: "/v1/x", Handler: ok, Policy: auth.Policy{TenantScoped: true}},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/x", Handler: ok, Policy: auth.Policy{Roles: []string{"app"}}},
		{Method: "GET", Pattern: "/v1/x", Handler: ok, Policy: auth.Policy{Roles: []string{"app"}, TenantScoped: true}},
		{Method: "GET", Pattern: "/v1/x", Handler: ok, Public: true, Policy: auth.Policy{Roles: []string{"app"}}},
		{Method: "GET", Pattern: "/v1/x", Handler: ok, Policy: auth.Policy{Roles: []string{"app"}}, Restrict: &httpapi.Rule{}},
		{Method: "GET", Pattern: "/v1/x", Policy: auth.Policy{Roles: []string{"app"}}},
	} {
		if err := rt.Check(); err == nil {
			t.Errorf("route %+v passes the table check", rt)
		}
	}
}

// TestIsolation calls every route of the table as everyone who must be
// refused: no token, a token of another tenant (of every scoped role), and a
// token of every role the route does not admit. All are 401 or 403, a
// route's 403 the same body whoever asks (naming what the route needs), and
// nothing changes.
func TestIsolation(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "victim")
	e.Tenant(t, "intruder-co")
	e.call("POST", "/v1/tenants/victim/keys", e.Operator, api.GenerateKeyRequest{}).want(t, 201, nil)
	bodies := validBodies(e)

	// Tokens by role, as the attacker holds them: scoped roles of the
	// victim (for the wrong-role checks) and of another tenant.
	own := map[string]string{
		api.RoleOperator:    e.Operator,
		api.RoleAuditor:     e.Token(t, api.RoleAuditor, ""),
		api.RoleTenantAdmin: e.Token(t, api.RoleTenantAdmin, "victim"),
		api.RoleApp:         e.Token(t, api.RoleApp, "victim"),
	}
	other := map[string]string{
		api.RoleTenantAdmin: e.Token(t, api.RoleTenantAdmin, "intruder-co"),
		api.RoleApp:         e.Token(t, api.RoleApp, "intruder-co"),
	}
	before := e.snapshot()
	forbidden := map[string]string{} // by route
	refuse := func(rt httpapi.Route, who, token string, want int) {
		t.Helper()
		name := rt.Method + " " + rt.Pattern
		body := bodies[name]
		if rt.Request != nil && body == nil {
			t.Fatalf("no valid body for %s: add one to validBodies", name)
		}
		r := e.call(rt.Method, fill(rt.Pattern, "victim")+validQueries[name], token, body)
		code := map[int]string{401: api.CodeUnauthenticated, 403: api.CodeForbidden}[want]
		if r.status != want || r.apiError(t).Code != code {
			t.Errorf("%s as %s: %d %s, want %d", name, who, r.status, r.body, want)
			return
		}
		if want == 403 {
			if forbidden[name] == "" {
				forbidden[name] = string(r.body)
			} else if string(r.body) != forbidden[name] {
				t.Errorf("%s as %s: refusal %s differs from %s", name, who, r.body, forbidden[name])
			}
		}
	}
	routes := httpapi.RoutesOf(e.Handler)
	checked := 0
	for _, rt := range routes {
		if rt.Public {
			continue
		}
		checked++
		name := rt.Method + " " + rt.Pattern
		refuse(rt, "nobody", "", 401)
		refuse(rt, "an unknown token", "srt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 401)
		if selfRoutes[name] {
			if len(rt.Policy.Roles) != 4 || rt.Policy.TenantScoped {
				t.Errorf("%s acts on the caller only: it must admit every role, and no tenant", name)
			}
			continue
		}
		for role, tok := range other {
			if slices.Contains(rt.Policy.Roles, role) || !rt.Policy.TenantScoped {
				// Admitted by role: it must be refused for the tenant (or,
				// on a global route, by the route's own rule).
				refuse(rt, "another tenant's "+role, tok, 403)
			}
		}
		for role, tok := range own {
			if !slices.Contains(rt.Policy.Roles, role) {
				refuse(rt, "the wrong role "+role, tok, 403)
			}
		}
		// The refusal is the same for a tenant that does not exist.
		if f := forbidden[name]; f != "" && rt.Policy.TenantScoped {
			tok := other[api.RoleApp]
			if slices.Contains(rt.Policy.Roles, api.RoleApp) {
				tok = other[api.RoleTenantAdmin]
			}
			r := e.call(rt.Method, fill(rt.Pattern, "no-such-tenant"), tok, bodies[name])
			if r.status != 403 || strings.ReplaceAll(string(r.body), "no-such-tenant", "victim") != f {
				t.Errorf("%s, of a tenant that does not exist: %d %s, want %s with its name", name, r.status, r.body, f)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d routes checked", checked)
	}
	if after := e.snapshot(); !before.equal(after) {
		t.Errorf("refused requests changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
	// Each policy admits someone: the victim's own tokens of an admitted
	// role get past access control (no 401/403). A self route is called
	// with a token of its own.
	for _, rt := range routes {
		if rt.Public {
			continue
		}
		name := rt.Method + " " + rt.Pattern
		tok := own[rt.Policy.Roles[0]]
		if selfRoutes[name] {
			tok = e.Token(t, rt.Policy.Roles[0], "")
		}
		r := e.call(rt.Method, fill(rt.Pattern, "victim")+validQueries[name], tok, bodies[name])
		if r.status == 401 || r.status == 403 {
			t.Errorf("%s as %s: %d %s", name, rt.Policy.Roles[0], r.status, r.body)
		}
	}
}

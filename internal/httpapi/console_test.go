package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/console"
	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// The console is mounted next to the API, with its headers, and is no
// route of the table: it has no access rule because it serves only its
// static files, and the API under it is unchanged.
func TestConsoleMounted(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string) *http.Response {
		t.Helper()
		res, err := e.hc.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := get("/ui"); res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %s to %q", res.Status, res.Header.Get("Location"))
	}
	for _, p := range []string{"/ui/", "/ui/console.js", "/ui/console.css"} {
		res := get(p)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Security-Policy") != console.Policy {
			t.Errorf("GET %s: %s, CSP %q", p, res.Status, res.Header.Get("Content-Security-Policy"))
		}
	}
	if res := get("/ui/v1/tenants"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/v1/tenants: %s, want 404 (the console has no API of its own)", res.Status)
	}
	// Paths beside /ui are the API's, answered in JSON.
	for _, p := range []string{"/uix", "/v1/ui/"} {
		if res := get(p); res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %s %q, want the API's JSON 404", p, res.Status, res.Header.Get("Content-Type"))
		}
	}
	if res := get("/v1/health"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/health: %s", res.Status)
	}
	// Everything the console calls is a route of the table, under /v1.
	for _, rt := range httpapi.RoutesOf(e.Handler) {
		if !strings.HasPrefix(rt.Pattern, "/v1/") {
			t.Errorf("route %s %s is outside /v1", rt.Method, rt.Pattern)
		}
	}
}

package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/console"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

func get(t *testing.T, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	console.Handler().ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func TestFiles(t *testing.T) {
	for path, ctype := range map[string]string{
		"/ui/":            "text/html; charset=utf-8",
		"/ui/console.js":  "text/javascript; charset=utf-8",
		"/ui/console.css": "text/css; charset=utf-8",
	} {
		w := get(t, "GET", path)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ctype || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d %q, %d bytes", path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
		if h := get(t, "HEAD", path); h.Code != http.StatusOK || h.Body.Len() != 0 {
			t.Errorf("HEAD %s: %d, %d bytes", path, h.Code, h.Body.Len())
		}
	}
}

// Every answer, errors included, carries the security headers.
func TestHeaders(t *testing.T) {
	want := map[string]string{
		"Content-Security-Policy": console.Policy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/ui/"}, {"GET", "/ui/console.js"}, {"GET", "/ui/nope"}, {"POST", "/ui/"},
	} {
		w := get(t, c.method, c.path)
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", c.method, c.path, k, got, v)
			}
		}
	}
	for _, directive := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'",
		"form-action 'none'", "require-trusted-types-for 'script'", "trusted-types 'none'"} {
		if !strings.Contains(console.Policy, directive) {
			t.Errorf("the CSP lacks %s", directive)
		}
	}
	if strings.Contains(console.Policy, "unsafe") {
		t.Errorf("the CSP allows something unsafe: %s", console.Policy)
	}
}

// The console serves its three files and nothing else: no directory
// listing, no traversal, no other method.
func TestOnlyItsFiles(t *testing.T) {
	for _, path := range []string{"/ui/index.html", "/ui/static/console.js", "/ui/../go.mod", "/ui//console.js",
		"/ui/console.js/", "/ui/v1/tenants", "/ui/%2e%2e/console.go", "/console.js"} {
		if w := get(t, "GET", path); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		w := get(t, m, "/ui/")
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /ui/: %d, Allow %q", m, w.Code, w.Header().Get("Allow"))
		}
	}
}

// The page and the script keep to what the CSP allows, and the script
// never stores the token or builds HTML from strings. (The browser test
// proves the policy is enforced; this names the line that breaks it.)
func TestSourceRules(t *testing.T) {
	html := read(t, "static/index.html")
	js := withoutComments(read(t, "static/console.js"))
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("index.html: %s is an inline script", tag)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script[^>]*>[^<]`), // a script with a body
		regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`<style`), regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`(?i)https?://`),
	} {
		if loc := bad.FindStringIndex(html); loc != nil {
			t.Errorf("index.html: %q breaks the CSP rules", html[loc[0]:loc[1]])
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
		"localStorage", "sessionStorage", "document.cookie", "indexedDB", "setAttribute(\"style\"", ".style.", "http://", "https://"} {
		if strings.Contains(js, bad) {
			t.Errorf("console.js uses %s", bad)
		}
	}
}

// The console offers exactly the API's key types.
func TestKeyTypes(t *testing.T) {
	m := regexp.MustCompile(`const KEY_TYPES = (\[[^\]]*\]);`).FindStringSubmatch(read(t, "static/console.js"))
	if m == nil {
		t.Fatal("console.js: no KEY_TYPES")
	}
	var types []string
	if err := json.Unmarshal([]byte(m[1]), &types); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(types, tenant.KeyTypes()) {
		t.Errorf("console.js KEY_TYPES = %q, tenant.KeyTypes() = %q", types, tenant.KeyTypes())
	}
}

// withoutComments drops the script's comment lines, which may name what
// the code must not use.
func withoutComments(js string) string {
	return regexp.MustCompile(`(?m)^\s*//.*$`).ReplaceAllString(js, "")
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docs/console.md shows every screenshot the browser test takes, and each
// is committed.
func TestDocScreenshots(t *testing.T) {
	doc := read(t, "../../docs/console.md")
	for _, name := range Screenshots {
		if !strings.Contains(doc, "(console/"+name+".png)") {
			t.Errorf("docs/console.md does not show console/%s.png", name)
		}
		if _, err := os.Stat("../../docs/console/" + name + ".png"); err != nil {
			t.Errorf("docs/console/%s.png: %v (go test ./internal/console -run TestBrowser -update-screenshots)", name, err)
		}
	}
	if !strings.Contains(doc, console.Policy) {
		t.Error("docs/console.md does not quote the CSP as served")
	}
}

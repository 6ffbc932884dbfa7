package httpapi_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

var update = flag.Bool("update", false, "rewrite the generated parts of docs/api.md")

// TestOpenAPI: the served document is JSON with the expected top-level
// fields, every route of the mux is in it and every operation in it is a
// route, and every $ref resolves.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	r := e.call("GET", "/v1/openapi.json", "", nil).want(t, 200, nil)
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	for _, k := range []string{"openapi", "info", "paths", "components", "security"} {
		if doc[k] == nil {
			t.Errorf("no %q in the document", k)
		}
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", doc["openapi"])
	}
	info := doc["info"].(map[string]any)
	if info["title"] == "" || info["version"] != "v1" {
		t.Errorf("info = %v", info)
	}

	routes := httpapi.RoutesOf(e.Handler)
	mux := httpapi.Mux(e.Handler)
	inTable := map[string]bool{}
	for _, rt := range routes {
		name := rt.Method + " " + rt.Pattern
		inTable[name] = true
		// The mux serves it under exactly this pattern.
		req := httptest.NewRequest(rt.Method, fill(rt.Pattern, "acme"), nil)
		if _, p := mux.Handler(req); p != name {
			t.Errorf("the mux serves %s with %q", name, p)
		}
	}
	inDoc := map[string]bool{}
	paths := doc["paths"].(map[string]any)
	for p, item := range paths {
		for m, v := range item.(map[string]any) {
			name := strings.ToUpper(m) + " " + p
			inDoc[name] = true
			if !inTable[name] {
				t.Errorf("the document has %s, which is not a route", name)
			}
			op := v.(map[string]any)
			if op["summary"] == "" || op["operationId"] == "" || op["responses"] == nil || op["security"] == nil {
				t.Errorf("%s: incomplete operation %v", name, op)
			}
		}
	}
	for name := range inTable {
		if !inDoc[name] {
			t.Errorf("route %s is not in the document", name)
		}
	}
	// Security and policy are stated per operation.
	for _, rt := range routes {
		op := paths[rt.Pattern].(map[string]any)[strings.ToLower(rt.Method)].(map[string]any)
		sec := op["security"].([]any)
		if rt.Public != (len(sec) == 0) {
			t.Errorf("%s %s: security %v", rt.Method, rt.Pattern, sec)
		}
		if !rt.Public {
			roles, _ := op["x-strongroom-roles"].([]any)
			if len(roles) != len(rt.Policy.Roles) {
				t.Errorf("%s %s: x-strongroom-roles %v", rt.Method, rt.Pattern, roles)
			}
		}
		if rt.Request != nil && op["requestBody"] == nil {
			t.Errorf("%s %s: no requestBody", rt.Method, rt.Pattern)
		}
	}
	// Every $ref resolves.
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name, found := strings.CutPrefix(ref, "#/components/schemas/")
				if !found || schemas[name] == nil {
					t.Errorf("dangling $ref %q", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	for _, name := range []string{"Error", "Health", "EncryptRequest", "EncryptItem", "Key", "DEKResponse"} {
		if schemas[name] == nil {
			t.Errorf("no schema %s", name)
		}
	}
	enc := schemas["EncryptItem"].(map[string]any)["properties"].(map[string]any)
	if pt := enc["plaintext"].(map[string]any); pt["type"] != "string" || pt["contentEncoding"] != "base64" {
		t.Errorf("EncryptItem.plaintext = %v", pt)
	}
}

// policyTable renders the route table's policies as the Markdown table of
// docs/api.md.
func policyTable(routes []httpapi.Route) string {
	var b strings.Builder
	b.WriteString("| method | path | roles | tenant scope | summary |\n|---|---|---|---|---|\n")
	for _, rt := range routes {
		roles, scope := "public (no token)", "—"
		if !rt.Public {
			rs := slices.Clone(rt.Policy.Roles)
			for i, r := range rs {
				rs[i] = "`" + r + "`"
			}
			roles = strings.Join(rs, ", ")
			if rt.Restrict != nil {
				roles += "; " + rt.Restrict.Doc
			}
			scope = "all tenants"
			if rt.Policy.TenantScoped {
				scope = "`{tenant}` only, for tenant-admin and app"
			}
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", rt.Method, rt.Pattern, roles, scope, rt.Summary)
	}
	return b.String()
}

const (
	tableBegin = "<!-- routes:begin (generated from the route table; go test ./internal/httpapi -run TestDocs -update) -->\n"
	tableEnd   = "<!-- routes:end -->"
)

// TestDocs: the policy table in docs/api.md is the route table's.
func TestDocs(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	want := policyTable(httpapi.RoutesOf(e.Handler))
	const path = "../../docs/api.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, tableBegin), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q … %q section", path, tableBegin, tableEnd)
	}
	got := doc[i+len(tableBegin) : j]
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(doc[:i+len(tableBegin)]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the route table in %s is out of date; run go test ./internal/httpapi -run TestDocs -update\ngot:\n%s\nwant:\n%s", path, got, want)
}

// TestDocsErrorCodes: every error code of package api is in docs/api.md's
// table, and every status the handler maps to is a documented one.
func TestDocsErrorCodes(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "../../api/api.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Code") {
					continue
				}
				lit := vs.Values[i].(*ast.BasicLit).Value
				code := strings.Trim(lit, `"`)
				n++
				if !regexp.MustCompile("\\| [0-9]{3} \\| `" + regexp.QuoteMeta(code) + "` \\|").Match(docs) {
					t.Errorf("error code %s (%s) is not in the table of docs/api.md", code, name.Name)
				}
			}
		}
	}
	if n < 15 {
		t.Errorf("found only %d error codes in api/api.go", n)
	}
}

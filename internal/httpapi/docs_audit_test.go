package httpapi_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// actionRE is the shape of an audit action (docs/audit.md).
var actionRE = regexp.MustCompile("^[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)+$")

// TestDocsAuditActions checks docs/audit.md's action table against every
// action the code records: the route table's Audit fields, and every audit
// action written in the module's non-test source (outside test-support
// packages, whose names end in "test"), found syntactically. An action
// recorded but not in the table fails, and so does an action in the table
// that nothing records.
func TestDocsAuditActions(t *testing.T) {
	documented := auditTableActions(t, "../../docs/audit.md")
	recorded := map[string]string{}
	for _, rt := range httpapi.RoutesOf(newEnv(t, apitest.Options{}).Handler) {
		if rt.Audit != "" {
			recorded[string(rt.Audit)] = rt.Method + " " + rt.Pattern
		}
	}
	for a, where := range sourceActions(t, "../..") {
		recorded[a] = where
	}
	if len(recorded) < 20 {
		t.Fatalf("found only %d recorded actions; the source scan is broken", len(recorded))
	}
	for a, where := range recorded {
		if !documented[a] {
			t.Errorf("action %s (%s) is recorded but not in the action table of docs/audit.md", a, where)
		}
	}
	for a := range documented {
		if _, ok := recorded[a]; !ok {
			t.Errorf("action %s is in the action table of docs/audit.md, but nothing records it", a)
		}
	}
}

// auditTableActions returns every action named in the first column of the
// table headed "| action | event |", and every action in backquotes in the
// second.
func auditTableActions(t *testing.T, path string) map[string]bool {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\n| action | event |\n")
	if !ok {
		t.Fatalf("%s has no action table", path)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		for _, part := range strings.Split(line, "`")[1:] {
			if actionRE.MatchString(part) {
				out[part] = true
			}
		}
	}
	return out
}

// sourceActions finds the audit actions written as string literals in the
// module's non-test Go files: converted (audit.Action("…")), declared as
// constants or variables of type audit.Action, given as an Action or Audit
// field, assigned to an Action field, or passed as a function's
// audit.Action parameter.
func sourceActions(t *testing.T, root string) map[string]string {
	fset := token.NewFileSet()
	var files []*ast.File
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root ||
			strings.HasSuffix(d.Name(), "test")):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go"):
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err == nil {
			files = append(files, f)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	isActionType := func(e ast.Expr) bool {
		switch x := e.(type) {
		case *ast.Ident:
			return x.Name == "Action"
		case *ast.SelectorExpr:
			id, ok := x.X.(*ast.Ident)
			return ok && id.Name == "audit" && x.Sel.Name == "Action"
		}
		return false
	}
	// Functions with an audit.Action parameter, and its position.
	params := map[string]int{}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			i := 0
			for _, p := range fd.Type.Params.List {
				for range max(1, len(p.Names)) {
					if isActionType(p.Type) {
						params[fd.Name.Name] = i
					}
					i++
				}
			}
		}
	}
	out := map[string]string{}
	add := func(e ast.Expr) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		if s, err := strconv.Unquote(lit.Value); err == nil {
			out[s] = fset.Position(lit.Pos()).String()
		}
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				if isActionType(x.Fun) && len(x.Args) == 1 {
					add(x.Args[0])
				}
				if id, ok := x.Fun.(*ast.Ident); ok {
					if i, ok := params[id.Name]; ok && i < len(x.Args) {
						add(x.Args[i])
					}
				}
			case *ast.ValueSpec:
				if x.Type != nil && isActionType(x.Type) {
					for _, v := range x.Values {
						add(v)
					}
				}
			case *ast.KeyValueExpr:
				if id, ok := x.Key.(*ast.Ident); ok && (id.Name == "Action" || id.Name == "Audit") {
					add(x.Value)
				}
			case *ast.AssignStmt:
				for i, l := range x.Lhs {
					if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Action" && i < len(x.Rhs) {
						add(x.Rhs[i])
					}
				}
			}
			return true
		})
	}
	for a, where := range out {
		if !actionRE.MatchString(a) {
			t.Errorf("%s: %q is given as an audit action but is not one", where, a)
		}
	}
	return out
}

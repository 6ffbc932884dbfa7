package client_test

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The public packages' exported API must name no type of an internal
// package: a program outside the module could not name it.

const module = "github.com/strongroom-kms/strongroom"

// exportImporter is a go/types importer that reads the compiler's export
// data of client, api and their dependencies, as go list -export finds it in
// the build cache.
var exportImporter = sync.OnceValues(func() (types.Importer, error) {
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}",
		module+"/client", module+"/api").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("go list -export: %w", err)
	}
	exports := map[string]string{}
	for line := range strings.Lines(string(bytes.TrimSpace(out))) {
		path, file, _ := strings.Cut(strings.TrimSpace(line), "=")
		exports[path] = file
	}
	return importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, fmt.Errorf("no export data for %q", path)
		}
		return os.Open(file)
	}), nil
})

func internalPath(path string) bool {
	return path == module+"/internal" || strings.HasPrefix(path, module+"/internal/")
}

// leaks lists the places (e.g. "DEK.Key: secret.Key") where the exported
// API of pkg names a type of an internal package. It follows the types of
// this module's public packages (api from client, and unexported types of
// pkg that exported identifiers reach), but not those of other modules.
func leaks(pkg *types.Package) []string {
	w := walker{seen: map[*types.TypeName]bool{}}
	for _, name := range pkg.Scope().Names() {
		if obj := pkg.Scope().Lookup(name); obj.Exported() {
			w.walk(name, obj.Type())
		}
	}
	return w.found
}

type walker struct {
	seen  map[*types.TypeName]bool
	found []string
}

func (w *walker) walk(where string, t types.Type) {
	switch t := t.(type) {
	case *types.Alias:
		w.walk(where, types.Unalias(t))
	case *types.Named:
		obj := t.Obj()
		if obj.Pkg() == nil {
			return // error, comparable
		}
		path := obj.Pkg().Path()
		if internalPath(path) {
			name := types.TypeString(t, func(p *types.Package) string { return p.Name() })
			w.found = append(w.found, where+": "+name+" ("+path+")")
			return
		}
		for a := range t.TypeArgs().Types() {
			w.walk(where+" type argument", a)
		}
		if !strings.HasPrefix(path, module+"/") || w.seen[obj] {
			return
		}
		w.seen[obj] = true
		w.walk(obj.Name(), t.Underlying())
		for m := range types.NewMethodSet(types.NewPointer(t)).Methods() {
			if m.Obj().Exported() {
				w.walk(obj.Name()+"."+m.Obj().Name(), m.Type())
			}
		}
	case *types.Pointer:
		w.walk(where, t.Elem())
	case *types.Slice:
		w.walk(where, t.Elem())
	case *types.Array:
		w.walk(where, t.Elem())
	case *types.Chan:
		w.walk(where, t.Elem())
	case *types.Map:
		w.walk(where, t.Key())
		w.walk(where, t.Elem())
	case *types.Signature:
		for v := range t.Params().Variables() {
			w.walk(where+" parameter "+v.Name(), v.Type())
		}
		for v := range t.Results().Variables() {
			w.walk(where+" result", v.Type())
		}
		for p := range t.TypeParams().TypeParams() {
			w.walk(where+" type parameter "+p.Obj().Name(), p.Constraint())
		}
	case *types.Struct:
		for f := range t.Fields() {
			if f.Exported() || f.Embedded() {
				w.walk(where+"."+f.Name(), f.Type())
			}
		}
	case *types.Interface:
		for m := range t.Methods() {
			if m.Exported() {
				w.walk(where+"."+m.Name(), m.Type())
			}
		}
		for e := range t.EmbeddedTypes() {
			w.walk(where, e)
		}
	case *types.Union:
		for i := range t.Len() {
			w.walk(where, t.Term(i).Type())
		}
	case *types.TypeParam:
		w.walk(where, t.Constraint())
	}
}

func TestNoInternalTypes(t *testing.T) {
	imp, err := exportImporter()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{module + "/client", module + "/api"} {
		pkg, err := imp.Import(path)
		if err != nil {
			t.Fatalf("Import(%s) = %v", path, err)
		}
		if len(pkg.Scope().Names()) < 10 {
			t.Fatalf("Import(%s) has %d names, want the package's API", path, len(pkg.Scope().Names()))
		}
		if got := leaks(pkg); len(got) != 0 {
			t.Errorf("leaks(%s) = %q, want none", path, got)
		}
	}
}

// TestLeaks checks leaks itself on small packages.
func TestLeaks(t *testing.T) {
	imp, err := exportImporter()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, src string
		want      []string // the places, before ": "
	}{
		{"field", `type DEK struct{ TenantID string; Key secret.Key }`, []string{"DEK.Key"}},
		{"unexported field", `type DEK struct{ key secret.Key }; func (DEK) Bytes() []byte { return nil }`, nil},
		{"embedded", `type T struct{ secret.Key }`, []string{"T.Key", "T.Equal parameter o"}},
		{"parameter", `func Open(k secret.Key) error { return nil }`, []string{"Open parameter k"}},
		{"nested result", `func Keys() map[string][]*secret.Key { return nil }`, []string{"Keys result"}},
		{"method", `type T struct{}; func (*T) Key() (k secret.Key) { return }`, []string{"T.Key result"}},
		{"interface", `type I interface{ Key() secret.Key }`, []string{"I.Key result"}},
		{"alias", `type K = secret.Key`, []string{"K"}},
		{"generic", `type Box[T any] struct{ V T }; func F() (b Box[secret.Key]) { return }`, []string{"F result type argument"}},
		{"through an unexported type", `type Option func(*options); type options struct{ Key secret.Key }`, []string{"options.Key"}},
		{"unexported function", `func open(k secret.Key) {}`, nil},
		{"values of internal constants and variables", `const KEM = envelope.KEMX25519; var ErrKEM = envelope.ErrKEM`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := "package p\n" +
				`import "` + module + `/internal/secret"` + "\n" +
				`import "` + module + `/internal/envelope"` + "\n" +
				"var _ secret.Key\nvar _ envelope.Header\n" + tt.src
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "p.go", src, 0)
			if err != nil {
				t.Fatal(err)
			}
			pkg, err := (&types.Config{Importer: imp}).Check(module+"/p", fset, []*ast.File{f}, nil)
			if err != nil {
				t.Fatalf("type-checking %q: %v", tt.src, err)
			}
			var got []string
			for _, l := range leaks(pkg) {
				where, _, _ := strings.Cut(l, ": ")
				got = append(got, where)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("leaks(%s) = %q, want %q", tt.src, got, tt.want)
			}
		})
	}
}

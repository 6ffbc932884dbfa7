package metrics

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// TestStoreCoversEveryMethod: Store declares, in store.go, every method of
// *store.Store that takes a context (but WatchDestroyed), and each one
// times itself under its own name. A method added to the store and not
// here would run untimed, through the embedded *store.Store.
func TestStoreCoversEveryMethod(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "store.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
			continue
		}
		star, ok := fd.Recv.List[0].Type.(*ast.StarExpr)
		if id, isID := star.X.(*ast.Ident); !ok || !isID || id.Name != "Store" || !fd.Name.IsExported() {
			continue
		}
		declared[fd.Name.Name] = true
		// Its body defers s.time("Name", …).
		timed := false
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "time" && len(call.Args) > 0 {
				if lit, ok := call.Args[0].(*ast.BasicLit); ok {
					name, _ := strconv.Unquote(lit.Value)
					timed = timed || name == fd.Name.Name
				}
			}
			return true
		})
		if !timed {
			t.Errorf("Store.%s does not time itself as s.time(%q, …)", fd.Name.Name, fd.Name.Name)
		}
	}
	ops := storeOps()
	if len(ops) < 30 {
		t.Fatalf("storeOps() = %d methods: the reflection is broken", len(ops))
	}
	for _, name := range ops {
		if !declared[name] {
			t.Errorf("*store.Store.%s takes a context and Store does not time it: add it to store.go", name)
		}
	}
	for name := range declared {
		if !slices.Contains(ops, name) {
			t.Errorf("Store.%s is not an operation of *store.Store", name)
		}
	}
}

// TestStoreTimed: a timed store answers as the store does, and counts each
// call by operation and outcome; its standalone audit appends are the
// audit append latency too.
func TestStoreTimed(t *testing.T) {
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "strongroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	m := New()
	st := m.Store(raw)
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TenantByName(ctx, "nobody"); !isNotFound(err) {
		t.Fatalf("TenantByName(nobody) error = %v, want ErrNotFound", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Tenants(canceled); err == nil {
		t.Fatalf("Tenants(canceled) succeeded")
	}
	e := audit.Entry{Time: time.Now(), Actor: tenant.NewID(), Action: "test.request", Outcome: audit.OutcomeRefused, Reason: "forbidden"}
	if _, err := st.AppendAudit(ctx, e); err != nil {
		t.Fatalf("AppendAudit() error = %v", err)
	}
	if _, err := st.AppendAudit(ctx, audit.Entry{}); err == nil {
		t.Fatalf("AppendAudit(zero entry) succeeded")
	}
	op := "strongroom_store_operation_duration_seconds"
	want(t, m, op, map[string]string{"op": "Ping", "outcome": OutcomeOK}, 1)
	want(t, m, op, map[string]string{"op": "TenantByName", "outcome": OutcomeRefused}, 1)
	want(t, m, op, map[string]string{"op": "Tenants", "outcome": OutcomeCanceled}, 1)
	want(t, m, op, map[string]string{"op": "AppendAudit", "outcome": OutcomeOK}, 1)
	want(t, m, op, map[string]string{"op": "AppendAudit", "outcome": OutcomeRefused}, 1)
	want(t, m, "strongroom_audit_append_duration_seconds", map[string]string{"outcome": OutcomeOK}, 1)
	want(t, m, "strongroom_audit_append_duration_seconds", map[string]string{"outcome": OutcomeRefused}, 1)
	// The embedded store's own methods pass through.
	if st.Engine() != "sqlite" {
		t.Errorf("Engine() = %q", st.Engine())
	}
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, store.ErrNotFound) }

package httpapi_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// byNameCounted counts the lookups of tenants by name.
type byNameCounted struct {
	httpapi.Tenants
	n *atomic.Int32
}

func (b byNameCounted) ByName(ctx context.Context, name string) (tenant.Tenant, error) {
	b.n.Add(1)
	return b.Tenants.ByName(ctx, name)
}

// TestScopedTokenNeverLooksUpOtherTenants: a tenant's token that names
// another tenant in the path is refused the same way whether that tenant
// exists or not, and without its name being looked up (so that the time
// of the answer cannot tell either); a global token looks names up.
func TestScopedTokenNeverLooksUpOtherTenants(t *testing.T) {
	var lookups atomic.Int32
	e := newEnv(t, apitest.Options{Wrap: func(d *httpapi.Deps) { d.Tenants = byNameCounted{d.Tenants, &lookups} }})
	e.Tenant(t, "acme")
	e.Tenant(t, "globex")
	admin := e.Token(t, api.RoleTenantAdmin, "acme")
	lookups.Store(0)
	for _, other := range []string{"globex", "initech"} {
		e.call("GET", "/v1/tenants/"+other+"/keys", admin, nil).wantError(t, 403, api.CodeForbidden)
	}
	if r := e.call("GET", "/v1/tenants/acme/keys", admin, nil); r.status != 200 {
		t.Errorf("its own tenant: status %d, body %s", r.status, r.body)
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("a scoped token's requests looked up %d tenant names, want 0", n)
	}
	e.call("GET", "/v1/tenants/initech/keys", e.Operator, nil).wantError(t, 404, api.CodeNotFound)
	if n := lookups.Load(); n != 1 {
		t.Errorf("an operator's request looked up %d tenant names, want 1", n)
	}
}

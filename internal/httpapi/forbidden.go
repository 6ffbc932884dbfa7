package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// A refusal of an authenticated caller (errForbidden) names what the route
// needs, in words made once from its entry in the table: the action (its
// audit action), the roles of its policy, the tenant its path names, and
// its Restrict rule, e.g. "key upload needs a tenant-admin token for acme".
// The answer depends on the route and the path only, never on the caller
// nor on whether the tenant exists: it tells a scoped token nothing about
// other tenants.

// deniedWording is a route's refusal, with a "%s" where a tenant-scoped
// route names its tenant.
func deniedWording(rt *Route) string {
	roles := slices.Clone(rt.Policy.Roles)
	slices.Sort(roles)
	var who string
	switch len(roles) {
	case 0:
		return "this token is not allowed to do that"
	case 1:
		who = roles[0]
	default:
		who = strings.Join(roles[:len(roles)-1], ", ") + " or " + roles[len(roles)-1]
	}
	msg := strings.ReplaceAll(string(rt.Audit), ".", " ") + " needs " + auth.Role(who).A() + " token"
	if rt.Policy.TenantScoped {
		msg += " for %s"
	}
	if rt.Restrict != nil {
		msg += " (" + rt.Restrict.Doc + ")"
	}
	return msg
}

// denied is the route's answer to errForbidden for the request c.
func (rt *Route) denied(c *Call) error {
	msg := rt.deniedMsg
	if rt.Policy.TenantScoped {
		name := c.Request.PathValue("tenant")
		if !tenant.ValidName(name) {
			name = "that tenant"
		}
		msg = strings.Replace(msg, "%s", name, 1)
	}
	return &apiError{status: http.StatusForbidden, code: api.CodeForbidden, msg: msg}
}

package auth

import (
	"strings"
	"time"
)

// Role is what a token may do.
type Role string

// The roles.
const (
	RoleOperator    Role = "operator"
	RoleTenantAdmin Role = "tenant-admin"
	RoleApp         Role = "app"
	RoleAuditor     Role = "auditor"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	return r == RoleOperator || r == RoleTenantAdmin || r == RoleApp || r == RoleAuditor
}

// Global reports whether a token of role r may be unscoped (Tenant "", all
// tenants): operators and auditors only.
func (r Role) Global() bool { return r == RoleOperator || r == RoleAuditor }

// A is the role with its indefinite article, for messages: "an app", "a
// tenant-admin".
func (r Role) A() string {
	if r != "" && strings.ContainsRune("aeiou", rune(r[0])) {
		return "an " + string(r)
	}
	return "a " + string(r)
}

// Token is an API token as the region keeps it: only the SHA-256 of its
// secret, never the secret.
type Token struct {
	ID   string   // a record ID (tenant.NewID)
	Hash [32]byte // SHA-256 of the token secret
	Role Role
	// Tenant is the ID of the tenant the token is for; "" means every
	// tenant, allowed only for operators and auditors.
	Tenant  string
	Created time.Time
	Expires time.Time // zero = never; else after Created
	// Name is a label for people (ValidName); may be empty.
	Name string
	// Parent is the ID of the token whose holder made this one; "" if it
	// was made otherwise (the command line). Revoking a token revokes the
	// tokens it made.
	Parent string
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// Package tenant is the domain of a region's tenants and their key
// material: what a tenant is ([Tenant], [Environment]), what one version of
// a tenant's key is ([Key], [KeyState], [Source], [Derivation], the key
// types), and how a tenant secret is bound to its context and wrapped under
// a release's tenant wrapping key ([Wrap], [Unwrap], [WrapExportKey]).
//
// It holds types and rules only: no storage, no HSM, no clock. The
// services that act on tenants' keys are elsewhere, each with the small
// store interface it needs:
//
//   - internal/lifecycle: generate, rotate, list and destroy keys;
//   - internal/dataplane: encrypt, decrypt and deliver DEKs;
//   - internal/byok: upload certificates, uploads, export and import;
//   - internal/exportkey: each tenant's export key and the fingerprints of
//     its secrets;
//   - internal/directory: creating, finding and configuring tenants.
//
// internal/store keeps these types in SQLite or PostgreSQL.
package tenant

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"time"
)

// Environment is a tenant's kind of org.
type Environment string

// The environments.
const (
	EnvProduction Environment = "production"
	EnvDeveloper  Environment = "developer"
	EnvSandbox    Environment = "sandbox"
)

// Valid reports whether e is one of the environments.
func (e Environment) Valid() bool {
	return e == EnvProduction || e == EnvDeveloper || e == EnvSandbox
}

// Tenant is a customer org served by the region.
type Tenant struct {
	// ID is random: 16 bytes in lowercase hex (NewID), or a lowercase
	// canonical UUIDv4.
	ID string
	// Name is unique and matches ^[a-z0-9][a-z0-9-]{0,62}$.
	Name    string
	Env     Environment
	Created time.Time
	// DerivationOptOut is an operator setting: whether the tenant may opt
	// out of key derivation (supply its own DEKs). New sets it to true, the
	// default.
	DerivationOptOut bool
}

// New returns a Tenant with a fresh ID and the default settings.
func New(name string, env Environment, created time.Time) Tenant {
	return Tenant{ID: NewID(), Name: name, Env: env, Created: created, DerivationOptOut: true}
}

// NewID returns a fresh random record ID: 16 bytes from crypto/rand in
// lowercase hex. Tenants, API tokens and upload certificates are named by
// such IDs.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

var (
	hexIDRE  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	uuidIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// ValidID reports whether id has the form of a record ID: 32 lowercase hex
// digits (NewID), or a lowercase canonical UUIDv4.
func ValidID(id string) bool { return hexIDRE.MatchString(id) || uuidIDRE.MatchString(id) }

// ValidName reports whether name may name a tenant: a lowercase letter or
// digit, then up to 62 lowercase letters, digits or hyphens.
func ValidName(name string) bool { return nameRE.MatchString(name) }

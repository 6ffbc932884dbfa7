// Package store is the regional key server's storage layer: tenants, API
// tokens, installed releases and tenant keys, behind one interface with two
// drivers.
//
//   - internal/store/sqlite: embedded SQLite (pure Go, modernc.org/sqlite),
//     the default, for a single KMS node per region;
//   - internal/store/postgres: PostgreSQL (jackc/pgx/v5), for several KMS
//     nodes per region sharing one database.
//
// internal/store/backend opens either from a DSN (sqlite:PATH,
// postgres://…), and internal/store/storetest is the conformance suite both
// pass.
//
// This package holds the domain types, the interfaces, the errors and the
// rules that both drivers share: input validation (Validate methods) and the
// rotation decision (RotateRequest.Decide), so that the drivers differ only in
// how they read, lock and write.
//
// # Time
//
// Every timestamp is stored at microsecond precision in UTC (PostgreSQL's
// timestamptz precision): the store truncates the times it is given to the
// microsecond (see Time) and returns them in UTC. Stored times compare equal,
// with time.Time.Equal, to the truncated input. The store never reads the
// clock for domain data: callers pass Created, Installed, Now.
//
// # Key material
//
// The store holds only wrapped key material (Key.Wrapped, under a release's
// tenant wrapping key) and token hashes, never a token secret. No error
// message of this package or its drivers contains key material, wrapped or
// not, nor a fingerprint or a token hash.
package store

import (
	"context"
	"time"
)

// Store is a regional key server's storage. It is safe for concurrent use,
// and several Stores (processes, KMS nodes) may share one database.
type Store interface {
	TenantStore
	TokenStore
	ReleaseStore
	KeyStore
	TenantSettingStore
	ExportKeyStore
	UploadCertStore
	KeyRestorer
	DestroyWatcher
	AuditStore
	// Close releases the database handles.
	Close() error
	// Ping checks that the database answers (readiness).
	Ping(ctx context.Context) error
}

// TenantStore keeps tenants. Tenants are never deleted.
type TenantStore interface {
	// CreateTenant stores t after validating it, and returns it as stored
	// (Created truncated to the microsecond, in UTC). An empty ID is filled
	// with NewID(). A tenant with the same ID or name → ErrExists.
	// DerivationOptOut is stored as given: NewTenant sets its default, true.
	CreateTenant(ctx context.Context, t Tenant) (Tenant, error)
	// TenantByName and TenantByID find a tenant, or return ErrNotFound.
	TenantByName(ctx context.Context, name string) (Tenant, error)
	TenantByID(ctx context.Context, id string) (Tenant, error)
	// Tenants lists every tenant, ordered by name.
	Tenants(ctx context.Context) ([]Tenant, error)
}

// TokenStore keeps API tokens, found by the SHA-256 of their secret.
type TokenStore interface {
	// CreateToken stores tok after validating it and returns it as stored;
	// an empty ID is filled with NewID(). The token's tenant must exist
	// (ErrNotFound); a token with the same ID or hash → ErrExists.
	CreateToken(ctx context.Context, tok Token) (Token, error)
	// TokenByHash finds a token by the SHA-256 of its secret, or returns
	// ErrNotFound. It does not look at Expires: the caller does, with its
	// clock (Token.Expired).
	TokenByHash(ctx context.Context, hash [32]byte) (Token, error)
	// DeleteToken deletes a token, or returns ErrNotFound.
	DeleteToken(ctx context.Context, id string) error
}

// ReleaseStore keeps the release bundles installed at this region.
type ReleaseStore interface {
	// InstallRelease stores a release bundle. It is idempotent: installing
	// the same bytes under the same ID again returns the release as first
	// installed (with its first Installed time). A different bundle under
	// an installed ID → ErrConflict. The bundle is stored as given: the
	// caller verifies it (release.Open) before installing it.
	InstallRelease(ctx context.Context, r Release) (Release, error)
	// Releases lists the installed releases, oldest first (then by ID).
	Releases(ctx context.Context) ([]Release, error)
}

// KeyStore keeps tenant keys and their lifecycle.
type KeyStore interface {
	// Rotate makes req.New the active key of (req.Tenant, req.Type) and
	// archives the previous active key, in one transaction serialised per
	// (tenant, type) across every process sharing the database. See
	// RotateRequest.Decide for the checks, in order: rate limit
	// (*RateLimitedError, wrapping ErrRateLimited), key count
	// (ErrTooManyKeys) and fingerprint (ErrDuplicate). The tenant and the
	// release must exist (ErrNotFound). It returns the key as stored.
	Rotate(ctx context.Context, req RotateRequest) (Key, error)
	// Keys lists a tenant's keys of type typ ("" = every type), ordered by
	// type then version. An unknown tenant → ErrNotFound.
	Keys(ctx context.Context, tenant, typ string) ([]Key, error)
	// Key returns one key version (destroyed ones too, without Wrapped), or
	// ErrNotFound.
	Key(ctx context.Context, tenant, typ string, version uint32) (Key, error)
	// ActiveKey returns the active key of (tenant, typ), or ErrNotFound if
	// there is none (never rotated, or the active key was destroyed).
	ActiveKey(ctx context.Context, tenant, typ string) (Key, error)
	// DestroyKey erases a key's wrapped material and marks it destroyed at
	// now, and returns it. Destroying the active key leaves the tenant
	// without an active key of that type. A missing key → ErrNotFound; one
	// destroyed already → ErrDestroyed. It is serialised with Rotate.
	DestroyKey(ctx context.Context, tenant, typ string, version uint32, now time.Time) (Key, error)
}

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
	// out of key derivation (supply its own DEKs). NewTenant sets it to
	// true, the default.
	DerivationOptOut bool
}

// NewTenant returns a Tenant with a fresh ID and the default settings, ready
// for CreateTenant.
func NewTenant(name string, env Environment, created time.Time) Tenant {
	return Tenant{ID: NewID(), Name: name, Env: env, Created: created, DerivationOptOut: true}
}

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

// Token is an API token. The store keeps only the SHA-256 of its secret.
type Token struct {
	ID   string   // as Tenant.ID
	Hash [32]byte // SHA-256 of the token secret
	Role Role
	// Tenant is the ID of the tenant the token is for; "" means every
	// tenant, allowed only for operators and auditors.
	Tenant  string
	Created time.Time
	Expires time.Time // zero = never; else after Created
	// Name is a label for people: at most 128 bytes of UTF-8 without
	// control characters; may be empty.
	Name string
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// Release is a release bundle installed at this region.
type Release struct {
	// ID is the release id (the same rule as plan.ValidRelease).
	ID string
	// Bundle is the PEM file as installed.
	Bundle    []byte
	Installed time.Time
}

// The key types a tenant has keys of.
const (
	TypeData          = "data"
	TypeDeterministic = "deterministic"
	TypeSearchIndex   = "search_index"
	TypeEventBus      = "event_bus"
	TypeAnalytics     = "analytics"
)

// KeyTypes lists the key types.
func KeyTypes() []string {
	return []string{TypeData, TypeDeterministic, TypeSearchIndex, TypeEventBus, TypeAnalytics}
}

// ValidKeyType reports whether typ is one of KeyTypes.
func ValidKeyType(typ string) bool {
	switch typ {
	case TypeData, TypeDeterministic, TypeSearchIndex, TypeEventBus, TypeAnalytics:
		return true
	}
	return false
}

// KeyState is where a key is in its lifecycle.
type KeyState string

// The key states. At most one key per tenant and type is active.
const (
	StateActive    KeyState = "active"
	StateArchived  KeyState = "archived"
	StateDestroyed KeyState = "destroyed"
)

// Valid reports whether s is one of the states.
func (s KeyState) Valid() bool {
	return s == StateActive || s == StateArchived || s == StateDestroyed
}

// Source is where a tenant secret came from.
type Source string

// The sources.
const (
	SourceHSM      Source = "hsm"      // generated by the regional HSM
	SourceUploaded Source = "uploaded" // uploaded by the tenant (BYOK)
)

// Valid reports whether s is one of the sources.
func (s Source) Valid() bool { return s == SourceHSM || s == SourceUploaded }

// Derivation is how data encryption keys come from a tenant secret.
type Derivation string

// The derivations.
const (
	DerivationPBKDF2 Derivation = "pbkdf2" // derived with PBKDF2-HMAC-SHA256
	DerivationNone   Derivation = "none"   // the secret is the key (derivation opt-out)
)

// Valid reports whether d is one of the derivations.
func (d Derivation) Valid() bool { return d == DerivationPBKDF2 || d == DerivationNone }

// Key is one version of a tenant's key of one type.
type Key struct {
	Tenant     string // tenant ID
	Type       string // one of KeyTypes
	Version    uint32 // 1, 2, 3… per (Tenant, Type), assigned by Rotate
	State      KeyState
	Source     Source
	Derivation Derivation
	// Release is the ID of the release whose tenant wrapping key wraps it.
	Release string
	// Wrapped is the tenant secret wrapped under the release's tenant
	// wrapping key; nil once destroyed.
	Wrapped []byte
	// Fingerprint is a keyed fingerprint of the secret, for refusing the
	// same uploaded secret twice per tenant; nil if none. It is kept after
	// the key is destroyed.
	Fingerprint []byte
	Created     time.Time
	Destroyed   time.Time // zero unless State is StateDestroyed
}

// RotateRequest asks for a new active key.
type RotateRequest struct {
	Tenant string // tenant ID
	Type   string
	// New is the new key: Source, Derivation, Release, Wrapped and
	// Fingerprint. The store sets Tenant, Type, Version, State (active) and
	// Created (Now); in New they must be zero or agree.
	New Key
	// MinInterval is the least time between two keys of this tenant and
	// type (0 = no limit).
	MinInterval time.Duration
	// MaxKeys is the most active+archived keys of this tenant and type,
	// counting the new one (≥ 1).
	MaxKeys int
	// Now is the time of the request; the new key's Created.
	Now time.Time
}

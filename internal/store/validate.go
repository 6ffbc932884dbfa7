package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"math"
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on stored values.
const (
	MaxTokenName   = 128     // bytes
	MaxBundle      = 1 << 20 // bytes of a release bundle
	MaxWrapped     = 4096    // bytes of a wrapped key
	MaxFingerprint = 64      // bytes
)

// Time returns t as the store keeps it: in UTC, truncated to the microsecond,
// without a monotonic clock reading.
func Time(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// NewID returns a fresh random ID: 16 bytes from crypto/rand in lowercase hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

var (
	hexIDRE   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	uuidIDRE  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	releaseRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`) // as plan.ValidRelease
)

// ValidID checks a tenant or token ID: 32 lowercase hex digits (NewID), or a
// lowercase canonical UUIDv4.
func ValidID(what, id string) error {
	if hexIDRE.MatchString(id) || uuidIDRE.MatchString(id) {
		return nil
	}
	return invalidf("invalid %s ID %q: use 32 lowercase hex digits (16 random bytes) or a lowercase UUIDv4", what, id)
}

// ValidTenantName checks a tenant name: a lowercase letter or digit, then up
// to 62 lowercase letters, digits or hyphens.
func ValidTenantName(name string) error {
	if !nameRE.MatchString(name) {
		return invalidf("invalid tenant name %q: use a lowercase letter or digit followed by up to 62 lowercase letters, digits or '-' (e.g. acme-prod)", name)
	}
	return nil
}

// ValidReleaseID checks a release id, by the rule of plan.ValidRelease.
func ValidReleaseID(id string) error {
	if !releaseRE.MatchString(id) {
		return invalidf("invalid release id %q: use a letter or digit followed by up to 63 letters, digits, '.', '_' or '-' (e.g. 2026-1)", id)
	}
	return nil
}

// ValidType checks a key type.
func ValidType(typ string) error {
	if !ValidKeyType(typ) {
		return invalidf("invalid key type %q: use one of %q", typ, KeyTypes())
	}
	return nil
}

// ValidKeyRef checks the arguments that name a key version.
func ValidKeyRef(tenant, typ string, version uint32) error {
	if err := ValidID("tenant", tenant); err != nil {
		return err
	}
	if err := ValidType(typ); err != nil {
		return err
	}
	if version == 0 {
		return invalidf("invalid key version 0: versions start at 1")
	}
	return nil
}

// CheckTime checks that t is set and within years 1–9999, and returns it as
// the store keeps it (Time).
func CheckTime(what string, t time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Time{}, invalidf("%s time is not set", what)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, invalidf("%s time %s is out of range (years 1 to 9999)", what, t.UTC().Format(time.RFC3339))
	}
	return Time(t), nil
}

// Check validates t and returns it as the store keeps it: ID filled with
// NewID() if empty, Created per Time.
func (t Tenant) Check() (Tenant, error) {
	if t.ID == "" {
		t.ID = NewID()
	}
	if err := ValidID("tenant", t.ID); err != nil {
		return Tenant{}, err
	}
	if err := ValidTenantName(t.Name); err != nil {
		return Tenant{}, err
	}
	if !t.Env.Valid() {
		return Tenant{}, invalidf("invalid environment %q: use %q, %q or %q", t.Env, EnvProduction, EnvDeveloper, EnvSandbox)
	}
	var err error
	if t.Created, err = CheckTime("tenant creation", t.Created); err != nil {
		return Tenant{}, err
	}
	return t, nil
}

// Check validates tok and returns it as the store keeps it: ID filled with
// NewID() if empty, times per Time.
func (tok Token) Check() (Token, error) {
	if tok.ID == "" {
		tok.ID = NewID()
	}
	if err := ValidID("token", tok.ID); err != nil {
		return Token{}, err
	}
	if tok.Hash == ([32]byte{}) {
		return Token{}, invalidf("token hash is all zeros: it must be the SHA-256 of the token secret")
	}
	if !tok.Role.Valid() {
		return Token{}, invalidf("invalid role %q: use %q, %q, %q or %q", tok.Role, RoleOperator, RoleTenantAdmin, RoleApp, RoleAuditor)
	}
	if tok.Tenant == "" {
		if !tok.Role.Global() {
			return Token{}, invalidf("a %s token must name its tenant: only operator and auditor tokens may cover all tenants", tok.Role)
		}
	} else if err := ValidID("tenant", tok.Tenant); err != nil {
		return Token{}, err
	}
	if len(tok.Name) > MaxTokenName || !utf8.ValidString(tok.Name) {
		return Token{}, invalidf("invalid token name: use at most %d bytes of UTF-8", MaxTokenName)
	}
	for _, r := range tok.Name {
		if unicode.IsControl(r) {
			return Token{}, invalidf("invalid token name %q: control characters are not allowed", tok.Name)
		}
	}
	var err error
	if tok.Created, err = CheckTime("token creation", tok.Created); err != nil {
		return Token{}, err
	}
	if !tok.Expires.IsZero() {
		if tok.Expires, err = CheckTime("token expiry", tok.Expires); err != nil {
			return Token{}, err
		}
		if !tok.Expires.After(tok.Created) {
			return Token{}, invalidf("token expiry %s is not after its creation %s",
				tok.Expires.Format(time.RFC3339Nano), tok.Created.Format(time.RFC3339Nano))
		}
	}
	return tok, nil
}

// Check validates r and returns it as the store keeps it (Installed per
// Time). The bundle must be one or more PEM blocks, at most MaxBundle bytes;
// the store does not verify it.
func (r Release) Check() (Release, error) {
	if err := ValidReleaseID(r.ID); err != nil {
		return Release{}, err
	}
	if len(r.Bundle) == 0 || len(r.Bundle) > MaxBundle {
		return Release{}, invalidf("release %s: the bundle must be 1 to %d bytes, not %d", r.ID, MaxBundle, len(r.Bundle))
	}
	if b, _ := pem.Decode(r.Bundle); b == nil {
		return Release{}, invalidf("release %s: the bundle is not PEM: install the bundle file as received", r.ID)
	}
	var err error
	if r.Installed, err = CheckTime("release installation", r.Installed); err != nil {
		return Release{}, err
	}
	return r, nil
}

// Check validates req and returns it as the store uses it: Now per Time, and
// New with Tenant, Type, State (active) and Created (Now) set and an empty
// Fingerprint made nil.
func (req RotateRequest) Check() (RotateRequest, error) {
	if err := ValidID("tenant", req.Tenant); err != nil {
		return RotateRequest{}, err
	}
	if err := ValidType(req.Type); err != nil {
		return RotateRequest{}, err
	}
	if req.MinInterval < 0 {
		return RotateRequest{}, invalidf("negative minimum rotation interval %v", req.MinInterval)
	}
	if req.MaxKeys < 1 {
		return RotateRequest{}, invalidf("maximum key count %d: it must be at least 1", req.MaxKeys)
	}
	var err error
	if req.Now, err = CheckTime("rotation", req.Now); err != nil {
		return RotateRequest{}, err
	}
	k := req.New
	switch {
	case k.Tenant != "" && k.Tenant != req.Tenant:
		return RotateRequest{}, invalidf("the new key's tenant %q differs from the request's %q", k.Tenant, req.Tenant)
	case k.Type != "" && k.Type != req.Type:
		return RotateRequest{}, invalidf("the new key's type %q differs from the request's %q", k.Type, req.Type)
	case k.State != "" && k.State != StateActive:
		return RotateRequest{}, invalidf("the new key has state %q: it becomes active", k.State)
	case !k.Created.IsZero() && !Time(k.Created).Equal(req.Now):
		return RotateRequest{}, invalidf("the new key's creation time differs from the request's Now")
	case !k.Destroyed.IsZero():
		return RotateRequest{}, invalidf("the new key has a destruction time")
	case !k.Source.Valid():
		return RotateRequest{}, invalidf("invalid key source %q: use %q or %q", k.Source, SourceHSM, SourceUploaded)
	case !k.Derivation.Valid():
		return RotateRequest{}, invalidf("invalid derivation %q: use %q or %q", k.Derivation, DerivationPBKDF2, DerivationNone)
	case len(k.Wrapped) == 0 || len(k.Wrapped) > MaxWrapped:
		return RotateRequest{}, invalidf("the new key's wrapped material must be 1 to %d bytes, not %d", MaxWrapped, len(k.Wrapped))
	case len(k.Fingerprint) > MaxFingerprint:
		return RotateRequest{}, invalidf("the new key's fingerprint must be at most %d bytes, not %d", MaxFingerprint, len(k.Fingerprint))
	}
	if err := ValidReleaseID(k.Release); err != nil {
		return RotateRequest{}, err
	}
	k.Tenant, k.Type, k.State, k.Created = req.Tenant, req.Type, StateActive, req.Now
	k.Wrapped = bytes.Clone(k.Wrapped)
	if len(k.Fingerprint) == 0 {
		k.Fingerprint = nil
	} else {
		k.Fingerprint = bytes.Clone(k.Fingerprint)
	}
	req.New = k
	return req, nil
}

// Series is what a driver reads about (tenant, type), under the rotation lock,
// for RotateRequest.Decide.
type Series struct {
	// Newest is the creation time of the key with the highest version (any
	// state); zero if there is none.
	Newest time.Time
	// MaxVersion is the highest version (any state); 0 if none.
	MaxVersion uint32
	// Live counts the active and archived keys.
	Live int
	// Duplicate says whether a key of the tenant (any type, any state) has
	// New.Fingerprint; false if New.Fingerprint is nil.
	Duplicate bool
}

// Decide applies the rotation rules to a checked request (Check) and what
// the driver read, in this order:
//
//  1. if the newest key (any state) was created less than MinInterval before
//     Now: *RateLimitedError{Next: newest.Created + MinInterval};
//  2. if Live ≥ MaxKeys: ErrTooManyKeys;
//  3. if Duplicate: ErrDuplicate;
//
// and otherwise returns the key to insert as active, with version
// MaxVersion+1. A caller that binds the version into the key material (the
// wrapped secret's associated data) sets New.Version to the version it
// expects: if a concurrent rotation took it, the answer is ErrConflict and
// the caller wraps again for the next one. The driver then archives the
// previous active key and inserts this one, in the same transaction.
func (req RotateRequest) Decide(s Series) (Key, error) {
	if !s.Newest.IsZero() {
		if next := s.Newest.Add(req.MinInterval); req.Now.Before(next) {
			return Key{}, &RateLimitedError{Next: next}
		}
	}
	if s.Live >= req.MaxKeys {
		return Key{}, Errorf(ErrTooManyKeys, "tenant %s has %d active and archived %s keys, the most allowed is %d: destroy one first",
			req.Tenant, s.Live, req.Type, req.MaxKeys)
	}
	if s.Duplicate {
		return Key{}, Errorf(ErrDuplicate, "tenant %s already has a key with the same fingerprint (of some type, possibly destroyed)", req.Tenant)
	}
	if s.MaxVersion == math.MaxUint32 {
		return Key{}, Errorf(ErrTooManyKeys, "tenant %s has used every %s key version", req.Tenant, req.Type)
	}
	k := req.New
	if k.Version != 0 && k.Version != s.MaxVersion+1 {
		return Key{}, Errorf(ErrConflict, "tenant %s's next %s key is version %d, not %d (a concurrent rotation took it)",
			req.Tenant, req.Type, s.MaxVersion+1, k.Version)
	}
	k.Version = s.MaxVersion + 1
	return k, nil
}

package store

import (
	"regexp"
	"time"

	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Limits on stored values.
const (
	MaxBundle      = 1 << 20 // bytes of a release bundle
	MaxWrapped     = 4096    // bytes of a wrapped key
	MaxFingerprint = 64      // bytes
)

// Time returns t as the store keeps it: in UTC, truncated to the microsecond,
// without a monotonic clock reading.
func Time(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

var releaseRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`) // as plan.ValidRelease

// ValidID checks a tenant, token or certificate ID (tenant.ValidID): 32
// lowercase hex digits (tenant.NewID), or a lowercase canonical UUIDv4.
func ValidID(what, id string) error {
	if tenant.ValidID(id) {
		return nil
	}
	return invalidf("invalid %s ID %q: use 32 lowercase hex digits (16 random bytes) or a lowercase UUIDv4", what, id)
}

// ValidTenantName checks a tenant name: a lowercase letter or digit, then up
// to 62 lowercase letters, digits or hyphens.
func ValidTenantName(name string) error {
	if !tenant.ValidName(name) {
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
	if !tenant.ValidKeyType(typ) {
		return invalidf("invalid key type %q: use one of %q", typ, tenant.KeyTypes())
	}
	return nil
}

// ValidKeyRef checks the arguments that name a key version.
func ValidKeyRef(r tenant.KeyRef) error {
	if err := ValidID("tenant", r.Tenant); err != nil {
		return err
	}
	if err := ValidType(r.Type); err != nil {
		return err
	}
	if r.Version == 0 {
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

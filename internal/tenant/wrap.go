package tenant

import (
	"errors"
	"fmt"
	"regexp"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Ref names one tenant secret: tenant, key type, version, and the release
// whose TWK wraps it.
type Ref struct {
	Tenant     string // the tenant's id
	Type       string // data, deterministic, search_index, event_bus, analytics
	Version    uint32
	Release    string
	Source     Source
	Derivation Derivation
}

var (
	typeRE   = regexp.MustCompile(`^[a-z][a-z_]{0,31}$`)
	tenantRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// Check validates a reference.
func (r Ref) Check() error {
	switch {
	case !tenantRE.MatchString(r.Tenant):
		return fmt.Errorf("tenant: invalid tenant id %q", r.Tenant)
	case !typeRE.MatchString(r.Type):
		return fmt.Errorf("tenant: invalid key type %q", r.Type)
	case r.Version == 0:
		return errors.New("tenant: key versions start at 1")
	case !r.Source.Valid():
		return fmt.Errorf("tenant: unknown source %q", r.Source)
	case !r.Derivation.Valid():
		return fmt.Errorf("tenant: unknown derivation mode %q", r.Derivation)
	}
	return plan.ValidRelease(r.Release)
}

// aad is the associated data binding a wrapped secret to its reference.
func (r Ref) aad() []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte("strongroom tenant secret v1")) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Tenant)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Type)) })
	b.AddUint32(r.Version)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Release)) })
	b.AddUint8(r.Source.code())
	b.AddUint8(r.Derivation.code())
	return b.BytesOrPanic()
}

const wrapVersion = 1

// ErrUnwrap: a wrapped secret does not open under this TWK and reference.
var ErrUnwrap = errors.New("tenant: the wrapped secret does not open (altered, or another key, tenant or release)")

// Wrap seals a tenant secret under the TWK of the release it names:
//
//	u8 version = 1 || u8<> release id || AES-256-GCM(TWK, s, aad(ref))
//
// where the GCM part is nonce (12) || ciphertext (32) || tag (16), and
// aad(ref) frames tenant, type, version, release, source and derivation.
func Wrap(twk secret.Key, ref Ref, s secret.Key) ([]byte, error) {
	if err := ref.Check(); err != nil {
		return nil, err
	}
	sealed, err := primitive.Seal(twk, s.Bytes(), ref.aad())
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddUint8(wrapVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(ref.Release)) })
	b.AddBytes(sealed)
	return b.Bytes()
}

// WrappedRelease reads which release's TWK a wrapped secret needs.
func WrappedRelease(wrapped []byte) (string, error) {
	s := cryptobyte.String(wrapped)
	var v uint8
	var rel cryptobyte.String
	if !s.ReadUint8(&v) || v != wrapVersion || !s.ReadUint8LengthPrefixed(&rel) || len(s) != 12+secret.Size+16 {
		return "", errors.New("tenant: malformed wrapped secret")
	}
	return string(rel), nil
}

// Unwrap opens a wrapped secret for ref under twk.
func Unwrap(twk secret.Key, ref Ref, wrapped []byte) (secret.Key, error) {
	if err := ref.Check(); err != nil {
		return secret.Key{}, err
	}
	rel, err := WrappedRelease(wrapped)
	if err != nil {
		return secret.Key{}, err
	}
	if rel != ref.Release {
		return secret.Key{}, fmt.Errorf("tenant: the secret is wrapped under release %s, the reference names %s", rel, ref.Release)
	}
	pt, err := primitive.Open(twk, wrapped[2+len(rel):], ref.aad())
	if err != nil {
		return secret.Key{}, ErrUnwrap
	}
	defer clear(pt)
	return secret.New(pt)
}

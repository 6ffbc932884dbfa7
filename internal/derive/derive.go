// Package derive derives tenants' data encryption keys (DEKs).
//
// A DEK is derived on demand with PBKDF2-HMAC-SHA-256 from a release's KDF
// seed and KDF salt and a tenant secret, never stored. Every input is framed
// (length-prefixed, domain-separated with a versioned label) and the DEK is
// bound to the release id, the tenant id, the key type and the tenant secret's
// version, so that no two distinct sets of inputs share a PBKDF2 password and
// salt. The iteration count is the release's, recorded in its signed bundle.
//
// A DEK must always be derived with the release its tenant secret names (the
// release whose tenant wrapping key wrapped it), never merely the newest:
// FromRelease fills an Input from exactly one opened release so that the
// release id, seed, salt and iteration count cannot come from two releases.
//
// With derivation opted out (ModeNone), the tenant's uploaded value is the
// DEK; see DEK. The exact byte layout is in docs/derivation.md.
package derive

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Domain-separation labels, versioned. Changing the derivation means a new
// label (v2), never a silent change to v1.
const (
	PasswordLabel = "strongroom dek password v1"
	SaltLabel     = "strongroom dek salt v1"
)

// Iteration counts Key accepts: those a ceremony plan may set.
const (
	DefaultIterations = plan.DefaultIterations // 600 000
	MinIterations     = plan.MinIterations     // 100 000
	MaxIterations     = plan.MaxIterations     // 10 000 000
)

// Limits on the identifiers bound into a DEK, in bytes. The framing could
// carry more (u16 for the tenant id, u8 for the key type); these are policy.
const (
	MaxTenantID = 256
	MaxKeyType  = 64
)

// ErrInput reports an Input that Key refuses. Returned errors wrap it with
// details; they depend only on public inputs (ids, lengths, counts) and on
// whether a key is empty or all zeros, never on key material otherwise.
var ErrInput = errors.New("derive: invalid input")

// Input is everything a DEK depends on.
type Input struct {
	// Release is the id of the release the tenant secret names, and
	// Iterations, Seed and Salt are that release's. Use FromRelease.
	Release    string
	Iterations uint32
	Seed, Salt secret.Key

	// TenantID, KeyType and Version name the tenant secret; TenantSecret
	// is its value. Ids are opaque bytes, compared exactly (no Unicode
	// normalization or case folding). Version starts at 1.
	TenantID     string
	KeyType      string
	Version      uint32
	TenantSecret secret.Key
}

// FromRelease returns an Input whose release fields (Release, Iterations,
// Seed, Salt) all come from r, which must be the release the tenant secret
// names. The Input shares r's keys: it must not outlive r.
func FromRelease(r *release.Release, tenantID, keyType string, version uint32, tenantSecret secret.Key) Input {
	in := Input{TenantID: tenantID, KeyType: keyType, Version: version, TenantSecret: tenantSecret}
	if r != nil {
		in.Release, in.Iterations, in.Seed, in.Salt = r.ID, r.Iterations, r.Seed, r.Salt
	}
	return in
}

// Key derives the DEK for in:
//
//	password = u8<"strongroom dek password v1"> || u8<seed> || u8<tenant secret>
//	salt     = u8<"strongroom dek salt v1"> || u8<kdf salt> || u8<release id>
//	           || u16<tenant id> || u8<key type> || u32 version
//	DEK      = PBKDF2-HMAC-SHA-256(password, salt, in.Iterations, 32)
//
// It refuses (ErrInput) an invalid release id, an iteration count outside
// MinIterations..MaxIterations, empty or over-long ids, version 0, and keys
// that are empty or all zeros (a destroyed key). The caller owns the returned
// Key and should Destroy it when done.
func Key(in Input) (secret.Key, error) {
	if err := in.validate(); err != nil {
		return secret.Key{}, err
	}
	password, salt := frame(in)
	defer clear(password)
	defer clear(salt)
	dk, err := primitive.PBKDF2(password, salt, int(in.Iterations), secret.Size)
	if err != nil {
		return secret.Key{}, fmt.Errorf("derive: %w", err)
	}
	defer clear(dk)
	return secret.New(dk)
}

// validate checks every field of in.
func (in Input) validate() error {
	if err := plan.ValidRelease(in.Release); err != nil {
		return fmt.Errorf("%w: release id %q", ErrInput, in.Release)
	}
	if in.Iterations < MinIterations || in.Iterations > MaxIterations {
		return fmt.Errorf("%w: PBKDF2 iteration count %d out of range (%d to %d)", ErrInput, in.Iterations, MinIterations, MaxIterations)
	}
	if len(in.TenantID) == 0 || len(in.TenantID) > MaxTenantID {
		return fmt.Errorf("%w: tenant id of %d bytes (1 to %d)", ErrInput, len(in.TenantID), MaxTenantID)
	}
	if len(in.KeyType) == 0 || len(in.KeyType) > MaxKeyType {
		return fmt.Errorf("%w: key type of %d bytes (1 to %d)", ErrInput, len(in.KeyType), MaxKeyType)
	}
	if in.Version == 0 {
		return fmt.Errorf("%w: tenant secret version 0 (versions start at 1)", ErrInput)
	}
	for _, k := range []struct {
		name string
		key  secret.Key
	}{{"KDF seed", in.Seed}, {"KDF salt", in.Salt}, {"tenant secret", in.TenantSecret}} {
		if err := usable(k.name, k.key); err != nil {
			return err
		}
	}
	return nil
}

var zeroKey [secret.Size]byte

// usable refuses an empty key and one that is all zeros: a destroyed key, or
// one never filled in. A random 256-bit key is all zeros with probability
// 2^-256. The comparison is constant-time.
func usable(name string, k secret.Key) error {
	if k.IsZero() {
		return fmt.Errorf("%w: no %s", ErrInput, name)
	}
	if subtle.ConstantTimeCompare(k.Bytes(), zeroKey[:]) == 1 {
		return fmt.Errorf("%w: the %s is all zeros (destroyed?)", ErrInput, name)
	}
	return nil
}

// Sizes of the framed PBKDF2 inputs.
const (
	passwordLen = 1 + len(PasswordLabel) + 1 + secret.Size + 1 + secret.Size
	saltFixed   = 1 + len(SaltLabel) + 1 + secret.Size + 1 + 2 + 1 + 4
)

// frame returns the PBKDF2 password and salt for a valid in. Both buffers are
// allocated at their exact final size, so that no partial copy of the
// secrets is left behind by a growing buffer; the caller wipes them.
func frame(in Input) (password, salt []byte) {
	p := cryptobyte.NewFixedBuilder(make([]byte, 0, passwordLen))
	p.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(PasswordLabel)) })
	p.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(in.Seed.Bytes()) })
	p.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(in.TenantSecret.Bytes()) })

	s := cryptobyte.NewFixedBuilder(make([]byte, 0, saltFixed+len(in.Release)+len(in.TenantID)+len(in.KeyType)))
	s.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(SaltLabel)) })
	s.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(in.Salt.Bytes()) })
	s.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(in.Release)) })
	s.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(in.TenantID)) })
	s.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(in.KeyType)) })
	s.AddUint32(in.Version)

	// Lengths were validated and the buffers are exactly large enough, so
	// neither builder can fail.
	return p.BytesOrPanic(), s.BytesOrPanic()
}

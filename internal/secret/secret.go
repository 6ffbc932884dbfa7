// Package secret owns raw key material.
//
// Every value of key material that Strongroom holds in process memory lives in
// a type of this package. The types are fixed-size, copy their input at
// construction, compare in constant time, and redact themselves whenever they
// are printed, logged or marshalled, so that a stray fmt.Println, slog call or
// JSON encoding cannot leak them. Destroy overwrites the bytes (best effort:
// the Go runtime may have copied them before, e.g. while growing a stack).
package secret

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
)

// Size is the size in bytes of a Key: 256 bits.
const Size = 32

// Redacted is what every secret type prints instead of its value.
const Redacted = "[REDACTED]"

// ErrSize reports input of the wrong length.
var ErrSize = errors.New("secret: key material must be exactly 32 bytes")

// Key is 256 bits of key material: a KDF seed or salt, a wrapping key, a
// tenant secret or a data encryption key.
//
// A Key is a handle: copies of a Key share the same bytes, and Destroy on any
// copy wipes them for all. The zero Key is empty and Bytes panics on it.
type Key struct {
	b *[Size]byte
}

// New returns a Key holding a copy of b, which must be exactly Size bytes.
func New(b []byte) (Key, error) {
	if len(b) != Size {
		return Key{}, ErrSize
	}
	k := Key{b: new([Size]byte)}
	copy(k.b[:], b)
	return k, nil
}

// Bytes returns the key material. The slice aliases the Key's storage: callers
// must not keep it beyond the Key's lifetime nor modify it.
func (k Key) Bytes() []byte {
	if k.b == nil {
		panic("secret: Bytes on an empty Key")
	}
	return k.b[:]
}

// IsZero reports whether k is the empty Key (never set, not merely destroyed).
func (k Key) IsZero() bool { return k.b == nil }

// Equal reports in constant time whether k and o hold the same material.
// Empty keys equal nothing, not even each other.
func (k Key) Equal(o Key) bool {
	if k.b == nil || o.b == nil {
		return false
	}
	return subtle.ConstantTimeCompare(k.b[:], o.b[:]) == 1
}

// Destroy overwrites the key material with zeros. It is safe to call more
// than once.
func (k Key) Destroy() {
	if k.b != nil {
		clear(k.b[:])
	}
}

// String implements fmt.Stringer and never reveals the material.
func (Key) String() string { return Redacted }

// GoString implements fmt.GoStringer for %#v.
func (Key) GoString() string { return "secret.Key{" + Redacted + "}" }

// Format implements fmt.Formatter so that every verb (%x, %v, %s, %q, %d...)
// prints the redaction marker.
func (Key) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (Key) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler.
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (used by YAML, TOML, XML...).
func (Key) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

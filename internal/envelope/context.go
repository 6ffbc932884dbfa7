package envelope

import (
	"encoding/binary"
	"errors"
	"slices"
	"unicode/utf8"

	"github.com/strongroom-kms/strongroom/internal/reason"
)

// Limits on a caller's context.
const (
	MaxContextPairs = 64
	MaxContextKey   = 64   // bytes; keys are at least 1 byte
	MaxContextValue = 1024 // bytes; values may be empty
)

// The encoding's length prefixes hold the limits (a compile-time check).
const (
	_ = uint8(MaxContextKey)
	_ = uint16(MaxContextValue)
	_ = uint16(MaxContextPairs)
)

// ErrContext: a context breaks the limits above, or is not UTF-8.
var ErrContext = errors.New("envelope: invalid context")

// CheckContext reports whether context can be bound to a ciphertext: at most
// MaxContextPairs pairs, keys of 1 to MaxContextKey bytes and values of at
// most MaxContextValue bytes, all valid UTF-8.
func CheckContext(context map[string]string) error {
	_, err := canonical(context)
	return err
}

// canonical is the one encoding of a context:
//
//	u16 count || for each pair, in increasing byte order of keys: u8<> key || u16<> value
//
// A nil and an empty map both encode as 00 00. The errors name the offending
// key (never a value), quoted, or only its length when it is itself invalid.
func canonical(context map[string]string) ([]byte, error) {
	if len(context) > MaxContextPairs {
		return nil, reason.New(ErrContext, "invalid context: %d pairs (at most %d)", len(context), MaxContextPairs)
	}
	keys := make([]string, 0, len(context))
	size := 2
	for k, v := range context {
		if len(k) == 0 || len(k) > MaxContextKey || !utf8.ValidString(k) {
			return nil, reason.New(ErrContext, "invalid context: a key of %d bytes (1 to %d bytes of UTF-8)", len(k), MaxContextKey)
		}
		if len(v) > MaxContextValue || !utf8.ValidString(v) {
			return nil, reason.New(ErrContext, "invalid context: the value of %q must be at most %d bytes of UTF-8", k, MaxContextValue)
		}
		keys = append(keys, k)
		size += 1 + len(k) + 2 + len(v)
	}
	slices.Sort(keys)
	// Appended by hand rather than with cryptobyte, whose length-prefixed
	// children cost two allocations per pair on every encryption: the
	// lengths were bounded above (a key fits u8, a value u16).
	b := make([]byte, 0, size)
	b = binary.BigEndian.AppendUint16(b, uint16(len(keys)))
	for _, k := range keys {
		v := context[k]
		b = append(append(b, uint8(len(k))), k...)
		b = append(binary.BigEndian.AppendUint16(b, uint16(len(v))), v...)
	}
	return b, nil
}

package derive

import (
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Mode is how a tenant secret becomes a DEK.
type Mode uint8

const (
	// ModePBKDF2 derives the DEK with Key: the default.
	ModePBKDF2 Mode = 1
	// ModeNone opts out of derivation: the tenant's uploaded value is the
	// DEK itself. Strongroom then holds the only copy outside the tenant's
	// own systems, so the tenant must back the value up: destroying it
	// here makes the data unreadable unless the tenant uploads it again.
	ModeNone Mode = 2
)

// The zero Mode is invalid, so that a mode never set is caught.

// Names of the modes, as ParseMode, String and the text encodings use them.
const (
	namePBKDF2 = "pbkdf2"
	nameNone   = "none"
)

// ParseMode parses "pbkdf2" or "none" (exactly, lower case).
func ParseMode(s string) (Mode, error) {
	switch s {
	case namePBKDF2:
		return ModePBKDF2, nil
	case nameNone:
		return ModeNone, nil
	}
	return 0, fmt.Errorf("derive: unknown derivation mode %q (want %q or %q)", s, namePBKDF2, nameNone)
}

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == ModePBKDF2 || m == ModeNone }

// String returns "pbkdf2", "none", or "mode(N)" for an unknown mode.
func (m Mode) String() string {
	switch m {
	case ModePBKDF2:
		return namePBKDF2
	case ModeNone:
		return nameNone
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// MarshalText implements encoding.TextMarshaler; unknown modes are an error.
func (m Mode) MarshalText() ([]byte, error) {
	if !m.Valid() {
		return nil, fmt.Errorf("derive: unknown derivation mode %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseMode.
func (m *Mode) UnmarshalText(b []byte) error {
	p, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// DEK returns the data encryption key for in under mode m: Key(in) for
// ModePBKDF2, and for ModeNone a copy of in.TenantSecret (the release fields
// and ids are then not used). Either way the result is a new Key the caller
// owns: destroying it leaves in.TenantSecret intact.
func DEK(m Mode, in Input) (secret.Key, error) {
	switch m {
	case ModePBKDF2:
		return Key(in)
	case ModeNone:
		if err := usable("tenant secret", in.TenantSecret); err != nil {
			return secret.Key{}, err
		}
		return secret.New(in.TenantSecret.Bytes())
	}
	return secret.Key{}, fmt.Errorf("%w: unknown derivation mode %d", ErrInput, uint8(m))
}

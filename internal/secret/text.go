package secret

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
)

// MaxText is the longest Text, in bytes.
const MaxText = 4096

// ErrTextSize reports a Text that is empty or longer than MaxText.
var ErrTextSize = errors.New("secret: a secret text must be 1 to 4096 bytes")

// Text is a secret of variable length that is not key material of a fixed
// size: a bearer secret given to Strongroom to present to a tenant's key
// service. It behaves as Key does: a handle that copies its input, compares
// in constant time, redacts itself and is destroyed in place.
type Text struct {
	b *[]byte
}

// NewText returns a Text holding a copy of b (1 to MaxText bytes).
func NewText(b []byte) (Text, error) {
	if len(b) == 0 || len(b) > MaxText {
		return Text{}, ErrTextSize
	}
	c := make([]byte, len(b))
	copy(c, b)
	return Text{b: &c}, nil
}

// Bytes returns the secret. The slice aliases the Text's storage.
func (t Text) Bytes() []byte {
	if t.b == nil {
		panic("secret: Bytes on an empty Text")
	}
	return *t.b
}

// Len is the secret's length (0 for the empty Text).
func (t Text) Len() int {
	if t.b == nil {
		return 0
	}
	return len(*t.b)
}

// IsZero reports whether t is the empty Text.
func (t Text) IsZero() bool { return t.b == nil }

// Equal reports in constant time (for secrets of equal length) whether t
// and o hold the same secret. Empty texts equal nothing.
func (t Text) Equal(o Text) bool {
	if t.b == nil || o.b == nil {
		return false
	}
	return subtle.ConstantTimeCompare(*t.b, *o.b) == 1
}

// Destroy overwrites the secret with zeros.
func (t Text) Destroy() {
	if t.b != nil {
		clear(*t.b)
	}
}

// String implements fmt.Stringer and never reveals the secret.
func (Text) String() string { return Redacted }

// GoString implements fmt.GoStringer for %#v.
func (Text) GoString() string { return "secret.Text{" + Redacted + "}" }

// Format implements fmt.Formatter: every verb prints Redacted.
func (Text) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (Text) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler.
func (Text) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (Text) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

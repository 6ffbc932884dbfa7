// Package envelope is the data plane's ciphertext format: a versioned,
// self-describing envelope that names the tenant key that sealed it (S2,
// S13), and the HPKE format that delivers a DEK to a client (deliver.go).
//
// A ciphertext is
//
//	u8 format = 1
//	u8<> tenant id
//	u8<> key type
//	u32  key version
//	AES-256-GCM(DEK, plaintext, aad) = nonce (12) || ciphertext || tag (16)
//
// with
//
//	aad = u8<"strongroom envelope v1"> || the header bytes above || canonical(context)
//
// so the header (the tenant, type and version of the key) and the caller's
// context are authenticated: a ciphertext moved to another tenant, relabelled
// with another key version, or opened with another context fails. The DEK is
// not derivable from the ciphertext; the header only names it. The format is
// specified byte by byte in docs/dataplane.md.
//
// Keys of type deterministic seal format 2 instead (deterministic.go):
// AES-SIV under a key derived per field, so that equal plaintexts of one
// field give equal ciphertexts. FormatOf tells the two apart.
//
// Every failure of Open and OpenDeterministic is the one opaque ErrDecrypt.
package envelope

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Format is the first byte of every ciphertext of this version.
const Format = 1

// aadLabel separates envelope associated data from every other use of a DEK.
const aadLabel = "strongroom envelope v1"

// MaxName is the longest tenant id or key type in a header, in bytes.
const MaxName = 255

var (
	// ErrDecrypt is every failure of Open: a malformed or altered
	// ciphertext, another key, or another context. It says nothing more, on
	// purpose.
	ErrDecrypt = errors.New("envelope: decryption failed")
	// ErrMalformed: ParseHeader found no valid header.
	ErrMalformed = errors.New("envelope: malformed ciphertext")
	// ErrHeader: Seal was given a header that cannot be encoded.
	ErrHeader = errors.New("envelope: invalid header")
)

// Header names the tenant key a ciphertext was sealed under.
type Header struct {
	Tenant  string // the tenant's id
	Type    string // the key type, e.g. "data"
	Version uint32 // the key version, from 1
}

// Check reports whether h can be encoded: tenant and type 1 to MaxName bytes
// of printable ASCII (0x21 to 0x7e), version at least 1.
func (h Header) Check() error {
	if err := checkName("tenant id", h.Tenant); err != nil {
		return err
	}
	if err := checkName("key type", h.Type); err != nil {
		return err
	}
	if h.Version == 0 {
		return fmt.Errorf("%w: key version 0 (versions start at 1)", ErrHeader)
	}
	return nil
}

func checkName(what, s string) error {
	if len(s) == 0 || len(s) > MaxName {
		return fmt.Errorf("%w: %s of %d bytes (1 to %d)", ErrHeader, what, len(s), MaxName)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return fmt.Errorf("%w: %s has a byte outside printable ASCII", ErrHeader, what)
		}
	}
	return nil
}

// Marshal returns the header's bytes, the prefix of every ciphertext under
// it. h must be valid (Check).
func (h Header) Marshal() ([]byte, error) {
	if err := h.Check(); err != nil {
		return nil, err
	}
	return h.marshal(), nil
}

func (h Header) marshal() []byte {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, h.size()))
	h.add(b, Format)
	return b.BytesOrPanic()
}

// add adds the format byte and the key's names, the start of every
// format's header.
func (h Header) add(b *cryptobyte.Builder, format uint8) {
	b.AddUint8(format)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.Tenant)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.Type)) })
	b.AddUint32(h.Version)
}

func (h Header) size() int { return 1 + 1 + len(h.Tenant) + 1 + len(h.Type) + 4 }

// Overhead is how many bytes longer than its plaintext a ciphertext under h
// is.
func (h Header) Overhead() int { return h.size() + primitive.Overhead }

// ParseHeader reads the header of a ciphertext, without opening it: the
// caller uses it to find the key. It checks that the rest is long enough to
// be a sealed message, and returns ErrMalformed otherwise. A header that
// parses proves nothing until Open succeeds.
func ParseHeader(ct []byte) (Header, error) {
	h, _, err := parse(ct)
	return h, err
}

// KeyOf reads the key a ciphertext of any format names (format 1's
// header, or format 2's without its field), without opening it: for a
// caller that sorts ciphertexts by key version. ErrMalformed if it is
// neither.
func KeyOf(ct []byte) (Header, error) {
	switch FormatOf(ct) {
	case Format:
		return ParseHeader(ct)
	case FormatDeterministic:
		fh, err := ParseFieldHeader(ct)
		return fh.Header, err
	}
	return Header{}, ErrMalformed
}

// parse splits ct into its header and the sealed part.
func parse(ct []byte) (Header, []byte, error) {
	s := cryptobyte.String(ct)
	var format uint8
	var tenant, typ cryptobyte.String
	var h Header
	if !s.ReadUint8(&format) || format != Format ||
		!s.ReadUint8LengthPrefixed(&tenant) || !s.ReadUint8LengthPrefixed(&typ) ||
		!s.ReadUint32(&h.Version) || len(s) < primitive.Overhead {
		return Header{}, nil, ErrMalformed
	}
	h.Tenant, h.Type = string(tenant), string(typ)
	if h.Check() != nil {
		return Header{}, nil, ErrMalformed
	}
	return h, s, nil
}

// aad is the associated data of a format 1 ciphertext with header bytes hb.
func aad(hb, ctx []byte) []byte { return labelled(aadLabel, hb, ctx) }

// labelled is u8<label> || hb || ctx: a format's associated data.
func labelled(label string, hb, ctx []byte) []byte {
	out := make([]byte, 0, 1+len(label)+len(hb)+len(ctx))
	out = append(out, byte(len(label)))
	out = append(out, label...)
	out = append(out, hb...)
	return append(out, ctx...)
}

// Seal encrypts plaintext under dek, the DEK of the key h names, bound to h
// and to context (which the same map must be given to Open; nil and empty
// are the same). It fails only for an invalid header (ErrHeader), an invalid
// context (ErrContext) or an empty key.
func Seal(dek secret.Key, h Header, context map[string]string, plaintext []byte) ([]byte, error) {
	hb, err := h.Marshal()
	if err != nil {
		return nil, err
	}
	c, err := canonical(context)
	if err != nil {
		return nil, err
	}
	sealed, err := primitive.Seal(dek, plaintext, aad(hb, c))
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return append(hb, sealed...), nil
}

// Open checks and decrypts a ciphertext sealed under dek with context. The
// caller chose dek by the header (ParseHeader); the header is authenticated
// here. Every failure is ErrDecrypt.
func Open(dek secret.Key, ct []byte, context map[string]string) ([]byte, error) {
	h, sealed, err := parse(ct)
	if err != nil {
		return nil, ErrDecrypt
	}
	c, err := canonical(context)
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := primitive.Open(dek, sealed, aad(ct[:h.size()], c))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

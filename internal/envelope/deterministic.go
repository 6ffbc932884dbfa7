package envelope

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/siv"
)

// FormatDeterministic is the first byte of a deterministic ciphertext
// (format 2): the same key version, field, flag, context and plaintext
// always give the same ciphertext. It is specified byte by byte in
// docs/dataplane.md:
//
//	u8  format = 2
//	u8<> tenant id
//	u8<> key type
//	u32  key version
//	u8<> field
//	u8   flags            bit 0: case-insensitive; the others are 0
//	AES-SIV-CMAC-512(K, plaintext, aad) = V (16) || ciphertext
//
// with
//
//	K   = HKDF-SHA-256(DEK, salt = "", info = u8<"strongroom deterministic key v2"> || header, 64 bytes)
//	aad = u8<"strongroom envelope v2"> || header || canonical(context)
//
// where header is every byte before V. So the key depends on the tenant,
// the key type and version, the field and the flag, and equal plaintexts
// give equal ciphertexts only within one field, flag and key version.
const FormatDeterministic = 2

// The labels that keep format 2's key and associated data apart from every
// other use of a DEK.
const (
	keyLabelV2 = "strongroom deterministic key v2"
	aadLabelV2 = "strongroom envelope v2"
)

// flagFold is the flags bit of a case-insensitive ciphertext.
const flagFold = 0x01

// MaxField is the longest field name, in bytes.
const MaxField = 255

var (
	// ErrField: a field name that cannot be encoded, a field where none
	// belongs, or none where one is needed.
	ErrField = errors.New("envelope: invalid field")
	// ErrFold: a case-insensitive plaintext that is not UTF-8.
	ErrFold = errors.New("envelope: a case-insensitive plaintext must be UTF-8")
)

// FieldHeader names what a deterministic ciphertext was sealed under: the
// tenant key, the field, and whether the plaintext was case-folded.
type FieldHeader struct {
	Header
	Field string // the field's name, e.g. "email"
	// CaseInsensitive: the plaintext was folded (Fold) before encryption,
	// so that values equal but for case and Unicode normalisation give one
	// ciphertext. Decryption returns the folded form.
	CaseInsensitive bool
}

// CheckField reports whether name can be a field: 1 to MaxField bytes of
// printable ASCII (0x21 to 0x7e).
func CheckField(name string) error {
	if len(name) == 0 || len(name) > MaxField {
		return reason.New(ErrField, "invalid field: %d bytes (1 to %d bytes of printable ASCII)", len(name), MaxField)
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x21 || name[i] > 0x7e {
			return reason.New(ErrField, "invalid field: a byte outside printable ASCII (1 to %d bytes of 0x21 to 0x7e)", MaxField)
		}
	}
	return nil
}

// Check reports whether h can be encoded (Header.Check and CheckField).
func (h FieldHeader) Check() error {
	if err := h.Header.Check(); err != nil {
		return err
	}
	return CheckField(h.Field)
}

// Marshal returns the header's bytes, the prefix of every ciphertext under
// it. h must be valid (Check).
func (h FieldHeader) Marshal() ([]byte, error) {
	if err := h.Check(); err != nil {
		return nil, err
	}
	return h.marshal(), nil
}

func (h FieldHeader) marshal() []byte {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, h.size()))
	h.Header.add(b, FormatDeterministic)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.Field)) })
	var flags uint8
	if h.CaseInsensitive {
		flags |= flagFold
	}
	b.AddUint8(flags)
	return b.BytesOrPanic()
}

func (h FieldHeader) size() int { return h.Header.size() + 1 + len(h.Field) + 1 }

// Overhead is how many bytes longer than its (folded) plaintext a
// ciphertext under h is.
func (h FieldHeader) Overhead() int { return h.size() + siv.Overhead }

// FormatOf is the format byte of a ciphertext (Format or
// FormatDeterministic for the ones Strongroom makes), or 0 for an empty one.
// It proves nothing: it only says which parser to try.
func FormatOf(ct []byte) byte {
	if len(ct) == 0 {
		return 0
	}
	return ct[0]
}

// ParseFieldHeader reads the header of a deterministic ciphertext, without
// opening it, and checks that the rest is long enough to be AES-SIV output;
// it returns ErrMalformed otherwise. A header that parses proves nothing
// until OpenDeterministic succeeds.
func ParseFieldHeader(ct []byte) (FieldHeader, error) {
	h, _, err := parseField(ct)
	return h, err
}

func parseField(ct []byte) (FieldHeader, []byte, error) {
	s := cryptobyte.String(ct)
	var format, flags uint8
	var tenant, typ, field cryptobyte.String
	var h FieldHeader
	if !s.ReadUint8(&format) || format != FormatDeterministic ||
		!s.ReadUint8LengthPrefixed(&tenant) || !s.ReadUint8LengthPrefixed(&typ) ||
		!s.ReadUint32(&h.Version) || !s.ReadUint8LengthPrefixed(&field) ||
		!s.ReadUint8(&flags) || flags&^flagFold != 0 || len(s) < siv.Overhead {
		return FieldHeader{}, nil, ErrMalformed
	}
	h.Tenant, h.Type, h.Field = string(tenant), string(typ), string(field)
	h.CaseInsensitive = flags&flagFold != 0
	if h.Check() != nil {
		return FieldHeader{}, nil, ErrMalformed
	}
	return h, s, nil
}

// Fold is what a case-insensitive plaintext becomes before encryption: the
// canonical caseless form of Unicode (section 3.13, D145: full case folding
// between canonical decompositions), recomposed to NFC, i.e.
// NFC(caseFold(NFD(p))). Two strings that match caselessly fold to the same
// bytes. p must be UTF-8 (ErrFold).
func Fold(p []byte) ([]byte, error) {
	if !utf8.Valid(p) {
		return nil, ErrFold
	}
	return norm.NFC.Bytes(cases.Fold().Bytes(norm.NFD.Bytes(p))), nil
}

// FieldEqual reports, in constant time in the length of the longer, whether
// the field a caller named is the one a header names.
func FieldEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sivKeys derives the AES-SIV-CMAC-512 key of a format-2 header hb from
// dek: its S2V half and its CTR half. The caller destroys both.
func sivKeys(dek secret.Key, hb []byte) (mac, enc secret.Key, err error) {
	if dek.IsZero() {
		return secret.Key{}, secret.Key{}, fmt.Errorf("%w: empty key", primitive.ErrParameter)
	}
	info := make([]byte, 0, 1+len(keyLabelV2)+len(hb))
	info = append(info, byte(len(keyLabelV2)))
	info = append(info, keyLabelV2...)
	info = append(info, hb...)
	k, err := primitive.HKDF(dek.Bytes(), nil, info, 2*secret.Size)
	if err != nil {
		return secret.Key{}, secret.Key{}, err
	}
	defer clear(k)
	mac, _ = secret.New(k[:secret.Size])
	enc, _ = secret.New(k[secret.Size:])
	return mac, enc, nil
}

// aadV2 is the associated data of a format-2 ciphertext with header bytes hb.
func aadV2(hb, ctx []byte) []byte { return labelled(aadLabelV2, hb, ctx) }

// SealDeterministic encrypts plaintext under a key derived from dek (the
// DEK of the key version h names) for h's field, bound to h and to context.
// If h.CaseInsensitive, the plaintext is folded first (Fold). The same
// arguments always give the same ciphertext. It fails only for an invalid
// header (ErrHeader, ErrField), an invalid context (ErrContext), a
// case-insensitive plaintext that is not UTF-8 (ErrFold) or an empty key.
func SealDeterministic(dek secret.Key, h FieldHeader, context map[string]string, plaintext []byte) ([]byte, error) {
	hb, err := h.Marshal()
	if err != nil {
		return nil, err
	}
	c, err := canonical(context)
	if err != nil {
		return nil, err
	}
	if h.CaseInsensitive {
		if plaintext, err = Fold(plaintext); err != nil {
			return nil, err
		}
	}
	mac, enc, err := sivKeys(dek, hb)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	defer mac.Destroy()
	defer enc.Destroy()
	return append(hb, siv.Seal(mac, enc, plaintext, aadV2(hb, c))...), nil
}

// OpenDeterministic checks and decrypts a format-2 ciphertext sealed under
// dek with context. The caller chose dek by the header (ParseFieldHeader)
// and checked its field; the header is authenticated here. A
// case-insensitive ciphertext gives the folded plaintext. Every failure is
// ErrDecrypt.
func OpenDeterministic(dek secret.Key, ct []byte, context map[string]string) ([]byte, error) {
	h, sealed, err := parseField(ct)
	if err != nil {
		return nil, ErrDecrypt
	}
	c, err := canonical(context)
	if err != nil {
		return nil, ErrDecrypt
	}
	hb := ct[:h.size()]
	mac, enc, err := sivKeys(dek, hb)
	if err != nil {
		return nil, ErrDecrypt
	}
	defer mac.Destroy()
	defer enc.Destroy()
	pt, err := siv.Open(mac, enc, sealed, aadV2(hb, c))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

package enroll

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/armor"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/primitive"
)

// Common pieces of the three formats. Every format is a "to be signed" body
// followed by signatures over
//
//	domain || 0x00 || body
//
// where domain is a fixed ASCII string naming the format and its version, so
// that a signature over one kind of object can never be passed off as another.
// Files are PEM-armoured; the PEM type names the format too.

const (
	formatVersion = 1
	maxPEMSize    = 64 << 10
	maxKeySize    = 2048 // bytes of an SPKI DER
)

// KeyID is the SHA-256 of a public key's PKIX (SubjectPublicKeyInfo) DER.
type KeyID [32]byte

func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 bytes in hex, for display.
func (id KeyID) Short() string { return hex.EncodeToString(id[:8]) }

// KeyIDOf returns the KeyID of a public key.
func KeyIDOf(pub crypto.PublicKey) (KeyID, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return KeyID{}, err
	}
	return sha256.Sum256(der), nil
}

var regionRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ValidRegion checks a region name: a lower-case letter, then up to 31 lower-case
// letters, digits or hyphens.
func ValidRegion(r string) error {
	if !regionRE.MatchString(r) {
		return fmt.Errorf("enroll: invalid region name %q: use a lower-case letter followed by up to 31 lower-case letters, digits or hyphens (e.g. eu1)", r)
	}
	return nil
}

// SignedMessage is what a signature covers: domain || 0x00 || body.
func SignedMessage(domain string, body []byte) []byte {
	m := make([]byte, 0, len(domain)+1+len(body))
	m = append(m, domain...)
	m = append(m, 0)
	return append(m, body...)
}

// SignAppend signs body with the ECDSA P-384 signer over
// SignedMessage(domain, body) and returns the signature and the signed
// encoding every format uses: body || u16<> signature.
func SignAppend(signer crypto.Signer, domain string, body []byte) (signed, sig []byte, err error) {
	sig, err = primitive.SignP384(rand.Reader, signer, SignedMessage(domain, body))
	if err != nil {
		return nil, nil, err
	}
	var b cryptobyte.Builder
	b.AddBytes(body)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	signed, err = b.Bytes()
	return signed, sig, err
}

// decodePEM unwraps exactly one PEM block of the given type.
func decodePEM(data []byte, typ string) ([]byte, error) {
	der, err := armor.Decode(data, typ, maxPEMSize)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	return der, nil
}

func encodePEM(typ string, der []byte) []byte { return armor.Encode(typ, der) }

// RSA and ECDSA public keys travel as PKIX DER.

func addRSAKey(b *cryptobyte.Builder, pub *rsa.PublicKey) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		b.SetError(err)
		return
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(der) })
}

// AddSigningKey appends an ECDSA P-384 public key as u16<> PKIX DER.
func AddSigningKey(b *cryptobyte.Builder, pub *ecdsa.PublicKey) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		b.SetError(err)
		return
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(der) })
}

func readRSAKey(s *cryptobyte.String) (*rsa.PublicKey, error) {
	var der cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&der) || len(der) > maxKeySize {
		return nil, errTruncated
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("enroll: bad encryption public key: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("enroll: encryption key is %T, want RSA", pub)
	}
	if rk.N.BitLen() != hsm.RSABits || rk.E != 65537 {
		return nil, fmt.Errorf("enroll: encryption key is RSA-%d e=%d, want RSA-%d e=65537", rk.N.BitLen(), rk.E, hsm.RSABits)
	}
	return rk, nil
}

// ReadSigningKey reads what AddSigningKey wrote, refusing any other key.
func ReadSigningKey(s *cryptobyte.String) (*ecdsa.PublicKey, error) {
	var der cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&der) || len(der) > maxKeySize {
		return nil, errTruncated
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("enroll: bad signing public key: %w", err)
	}
	ek, ok := pub.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P384() {
		return nil, fmt.Errorf("enroll: signing key is %T, want ECDSA P-384", pub)
	}
	return ek, nil
}

func addHashes(b *cryptobyte.Builder, hs []hsm.OAEPHash) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, h := range hs {
			b.AddUint8(uint8(h))
		}
	})
}

func readHashes(s *cryptobyte.String) ([]hsm.OAEPHash, error) {
	var raw cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&raw) {
		return nil, errTruncated
	}
	if len(raw) == 0 || len(raw) > 8 {
		return nil, errors.New("enroll: the list of OAEP hashes must have 1 to 8 entries")
	}
	seen := map[hsm.OAEPHash]bool{}
	var hs []hsm.OAEPHash
	for _, c := range raw {
		h := hsm.OAEPHash(c)
		if !h.Valid() || seen[h] {
			return nil, fmt.Errorf("enroll: unknown or repeated OAEP hash %d", c)
		}
		seen[h] = true
		hs = append(hs, h)
	}
	return hs, nil
}

func readRegion(s *cryptobyte.String) (string, error) {
	var r cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&r) {
		return "", errTruncated
	}
	return string(r), ValidRegion(string(r))
}

var errTruncated = errors.New("enroll: truncated or malformed data")

package escrow

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/armor"
)

// Common pieces of the escrow formats, in the style of package enroll: a "to
// be signed" body followed by a signature over
//
//	domain || 0x00 || body
//
// where domain is a fixed ASCII string naming the format and its version.
// The byte-level formats are in docs/escrow.md.

const (
	formatVersion = 1
	maxPEMSize    = 64 << 10
	maxKeySize    = 2048 // bytes of an SPKI DER
	// maxUnix bounds timestamps to something time.Unix handles sanely (year 9999).
	maxUnix = 253402300799
)

var errTruncated = errors.New("escrow: truncated or malformed data")

// signedMessage is what a signature covers.
func signedMessage(domain string, body []byte) []byte {
	m := make([]byte, 0, len(domain)+1+len(body))
	m = append(m, domain...)
	m = append(m, 0)
	return append(m, body...)
}

// decodePEM unwraps exactly one PEM block of the given type.
func decodePEM(data []byte, typ string) ([]byte, error) {
	der, err := armor.Decode(data, typ, maxPEMSize)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	return der, nil
}

func encodePEM(typ string, der []byte) []byte { return armor.Encode(typ, der) }

// ECDSA P-384 public keys travel as u16<> PKIX DER.

func addECKey(b *cryptobyte.Builder, pub *ecdsa.PublicKey) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		b.SetError(err)
		return
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(der) })
}

func readECKey(s *cryptobyte.String) (*ecdsa.PublicKey, error) {
	var der cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&der) || len(der) > maxKeySize {
		return nil, errTruncated
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("escrow: bad signing public key: %w", err)
	}
	ek, ok := pub.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P384() {
		return nil, fmt.Errorf("escrow: signing key is %T, want ECDSA P-384", pub)
	}
	return ek, nil
}

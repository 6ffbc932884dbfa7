package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// maxKeySize bounds the PKIX DER of a signing key ReadKey accepts (a P-384
// key's is 120 bytes).
const maxKeySize = 2048

// KeyID is the SHA-256 of a public key's PKIX (SubjectPublicKeyInfo) DER.
type KeyID [32]byte

func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 bytes in hex, for display.
func (id KeyID) Short() string { return hex.EncodeToString(id[:8]) }

// KeyIDOf returns the KeyID of a public key of any type
// [x509.MarshalPKIXPublicKey] knows.
func KeyIDOf(pub crypto.PublicKey) (KeyID, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return KeyID{}, fmt.Errorf("sign: %w", err)
	}
	return sha256.Sum256(der), nil
}

// AddKey appends an ECDSA P-384 public key as u16<> PKIX DER.
func AddKey(b *cryptobyte.Builder, pub *ecdsa.PublicKey) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		b.SetError(fmt.Errorf("sign: %w", err))
		return
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(der) })
}

var errTruncated = errors.New("sign: truncated or malformed signing public key")

// ReadKey reads what [AddKey] wrote, refusing any key but ECDSA P-384.
func ReadKey(s *cryptobyte.String) (*ecdsa.PublicKey, error) {
	var der cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&der) || len(der) > maxKeySize {
		return nil, errTruncated
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sign: bad signing public key: %w", err)
	}
	ek, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("sign: signing key is %T, want ECDSA P-384", pub)
	}
	if ek.Curve != elliptic.P384() {
		return nil, fmt.Errorf("sign: signing key is ECDSA %s, want P-384", ek.Curve.Params().Name)
	}
	return ek, nil
}

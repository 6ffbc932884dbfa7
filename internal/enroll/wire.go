package enroll

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/armor"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// Common pieces of the three formats. Every format is a "to be signed" body
// followed by signatures over [sign.Message](domain, body), where domain names
// the format and its version. Files are PEM-armoured; the PEM type names the
// format too.

const (
	formatVersion = 1
	maxPEMSize    = 64 << 10
	maxKeySize    = 2048 // bytes of an RSA key's SPKI DER
)

var regionRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ValidRegion checks a region name: a lower-case letter, then up to 31 lower-case
// letters, digits or hyphens.
func ValidRegion(r string) error {
	if !regionRE.MatchString(r) {
		return fmt.Errorf("enroll: invalid region name %q: use a lower-case letter followed by up to 31 lower-case letters, digits or hyphens (e.g. eu1)", r)
	}
	return nil
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

// RSA public keys travel as u16<> PKIX DER, like signing keys ([sign.AddKey]).

func addRSAKey(b *cryptobyte.Builder, pub *rsa.PublicKey) {
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

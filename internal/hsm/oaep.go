package hsm

import (
	"crypto"
	"crypto/rsa"
	"fmt"
)

// OAEPHash names the hash of an RSA-OAEP operation. Strongroom always uses the
// same hash for the label and for MGF1. Its numeric value is part of the
// byte-level formats (enrollment requests, certificates, bundles).
type OAEPHash uint8

const (
	OAEPSHA256 OAEPHash = 1 // the default
	OAEPSHA1   OAEPHash = 2 // only where an HSM lacks SHA-256, chosen explicitly
	OAEPSHA512 OAEPHash = 3
)

// Hash returns the crypto.Hash, or 0 for an unknown value.
func (h OAEPHash) Hash() crypto.Hash {
	switch h {
	case OAEPSHA256:
		return crypto.SHA256
	case OAEPSHA1:
		return crypto.SHA1
	case OAEPSHA512:
		return crypto.SHA512
	}
	return 0
}

// Valid reports whether h is a known value.
func (h OAEPHash) Valid() bool { return h.Hash() != 0 }

func (h OAEPHash) String() string {
	switch h {
	case OAEPSHA256:
		return "sha256"
	case OAEPSHA1:
		return "sha1"
	case OAEPSHA512:
		return "sha512"
	}
	return fmt.Sprintf("oaep-hash(%d)", uint8(h))
}

// ParseOAEPHash parses the names String returns.
func ParseOAEPHash(s string) (OAEPHash, error) {
	for _, h := range []OAEPHash{OAEPSHA256, OAEPSHA1, OAEPSHA512} {
		if s == h.String() {
			return h, nil
		}
	}
	return 0, fmt.Errorf("hsm: unknown OAEP hash %q (want sha256, sha512 or sha1)", s)
}

// Options returns the rsa.OAEPOptions for h (no label).
func (h OAEPHash) Options() *rsa.OAEPOptions {
	return &rsa.OAEPOptions{Hash: h.Hash(), MGFHash: h.Hash()}
}

// OAEPHashOf maps decryption options to an OAEPHash, refusing anything but
// OAEP with equal label and MGF1 hashes and an empty label.
func OAEPHashOf(opts crypto.DecrypterOpts) (OAEPHash, error) {
	o, ok := opts.(*rsa.OAEPOptions)
	if !ok || o == nil {
		return 0, fmt.Errorf("%w: only RSA-OAEP decryption (*rsa.OAEPOptions) is allowed", ErrUnsupported)
	}
	mgf := o.MGFHash
	if mgf == 0 {
		mgf = o.Hash
	}
	if mgf != o.Hash || len(o.Label) != 0 {
		return 0, fmt.Errorf("%w: OAEP needs equal label and MGF1 hashes and no label", ErrUnsupported)
	}
	for _, h := range []OAEPHash{OAEPSHA256, OAEPSHA1, OAEPSHA512} {
		if h.Hash() == o.Hash {
			return h, nil
		}
	}
	return 0, fmt.Errorf("%w: OAEP hash %v", ErrUnsupported, o.Hash)
}

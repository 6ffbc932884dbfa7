package primitive

import (
	"crypto/cipher"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// GCM is Seal and Open under one key whose AES key schedule is computed
// once, for a key that seals and opens many messages (a cached DEK). The
// schedule lives as long as the GCM, in memory that cannot be wiped: drop
// the GCM when the key is destroyed. It is safe for concurrent use.
type GCM struct{ aead cipher.AEAD }

// NewGCM returns the GCM of key.
func NewGCM(key secret.Key) (*GCM, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &GCM{aead: aead}, nil
}

// Seal is Seal under g's key, appending nonce || ciphertext || tag to dst.
func (g *GCM) Seal(dst, plaintext, aad []byte) ([]byte, error) {
	if uint64(len(plaintext)) > maxSealPlaintext {
		return nil, ErrParameter
	}
	return g.aead.Seal(dst, nil, plaintext, aad), nil
}

// Open is Open under g's key, appending the plaintext to dst.
func (g *GCM) Open(dst, sealed, aad []byte) ([]byte, error) {
	pt, err := g.aead.Open(dst, nil, sealed, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

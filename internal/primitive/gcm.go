package primitive

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Sizes of the parts of a sealed message: nonce || ciphertext || tag.
const (
	NonceSize = 12
	TagSize   = 16
	// Overhead is how much longer a sealed message is than its plaintext.
	Overhead = NonceSize + TagSize
)

// maxSealPlaintext is the longest plaintext GCM can encrypt under one nonce:
// 2^32 - 2 blocks of 16 bytes (NIST SP 800-38D). The standard library panics
// beyond it; Seal returns an error instead.
const maxSealPlaintext = (1<<32 - 2) * 16

// newGCM returns AES-256-GCM for key. The nonce is generated randomly by
// Seal and read from the front of the sealed message by Open.
func newGCM(key secret.Key) (cipher.AEAD, error) {
	if key.IsZero() {
		return nil, fmt.Errorf("%w: empty key", ErrParameter)
	}
	// secret.Key is always 32 bytes, so this is always AES-256.
	block, err := aes.NewCipher(key.Bytes())
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// Seal encrypts and authenticates plaintext and authenticates aad with
// AES-256-GCM under a fresh random 96-bit nonce. It returns
// nonce || ciphertext || tag, Overhead bytes longer than plaintext.
//
// The nonce is drawn by crypto/cipher.NewGCMWithRandomNonce from the same
// generator that backs crypto/rand.Reader, inside the Go Cryptographic
// Module, which keeps Seal usable in FIPS 140-only mode (cipher.NewGCM with
// a caller's nonce is not).
//
// A key must not seal more than 2^32 messages: beyond that, the chance that
// two random nonces collide exceeds the NIST SP 800-38D bound.
func Seal(key secret.Key, plaintext, aad []byte) ([]byte, error) {
	if uint64(len(plaintext)) > maxSealPlaintext {
		return nil, fmt.Errorf("%w: plaintext longer than GCM allows", ErrParameter)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, plaintext, aad), nil
}

// Open reverses Seal: it checks the tag of sealed (nonce || ciphertext ||
// tag) and aad, and returns the plaintext. Any failure, including a message
// too short to hold a nonce and tag, is ErrDecrypt.
func Open(key secret.Key, sealed, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, nil, sealed, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plaintext, nil
}

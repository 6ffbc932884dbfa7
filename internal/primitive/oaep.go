package primitive

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"

	// The hashes OAEP may use; crypto.Hash.New needs them linked in.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// MinRSABits is the smallest RSA modulus Strongroom uses.
const MinRSABits = 2048

// checkOAEP checks the public parameters of an OAEP operation.
func checkOAEP(pub *rsa.PublicKey, h crypto.Hash) error {
	switch h {
	case crypto.SHA256, crypto.SHA512, crypto.SHA1:
	default:
		return fmt.Errorf("%w: OAEP hash %v", ErrParameter, h)
	}
	if pub == nil || pub.N == nil {
		return fmt.Errorf("%w: no RSA key", ErrParameter)
	}
	if bits := pub.N.BitLen(); bits < MinRSABits {
		return fmt.Errorf("%w: %d-bit RSA modulus, want at least %d", ErrParameter, bits, MinRSABits)
	}
	return nil
}

// EncryptOAEP encrypts msg to pub with RSA-OAEP: hash h (SHA-256, SHA-512 or
// SHA-1) for both OAEP and MGF1, an empty label, and randomness from
// crypto/rand. The modulus must have at least MinRSABits bits.
func EncryptOAEP(pub *rsa.PublicKey, h crypto.Hash, msg []byte) ([]byte, error) {
	if err := checkOAEP(pub, h); err != nil {
		return nil, err
	}
	return rsa.EncryptOAEP(h.New(), rand.Reader, pub, msg, nil)
}

// DecryptOAEP reverses EncryptOAEP. Every decryption failure is ErrDecrypt;
// a key or hash outside the policy is an error wrapping ErrParameter.
func DecryptOAEP(priv *rsa.PrivateKey, h crypto.Hash, ciphertext []byte) ([]byte, error) {
	return decryptOAEP(priv, h, ciphertext, nil)
}

var one = big.NewInt(1)

// decryptOAEP is DecryptOAEP with a label. Strongroom uses only the empty
// label; this exists so that tests can run the Wycheproof vectors made with
// other labels through the same code.
func decryptOAEP(priv *rsa.PrivateKey, h crypto.Hash, ciphertext, label []byte) ([]byte, error) {
	if priv == nil {
		return nil, fmt.Errorf("%w: no RSA key", ErrParameter)
	}
	if err := checkOAEP(&priv.PublicKey, h); err != nil {
		return nil, err
	}
	// NIST SP 800-56B rev. 2, 7.1.2.1 (RSADP) requires 1 < c < n-1; the
	// standard library checks only c < n. The ciphertext is public, so
	// this check leaks nothing.
	if len(ciphertext) != priv.Size() {
		return nil, ErrDecrypt
	}
	c := new(big.Int).SetBytes(ciphertext)
	if c.Cmp(one) <= 0 || c.Cmp(new(big.Int).Sub(priv.N, one)) >= 0 {
		return nil, ErrDecrypt
	}
	msg, err := rsa.DecryptOAEP(h.New(), nil, priv, ciphertext, label)
	if err != nil {
		return nil, ErrDecrypt
	}
	return msg, nil
}

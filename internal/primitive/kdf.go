package primitive

import (
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/sha256"
	"fmt"
)

// MaxHKDFLen is the most output HKDF-SHA-256 can produce: 255 hash blocks.
const MaxHKDFLen = 255 * sha256.Size

// HKDF derives n bytes from secret with HKDF-SHA-256 (RFC 5869), salt and
// info. n must be between 1 and MaxHKDFLen.
func HKDF(secret, salt, info []byte, n int) ([]byte, error) {
	if n < 1 || n > MaxHKDFLen {
		return nil, fmt.Errorf("%w: HKDF output length %d", ErrParameter, n)
	}
	return hkdf.Key(sha256.New, secret, salt, string(info), n)
}

// PBKDF2 derives n bytes from password and salt with PBKDF2-HMAC-SHA-256
// (RFC 8018) and iter iterations. iter and n must be at least 1.
//
// This only fixes the hash: choosing an iteration count and a salt that suit
// the purpose is the caller's job.
func PBKDF2(password, salt []byte, iter, n int) ([]byte, error) {
	if iter < 1 {
		return nil, fmt.Errorf("%w: PBKDF2 iteration count %d", ErrParameter, iter)
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: PBKDF2 output length %d", ErrParameter, n)
	}
	return pbkdf2.Key(sha256.New, string(password), salt, iter, n)
}

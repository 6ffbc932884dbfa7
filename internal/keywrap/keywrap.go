// Package keywrap implements the AES key wrap algorithms the standard library
// lacks: KW (RFC 3394, NIST SP 800-38F) and KWP, key wrap with padding
// (RFC 5649, NIST SP 800-38F).
//
// Unwrapping checks the integrity value in constant time and returns the
// deliberately opaque ErrUnwrap on any failure.
package keywrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

var (
	// ErrUnwrap reports any unwrapping failure. It is deliberately opaque.
	ErrUnwrap = errors.New("keywrap: unwrap failed")
	// ErrInput reports plaintext of a length the algorithm cannot wrap.
	ErrInput = errors.New("keywrap: invalid plaintext length")
)

// defaultIV is the RFC 3394 initial value A6A6A6A6A6A6A6A6.
var defaultIV = [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

// kwpPrefix is the RFC 5649 alternative initial value's constant half.
var kwpPrefix = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// maxKWPLen is the largest plaintext KWP can wrap: 2^32 - 1 bytes.
const maxKWPLen = 1<<32 - 1

// Wrap wraps plaintext, a multiple of 8 bytes and at least 16, with RFC 3394.
func Wrap(kek cipher.Block, plaintext []byte) ([]byte, error) {
	if len(plaintext) < 16 || len(plaintext)%8 != 0 {
		return nil, ErrInput
	}
	return wrap(kek, defaultIV, plaintext), nil
}

// Unwrap reverses Wrap.
func Unwrap(kek cipher.Block, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 24 || len(ciphertext)%8 != 0 {
		return nil, ErrUnwrap
	}
	a, p := unwrap(kek, ciphertext)
	if subtle.ConstantTimeCompare(a[:], defaultIV[:]) != 1 {
		clear(p)
		return nil, ErrUnwrap
	}
	return p, nil
}

// WrapPad wraps plaintext of 1 to 2^32-1 bytes with RFC 5649 (KWP).
func WrapPad(kek cipher.Block, plaintext []byte) ([]byte, error) {
	n := len(plaintext)
	if n == 0 || uint64(n) > maxKWPLen {
		return nil, ErrInput
	}
	var aiv [8]byte
	copy(aiv[:4], kwpPrefix[:])
	binary.BigEndian.PutUint32(aiv[4:], uint32(n))
	padded := make([]byte, (n+7)/8*8)
	copy(padded, plaintext)
	defer clear(padded)
	if len(padded) == 8 {
		// A single 64-bit block: one AES encryption of AIV || P.
		var b [16]byte
		copy(b[:8], aiv[:])
		copy(b[8:], padded)
		out := make([]byte, 16)
		kek.Encrypt(out, b[:])
		clear(b[:])
		return out, nil
	}
	return wrap(kek, aiv, padded), nil
}

// UnwrapPad reverses WrapPad.
func UnwrapPad(kek cipher.Block, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 16 || len(ciphertext)%8 != 0 {
		return nil, ErrUnwrap
	}
	var a [8]byte
	var p []byte
	if len(ciphertext) == 16 {
		var b [16]byte
		kek.Decrypt(b[:], ciphertext)
		copy(a[:], b[:8])
		p = append([]byte(nil), b[8:]...)
		clear(b[:])
	} else {
		a, p = unwrap(kek, ciphertext)
	}
	// A must be A65959A6 || MLI with 8*(n-1) < MLI <= 8*n; the padding
	// bytes must be zero. All checks run before one combined decision.
	bad := subtle.ConstantTimeCompare(a[:4], kwpPrefix[:]) ^ 1
	mli := uint64(binary.BigEndian.Uint32(a[4:]))
	n := uint64(len(p))
	if mli == 0 || mli > n || mli+8 <= n {
		bad, mli = 1, n
	}
	var pad byte
	for i := mli; i < n; i++ {
		pad |= p[i]
	}
	if bad|int(pad) != 0 {
		clear(p)
		return nil, ErrUnwrap
	}
	return p[:mli], nil
}

// wrap is the RFC 3394 wrapping process W with initial value iv over the
// n >= 2 64-bit blocks of p.
func wrap(kek cipher.Block, iv [8]byte, p []byte) []byte {
	n := len(p) / 8
	out := make([]byte, 8+len(p))
	copy(out[8:], p)
	var b [16]byte
	copy(b[:8], iv[:])
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			r := out[8*i : 8*i+8]
			copy(b[8:], r)
			kek.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(r, b[8:])
		}
	}
	copy(out[:8], b[:8])
	clear(b[:])
	return out
}

// unwrap is the RFC 3394 unwrapping process W^-1. It returns the recovered
// initial value and the plaintext blocks; the caller checks the former.
func unwrap(kek cipher.Block, c []byte) (a [8]byte, p []byte) {
	n := len(c)/8 - 1
	p = make([]byte, 8*n)
	copy(p, c[8:])
	var b [16]byte
	copy(b[:8], c[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			r := p[8*(i-1) : 8*i]
			copy(b[8:], r)
			kek.Decrypt(b[:], b[:])
			copy(r, b[8:])
		}
	}
	copy(a[:], b[:8])
	clear(b[:])
	return a, p
}

// NewCipher is aes.NewCipher, for callers that hold a raw key.
func NewCipher(key []byte) (cipher.Block, error) { return aes.NewCipher(key) }

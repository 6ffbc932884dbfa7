// Package siv is deterministic authenticated encryption with AES-SIV
// (RFC 5297), as AES-SIV-CMAC-512: two AES-256 keys, one for S2V (the CMAC
// key, K1 in the RFC) and one for CTR (K2), 512 bits in all.
//
// The same key, plaintext and associated data always give the same
// ciphertext, which is the point (equality of plaintexts is visible, on
// purpose) and the only thing AES-SIV gives away: it is misuse-resistant,
// needing no nonce, and a ciphertext that was altered, or opened with other
// associated data, fails.
//
// The construction is written here on crypto/aes, crypto/cipher (CTR) and
// crypto/subtle, with CMAC (RFC 4493, NIST SP 800-38B) as S2V's PRF, rather
// than taken from a library, because:
//
//   - neither the standard library nor golang.org/x/crypto has AES-SIV or
//     CMAC;
//   - tink-go's daead/subtle.AESSIV, the best kept Go implementation, takes
//     only 64-byte keys, so RFC 5297's own test vectors (Appendix A, 256-bit
//     keys) cannot be run through it, and its module would bring tink-go's
//     module graph (protocol buffers, and the Wycheproof vector module this
//     project deliberately never requires) into go.mod for one file.
//
// The internal construction takes any AES key size so that the tests run
// RFC 5297 Appendix A.1 and every Wycheproof aes_siv_cmac group through the
// same code; the exported API takes only two secret.Key values (32 bytes
// each), so AES-SIV-CMAC-512 is the only parameter set Strongroom can use.
// There is one associated data component (S2V over AD and plaintext); callers
// frame whatever they bind into it.
//
// Every failure of Open is the one opaque ErrDecrypt. The tag is compared
// in constant time, and the plaintext is released only after it matched.
package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Overhead is how much longer a ciphertext is than its plaintext: the
// 128-bit synthetic IV in front of it.
const Overhead = aes.BlockSize

// ErrDecrypt reports any failure to open a ciphertext: too short, altered,
// another key or other associated data. It is deliberately opaque.
var ErrDecrypt = errors.New("siv: decryption failed")

// Seal encrypts plaintext and authenticates it with aad under the
// AES-SIV-CMAC-512 key mac || enc (mac is K1, the S2V key; enc is K2, the CTR
// key). It returns V || C, Overhead bytes longer than plaintext, and the
// same output for the same inputs. It panics on an empty key.
func Seal(mac, enc secret.Key, plaintext, aad []byte) []byte {
	m, e := ciphers(mac, enc)
	return seal(m, e, plaintext, aad)
}

// Open reverses Seal: it decrypts V || C, checks V against the plaintext and
// aad, and returns the plaintext, or nil and ErrDecrypt.
func Open(mac, enc secret.Key, ciphertext, aad []byte) ([]byte, error) {
	m, e := ciphers(mac, enc)
	pt, ok := open(m, e, ciphertext, aad)
	if !ok {
		return nil, ErrDecrypt
	}
	return pt, nil
}

func ciphers(mac, enc secret.Key) (cipher.Block, cipher.Block) {
	// secret.Key is always 32 bytes, so both are AES-256 and NewCipher
	// cannot fail.
	m, err := aes.NewCipher(mac.Bytes())
	if err != nil {
		panic("siv: " + err.Error())
	}
	e, err := aes.NewCipher(enc.Bytes())
	if err != nil {
		panic("siv: " + err.Error())
	}
	return m, e
}

// seal is RFC 5297 section 2.6 with one associated data component:
// V = S2V(K1, aad, plaintext), C = CTR(K2, Q, plaintext), output V || C.
func seal(mac, enc cipher.Block, plaintext, aad []byte) []byte {
	out := make([]byte, Overhead+len(plaintext))
	v := s2v(mac, aad, plaintext)
	copy(out, v[:])
	ctr(enc, v, out[Overhead:], plaintext)
	return out
}

// open is RFC 5297 section 2.7.
func open(mac, enc cipher.Block, ciphertext, aad []byte) ([]byte, bool) {
	if len(ciphertext) < Overhead {
		return nil, false
	}
	var v [aes.BlockSize]byte
	copy(v[:], ciphertext)
	pt := make([]byte, len(ciphertext)-Overhead)
	ctr(enc, v, pt, ciphertext[Overhead:])
	t := s2v(mac, aad, pt)
	if subtle.ConstantTimeCompare(t[:], v[:]) != 1 {
		clear(pt)
		return nil, false
	}
	return pt, true
}

// ctr is AES-CTR from Q = V with bits 63 and 31 (the top bits of bytes 8
// and 12) cleared, the counter a 128-bit big-endian integer, as
// crypto/cipher's CTR counts.
func ctr(enc cipher.Block, v [aes.BlockSize]byte, dst, src []byte) {
	v[8] &= 0x7f
	v[12] &= 0x7f
	cipher.NewCTR(enc, v[:]).XORKeyStream(dst, src)
}

// s2v is RFC 5297 section 2.4 for the two strings S1 = aad, S2 = plaintext:
//
//	D = CMAC(K, zero)
//	D = dbl(D) xor CMAC(K, S1)
//	T = S2 xorend D             if len(S2) >= 16
//	T = dbl(D) xor pad(S2)      otherwise
//	V = CMAC(K, T)
func s2v(mac cipher.Block, aad, plaintext []byte) [aes.BlockSize]byte {
	c := newCMAC(mac)
	var zero [aes.BlockSize]byte
	d := c.sum(zero[:])
	dbl(&d)
	s1 := c.sum(aad)
	subtle.XORBytes(d[:], d[:], s1[:])
	if len(plaintext) >= aes.BlockSize {
		t := make([]byte, len(plaintext))
		copy(t, plaintext)
		tail := t[len(t)-aes.BlockSize:]
		subtle.XORBytes(tail, tail, d[:])
		v := c.sum(t)
		clear(t)
		return v
	}
	dbl(&d)
	var t [aes.BlockSize]byte
	copy(t[:], plaintext)
	t[len(plaintext)] = 0x80
	subtle.XORBytes(t[:], t[:], d[:])
	v := c.sum(t[:])
	clear(t[:])
	return v
}

// dbl multiplies b by x in GF(2^128) with the polynomial
// x^128 + x^7 + x^2 + x + 1, in constant time.
func dbl(b *[aes.BlockSize]byte) {
	carry := b[0] >> 7
	for i := 0; i < aes.BlockSize-1; i++ {
		b[i] = b[i]<<1 | b[i+1]>>7
	}
	b[aes.BlockSize-1] = b[aes.BlockSize-1]<<1 ^ 0x87&-carry // -carry is 0x00 or 0xff
}

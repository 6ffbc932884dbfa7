package primitive

import (
	"crypto/hmac"
	"crypto/sha256"
)

// HMACSize is the size of an HMAC-SHA-256 tag.
const HMACSize = sha256.Size

// HMAC returns the HMAC-SHA-256 tag of msg under key.
func HMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// VerifyHMAC reports, in constant time, whether tag is the full
// HMAC-SHA-256 tag of msg under key. Truncated tags are refused: a tag
// shorter than HMACSize never verifies.
func VerifyHMAC(key, msg, tag []byte) bool {
	return len(tag) == HMACSize && hmac.Equal(HMAC(key, msg), tag)
}

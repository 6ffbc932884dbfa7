package hsm

import "encoding/hex"

// Known-answer test values. Every backend runs them when it opens (see
// SelfTest in each backend): AES-256-GCM under a known key with a fixed nonce,
// and a context-bound KWP wrap (ContextKEK, then RFC 5649). The expected values
// come from the standard library's AES-GCM and internal/keywrap, both checked
// against the Wycheproof and NIST vectors. KATSealed is in SecretKey.Seal's
// output format: nonce || ciphertext || tag.
var (
	KATKey         = mustHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	KATNonce       = []byte("strongroom12")
	KATPlaintext   = []byte("strongroom known-answer test")
	KATAAD         = []byte("kat aad")
	KATSealed      = mustHex("7374726f6e67726f6f6d31321b41c713ee0b241b0d7dd4fa8c6a35268a6c0bc0270a3a6a171e095d696c2fa78e769f34f0703d1a64bdb60a")
	KATWrapContext = []byte("kat context")
	KATWrapTarget  = mustHex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0")
	KATContextKEK  = mustHex("30d21c6c3e1ad7e48d904016ca792f5abdded541f7ede316a2879d6fb6e5142a")
	KATWrapped     = mustHex("1fd443339e437d67efd198c6bf03c7cf2770527e0b4447062b160c7afaa001cf8ead588a04b79dea")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

package hsm

import (
	"crypto/aes"
	"crypto/sha256"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// kekLabel domain-separates context-bound wrapping keys (see ContextKEK).
const kekLabel = "strongroom wrap-kek v1"

// KEKInput is the 32-byte derivation input for context:
// SHA-256("strongroom wrap-kek v1" || 0x00 || context).
func KEKInput(context []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(kekLabel))
	h.Write([]byte{0})
	h.Write(context)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// ContextKEK is the software reference of the key that SecretKey.Wrap and
// Unwrap use: the two AES-256 blocks of KEKInput(context) encrypted under key,
// concatenated. It is what PKCS#11's CKM_AES_ECB_ENCRYPT_DATA derivation gives
// inside an HSM. A wrapped key thus opens only under the same wrapping key and
// the same context: the context acts as associated data of the key wrap.
func ContextKEK(key secret.Key, context []byte) secret.Key {
	block, err := aes.NewCipher(key.Bytes())
	if err != nil {
		panic(err) // unreachable: secret.Key is always 32 bytes
	}
	d := KEKInput(context)
	var out [32]byte
	block.Encrypt(out[:16], d[:16])
	block.Encrypt(out[16:], d[16:])
	k, _ := secret.New(out[:])
	clear(out[:])
	return k
}

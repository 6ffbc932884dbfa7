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
func KEKInput(context []byte) [32]byte { return labelled(kekLabel, context) }

// labelled is SHA-256(label || 0x00 || context).
func labelled(label string, context []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(label))
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
	return encryptBlocks(key, KEKInput(context))
}

// encryptBlocks encrypts the two AES blocks of d under key.
func encryptBlocks(key secret.Key, d [32]byte) secret.Key {
	block, err := aes.NewCipher(key.Bytes())
	if err != nil {
		panic(err) // unreachable: secret.Key is always 32 bytes
	}
	var out [32]byte
	block.Encrypt(out[:16], d[:16])
	block.Encrypt(out[16:], d[16:])
	k, _ := secret.New(out[:])
	clear(out[:])
	return k
}

// deriveLabel domain-separates derived keys (see DeriveKey) from context
// KEKs.
const deriveLabel = "strongroom derive v1"

// DeriveInput is the 32-byte derivation input of SecretKey.Derive for
// context: SHA-256("strongroom derive v1" || 0x00 || context).
func DeriveInput(context []byte) [32]byte { return labelled(deriveLabel, context) }

// DeriveKey is the software reference of SecretKey.Derive: the two AES-256
// blocks of DeriveInput(context) encrypted under key, concatenated. AES is
// a pseudorandom permutation keyed by key, evaluated on two distinct
// blocks: the result is a 256-bit pseudorandom key for each context.
func DeriveKey(key secret.Key, context []byte) secret.Key {
	return encryptBlocks(key, DeriveInput(context))
}

// Package hsm defines what Strongroom needs from a hardware security module.
//
// Two backends implement it: internal/hsm/soft (pure Go, keys in a
// passphrase-sealed file, for development and tests) and internal/hsm/pkcs11
// (any PKCS#11 module). Both pass the conformance suite in internal/hsm/hsmtest.
//
// Keys are found by label. Asymmetric private keys surface as the standard
// library's crypto.Signer and crypto.Decrypter; AES-256 secret keys as
// SecretKey, whose operations all run inside the HSM.
package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
)

// Sentinel errors. Backends wrap them with detail; test with errors.Is.
var (
	// ErrNotFound: no key with that label.
	ErrNotFound = errors.New("hsm: key not found")
	// ErrExists: a key with that label already exists; nothing was changed.
	ErrExists = errors.New("hsm: a key with that label already exists")
	// ErrUnsupported: the backend or token cannot do what was asked.
	ErrUnsupported = errors.New("hsm: operation not supported by this HSM")
	// ErrDecrypt: decryption or unwrapping failed. Deliberately opaque.
	ErrDecrypt = errors.New("hsm: decryption failed")
	// ErrNotExportable: the key may not leave the HSM, not even wrapped.
	ErrNotExportable = errors.New("hsm: key is not exportable")
	// ErrSelfTest: the known-answer self-test failed when the HSM was opened.
	ErrSelfTest = errors.New("hsm: known-answer self-test failed")
	// ErrNotPermitted: the key may not do that (an unwrap-only key asked to
	// decrypt, or to unwrap into an exportable key).
	ErrNotPermitted = errors.New("hsm: the key is not permitted to do that")
)

// Fixed algorithm parameters of the key hierarchy.
const (
	RSABits       = 4096 // encryption key pairs
	SecretKeySize = 32   // AES-256
	GCMNonceSize  = 12
	GCMTagSize    = 16
)

// HSM is an opened HSM (a soft HSM file or a PKCS#11 token, logged in).
// Implementations are safe for concurrent use.
type HSM interface {
	// Info describes the backend and the token.
	Info() Info
	// Random returns n bytes from the HSM's random number generator.
	Random(ctx context.Context, n int) ([]byte, error)

	// GenerateEncryptionKey creates an RSA-4096 key pair for RSA-OAEP
	// whose private half may do use. Its private half never leaves the HSM.
	GenerateEncryptionKey(ctx context.Context, label string, use RSAUse) (EncryptionKey, error)
	// GenerateSigningKey creates an ECDSA P-384 key pair. Its private half
	// never leaves the HSM.
	GenerateSigningKey(ctx context.Context, label string) (SigningKey, error)
	// GenerateSecretKey creates an AES-256 key.
	GenerateSecretKey(ctx context.Context, spec KeySpec) (SecretKey, error)

	// EncryptionKey, SigningKey and SecretKey find persistent keys by label.
	// They return an error wrapping ErrNotFound when there is none.
	EncryptionKey(ctx context.Context, label string) (EncryptionKey, error)
	SigningKey(ctx context.Context, label string) (SigningKey, error)
	SecretKey(ctx context.Context, label string) (SecretKey, error)

	// Close logs out and releases the HSM. Ephemeral keys are gone after it.
	Close() error
}

// Info describes an opened HSM.
type Info struct {
	Backend string // "soft" or "pkcs11"
	Token   string // token label, or the soft HSM file
	// Description is free text: manufacturer, model, library version.
	Description string
	// OAEPHashes lists the RSA-OAEP hashes the HSM can decrypt, unwrap and
	// wrap with, best first.
	OAEPHashes []OAEPHash
}

// SupportsOAEP reports whether h is among the HSM's OAEP hashes.
func (i Info) SupportsOAEP(h OAEPHash) bool {
	for _, x := range i.OAEPHashes {
		if x == h {
			return true
		}
	}
	return false
}

// KeySpec describes an AES-256 secret key to create or unwrap.
type KeySpec struct {
	// Label names a persistent key. It must be empty for ephemeral keys and
	// unique among persistent secret keys otherwise.
	Label string
	// Ephemeral keys live only until Close (or Destroy): PKCS#11 session
	// objects, or memory in the soft backend.
	Ephemeral bool
	// Exportable keys may leave the HSM wrapped (SecretKey.Wrap,
	// SecretKey.WrapRSA), never in plaintext, and only they may wrap other
	// keys under a context (see SecretKey.Wrap). Other keys never leave it.
	Exportable bool
	// Derivable lets a key that is not Exportable derive keys
	// (SecretKey.Derive) and unwrap under a context (SecretKey.Unwrap):
	// PKCS#11's CKA_DERIVE on a key that is not extractable. A PIN holder
	// can then derive extractable keys from it, so only the keys that must
	// (a release's keys unwrapped at the primary from its own copy, to be
	// given to a late region) are made Derivable; see docs/threat-model.md.
	// Exportable keys may always derive.
	Derivable bool
}

// RSAUse is what the private half of an RSA key pair may do, besides the
// RSA-PSS signature that proves its possession (EncryptionKey.SignPSS).
type RSAUse uint8

// The uses of RSA key pairs.
const (
	// UseDecrypt: Decrypt and Unwrap (a regional HSM's key, upload
	// certificates' keys).
	UseDecrypt RSAUse = iota
	// UseUnwrapOnly: Unwrap only, and only into keys that are sensitive and
	// not Exportable. Decrypt, and an Unwrap whose spec is Exportable, are
	// ErrNotPermitted. On PKCS#11: CKA_DECRYPT false, and a
	// CKA_UNWRAP_TEMPLATE that forces CKA_SENSITIVE and no
	// CKA_EXTRACTABLE on every key it unwraps. The primary's encryption key
	// is of this kind: what is encrypted to it (its copy of each release)
	// is never readable outside the HSM, not even by the holder of its PIN
	// through Strongroom.
	UseUnwrapOnly
)

func (u RSAUse) String() string {
	switch u {
	case UseDecrypt:
		return "decrypt"
	case UseUnwrapOnly:
		return "unwrap-only"
	}
	return fmt.Sprintf("RSAUse(%d)", uint8(u))
}

// EncryptionKey is an RSA-4096 key pair whose private half lives in the HSM.
//
// Decrypt (crypto.Decrypter) accepts only *rsa.OAEPOptions whose Hash and
// MGFHash are equal and among Info().OAEPHashes.
type EncryptionKey interface {
	crypto.Decrypter
	// Label is the key's label in the HSM.
	Label() string
	// Use is what the private half may do.
	Use() RSAUse
	// RSAPublicKey returns the public half.
	RSAPublicKey() *rsa.PublicKey
	// Unwrap decrypts an RSA-OAEP ciphertext holding an AES-256 key straight
	// into the HSM, without the key appearing in host memory. An unwrap-only
	// key (UseUnwrapOnly) refuses an Exportable spec (ErrNotPermitted), and
	// on tokens that do not report the length of unwrapped keys it cannot
	// check that the key is 32 bytes long: its callers unwrap only what
	// they authenticated (the primary's own signed copy of a release).
	Unwrap(ctx context.Context, ciphertext []byte, hash OAEPHash, spec KeySpec) (SecretKey, error)
	// SignPSS proves possession of the key: an RSA-PSS signature (SHA-256,
	// salt length 32) over message. Used only for enrollment requests.
	SignPSS(ctx context.Context, message []byte) ([]byte, error)
	// SignPSSDigest is SignPSS over a SHA-256 digest computed by the caller
	// (32 bytes, else an error): RSA-PSS, MGF1-SHA-256, salt length 32.
	// Used for the proof of possession above and to sign upload
	// certificates and certificate requests (internal/uploadcert).
	SignPSSDigest(ctx context.Context, digest []byte) ([]byte, error)
	// Destroy deletes the key pair from the HSM, its private and its
	// public half, and frees the label; the key then decrypts and signs
	// nothing. A key pair that is gone already is an error wrapping
	// ErrNotFound.
	Destroy(ctx context.Context) error
}

// SigningKey is an ECDSA P-384 key pair whose private half lives in the HSM.
//
// Sign (crypto.Signer) takes a SHA-384 digest and returns an ASN.1 DER
// signature, exactly like *ecdsa.PrivateKey.
type SigningKey interface {
	crypto.Signer
	// Label is the key's label in the HSM.
	Label() string
	// ECDSAPublicKey returns the public half.
	ECDSAPublicKey() *ecdsa.PublicKey
}

// SecretKey is an AES-256 key inside the HSM.
type SecretKey interface {
	// Label is the key's label; empty for ephemeral keys.
	Label() string
	// Seal encrypts with AES-256-GCM under the key, with a fresh 96-bit nonce
	// from the HSM. It returns nonce || ciphertext || tag.
	Seal(ctx context.Context, plaintext, additionalData []byte) ([]byte, error)
	// Open reverses Seal. Any mismatch returns ErrDecrypt.
	Open(ctx context.Context, sealed, additionalData []byte) ([]byte, error)
	// Wrap exports key, which must be Exportable, wrapped under this key and
	// bound to context (see ContextKEK). The result is an RFC 5649 (KWP)
	// ciphertext of 40 bytes.
	//
	// This key must be Exportable too (else ErrNotExportable): making the
	// context KEK inside a PKCS#11 token needs CKA_DERIVE on this key, and a
	// PIN holder could use it to derive an extractable KEK. So only keys that
	// may leave the HSM anyway carry CKA_DERIVE and may wrap.
	Wrap(ctx context.Context, key SecretKey, context []byte) ([]byte, error)
	// Unwrap imports a key wrapped by Wrap (or by the software equivalent,
	// keywrap.WrapPad under ContextKEK) under the same context. It needs
	// this key to be Exportable or Derivable.
	Unwrap(ctx context.Context, wrapped, context []byte, spec KeySpec) (SecretKey, error)
	// Derive returns a new AES-256 key derived from this key for context:
	// the two AES-256 blocks of DeriveInput(context) encrypted under this
	// key (DeriveKey in software; CKM_AES_ECB_ENCRYPT_DATA inside a
	// PKCS#11 token), made per spec. This key must be Exportable or
	// Derivable, else ErrNotExportable.
	Derive(ctx context.Context, context []byte, spec KeySpec) (SecretKey, error)
	// Digest returns SHA-256(prefix || key), computed inside the HSM, as a
	// commitment to the key's value (PKCS#11 C_DigestKey). Only for
	// Exportable keys, else ErrNotExportable.
	Digest(ctx context.Context, prefix []byte) ([32]byte, error)
	// WrapRSA exports this key, which must be Exportable, encrypted with
	// RSA-OAEP to pub (both OAEP and MGF1 hashes are hash, which must be
	// among Info().OAEPHashes, else ErrUnsupported).
	WrapRSA(ctx context.Context, pub *rsa.PublicKey, hash OAEPHash) ([]byte, error)
	// Destroy deletes the key from the HSM.
	Destroy(ctx context.Context) error
}

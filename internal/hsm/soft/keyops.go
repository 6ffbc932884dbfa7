package soft

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keywrap"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// encryptionKey is an RSA-4096 key pair.
type encryptionKey struct {
	h         *HSM
	label     string
	priv      *rsa.PrivateKey
	use       hsm.RSAUse
	destroyed atomic.Bool
}

// errDestroyed is the error of a destroyed key pair's operations.
var errDestroyed = errors.New("soft: the key pair was destroyed")

func (k *encryptionKey) Label() string                { return k.label }
func (k *encryptionKey) Use() hsm.RSAUse              { return k.use }
func (k *encryptionKey) Public() crypto.PublicKey     { return &k.priv.PublicKey }
func (k *encryptionKey) RSAPublicKey() *rsa.PublicKey { return &k.priv.PublicKey }

// Decrypt implements crypto.Decrypter for RSA-OAEP only. An unwrap-only key
// refuses (as CKA_DECRYPT false would).
func (k *encryptionKey) Decrypt(_ io.Reader, ciphertext []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	if k.use == hsm.UseUnwrapOnly {
		return nil, fmt.Errorf("soft: decrypt with RSA key %q: %w: it may only unwrap", k.label, hsm.ErrNotPermitted)
	}
	oh, err := hsm.OAEPHashOf(opts)
	if err != nil {
		return nil, err
	}
	return k.decrypt(ciphertext, oh)
}

func (k *encryptionKey) decrypt(ciphertext []byte, oh hsm.OAEPHash) ([]byte, error) {
	if !k.h.Info().SupportsOAEP(oh) {
		return nil, fmt.Errorf("%w: OAEP-%v", hsm.ErrUnsupported, oh)
	}
	if k.destroyed.Load() {
		return nil, errDestroyed
	}
	pt, err := k.priv.Decrypt(nil, ciphertext, oh.Options())
	if err != nil {
		return nil, hsm.ErrDecrypt
	}
	return pt, nil
}

// Unwrap implements hsm.EncryptionKey. An unwrap-only key unwraps only into
// keys that are not exportable (as its CKA_UNWRAP_TEMPLATE would force).
func (k *encryptionKey) Unwrap(ctx context.Context, ciphertext []byte, oh hsm.OAEPHash, spec hsm.KeySpec) (hsm.SecretKey, error) {
	if k.use == hsm.UseUnwrapOnly && spec.Exportable {
		return nil, fmt.Errorf("soft: unwrap with RSA key %q: %w: it unwraps only into keys that are not exportable", k.label, hsm.ErrNotPermitted)
	}
	raw, err := k.decrypt(ciphertext, oh)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return k.h.addSecret(raw, spec)
}

// SignPSS implements hsm.EncryptionKey.
func (k *encryptionKey) SignPSS(ctx context.Context, message []byte) ([]byte, error) {
	d := sha256.Sum256(message)
	return k.SignPSSDigest(ctx, d[:])
}

// SignPSSDigest implements hsm.EncryptionKey.
func (k *encryptionKey) SignPSSDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("soft: RSA-PSS signature: digest is %d bytes, want a %d-byte SHA-256 digest", len(digest), sha256.Size)
	}
	if k.destroyed.Load() {
		return nil, errDestroyed
	}
	return rsa.SignPSS(rand.Reader, k.priv, crypto.SHA256, digest, &rsa.PSSOptions{SaltLength: sha256.Size, Hash: crypto.SHA256})
}

// Destroy implements hsm.EncryptionKey: the key pair's entry leaves the
// file.
func (k *encryptionKey) Destroy(ctx context.Context) error { return k.h.destroyEncryption(k) }

// signingKey is an ECDSA P-384 key pair.
type signingKey struct {
	label string
	priv  *ecdsa.PrivateKey
}

func (k *signingKey) Label() string                    { return k.label }
func (k *signingKey) Public() crypto.PublicKey         { return &k.priv.PublicKey }
func (k *signingKey) ECDSAPublicKey() *ecdsa.PublicKey { return &k.priv.PublicKey }

// Sign implements crypto.Signer: digest is a SHA-384 hash.
func (k *signingKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA384 || len(digest) != crypto.SHA384.Size() {
		return nil, fmt.Errorf("%w: signing keys sign SHA-384 digests only", hsm.ErrUnsupported)
	}
	if r == nil {
		r = rand.Reader
	}
	return ecdsa.SignASN1(r, k.priv, digest)
}

// secretKey is an AES-256 key.
type secretKey struct {
	h          *HSM
	label      string
	exportable bool
	derivable  bool // Derive and Unwrap: exportable or hsm.KeySpec.Derivable
	ephemeral  bool

	mu        sync.RWMutex
	key       secret.Key
	aead      cipher.AEAD // AES-256-GCM under key, expanded once
	destroyed bool
}

func newSecretKey(h *HSM, label string, k secret.Key, spec hsm.KeySpec) *secretKey {
	return &secretKey{h: h, label: label, key: k, aead: newGCM(k), exportable: spec.Exportable,
		derivable: spec.Exportable || spec.Derivable, ephemeral: spec.Ephemeral}
}

func (k *secretKey) Label() string { return k.label }

// material returns the key bytes under a read lock held until done is called.
func (k *secretKey) material() (secret.Key, func(), error) {
	k.mu.RLock()
	if k.destroyed {
		k.mu.RUnlock()
		return secret.Key{}, nil, errors.New("soft: key was destroyed")
	}
	return k.key, k.mu.RUnlock, nil
}

func (k *secretKey) wipe() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.destroyed = true
	k.key.Destroy()
	k.aead = nil
}

// Seal implements hsm.SecretKey.
func (k *secretKey) Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	_, done, err := k.material()
	if err != nil {
		return nil, err
	}
	defer done()
	out := make([]byte, hsm.GCMNonceSize, hsm.GCMNonceSize+len(plaintext)+hsm.GCMTagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return k.aead.Seal(out, out, plaintext, aad), nil
}

// Open implements hsm.SecretKey.
func (k *secretKey) Open(ctx context.Context, sealed, aad []byte) ([]byte, error) {
	_, done, err := k.material()
	if err != nil {
		return nil, err
	}
	defer done()
	return openAEAD(k.aead, sealed, aad)
}

func sealGCM(key secret.Key, nonce, plaintext, aad []byte) []byte {
	return newGCM(key).Seal(append([]byte(nil), nonce...), nonce, plaintext, aad)
}

func openGCM(key secret.Key, sealed, aad []byte) ([]byte, error) {
	return openAEAD(newGCM(key), sealed, aad)
}

func openAEAD(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < hsm.GCMNonceSize+hsm.GCMTagSize {
		return nil, hsm.ErrDecrypt
	}
	pt, err := aead.Open(nil, sealed[:hsm.GCMNonceSize], sealed[hsm.GCMNonceSize:], aad)
	if err != nil {
		return nil, hsm.ErrDecrypt
	}
	return pt, nil
}

// Wrap implements hsm.SecretKey: KWP under ContextKEK(k, context).
func (k *secretKey) Wrap(ctx context.Context, target hsm.SecretKey, context []byte) ([]byte, error) {
	t, ok := target.(*secretKey)
	if !ok || t.h != k.h {
		return nil, fmt.Errorf("%w: the key to wrap belongs to another HSM", hsm.ErrUnsupported)
	}
	if !t.exportable {
		return nil, hsm.ErrNotExportable
	}
	if !k.exportable {
		return nil, fmt.Errorf("%w: only exportable keys may wrap under a context", hsm.ErrNotExportable)
	}
	key, done, err := k.material()
	if err != nil {
		return nil, err
	}
	defer done()
	tk, tdone, err := t.material()
	if err != nil {
		return nil, err
	}
	defer tdone()
	return wrapContext(key, tk, context)
}

func wrapContext(key, target secret.Key, context []byte) ([]byte, error) {
	kek := hsm.ContextKEK(key, context)
	defer kek.Destroy()
	b, _ := aes.NewCipher(kek.Bytes())
	return keywrap.WrapPad(b, target.Bytes())
}

func unwrapContext(key secret.Key, wrapped, context []byte) ([]byte, error) {
	kek := hsm.ContextKEK(key, context)
	defer kek.Destroy()
	b, _ := aes.NewCipher(kek.Bytes())
	raw, err := keywrap.UnwrapPad(b, wrapped)
	if err != nil || len(raw) != secret.Size {
		clear(raw)
		return nil, hsm.ErrDecrypt
	}
	return raw, nil
}

// Unwrap implements hsm.SecretKey.
func (k *secretKey) Unwrap(ctx context.Context, wrapped, context []byte, spec hsm.KeySpec) (hsm.SecretKey, error) {
	if !k.derivable {
		return nil, fmt.Errorf("%w: only exportable or derivable keys may unwrap under a context", hsm.ErrNotExportable)
	}
	key, done, err := k.material()
	if err != nil {
		return nil, err
	}
	raw, err := unwrapContext(key, wrapped, context)
	done()
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return k.h.addSecret(raw, spec)
}

// Derive implements hsm.SecretKey: hsm.DeriveKey(k, context), stored per
// spec.
func (k *secretKey) Derive(ctx context.Context, context []byte, spec hsm.KeySpec) (hsm.SecretKey, error) {
	if !k.derivable {
		return nil, fmt.Errorf("%w: only exportable or derivable keys may derive", hsm.ErrNotExportable)
	}
	key, done, err := k.material()
	if err != nil {
		return nil, err
	}
	d := hsm.DeriveKey(key, context)
	done()
	defer d.Destroy()
	return k.h.addSecret(d.Bytes(), spec)
}

// WrapRSA implements hsm.SecretKey.
func (k *secretKey) WrapRSA(ctx context.Context, pub *rsa.PublicKey, oh hsm.OAEPHash) ([]byte, error) {
	if !k.exportable {
		return nil, hsm.ErrNotExportable
	}
	if !k.h.Info().SupportsOAEP(oh) {
		return nil, fmt.Errorf("%w: OAEP-%v", hsm.ErrUnsupported, oh)
	}
	if pub == nil || pub.N.BitLen() < 2048 {
		return nil, errors.New("soft: WrapRSA needs an RSA public key of at least 2048 bits")
	}
	key, done, err := k.material()
	if err != nil {
		return nil, err
	}
	defer done()
	return rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, pub, key.Bytes(), nil)
}

// Digest implements hsm.SecretKey.
func (k *secretKey) Digest(ctx context.Context, prefix []byte) ([32]byte, error) {
	if !k.exportable {
		return [32]byte{}, hsm.ErrNotExportable
	}
	key, done, err := k.material()
	if err != nil {
		return [32]byte{}, err
	}
	defer done()
	h := sha256.New()
	h.Write(prefix)
	h.Write(key.Bytes())
	var d [32]byte
	h.Sum(d[:0])
	return d, nil
}

// Destroy implements hsm.SecretKey.
func (k *secretKey) Destroy(ctx context.Context) error { return k.h.destroySecret(k) }

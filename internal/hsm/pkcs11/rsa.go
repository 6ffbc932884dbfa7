//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// encryptionKey is an RSA-4096 key pair; its private half is a token object.
type encryptionKey struct {
	h     *HSM
	label string
	priv  pkcs11.ObjectHandle
	pub   *rsa.PublicKey
	use   hsm.RSAUse
}

var _ hsm.EncryptionKey = (*encryptionKey)(nil)

// rsaExponent is the public exponent of generated keys, 65537.
var rsaExponent = []byte{1, 0, 1}

// unwrapOnlyTemplate is the CKA_UNWRAP_TEMPLATE of an unwrap-only key: every
// key it unwraps is sensitive and never extractable, whatever the caller's
// template says (a conflicting one is refused, CKR_TEMPLATE_INCONSISTENT).
// CKA_WRAP_WITH_TRUSTED would add nothing to a key that cannot be wrapped
// at all.
func unwrapOnlyTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false)}
}

// rsaPublicTemplate is the template of an encryption key pair's public half.
func rsaPublicTemplate(label string) []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_PRIVATE, false),
		attr(pkcs11.CKA_MODULUS_BITS, hsm.RSABits),
		attr(pkcs11.CKA_PUBLIC_EXPONENT, rsaExponent),
		attr(pkcs11.CKA_ENCRYPT, true),
		attr(pkcs11.CKA_VERIFY, true),
		attr(pkcs11.CKA_WRAP, false),
		attr(pkcs11.CKA_DERIVE, false),
	}, labelAttrs(label)...)
}

// GenerateEncryptionKey implements hsm.HSM with CKM_RSA_PKCS_KEY_PAIR_GEN.
// The private key may sign (only for the RSA-PSS proof of possession) and
// unwrap, and, unless it is unwrap-only, decrypt. An unwrap-only key has no
// CKA_DECRYPT and carries unwrapOnlyTemplate as its CKA_UNWRAP_TEMPLATE.
func (h *HSM) GenerateEncryptionKey(ctx context.Context, label string, use hsm.RSAUse) (hsm.EncryptionKey, error) {
	pubTmpl := rsaPublicTemplate(label)
	var privTmpl []*pkcs11.Attribute
	switch use {
	case hsm.UseDecrypt:
		privTmpl = privateKeyTemplate(pkcs11.CKK_RSA, label, pkcs11.CKA_DECRYPT, pkcs11.CKA_UNWRAP, pkcs11.CKA_SIGN)
	case hsm.UseUnwrapOnly:
		t, free := templateAttr(pkcs11.CKA_UNWRAP_TEMPLATE, unwrapOnlyTemplate())
		defer free()
		// Not modifiable: a PIN holder cannot give it CKA_DECRYPT, or
		// change its unwrap template, later.
		privTmpl = append(privateKeyTemplate(pkcs11.CKK_RSA, label, pkcs11.CKA_UNWRAP, pkcs11.CKA_SIGN), t,
			attr(pkcs11.CKA_MODIFIABLE, false))
	default:
		return nil, fmt.Errorf("pkcs11: generate RSA key pair %q: RSA key use %v: %w", label, use, hsm.ErrUnsupported)
	}
	mech := pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)
	var k *encryptionKey
	err := h.generatePair(ctx, label, mech, pubTmpl, privTmpl, func(s pkcs11.SessionHandle, pub, priv pkcs11.ObjectHandle) error {
		p, got, err := h.rsaPrivate(s, priv)
		switch {
		case err != nil:
		case p.N.BitLen() != hsm.RSABits || p.E != 65537:
			err = fmt.Errorf("the token generated an RSA-%d key with e=%d, not RSA-%d with e=65537",
				p.N.BitLen(), p.E, hsm.RSABits)
		case got != use:
			err = fmt.Errorf("the token made a %v key, asked for %v", got, use)
		}
		k = &encryptionKey{h: h, label: label, priv: priv, pub: p, use: use}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generate RSA-%d key pair %q: %w", hsm.RSABits, label, err)
	}
	return k, nil
}

// EncryptionKey implements hsm.HSM.
func (h *HSM) EncryptionKey(ctx context.Context, label string) (hsm.EncryptionKey, error) {
	var k *encryptionKey
	err := h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		priv, err := h.findByLabel(s, pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_RSA, label, "RSA encryption key")
		if err != nil {
			return err
		}
		p, use, err := h.rsaPrivate(s, priv)
		if err != nil {
			return fmt.Errorf("RSA key labelled %q: %w", label, err)
		}
		if p.N.BitLen() != hsm.RSABits {
			return fmt.Errorf("RSA key labelled %q is RSA-%d; strongroom uses RSA-%d", label, p.N.BitLen(), hsm.RSABits)
		}
		k = &encryptionKey{h: h, label: label, priv: priv, pub: p, use: use}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	return k, nil
}

// rsaPrivate reads, in one call, what an RSA private key object says of
// itself: its public key (private key objects carry the modulus and public
// exponent) and what it may do, decrypt or only unwrap. A key that cannot
// decrypt is taken as unwrap-only only if it is also not modifiable, the way
// GenerateEncryptionKey makes one: a modifiable key could be given
// CKA_DECRYPT by whoever holds the PIN, or lose its unwrap template. (The
// template itself, an attribute array, is not read back:
// github.com/miekg/pkcs11 cannot; TestUnwrapOnlyTokenPolicy shows it
// enforced.)
func (h *HSM) rsaPrivate(s pkcs11.SessionHandle, priv pkcs11.ObjectHandle) (*rsa.PublicKey, hsm.RSAUse, error) {
	a, err := h.getAttrs(s, priv, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT, pkcs11.CKA_DECRYPT, pkcs11.CKA_MODIFIABLE)
	if err != nil {
		return nil, 0, err
	}
	n := new(big.Int).SetBytes(a[pkcs11.CKA_MODULUS])
	e := new(big.Int).SetBytes(a[pkcs11.CKA_PUBLIC_EXPONENT])
	if n.Sign() == 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, 0, errors.New("the token returned an invalid RSA public key")
	}
	pub := &rsa.PublicKey{N: n, E: int(e.Int64())}
	switch {
	case boolAttr(a[pkcs11.CKA_DECRYPT]):
		return pub, hsm.UseDecrypt, nil
	case boolAttr(a[pkcs11.CKA_MODIFIABLE]):
		return nil, 0, errors.New("the private key may not decrypt but is modifiable (CKA_MODIFIABLE): it is not a sealed unwrap-only key; initialize the HSM again")
	}
	return pub, hsm.UseUnwrapOnly, nil
}

func (k *encryptionKey) Label() string            { return k.label }
func (k *encryptionKey) Use() hsm.RSAUse          { return k.use }
func (k *encryptionKey) Public() crypto.PublicKey { return k.RSAPublicKey() }
func (k *encryptionKey) RSAPublicKey() *rsa.PublicKey {
	return &rsa.PublicKey{N: new(big.Int).Set(k.pub.N), E: k.pub.E}
}

// oaepMech is CKM_RSA_PKCS_OAEP with hash for the label and MGF1, and no
// label.
func oaepMech(hash hsm.OAEPHash) []*pkcs11.Mechanism {
	var h, mgf uint
	switch hash {
	case hsm.OAEPSHA1:
		h, mgf = pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1
	case hsm.OAEPSHA256:
		h, mgf = pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256
	case hsm.OAEPSHA512:
		h, mgf = pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512
	}
	p := pkcs11.NewOAEPParams(h, mgf, pkcs11.CKZ_DATA_SPECIFIED, nil)
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, p)}
}

// checkOAEP refuses hashes that the probe at Open did not confirm.
func (h *HSM) checkOAEP(hash hsm.OAEPHash) error {
	if !hash.Valid() {
		return fmt.Errorf("pkcs11: unknown OAEP hash %v: %w", hash, hsm.ErrUnsupported)
	}
	if !h.info.SupportsOAEP(hash) {
		return fmt.Errorf("pkcs11: token %q cannot do RSA-OAEP with %v (it can with %v): %w",
			h.info.Token, hash, h.info.OAEPHashes, hsm.ErrUnsupported)
	}
	return nil
}

// Decrypt implements crypto.Decrypter with CKM_RSA_PKCS_OAEP. Only
// *rsa.OAEPOptions with a hash in Info().OAEPHashes are accepted. An
// unwrap-only key is refused here (the token would refuse it too: it has no
// CKA_DECRYPT).
func (k *encryptionKey) Decrypt(_ io.Reader, ciphertext []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	if k.use == hsm.UseUnwrapOnly {
		return nil, fmt.Errorf("pkcs11: decrypt with RSA key %q: %w: it may only unwrap", k.label, hsm.ErrNotPermitted)
	}
	hash, err := hsm.OAEPHashOf(opts)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: decrypt with RSA key %q: %w", k.label, err)
	}
	if err := k.h.checkOAEP(hash); err != nil {
		return nil, err
	}
	if len(ciphertext) != k.pub.Size() {
		return nil, fmt.Errorf("pkcs11: decrypt with RSA key %q: ciphertext is %d bytes, want %d: %w",
			k.label, len(ciphertext), k.pub.Size(), hsm.ErrDecrypt)
	}
	var out []byte
	err = k.h.pool.do(context.Background(), func(s pkcs11.SessionHandle) error {
		if err := k.h.mod.ctx.DecryptInit(s, oaepMech(hash), k.priv); err != nil {
			return fmt.Errorf("C_DecryptInit(CKM_RSA_PKCS_OAEP, %v): %w", hash, err)
		}
		pt, err := k.h.mod.ctx.Decrypt(s, ciphertext)
		if err != nil {
			return decryptErr("C_Decrypt(CKM_RSA_PKCS_OAEP)", err)
		}
		out = pt
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: decrypt with RSA key %q: %w", k.label, err)
	}
	return out, nil
}

// Unwrap implements hsm.EncryptionKey with C_UnwrapKey and CKM_RSA_PKCS_OAEP.
// An unwrap-only key unwraps only into keys that are not exportable, and
// directly: the length measurement of unwrapAES needs an extractable
// temporary copy, which its unwrap template forbids (see hsm.EncryptionKey).
func (k *encryptionKey) Unwrap(ctx context.Context, ciphertext []byte, hash hsm.OAEPHash, spec hsm.KeySpec) (hsm.SecretKey, error) {
	if err := k.h.checkOAEP(hash); err != nil {
		return nil, err
	}
	if k.use == hsm.UseUnwrapOnly && spec.Exportable {
		return nil, fmt.Errorf("pkcs11: unwrap with RSA key %q: %w: it unwraps only into keys that are not exportable", k.label, hsm.ErrNotPermitted)
	}
	if len(ciphertext) != k.pub.Size() {
		return nil, fmt.Errorf("pkcs11: unwrap with RSA key %q: ciphertext is %d bytes, want %d: %w",
			k.label, len(ciphertext), k.pub.Size(), hsm.ErrDecrypt)
	}
	measure := k.use != hsm.UseUnwrapOnly
	sk, err := k.h.newSecret(ctx, spec, measure, func(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
		o, err := k.h.mod.ctx.UnwrapKey(s, oaepMech(hash), k.priv, ciphertext, tmpl)
		if err != nil {
			return 0, decryptErr("C_UnwrapKey(CKM_RSA_PKCS_OAEP)", err)
		}
		return o, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: unwrap with RSA key %q: %w", k.label, err)
	}
	return sk, nil
}

// SignPSS implements hsm.EncryptionKey: SignPSSDigest over the SHA-256 of
// message, computed here.
func (k *encryptionKey) SignPSS(ctx context.Context, message []byte) ([]byte, error) {
	digest := sha256.Sum256(message)
	return k.SignPSSDigest(ctx, digest[:])
}

// SignPSSDigest implements hsm.EncryptionKey: CKM_RSA_PKCS_PSS over a SHA-256
// digest, MGF1-SHA-256, 32-byte salt. The signature is verified before it is
// returned.
func (k *encryptionKey) SignPSSDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("pkcs11: RSA-PSS signature with key %q: digest is %d bytes, want a %d-byte SHA-256 digest",
			k.label, len(digest), sha256.Size)
	}
	params := pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, sha256.Size)
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, params)}
	var sig []byte
	err := k.h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		if err := k.h.mod.ctx.SignInit(s, mech, k.priv); err != nil {
			return fmt.Errorf("C_SignInit(CKM_RSA_PKCS_PSS): %w", err)
		}
		var err error
		if sig, err = k.h.mod.ctx.Sign(s, digest); err != nil {
			return fmt.Errorf("C_Sign(CKM_RSA_PKCS_PSS): %w", err)
		}
		return nil
	})
	if err == nil {
		opts := &rsa.PSSOptions{SaltLength: sha256.Size, Hash: crypto.SHA256}
		if rsa.VerifyPSS(k.pub, crypto.SHA256, digest, sig, opts) != nil {
			err = errors.New("the token produced an RSA-PSS signature that does not verify")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11: RSA-PSS signature with key %q: %w", k.label, err)
	}
	return sig, nil
}

// Destroy implements hsm.EncryptionKey with C_DestroyObject: the private
// key, then every RSA public key object with its label and modulus (under
// the token's persist lock, so that no key pair takes the label meanwhile).
// A private key gone already does not stop its public half from going;
// only when neither is left is it hsm.ErrNotFound. A key pair made since
// under the same label has another modulus and is left alone.
func (k *encryptionKey) Destroy(ctx context.Context) error {
	k.h.token.persist.Lock()
	defer k.h.token.persist.Unlock()
	err := k.h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		pubs, err := k.h.findObjects(s, []*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			attr(pkcs11.CKA_TOKEN, true),
			attr(pkcs11.CKA_LABEL, k.label),
			attr(pkcs11.CKA_MODULUS, k.pub.N.Bytes()),
		}, 16)
		if err != nil {
			return err
		}
		err = k.h.mod.ctx.DestroyObject(s, k.priv)
		gone := isRV(err, pkcs11.CKR_OBJECT_HANDLE_INVALID)
		switch {
		case gone && len(pubs) == 0:
			return fmt.Errorf("no such key pair on token %q: %w", k.h.info.Token, hsm.ErrNotFound)
		case err != nil && !gone:
			return fmt.Errorf("C_DestroyObject(private key): %w", err)
		}
		return k.h.destroy(s, pubs...)
	})
	if err != nil {
		return fmt.Errorf("pkcs11: destroy RSA key pair %q: %w", k.label, err)
	}
	return nil
}

// minRecipientBits is the smallest RSA key WrapRSA encrypts to.
const minRecipientBits = 2048

// WrapRSA implements hsm.SecretKey: the key, which must be exportable,
// wrapped with CKM_RSA_PKCS_OAEP to pub, which is imported as a session
// object for the purpose.
func (k *secretKey) WrapRSA(ctx context.Context, pub *rsa.PublicKey, hash hsm.OAEPHash) ([]byte, error) {
	if !k.exportable {
		return nil, fmt.Errorf("pkcs11: wrap %s to an RSA key: %w", k.name(), hsm.ErrNotExportable)
	}
	if pub == nil || pub.N == nil || pub.N.BitLen() < minRecipientBits || pub.E < 3 {
		return nil, fmt.Errorf("pkcs11: wrap %s: the recipient must be an RSA key of at least %d bits", k.name(), minRecipientBits)
	}
	if err := k.h.checkOAEP(hash); err != nil {
		return nil, err
	}
	var out []byte
	err := k.do(ctx, func(s pkcs11.SessionHandle) error {
		po, err := k.h.mod.ctx.CreateObject(s, []*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			attr(pkcs11.CKA_TOKEN, false),
			attr(pkcs11.CKA_MODULUS, pub.N.Bytes()),
			attr(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(pub.E)).Bytes()),
			attr(pkcs11.CKA_WRAP, true),
			attr(pkcs11.CKA_ENCRYPT, false),
			attr(pkcs11.CKA_VERIFY, false),
		})
		if err != nil {
			return fmt.Errorf("import the recipient's public key: %w", err)
		}
		w, err := k.h.mod.ctx.WrapKey(s, oaepMech(hash), po, k.obj)
		if derr := k.h.destroy(s, po); derr != nil && err == nil {
			return derr
		}
		switch {
		case isRV(err, pkcs11.CKR_KEY_UNEXTRACTABLE), isRV(err, pkcs11.CKR_KEY_NOT_WRAPPABLE):
			return fmt.Errorf("C_WrapKey: %w (%w)", hsm.ErrNotExportable, err)
		case err != nil:
			return fmt.Errorf("C_WrapKey(CKM_RSA_PKCS_OAEP, %v): %w", hash, err)
		case len(w) != pub.Size():
			return fmt.Errorf("C_WrapKey(CKM_RSA_PKCS_OAEP) returned %d bytes, want %d", len(w), pub.Size())
		}
		out = w
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: wrap %s to an RSA key: %w", k.name(), err)
	}
	return out, nil
}

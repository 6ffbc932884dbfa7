//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// secp384r1 is the DER encoding of the P-384 curve's OID, CKA_EC_PARAMS.
var secp384r1 = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}

// p384Size is the size of a P-384 scalar, and of r and s.
const p384Size = 48

// signingKey is an ECDSA P-384 key pair; its private half is a token object.
type signingKey struct {
	h     *HSM
	label string
	priv  pkcs11.ObjectHandle
	pub   *ecdsa.PublicKey
}

var _ hsm.SigningKey = (*signingKey)(nil)

// GenerateSigningKey implements hsm.HSM with CKM_EC_KEY_PAIR_GEN on P-384.
func (h *HSM) GenerateSigningKey(ctx context.Context, label string) (hsm.SigningKey, error) {
	pubTmpl := append([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_PRIVATE, false),
		attr(pkcs11.CKA_EC_PARAMS, secp384r1),
		attr(pkcs11.CKA_VERIFY, true),
		attr(pkcs11.CKA_ENCRYPT, false),
		attr(pkcs11.CKA_WRAP, false),
		attr(pkcs11.CKA_DERIVE, false),
	}, labelAttrs(label)...)
	privTmpl := privateKeyTemplate(pkcs11.CKK_EC, label, pkcs11.CKA_SIGN)
	mech := pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)
	var k *signingKey
	err := h.generatePair(ctx, label, mech, pubTmpl, privTmpl, func(s pkcs11.SessionHandle, pub, priv pkcs11.ObjectHandle) error {
		p, err := h.ecPublic(s, pub)
		k = &signingKey{h: h, label: label, priv: priv, pub: p}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generate ECDSA P-384 key pair %q: %w", label, err)
	}
	return k, nil
}

// SigningKey implements hsm.HSM. The public key comes from the public key
// object with the same label (EC private key objects lack CKA_EC_POINT).
func (h *HSM) SigningKey(ctx context.Context, label string) (hsm.SigningKey, error) {
	var k *signingKey
	err := h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		priv, err := h.findByLabel(s, pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_EC, label, "ECDSA signing key")
		if err != nil {
			return err
		}
		pub, err := h.findByLabel(s, pkcs11.CKO_PUBLIC_KEY, pkcs11.CKK_EC, label, "ECDSA public key")
		if err != nil {
			return err
		}
		p, err := h.ecPublic(s, pub)
		if err != nil {
			return fmt.Errorf("ECDSA key labelled %q: %w", label, err)
		}
		k = &signingKey{h: h, label: label, priv: priv, pub: p}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	return k, nil
}

// ecPublic reads a P-384 public key object.
func (h *HSM) ecPublic(s pkcs11.SessionHandle, o pkcs11.ObjectHandle) (*ecdsa.PublicKey, error) {
	a, err := h.getAttrs(s, o, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_EC_POINT)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(a[pkcs11.CKA_EC_PARAMS], secp384r1) {
		return nil, errors.New("the key is not on curve P-384 (secp384r1)")
	}
	return parseECPoint(a[pkcs11.CKA_EC_POINT])
}

// parseECPoint decodes CKA_EC_POINT: a DER OCTET STRING holding the
// uncompressed point, as PKCS #11 specifies, or the bare point, as some
// modules return it.
func parseECPoint(v []byte) (*ecdsa.PublicKey, error) {
	const pointSize = 1 + 2*p384Size
	point := v
	if len(v) != pointSize {
		var inner []byte
		if rest, err := asn1.Unmarshal(v, &inner); err != nil || len(rest) != 0 {
			return nil, errors.New("CKA_EC_POINT is neither a point nor a DER OCTET STRING")
		}
		point = inner
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), point)
	if err != nil {
		return nil, fmt.Errorf("CKA_EC_POINT: %w", err)
	}
	return pub, nil
}

func (k *signingKey) Label() string                    { return k.label }
func (k *signingKey) Public() crypto.PublicKey         { return k.ECDSAPublicKey() }
func (k *signingKey) ECDSAPublicKey() *ecdsa.PublicKey { c := *k.pub; return &c }

// Sign implements crypto.Signer with CKM_ECDSA. digest is a hash of the
// length opts names (SHA-384 for Strongroom's own use); the signature is
// ASN.1 DER, like ecdsa.SignASN1, and is verified before it is returned.
func (k *signingKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() == 0 {
		return nil, fmt.Errorf("pkcs11: sign with ECDSA key %q: opts must name the hash of the digest", k.label)
	}
	if len(digest) != opts.HashFunc().Size() {
		return nil, fmt.Errorf("pkcs11: sign with ECDSA key %q: digest is %d bytes, but %v digests are %d",
			k.label, len(digest), opts.HashFunc(), opts.HashFunc().Size())
	}
	var raw []byte
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	err := k.h.pool.do(context.Background(), func(s pkcs11.SessionHandle) error {
		if err := k.h.mod.ctx.SignInit(s, mech, k.priv); err != nil {
			return fmt.Errorf("C_SignInit(CKM_ECDSA): %w", err)
		}
		var err error
		if raw, err = k.h.mod.ctx.Sign(s, digest); err != nil {
			return fmt.Errorf("C_Sign(CKM_ECDSA): %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: sign with ECDSA key %q: %w", k.label, err)
	}
	if len(raw) != 2*p384Size {
		return nil, fmt.Errorf("pkcs11: sign with ECDSA key %q: the token returned %d bytes, want %d", k.label, len(raw), 2*p384Size)
	}
	sig, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(raw[:p384Size]), new(big.Int).SetBytes(raw[p384Size:]),
	})
	if err != nil {
		return nil, err
	}
	if !ecdsa.VerifyASN1(k.pub, digest, sig) {
		return nil, fmt.Errorf("pkcs11: sign with ECDSA key %q: the token produced a signature that does not verify", k.label)
	}
	return sig, nil
}

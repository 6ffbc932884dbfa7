//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// selfTest runs the known-answer tests of internal/hsm through the same code
// paths as the real operations, on session objects that it destroys:
//
//   - AES-256-GCM under hsm.KATKey must give hsm.KATSealed, open it again,
//     and refuse it with a flipped bit;
//   - wrapping hsm.KATWrapTarget under the KEK derived from hsm.KATKey for
//     hsm.KATWrapContext must give exactly hsm.KATWrapped, which checks the
//     derivation (CKM_AES_ECB_ENCRYPT_DATA) and RFC 5649 wrapping bit for bit;
//   - unwrapping hsm.KATWrapped must give a key whose AES-GCM output matches
//     the standard library's under hsm.KATWrapTarget, which checks unwrapping;
//   - unwrapping it under another context, or altered, must fail, which
//     checks that the context reaches the derivation and that the RFC 5649
//     integrity check is enforced.
//
// Any mismatch or failure returns an error wrapping hsm.ErrSelfTest.
func (h *HSM) selfTest(ctx context.Context) error {
	err := h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		var objs []pkcs11.ObjectHandle
		defer func() { _ = h.destroy(s, objs...) }()
		k, err := h.createAES(s, hsm.KATKey, false)
		if err != nil {
			return fmt.Errorf("create the test key: %w", err)
		}
		objs = append(objs, k)
		if err := h.katGCM(s, k); err != nil {
			return err
		}
		t, err := h.createAES(s, hsm.KATWrapTarget, true)
		if err != nil {
			return fmt.Errorf("create the key to wrap: %w", err)
		}
		objs = append(objs, t)
		w, err := h.wrapUnder(s, k, t, hsm.KATWrapContext)
		if err != nil {
			return fmt.Errorf("context-bound wrap: %w", err)
		}
		if !bytes.Equal(w, hsm.KATWrapped) {
			return errors.New("context-bound wrap (derivation and RFC 5649) gave the wrong bytes")
		}
		tmpl := []*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false),
			attr(pkcs11.CKA_ENCRYPT, true),
		}
		u, err := h.unwrapUnder(s, k, hsm.KATWrapped, hsm.KATWrapContext, tmpl)
		if err != nil {
			return fmt.Errorf("context-bound unwrap: %w", err)
		}
		objs = append(objs, u)
		got, err := h.gcmSeal(s, u, hsm.KATNonce, hsm.KATPlaintext, hsm.KATAAD)
		if err != nil {
			return fmt.Errorf("AES-GCM with the unwrapped key: %w", err)
		}
		block, _ := aes.NewCipher(hsm.KATWrapTarget)
		g, _ := cipher.NewGCM(block)
		if !bytes.Equal(got[hsm.GCMNonceSize:], g.Seal(nil, hsm.KATNonce, hsm.KATPlaintext, hsm.KATAAD)) {
			return errors.New("context-bound unwrap gave the wrong key")
		}
		if u, err := h.unwrapUnder(s, k, hsm.KATWrapped, []byte("another context"), tmpl); err == nil {
			objs = append(objs, u)
			return errors.New("unwrap under another context succeeded: the context does not reach the derivation")
		}
		bad := bytes.Clone(hsm.KATWrapped)
		bad[len(bad)-1] ^= 1
		if u, err := h.unwrapUnder(s, k, bad, hsm.KATWrapContext, tmpl); err == nil {
			objs = append(objs, u)
			return errors.New("unwrap of an altered wrapped key succeeded: RFC 5649 integrity is not checked")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pkcs11: token %q: %w: %w", h.info.Token, hsm.ErrSelfTest, err)
	}
	return nil
}

// katGCM checks AES-256-GCM against hsm.KATSealed, both ways.
func (h *HSM) katGCM(s pkcs11.SessionHandle, k pkcs11.ObjectHandle) error {
	got, err := h.gcmSeal(s, k, hsm.KATNonce, hsm.KATPlaintext, hsm.KATAAD)
	if err != nil {
		return fmt.Errorf("AES-GCM encryption: %w", err)
	}
	if !bytes.Equal(got, hsm.KATSealed) {
		return errors.New("AES-GCM encryption gave the wrong ciphertext")
	}
	open := func(sealed []byte) ([]byte, error) {
		params := pkcs11.NewGCMParams(hsm.KATNonce, hsm.KATAAD, hsm.GCMTagSize*8)
		defer params.Free()
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}
		if err := h.mod.ctx.DecryptInit(s, mech, k); err != nil {
			return nil, err
		}
		return h.mod.ctx.Decrypt(s, sealed)
	}
	ct := hsm.KATSealed[hsm.GCMNonceSize:]
	if pt, err := open(ct); err != nil || !bytes.Equal(pt, hsm.KATPlaintext) {
		return fmt.Errorf("AES-GCM decryption of the known answer failed (%v)", err)
	}
	bad := bytes.Clone(ct)
	bad[0] ^= 1
	if _, err := open(bad); err == nil {
		return errors.New("AES-GCM decryption accepted an altered ciphertext")
	}
	return nil
}

//go:build cgo

package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/miekg/pkcs11"
)

// privateKeyTemplate is the template of a labelled private key: a token
// object that is private, sensitive and never extractable, and may do exactly
// the operations in usages (CKA_SIGN, CKA_DECRYPT, CKA_UNWRAP).
func privateKeyTemplate(keyType uint, label string, usages ...uint) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		attr(pkcs11.CKA_KEY_TYPE, keyType),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, false),
	}
	for _, u := range []uint{pkcs11.CKA_SIGN, pkcs11.CKA_SIGN_RECOVER, pkcs11.CKA_DECRYPT, pkcs11.CKA_UNWRAP, pkcs11.CKA_DERIVE} {
		t = append(t, attr(u, slices.Contains(usages, u)))
	}
	return append(t, labelAttrs(label)...)
}

// generatePair generates a persistent key pair labelled label. Under the
// token's persist lock, it refuses a label that a public or private key
// already has (hsm.ErrExists, nothing created), generates, checks that the
// private key is sensitive and not extractable, and hands the objects to
// check. If anything fails after generation, both objects are destroyed.
func (h *HSM) generatePair(ctx context.Context, label string, mech *pkcs11.Mechanism, pubTmpl, privTmpl []*pkcs11.Attribute,
	check func(s pkcs11.SessionHandle, pub, priv pkcs11.ObjectHandle) error) error {
	if label == "" {
		return errors.New("a key pair needs a label")
	}
	h.token.persist.Lock()
	defer h.token.persist.Unlock()
	return h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		if err := h.checkLabelFree(s, label, pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY); err != nil {
			return err
		}
		pub, priv, err := h.mod.ctx.GenerateKeyPair(s, []*pkcs11.Mechanism{mech}, pubTmpl, privTmpl)
		if err != nil {
			return fmt.Errorf("C_GenerateKeyPair: %w", err)
		}
		err = h.checkPrivate(s, priv)
		if err == nil {
			err = check(s, pub, priv)
		}
		if err != nil {
			return errors.Join(err, h.destroy(s, pub, priv))
		}
		return nil
	})
}

// checkPrivate checks that a new private key cannot leave the token.
func (h *HSM) checkPrivate(s pkcs11.SessionHandle, o pkcs11.ObjectHandle) error {
	a, err := h.getAttrs(s, o, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_TOKEN)
	if err != nil {
		return err
	}
	if !boolAttr(a[pkcs11.CKA_SENSITIVE]) || boolAttr(a[pkcs11.CKA_EXTRACTABLE]) || !boolAttr(a[pkcs11.CKA_TOKEN]) {
		return errors.New("the token ignored the template: the private key is not a sensitive, " +
			"non-extractable token object")
	}
	return nil
}

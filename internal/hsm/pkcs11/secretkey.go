//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// secretKey is an AES-256 key object: a token object, or a session object
// for ephemeral keys.
type secretKey struct {
	h          *HSM
	label      string
	obj        pkcs11.ObjectHandle
	exportable bool
	derivable  bool // CKA_DERIVE: exportable, or hsm.KeySpec.Derivable
	destroyed  atomic.Bool
}

var _ hsm.SecretKey = (*secretKey)(nil)

// secretTemplate is the template of a new AES-256 key. It is always
// sensitive; it is extractable (and so can be wrapped) only if Exportable.
// CKA_DERIVE makes the context-bound KEKs of Wrap and Unwrap, and the keys
// of Derive; it is set only on exportable keys and on keys asked to be
// Derivable, since a PIN holder could derive an extractable key from any key
// that has it.
func secretTemplate(spec hsm.KeySpec) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, !spec.Ephemeral),
		attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, spec.Exportable),
		attr(pkcs11.CKA_ENCRYPT, true),
		attr(pkcs11.CKA_DECRYPT, true),
		attr(pkcs11.CKA_WRAP, false),
		attr(pkcs11.CKA_UNWRAP, false),
		attr(pkcs11.CKA_DERIVE, spec.Exportable || spec.Derivable),
		attr(pkcs11.CKA_SIGN, false),
		attr(pkcs11.CKA_VERIFY, false),
	}
	if !spec.Ephemeral {
		t = append(t, labelAttrs(spec.Label)...)
	}
	return t
}

func checkSpec(spec hsm.KeySpec) error {
	switch {
	case spec.Ephemeral && spec.Label != "":
		return fmt.Errorf("ephemeral keys have no label, but the spec has label %q", spec.Label)
	case !spec.Ephemeral && spec.Label == "":
		return errors.New("a persistent key needs a label")
	}
	return nil
}

// creator makes a key object from a template, in session s.
type creator func(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)

// newSecret makes an AES-256 key per spec with create. It enforces label
// uniqueness and checks that the object really is an AES-256 key with the
// requested protection. unwrap says that create unwraps: then the length of
// the key is checked even on tokens that do not report it (see unwrapAES).
func (h *HSM) newSecret(ctx context.Context, spec hsm.KeySpec, unwrap bool, create creator) (*secretKey, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	if !spec.Ephemeral {
		h.token.persist.Lock()
		defer h.token.persist.Unlock()
	}
	var k *secretKey
	err := h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		if !spec.Ephemeral {
			if err := h.checkLabelFree(s, spec.Label, pkcs11.CKO_SECRET_KEY); err != nil {
				return err
			}
		}
		var o pkcs11.ObjectHandle
		var measured bool
		var err error
		if unwrap {
			o, measured, err = h.unwrapAES(s, secretTemplate(spec), create)
		} else {
			o, err = create(s, secretTemplate(spec))
		}
		if err != nil {
			return err
		}
		exportable, derivable, err := h.checkSecret(s, o, measured)
		if err == nil && exportable != spec.Exportable {
			err = fmt.Errorf("the token made a key with CKA_EXTRACTABLE=%v, but the spec asked for %v",
				exportable, spec.Exportable)
		}
		if err == nil && !spec.Ephemeral {
			// The in-process lock does not cover other processes or hosts
			// sharing the token: look again, and if another object now
			// bears the label, give this one up. At most one of several
			// racing creators keeps its key (callers such as the ceremony's
			// ledger rely on it); all of them may lose, never two win.
			err = h.checkLabelUnique(s, spec.Label, pkcs11.CKO_SECRET_KEY)
		}
		if err != nil {
			return errors.Join(err, h.destroy(s, o))
		}
		k = &secretKey{h: h, label: spec.Label, obj: o, exportable: exportable, derivable: derivable}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// checkSecret checks that o is a sensitive AES-256 key and tells whether it
// is extractable and may derive. A CKA_VALUE_LEN of 0 is accepted when the
// length was measured, or on a token known not to report it.
func (h *HSM) checkSecret(s pkcs11.SessionHandle, o pkcs11.ObjectHandle, measured bool) (exportable, derivable bool, err error) {
	a, err := h.getAttrs(s, o, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_VALUE_LEN, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_DERIVE)
	if err != nil {
		return false, false, err
	}
	kt, _ := ulongAttr(a[pkcs11.CKA_KEY_TYPE])
	n, _ := ulongAttr(a[pkcs11.CKA_VALUE_LEN])
	switch {
	case kt != pkcs11.CKK_AES:
		return false, false, fmt.Errorf("key type 0x%x is not AES", kt)
	case n == 0 && (measured || h.lenUnreported.Load()):
	case n != hsm.SecretKeySize:
		return false, false, fmt.Errorf("the key is %d bytes long; strongroom uses AES-256 (32 bytes)", n)
	}
	if !boolAttr(a[pkcs11.CKA_SENSITIVE]) {
		return false, false, errors.New("the key is not sensitive (CKA_SENSITIVE)")
	}
	return boolAttr(a[pkcs11.CKA_EXTRACTABLE]), boolAttr(a[pkcs11.CKA_DERIVE]), nil
}

// GenerateSecretKey implements hsm.HSM with CKM_AES_KEY_GEN.
func (h *HSM) GenerateSecretKey(ctx context.Context, spec hsm.KeySpec) (hsm.SecretKey, error) {
	k, err := h.newSecret(ctx, spec, false, func(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
		tmpl = append(tmpl, attr(pkcs11.CKA_VALUE_LEN, hsm.SecretKeySize))
		o, err := h.mod.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
		if err != nil {
			return 0, fmt.Errorf("C_GenerateKey(CKM_AES_KEY_GEN): %w", err)
		}
		return o, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generate AES-256 key: %w", err)
	}
	return k, nil
}

// SecretKey implements hsm.HSM.
func (h *HSM) SecretKey(ctx context.Context, label string) (hsm.SecretKey, error) {
	var k *secretKey
	err := h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		o, err := h.findByLabel(s, pkcs11.CKO_SECRET_KEY, pkcs11.CKK_AES, label, "AES key")
		if err != nil {
			return err
		}
		exportable, derivable, err := h.checkSecret(s, o, false)
		if err != nil {
			return fmt.Errorf("AES key labelled %q: %w", label, err)
		}
		k = &secretKey{h: h, label: label, obj: o, exportable: exportable, derivable: derivable}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	return k, nil
}

func (k *secretKey) Label() string { return k.label }

// name is the key's label, for messages.
func (k *secretKey) name() string {
	if k.label == "" {
		return "ephemeral AES key"
	}
	return fmt.Sprintf("AES key %q", k.label)
}

// do runs f in a session unless the key has been destroyed.
func (k *secretKey) do(ctx context.Context, f func(s pkcs11.SessionHandle) error) error {
	if k.destroyed.Load() {
		return fmt.Errorf("the %s has been destroyed", k.name())
	}
	return k.h.pool.do(ctx, f)
}

// Seal implements hsm.SecretKey: AES-256-GCM with a random 96-bit nonce from
// the token's random number generator (so, as for any random-nonce GCM, a
// key should seal well under 2^32 messages).
func (k *secretKey) Seal(ctx context.Context, plaintext, additionalData []byte) ([]byte, error) {
	var out []byte
	err := k.do(ctx, func(s pkcs11.SessionHandle) error {
		nonce, err := k.h.mod.ctx.GenerateRandom(s, hsm.GCMNonceSize)
		if err != nil {
			return fmt.Errorf("C_GenerateRandom: %w", err)
		}
		if len(nonce) != hsm.GCMNonceSize {
			return errors.New("C_GenerateRandom returned a short nonce")
		}
		out, err = k.h.gcmSeal(s, k.obj, nonce, plaintext, additionalData)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: seal with %s: %w", k.name(), err)
	}
	return out, nil
}

// gcmSeal encrypts with CKM_AES_GCM and returns nonce || ciphertext || tag.
func (h *HSM) gcmSeal(s pkcs11.SessionHandle, key pkcs11.ObjectHandle, nonce, plaintext, aad []byte) ([]byte, error) {
	params := pkcs11.NewGCMParams(nonce, aad, hsm.GCMTagSize*8)
	defer params.Free()
	if err := h.mod.ctx.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key); err != nil {
		return nil, fmt.Errorf("C_EncryptInit(CKM_AES_GCM): %w", err)
	}
	ct, err := h.mod.ctx.Encrypt(s, plaintext)
	if err != nil {
		return nil, fmt.Errorf("C_Encrypt(CKM_AES_GCM): %w", err)
	}
	// Some modules (CloudHSM) choose the IV themselves; those are not
	// supported, as the self-test's fixed nonce could not be checked.
	if iv := params.IV(); !bytes.Equal(iv, nonce) {
		return nil, fmt.Errorf("the token replaced the GCM nonce (%d bytes); this module is not supported", len(iv))
	}
	if len(ct) != len(plaintext)+hsm.GCMTagSize {
		return nil, fmt.Errorf("C_Encrypt(CKM_AES_GCM) returned %d bytes for %d", len(ct), len(plaintext))
	}
	return append(bytes.Clone(nonce), ct...), nil
}

// Open implements hsm.SecretKey. Every failure wraps hsm.ErrDecrypt.
func (k *secretKey) Open(ctx context.Context, sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < hsm.GCMNonceSize+hsm.GCMTagSize {
		return nil, fmt.Errorf("pkcs11: open with %s: input too short: %w", k.name(), hsm.ErrDecrypt)
	}
	var out []byte
	err := k.do(ctx, func(s pkcs11.SessionHandle) error {
		params := pkcs11.NewGCMParams(sealed[:hsm.GCMNonceSize], additionalData, hsm.GCMTagSize*8)
		defer params.Free()
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}
		if err := k.h.mod.ctx.DecryptInit(s, mech, k.obj); err != nil {
			return fmt.Errorf("C_DecryptInit(CKM_AES_GCM): %w: %w", hsm.ErrDecrypt, err)
		}
		pt, err := k.h.mod.ctx.Decrypt(s, sealed[hsm.GCMNonceSize:])
		if err != nil {
			return decryptErr("C_Decrypt(CKM_AES_GCM)", err)
		}
		out = pt
		return nil
	})
	if err != nil {
		if !errors.Is(err, hsm.ErrDecrypt) {
			err = fmt.Errorf("%w: %w", hsm.ErrDecrypt, err)
		}
		return nil, fmt.Errorf("pkcs11: open with %s: %w", k.name(), err)
	}
	return out, nil
}

// Destroy implements hsm.SecretKey with C_DestroyObject.
func (k *secretKey) Destroy(ctx context.Context) error {
	if k.label != "" {
		k.h.token.persist.Lock()
		defer k.h.token.persist.Unlock()
	}
	err := k.do(ctx, func(s pkcs11.SessionHandle) error { return k.h.destroy(s, k.obj) })
	if err != nil {
		return fmt.Errorf("pkcs11: destroy %s: %w", k.name(), err)
	}
	k.destroyed.Store(true)
	return nil
}

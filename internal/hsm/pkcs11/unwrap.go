//go:build cgo

package pkcs11

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// unwrapAES runs unwrap, which unwraps a key with template tmpl, such that
// the result is known to be 32 bytes long. An RSA-OAEP ciphertext of a short
// key is easy to make for anyone with the public key, so a token that
// accepted it would give Strongroom a weak key.
//
// Tokens normally set CKA_VALUE_LEN of unwrapped keys, and newSecret checks
// it. Some (SoftHSM2 2.6) leave it at 0 and refuse it in the template. For
// those, the key is first unwrapped into a temporary session object that is
// sensitive, extractable and can only encrypt; an AES operation with it must
// work (so it is 16, 24 or 32 bytes long) and wrapping it with RFC 3394 under
// a fresh session key must give 40 bytes (so it is 25 to 32 bytes long); it
// is then unwrapped from that into the final key. The key never appears in
// host memory; the temporary objects are destroyed. measured reports that
// this path was taken.
func (h *HSM) unwrapAES(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute, unwrap creator) (o pkcs11.ObjectHandle, measured bool, err error) {
	if !h.lenUnreported.Load() {
		o, err := unwrap(s, tmpl)
		if err != nil {
			return 0, false, err
		}
		a, err := h.getAttrs(s, o, pkcs11.CKA_VALUE_LEN)
		if err != nil {
			return 0, false, errors.Join(err, h.destroy(s, o))
		}
		if n, _ := ulongAttr(a[pkcs11.CKA_VALUE_LEN]); n != 0 {
			return o, false, nil // newSecret checks n
		}
		h.lenUnreported.Store(true)
		if err := h.destroy(s, o); err != nil {
			return 0, false, err
		}
	}
	o, err = h.unwrapMeasured(s, tmpl, unwrap)
	return o, true, err
}

// kwWrappedSize is the size of a 32-byte key wrapped with RFC 3394.
const kwWrappedSize = hsm.SecretKeySize + 8

func (h *HSM) unwrapMeasured(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute, unwrap creator) (pkcs11.ObjectHandle, error) {
	c := h.mod.ctx
	tmp, err := unwrap(s, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, true),
		attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_DECRYPT, false), attr(pkcs11.CKA_WRAP, false),
		attr(pkcs11.CKA_UNWRAP, false), attr(pkcs11.CKA_DERIVE, false), attr(pkcs11.CKA_SIGN, false),
		attr(pkcs11.CKA_VERIFY, false),
	})
	if err != nil {
		return 0, err
	}
	kek, err := c.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_VALUE_LEN, hsm.SecretKeySize), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false),
		attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_UNWRAP, true),
		attr(pkcs11.CKA_ENCRYPT, false), attr(pkcs11.CKA_DECRYPT, false), attr(pkcs11.CKA_DERIVE, false),
	})
	if err != nil {
		return 0, errors.Join(fmt.Errorf("generate a transfer key: %w", err), h.destroy(s, tmp))
	}
	defer func() { _ = h.destroy(s, tmp, kek) }()
	// An AES operation fails unless the key is 16, 24 or 32 bytes long (its
	// result, the encryption of a zero block, is thrown away)...
	ecb := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}
	if err := c.EncryptInit(s, ecb, tmp); err != nil {
		return 0, fmt.Errorf("the unwrapped key is not a usable AES key (%w)", err)
	}
	if _, err := c.Encrypt(s, make([]byte, 16)); err != nil {
		return 0, fmt.Errorf("the unwrapped key is not a usable AES key (%w)", err)
	}
	// ... and RFC 3394 gives 40 bytes only for 25 to 32 bytes (SoftHSM2
	// pads to a multiple of 8; others refuse): together, exactly 32.
	kw := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP, nil)}
	w, err := c.WrapKey(s, kw, kek, tmp)
	switch {
	case isRV(err, pkcs11.CKR_KEY_SIZE_RANGE) || isRV(err, pkcs11.CKR_DATA_LEN_RANGE):
		return 0, errors.New("the unwrapped key is not an AES-256 key (its length is not a multiple of 8)")
	case err != nil:
		return 0, fmt.Errorf("measure the unwrapped key (C_WrapKey, CKM_AES_KEY_WRAP): %w", err)
	case len(w) != kwWrappedSize:
		return 0, fmt.Errorf("the unwrapped key is %d bytes long, not an AES-256 key (32 bytes)", len(w)-8)
	}
	o, err := c.UnwrapKey(s, kw, kek, w, tmpl)
	if err != nil {
		return 0, fmt.Errorf("C_UnwrapKey(CKM_AES_KEY_WRAP) of the transfer copy: %w", err)
	}
	return o, nil
}

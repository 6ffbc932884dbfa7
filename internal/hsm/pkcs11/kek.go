//go:build cgo

package pkcs11

/*
#include <stdlib.h>

// CK_KEY_DERIVATION_STRING_DATA, the parameter of CKM_AES_ECB_ENCRYPT_DATA,
// which github.com/miekg/pkcs11 does not provide. Cryptoki structures are
// packed on Windows.
#ifdef _WIN32
#pragma pack(push, cryptoki, 1)
#endif
typedef struct {
	unsigned char *pData;
	unsigned long ulLen;
} sr_key_derivation_string_data;
#ifdef _WIN32
#pragma pack(pop, cryptoki)
#endif
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// ckmAESKeyWrapKWP is PKCS #11 3.0's name for RFC 5649 key wrap. Older
// modules (SoftHSM2 among them) implement RFC 5649 as CKM_AES_KEY_WRAP_PAD;
// the self-test checks the bytes whichever is used.
const ckmAESKeyWrapKWP = 0x0000210B

// kwpWrappedSize is the size of an AES-256 key wrapped with RFC 5649.
const kwpWrappedSize = hsm.SecretKeySize + 8

// deriveKEK derives the context-bound KEK of hsm.ContextKEK from base inside
// the token: CKM_AES_ECB_ENCRYPT_DATA over hsm.KEKInput(context), into an
// AES-256 session key that is sensitive, not extractable, and can only do
// usage (CKA_WRAP or CKA_UNWRAP). The caller destroys it.
func (h *HSM) deriveKEK(s pkcs11.SessionHandle, base pkcs11.ObjectHandle, context []byte, usage uint) (pkcs11.ObjectHandle, error) {
	in := hsm.KEKInput(context)
	tmpl := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_VALUE_LEN, hsm.SecretKeySize),
		attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, false),
		attr(pkcs11.CKA_ENCRYPT, false),
		attr(pkcs11.CKA_DECRYPT, false),
		attr(pkcs11.CKA_SIGN, false),
		attr(pkcs11.CKA_VERIFY, false),
		attr(pkcs11.CKA_DERIVE, false),
		attr(pkcs11.CKA_WRAP, usage == pkcs11.CKA_WRAP),
		attr(pkcs11.CKA_UNWRAP, usage == pkcs11.CKA_UNWRAP),
	}
	kek, err := h.deriveData(s, base, in[:], tmpl)
	if err != nil {
		return 0, fmt.Errorf("derive the context KEK: %w", err)
	}
	return kek, nil
}

// deriveData derives a key made from tmpl from base inside the token: the
// AES-ECB encryption of data under base (CKM_AES_ECB_ENCRYPT_DATA).
func (h *HSM) deriveData(s pkcs11.SessionHandle, base pkcs11.ObjectHandle, data []byte, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	cdata := C.CBytes(data)
	defer C.free(cdata)
	p := C.sr_key_derivation_string_data{pData: (*C.uchar)(cdata), ulLen: C.ulong(len(data))}
	param := C.GoBytes(unsafe.Pointer(&p), C.int(unsafe.Sizeof(p)))
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB_ENCRYPT_DATA, param)}
	o, err := h.mod.ctx.DeriveKey(s, mech, base, tmpl)
	if err != nil {
		return 0, fmt.Errorf("C_DeriveKey(CKM_AES_ECB_ENCRYPT_DATA): %w", err)
	}
	return o, nil
}

// wrapMech is the RFC 5649 mechanism chosen at Open.
func (h *HSM) wrapMech() []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(h.kwp, nil)}
}

// wrapUnder wraps target under the KEK derived from base for context.
func (h *HSM) wrapUnder(s pkcs11.SessionHandle, base, target pkcs11.ObjectHandle, context []byte) ([]byte, error) {
	kek, err := h.deriveKEK(s, base, context, pkcs11.CKA_WRAP)
	if err != nil {
		return nil, err
	}
	w, err := h.mod.ctx.WrapKey(s, h.wrapMech(), kek, target)
	if derr := h.destroy(s, kek); derr != nil {
		return nil, errors.Join(err, derr)
	}
	switch {
	case isRV(err, pkcs11.CKR_KEY_UNEXTRACTABLE), isRV(err, pkcs11.CKR_KEY_NOT_WRAPPABLE):
		return nil, fmt.Errorf("C_WrapKey: %w (%w)", hsm.ErrNotExportable, err)
	case err != nil:
		return nil, fmt.Errorf("C_WrapKey (RFC 5649): %w", err)
	case len(w) != kwpWrappedSize:
		return nil, fmt.Errorf("C_WrapKey (RFC 5649) returned %d bytes, want %d", len(w), kwpWrappedSize)
	}
	return w, nil
}

// unwrapUnder unwraps wrapped under the KEK derived from base for context
// into a new key made from tmpl.
func (h *HSM) unwrapUnder(s pkcs11.SessionHandle, base pkcs11.ObjectHandle, wrapped, context []byte,
	tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	kek, err := h.deriveKEK(s, base, context, pkcs11.CKA_UNWRAP)
	if err != nil {
		return 0, err
	}
	o, err := h.mod.ctx.UnwrapKey(s, h.wrapMech(), kek, wrapped, tmpl)
	if derr := h.destroy(s, kek); derr != nil {
		if err == nil {
			derr = errors.Join(derr, h.destroy(s, o))
		}
		return 0, derr
	}
	if err != nil {
		return 0, decryptErr("C_UnwrapKey (RFC 5649)", err)
	}
	return o, nil
}

// Wrap implements hsm.SecretKey: key, which must be exportable, wrapped with
// RFC 5649 under hsm.ContextKEK(this key, context), all inside the token.
func (k *secretKey) Wrap(ctx context.Context, key hsm.SecretKey, context []byte) ([]byte, error) {
	t, ok := key.(*secretKey)
	if !ok || !k.h.sameToken(t.h) {
		return nil, fmt.Errorf("pkcs11: wrap under %s: the key to wrap is not on token %q: %w",
			k.name(), k.h.info.Token, hsm.ErrUnsupported)
	}
	if !t.exportable {
		return nil, fmt.Errorf("pkcs11: wrap %s: %w", t.name(), hsm.ErrNotExportable)
	}
	if !k.exportable {
		return nil, fmt.Errorf("pkcs11: wrap under %s: only exportable keys may wrap under a context: %w", k.name(), hsm.ErrNotExportable)
	}
	if t.destroyed.Load() {
		return nil, fmt.Errorf("pkcs11: wrap %s: the key has been destroyed", t.name())
	}
	var out []byte
	err := k.do(ctx, func(s pkcs11.SessionHandle) (err error) {
		out, err = k.h.wrapUnder(s, k.obj, t.obj, context)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: wrap %s under %s: %w", t.name(), k.name(), err)
	}
	return out, nil
}

// Unwrap implements hsm.SecretKey. Any failure to authenticate the wrapped
// key, including a wrong context, wraps hsm.ErrDecrypt.
func (k *secretKey) Unwrap(ctx context.Context, wrapped, context []byte, spec hsm.KeySpec) (hsm.SecretKey, error) {
	if len(wrapped) != kwpWrappedSize {
		return nil, fmt.Errorf("pkcs11: unwrap under %s: the wrapped key is %d bytes, want %d: %w",
			k.name(), len(wrapped), kwpWrappedSize, hsm.ErrDecrypt)
	}
	if k.destroyed.Load() {
		return nil, fmt.Errorf("pkcs11: unwrap under %s: the key has been destroyed", k.name())
	}
	if !k.derivable {
		return nil, fmt.Errorf("pkcs11: unwrap under %s: only exportable or derivable keys may unwrap under a context: %w", k.name(), hsm.ErrNotExportable)
	}
	u, err := k.h.newSecret(ctx, spec, true, func(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
		return k.h.unwrapUnder(s, k.obj, wrapped, context, tmpl)
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: unwrap under %s: %w", k.name(), err)
	}
	return u, nil
}

// Derive implements hsm.SecretKey: C_DeriveKey with CKM_AES_ECB_ENCRYPT_DATA
// over hsm.DeriveInput(context), into a key made per spec.
func (k *secretKey) Derive(ctx context.Context, context []byte, spec hsm.KeySpec) (hsm.SecretKey, error) {
	if k.destroyed.Load() {
		return nil, fmt.Errorf("pkcs11: derive from %s: the key has been destroyed", k.name())
	}
	if !k.derivable {
		return nil, fmt.Errorf("pkcs11: derive from %s: only exportable or derivable keys may derive: %w", k.name(), hsm.ErrNotExportable)
	}
	d, err := k.h.newSecret(ctx, spec, false, func(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
		in := hsm.DeriveInput(context)
		return k.h.deriveData(s, k.obj, in[:], append(tmpl, attr(pkcs11.CKA_VALUE_LEN, hsm.SecretKeySize)))
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: derive from %s: %w", k.name(), err)
	}
	return d, nil
}

// Digest implements hsm.SecretKey: SHA-256(prefix || key) inside the token
// with C_DigestInit, C_DigestUpdate and C_DigestKey.
func (k *secretKey) Digest(ctx context.Context, prefix []byte) ([32]byte, error) {
	var d [32]byte
	if !k.exportable {
		return d, fmt.Errorf("pkcs11: digest %s: %w", k.name(), hsm.ErrNotExportable)
	}
	err := k.do(ctx, func(s pkcs11.SessionHandle) error {
		if err := k.h.mod.ctx.DigestInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256, nil)}); err != nil {
			return fmt.Errorf("C_DigestInit(CKM_SHA256): %w", err)
		}
		if len(prefix) > 0 {
			if err := k.h.mod.ctx.DigestUpdate(s, prefix); err != nil {
				k.h.mod.ctx.DigestFinal(s) // end the operation
				return fmt.Errorf("C_DigestUpdate: %w", err)
			}
		}
		if err := k.h.mod.ctx.DigestKey(s, k.obj); err != nil {
			k.h.mod.ctx.DigestFinal(s)
			return fmt.Errorf("C_DigestKey: %w", err)
		}
		out, err := k.h.mod.ctx.DigestFinal(s)
		if err != nil {
			return fmt.Errorf("C_DigestFinal: %w", err)
		}
		if len(out) != len(d) {
			return fmt.Errorf("C_DigestFinal returned %d bytes", len(out))
		}
		copy(d[:], out)
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("pkcs11: digest %s: %w", k.name(), err)
	}
	return d, nil
}

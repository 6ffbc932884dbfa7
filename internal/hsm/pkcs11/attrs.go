//go:build cgo

package pkcs11

// Helpers below this package's public methods return errors without the
// "pkcs11: " prefix; the public methods add it, with what they were doing.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// keyID is the CKA_ID of a labelled key: SHA-256 of the label, so that other
// tools can pair a key's objects (and certificates) without the label.
func keyID(label string) []byte {
	sum := sha256.Sum256([]byte(label))
	return sum[:]
}

func attr(t uint, v any) *pkcs11.Attribute { return pkcs11.NewAttribute(t, v) }

// labelAttrs names a persistent object.
func labelAttrs(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, label), attr(pkcs11.CKA_ID, keyID(label))}
}

// findObjects returns up to max objects matching tmpl.
func (h *HSM) findObjects(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute, max int) ([]pkcs11.ObjectHandle, error) {
	c := h.mod.ctx
	if err := c.FindObjectsInit(s, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	objs, _, err := c.FindObjects(s, max)
	if ferr := c.FindObjectsFinal(s); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("C_FindObjects: %w", err)
	}
	return objs, nil
}

// findByLabel finds the one persistent object of class and keyType labelled
// label. what names the kind of key in messages.
func (h *HSM) findByLabel(s pkcs11.SessionHandle, class, keyType uint, label, what string) (pkcs11.ObjectHandle, error) {
	if label == "" {
		return 0, fmt.Errorf("empty label: %w", hsm.ErrNotFound)
	}
	objs, err := h.findObjects(s, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, class),
		attr(pkcs11.CKA_KEY_TYPE, keyType),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_LABEL, label),
	}, 2)
	switch {
	case err != nil:
		return 0, err
	case len(objs) == 0:
		return 0, fmt.Errorf("no %s labelled %q on token %q: %w", what, label, h.info.Token, hsm.ErrNotFound)
	case len(objs) > 1:
		return 0, fmt.Errorf("several %s objects are labelled %q on token %q; "+
			"labels must be unique, so refusing to guess (were they created concurrently by two processes?)",
			what, label, h.info.Token)
	}
	return objs[0], nil
}

// checkLabelFree returns an error wrapping hsm.ErrExists if a persistent
// object of one of classes is labelled label.
func (h *HSM) checkLabelFree(s pkcs11.SessionHandle, label string, classes ...uint) error {
	for _, class := range classes {
		objs, err := h.findObjects(s, []*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, class),
			attr(pkcs11.CKA_TOKEN, true),
			attr(pkcs11.CKA_LABEL, label),
		}, 1)
		if err != nil {
			return err
		}
		if len(objs) > 0 {
			return fmt.Errorf("label %q on token %q: %w", label, h.info.Token, hsm.ErrExists)
		}
	}
	return nil
}

// checkLabelUnique is checkLabelFree after a creation: exactly one token
// object of the class may bear the label.
func (h *HSM) checkLabelUnique(s pkcs11.SessionHandle, label string, class uint) error {
	objs, err := h.findObjects(s, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, class),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_LABEL, label),
	}, 2)
	if err != nil {
		return err
	}
	if len(objs) > 1 {
		return fmt.Errorf("label %q on token %q: another process created an object with it at the same time: %w", label, h.info.Token, hsm.ErrExists)
	}
	return nil
}

// getAttrs reads attributes of o, by type.
func (h *HSM) getAttrs(s pkcs11.SessionHandle, o pkcs11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		tmpl[i] = attr(t, nil)
	}
	got, err := h.mod.ctx.GetAttributeValue(s, o, tmpl)
	if err != nil {
		return nil, fmt.Errorf("C_GetAttributeValue: %w", err)
	}
	m := make(map[uint][]byte, len(got))
	for _, a := range got {
		m[a.Type] = a.Value
	}
	return m, nil
}

// boolAttr decodes a CK_BBOOL.
func boolAttr(v []byte) bool { return len(v) == 1 && v[0] != 0 }

// ulongAttr decodes a CK_ULONG, which modules return in host byte order.
func ulongAttr(v []byte) (uint, bool) {
	switch len(v) {
	case 4:
		return uint(binary.NativeEndian.Uint32(v)), true
	case 8:
		return uint(binary.NativeEndian.Uint64(v)), true
	}
	return 0, false
}

// destroy deletes an object that an operation created before failing.
func (h *HSM) destroy(s pkcs11.SessionHandle, objs ...pkcs11.ObjectHandle) error {
	var errs []error
	for _, o := range objs {
		if err := h.mod.ctx.DestroyObject(s, o); err != nil {
			errs = append(errs, fmt.Errorf("C_DestroyObject: %w", err))
		}
	}
	return errors.Join(errs...)
}

// notCiphertext lists the return values of C_Decrypt and C_UnwrapKey that
// say nothing about the ciphertext: they are reported as they are. All others
// become the opaque hsm.ErrDecrypt.
var notCiphertext = []uint{
	pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_ATTRIBUTE_READ_ONLY, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID,
	pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_DEVICE_ERROR,
	pkcs11.CKR_DEVICE_MEMORY, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_FUNCTION_NOT_SUPPORTED,
	pkcs11.CKR_HOST_MEMORY, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED, pkcs11.CKR_KEY_HANDLE_INVALID,
	pkcs11.CKR_KEY_TYPE_INCONSISTENT, pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID,
	pkcs11.CKR_OPERATION_ACTIVE, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_SESSION_HANDLE_INVALID,
	pkcs11.CKR_SESSION_READ_ONLY, pkcs11.CKR_TEMPLATE_INCOMPLETE, pkcs11.CKR_TEMPLATE_INCONSISTENT,
	pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_WRITE_PROTECTED, pkcs11.CKR_UNWRAPPING_KEY_HANDLE_INVALID,
	pkcs11.CKR_UNWRAPPING_KEY_SIZE_RANGE, pkcs11.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, pkcs11.CKR_USER_NOT_LOGGED_IN,
}

// decryptErr maps a failed C_Decrypt or C_UnwrapKey to an error: the opaque
// hsm.ErrDecrypt unless the failure is not about the ciphertext.
func decryptErr(op string, err error) error {
	for _, rv := range notCiphertext {
		if isRV(err, rv) {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return fmt.Errorf("%s: %w", op, hsm.ErrDecrypt)
}

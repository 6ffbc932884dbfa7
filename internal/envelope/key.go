package envelope

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Key is the DEK of one key version, ready to seal and open many format 1
// ciphertexts (Seal and Open, with the AES key schedule and the header
// computed once): what a client that caches a DEK encrypts with. It is safe
// for concurrent use.
type Key struct {
	h      Header
	prefix []byte // u8<aadLabel> || header: the start of every aad
	g      *primitive.GCM
}

// NewKey returns the Key of dek, the DEK of the key h names.
func NewKey(dek secret.Key, h Header) (*Key, error) {
	hb, err := h.Marshal()
	if err != nil {
		return nil, err
	}
	g, err := primitive.NewGCM(dek)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return &Key{h: h, prefix: aad(hb, nil), g: g}, nil
}

// aadBuf is room for the associated data of a ciphertext with a small
// context, so that Seal and Open need not allocate it.
const aadBuf = 256

// Seal is Seal(dek, h, context, plaintext).
func (k *Key) Seal(context map[string]string, plaintext []byte) ([]byte, error) {
	// One allocation: the ciphertext, with room behind it for the
	// associated data (wiped before returning).
	hl := len(k.prefix) - 1 - len(aadLabel)
	n := hl + primitive.Overhead + len(plaintext)
	buf := make([]byte, n, n+aadBuf)
	a, err := appendCanonical(append(buf[n:n], k.prefix...), context)
	if err != nil {
		return nil, err
	}
	copy(buf, k.prefix[1+len(aadLabel):])
	out, err := k.g.Seal(buf[:hl], plaintext, a)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if cap(a) <= cap(buf)-n { // a is inside buf's spare room
		clear(buf[n:cap(buf)])
	}
	return out[:n:n], nil
}

// Open is Open(dek, ct, context), and also fails (ErrDecrypt) for a
// ciphertext that names another key.
func (k *Key) Open(ct []byte, context map[string]string) ([]byte, error) {
	h, sealed, err := parse(ct)
	if err != nil || h != k.h {
		return nil, ErrDecrypt
	}
	n := len(sealed) - primitive.Overhead
	buf := make([]byte, n, n+aadBuf)
	a, err := appendCanonical(append(buf[n:n], k.prefix...), context)
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := k.g.Open(buf[:0], sealed, a)
	if err != nil {
		return nil, ErrDecrypt
	}
	if cap(a) <= cap(buf)-n {
		clear(buf[n:cap(buf)])
	}
	return pt[:n:n], nil
}

// appendCanonical appends canonical(context) to dst, without the
// allocations of canonical for the small contexts of a hot path; any
// invalid context is canonical's error.
func appendCanonical(dst []byte, context map[string]string) ([]byte, error) {
	var arr [8]string
	if len(context) > len(arr) {
		c, err := canonical(context)
		return append(dst, c...), err
	}
	keys := arr[:0]
	for k, v := range context {
		if len(k) == 0 || len(k) > MaxContextKey || len(v) > MaxContextValue || !utf8.ValidString(k) || !utf8.ValidString(v) {
			_, err := canonical(context)
			return nil, err
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, byte(len(keys)>>8), byte(len(keys)))
	for _, k := range keys {
		v := context[k]
		dst = append(dst, byte(len(k)))
		dst = append(dst, k...)
		dst = append(dst, byte(len(v)>>8), byte(len(v)))
		dst = append(dst, v...)
	}
	return dst, nil
}

package envelope

import (
	"crypto/hpke"
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// The HPKE KEMs a DEK may be delivered to (RFC 9180 and
// draft-ietf-hpke-pq identifiers).
const (
	// KEMX25519 is DHKEM(X25519, HKDF-SHA256): 32-byte public keys.
	KEMX25519 uint16 = 0x0020
	// KEMMLKEM768X25519 is the ML-KEM-768 + X25519 hybrid (X-Wing),
	// hpke.MLKEM768X25519: 1216-byte public keys, post-quantum.
	KEMMLKEM768X25519 uint16 = 0x647a
)

// deliveryLabel starts the HPKE info of a delivered DEK.
const deliveryLabel = "strongroom dek delivery v1"

// ErrKEM: the KEM id is not one a DEK may be delivered to.
var ErrKEM = errors.New("envelope: unsupported HPKE KEM")

// ErrPublicKey: the public key is not a valid key of the KEM.
var ErrPublicKey = errors.New("envelope: invalid HPKE public key")

// CheckKEM reports whether a DEK may be delivered to keys of KEM id: nil
// for KEMX25519 and KEMMLKEM768X25519, ErrKEM for anything else (other
// KEMs that crypto/hpke supports included).
func CheckKEM(id uint16) error {
	if id != KEMX25519 && id != KEMMLKEM768X25519 {
		return reason.New(ErrKEM, "unsupported HPKE KEM %#04x: use %#04x (DHKEM X25519) or %#04x (ML-KEM-768+X25519)",
			id, KEMX25519, KEMMLKEM768X25519)
	}
	return nil
}

// kem returns the KEM for an allowed id.
func kem(id uint16) (hpke.KEM, error) {
	if err := CheckKEM(id); err != nil {
		return nil, err
	}
	return hpke.NewKEM(id)
}

// publicKey parses a client's public key of the allowed KEM kemID: ErrKEM
// for another KEM, ErrPublicKey for a key that does not parse.
func publicKey(kemID uint16, b []byte) (hpke.PublicKey, error) {
	k, err := kem(kemID)
	if err != nil {
		return nil, err
	}
	pub, err := k.NewPublicKey(b)
	if err != nil {
		return nil, reason.New(ErrPublicKey, "the public key is not a valid key of KEM %#04x (%d bytes)", kemID, len(b))
	}
	return pub, nil
}

// info is the HPKE info of a DEK delivered for the key h names.
func info(h Header) ([]byte, error) {
	hb, err := h.Marshal()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(deliveryLabel)+len(hb))
	out = append(out, byte(len(deliveryLabel)))
	out = append(out, deliveryLabel...)
	return append(out, hb...), nil
}

// SealDEK seals dek, the DEK of the key h names, to a client's HPKE public
// key (in the KEM's serialization) for one-shot HPKE base mode (RFC 9180):
// the KEM kemID (KEMX25519 or KEMMLKEM768X25519; anything else is ErrKEM),
// HKDF-SHA256, AES-256-GCM, info = u8<"strongroom dek delivery v1"> ||
// h's header bytes, no associated data. It returns enc || ciphertext as
// hpke.Seal does: the encapsulated key (32 bytes for X25519, 1120 for the
// hybrid), then the 32-byte DEK sealed with its 16-byte tag.
func SealDEK(kemID uint16, pubKey []byte, h Header, dek secret.Key) ([]byte, error) {
	if err := CheckKEM(kemID); err != nil {
		return nil, err
	}
	in, err := info(h)
	if err != nil {
		return nil, err
	}
	if dek.IsZero() {
		return nil, errors.New("envelope: SealDEK of an empty key")
	}
	pub, err := publicKey(kemID, pubKey)
	if err != nil {
		return nil, err
	}
	sealed, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), in, dek.Bytes())
	if err != nil {
		// Encapsulation is all that can fail here: e.g. an X25519 share
		// that is a low-order point, which NewPublicKey accepts.
		return nil, reason.Wrap(ErrPublicKey, err, "the public key is not a valid key of KEM %#04x", kemID)
	}
	return sealed, nil
}

// CheckPublicKey refuses, cheaply, a public key that SealDEK would refuse:
// one that does not parse for the KEM, or (X25519) a low-order point, found
// by a trial encapsulation. Callers run it before deriving the DEK.
func CheckPublicKey(kemID uint16, pubKey []byte) error {
	pub, err := publicKey(kemID, pubKey)
	if err != nil {
		return err
	}
	if _, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), nil, nil); err != nil {
		return reason.Wrap(ErrPublicKey, err, "the public key is not a valid key of KEM %#04x", kemID)
	}
	return nil
}

// OpenDEK is the client's half of SealDEK: it opens a DEK sealed to priv, a
// key of the KEM kemID, for the key h names. h must be the header the client
// asked for (tenant, type and the version the server answered with): a DEK
// sealed for another key does not open. Every failure to open is ErrDecrypt.
func OpenDEK(priv hpke.PrivateKey, kemID uint16, h Header, sealed []byte) (secret.Key, error) {
	if _, err := kem(kemID); err != nil {
		return secret.Key{}, err
	}
	if priv == nil || priv.KEM().ID() != kemID {
		return secret.Key{}, fmt.Errorf("%w: the private key is not a key of KEM %#04x", ErrKEM, kemID)
	}
	in, err := info(h)
	if err != nil {
		return secret.Key{}, err
	}
	pt, err := hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), in, sealed)
	if err != nil {
		return secret.Key{}, ErrDecrypt
	}
	defer clear(pt)
	if len(pt) != secret.Size {
		return secret.Key{}, ErrDecrypt
	}
	return secret.New(pt)
}

// batchLabel is the HPKE info of a batch of delivered DEKs.
const batchLabel = "strongroom dek batch v1"

// batchInfo is the HPKE info of a batch: u8<batchLabel>.
func batchInfo() []byte { return append([]byte{byte(len(batchLabel))}, batchLabel...) }

// MaxBatchDEKs bounds the DEKs of one batch (SealDEKs, OpenDEKs).
const MaxBatchDEKs = 64

// batchAAD is the associated data of the DEK of the key h names, in a batch.
func batchAAD(h Header) ([]byte, error) { return h.Marshal() }

// SealDEKs seals several DEKs to one client's HPKE public key with a single
// encapsulation: one HPKE base-mode context (RFC 9180, section 5) of the
// KEM kemID, HKDF-SHA256 and AES-256-GCM, with info = u8<"strongroom dek
// batch v1">, and one Seal per DEK, in order (the context's sequence
// numbers 0, 1, 2...), whose associated data is the header bytes of the key
// hs[i] names. deks[i] is the DEK of that key. It returns enc (32 bytes for
// X25519, 1120 for the hybrid) and the sealed DEKs (48 bytes each: the DEK
// and its tag). The encapsulation is the costly part (two X25519 scalar
// multiplications), paid once for the batch instead of once per DEK.
//
// A DEK opens only at its place in the batch, under its own header: the
// client opens them in order (OpenDEKs).
func SealDEKs(kemID uint16, publicKey []byte, hs []Header, deks []secret.Key) (enc []byte, sealed [][]byte, err error) {
	s, enc, err := NewDEKSealer(kemID, publicKey)
	if err != nil {
		return nil, nil, err
	}
	if len(hs) != len(deks) {
		return nil, nil, fmt.Errorf("envelope: SealDEKs of %d headers and %d DEKs", len(hs), len(deks))
	}
	sealed = make([][]byte, len(hs))
	for i := range hs {
		if sealed[i], err = s.Seal(hs[i], deks[i]); err != nil {
			return nil, nil, err
		}
	}
	return enc, sealed, nil
}

// DEKSealer seals the DEKs of a batch in order, after the one encapsulation
// NewDEKSealer made: SealDEKs, for a caller that learns the DEKs one at a
// time (and refuses some), so that it encapsulates before it derives any.
// It is not safe for concurrent use.
type DEKSealer struct {
	s *hpke.Sender
	n int
}

// NewDEKSealer encapsulates to a client's public key of KEM kemID for a
// batch (SealDEKs) and returns the sealer and enc. A public key the KEM
// refuses, or an X25519 share that is a low-order point, is ErrPublicKey.
func NewDEKSealer(kemID uint16, pubKey []byte) (*DEKSealer, []byte, error) {
	pub, err := publicKey(kemID, pubKey)
	if err != nil {
		return nil, nil, err
	}
	enc, s, err := hpke.NewSender(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), batchInfo())
	if err != nil {
		return nil, nil, reason.Wrap(ErrPublicKey, err, "the public key is not a valid key of KEM %#04x", kemID)
	}
	return &DEKSealer{s: s}, enc, nil
}

// Seal seals the next DEK of the batch, dek, the DEK of the key h names.
func (d *DEKSealer) Seal(h Header, dek secret.Key) ([]byte, error) {
	if dek.IsZero() {
		return nil, errors.New("envelope: SealDEKs of an empty key")
	}
	if d.n == MaxBatchDEKs {
		return nil, fmt.Errorf("envelope: a batch holds at most %d DEKs", MaxBatchDEKs)
	}
	aad, err := batchAAD(h)
	if err != nil {
		return nil, err
	}
	ct, err := d.s.Seal(aad, dek.Bytes())
	if err != nil {
		return nil, fmt.Errorf("envelope: sealing DEK %d of a batch: %w", d.n, err)
	}
	d.n++
	return ct, nil
}

// OpenDEKs is the client's half of SealDEKs: it opens the DEKs of a batch
// sealed to priv, a key of the KEM kemID, with enc, where sealed[i] is the
// DEK of the key hs[i] names, at place i. hs must be the headers the client
// rebuilt from the answer (tenant, type, and the version the server
// answered with). Any failure (a DEK out of its place, under another
// header, altered, or as many headers as DEKs not given) is ErrDecrypt, and
// returns no DEK. A batch whose last DEKs were cut off opens as the shorter
// batch: the caller checks that it has every DEK it asked for.
func OpenDEKs(priv hpke.PrivateKey, kemID uint16, enc []byte, hs []Header, sealed [][]byte) ([]secret.Key, error) {
	if _, err := kem(kemID); err != nil {
		return nil, err
	}
	if priv == nil || priv.KEM().ID() != kemID {
		return nil, fmt.Errorf("%w: the private key is not a key of KEM %#04x", ErrKEM, kemID)
	}
	if len(hs) != len(sealed) || len(sealed) > MaxBatchDEKs {
		return nil, ErrDecrypt
	}
	r, err := hpke.NewRecipient(enc, priv, hpke.HKDFSHA256(), hpke.AES256GCM(), batchInfo())
	if err != nil {
		return nil, ErrDecrypt
	}
	keys := make([]secret.Key, 0, len(sealed))
	fail := func() ([]secret.Key, error) {
		for _, k := range keys {
			k.Destroy()
		}
		return nil, ErrDecrypt
	}
	for i := range sealed {
		aad, err := batchAAD(hs[i])
		if err != nil {
			return fail()
		}
		pt, err := r.Open(aad, sealed[i])
		if err != nil || len(pt) != secret.Size {
			clear(pt)
			return fail()
		}
		k, err := secret.New(pt)
		clear(pt)
		if err != nil {
			return fail()
		}
		keys = append(keys, k)
	}
	return keys, nil
}

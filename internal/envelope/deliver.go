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
func SealDEK(kemID uint16, publicKey []byte, h Header, dek secret.Key) ([]byte, error) {
	k, err := kem(kemID)
	if err != nil {
		return nil, err
	}
	in, err := info(h)
	if err != nil {
		return nil, err
	}
	if dek.IsZero() {
		return nil, errors.New("envelope: SealDEK of an empty key")
	}
	pub, err := k.NewPublicKey(publicKey)
	if err != nil {
		return nil, reason.New(ErrPublicKey, "the public key is not a valid key of KEM %#04x (%d bytes)", kemID, len(publicKey))
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
func CheckPublicKey(kemID uint16, publicKey []byte) error {
	k, err := kem(kemID)
	if err != nil {
		return err
	}
	pub, err := k.NewPublicKey(publicKey)
	if err != nil {
		return reason.New(ErrPublicKey, "the public key is not a valid key of KEM %#04x (%d bytes)", kemID, len(publicKey))
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

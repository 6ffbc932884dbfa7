package primitive

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
)

// isP384 reports whether pub is a P-384 public key.
func isP384(pub *ecdsa.PublicKey) bool {
	return pub != nil && pub.Curve == elliptic.P384()
}

// SignP384 signs the SHA-384 digest of msg with signer, whose public key
// must be an ECDSA P-384 key, and returns an ASN.1 DER signature. rand is
// passed to signer (the standard library's keys use their own randomness
// unless told otherwise; an HSM uses its own).
//
// The signature is verified before it is returned, so that a faulty signer
// (for instance an HSM returning a corrupted or wrongly encoded signature)
// cannot hand out a signature that does not verify.
func SignP384(rand io.Reader, signer crypto.Signer, msg []byte) ([]byte, error) {
	if signer == nil {
		return nil, fmt.Errorf("%w: no signer", ErrParameter)
	}
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || !isP384(pub) {
		return nil, fmt.Errorf("%w: signer key is not ECDSA P-384", ErrParameter)
	}
	digest := sha512.Sum384(msg)
	sig, err := signer.Sign(rand, digest[:], crypto.SHA384)
	if err != nil {
		return nil, err
	}
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return nil, errors.New("primitive: signer returned a signature that does not verify")
	}
	return sig, nil
}

// VerifyP384 reports whether sig is a valid ASN.1 DER ECDSA signature of
// the SHA-384 digest of msg by pub. It returns false for any key that is not
// P-384 and for any signature that is not strict DER (the standard library's
// parser refuses BER forms such as long-form lengths and non-minimal
// integers, and the Wycheproof vectors in the tests check that it does).
func VerifyP384(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if !isP384(pub) {
		return false
	}
	digest := sha512.Sum384(msg)
	return ecdsa.VerifyASN1(pub, digest[:], sig)
}

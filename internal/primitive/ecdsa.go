package primitive

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// halfOrder is n/2 for P-384: signatures are canonical when s ≤ n/2.
var halfOrder = new(big.Int).Rsh(elliptic.P384().Params().N, 1)

// parseDER reads a strict DER ECDSA signature.
func parseDER(sig []byte) (r, s *big.Int, ok bool) {
	r, s = new(big.Int), new(big.Int)
	var inner cryptobyte.String
	in := cryptobyte.String(sig)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return nil, nil, false
	}
	return r, s, true
}

// lowS rewrites a DER signature (r, s) with s > n/2 as (r, n−s), the other
// valid signature of the same message, so that every signature Strongroom
// makes has exactly one encoding.
func lowS(sig []byte) ([]byte, error) {
	r, s, ok := parseDER(sig)
	if !ok {
		return nil, errors.New("primitive: signer returned a signature that is not DER")
	}
	if s.Cmp(halfOrder) <= 0 {
		return sig, nil
	}
	s.Sub(elliptic.P384().Params().N, s)
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}

// isP384 reports whether pub is a P-384 public key.
func isP384(pub *ecdsa.PublicKey) bool {
	return pub != nil && pub.Curve == elliptic.P384()
}

// SignP384 signs the SHA-384 digest of msg with signer, whose public key
// must be an ECDSA P-384 key, and returns an ASN.1 DER signature. rand is
// passed to signer (the standard library's keys use their own randomness
// unless told otherwise; an HSM uses its own).
//
// The signature is normalised to low S (s ≤ n/2), so that it has one
// encoding only (ECDSA signatures are otherwise malleable: (r, n−s) verifies
// too), and verified before it is returned, so that a faulty signer (for
// instance an HSM returning a corrupted or wrongly encoded signature)
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
	if sig, err = lowS(sig); err != nil {
		return nil, err
	}
	if !VerifyP384(pub, msg, sig) {
		return nil, errors.New("primitive: signer returned a signature that does not verify")
	}
	return sig, nil
}

// VerifyP384 reports whether sig is a valid ASN.1 DER ECDSA signature of
// the SHA-384 digest of msg by pub. It returns false for any key that is not
// P-384 and for any signature that is not strict DER (the standard library's
// parser refuses BER forms such as long-form lengths and non-minimal
// integers, and the Wycheproof vectors in the tests check that it does).
// By policy it also refuses high-S signatures (s > n/2): SignP384 makes only
// low-S ones, so each signed file has a single valid encoding.
func VerifyP384(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if !isP384(pub) {
		return false
	}
	_, s, ok := parseDER(sig)
	if !ok || s.Cmp(halfOrder) > 0 {
		return false
	}
	digest := sha512.Sum384(msg)
	return ecdsa.VerifyASN1(pub, digest[:], sig)
}

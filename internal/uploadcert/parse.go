package uploadcert

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/reason"
)

// ErrInvalid: a certificate or certificate request that the parsers
// refuse. Each error of theirs has a reason (internal/reason) that says why.
var ErrInvalid = errors.New("uploadcert: invalid certificate or certificate request")

// Size limits of the parsers' inputs, in bytes.
const (
	MaxCSRSize  = 16 << 10 // ParseCSR
	MaxCertSize = 64 << 10 // ParseSigned (with its chain) and ParseCertificate
)

// PEM block types.
const (
	pemCertificate = "CERTIFICATE"
	pemRequest     = "CERTIFICATE REQUEST"
)

// EncodeCertificate returns der as a PEM "CERTIFICATE" block.
func EncodeCertificate(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

// EncodeCSR returns der as a PEM "CERTIFICATE REQUEST" block.
func EncodeCSR(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemRequest, Bytes: der})
}

// Signed is a CA-signed upload certificate that ParseSigned accepted.
type Signed struct {
	DER       []byte // the certificate (the leaf only, without its chain)
	NotBefore time.Time
	NotAfter  time.Time
}

// ParseSigned checks a certificate that the tenant's CA signed for an upload
// certificate request, and returns it. data is PEM (the certificate, then
// optionally its chain, which is ignored: the KMS neither needs nor checks
// it) or a DER certificate, at most MaxCertSize bytes.
//
// The certificate must be for want (the request's key), must not be a CA,
// must be valid at now, and, if it restricts key usage, must allow key
// encipherment. Its signature is not checked: the tenant trusts its CA, and
// the KMS does not know it. Its subject and extended key usage do not
// matter, but it must have no critical extension that crypto/x509 does not
// understand.
func ParseSigned(data []byte, want *rsa.PublicKey, now time.Time) (Signed, error) {
	if rsaBits(want) == 0 {
		return Signed{}, fmt.Errorf("uploadcert: ParseSigned needs the request's RSA public key")
	}
	ders, err := decode(data, pemCertificate, "certificate", MaxCertSize, true)
	if err != nil {
		return Signed{}, err
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return Signed{}, reason.Wrap(ErrInvalid, err, "not a valid X.509 certificate")
	}
	if !samePublicKey(leaf.PublicKey, want) {
		for i, der := range ders[1:] {
			if c, err := x509.ParseCertificate(der); err == nil && samePublicKey(c.PublicKey, want) {
				return Signed{}, reason.New(ErrInvalid, "the certificate for this upload request's key is certificate %d of %d in the PEM text; "+
					"it must come first, followed by its chain (if any)", i+2, len(ders))
			}
		}
		return Signed{}, reason.New(ErrInvalid, "the certificate's public key is not this upload request's key")
	}
	if leaf.BasicConstraintsValid && leaf.IsCA {
		return Signed{}, reason.New(ErrInvalid, "the certificate is a CA certificate (basic constraints cA true); an upload certificate must not be a CA")
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		return Signed{}, reason.New(ErrInvalid, "the certificate's key usage does not allow keyEncipherment, which RSA-OAEP key uploads need")
	}
	if len(leaf.UnhandledCriticalExtensions) > 0 {
		return Signed{}, reason.New(ErrInvalid, "the certificate has a critical extension that the KMS does not understand (%v)", leaf.UnhandledCriticalExtensions[0])
	}
	if err := checkValidity(leaf, now); err != nil {
		return Signed{}, err
	}
	return Signed{DER: bytes.Clone(ders[0]), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}, nil
}

func checkValidity(c *x509.Certificate, now time.Time) error {
	const layout = time.RFC3339
	switch {
	case !c.NotAfter.After(c.NotBefore):
		return reason.New(ErrInvalid, "the certificate's validity ends (%s) before it begins (%s)",
			c.NotAfter.Format(layout), c.NotBefore.Format(layout))
	case now.Before(c.NotBefore):
		return reason.New(ErrInvalid, "the certificate is not valid until %s (it is now %s)",
			c.NotBefore.Format(layout), now.UTC().Format(layout))
	case now.After(c.NotAfter):
		return reason.New(ErrInvalid, "the certificate expired on %s", c.NotAfter.Format(layout))
	}
	return nil
}

// samePublicKey reports whether pub is an RSA key with want's modulus and
// exponent.
func samePublicKey(pub any, want *rsa.PublicKey) bool {
	k, ok := pub.(*rsa.PublicKey)
	return ok && k.N != nil && want.N != nil && k.E == want.E && k.N.Cmp(want.N) == 0
}

// ParseCertificate parses an upload certificate (PEM or DER, one
// certificate, at most MaxCertSize bytes) whose key is RSA-4096. It checks
// neither its signature nor its validity.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	ders, err := decode(data, pemCertificate, "certificate", MaxCertSize, false)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, reason.Wrap(ErrInvalid, err, "not a valid X.509 certificate")
	}
	if err := checkPublicKey("certificate", c.PublicKey); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseCSR parses a certificate request made by Request (PEM
// "CERTIFICATE REQUEST" or DER, at most MaxCSRSize bytes): its key must be
// RSA-4096 and its signature a valid SHA256WithRSAPSS one.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	ders, err := decode(data, pemRequest, "certificate request", MaxCSRSize, false)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(ders[0])
	if err != nil {
		return nil, reason.Wrap(ErrInvalid, err, "not a valid PKCS#10 certificate request")
	}
	if csr.SignatureAlgorithm != x509.SHA256WithRSAPSS {
		return nil, reason.New(ErrInvalid, "the certificate request is signed with %v, not %v", csr.SignatureAlgorithm, x509.SHA256WithRSAPSS)
	}
	if err := checkPublicKey("certificate request", csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, reason.Wrap(ErrInvalid, err, "the certificate request's signature does not verify")
	}
	return csr, nil
}

func checkPublicKey(what string, pub any) error {
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return reason.New(ErrInvalid, "the %s's key is %s, not RSA-%d", what, keyKind(pub), hsm.RSABits)
	}
	if bits := rsaBits(k); bits != hsm.RSABits {
		return reason.New(ErrInvalid, "the %s's key is RSA-%d, not RSA-%d", what, bits, hsm.RSABits)
	}
	return nil
}

// decode returns the DER objects in data: data itself if it starts like
// DER (a SEQUENCE), else the contents of its PEM blocks, which must all be
// of type typ and without headers, with nothing but white space after the
// last one. Unless many, there must be exactly one block.
func decode(data []byte, typ, what string, max int, many bool) ([][]byte, error) {
	switch {
	case len(data) == 0:
		return nil, reason.New(ErrInvalid, "the %s is empty", what)
	case len(data) > max:
		return nil, reason.New(ErrInvalid, "the %s is %d bytes, more than the %d allowed", what, len(data), max)
	case data[0] == 0x30: // DER SEQUENCE
		return [][]byte{data}, nil
	}
	var ders [][]byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != typ {
			return nil, reason.New(ErrInvalid, "found a PEM %q block where a %q block (the %s) was expected", b.Type, typ, what)
		}
		if len(b.Headers) != 0 {
			return nil, reason.New(ErrInvalid, "the PEM %q block has headers; it must have none", typ)
		}
		ders = append(ders, b.Bytes)
	}
	switch {
	case len(ders) == 0:
		return nil, reason.New(ErrInvalid, "not a %s: no PEM %q block, and not DER", what, typ)
	case bytes.Count(data, []byte("-----BEGIN")) != len(ders):
		// pem.Decode skips malformed blocks as if they were text.
		return nil, reason.New(ErrInvalid, "the %s has a malformed PEM block", what)
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, reason.New(ErrInvalid, "unexpected data after the PEM %q block", typ)
	case len(ders) > 1 && !many:
		return nil, reason.New(ErrInvalid, "found %d PEM %q blocks; want exactly one", len(ders), typ)
	}
	return ders, nil
}

// keyKind names the kind of a public key, for messages.
func keyKind(pub any) string {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdh.PublicKey:
		return "ECDH"
	}
	return "of an unknown kind"
}

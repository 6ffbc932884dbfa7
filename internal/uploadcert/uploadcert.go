package uploadcert

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// Subject names an upload certificate (see the package documentation for
// how it maps to the X.509 subject).
type Subject struct {
	TenantID   string // serialNumber: X.520 PrintableString, 1 to 64 characters
	TenantName string // OU: 1 to 64 characters
	CertID     string // in CN "Strongroom upload certificate <CertID>", at most 64 characters in all
	Region     string // L: at most 128 characters; optional
}

// cnPrefix starts the common name of upload certificates.
const cnPrefix = "Strongroom upload certificate "

// X.520 upper bounds, in characters.
const (
	ubName     = 64  // CN, O, OU, serialNumber
	ubLocality = 128 // L
)

// name checks s and returns the X.509 name it stands for.
func (s Subject) name() (pkix.Name, error) {
	cn := cnPrefix + s.CertID
	for _, f := range []struct {
		what, v  string
		max      int
		optional bool
	}{
		{"tenant ID", s.TenantID, ubName, false},
		{"tenant name", s.TenantName, ubName, false},
		{"certificate ID", s.CertID, ubName - len(cnPrefix), false},
		{"region", s.Region, ubLocality, true},
	} {
		if err := checkAttr(f.what, f.v, f.max, f.optional); err != nil {
			return pkix.Name{}, err
		}
	}
	if !printable(s.TenantID) {
		return pkix.Name{}, fmt.Errorf("uploadcert: tenant ID %q has characters that an X.520 serialNumber (PrintableString) cannot hold", s.TenantID)
	}
	n := pkix.Name{
		CommonName:         cn,
		Organization:       []string{"Strongroom"},
		OrganizationalUnit: []string{s.TenantName},
		SerialNumber:       s.TenantID,
	}
	if s.Region != "" {
		n.Locality = []string{s.Region}
	}
	return n, nil
}

func checkAttr(what, v string, max int, optional bool) error {
	switch n := utf8.RuneCountInString(v); {
	case v == "" && optional:
		return nil
	case v == "":
		return fmt.Errorf("uploadcert: the subject needs a %s", what)
	case !utf8.ValidString(v):
		return fmt.Errorf("uploadcert: %s %q is not valid UTF-8", what, v)
	case n > max:
		return fmt.Errorf("uploadcert: %s %q is %d characters, at most %d fit in a certificate subject", what, v, n, max)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("uploadcert: %s %q has a non-printable character %U", what, v, r)
		}
	}
	return nil
}

// printable reports whether s fits an ASN.1 PrintableString.
func printable(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == ' ', c == '\'', c == '(', c == ')', c == '+', c == ',', c == '-', c == '.', c == '/', c == ':', c == '=', c == '?':
		default:
			return false
		}
	}
	return true
}

// Signer adapts key to crypto.Signer, for crypto/x509. Its Sign accepts
// only *rsa.PSSOptions with Hash crypto.SHA256 and SaltLength
// rsa.PSSSaltLengthEqualsHash or 32, over a 32-byte digest, and signs with
// key.SignPSSDigest under ctx; it refuses anything else. The random source
// passed to Sign is ignored: the HSM makes the salt.
func Signer(ctx context.Context, key hsm.EncryptionKey) crypto.Signer {
	return &signer{ctx: ctx, key: key}
}

type signer struct {
	ctx context.Context
	key hsm.EncryptionKey
}

func (s *signer) Public() crypto.PublicKey { return s.key.RSAPublicKey() }

func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	pss, ok := opts.(*rsa.PSSOptions)
	if !ok || pss == nil {
		return nil, fmt.Errorf("uploadcert: HSM key %q signs only RSA-PSS with SHA-256 (*rsa.PSSOptions), not %T", s.key.Label(), opts)
	}
	if pss.Hash != crypto.SHA256 {
		return nil, fmt.Errorf("uploadcert: HSM key %q signs only RSA-PSS with SHA-256, not %v", s.key.Label(), pss.Hash)
	}
	if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != sha256.Size {
		return nil, fmt.Errorf("uploadcert: HSM key %q signs only RSA-PSS with a 32-byte salt, not salt length %d", s.key.Label(), pss.SaltLength)
	}
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("uploadcert: HSM key %q: digest is %d bytes, want a %d-byte SHA-256 digest", s.key.Label(), len(digest), sha256.Size)
	}
	return s.key.SignPSSDigest(s.ctx, digest)
}

// checkKey refuses keys that are not RSA-4096.
func checkKey(key hsm.EncryptionKey) error {
	if bits := rsaBits(key.RSAPublicKey()); bits != hsm.RSABits {
		return fmt.Errorf("uploadcert: HSM key %q is RSA-%d; upload certificates are RSA-%d", key.Label(), bits, hsm.RSABits)
	}
	return nil
}

// rsaBits is the size of pub's modulus, or 0.
func rsaBits(pub *rsa.PublicKey) int {
	if pub == nil || pub.N == nil {
		return 0
	}
	return pub.N.BitLen()
}

// serialBits is the size of the random serial number of self-signed
// certificates.
const serialBits = 128

// SelfSigned returns a DER X.509 v3 certificate for key with subject s,
// self-signed by key with RSA-PSS (SHA256WithRSAPSS), valid from notBefore
// to notAfter (both truncated to the second, as X.509 encodes them). It has
// a random positive 128-bit serial number, is not a CA (critical basic
// constraints, cA false), and allows key encipherment only (critical key
// usage).
func SelfSigned(ctx context.Context, key hsm.EncryptionKey, s Subject, notBefore, notAfter time.Time) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	name, err := s.name()
	if err != nil {
		return nil, err
	}
	notBefore, notAfter = notBefore.UTC().Truncate(time.Second), notAfter.UTC().Truncate(time.Second)
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("uploadcert: the validity ends (%s) before it begins (%s)",
			notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SignatureAlgorithm:    x509.SHA256WithRSAPSS,
	}
	// crypto/x509 verifies the signature it gets from the signer.
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.RSAPublicKey(), Signer(ctx, key))
	if err != nil {
		return nil, fmt.Errorf("uploadcert: self-signing the certificate with HSM key %q: %w", key.Label(), err)
	}
	return der, nil
}

func randomSerial() (*big.Int, error) {
	b := make([]byte, serialBits/8)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
}

// Requested extensions of certificate requests (PKCS#9 extensionRequest):
// what a CA that copies them puts in the certificate.
var (
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	// keyEncipherment only: BIT STRING, 5 unused bits, 0b00100000.
	keyUsageKeyEncipherment = []byte{0x03, 0x02, 0x05, 0x20}
	// cA false (the default, hence omitted): an empty SEQUENCE.
	basicConstraintsNotCA = []byte{0x30, 0x00}
)

// Request returns a DER PKCS#10 certificate request for key with subject s,
// signed by key with RSA-PSS (SHA256WithRSAPSS). It asks for the extensions
// of SelfSigned: key usage keyEncipherment only and basic constraints cA
// false, both critical.
func Request(ctx context.Context, key hsm.EncryptionKey, s Subject) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	name, err := s.name()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		Subject:            name,
		SignatureAlgorithm: x509.SHA256WithRSAPSS,
		ExtraExtensions: []pkix.Extension{
			{Id: oidKeyUsage, Critical: true, Value: keyUsageKeyEncipherment},
			{Id: oidBasicConstraints, Critical: true, Value: basicConstraintsNotCA},
		},
	}
	// crypto/x509 verifies the signature it gets from the signer.
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, Signer(ctx, key))
	if err != nil {
		return nil, fmt.Errorf("uploadcert: signing the certificate request with HSM key %q: %w", key.Label(), err)
	}
	return der, nil
}

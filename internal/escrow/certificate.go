package escrow

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// CertificatePEMType is the PEM type of an escrow certificate.
const CertificatePEMType = "STRONGROOM ESCROW CERTIFICATE"

const certificateDomain = "strongroom escrow certificate v1"

// DefaultValidity is how long an escrow certificate is valid by default.
const DefaultValidity = enroll.DefaultValidity

// Certificate binds an escrow's name to its signing key, signed by the
// primary signing key.
type Certificate struct {
	Serial    [16]byte
	Name      string
	Signing   *ecdsa.PublicKey
	NotBefore time.Time
	NotAfter  time.Time
	Issuer    sign.KeyID // the primary signing key
	Request   [32]byte   // SHA-256 of the enrollment request it answers

	body, sig []byte
	raw       []byte
}

// KeyID identifies the certified escrow signing key.
func (c *Certificate) KeyID() sign.KeyID {
	id, _ := sign.KeyIDOf(c.Signing)
	return id
}

// Raw is the certificate's binary encoding (the PEM body, and what answers
// embed).
func (c *Certificate) Raw() []byte { return c.raw }

func (c *Certificate) marshalBody() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(formatVersion)
	b.AddBytes(c.Serial[:])
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.Name)) })
	sign.AddKey(&b, c.Signing)
	b.AddUint64(uint64(c.NotBefore.Unix()))
	b.AddUint64(uint64(c.NotAfter.Unix()))
	b.AddBytes(c.Issuer[:])
	b.AddBytes(c.Request[:])
	return b.Bytes()
}

// CertifyOptions tune Certify.
type CertifyOptions struct {
	Now      time.Time     // default time.Now()
	Validity time.Duration // default DefaultValidity
}

// Certify signs an escrow certificate for req (already verified by
// ParseRequest) with the primary signing key. It returns the PEM file.
func Certify(ctx context.Context, primarySigner hsm.SigningKey, req *Request, opts CertifyOptions) ([]byte, *Certificate, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultValidity
	}
	if opts.Validity < 0 {
		return nil, nil, errors.New("escrow: validity must be positive")
	}
	if req == nil || req.Signing == nil || len(req.raw) == 0 {
		return nil, nil, errors.New("escrow: the request must be read from its file (escrow.ParseRequest)")
	}
	if req.Signing.Equal(primarySigner.ECDSAPublicKey()) {
		return nil, nil, errors.New("escrow: the request is for the primary signing key itself; an escrow needs a key of its own")
	}
	c := &Certificate{
		Name:      req.Name,
		Signing:   req.Signing,
		NotBefore: opts.Now.UTC().Truncate(time.Second),
		Request:   req.Digest(),
	}
	c.NotAfter = c.NotBefore.Add(opts.Validity)
	var err error
	if c.Issuer, err = sign.KeyIDOf(primarySigner.ECDSAPublicKey()); err != nil {
		return nil, nil, err
	}
	if _, err := rand.Read(c.Serial[:]); err != nil {
		return nil, nil, err
	}
	if c.body, err = c.marshalBody(); err != nil {
		return nil, nil, err
	}
	if c.raw, c.sig, err = sign.Append(primarySigner, certificateDomain, c.body); err != nil {
		return nil, nil, fmt.Errorf("escrow: sign the certificate: %w", err)
	}
	return encodePEM(CertificatePEMType, c.raw), c, nil
}

// ParseCertificate decodes an escrow certificate. It checks structure only:
// call Verify before trusting it.
func ParseCertificate(data []byte) (*Certificate, error) {
	der, err := decodePEM(data, CertificatePEMType)
	if err != nil {
		return nil, err
	}
	return ParseCertificateDER(der)
}

// ParseCertificateDER decodes the binary form (as embedded in answers).
func ParseCertificateDER(der []byte) (*Certificate, error) {
	s := cryptobyte.String(der)
	var version uint8
	if !s.ReadUint8(&version) {
		return nil, errTruncated
	}
	if version != formatVersion {
		return nil, fmt.Errorf("escrow: certificate version %d is not supported (want %d)", version, formatVersion)
	}
	c := &Certificate{raw: append([]byte(nil), der...)}
	var name cryptobyte.String
	if !s.CopyBytes(c.Serial[:]) || !s.ReadUint8LengthPrefixed(&name) {
		return nil, errTruncated
	}
	c.Name = string(name)
	if err := ValidName(c.Name); err != nil {
		return nil, err
	}
	var err error
	if c.Signing, err = sign.ReadKey(&s); err != nil {
		return nil, err
	}
	var nb, na uint64
	if !s.ReadUint64(&nb) || !s.ReadUint64(&na) || nb > enroll.MaxUnix || na > enroll.MaxUnix ||
		!s.CopyBytes(c.Issuer[:]) || !s.CopyBytes(c.Request[:]) {
		return nil, errTruncated
	}
	if na <= nb {
		return nil, errors.New("escrow: certificate expires before it starts")
	}
	c.NotBefore, c.NotAfter = time.Unix(int64(nb), 0).UTC(), time.Unix(int64(na), 0).UTC()
	c.body = c.raw[:len(der)-len(s)]
	var sig cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
		return nil, errTruncated
	}
	c.sig = []byte(sig)
	return c, nil
}

// Verify checks that the certificate was signed by the primary's signing key
// and is valid at now.
func (c *Certificate) Verify(p *enroll.Primary, now time.Time) error {
	if p == nil || p.Signing == nil {
		return errors.New("escrow: no primary public keys to verify the escrow certificate with")
	}
	if c.Issuer != p.SigningKeyID() {
		issuer, want := c.Issuer.Short(), p.SigningKeyID().Short()
		if issuer == want { // ids that differ after their first 8 bytes: show them whole
			issuer, want = c.Issuer.String(), p.SigningKeyID().String()
		}
		return fmt.Errorf("escrow: certificate of escrow %s was issued by primary signing key %s, not by %s", c.Name, issuer, want)
	}
	if !sign.Verify(p.Signing, certificateDomain, c.body, c.sig) {
		return fmt.Errorf("escrow: certificate of escrow %s: signature does not verify (altered, or not signed by this primary)", c.Name)
	}
	if now.Before(c.NotBefore) || !now.Before(c.NotAfter) {
		return fmt.Errorf("escrow: certificate of escrow %s is valid from %s to %s, not at %s", c.Name,
			c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

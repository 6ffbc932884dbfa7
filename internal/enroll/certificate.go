package enroll

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// CertificatePEMType is the PEM type of a region certificate.
const CertificatePEMType = "STRONGROOM REGION CERTIFICATE"

const certificateDomain = "strongroom region certificate v1"

// DefaultValidity is how long a region certificate is valid by default.
const DefaultValidity = 2 * 365 * 24 * time.Hour

// Certificate binds a region name to its HSM's encryption key, signed by the
// primary signing key.
type Certificate struct {
	Serial     [16]byte
	Region     string
	Encryption *rsa.PublicKey
	// OAEPHashes the primary may encrypt to this region with, best first.
	OAEPHashes []hsm.OAEPHash
	NotBefore  time.Time
	NotAfter   time.Time
	Issuer     sign.KeyID // the primary signing key
	Request    [32]byte   // SHA-256 of the enrollment request it answers

	body, sig []byte
	raw       []byte
}

// KeyID identifies the certified regional encryption key.
func (c *Certificate) KeyID() sign.KeyID {
	id, _ := sign.KeyIDOf(c.Encryption)
	return id
}

// Raw is the certificate's binary encoding (the PEM body).
func (c *Certificate) Raw() []byte { return c.raw }

func (c *Certificate) marshalBody() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(formatVersion)
	b.AddBytes(c.Serial[:])
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.Region)) })
	addRSAKey(&b, c.Encryption)
	addHashes(&b, c.OAEPHashes)
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
	// AllowSHA1 keeps RSA-OAEP with SHA-1 among the certified hashes. It is
	// needed for regional HSMs that lack SHA-256 (SoftHSM2 2.6), or when the
	// primary HSM can wrap only with SHA-1. Without it SHA-1 is dropped.
	AllowSHA1 bool
}

// Certify checks req (already verified by ParseRequest) and signs a region
// certificate with the primary signing key. It returns the PEM file.
func Certify(ctx context.Context, signer hsm.SigningKey, req *Request, opts CertifyOptions) ([]byte, *Certificate, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultValidity
	}
	if opts.Validity < 0 {
		return nil, nil, errors.New("enroll: validity must be positive")
	}
	var hashes []hsm.OAEPHash
	for _, h := range req.OAEPHashes {
		if h != hsm.OAEPSHA1 || opts.AllowSHA1 {
			hashes = append(hashes, h)
		}
	}
	if len(hashes) == 0 {
		return nil, nil, fmt.Errorf("enroll: the regional HSM of %s supports RSA-OAEP only with SHA-1; accept that explicitly with --allow-sha1-oaep, or use an HSM with OAEP-SHA-256", req.Region)
	}
	c := &Certificate{
		Region:     req.Region,
		Encryption: req.Encryption,
		OAEPHashes: hashes,
		NotBefore:  opts.Now.UTC().Truncate(time.Second),
		Request:    req.Digest(),
	}
	c.NotAfter = c.NotBefore.Add(opts.Validity)
	var err error
	if c.Issuer, err = sign.KeyIDOf(signer.ECDSAPublicKey()); err != nil {
		return nil, nil, err
	}
	if _, err := rand.Read(c.Serial[:]); err != nil {
		return nil, nil, err
	}
	if c.body, err = c.marshalBody(); err != nil {
		return nil, nil, err
	}
	if c.raw, c.sig, err = sign.Append(signer, certificateDomain, c.body); err != nil {
		return nil, nil, fmt.Errorf("enroll: sign the certificate: %w", err)
	}
	return encodePEM(CertificatePEMType, c.raw), c, nil
}

// ParseCertificate decodes a region certificate. It checks structure only:
// call Verify before trusting it.
func ParseCertificate(data []byte) (*Certificate, error) {
	der, err := decodePEM(data, CertificatePEMType)
	if err != nil {
		return nil, err
	}
	return ParseCertificateDER(der)
}

// ParseCertificateDER decodes the binary form (as embedded in other files).
func ParseCertificateDER(der []byte) (*Certificate, error) {
	s := cryptobyte.String(der)
	var version uint8
	if !s.ReadUint8(&version) {
		return nil, errTruncated
	}
	if version != formatVersion {
		return nil, fmt.Errorf("enroll: certificate version %d is not supported (want %d)", version, formatVersion)
	}
	c := &Certificate{raw: append([]byte(nil), der...)}
	if !s.CopyBytes(c.Serial[:]) {
		return nil, errTruncated
	}
	var err error
	if c.Region, err = readRegion(&s); err != nil {
		return nil, err
	}
	if c.Encryption, err = readRSAKey(&s); err != nil {
		return nil, err
	}
	if c.OAEPHashes, err = readHashes(&s); err != nil {
		return nil, err
	}
	var nb, na uint64
	if !s.ReadUint64(&nb) || !s.ReadUint64(&na) || nb > MaxUnix || na > MaxUnix ||
		!s.CopyBytes(c.Issuer[:]) || !s.CopyBytes(c.Request[:]) {
		return nil, errTruncated
	}
	if na <= nb {
		return nil, errors.New("enroll: certificate expires before it starts")
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
// and is valid at now. A primary parsed from its file remembers the
// certificates whose signature verified, and does not check them again.
func (c *Certificate) Verify(p *Primary, now time.Time) error {
	issuer := p.SigningKeyID()
	if c.Issuer != issuer {
		return fmt.Errorf("enroll: certificate for %s was issued by primary signing key %s, not by %s", c.Region, c.Issuer.Short(), issuer.Short())
	}
	if d := certDigest(issuer, c.body, c.sig); !p.certs.verified(d) {
		if !sign.Verify(p.Signing, certificateDomain, c.body, c.sig) {
			return fmt.Errorf("enroll: certificate for %s: signature does not verify (altered, or not signed by this primary)", c.Region)
		}
		p.certs.remember(d)
	}
	if now.Before(c.NotBefore) || !now.Before(c.NotAfter) {
		return fmt.Errorf("enroll: certificate for %s is valid from %s to %s, not at %s", c.Region,
			c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

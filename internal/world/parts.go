package world

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/officer"
)

// Primary is an initialized primary HSM.
type Primary struct {
	HSM     hsm.HSM
	PEM     []byte          // the public keys file (primary.pub)
	Public  *enroll.Primary // PEM, parsed
	Signing hsm.SigningKey  // the primary signing key, in HSM
}

// NewPrimary initializes h as a primary at time now. The caller keeps h.
func NewPrimary(ctx context.Context, h hsm.HSM, now time.Time) (*Primary, error) {
	data, err := enroll.InitPrimary(ctx, h, now)
	if err != nil {
		return nil, err
	}
	p := &Primary{HSM: h, PEM: data}
	if p.Public, err = enroll.ParsePrimary(data); err != nil {
		return nil, err
	}
	if p.Signing, err = h.SigningKey(ctx, enroll.LabelPrimarySigning); err != nil {
		return nil, err
	}
	return p, nil
}

// Region is a regional HSM enrolled with the world's primary.
type Region struct {
	Name    string
	HSM     hsm.HSM
	Request []byte              // the enrollment request file (NAME.req)
	CertPEM []byte              // the region certificate file (NAME.cert)
	Cert    *enroll.Certificate // CertPEM, parsed as from its file
}

// Enroll adds a region: it opens its HSM, initializes it as region name and
// certifies it at the primary.
func (w *World) Enroll(ctx context.Context, name string) (*Region, error) {
	if w.Regions[name] != nil {
		return nil, fmt.Errorf("world: region %s named twice", name)
	}
	h, err := w.open(ctx, name)
	if err != nil {
		return nil, err
	}
	req, err := enroll.InitRegion(ctx, h, name, w.opts.Now)
	if err != nil {
		return nil, fmt.Errorf("world: region %s: %w", name, err)
	}
	return w.add(ctx, name, h, req)
}

// add certifies the region whose HSM h made the request file req.
func (w *World) add(ctx context.Context, name string, h hsm.HSM, req []byte) (*Region, error) {
	parsed, err := enroll.ParseRequest(req)
	if err != nil {
		return nil, fmt.Errorf("world: region %s: %w", name, err)
	}
	r := &Region{Name: name, HSM: h, Request: req}
	if r.CertPEM, r.Cert, err = w.Certify(ctx, parsed); err != nil {
		return nil, fmt.Errorf("world: region %s: %w", name, err)
	}
	w.Regions[name] = r
	w.regions = append(w.regions, name)
	return r, nil
}

// Certify certifies req at the primary, with the world's time, validity and
// hashes. The certificate is parsed back from its file, as the command line
// reads it.
func (w *World) Certify(ctx context.Context, req *enroll.Request) ([]byte, *enroll.Certificate, error) {
	data, _, err := enroll.Certify(ctx, w.Primary.Signing, req, enroll.CertifyOptions{
		Now: w.opts.Now, Validity: w.opts.Validity, AllowSHA1: w.opts.AllowSHA1,
	})
	if err != nil {
		return nil, nil, err
	}
	cert, err := enroll.ParseCertificate(data)
	if err != nil {
		return nil, nil, err
	}
	return data, cert, nil
}

// Officer is a crypto officer, with the key files and the opened key.
type Officer struct {
	Name      string
	KeyPEM    []byte          // the key file (NAME.key), sealed under the passphrase
	PublicPEM []byte          // the public key file (NAME.pub)
	Public    *officer.Public // PublicPEM, parsed as from its file
	Signer    *officer.Signer // KeyPEM, opened
}

// NewOfficer makes officer name's key, sealed under passphrase, at time now.
func NewOfficer(name string, passphrase []byte, now time.Time) (*Officer, error) {
	key, pub, err := officer.New(name, passphrase, now)
	if err != nil {
		return nil, err
	}
	o := &Officer{Name: name, KeyPEM: key, PublicPEM: pub}
	if o.Public, err = officer.ParsePublic(pub); err != nil {
		return nil, err
	}
	if o.Signer, err = officer.Open(key, passphrase); err != nil {
		return nil, err
	}
	return o, nil
}

// pick returns the parts of m named names; what names their kind in errors.
func pick[T any](what string, m map[string]T, names []string) ([]T, error) {
	out := make([]T, 0, len(names))
	for _, n := range names {
		v, ok := m[n]
		if !ok {
			return nil, fmt.Errorf("world: no %s %s (there are %v)", what, n, slices.Sorted(maps.Keys(m)))
		}
		out = append(out, v)
	}
	return out, nil
}

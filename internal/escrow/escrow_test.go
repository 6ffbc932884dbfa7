package escrow

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

func TestInitCertifyRoundTrip(t *testing.T) {
	f := getFixture(t)
	req, err := ParseRequest(f.request1)
	if err != nil {
		t.Fatalf("ParseRequest() error = %v", err)
	}
	if req.Name != "escrow1" || !req.Signing.Equal(f.escrow1.ECDSAPublicKey()) || !req.Created.Equal(now) {
		t.Errorf("request = name %q created %s, key matches %v", req.Name, req.Created, req.Signing.Equal(f.escrow1.ECDSAPublicKey()))
	}
	cert, err := ParseCertificate(f.cert1PEM)
	if err != nil {
		t.Fatalf("ParseCertificate() error = %v", err)
	}
	if err := cert.Verify(f.primary, now.Add(time.Hour)); err != nil {
		t.Errorf("Verify() error = %v", err)
	}
	if cert.Name != "escrow1" || !cert.Signing.Equal(req.Signing) || cert.Request != req.Digest() ||
		cert.KeyID() != req.KeyID() || cert.Issuer != f.primary.SigningKeyID() {
		t.Error("certificate does not match the request and the primary")
	}
	if !bytes.Equal(cert.Raw(), f.cert1.Raw()) {
		t.Error("ParseCertificate(Certify()).Raw() differs from what Certify made")
	}
	if err := cert.Verify(f.primary, now.Add(-time.Second)); err == nil {
		t.Error("Verify(before NotBefore) error = nil")
	}
	if err := cert.Verify(f.primary, now.Add(DefaultValidity)); err == nil {
		t.Error("Verify(at NotAfter) error = nil")
	}
}

func TestCertificateFromAnotherPrimaryRefused(t *testing.T) {
	f := getFixture(t)
	if err := f.cert2.Verify(f.primary, now); err == nil || !strings.Contains(err.Error(), "issued by primary signing key") {
		t.Errorf("Verify(certificate of another primary) error = %v", err)
	}
	// Even claiming our issuer id does not help: the signature is checked.
	forged := forgeCertificate(t, f.otherSigner, f.primary.SigningKeyID(), "escrow2", f.escrow2)
	if err := forged.Verify(f.primary, now); err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Errorf("Verify(forged issuer) error = %v", err)
	}
}

// forgeCertificate makes a certificate for key naming issuer, signed by signer.
func forgeCertificate(t *testing.T, signer hsm.SigningKey, issuer sign.KeyID, name string, key hsm.SigningKey) *Certificate {
	t.Helper()
	c := &Certificate{Name: name, Signing: key.ECDSAPublicKey(), NotBefore: now, NotAfter: now.Add(time.Hour), Issuer: issuer}
	body, err := c.marshalBody()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := primitive.SignP384(rand.Reader, signer, sign.Message(certificateDomain, body))
	if err != nil {
		t.Fatal(err)
	}
	der := append(append(body, byte(len(sig)>>8), byte(len(sig))), sig...)
	out, err := ParseCertificateDER(der)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInitRefuses(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	if _, err := Init(ctx, f.escrow1HSM, "escrow1", now); !errors.Is(err, ErrInitialized) {
		t.Errorf("Init(initialized) error = %v, want ErrInitialized", err)
	}
	key, err := f.escrow1HSM.SigningKey(ctx, LabelSigning)
	if err != nil || !key.ECDSAPublicKey().Equal(f.escrow1.ECDSAPublicKey()) {
		t.Errorf("a refused Init changed the escrow key (%v)", err)
	}
	if _, err := Init(ctx, f.primaryHSM, "escrow9", now); err == nil || !strings.Contains(err.Error(), "primary signing key") {
		t.Errorf("Init(primary HSM) error = %v, want a refusal", err)
	}
	if _, err := f.primaryHSM.SigningKey(ctx, LabelSigning); !errors.Is(err, hsm.ErrNotFound) {
		t.Errorf("a refused Init created a key in the primary HSM (%v)", err)
	}
	for _, name := range []string{"", "Escrow1", "escrow_1", strings.Repeat("e", 33)} {
		if _, err := Init(ctx, f.escrow1HSM, name, now); err == nil || !strings.Contains(err.Error(), "invalid escrow name") {
			t.Errorf("Init(name %q) error = %v, want an invalid name", name, err)
		}
	}
}

func TestCertifyRefusesThePrimaryKey(t *testing.T) {
	f := getFixture(t)
	r := &Request{Name: "escrow9", Signing: f.primarySigner.ECDSAPublicKey(), Created: now}
	if _, err := signRequest(r, f.primarySigner); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Certify(context.Background(), f.primarySigner, r, CertifyOptions{Now: now}); err == nil {
		t.Error("Certify(request for the primary signing key) error = nil")
	}
	if _, _, err := Certify(context.Background(), f.primarySigner, &Request{Name: "x"}, CertifyOptions{Now: now}); err == nil {
		t.Error("Certify(request not read from a file) error = nil")
	}
}

// everyByteAltered calls check on a copy of der with each byte changed in turn,
// truncated, and with a trailing byte.
func everyByteAltered(t *testing.T, what string, der []byte, flips []byte, check func([]byte) error) {
	t.Helper()
	for i := range der {
		for _, flip := range flips {
			bad := bytes.Clone(der)
			bad[i] ^= flip
			if err := check(bad); err == nil {
				t.Fatalf("%s with byte %d ^ %#x accepted", what, i, flip)
			}
		}
	}
	if err := check(der[:len(der)-1]); err == nil {
		t.Fatalf("truncated %s accepted", what)
	}
	if err := check(append(bytes.Clone(der), 0)); err == nil {
		t.Fatalf("%s with a trailing byte accepted", what)
	}
}

func TestAlteredFilesRefused(t *testing.T) {
	f := getFixture(t)
	der := func(b []byte) []byte { blk, _ := pem.Decode(b); return blk.Bytes }
	everyByteAltered(t, "request", der(f.request1), []byte{0x01, 0x80}, func(b []byte) error {
		_, err := ParseRequest(encodePEM(RequestPEMType, b))
		return err
	})
	everyByteAltered(t, "certificate", der(f.cert1PEM), []byte{0x01, 0x80}, func(b []byte) error {
		c, err := ParseCertificate(encodePEM(CertificatePEMType, b))
		if err != nil {
			return err
		}
		return c.Verify(f.primary, now.Add(time.Hour))
	})
}

func TestWrongFileKinds(t *testing.T) {
	f := getFixture(t)
	if _, err := ParseRequest(f.primaryPub); err == nil || !strings.Contains(err.Error(), RequestPEMType) {
		t.Errorf("ParseRequest(primary.pub) error = %v, want it to name the expected type", err)
	}
	if _, err := ParseCertificate(f.request1); err == nil || !strings.Contains(err.Error(), CertificatePEMType) {
		t.Errorf("ParseCertificate(request) error = %v, want it to name the expected type", err)
	}
	if _, err := ParseCertificate(append(bytes.Clone(f.cert1PEM), "junk"...)); err == nil {
		t.Error("ParseCertificate(trailing junk) error = nil")
	}
}

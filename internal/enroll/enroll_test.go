package enroll

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fixture holds HSMs initialized once per package: RSA-4096 generation is slow.
type fixture struct {
	primary, region, other hsm.HSM
	primaryPub, otherPub   []byte
	request                []byte
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func openSoft(t testing.TB, dir, name string) hsm.HSM {
	t.Helper()
	h, err := soft.Open(context.Background(), filepath.Join(dir, name), []byte("test passphrase"), soft.Options{Create: true})
	if err != nil {
		t.Fatalf("soft.Open() error = %v", err)
	}
	return h
}

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		ctx := context.Background()
		dir, err := tempDir()
		if err != nil {
			fixErr = err
			return
		}
		fix.primary = openSoft(t, dir, "primary")
		fix.region = openSoft(t, dir, "eu1")
		fix.other = openSoft(t, dir, "other")
		if fix.primaryPub, fixErr = InitPrimary(ctx, fix.primary, now); fixErr != nil {
			return
		}
		if fix.otherPub, fixErr = InitPrimary(ctx, fix.other, now); fixErr != nil {
			return
		}
		fix.request, fixErr = InitRegion(ctx, fix.region, "eu1", now)
	})
	if fixErr != nil {
		t.Fatalf("fixture: %v", fixErr)
	}
	return &fix
}

func (f *fixture) certify(t *testing.T, h hsm.HSM, opts CertifyOptions) ([]byte, *Certificate) {
	t.Helper()
	req, err := ParseRequest(f.request)
	if err != nil {
		t.Fatalf("ParseRequest() error = %v", err)
	}
	signer, err := h.SigningKey(context.Background(), LabelPrimarySigning)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Now.IsZero() {
		opts.Now = now
	}
	certPEM, cert, err := Certify(context.Background(), signer, req, opts)
	if err != nil {
		t.Fatalf("Certify() error = %v", err)
	}
	return certPEM, cert
}

func TestEnrollmentRoundTrip(t *testing.T) {
	f := getFixture(t)
	p, err := ParsePrimary(f.primaryPub)
	if err != nil {
		t.Fatalf("ParsePrimary() error = %v", err)
	}
	st, _ := Inspect(context.Background(), f.primary)
	if st.Role() != "primary" || !p.Signing.Equal(st.PrimarySigning.ECDSAPublicKey()) || !p.Encryption.Equal(st.PrimaryEncryption.RSAPublicKey()) {
		t.Fatalf("primary.pub does not hold the HSM's keys (role %q)", st.Role())
	}
	req, err := ParseRequest(f.request)
	if err != nil {
		t.Fatalf("ParseRequest() error = %v", err)
	}
	if req.Region != "eu1" || len(req.OAEPHashes) == 0 || !strings.HasPrefix(req.HSM, "soft") {
		t.Errorf("request = region %q hashes %v hsm %q", req.Region, req.OAEPHashes, req.HSM)
	}
	certPEM, _ := f.certify(t, f.primary, CertifyOptions{})
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatalf("ParseCertificate() error = %v", err)
	}
	if err := cert.Verify(p, now.Add(time.Hour)); err != nil {
		t.Errorf("Verify() error = %v", err)
	}
	if cert.Region != "eu1" || !cert.Encryption.Equal(req.Encryption) || cert.Request != req.Digest() || cert.KeyID() != req.KeyID() {
		t.Error("certificate does not match the request")
	}
	for _, h := range cert.OAEPHashes {
		if h == hsm.OAEPSHA1 {
			t.Error("certificate lists SHA-1 without AllowSHA1")
		}
	}
	if err := cert.Verify(p, now.Add(-time.Minute)); err == nil {
		t.Error("Verify(before NotBefore) error = nil")
	}
	if err := cert.Verify(p, now.Add(DefaultValidity)); err == nil {
		t.Error("Verify(at NotAfter) error = nil")
	}
}

func TestCertificateFromAnotherPrimaryRefused(t *testing.T) {
	f := getFixture(t)
	p, _ := ParsePrimary(f.primaryPub)
	certPEM, _ := f.certify(t, f.other, CertifyOptions{})
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.Verify(p, now); err == nil {
		t.Error("Verify(certificate of another primary) error = nil")
	}
	// Even claiming our issuer id does not help: the signature is checked.
	cert.Issuer = p.SigningKeyID()
	if err := cert.Verify(p, now); err == nil {
		t.Error("Verify(forged issuer) error = nil")
	}
}

// everyByteAltered calls check on a copy of der with each byte changed in turn.
func everyByteAltered(t *testing.T, typ string, der []byte, check func([]byte) error) {
	t.Helper()
	for i := range der {
		for _, flip := range []byte{0x01, 0x80} {
			bad := bytes.Clone(der)
			bad[i] ^= flip
			if err := check(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: bad})); err == nil {
				t.Fatalf("%s with byte %d ^ %#x accepted", typ, i, flip)
			}
		}
	}
	if err := check(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der[:len(der)-1]})); err == nil {
		t.Fatalf("truncated %s accepted", typ)
	}
	if err := check(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: append(bytes.Clone(der), 0)})); err == nil {
		t.Fatalf("%s with a trailing byte accepted", typ)
	}
}

func TestAlteredFilesRefused(t *testing.T) {
	f := getFixture(t)
	p, _ := ParsePrimary(f.primaryPub)
	certPEM, _ := f.certify(t, f.primary, CertifyOptions{})
	der := func(b []byte) []byte { blk, _ := pem.Decode(b); return blk.Bytes }

	everyByteAltered(t, RequestPEMType, der(f.request), func(b []byte) error { _, err := ParseRequest(b); return err })
	everyByteAltered(t, PrimaryPEMType, der(f.primaryPub), func(b []byte) error { _, err := ParsePrimary(b); return err })
	// p remembers the intact certificate's signature first
	// (TestVerifiedCertificatesRemembered): no altered one may pass for it.
	if c, err := ParseCertificate(certPEM); err != nil || c.Verify(p, now.Add(time.Hour)) != nil || len(p.certs.seen) != 1 {
		t.Fatalf("the intact certificate does not verify, or is not remembered: %v", err)
	}
	everyByteAltered(t, CertificatePEMType, der(certPEM), func(b []byte) error {
		c, err := ParseCertificate(b)
		if err != nil {
			return err
		}
		return c.Verify(p, now.Add(time.Hour))
	})
}

func TestWrongFileKinds(t *testing.T) {
	f := getFixture(t)
	if _, err := ParseRequest(f.primaryPub); err == nil || !strings.Contains(err.Error(), RequestPEMType) {
		t.Errorf("ParseRequest(primary.pub) error = %v, want it to name the expected type", err)
	}
	if _, err := ParsePrimary([]byte("not pem")); err == nil {
		t.Error("ParsePrimary(garbage) error = nil")
	}
	if _, err := ParsePrimary(append(bytes.Clone(f.primaryPub), "junk"...)); err == nil {
		t.Error("ParsePrimary(trailing junk) error = nil")
	}
}

func TestInitRefusesInitializedHSM(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	before, _ := Inspect(ctx, f.region)
	if _, err := InitRegion(ctx, f.region, "eu1", now); !errors.Is(err, ErrInitialized) {
		t.Errorf("InitRegion(initialized) error = %v, want ErrInitialized", err)
	}
	if _, err := InitPrimary(ctx, f.region, now); !errors.Is(err, ErrInitialized) {
		t.Errorf("InitPrimary(regional HSM) error = %v, want ErrInitialized", err)
	}
	if _, err := InitPrimary(ctx, f.primary, now); !errors.Is(err, ErrInitialized) {
		t.Errorf("InitPrimary(initialized) error = %v, want ErrInitialized", err)
	}
	after, _ := Inspect(ctx, f.region)
	if after.Role() != "regional" || !after.RegionEncryption.RSAPublicKey().Equal(before.RegionEncryption.RSAPublicKey()) {
		t.Error("a refused init changed the regional key")
	}
}

func TestInvalidRegionNames(t *testing.T) {
	for _, r := range []string{"", "EU1", "1eu", "eu_1", "eu 1", strings.Repeat("a", 33), "eu1\n"} {
		if err := ValidRegion(r); err == nil {
			t.Errorf("ValidRegion(%q) = nil, want an error", r)
		}
	}
	for _, r := range []string{"eu1", "us-east-2", "a"} {
		if err := ValidRegion(r); err != nil {
			t.Errorf("ValidRegion(%q) = %v", r, err)
		}
	}
}

func TestSHA1OnlyRequestNeedsExplicitChoice(t *testing.T) {
	f := getFixture(t)
	req, _ := ParseRequest(f.request)
	req.OAEPHashes = []hsm.OAEPHash{hsm.OAEPSHA1}
	signer, _ := f.primary.SigningKey(context.Background(), LabelPrimarySigning)
	if _, _, err := Certify(context.Background(), signer, req, CertifyOptions{Now: now}); err == nil || !strings.Contains(err.Error(), "--allow-sha1-oaep") {
		t.Errorf("Certify(SHA-1-only request) error = %v, want a refusal naming --allow-sha1-oaep", err)
	}
	_, cert, err := Certify(context.Background(), signer, req, CertifyOptions{Now: now, AllowSHA1: true})
	if err != nil || len(cert.OAEPHashes) != 1 || cert.OAEPHashes[0] != hsm.OAEPSHA1 {
		t.Errorf("Certify(SHA-1-only, AllowSHA1) = %v, %v", cert, err)
	}
}

var fixDir string

func tempDir() (string, error) {
	var err error
	fixDir, err = os.MkdirTemp("", "enroll-test-")
	return fixDir, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

// TestVerifiedCertificatesRemembered: a parsed primary checks a
// certificate's signature once, and what it remembers helps no other
// certificate: every altered byte is still refused, the validity is still
// checked, and a primary whose signing key changed checks afresh.
func TestVerifiedCertificatesRemembered(t *testing.T) {
	f := getFixture(t)
	p, _ := ParsePrimary(f.primaryPub)
	other, _ := ParsePrimary(f.otherPub)
	certPEM, _ := f.certify(t, f.primary, CertifyOptions{})
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := cert.Verify(p, now.Add(time.Hour)); err != nil {
			t.Fatalf("Verify() error = %v", err)
		}
	}
	if len(p.certs.seen) != 1 {
		t.Errorf("%d certificates remembered, want 1", len(p.certs.seen))
	}
	if err := cert.Verify(p, now.Add(DefaultValidity)); err == nil {
		t.Error("Verify(at NotAfter) of a remembered certificate error = nil")
	}
	// Every altered copy of a remembered certificate is refused:
	// TestAlteredFilesRefused, whose primary remembers the intact one.
	// The same certificate, claimed by another signing key: refused.
	forged := *p
	forged.Signing = other.Signing
	cert.Issuer = forged.SigningKeyID()
	if err := cert.Verify(&forged, now.Add(time.Hour)); err == nil {
		t.Error("Verify() by another signing key, sharing what p remembers, error = nil")
	}
	// A primary made by hand remembers nothing, and still verifies.
	cert, _ = ParseCertificate(certPEM)
	if err := cert.Verify(&Primary{Signing: p.Signing}, now.Add(time.Hour)); err != nil {
		t.Errorf("Verify() with an unparsed primary error = %v", err)
	}
}

package enroll

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The seed corpora under testdata/fuzz hold valid files made by
// TestWriteFuzzCorpus (run with STRONGROOM_WRITE_CORPUS=1 to refresh them).

func FuzzParsePrimary(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := parsePrimaryDER(der)
		if err == nil && (p.Encryption == nil || p.Signing == nil) {
			t.Fatal("parsePrimaryDER accepted input without keys")
		}
		ParsePrimary(pem.EncodeToMemory(&pem.Block{Type: PrimaryPEMType, Bytes: der}))
	})
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := parseRequestDER(der)
		if err == nil && (r.Encryption == nil || ValidRegion(r.Region) != nil) {
			t.Fatal("parseRequestDER accepted an invalid request")
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := ParseCertificateDER(der)
		if err != nil {
			return
		}
		if c.Encryption == nil || ValidRegion(c.Region) != nil || !c.NotAfter.After(c.NotBefore) {
			t.Fatal("ParseCertificateDER accepted an invalid certificate")
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("STRONGROOM_WRITE_CORPUS") != "1" {
		t.Skip("set STRONGROOM_WRITE_CORPUS=1 to regenerate the committed fuzz seed corpora")
	}
	f := getFixture(t)
	certPEM, _ := f.certify(t, f.primary, CertifyOptions{})
	der := func(b []byte) []byte { blk, _ := pem.Decode(b); return blk.Bytes }
	for name, data := range map[string][]byte{
		"FuzzParsePrimary":     der(f.primaryPub),
		"FuzzParseRequest":     der(f.request),
		"FuzzParseCertificate": der(certPEM),
	} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, "valid"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package enroll

import (
	"encoding/pem"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
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
	f := getFixture(t)
	certPEM, _ := f.certify(t, f.primary, CertifyOptions{})
	der := func(b []byte) []byte { blk, _ := pem.Decode(b); return blk.Bytes }
	w := fuzzcorpus.New(t)
	w.Add("FuzzParsePrimary", "valid", der(f.primaryPub))
	w.Add("FuzzParseRequest", "valid", der(f.request))
	w.Add("FuzzParseCertificate", "valid", der(certPEM))
}

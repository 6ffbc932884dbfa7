package escrow

import (
	"encoding/pem"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
)

// The seed corpora under testdata/fuzz hold valid files made by
// TestWriteFuzzCorpus (run with STRONGROOM_WRITE_CORPUS=1 to refresh them).

func FuzzParseEscrowRequest(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := parseRequestDER(der)
		if err == nil && (r.Signing == nil || ValidName(r.Name) != nil) {
			t.Fatal("parseRequestDER accepted an invalid request")
		}
		ParseRequest(pem.EncodeToMemory(&pem.Block{Type: RequestPEMType, Bytes: der}))
	})
}

func FuzzParseEscrowCertificate(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := ParseCertificateDER(der)
		if err != nil {
			return
		}
		if c.Signing == nil || ValidName(c.Name) != nil || !c.NotAfter.After(c.NotBefore) {
			t.Fatal("ParseCertificateDER accepted an invalid certificate")
		}
	})
}

func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		a, err := ParseAnswer(der)
		if err != nil {
			return
		}
		if a.Escrow == nil || enroll.ValidRegion(a.Region) != nil || len(a.Nonce) < MinNonce || len(a.Nonce) > MaxNonce {
			t.Fatal("ParseAnswer accepted an invalid answer")
		}
		seen := map[string]bool{}
		for _, e := range a.Entries {
			if !fileNameRE.MatchString(e.Name) || seen[e.Name] || len(e.Bundle) == 0 {
				t.Fatalf("ParseAnswer accepted a bad entry %q", e.Name)
			}
			seen[e.Name] = true
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	fx := getFixture(t)
	der := func(b []byte) []byte { blk, _ := pem.Decode(b); return blk.Bytes }
	nonce := make([]byte, 16)
	answer := craft(t, fx.escrow1, fx.cert1, "eu1", nonce,
		entry("2026-1.eu1.bundle", fakeBundle(t, fx.primarySigner, "2026-1", "eu1")),
		entry("2026-2.eu1.bundle", fakeBundle(t, fx.primarySigner, "2026-2", "eu1")))
	w := fuzzcorpus.New(t)
	w.Add("FuzzParseEscrowRequest", "valid", der(fx.request1))
	w.Add("FuzzParseEscrowCertificate", "valid", der(fx.cert1PEM))
	w.Add("FuzzParseAnswer", "valid", answer)
}

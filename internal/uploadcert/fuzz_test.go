package uploadcert

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
)

// The parsers' fuzz tests. Their seed corpora are in testdata/fuzz, made
// from the sample certificates in testdata by TestWriteFuzzCorpus (run it
// with STRONGROOM_WRITE_CORPUS=1 to make them all afresh) plus a few
// entries found by "go test -fuzz".

// Sample files, and the time at which their certificates are valid.
const (
	selfSignedFile = "testdata/self-signed.pem" // SelfSigned
	requestFile    = "testdata/request.pem"     // Request
	caSignedFile   = "testdata/ca-signed.pem"   // the leaf signed for the request, then its CA
)

var (
	sampleNotBefore = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sampleNotAfter  = time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzNow         = time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
)

// sampleKey returns the key of the sample certificates.
func sampleKey(f testing.TB) *rsa.PublicKey {
	f.Helper()
	c, err := ParseCertificate(readSample(f, selfSignedFile))
	if err != nil {
		f.Fatalf("%s: %v", selfSignedFile, err)
	}
	return c.PublicKey.(*rsa.PublicKey)
}

func readSample(f testing.TB, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// TestSamples checks that the samples are accepted, so that the fuzz tests
// start from inputs that reach the end of the parsers.
func TestSamples(t *testing.T) {
	want := sampleKey(t)
	if _, err := ParseCSR(readSample(t, requestFile)); err != nil {
		t.Errorf("ParseCSR(%s) error = %v", requestFile, err)
	}
	if _, err := ParseSigned(readSample(t, caSignedFile), want, fuzzNow); err != nil {
		t.Errorf("ParseSigned(%s) error = %v", caSignedFile, err)
	}
	if _, err := ParseSigned(readSample(t, caSignedFile), want, sampleNotAfter.Add(time.Second)); err == nil {
		t.Errorf("ParseSigned(%s) after its NotAfter error = nil", caSignedFile)
	}
}

func FuzzParseCSR(f *testing.F) {
	f.Add(readSample(f, requestFile))
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err != nil {
			return
		}
		if len(data) > MaxCSRSize {
			t.Fatalf("ParseCSR accepted %d bytes", len(data))
		}
		if err := checkPublicKey("request", csr.PublicKey); err != nil || csr.CheckSignature() != nil {
			t.Fatalf("ParseCSR accepted a bad request: %v", err)
		}
		// What was accepted is accepted again, as DER and as PEM, the same.
		for _, again := range [][]byte{csr.Raw, EncodeCSR(csr.Raw)} {
			if len(again) > MaxCSRSize {
				continue
			}
			c2, err := ParseCSR(again)
			if err != nil || !bytes.Equal(c2.Raw, csr.Raw) {
				t.Fatalf("ParseCSR(re-encoded) = %v, differs", err)
			}
		}
	})
}

func FuzzParseSigned(f *testing.F) {
	want := sampleKey(f)
	f.Add(readSample(f, caSignedFile))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseSigned(data, want, fuzzNow)
		if err != nil {
			return
		}
		if len(data) > MaxCertSize {
			t.Fatalf("ParseSigned accepted %d bytes", len(data))
		}
		x, err := x509.ParseCertificate(c.DER)
		switch {
		case err != nil:
			t.Fatalf("ParseSigned returned DER that does not parse: %v", err)
		case !want.Equal(x.PublicKey):
			t.Fatal("ParseSigned accepted a certificate for another key")
		case x.BasicConstraintsValid && x.IsCA:
			t.Fatal("ParseSigned accepted a CA certificate")
		case fuzzNow.Before(x.NotBefore) || fuzzNow.After(x.NotAfter):
			t.Fatal("ParseSigned accepted a certificate that is not valid now")
		case !x.NotBefore.Equal(c.NotBefore) || !x.NotAfter.Equal(c.NotAfter):
			t.Fatal("ParseSigned returned another validity than the certificate's")
		}
		for _, again := range [][]byte{c.DER, EncodeCertificate(c.DER)} {
			if len(again) > MaxCertSize {
				continue
			}
			c2, err := ParseSigned(again, want, fuzzNow)
			if err != nil || !bytes.Equal(c2.DER, c.DER) || !c2.NotBefore.Equal(c.NotBefore) || !c2.NotAfter.Equal(c.NotAfter) {
				t.Fatalf("ParseSigned(re-encoded) = %v, differs", err)
			}
		}
		if pc, err := ParseCertificate(c.DER); err != nil || !bytes.Equal(pc.Raw, c.DER) {
			t.Fatalf("ParseCertificate(ParseSigned's DER) = %v", err)
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	f.Add(readSample(f, selfSignedFile))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCertificate(data)
		if err != nil {
			return
		}
		if len(data) > MaxCertSize {
			t.Fatalf("ParseCertificate accepted %d bytes", len(data))
		}
		if err := checkPublicKey("certificate", c.PublicKey); err != nil {
			t.Fatalf("ParseCertificate accepted a bad key: %v", err)
		}
		for _, again := range [][]byte{c.Raw, EncodeCertificate(c.Raw)} {
			if len(again) > MaxCertSize {
				continue
			}
			c2, err := ParseCertificate(again)
			if err != nil || !bytes.Equal(c2.Raw, c.Raw) {
				t.Fatalf("ParseCertificate(re-encoded) = %v, differs", err)
			}
		}
	})
}

// TestWriteFuzzCorpus writes the seed corpora, with a fresh key, and when
// regenerating the sample files too.
func TestWriteFuzzCorpus(t *testing.T) {
	key, _ := keys(t)
	ctx := context.Background()
	self, err := SelfSigned(ctx, key, testSubject, sampleNotBefore, sampleNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := Request(ctx, key, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	ca := newCA(t)
	leaf := ca.sign(t, key.RSAPublicKey(), func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = sampleNotBefore, sampleNotAfter
	})
	caSigned := append(EncodeCertificate(leaf), EncodeCertificate(ca.cert.Raw)...)
	w := fuzzcorpus.New(t)
	if w.Regenerating() {
		for name, data := range map[string][]byte{
			selfSignedFile: EncodeCertificate(self),
			requestFile:    EncodeCSR(csr),
			caSignedFile:   caSigned,
		} {
			if err := os.WriteFile(name, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	text := []byte("Certificate:\n    Data: (explanatory text)\n")
	seeds := map[string][][]byte{
		"FuzzParseCSR": {
			csr, EncodeCSR(csr), append(EncodeCSR(csr), " \n"...), append(bytes.Clone(text), EncodeCSR(csr)...),
			csr[:len(csr)/2], append(EncodeCSR(csr), EncodeCSR(csr)...), EncodeCertificate(csr),
		},
		"FuzzParseSigned": {
			leaf, EncodeCertificate(leaf), caSigned, append(bytes.Clone(text), caSigned...),
			append(EncodeCertificate(ca.cert.Raw), EncodeCertificate(leaf)...), self, ca.cert.Raw,
			append(EncodeCertificate(leaf), "-----BEGIN CERTIFICATE-----\n"...), EncodeCSR(leaf),
		},
		"FuzzParseCertificate": {
			self, EncodeCertificate(self), leaf, ca.cert.Raw, caSigned, append(bytes.Clone(text), EncodeCertificate(self)...),
			self[:len(self)-1], append(bytes.Clone(self), 0),
		},
	}
	for fuzz, entries := range seeds {
		for _, e := range entries {
			h := sha256.Sum256(e)
			w.Add(fuzz, "seed-"+hex.EncodeToString(h[:8]), e)
		}
	}
}

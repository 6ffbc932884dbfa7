package officer

import (
	"bytes"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
)

// The seed corpora under testdata/fuzz hold valid files made by
// TestWriteFuzzCorpus (run with STRONGROOM_WRITE_CORPUS=1 to refresh them).
// The key file in them is sealed under fuzzPassphrase with the cheap KDF.

var fuzzPassphrase = []byte("fuzz passphrase")

func FuzzParsePublic(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := ParsePublicDER(der)
		if err != nil {
			return
		}
		if ValidName(p.Name) != nil || checkKey(p.Key) != nil || !bytes.Equal(p.Marshal(), der) {
			t.Fatal("ParsePublicDER accepted an invalid public key")
		}
		if _, err := ParsePublic(p.PEM()); err != nil {
			t.Fatalf("ParsePublic(PEM()) error = %v", err)
		}
	})
}

// FuzzOpenKeyFile fuzzes the key file's structure. Since a fuzzer cannot
// forge SHA-256, the checksum is recomputed before opening, so that the
// passphrase check, AES-GCM and the public key comparison run too (only for
// files with the cheap test KDF, to keep each run fast).
func FuzzOpenKeyFile(f *testing.F) {
	f.Add([]byte(keyMagic))
	f.Fuzz(func(t *testing.T, der []byte) {
		k, err := parseKeyFile(der)
		if err != nil {
			return
		}
		if !bytes.Equal(k.marshal(), der) || ValidName(k.name) != nil || !k.kdf.valid() {
			t.Fatal("parseKeyFile accepted a key file that does not round-trip")
		}
		if k.kdf.logN > testKDF.logN || k.kdf.r > testKDF.r || k.kdf.p > testKDF.p {
			return
		}
		k.checksum = k.sum()
		s, err := openDER(k.marshal(), fuzzPassphrase)
		if err != nil {
			return
		}
		defer s.Destroy()
		if !s.Public().Key.Equal(k.pub) || s.Public().Name != k.name {
			t.Fatal("openDER returned a signer for another identity")
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	keyPEM, pubPEM, err := newWithKDF("alice", fuzzPassphrase, now, testKDF)
	if err != nil {
		t.Fatal(err)
	}
	w := fuzzcorpus.New(t)
	w.Add("FuzzParsePublic", "valid", der(pubPEM))
	w.Add("FuzzOpenKeyFile", "valid", der(keyPEM))
}

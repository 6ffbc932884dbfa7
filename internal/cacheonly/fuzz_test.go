package cacheonly_test

import (
	"crypto"
	"errors"
	"io"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// FuzzOpen: no answer makes Open panic or accept anything without a key
// that decrypts it (the recipient here refuses every decryption).
func FuzzOpen(f *testing.F) {
	f.Add([]byte("eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIiwia2lkIjoiayIsImp0aSI6Im4ifQ.AAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"))
	f.Add([]byte("a.b.c.d.e"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := cacheonly.Open(b, refuser{}, hsm.OAEPSHA256, "k", "n"); err == nil {
			k.Destroy()
			t.Fatalf("Open(%q) succeeded with a recipient that decrypts nothing", b)
		}
	})
}

// refuser is a recipient key that decrypts nothing.
type refuser struct{}

func (refuser) Public() crypto.PublicKey { return nil }
func (refuser) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, errors.New("refused")
}

func TestWriteFuzzCorpus(t *testing.T) {
	fuzzcorpus.New(t).Add("FuzzOpen", "header-only",
		[]byte("eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIiwia2lkIjoiayIsImp0aSI6Im4ifQ.AAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"))
}

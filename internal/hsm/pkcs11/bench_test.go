//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// The benchmarks measure one operation at a time through the session pool,
// round trip to the module included. Key generation is outside the loop.

func BenchmarkSign(b *testing.B) {
	h, _ := openTestHSM(b, "bench-sign")
	sk, err := h.GenerateSigningKey(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	d := sha512.Sum384([]byte("benchmark"))
	for b.Loop() {
		if _, err := sk.Sign(rand.Reader, d[:], crypto.SHA384); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptOAEP(b *testing.B) {
	h, _ := openTestHSM(b, "bench-oaep")
	ek, err := h.GenerateEncryptionKey(context.Background(), "bench", hsm.UseDecrypt)
	if err != nil {
		b.Fatal(err)
	}
	oh := h.Info().OAEPHashes[0]
	b.Logf("RSA-%d, OAEP with %v", hsm.RSABits, oh)
	ct, err := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, ek.RSAPublicKey(), make([]byte, 32), nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ek.Decrypt(nil, ct, oh.Options()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrap is a context-bound wrap: derive the KEK, wrap, destroy it.
func BenchmarkWrap(b *testing.B) {
	h, _ := openTestHSM(b, "bench-wrap")
	ctx := context.Background()
	w, err := h.GenerateSecretKey(ctx, hsm.KeySpec{Label: "bench-wrapping", Exportable: true})
	if err != nil {
		b.Fatal(err)
	}
	k, err := h.GenerateSecretKey(ctx, hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		b.Fatal(err)
	}
	c := []byte("release=2026-1 region=eu1")
	for b.Loop() {
		if _, err := w.Wrap(ctx, k, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal1KiB(b *testing.B) {
	h, _ := openTestHSM(b, "bench-seal")
	ctx := context.Background()
	k, err := h.GenerateSecretKey(ctx, hsm.KeySpec{Label: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 1024)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := k.Seal(ctx, pt, nil); err != nil {
			b.Fatal(err)
		}
	}
}

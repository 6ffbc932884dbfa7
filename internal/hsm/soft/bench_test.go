package soft

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"path/filepath"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// Benchmarks of the operations the ceremony and the regional server use,
// comparable with the pkcs11 backend's (see docs/benchmarks.md).

func benchHSM(b *testing.B) *HSM {
	b.Helper()
	h := openNew(b, filepath.Join(b.TempDir(), "hsm.soft"))
	b.Cleanup(func() { h.Close() })
	return h
}

func BenchmarkSign(b *testing.B) {
	h := benchHSM(b)
	k, err := h.GenerateSigningKey(context.Background(), "s")
	if err != nil {
		b.Fatal(err)
	}
	d := sha512.Sum384([]byte("message"))
	for b.Loop() {
		if _, err := k.Sign(rand.Reader, d[:], crypto.SHA384); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptOAEP(b *testing.B) {
	h := benchHSM(b)
	k, err := h.GenerateEncryptionKey(context.Background(), "e", hsm.UseDecrypt)
	if err != nil {
		b.Fatal(err)
	}
	ct, _ := rsa.EncryptOAEP(crypto.SHA256.New(), rand.Reader, k.RSAPublicKey(), make([]byte, 32), nil)
	for b.Loop() {
		if _, err := k.Decrypt(nil, ct, hsm.OAEPSHA256.Options()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrap(b *testing.B) {
	h := benchHSM(b)
	ctx := context.Background()
	w, _ := h.GenerateSecretKey(ctx, hsm.KeySpec{Ephemeral: true, Exportable: true})
	k, _ := h.GenerateSecretKey(ctx, hsm.KeySpec{Ephemeral: true, Exportable: true})
	for b.Loop() {
		if _, err := w.Wrap(ctx, k, []byte("release=2026-1 region=eu1 secret=twk")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal1KiB(b *testing.B) {
	h := benchHSM(b)
	ctx := context.Background()
	k, _ := h.GenerateSecretKey(ctx, hsm.KeySpec{Ephemeral: true})
	msg := make([]byte, 1024)
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := k.Seal(ctx, msg, nil); err != nil {
			b.Fatal(err)
		}
	}
}

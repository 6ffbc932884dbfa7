package client_test

import (
	"crypto/aes"
	"crypto/cipher"
	"io"
	"testing"

	"github.com/strongroom-kms/strongroom/client"
)

// BenchmarkLocalEncrypt1KiB compares client-side encryption of 1 KiB with a
// cached DEK (the envelope: header, context, fresh nonce, AES-256-GCM)
// with raw AES-256-GCM from crypto/cipher (the cipher made once, a fresh
// random nonce each time, the same associated data length), in the same
// run: the target is at least 80% of raw.
func BenchmarkLocalEncrypt1KiB(b *testing.B) {
	pt := make([]byte, 1024)
	c := map[string]string{"field": "card"}
	b.Run("raw-aes-gcm", func(b *testing.B) {
		key := make([]byte, 32)
		block, _ := aes.NewCipher(key)
		aead, _ := cipher.NewGCMWithRandomNonce(block)
		aad := make([]byte, 23+43+2+1+5+2+4) // label, header, context: the envelope's
		b.SetBytes(1024)
		b.ReportAllocs()
		for b.Loop() {
			_ = aead.Seal(nil, nil, pt, aad)
		}
	})
	b.Run("dek", func(b *testing.B) {
		d := testDEK(b, 1)
		b.SetBytes(1024)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Encrypt(pt, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dek-cache", func(b *testing.B) {
		f := newFakeKMS()
		f.rotate()
		cache, err := client.NewDEKCacheWith(f.fetch, client.DEKCacheOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer cache.Close()
		b.SetBytes(1024)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cache.Encrypt(ctx, "acme", "data", pt, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStream measures the throughput of streamed encryption and
// decryption, 64 MiB a run.
func BenchmarkStream(b *testing.B) {
	const size = 64 << 20
	d := testDEK(b, 1)
	b.Run("encrypt", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			w, _ := d.EncryptWriter(io.Discard, nil)
			if _, err := io.Copy(w, &generator{left: size, sample: func() {}}); err != nil {
				b.Fatal(err)
			}
			w.Close()
		}
	})
	b.Run("decrypt", func(b *testing.B) {
		var ct sizedBuffer
		w, _ := d.EncryptWriter(&ct, nil)
		io.Copy(w, &generator{left: size, sample: func() {}})
		w.Close()
		b.SetBytes(size)
		b.ResetTimer()
		for b.Loop() {
			r, err := d.DecryptReader(ct.reader(), nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// sizedBuffer collects a stream to read it again and again.
type sizedBuffer struct{ b []byte }

func (s *sizedBuffer) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }

func (s *sizedBuffer) reader() io.Reader { return &sliceReader{b: s.b} }

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

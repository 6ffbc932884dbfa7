package client_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
)

// fuzzDEK is a fixed DEK for the fuzz seeds: 00 01 … 1f, tenant "t", data
// version 1. Seeds are in testdata/fuzz (refresh them with
// STRONGROOM_WRITE_CORPUS=1).
func fuzzDEK() client.DEK {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return client.NewTestDEK("t", "data", 1, b)
}

// FuzzDecryptReader: PeekStream and DecryptReader on any input either
// decrypt, or fail with ErrDecrypt (never another error, never a panic),
// and agree on what is a stream.
func FuzzDecryptReader(f *testing.F) {
	d := fuzzDEK()
	f.Add([]byte{3, 1, 't', 4, 'd', 'a', 't', 'a', 0, 0, 0, 1, 0, 0, 0, 64}, "")
	f.Fuzz(func(t *testing.T, data []byte, v string) {
		var c map[string]string
		if v != "" {
			c = map[string]string{"file": v}
		}
		h, ok, err := client.PeekStream(bufio.NewReader(bytes.NewReader(data)))
		if err != nil && !errors.Is(err, client.ErrDecrypt) {
			t.Fatalf("PeekStream() = %v", err)
		}
		if ok != (len(data) > 0 && data[0] == client.FormatStream) {
			t.Fatalf("PeekStream() = %v for a first byte of %x", ok, data[:min(1, len(data))])
		}
		r, err := d.DecryptReader(bytes.NewReader(data), c)
		if err != nil {
			if !errors.Is(err, client.ErrDecrypt) {
				t.Fatalf("DecryptReader() = %v", err)
			}
			return
		}
		if !ok || h.TenantID != "t" || h.Type != "data" || h.Version != 1 {
			t.Fatalf("DecryptReader() opened what PeekStream reads as %+v, %v", h, ok)
		}
		if _, err := io.ReadAll(r); err != nil && !errors.Is(err, client.ErrDecrypt) {
			t.Fatalf("reading = %v", err)
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	d := fuzzDEK()
	// One chunk: streams of several are in internal/envelope's seeds, with
	// small chunks.
	var one, empty bytes.Buffer
	w, _ := d.EncryptWriter(&one, map[string]string{"file": "a"})
	w.Write([]byte("a stream"))
	w.Close()
	w, _ = d.EncryptWriter(&empty, nil)
	w.Close()
	single, _ := d.Encrypt([]byte("x"), nil)
	fc := fuzzcorpus.New(t)
	fc.Add("FuzzDecryptReader", "one-chunk", one.Bytes(), "a")
	fc.Add("FuzzDecryptReader", "empty", empty.Bytes(), "")
	fc.Add("FuzzDecryptReader", "wrong-context", one.Bytes(), "b")
	fc.Add("FuzzDecryptReader", "header-only", empty.Bytes()[:empty.Len()-16], "")
	fc.Add("FuzzDecryptReader", "format-1", single, "")
}

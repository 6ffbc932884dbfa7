package primitive

import (
	"bytes"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

func TestStream(t *testing.T) {
	key, _ := secret.New(bytes.Repeat([]byte{7}, 32))
	seal, err := NewStream(key)
	if err != nil {
		t.Fatal(err)
	}
	var chunks [][]byte
	for i, last := range []bool{false, false, true} {
		c, err := seal.Seal(nil, []byte{byte(i)}, []byte("aad"), last)
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
	}
	if _, err := seal.Seal(nil, []byte("x"), nil, false); err == nil || !seal.Done() {
		t.Error("Seal after the last chunk = nil error")
	}
	open, _ := NewStream(key)
	// Out of order, or with the wrong flag: refused, and the counter stays.
	if _, err := open.Open(nil, chunks[1], []byte("aad"), false); err != ErrDecrypt {
		t.Errorf("Open(chunk 1 first) = %v, want ErrDecrypt", err)
	}
	if _, err := open.Open(nil, chunks[0], []byte("aad"), true); err != ErrDecrypt {
		t.Errorf("Open(chunk 0 as last) = %v, want ErrDecrypt", err)
	}
	for i, last := range []bool{false, false, true} {
		pt, err := open.Open(nil, chunks[i], []byte("aad"), last)
		if err != nil || !bytes.Equal(pt, []byte{byte(i)}) {
			t.Fatalf("Open(chunk %d) = %v, %v", i, pt, err)
		}
	}
	if _, err := open.Open(nil, chunks[2], []byte("aad"), true); err != ErrDecrypt {
		t.Errorf("Open after the last chunk = %v, want ErrDecrypt", err)
	}
	if _, err := NewStream(secret.Key{}); err == nil {
		t.Error("NewStream(empty key) = nil error")
	}
}

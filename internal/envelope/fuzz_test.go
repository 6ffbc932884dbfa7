package envelope

import (
	"bytes"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// The decoders of outside input: the headers of both formats (read before
// any key is known), Open and OpenDeterministic as a whole. Seed corpora
// are in testdata/fuzz (refresh them with STRONGROOM_WRITE_CORPUS=1); the
// seeds of the Open functions are sealed under fuzzKey, so the fuzzer
// starts from ciphertexts that open.

// fuzzKey is a fixed DEK for the fuzz seeds: 00 01 … 1f.
func fuzzKey() secret.Key {
	b := make([]byte, secret.Size)
	for i := range b {
		b[i] = byte(i)
	}
	k, _ := secret.New(b)
	return k
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{1, 1, 't', 4, 'd', 'a', 't', 'a', 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err != nil {
			return
		}
		if h.Check() != nil {
			t.Fatalf("ParseHeader accepted an invalid header %+v", h)
		}
		if !bytes.HasPrefix(data, h.marshal()) || len(data) < h.Overhead() {
			t.Fatalf("header %+v does not round-trip, or the ciphertext is too short", h)
		}
	})
}

// contextOf makes a context of at most one pair from the fuzzer's strings.
func contextOf(k, v string) map[string]string {
	if k == "" && v == "" {
		return nil
	}
	return map[string]string{k: v}
}

func FuzzOpen(f *testing.F) {
	dek := fuzzKey()
	f.Add([]byte{1, 1, 't', 4, 'd', 'a', 't', 'a', 0, 0, 0, 1}, "", "")
	f.Fuzz(func(t *testing.T, ct []byte, k, v string) {
		c := contextOf(k, v)
		pt, err := Open(dek, ct, c)
		if err != nil {
			if err != ErrDecrypt || pt != nil {
				t.Fatalf("Open() = %q, %v: every failure must be ErrDecrypt alone", pt, err)
			}
			return
		}
		h, err := ParseHeader(ct)
		if err != nil || len(ct) != len(pt)+h.Overhead() {
			t.Fatalf("Open() accepted a ciphertext whose header is %+v, %v", h, err)
		}
		if CheckContext(c) != nil {
			t.Fatal("Open() accepted an invalid context")
		}
	})
}

func FuzzParseFieldHeader(f *testing.F) {
	f.Add([]byte{2, 1, 't', 13, 'd', 'e', 't', 'e', 'r', 'm', 'i', 'n', 'i', 's', 't', 'i', 'c', 0, 0, 0, 1, 1, 'f', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseFieldHeader(data)
		if err != nil {
			if err != ErrMalformed {
				t.Fatalf("ParseFieldHeader() error = %v, want ErrMalformed", err)
			}
			return
		}
		if h.Check() != nil {
			t.Fatalf("ParseFieldHeader accepted an invalid header %+v", h)
		}
		if !bytes.HasPrefix(data, h.marshal()) || len(data) < h.Overhead() || FormatOf(data) != FormatDeterministic {
			t.Fatalf("header %+v does not round-trip, or the ciphertext is too short", h)
		}
	})
}

func FuzzOpenDeterministic(f *testing.F) {
	dek := fuzzKey()
	f.Add([]byte{2, 1, 't', 13, 'd', 'e', 't', 'e', 'r', 'm', 'i', 'n', 'i', 's', 't', 'i', 'c', 0, 0, 0, 1, 1, 'f', 0}, "", "")
	f.Fuzz(func(t *testing.T, ct []byte, k, v string) {
		c := contextOf(k, v)
		pt, err := OpenDeterministic(dek, ct, c)
		if err != nil {
			if err != ErrDecrypt || pt != nil {
				t.Fatalf("OpenDeterministic() = %q, %v: every failure must be ErrDecrypt alone", pt, err)
			}
			return
		}
		h, err := ParseFieldHeader(ct)
		if err != nil || len(ct) != len(pt)+h.Overhead() {
			t.Fatalf("OpenDeterministic() accepted a ciphertext whose header is %+v, %v", h, err)
		}
		if CheckContext(c) != nil {
			t.Fatal("OpenDeterministic() accepted an invalid context")
		}
		// Deterministic: sealing the plaintext again gives the same bytes
		// (a folded plaintext folds to itself).
		again, err := SealDeterministic(dek, h, c, pt)
		if err != nil || !bytes.Equal(again, ct) {
			t.Fatalf("SealDeterministic(the opened plaintext) = %x, %v, want %x", again, err, ct)
		}
		// A format-2 ciphertext never opens as format 1, nor the reverse.
		if _, err := Open(dek, ct, c); err != ErrDecrypt {
			t.Fatalf("Open(a format-2 ciphertext) error = %v, want ErrDecrypt", err)
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	dek := fuzzKey()
	withCtx, err := Seal(dek, hdr, map[string]string{"field": "ssn"}, []byte("fuzz me"))
	if err != nil {
		t.Fatal(err)
	}
	noCtx, err := Seal(dek, Header{Tenant: "t", Type: "data", Version: 1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := fuzzcorpus.New(t)
	w.Add("FuzzParseHeader", "valid", withCtx)
	w.Add("FuzzParseHeader", "empty-plaintext", noCtx)
	w.Add("FuzzOpen", "valid", withCtx, "field", "ssn")
	w.Add("FuzzOpen", "no-context", noCtx, "", "")
	w.Add("FuzzOpen", "wrong-context", withCtx, "field", "ssm")

	det := FieldHeader{Header: Header{Tenant: "t", Type: "deterministic", Version: 1}, Field: "email"}
	detCtx, err := SealDeterministic(dek, det, map[string]string{"table": "users"}, []byte("alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	det.CaseInsensitive = true
	folded, err := SealDeterministic(dek, det, nil, []byte("Alice@Example.COM"))
	if err != nil {
		t.Fatal(err)
	}
	det.Field = "f"
	empty, err := SealDeterministic(dek, det, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Add("FuzzParseFieldHeader", "valid", detCtx)
	w.Add("FuzzParseFieldHeader", "case-insensitive", folded)
	w.Add("FuzzParseFieldHeader", "empty-plaintext", empty)
	w.Add("FuzzParseFieldHeader", "format-1", withCtx)
	w.Add("FuzzOpenDeterministic", "valid", detCtx, "table", "users")
	w.Add("FuzzOpenDeterministic", "case-insensitive", folded, "", "")
	w.Add("FuzzOpenDeterministic", "empty-plaintext", empty, "", "")
	w.Add("FuzzOpenDeterministic", "wrong-context", detCtx, "table", "user")
	w.Add("FuzzOpenDeterministic", "format-1", withCtx, "field", "ssn")
	w.Add("FuzzOpen", "format-2", detCtx, "table", "users")
}

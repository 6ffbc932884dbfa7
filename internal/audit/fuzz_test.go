package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// The seed corpora under testdata/fuzz hold valid encodings made by
// TestWriteFuzzCorpus (run with STRONGROOM_WRITE_CORPUS=1 to refresh them).
// The checkpoint and witness seeds are signed by fixedKey, which the fuzz
// targets trust.

func FuzzParseEntry(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEntry(data)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("ParseEntry accepted an invalid entry: %v", err)
		}
		enc, err := e.Encode()
		if err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("Encode(ParseEntry(data)) = %x, %v, want data back (one encoding per entry)", enc, err)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte{})
	key := fixedKey(f)
	trusted := []*ecdsa.PublicKey{&key.PublicKey}
	id, err := sign.KeyIDOf(&key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCheckpoint(data, trusted)
		if err != nil {
			return
		}
		if err := c.valid(); err != nil || c.KeyID != id {
			t.Fatalf("ParseCheckpoint accepted %+v: %v", c, err)
		}
	})
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseState(data)
		if err != nil {
			return
		}
		blob, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(blob, data) {
			t.Fatalf("MarshalBinary(ParseState(data)) = %x, %v, want data back", blob, err)
		}
		s.Root()
		if s.Size() < 1<<62 {
			if _, err := s.Append(sampleEntry(1)); err != nil {
				t.Fatalf("Append after ParseState error = %v", err)
			}
		}
	})
}

func FuzzParseWitness(f *testing.F) {
	f.Add([]byte{})
	trusted := []*ecdsa.PublicKey{&fixedKey(f).PublicKey}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWitness(data, trusted)
		if err != nil {
			return
		}
		if err := w.check(); err != nil {
			t.Fatalf("ParseWitness accepted a witness whose state is not its checkpoint's: %v", err)
		}
		blob, err := w.MarshalBinary()
		if err != nil || !bytes.Equal(blob, data) {
			t.Fatalf("MarshalBinary(ParseWitness(data)) = %x, %v, want data back", blob, err)
		}
	})
}

// TestFuzzSeedsValid makes sure the committed seeds still parse, so that
// the fuzzers start from inside the formats.
func TestFuzzSeedsValid(t *testing.T) {
	trusted := []*ecdsa.PublicKey{&fixedKey(t).PublicKey}
	for name, parse := range map[string]func([]byte) error{
		"FuzzParseEntry":      func(b []byte) error { _, err := ParseEntry(b); return err },
		"FuzzParseCheckpoint": func(b []byte) error { _, err := ParseCheckpoint(b, trusted); return err },
		"FuzzParseState":      func(b []byte) error { _, err := ParseState(b); return err },
		"FuzzParseWitness":    func(b []byte) error { _, err := ParseWitness(b, trusted); return err },
	} {
		values := fuzzcorpus.Committed(t, name, "valid")
		data, ok := values[0].([]byte)
		if len(values) != 1 || !ok {
			t.Fatalf("%s seed holds %d values, want one []byte", name, len(values))
		}
		if err := parse(data); err != nil {
			t.Errorf("%s seed does not parse: %v (regenerate with STRONGROOM_WRITE_CORPUS=1)", name, err)
		}
	}
}

func TestWriteFuzzCorpus(t *testing.T) {
	l := buildLog(t, 11, 100)
	entry, err := l.entries[6].Encode()
	if err != nil {
		t.Fatal(err)
	}
	state, err := l.state.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := SignCheckpoint(context.Background(), fixedKey(t), l.state.Checkpoint(testOrigin, t0))
	if err != nil {
		t.Fatal(err)
	}
	witness, err := NewWitness(cp, l.state, []*ecdsa.PublicKey{&fixedKey(t).PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	wb, err := witness.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	w := fuzzcorpus.New(t)
	w.Add("FuzzParseEntry", "valid", entry)
	w.Add("FuzzParseCheckpoint", "valid", cp)
	w.Add("FuzzParseState", "valid", state)
	w.Add("FuzzParseWitness", "valid", wb)
}

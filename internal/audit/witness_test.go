package audit

import (
	"crypto/ecdsa"
	"errors"
	"slices"
	"strings"
	"testing"
)

// witnessAt returns the witness of the first n entries of the standard log,
// signed by the test signer.
func witnessAt(t *testing.T, n int) *Witness {
	t.Helper()
	l := standardLog(t)
	var st State
	for _, e := range l.entries[:n] {
		if err := st.Extend(e); err != nil {
			t.Fatalf("State.Extend(entry %d) error = %v", e.Seq, err)
		}
	}
	signed := (&testLog{state: st}).sign(t, testSigner(t))
	w, err := NewWitness(signed, st, []*ecdsa.PublicKey{testSigner(t).ECDSAPublicKey()})
	if err != nil {
		t.Fatalf("NewWitness(size %d) error = %v", n, err)
	}
	return w
}

func TestWitnessRoundTrip(t *testing.T) {
	trusted := []*ecdsa.PublicKey{testSigner(t).ECDSAPublicKey()}
	for _, n := range []int{0, 1, 7, 64, 250} {
		w := witnessAt(t, n)
		data, err := w.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(size %d) error = %v", n, err)
		}
		got, err := ParseWitness(data, trusted)
		if err != nil {
			t.Fatalf("ParseWitness(size %d) error = %v", n, err)
		}
		if got.Checkpoint != w.Checkpoint || !slices.Equal(got.Signed, w.Signed) || got.State.Root() != w.State.Root() || got.State.Head() != w.State.Head() {
			t.Errorf("ParseWitness(MarshalBinary(w of size %d)) = %+v, want %+v", n, got.Checkpoint, w.Checkpoint)
		}
		again, err := got.MarshalBinary()
		if err != nil || !slices.Equal(again, data) {
			t.Errorf("MarshalBinary(ParseWitness(data of size %d)) = %x, %v, want data back", n, again, err)
		}
	}
}

// TestWitnessStrict: every bit flip of a byte, every truncation, a trailing
// byte, an untrusted key and a state that is not the checkpoint's are all
// refused.
func TestWitnessStrict(t *testing.T) {
	trusted := []*ecdsa.PublicKey{testSigner(t).ECDSAPublicKey()}
	w := witnessAt(t, 77) // three subtree roots
	data, err := w.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	wantStrict(t, "ParseWitness", data, func(b []byte) error { _, err := ParseWitness(b, trusted); return err })
	if _, err := ParseWitness(data, []*ecdsa.PublicKey{&fixedKey(t).PublicKey}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("ParseWitness(another node's key) error = %v, want ErrUntrusted", err)
	}
	version := slices.Clone(data)
	version[len(witnessMagic)+1] = 2
	if _, err := ParseWitness(version, trusted); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("ParseWitness(version 2) error = %v, want the version named", err)
	}
	// The state of another size, with a checkpoint that verifies.
	other := witnessAt(t, 76).State
	if _, err := NewWitness(w.Signed, other, trusted); err == nil || !strings.Contains(err.Error(), "is not the one its checkpoint") {
		t.Errorf("NewWitness(the state of 76 entries, the checkpoint of 77) error = %v, want a mismatch", err)
	}
}

// TestExtend: a witness's State extended with the entries after it is the
// State of the whole log, as a Verifier computes it; an entry that does
// not follow is refused as Verify would name it, and changes nothing.
func TestExtend(t *testing.T) {
	l := standardLog(t)
	st := witnessAt(t, 100).State
	for _, e := range l.entries[100:] {
		if err := st.Extend(e); err != nil {
			t.Fatalf("Extend(entry %d) error = %v", e.Seq, err)
		}
	}
	v, err := NewVerifier(testOrigin, []*ecdsa.PublicKey{testSigner(t).ECDSAPublicKey()}, l.checkpoints)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.entries {
		if err := v.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	vs := v.State()
	if st.Size() != logSize || st.Root() != l.state.Root() || st.Head() != l.state.Head() || vs.Root() != st.Root() || vs.Head() != st.Head() {
		t.Fatalf("Extend over entries 101…%d = size %d, root %x; want the log's %x (the Verifier's: %x)", logSize, st.Size(), st.Root(), l.state.Root(), vs.Root())
	}

	base := witnessAt(t, 100).State
	altered, relinked := l.entries[100], l.entries[100]
	altered.Detail = "nothing happened"
	relinked.Prev[0] ^= 1
	for what, e := range map[string]Entry{
		"entry 101 altered":          altered,
		"entry 101 missing":          l.entries[101],
		"entry 101 linked elsewhere": relinked,
	} {
		st := base
		bad := wantBad(t, what, st.Extend(e), 101, 100)
		if st.Size() != 100 || st.Root() != base.Root() {
			t.Errorf("%s: Extend() failed (%s) but changed the State to size %d", what, bad.Reason, st.Size())
		}
	}
}

package audit

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	logSize = 250
	cpEvery = 50
)

// wantBad checks that err is a *BadEntryError naming seq at index.
func wantBad(t *testing.T, what string, err error, seq, index uint64) *BadEntryError {
	t.Helper()
	var bad *BadEntryError
	if !errors.As(err, &bad) {
		t.Fatalf("%s: Verify() error = %v, want *BadEntryError for entry %d", what, err, seq)
	}
	if bad.Seq != seq || bad.Index != index {
		t.Fatalf("%s: Verify() error = %v, want entry %d at position %d", what, err, seq, index)
	}
	return bad
}

func TestVerifyIntact(t *testing.T) {
	l := standardLog(t)
	r, err := verify(t, l.entries, l.checkpoints)
	if err != nil {
		t.Fatalf("Verify(intact log) error = %v", err)
	}
	if r.Entries != logSize || r.Checkpoints != logSize/cpEvery || r.Latest == nil || r.Latest.Size != logSize || r.Unchecked != 0 {
		t.Errorf("Verify(intact log) = %+v, want %d entries, %d checkpoints, latest of size %d, none unchecked", r, logSize, logSize/cpEvery, logSize)
	}
	if r.Head != l.state.Head() || r.Root != l.state.Root() || r.Latest.Root != r.Root {
		t.Errorf("Verify(intact log) head, root = %v, %x, want %v, %x", r.Head, r.Root, l.state.Head(), l.state.Root())
	}

	// Checkpoints in any order, repeated, and a checkpoint of the empty log.
	var empty State
	cps := append(slices.Clone(l.checkpoints), l.checkpoints[2])
	cps = append(cps, (&testLog{state: empty}).sign(t, testSigner(t)))
	slices.Reverse(cps)
	if r, err := verify(t, l.entries, cps); err != nil || r.Checkpoints != len(cps) || r.Latest.Size != logSize {
		t.Errorf("Verify(shuffled and repeated checkpoints) = %+v, %v, want %d checkpoints", r, err, len(cps))
	}

	// Entries as they come back from a store: another time zone.
	es := slices.Clone(l.entries)
	for i := range es {
		es[i].Time = es[i].Time.In(time.FixedZone("X", 3600))
	}
	if _, err := verify(t, es, l.checkpoints); err != nil {
		t.Errorf("Verify(times in another zone) error = %v", err)
	}
}

func TestVerifyDeletedEntry(t *testing.T) {
	l := standardLog(t)
	check := verifier(t, l.checkpoints)
	for k := 1; k <= logSize; k++ {
		es := slices.Delete(slices.Clone(l.entries), k-1, k)
		_, err := check(es)
		wantBad(t, "delete entry "+strconv.Itoa(k), err, uint64(k), uint64(k-1))
	}
}

// alterations change one field of an entry each, keeping the rest.
var alterations = []struct {
	field string
	alter func(e *Entry)
}{
	{"seq", func(e *Entry) { e.Seq += 1000 }},
	{"seq-1", func(e *Entry) { e.Seq-- }},
	{"time", func(e *Entry) { e.Time = e.Time.Add(time.Microsecond) }},
	{"actor", func(e *Entry) { e.Actor += "0" }},
	{"role", func(e *Entry) {
		if e.Role == "operator" {
			e.Role = "auditor"
		} else {
			e.Role = "operator"
		}
	}},
	{"tenant", func(e *Entry) {
		if e.Tenant == "" {
			e.Tenant = "00000000000000000000000000000001"
		} else {
			e.Tenant = ""
		}
	}},
	{"action", func(e *Entry) {
		if e.Action == ActionDestroy {
			e.Action = ActionGenerate
		} else {
			e.Action = ActionDestroy
		}
	}},
	{"key", func(e *Entry) { e.Key += "0" }},
	{"outcome", func(e *Entry) {
		switch e.Outcome {
		case OutcomeOK:
			e.Outcome, e.Reason = OutcomeRefused, "forbidden"
		default:
			e.Outcome, e.Reason = OutcomeOK, ""
		}
	}},
	{"outcome-only", func(e *Entry) { // makes the entry invalid
		if e.Outcome == OutcomeOK {
			e.Outcome = OutcomeError
		} else {
			e.Outcome = OutcomeOK
		}
	}},
	{"reason", func(e *Entry) { e.Reason += "x" }},
	{"remote", func(e *Entry) { e.Remote = "203.0.113.66:1" }},
	{"request", func(e *Entry) { e.Request += "-2" }},
	{"detail", func(e *Entry) { e.Detail += "." }},
	{"count", func(e *Entry) { e.Count++ }},
	{"prev", func(e *Entry) { e.Prev[7] ^= 1 }},
	{"hash", func(e *Entry) { e.Hash[31] ^= 0x80 }},
}

func TestVerifyAlteredEntry(t *testing.T) {
	l := standardLog(t)
	check := verifier(t, l.checkpoints)
	alter := func(k, a int) {
		es := slices.Clone(l.entries)
		before := es[k-1]
		alterations[a].alter(&es[k-1])
		if es[k-1] == before {
			t.Fatalf("alteration %s left entry %d unchanged", alterations[a].field, k)
		}
		_, err := check(es)
		wantBad(t, "alter "+alterations[a].field+" of entry "+strconv.Itoa(k), err, uint64(k), uint64(k-1))
	}
	// Every entry, a different field each time…
	for k := 1; k <= logSize; k++ {
		alter(k, (k-1)%len(alterations))
	}
	// …and every field of the first and last entries and those around a
	// checkpoint.
	for _, k := range []int{1, cpEvery, cpEvery + 1, logSize} {
		for a := range alterations {
			alter(k, a)
		}
	}
}

func TestVerifySwappedEntries(t *testing.T) {
	l := standardLog(t)
	check := verifier(t, l.checkpoints)
	for k := 1; k < logSize; k++ {
		es := slices.Clone(l.entries)
		es[k-1], es[k] = es[k], es[k-1]
		_, err := check(es)
		wantBad(t, "swap entries "+strconv.Itoa(k)+" and "+strconv.Itoa(k+1), err, uint64(k), uint64(k-1))
	}
	// Moving an entry further down names it too.
	es := slices.Clone(l.entries)
	moved := es[99]
	es = slices.Insert(slices.Delete(es, 99, 100), 150, moved)
	_, err := check(es)
	wantBad(t, "move entry 100 down", err, 100, 99)
}

func TestVerifyInsertedEntry(t *testing.T) {
	l := standardLog(t)
	for _, k := range []int{1, 17, 49, 120, 249} {
		// A repeated row is named where it stands: position k, where entry
		// k+1 should be.
		es := slices.Insert(slices.Clone(l.entries), k, l.entries[k-1])
		_, err := verify(t, es, l.checkpoints)
		wantBad(t, "repeat entry "+strconv.Itoa(k), err, uint64(k+1), uint64(k))

		// A forged entry correctly chained after entry k passes itself, so
		// the entry after it is named: the original k+1, now at position
		// k+1 where k+2 should be. (When a checkpoint ends at k+1, that
		// checkpoint names the forgery first.)
		forged := sampleEntry(9999)
		forged.Detail = "forged"
		f, err := Chain(l.entries[k-1].Head(), forged)
		if err != nil {
			t.Fatal(err)
		}
		es = slices.Insert(slices.Clone(l.entries), k, f)
		_, err = verify(t, es, l.checkpoints)
		if (k+1)%cpEvery == 0 {
			wantBad(t, "insert after entry "+strconv.Itoa(k), err, uint64(k+1), uint64(k))
		} else {
			wantBad(t, "insert after entry "+strconv.Itoa(k), err, uint64(k+2), uint64(k+1))
		}
	}
}

// TestVerifyRecomputedChain: an attacker who rewrites entry k and recomputes
// every later hash keeps the chain intact; the next checkpoint catches it,
// and the error names the last entry of that checkpoint.
func TestVerifyRecomputedChain(t *testing.T) {
	l := standardLog(t)
	for _, k := range []int{1, 37, 50, 51, 199, 201, 250} {
		es := slices.Clone(l.entries)
		es[k-1].Detail = "rewritten"
		es = rechain(t, es, k-1)
		if _, err := verify(t, es, nil); err != nil {
			t.Fatalf("rewrite entry %d: Verify(no checkpoints) error = %v, want the chain to hold", k, err)
		}
		_, err := verify(t, es, l.checkpoints)
		cp := (k + cpEvery - 1) / cpEvery * cpEvery
		bad := wantBad(t, "rewrite entry "+strconv.Itoa(k), err, uint64(cp), uint64(cp-1))
		if want := "one of entries " + strconv.Itoa(cp-cpEvery+1) + " to " + strconv.Itoa(cp); !strings.Contains(bad.Reason, want) {
			t.Errorf("rewrite entry %d: reason %q, want it to contain %q", k, bad.Reason, want)
		}
	}
}

// TestVerifyUncheckpointedTail documents the limit: entries after the last
// checkpoint are protected by the chain only.
func TestVerifyUncheckpointedTail(t *testing.T) {
	l := buildLog(t, logSize+10, cpEvery)
	r, err := verify(t, l.entries, l.checkpoints)
	if err != nil || r.Unchecked != 10 || r.Entries != logSize+10 || r.Latest.Size != logSize {
		t.Fatalf("Verify() = %+v, %v, want 260 entries, 10 unchecked", r, err)
	}
	// A naive alteration of the tail is caught by the chain…
	es := slices.Clone(l.entries)
	es[254].Detail = "rewritten"
	_, err = verify(t, es, l.checkpoints)
	wantBad(t, "alter entry 255", err, 255, 254)
	// …a recomputed one is not, until a checkpoint covers it.
	es = rechain(t, es, 254)
	if r, err := verify(t, es, l.checkpoints); err != nil || r.Unchecked != 10 {
		t.Errorf("Verify(recomputed unchecked tail) = %+v, %v, want success with 10 unchecked", r, err)
	}
}

func TestVerifyTruncated(t *testing.T) {
	l := standardLog(t)
	for _, keep := range []int{0, 1, 220, 200, 249} {
		_, err := verify(t, l.entries[:keep], l.checkpoints)
		bad := wantBad(t, "truncate to "+strconv.Itoa(keep), err, uint64(keep+1), uint64(keep))
		if !strings.Contains(bad.Reason, "size 250") {
			t.Errorf("truncate to %d: reason %q, want it to name the checkpoint of size 250", keep, bad.Reason)
		}
	}
	// Dropping the tail together with the checkpoints that cover it is only
	// caught by a checkpoint kept elsewhere (docs/audit.md).
	if r, err := verify(t, l.entries[:200], l.checkpoints[:4]); err != nil || r.Latest.Size != 200 {
		t.Errorf("Verify(truncated with its checkpoints) = %+v, %v, want success", r, err)
	}
}

func TestVerifyCheckpointErrors(t *testing.T) {
	ctx := context.Background()
	l := standardLog(t)
	other := fixedKey(t)
	otherCP := l.sign(t, other)
	trusted := []*ecdsa.PublicKey{testSigner(t).ECDSAPublicKey()}

	forked := l.state.Checkpoint(testOrigin, t0)
	forked.Root[0] ^= 1
	forkedCP, err := SignCheckpoint(ctx, testSigner(t), forked)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := l.state.Checkpoint("strongroom/us1/audit", t0)
	elsewhereCP, err := SignCheckpoint(ctx, testSigner(t), elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	badSig := slices.Clone(l.checkpoints[1])
	badSig[len(badSig)-5] ^= 1

	for _, tc := range []struct {
		name      string
		cps       [][]byte
		index     int
		untrusted bool
	}{
		{"untrusted key", append(slices.Clone(l.checkpoints), otherCP), logSize / cpEvery, true},
		{"bad signature", [][]byte{l.checkpoints[0], badSig}, 1, false},
		{"other log", [][]byte{elsewhereCP}, 0, false},
		{"forked", append(slices.Clone(l.checkpoints), forkedCP), logSize / cpEvery, false},
		{"garbage", [][]byte{[]byte("not a checkpoint")}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(testOrigin, trusted, tc.cps, entriesOf(l.entries))
			var ce *CheckpointError
			if !errors.As(err, &ce) || ce.Index != tc.index {
				t.Fatalf("Verify() error = %v, want *CheckpointError for checkpoint %d", err, tc.index)
			}
			if got := errors.Is(err, ErrUntrusted); got != tc.untrusted {
				t.Errorf("Verify() error = %v, errors.Is(ErrUntrusted) = %v, want %v", err, got, tc.untrusted)
			}
		})
	}

	// Trusting the other key too makes its checkpoint good.
	both := append(slices.Clone(trusted), &other.PublicKey)
	if r, err := Verify(testOrigin, both, append(slices.Clone(l.checkpoints), otherCP), entriesOf(l.entries)); err != nil || r.Checkpoints != 6 {
		t.Errorf("Verify(both keys trusted) = %+v, %v, want 6 checkpoints", r, err)
	}
	if _, err := Verify("bad origin", trusted, nil, entriesOf(nil)); err == nil {
		t.Error("Verify(origin with a space) error = nil, want error")
	}
}

func TestVerifierStreaming(t *testing.T) {
	l := buildLog(t, 120, cpEvery)
	v, err := NewVerifier(testOrigin, []*ecdsa.PublicKey{testSigner(t).ECDSAPublicKey()}, l.checkpoints)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range l.entries {
		if i == 60 {
			e.Detail = "altered"
		}
		err := v.Add(e)
		if (err != nil) != (i >= 60) {
			t.Fatalf("Add(entry %d) error = %v", i+1, err)
		}
	}
	r, err := v.Finish()
	wantBad(t, "streamed", err, 61, 60)
	if r.Entries != 60 || r.Checkpoints != 1 || r.Unchecked != 10 || r.Head != l.entries[59].Head() {
		t.Errorf("Finish() report = %+v, want 60 entries, 1 checkpoint, 10 unchecked", r)
	}

	// A read error stops verification and is returned.
	readErr := errors.New("disk on fire")
	failing := func(yield func(Entry, error) bool) {
		for _, e := range l.entries[:30] {
			if !yield(e, nil) {
				return
			}
		}
		yield(Entry{}, readErr)
	}
	if r, err := Verify(testOrigin, nil, nil, failing); !errors.Is(err, readErr) || r.Entries != 30 {
		t.Errorf("Verify(failing reader) = %+v, %v, want 30 entries and the read error", r, err)
	}

	// The empty log.
	if r, err := Verify(testOrigin, nil, nil, entriesOf(nil)); err != nil || r.Entries != 0 || r.Latest != nil || r.Root != EmptyRoot {
		t.Errorf("Verify(empty log) = %+v, %v", r, err)
	}
}

func TestInclusionInCheckpoint(t *testing.T) {
	l := standardLog(t)
	c, err := ParseCheckpoint(l.checkpoints[3], []*ecdsa.PublicKey{testSigner(t).ECDSAPublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][32]byte
	for _, e := range l.entries[:c.Size] {
		h, err := LeafHash(e)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, h)
	}
	for _, seq := range []uint64{1, 137, c.Size} {
		proof, err := InclusionProof(leaves, seq-1)
		if err != nil {
			t.Fatal(err)
		}
		e := l.entries[seq-1]
		if err := c.VerifyInclusion(e, proof); err != nil {
			t.Errorf("VerifyInclusion(entry %d) error = %v", seq, err)
		}
		e.Detail += "!"
		if err := c.VerifyInclusion(e, proof); err == nil {
			t.Errorf("VerifyInclusion(altered entry %d) error = nil, want error", seq)
		}
	}
	if err := c.VerifyInclusion(l.entries[c.Size], nil); err == nil {
		t.Errorf("VerifyInclusion(entry %d, beyond the checkpoint) error = nil, want error", c.Size+1)
	}
}

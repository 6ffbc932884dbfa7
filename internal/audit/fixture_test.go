package audit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
)

const testOrigin = "strongroom/test/audit"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	signerOnce sync.Once
	signer     hsm.SigningKey // the package's one HSM key, in a soft HSM
	signerErr  error
	signerDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if signerDir != "" {
		os.RemoveAll(signerDir)
	}
	os.Exit(code)
}

// testSigner returns the checkpoint signing key, made once in a soft HSM.
func testSigner(t testing.TB) hsm.SigningKey {
	t.Helper()
	signerOnce.Do(func() {
		ctx := context.Background()
		if signerDir, signerErr = os.MkdirTemp("", "audit-test-"); signerErr != nil {
			return
		}
		h, err := soft.Open(ctx, filepath.Join(signerDir, "eu1"), []byte("audit test"), soft.Options{Create: true})
		if err != nil {
			signerErr = err
			return
		}
		signer, signerErr = h.GenerateSigningKey(ctx, LabelSigning)
	})
	if signerErr != nil {
		t.Fatalf("soft HSM signing key: %v", signerErr)
	}
	return signer
}

// fixedKey is a test-only P-384 key whose scalar is public (SHA-384 of a
// fixed string). It signs the committed fuzz seeds and plays the untrusted
// key.
func fixedKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	d := sha512.Sum384([]byte("strongroom audit test key (public, never trust it)"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sampleEntry returns a varied, valid entry to append as entry i (from 1).
func sampleEntry(i int) Entry {
	actions := []Action{ActionGenerate, ActionUpload, ActionWrap, ActionUnwrap, ActionDerive, ActionDeliver,
		ActionEncrypt, ActionDecrypt, ActionRotate, ActionDestroy, ActionExport, ActionImport,
		ActionReleaseInstall, ActionCeremonyStep, ActionTokenUse}
	e := Entry{
		Time:    t0.Add(time.Duration(i)*1500*time.Millisecond + time.Duration(i)*time.Microsecond),
		Actor:   fmt.Sprintf("%032x", i*7919),
		Role:    []string{"operator", "tenant-admin", "app", "auditor"}[i%4],
		Tenant:  fmt.Sprintf("%032x", i%5+1),
		Action:  actions[i%len(actions)],
		Key:     fmt.Sprintf("data/%d", i%9+1),
		Outcome: OutcomeOK,
		Remote:  []string{"192.0.2.10:50412", "[2001:db8::7]:443", ""}[i%3],
		Request: fmt.Sprintf("req-%06d", i),
		Detail:  []string{"", "scheduled rotation", "Ünïcode détail ✓"}[i%3],
	}
	switch {
	case i%13 == 0:
		e.Actor, e.Role = ActorSystem, ""
	case i%17 == 0:
		e.Actor, e.Role, e.Tenant = ActorAnonymous, "", ""
	}
	switch {
	case i%7 == 0:
		e.Outcome, e.Reason = OutcomeRefused, "forbidden"
	case i%11 == 0:
		e.Outcome, e.Reason = OutcomeError, "hsm_unavailable"
	}
	if e.Action == ActionEncrypt || e.Action == ActionDecrypt {
		e.Count = uint64(i * 3)
	}
	if e.Action == ActionReleaseInstall || e.Action == ActionCeremonyStep {
		e.Tenant, e.Key = "", ""
	}
	return e
}

// testLog is a log with checkpoints every `every` entries.
type testLog struct {
	entries     []Entry
	checkpoints [][]byte
	state       State
}

var (
	logOnce sync.Once
	theLog  testLog
)

// standardLog returns the log of 250 entries with a checkpoint every 50
// that most tests tamper with (on copies: it is built once).
func standardLog(t testing.TB) testLog {
	t.Helper()
	logOnce.Do(func() { theLog = buildLog(t, 250, 50) })
	if len(theLog.entries) != 250 {
		t.Fatal("the standard log could not be built")
	}
	return theLog
}

func buildLog(t testing.TB, n, every int) testLog {
	t.Helper()
	var l testLog
	for i := 1; i <= n; i++ {
		e, err := l.state.Append(sampleEntry(i))
		if err != nil {
			t.Fatalf("State.Append(entry %d) error = %v", i, err)
		}
		l.entries = append(l.entries, e)
		if i%every == 0 {
			l.checkpoints = append(l.checkpoints, l.sign(t, testSigner(t)))
		}
	}
	return l
}

// sign signs a checkpoint of the log as it stands.
func (l *testLog) sign(t testing.TB, s crypto.Signer) []byte {
	t.Helper()
	c := l.state.Checkpoint(testOrigin, t0.Add(time.Duration(l.state.Size())*1500*time.Millisecond+time.Second))
	signed, err := SignCheckpoint(context.Background(), s, c)
	if err != nil {
		t.Fatalf("SignCheckpoint(size %d) error = %v", c.Size, err)
	}
	return signed
}

// entriesOf yields the entries of a slice.
func entriesOf(es []Entry) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func verify(t testing.TB, es []Entry, cps [][]byte) (Report, error) {
	t.Helper()
	return Verify(testOrigin, []*ecdsa.PublicKey{testSigner(t).ECDSAPublicKey()}, cps, entriesOf(es))
}

// verifier returns a function that verifies entries against cps as Verify
// does, but checks the checkpoints' signatures once, not on each call: the
// tests that tamper with every row would otherwise spend their time (a
// minute under the race detector) verifying the same P-384 signatures. A
// Verifier that has seen no entry is copied to start afresh.
func verifier(t testing.TB, cps [][]byte) func(es []Entry) (Report, error) {
	t.Helper()
	base, err := NewVerifier(testOrigin, []*ecdsa.PublicKey{testSigner(t).ECDSAPublicKey()}, cps)
	if err != nil {
		t.Fatalf("NewVerifier() error = %v", err)
	}
	return func(es []Entry) (Report, error) {
		v := *base
		return v.run(entriesOf(es))
	}
}

// rechain recomputes Seq, Prev and Hash of es[from:] after es[from-1], as
// an attacker with write access to the store could.
func rechain(t testing.TB, es []Entry, from int) []Entry {
	t.Helper()
	es = slices.Clone(es)
	var prev Head
	if from > 0 {
		prev = es[from-1].Head()
	}
	for i := from; i < len(es); i++ {
		e, err := Chain(prev, es[i])
		if err != nil {
			t.Fatalf("Chain(entry %d) error = %v", i+1, err)
		}
		es[i], prev = e, e.Head()
	}
	return es
}

// wantStrict checks that parse accepts data but refuses it with bit 0 or 7
// of any byte flipped, cut at any length, or with a byte appended.
func wantStrict(t *testing.T, name string, data []byte, parse func([]byte) error) {
	t.Helper()
	if err := parse(data); err != nil {
		t.Fatalf("%s(data) error = %v", name, err)
	}
	for i := range data {
		for _, bit := range []byte{0x01, 0x80} {
			bad := slices.Clone(data)
			bad[i] ^= bit
			if parse(bad) == nil {
				t.Fatalf("%s(byte %d ^ %#x) error = nil, want error", name, i, bit)
			}
		}
	}
	for n := range len(data) {
		if parse(data[:n]) == nil {
			t.Fatalf("%s(first %d bytes) error = nil, want error", name, n)
		}
	}
	if parse(append(slices.Clone(data), 0)) == nil {
		t.Errorf("%s(trailing byte) error = nil, want error", name)
	}
}

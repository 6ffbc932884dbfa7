package transcript

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

var (
	key, _   = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	other, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	t0       = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
)

func sample(t testing.TB) (*Log, []byte) {
	t.Helper()
	id, _ := sign.KeyIDOf(&key.PublicKey)
	l := New("2026-1", 1, id)
	steps := [][]string{
		{"plan.checked", "digest", "ab12", "regions", "eu1,us1"},
		{"approval.accepted", "officer", "alice", "source", "alice.approval"},
		{"approval.rejected", "source", "mallory.approval", "reason", "signed by a key that is not an officer of this plan"},
		{"secret.generated", "name", "kdf-seed", "commitment", "00ff"},
		{"bundle.written", "region", "eu1", "file", "2026-1.eu1.bundle", "empty", ""},
	}
	for i, s := range steps {
		if _, err := l.Append(t0.Add(time.Duration(i)*time.Second), s[0], s[1:]...); err != nil {
			t.Fatalf("Append(%s) error = %v", s[0], err)
		}
	}
	der, err := l.Sign(key)
	if err != nil {
		t.Fatalf("Sign() error = %v", err)
	}
	return l, der
}

func TestRoundTrip(t *testing.T) {
	l, der := sample(t)
	got, err := Parse(der, &key.PublicKey)
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	if got.Head() != l.Head() || len(got.Entries) != 5 || got.Release != "2026-1" {
		t.Fatalf("Parse() = %d entries head %x, want 5 entries head %x", len(got.Entries), got.Head(), l.Head())
	}
	if got.Entries[1].Get("officer") != "alice" || !got.Entries[3].Time.Equal(t0.Add(3*time.Second)) {
		t.Errorf("entries not preserved: %+v", got.Entries[1])
	}
	for _, e := range l.Entries {
		if !got.Contains(e.Hash) {
			t.Errorf("Contains(head after entry %d) = false", e.Seq)
		}
	}
	if got.Contains([32]byte{9}) {
		t.Error("Contains(random) = true")
	}
	var buf bytes.Buffer
	got.Print(&buf)
	for _, want := range []string{"release 2026-1", "approval.rejected", `reason="signed by a key that is not an officer of this plan"`, "head  "} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("Print() lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestEveryAlteredByteFails(t *testing.T) {
	_, der := sample(t)
	for i := range der {
		bad := bytes.Clone(der)
		bad[i] ^= 0x01
		if _, err := Parse(bad, &key.PublicKey); err == nil {
			t.Fatalf("Parse accepted the transcript with byte %d altered", i)
		}
	}
	for _, n := range []int{1, 10, len(der) / 2} {
		if _, err := Parse(der[:len(der)-n], &key.PublicKey); err == nil {
			t.Errorf("Parse accepted the transcript truncated by %d bytes", n)
		}
	}
	if _, err := Parse(append(bytes.Clone(der), 0), &key.PublicKey); err == nil {
		t.Error("Parse accepted a trailing byte")
	}
	if _, err := Parse(der, &other.PublicKey); err == nil {
		t.Error("Parse accepted a transcript signed by another key")
	}
}

func TestReorderedOrDroppedEntriesFail(t *testing.T) {
	l, _ := sample(t)
	swap := *l
	swap.Entries = append([]Entry(nil), l.Entries...)
	swap.Entries[1], swap.Entries[2] = swap.Entries[2], swap.Entries[1]
	der, err := swap.Sign(key) // even re-signed, the chain gives it away
	if err == nil {
		if _, err := Parse(der, &key.PublicKey); err == nil {
			t.Error("Parse accepted reordered entries")
		}
	}
	drop := *l
	drop.Entries = append(append([]Entry(nil), l.Entries[:2]...), l.Entries[3:]...)
	if der, err := drop.Sign(key); err == nil {
		if _, err := Parse(der, &key.PublicKey); err == nil {
			t.Error("Parse accepted a dropped entry")
		}
	}
}

func TestInvalidEntriesRefused(t *testing.T) {
	l := New("r", 1, [32]byte{})
	for _, kv := range [][]string{{"", "k", "v"}, {"ev\nil", "k", "v"}, {"ev", "k"}, {"ev", "k\x00", "v"}} {
		if _, err := l.Append(t0, kv[0], kv[1:]...); err == nil {
			t.Errorf("Append(%q) error = nil", kv)
		}
	}
	if len(l.Entries) != 0 {
		t.Error("a refused Append added an entry")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, der []byte) {
		l, err := Parse(der, &key.PublicKey)
		if err == nil && l == nil {
			t.Fatal("nil log without error")
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	_, der := sample(t)
	fuzzcorpus.New(t).Add("FuzzParse", "valid", der)
}

package transcript

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/docs"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

const ceremonyDoc = "../../docs/ceremony.md"

type docEntry struct {
	at    time.Time
	event string
	kv    []string
}

// docEntries are the entries of the transcript example of docs/ceremony.md:
// the first a ceremony records (internal/ceremony's check) for the plan
// example of docs/ceremony-formats.md, with the certificate and request
// examples of docs/formats.md for its region.
func docEntries(t *testing.T) []docEntry {
	t.Helper()
	pl := docs.Peek(t, "../../docs/ceremony-formats.md", "plan")
	req := docs.Peek(t, "../../docs/formats.md", "enrollment-request")
	cert := docs.Peek(t, "../../docs/formats.md", "region-certificate")
	notAfter := time.Unix(int64(binary.BigEndian.Uint64(cert.Hex("not-after"))), 0).UTC()
	t0 := time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	return []docEntry{
		{ms(0), "plan.checked", []string{"release", pl.Text("release"), "kind", plan.Kind(pl.Uint("kind")).String(),
			"digest", hex.EncodeToString(pl.Hex("digest")), "iterations", fmt.Sprint(pl.Uint("iterations")),
			"quorum", fmt.Sprintf("%d of 2", pl.Uint("quorum"))}},
		{ms(6), "region.verified", []string{"region", req.Text("region"), "key", hex.EncodeToString(req.Hex("key-id")),
			"not-after", notAfter.Format(time.RFC3339)}},
		{ms(11), "approval.accepted", []string{"source", "alice.approval", "officer", "alice"}},
		{ms(15), "approval.accepted", []string{"source", "bob.approval", "officer", "bob"}},
		{ms(16), "quorum.met", []string{"officers", "alice, bob", "required", fmt.Sprint(pl.Uint("quorum"))}},
	}
}

// TestDocTranscript makes the transcript example of docs/ceremony.md again
// with Append and Sign (the page's primary signing key signs
// deterministically): every entry, every chain hash, the signature and the
// file; then parses it.
func TestDocTranscript(t *testing.T) {
	ex := docs.KAT(t, ceremonyDoc, "transcript")
	signer := ex.P384("primary-signing-key")
	pub := signer.Public().(*ecdsa.PublicKey)
	id, err := sign.KeyIDOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("primary-key-id"); !bytes.Equal(id[:], want) {
		t.Errorf("KeyID(primary signing key) = %x, want %x", id, want)
	}
	if got := ex.Text("domain"); got != domain {
		t.Errorf("domain = %q, want %q", got, domain)
	}
	l := New(ex.Text("release"), uint8(ex.Uint("kind")), id)
	if h, want := l.Head(), ex.Hex("genesis"); !bytes.Equal(h[:], want) {
		t.Errorf("New().Head() = %x, want %x", h, want)
	}
	entries := docEntries(t)
	parts := []string{"header"}
	for i, e := range entries {
		h, err := l.Append(e.at, e.event, e.kv...)
		if err != nil {
			t.Fatalf("Append(%s) = %v", e.event, err)
		}
		enc, err := marshalEntry(&l.Entries[i])
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("entry-%d", i)
		want := ex.Hex(name)
		if len(want) < 3 || int(want[0])<<16|int(want[1])<<8|int(want[2]) != len(want)-3 || !bytes.Equal(enc, want[3:]) {
			t.Errorf("%s = u24<%x>, want %x", name, enc, want)
		}
		chain := fmt.Sprintf("chain-%d", i+1)
		if i == len(entries)-1 {
			chain = "head"
		}
		if want := ex.Hex(chain); !bytes.Equal(h[:], want) {
			t.Errorf("%s = %x, want %x", chain, h, want)
		}
		parts = append(parts, name)
	}
	der, err := l.Sign(signer)
	if err != nil {
		t.Fatalf("Sign() = %v", err)
	}
	var want []byte
	for _, n := range append(parts, "head", "signature") {
		want = append(want, ex.Hex(n)...)
	}
	if !bytes.Equal(der, want) {
		t.Errorf("Sign() = %x, want %x", der, want)
	}
	got, err := Parse(want, pub)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if got.Head() != l.Head() || len(got.Entries) != len(entries) || got.Entries[2].Get("officer") != "alice" {
		t.Errorf("Parse() = %d entries, head %x", len(got.Entries), got.Head())
	}
}

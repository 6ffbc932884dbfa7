package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/docs"
)

const auditDoc = "../../docs/audit.md"

// docLog appends the entries of docs/audit.md's "audit-log" example, as
// the page encodes them, and checks every encoding and hash, the root and
// the appender state.
func docLog(t *testing.T) *audit.State {
	t.Helper()
	ex := docs.KAT(t, auditDoc, "audit-log")
	var s audit.State
	for i := 1; i <= 3; i++ {
		want := ex.Hex(fmt.Sprint("entry-", i))
		e, err := audit.ParseEntry(want)
		if err != nil {
			t.Fatalf("ParseEntry(entry %d) = %v", i, err)
		}
		c, err := s.Append(e)
		if err != nil {
			t.Fatalf("Append(entry %d) = %v", i, err)
		}
		if c.Seq != uint64(i) {
			t.Errorf("entry %d: seq %d", i, c.Seq)
		}
		if enc, err := c.Encode(); err != nil || !bytes.Equal(enc, want) {
			t.Errorf("Encode(entry %d) = %x, %v, want %x", i, enc, err, want)
		}
		leaf, err := audit.LeafHash(c)
		if want := ex.Hex(fmt.Sprint("leaf-", i)); err != nil || !bytes.Equal(leaf[:], want) {
			t.Errorf("LeafHash(entry %d) = %x, %v, want %x", i, leaf, err, want)
		}
		if want := ex.Hex(fmt.Sprint("hash-", i)); !bytes.Equal(c.Hash[:], want) {
			t.Errorf("entry %d: hash %x, want %x", i, c.Hash, want)
		}
	}
	if root, want := s.Root(), ex.Hex("root"); !bytes.Equal(root[:], want) {
		t.Errorf("Root() = %x, want %x", root, want)
	}
	if st, err := s.MarshalBinary(); err != nil || !bytes.Equal(st, ex.Hex("state")) {
		t.Errorf("State.MarshalBinary() = %x, %v, want %x", st, err, ex.Hex("state"))
	}
	return &s
}

func TestDocLog(t *testing.T) { docLog(t) }

// TestDocCheckpoint signs the checkpoint of docs/audit.md (RFC 6979, so the
// signature is the page's byte for byte) over the example log, and parses
// the page's checkpoint; then the witness of that checkpoint.
func TestDocCheckpoint(t *testing.T) {
	s := docLog(t)
	ex := docs.KAT(t, auditDoc, "checkpoint")
	signer := ex.P384("signing-key")
	spki, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("spki"); !bytes.Equal(spki, want) {
		t.Errorf("SPKI = %x, want %x", spki, want)
	}
	if id, want := sha256.Sum256(spki), ex.Hex("key-id"); !bytes.Equal(id[:], want) {
		t.Errorf("KeyID = %x, want %x", id, want)
	}
	region, origin := ex.Text("region"), ex.Text("origin")
	if got := auditlog.Origin(region); got != origin {
		t.Errorf("auditlog.Origin(%q) = %q, want %q", region, got, origin)
	}
	cp := s.Checkpoint(origin, time.UnixMicro(int64(ex.Uint("time"))))
	signed, err := audit.SignCheckpoint(context.Background(), signer, cp)
	if err != nil {
		t.Fatal(err)
	}
	body, sig := ex.Hex("body"), ex.Hex("signature")
	want := ex.Hex("signed")
	if !bytes.HasPrefix(signed, body) {
		t.Errorf("signed checkpoint = %x, want it to start with the body %x", signed, body)
	}
	if len(signed) >= len(body)+2 && !bytes.Equal(signed[len(body)+2:], sig) {
		t.Errorf("signature = %x, want %x", signed[len(body)+2:], sig)
	}
	if !bytes.Equal(signed, want) {
		t.Errorf("SignCheckpoint() = %x, want %x", signed, want)
	}
	trusted := []*ecdsa.PublicKey{signer.Public().(*ecdsa.PublicKey)}
	got, err := audit.ParseCheckpoint(want, trusted)
	if err != nil || got.Size != s.Size() || got.Origin != origin {
		t.Errorf("ParseCheckpoint(the page's checkpoint) = %+v, %v", got, err)
	}

	wex := docs.KAT(t, auditDoc, "witness")
	w, err := audit.NewWitness(want, *s, trusted)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := w.MarshalBinary()
	if wantW := wex.Hex("witness"); err != nil || !bytes.Equal(enc, wantW) {
		t.Errorf("Witness.MarshalBinary() = %x, %v, want %x", enc, err, wantW)
	}
	if _, err := audit.ParseWitness(wex.Hex("witness"), trusted); err != nil {
		t.Errorf("ParseWitness(the page's witness) = %v", err)
	}
}

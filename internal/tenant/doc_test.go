package tenant

import (
	"bytes"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/docs"
)

const formatsDoc = "../../docs/formats.md"

// wrapped is the layout of Wrap and WrapExportKey with a given nonce.
func wrapped(t *testing.T, ex *docs.Example, twk, secret, aad []byte, rel string) []byte {
	t.Helper()
	out := append([]byte{wrapVersion, byte(len(rel))}, rel...)
	return append(out, docs.GCM(t, twk, ex.Hex("nonce"), secret, aad)...)
}

// TestDocWrap recomputes the wrapped tenant secret of docs/formats.md from
// its inputs (its nonce given), and unwraps it with Unwrap.
func TestDocWrap(t *testing.T) {
	ex := docs.KAT(t, formatsDoc, "tenant-secret")
	twk, s := ex.Key("twk"), ex.Key("secret")
	ref := Ref{Tenant: ex.Text("tenant"), Type: ex.Text("type"), Version: uint32(ex.Uint("version")),
		Release: ex.Text("release"), Source: Source(ex.Text("source")), Derivation: Derivation(ex.Text("derivation"))}
	if err := ref.Check(); err != nil {
		t.Fatal(err)
	}
	if got, want := ref.aad(), ex.Hex("aad"); !bytes.Equal(got, want) {
		t.Errorf("aad = %x, want %x", got, want)
	}
	want := ex.Hex("wrapped")
	if got := wrapped(t, ex, twk.Bytes(), s.Bytes(), ref.aad(), ref.Release); !bytes.Equal(got, want) {
		t.Errorf("wrapped = %x, want %x", got, want)
	}
	if got, err := Unwrap(twk, ref, want); err != nil || !got.Equal(s) {
		t.Errorf("Unwrap(the page's wrapped secret) = %v, or another secret", err)
	}
}

// TestDocWrapExportKey does the same for the wrapped export key.
func TestDocWrapExportKey(t *testing.T) {
	ex := docs.KAT(t, formatsDoc, "export-key")
	twk, ek := ex.Key("twk"), ex.Key("export-key")
	tenantID, rel := ex.Text("tenant"), ex.Text("release")
	if got, want := exportKeyAAD(tenantID, rel), ex.Hex("aad"); !bytes.Equal(got, want) {
		t.Errorf("aad = %x, want %x", got, want)
	}
	want := ex.Hex("wrapped")
	if got := wrapped(t, ex, twk.Bytes(), ek.Bytes(), exportKeyAAD(tenantID, rel), rel); !bytes.Equal(got, want) {
		t.Errorf("wrapped = %x, want %x", got, want)
	}
	got, err := UnwrapExportKey(twk, ExportKey{Tenant: tenantID, Release: rel, Wrapped: want})
	if err != nil || !got.Equal(ek) {
		t.Errorf("UnwrapExportKey(the page's wrapped key) = %v, or another key", err)
	}
}

package exportkey

import (
	"bytes"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/docs"
	"github.com/strongroom-kms/strongroom/internal/primitive"
)

// TestDocFingerprint recomputes the keyed fingerprint of docs/formats.md
// from its inputs.
func TestDocFingerprint(t *testing.T) {
	ex := docs.KAT(t, "../../docs/formats.md", "fingerprint")
	ek, ts, tenantID := ex.Key("export-key"), ex.Key("secret"), ex.Text("tenant")
	if got := ex.Text("info"); got != fingerprintInfo {
		t.Errorf("info = %q, want %q", got, fingerprintInfo)
	}
	fk, err := primitive.HKDF(ek.Bytes(), []byte(tenantID), []byte(fingerprintInfo), 32)
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("fingerprint-key"); !bytes.Equal(fk, want) {
		t.Errorf("fingerprint key = %x, want %x", fk, want)
	}
	got, err := fingerprint(ek, tenantID, ts)
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("fingerprint"); !bytes.Equal(got, want) {
		t.Errorf("fingerprint() = %x, want %x", got, want)
	}
}

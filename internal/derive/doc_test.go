package derive

import (
	"bytes"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/docs"
)

// TestDocKnownAnswer recomputes the known answer of docs/derivation.md from
// the inputs the page gives.
func TestDocKnownAnswer(t *testing.T) {
	t.Parallel()
	ex := docs.KAT(t, "../../docs/derivation.md", "dek")
	in := Input{
		Release:      ex.Text("release"),
		Iterations:   uint32(ex.Uint("iterations")),
		Seed:         ex.Key("seed"),
		Salt:         ex.Key("kdf-salt"),
		TenantID:     ex.Text("tenant"),
		KeyType:      ex.Text("type"),
		Version:      uint32(ex.Uint("version")),
		TenantSecret: ex.Key("secret"),
	}
	password, salt := frame(in)
	if want := ex.Hex("password"); !bytes.Equal(password, want) {
		t.Errorf("password = %x, want %x", password, want)
	}
	if want := ex.Hex("salt"); !bytes.Equal(salt, want) {
		t.Errorf("salt = %x, want %x", salt, want)
	}
	k, err := Key(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("dek"); !bytes.Equal(k.Bytes(), want) {
		t.Errorf("Key() = %x, want %x", k.Bytes(), want)
	}
}

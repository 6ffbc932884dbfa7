package soft

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/docs"
)

// TestDocFile seals the soft HSM file of docs/formats.md again from its
// inputs (salt and nonce given, scrypt at the smallest cost a file may
// record) and opens it as a soft HSM.
func TestDocFile(t *testing.T) {
	ex := docs.KAT(t, "../../../docs/formats.md", "soft-hsm-file")
	h := &header{kdf: kdfParams{logN: uint8(ex.Uint("log-n")), r: uint8(ex.Uint("r")), p: uint8(ex.Uint("p"))}}
	copy(h.salt[:], ex.Hex("salt"))
	pass := []byte(ex.Text("passphrase"))
	key, check, err := deriveKey(pass, h)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Destroy()
	if want := ex.Hex("k"); !bytes.Equal(key.Bytes(), want) {
		t.Errorf("K = %x, want %x", key.Bytes(), want)
	}
	if got := ex.Text("check-message"); got != checkMessage {
		t.Errorf("check message = %q, want %q", got, checkMessage)
	}
	if want := ex.Hex("check"); !bytes.Equal(check[:], want) {
		t.Errorf("check = %x, want %x", check, want)
	}
	h.check = check
	nonce := ex.Hex("nonce")
	hdr := ex.Hex("header")
	if got := h.marshal(nonce); !bytes.Equal(got, hdr) {
		t.Errorf("header = %x, want %x", got, hdr)
	}
	e := entry{kind: kindSecret, exportable: true, derivable: true, label: ex.Text("label"), der: ex.Hex("secret-key")}
	payload, err := marshalPayload([]entry{e})
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("payload"); !bytes.Equal(payload, want) {
		t.Errorf("payload = %x, want %x", payload, want)
	}
	file, err := seal(key, h, nonce, []entry{e})
	if err != nil {
		t.Fatal(err)
	}
	sealed := docs.GCM(t, key.Bytes(), nonce, ex.Hex("payload"), hdr)[len(nonce):]
	if want := ex.Hex("sealed"); !bytes.Equal(sealed, want) {
		t.Errorf("sealed = AES-256-GCM(K, nonce, payload, header) = %x, want %x", sealed, want)
	}
	if !bytes.HasPrefix(file, hdr) || !bytes.Equal(file[len(hdr):], sealed) {
		t.Errorf("seal() = %x, want header || sealed", file)
	}
	want := ex.Hex("file")
	if !bytes.Equal(file, want) {
		t.Errorf("file = %x, want %x", file, want)
	}

	path := filepath.Join(t.TempDir(), "kat.softhsm")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path, pass, Options{})
	if err != nil {
		t.Fatalf("Open(the page's file) = %v", err)
	}
	defer s.Close()
	if _, err := s.SecretKey(context.Background(), e.label); err != nil {
		t.Errorf("SecretKey(%q) in the page's file = %v", e.label, err)
	}
}

package backup

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/docs"
)

const backupDoc = "../../docs/backup-format.md"

// TestDocKnownAnswer recomputes the example of docs/backup-format.md from
// its inputs: the export key id and file key, the binary header, the
// associated data and the sealed secret (the nonce given). The file it
// makes must be the page's PEM block, byte for byte, and testdata/v1.backup.
func TestDocKnownAnswer(t *testing.T) {
	ex := docs.KAT(t, backupDoc, "backup")
	ek, s := ex.Key("export-key"), ex.Key("secret")

	id := KeyID(ek)
	if want := ex.Hex("key-id"); !bytes.Equal(id[:], want) {
		t.Errorf("KeyID() = %x, want %x", id, want)
	}
	if got := ex.Text("key-id-info"); got != keyIDLabel {
		t.Errorf("key id info = %q, want %q", got, keyIDLabel)
	}
	if got := ex.Text("file-key-info"); got != fileKeyLabel {
		t.Errorf("file key info = %q, want %q", got, fileKeyLabel)
	}
	kf := fileKey(ek)
	if want := ex.Hex("file-key"); !bytes.Equal(kf.Bytes(), want) {
		t.Errorf("fileKey() = %x, want %x", kf.Bytes(), want)
	}

	h := Header{
		Tenant:     ex.Text("tenant"),
		TenantName: ex.Text("tenant-name"),
		Type:       ex.Text("type"),
		Version:    uint32(ex.Uint("version")),
		Source:     ex.Text("source"),
		Derivation: ex.Text("derivation"),
		Release:    ex.Text("release"),
		Created:    time.UnixMicro(int64(ex.Uint("created"))),
		Exported:   time.UnixMicro(int64(ex.Uint("exported"))),
		Region:     ex.Text("region"),
		KeyID:      id,
	}
	h, err := h.Check()
	if err != nil {
		t.Fatalf("Check(the page's header) = %v", err)
	}
	header := ex.Hex("header")
	if got := aad(h); !bytes.Equal(got, append([]byte(ex.Text("aad-domain")+"\x00"), header...)) {
		t.Errorf("aad() = %x, want aad-domain || 00 || %x", got, header)
	}
	sealed := docs.GCM(t, kf.Bytes(), ex.Hex("nonce"), s.Bytes(), aad(h))
	if want := ex.Hex("sealed"); !bytes.Equal(sealed, want) {
		t.Errorf("sealed = %x, want %x", sealed, want)
	}
	file, err := File{Header: h, Sealed: sealed}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	body := mustDecode(t, file)
	if !bytes.HasPrefix(body, header) || !bytes.Equal(body[len(header):], sealed) {
		t.Errorf("the file's body = %x, want header || sealed", body)
	}
	page, err := os.ReadFile(backupDoc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, file) {
		t.Errorf("%s does not show the file the example makes:\n%s", backupDoc, file)
	}
	known, err := os.ReadFile(filepath.Join("testdata", "v1.backup"))
	if err != nil || !bytes.Equal(known, file) {
		t.Errorf("testdata/v1.backup = %q, %v, want the example's file", known, err)
	}
	f, err := Parse(file)
	if err != nil {
		t.Fatalf("Parse(the example's file) = %v", err)
	}
	got, err := Open(ek, f)
	if err != nil || !got.Equal(s) {
		t.Errorf("Open(the example's file) = %v, want the secret", err)
	}
}

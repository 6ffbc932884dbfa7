package soft

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The decoders of the soft HSM file: the plaintext header, and the payload
// that AES-GCM authenticates (fuzzed directly, since a fuzzer cannot forge
// the tag). Seed corpora are in testdata/fuzz (refresh them with
// STRONGROOM_WRITE_CORPUS=1).

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, nonce, sealed, err := parseHeader(data)
		if err != nil {
			return
		}
		if !h.kdf.valid() || len(nonce) != nonceSize || len(sealed) < 16 {
			t.Fatalf("parseHeader accepted bad input: %+v", h)
		}
		if !bytes.Equal(h.marshal(nonce), data[:headerSize]) {
			t.Fatal("header does not round-trip")
		}
	})
}

func FuzzParsePayload(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parsePayload(data)
		if err != nil {
			return
		}
		out, err := marshalPayload(entries)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("payload does not round-trip: %v", err)
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("STRONGROOM_WRITE_CORPUS") != "1" {
		t.Skip("set STRONGROOM_WRITE_CORPUS=1 to regenerate the committed fuzz seed corpora")
	}
	payload, err := marshalPayload([]entry{
		{kind: kindSecret, label: "aes", exportable: true, der: bytes.Repeat([]byte{7}, 32)},
		{kind: kindSigning, label: "sig", der: []byte("not really pkcs8")},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := openNew(t, filepath.Join(t.TempDir(), "hsm.soft"))
	h.Close()
	file, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"FuzzParseHeader": file, "FuzzParsePayload": payload} {
		dir := filepath.Join("testdata", "fuzz", name)
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "valid"), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

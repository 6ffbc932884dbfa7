package soft

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
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
	w := fuzzcorpus.New(t)
	w.Add("FuzzParseHeader", "valid", file)
	w.Add("FuzzParsePayload", "valid", payload)
}

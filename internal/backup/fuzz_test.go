package backup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The seed corpus under testdata/fuzz/FuzzParse holds valid files (PEM) and
// valid binary bodies, made by TestWriteTestdata (run it with
// STRONGROOM_WRITE_CORPUS=1 to refresh them). They are sealed under
// testKey(t, 0x11), so the fuzzer also reaches Open's success path.

func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN " + PEMType + "-----\n-----END " + PEMType + "-----\n"))
	ek := testKey(f, 0x11)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse() error = %v, want ErrMalformed", err)
			}
		} else {
			enc := checkReencodes(t, file)
			text := bytes.Trim(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), " \t\r\n")
			if !bytes.Equal(bytes.TrimRight(enc, "\n"), text) {
				t.Fatalf("Parse() accepted a file that is not Encode()'s:\n%q\nwant\n%q", data, enc)
			}
			openOrRefuse(t, ek, file)
		}
		// The same input as a binary body, to reach its parser directly.
		if file, err := parseBody(data); err == nil {
			enc := checkReencodes(t, file)
			if g, err := Parse(enc); err != nil || !bytes.Equal(g.Sealed, data[len(data)-sealedSize:]) {
				t.Fatalf("Parse(Encode(parseBody())) = %v, %v", g, err)
			}
			openOrRefuse(t, ek, file)
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("parseBody() error = %v, want ErrMalformed", err)
		}
	})
}

// checkReencodes checks that a parsed file encodes, and parses back to an
// equal File. It returns the encoding.
func checkReencodes(t *testing.T, f File) []byte {
	t.Helper()
	enc, err := f.Encode()
	if err != nil {
		t.Fatalf("Encode() of a parsed file error = %v", err)
	}
	g, err := Parse(enc)
	if err != nil {
		t.Fatalf("Parse(Encode()) error = %v", err)
	}
	if !equalFile(f, g) {
		t.Fatalf("Parse(Encode(f)) = %+v, want %+v", g, f)
	}
	return enc
}

// openOrRefuse opens f under the seeds' export key: any failure must be one
// of the package's errors.
func openOrRefuse(t *testing.T, ek secret.Key, f File) {
	t.Helper()
	s, err := Open(ek, f)
	if err == nil {
		s.Destroy()
		return
	}
	if !errors.Is(err, ErrOtherKey) && !errors.Is(err, ErrOpen) {
		t.Fatalf("Open(parsed file) error = %v, want ErrOtherKey or ErrOpen", err)
	}
}

func equalFile(a, b File) bool {
	x, y := a.Header, b.Header
	return x.Tenant == y.Tenant && x.TenantName == y.TenantName && x.Type == y.Type &&
		x.Version == y.Version && x.Source == y.Source && x.Derivation == y.Derivation &&
		x.Release == y.Release && x.Created.Equal(y.Created) && x.Exported.Equal(y.Exported) &&
		x.Region == y.Region && x.KeyID == y.KeyID && bytes.Equal(a.Sealed, b.Sealed)
}

// TestWriteTestdata writes the fuzz seed corpus and, when regenerating, the
// known-answer file testdata/v1.backup if it is missing.
func TestWriteTestdata(t *testing.T) {
	h1 := testHeader()
	h2 := testHeader()
	h2.Tenant, h2.TenantName, h2.Type, h2.Version = "01234567-89ab-4cde-8f01-23456789abcd", "globex", tenant.TypeSearchIndex, 1
	h2.Source, h2.Derivation, h2.Release, h2.Region = "uploaded", "none", "r.2025_12-b", ""
	file1, _, _ := sealed(t, h1)
	file2, _, _ := sealed(t, h2)
	w := fuzzcorpus.New(t)
	// The known-answer file is written once, never replaced.
	known := filepath.Join("testdata", "v1.backup")
	if _, err := os.Stat(known); w.Regenerating() && errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(known, file1, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.Add("FuzzParse", "valid-hsm-pbkdf2", file1)
	w.Add("FuzzParse", "valid-uploaded-none", file2)
	w.Add("FuzzParse", "valid-crlf", bytes.ReplaceAll(file2, []byte("\n"), []byte("\r\n")))
	w.Add("FuzzParse", "body-hsm-pbkdf2", mustDecode(t, file1))
	w.Add("FuzzParse", "body-uploaded-none", mustDecode(t, file2))
}

package backup

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

func testKey(t testing.TB, fill byte) secret.Key {
	t.Helper()
	b := bytes.Repeat([]byte{fill}, secret.Size)
	b[0] = 0x5a
	k, err := secret.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	created  = time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.UTC)
	exported = time.Date(2026, 9, 10, 11, 12, 13, 141516000, time.UTC)
)

func testHeader() Header {
	return Header{
		Tenant:     "0123456789abcdef0123456789abcdef",
		TenantName: "acme-prod",
		Type:       tenant.TypeData,
		Version:    3,
		Source:     "hsm",
		Derivation: "pbkdf2",
		Release:    "2026-1",
		Created:    created,
		Exported:   exported,
		Region:     "eu1",
	}
}

// sealed returns a file sealing the secret testKey(0x22) under
// testKey(0x11), and those two keys.
func sealed(t testing.TB, h Header) (file []byte, exportKey, s secret.Key) {
	t.Helper()
	exportKey, s = testKey(t, 0x11), testKey(t, 0x22)
	file, err := Seal(exportKey, h, s)
	if err != nil {
		t.Fatalf("Seal() error = %v", err)
	}
	return file, exportKey, s
}

func mustParse(t testing.TB, file []byte) File {
	t.Helper()
	f, err := Parse(file)
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	return f
}

func TestRoundTrip(t *testing.T) {
	for _, region := range []string{"eu1", ""} {
		h := testHeader()
		h.Region = region
		file, ek, s := sealed(t, h)
		if !bytes.HasPrefix(file, []byte("-----BEGIN "+PEMType+"-----\n")) {
			t.Fatalf("Seal() = %q, want a %s PEM block", file, PEMType)
		}
		f := mustParse(t, file)
		want := h
		want.KeyID = KeyID(ek)
		if f.Header != want {
			t.Errorf("Parse().Header = %+v, want %+v", f.Header, want)
		}
		got, err := Open(ek, f)
		if err != nil {
			t.Fatalf("Open() error = %v", err)
		}
		if !got.Equal(s) {
			t.Error("Open() returned another secret than was sealed")
		}
		enc, err := f.Encode()
		if err != nil || !bytes.Equal(enc, file) {
			t.Errorf("Encode() = %q, %v, want the sealed file %q", enc, err, file)
		}
		if strings.Contains(string(file), hex.EncodeToString(s.Bytes())) {
			t.Error("the file holds the secret in clear")
		}
	}
}

func TestSealNormalizes(t *testing.T) {
	h := testHeader()
	paris := time.FixedZone("CET", 3600)
	h.Created = created.Add(789).In(paris) // nanoseconds, another zone
	h.Exported = exported.In(paris)
	file, _, _ := sealed(t, h)
	f := mustParse(t, file)
	if !f.Header.Created.Equal(created) || f.Header.Created.Location() != time.UTC || !f.Header.Exported.Equal(exported) {
		t.Errorf("Parse() times = %v, %v, want %v, %v (UTC, microseconds)", f.Header.Created, f.Header.Exported, created, exported)
	}
	for _, want := range []string{"Created: 2026-03-04T05:06:07.891234Z", "Tenant-Name: acme-prod", "Key-Version: 3", "Region: eu1"} {
		if !strings.Contains(string(file), want+"\n") {
			t.Errorf("the file lacks the informational header %q:\n%s", want, file)
		}
	}
}

func TestSealRefuses(t *testing.T) {
	ek, s := testKey(t, 0x11), testKey(t, 0x22)
	tests := []struct {
		name string
		edit func(*Header)
	}{
		{"tenant id", func(h *Header) { h.Tenant = "acme" }},
		{"tenant name", func(h *Header) { h.TenantName = "Acme" }},
		{"type", func(h *Header) { h.Type = "nope" }},
		{"version 0", func(h *Header) { h.Version = 0 }},
		{"source", func(h *Header) { h.Source = "" }},
		{"derivation", func(h *Header) { h.Derivation = "scrypt" }},
		{"release", func(h *Header) { h.Release = "" }},
		{"created zero", func(h *Header) { h.Created = time.Time{} }},
		{"exported year 10000", func(h *Header) { h.Exported = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"region", func(h *Header) { h.Region = "EU 1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHeader()
			tt.edit(&h)
			if _, err := Seal(ek, h, s); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Seal() error = %v, want store.ErrInvalid", err)
			}
		})
	}
	h := testHeader()
	h.KeyID = KeyID(testKey(t, 0x33))
	if _, err := Seal(ek, h, s); !errors.Is(err, ErrOtherKey) {
		t.Errorf("Seal(header naming another export key) error = %v, want ErrOtherKey", err)
	}
	if _, err := Seal(secret.Key{}, testHeader(), s); err == nil {
		t.Error("Seal(empty export key) error = nil")
	}
	if _, err := Seal(ek, testHeader(), secret.Key{}); err == nil {
		t.Error("Seal(empty secret) error = nil")
	}
}

// TestEveryFieldBound changes each header field to another valid value, and
// checks that the file (re-encoded with matching PEM headers) parses but no
// longer opens.
func TestEveryFieldBound(t *testing.T) {
	file, ek, _ := sealed(t, testHeader())
	tests := []struct {
		name string
		edit func(*Header)
		want error
	}{
		{"tenant", func(h *Header) { h.Tenant = "fedcba9876543210fedcba9876543210" }, ErrOpen},
		{"tenant name", func(h *Header) { h.TenantName = "acme-dev" }, ErrOpen},
		{"type", func(h *Header) { h.Type = tenant.TypeDeterministic }, ErrOpen},
		{"version", func(h *Header) { h.Version = 4 }, ErrOpen},
		{"source", func(h *Header) { h.Source = "uploaded" }, ErrOpen},
		{"derivation", func(h *Header) { h.Derivation = "none" }, ErrOpen},
		{"release", func(h *Header) { h.Release = "2026-2" }, ErrOpen},
		{"created", func(h *Header) { h.Created = h.Created.Add(time.Microsecond) }, ErrOpen},
		{"exported", func(h *Header) { h.Exported = h.Exported.Add(-time.Microsecond) }, ErrOpen},
		{"region changed", func(h *Header) { h.Region = "eu2" }, ErrOpen},
		{"region removed", func(h *Header) { h.Region = "" }, ErrOpen},
		{"export key id", func(h *Header) { h.KeyID[7] ^= 1 }, ErrOtherKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, file)
			tt.edit(&f.Header)
			enc, err := f.Encode()
			if err != nil {
				t.Fatalf("Encode() error = %v", err)
			}
			g := mustParse(t, enc)
			if _, err := Open(ek, g); !errors.Is(err, tt.want) {
				t.Errorf("Open(altered %s) error = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

// TestFlipEveryByte flips each bit of each byte of the PEM body and checks
// that nothing opens: neither the file with its original PEM headers, nor
// the body alone.
func TestFlipEveryByte(t *testing.T) {
	file, ek, _ := sealed(t, testHeader())
	block, _ := pem.Decode(file)
	for i := range block.Bytes {
		for bit := range 8 {
			body := bytes.Clone(block.Bytes)
			body[i] ^= 1 << bit
			altered := pem.EncodeToMemory(&pem.Block{Type: block.Type, Headers: block.Headers, Bytes: body})
			if f, err := Parse(altered); err == nil {
				if _, err := Open(ek, f); err == nil {
					t.Fatalf("Open(file with byte %d bit %d flipped) succeeded", i, bit)
				}
			} else if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(file with byte %d bit %d flipped) error = %v, want ErrMalformed", i, bit, err)
			}
			if f, err := parseBody(body); err == nil {
				_, err := Open(ek, f)
				if !errors.Is(err, ErrOpen) && !errors.Is(err, ErrOtherKey) {
					t.Fatalf("Open(body with byte %d bit %d flipped) error = %v, want ErrOpen or ErrOtherKey", i, bit, err)
				}
			}
		}
	}
}

func TestWrongExportKey(t *testing.T) {
	file, ek, s := sealed(t, testHeader())
	other := testKey(t, 0x33)
	_, err := Open(other, mustParse(t, file))
	if !errors.Is(err, ErrOtherKey) {
		t.Fatalf("Open(another export key) error = %v, want ErrOtherKey", err)
	}
	for _, k := range []secret.Key{ek, s, other} {
		if strings.Contains(err.Error(), hex.EncodeToString(k.Bytes())) {
			t.Errorf("Open() error %q contains key material", err)
		}
	}
	if _, err := Open(secret.Key{}, mustParse(t, file)); err == nil {
		t.Error("Open(empty export key) error = nil")
	}
}

// TestForgedKeyID seals under one export key a file that names another's
// id: the id check passes, decryption must not.
func TestForgedKeyID(t *testing.T) {
	right, wrong, s := testKey(t, 0x11), testKey(t, 0x33), testKey(t, 0x22)
	h := testHeader()
	h.KeyID = KeyID(right)
	h, err := h.Check()
	if err != nil {
		t.Fatal(err)
	}
	kf := fileKey(wrong)
	sealed, err := primitive.Seal(kf, s.Bytes(), aad(h))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := File{Header: h, Sealed: sealed}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(right, mustParse(t, enc)); !errors.Is(err, ErrOpen) {
		t.Errorf("Open(file sealed under another key, naming this key's id) error = %v, want ErrOpen", err)
	}
}

func TestOpenRefusesInvalidFile(t *testing.T) {
	file, ek, _ := sealed(t, testHeader())
	f := mustParse(t, file)
	short := f
	short.Sealed = f.Sealed[:len(f.Sealed)-1]
	bad := f
	bad.Header.Type = "nope"
	for name, g := range map[string]File{"short sealed": short, "invalid header": bad, "zero": {}} {
		if _, err := Open(ek, g); !errors.Is(err, ErrMalformed) {
			t.Errorf("Open(%s) error = %v, want ErrMalformed", name, err)
		}
		if _, err := g.Encode(); err == nil {
			t.Errorf("Encode(%s) error = nil", name)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	file, _, _ := sealed(t, testHeader())
	block, _ := pem.Decode(file)
	reencode := func(typ string, headers map[string]string, body []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: body})
	}
	edited := func(k, v string) map[string]string {
		m := map[string]string{}
		for hk, hv := range block.Headers {
			m[hk] = hv
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	withVersion := func(v byte) []byte {
		b := bytes.Clone(block.Bytes)
		b[0] = v
		return b
	}
	lines := strings.Split(string(file), "\n")
	var rewrapped []string
	for _, l := range lines {
		if len(l) == 64 && !strings.Contains(l, ":") {
			l = l[:32] + "\n" + l[32:]
		}
		rewrapped = append(rewrapped, l)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a PEM file"},
		{"not PEM", []byte("hello"), "not a PEM file"},
		{"oversize", append(bytes.Clone(file), bytes.Repeat([]byte("\n"), MaxSize)...), "larger than"},
		{"two blocks", append(bytes.Clone(file), file...), "more than one PEM block"},
		{"wrong type", reencode("STRONGROOM KEY BACKUPS", block.Headers, block.Bytes), `not a "STRONGROOM KEY BACKUP"`},
		{"trailing garbage", append(bytes.Clone(file), "x"...), "data after"},
		{"leading garbage", append([]byte("x\n"), file...), "data before"},
		{"truncated PEM", file[:len(file)-20], "damaged"},
		{"header edited", reencode(PEMType, edited("Tenant-Name", "evil-corp"), block.Bytes), "PEM headers disagree"},
		{"header removed", reencode(PEMType, edited("Region", ""), block.Bytes), "PEM headers disagree"},
		{"header added", reencode(PEMType, edited("Comment", "hi"), block.Bytes), "PEM headers disagree"},
		{"no headers", reencode(PEMType, nil, block.Bytes), "PEM headers disagree"},
		{"rewrapped", []byte(strings.Join(rewrapped, "\n")), "canonical"},
		{"version 0", reencode(PEMType, block.Headers, withVersion(0)), "version 0 is not supported"},
		{"version 2", reencode(PEMType, block.Headers, withVersion(2)), "version 2 is not supported"},
		{"trailing byte", reencode(PEMType, block.Headers, append(bytes.Clone(block.Bytes), 0)), "61 bytes"},
		{"short sealed", reencode(PEMType, block.Headers, block.Bytes[:len(block.Bytes)-1]), "59 bytes"},
		{"header only", reencode(PEMType, block.Headers, block.Bytes[:len(block.Bytes)-sealedSize]), "0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.data)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse() error = %v, want ErrMalformed saying %q", err, tt.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	file, ek, s := sealed(t, testHeader())
	for name, data := range map[string][]byte{
		"CRLF":                []byte(strings.ReplaceAll(string(file), "\n", "\r\n")),
		"surrounding spaces":  append(append([]byte(" \n\t\r\n"), file...), "\n\n  "...),
		"no final newline":    bytes.TrimRight(file, "\n"),
		"exactly MaxSize big": append(bytes.Clone(file), bytes.Repeat([]byte(" "), MaxSize-len(file))...),
	} {
		f, err := Parse(data)
		if err != nil {
			t.Errorf("Parse(%s) error = %v", name, err)
			continue
		}
		if got, err := Open(ek, f); err != nil || !got.Equal(s) {
			t.Errorf("Open(Parse(%s)) = %v, %v, want the secret", name, got, err)
		}
	}
}

func TestTimeRange(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC), // time.Time{} is "not set"
		time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	} {
		h := testHeader()
		h.Created, h.Exported = tm, tm
		file, ek, _ := sealed(t, h)
		f := mustParse(t, file)
		if !f.Header.Created.Equal(tm) || !f.Header.Exported.Equal(tm) {
			t.Errorf("Parse(Seal(times %v)) times = %v, %v", tm, f.Header.Created, f.Header.Exported)
		}
		if _, err := Open(ek, f); err != nil {
			t.Errorf("Open(times %v) error = %v", tm, err)
		}
	}
	for _, m := range []int64{minMicro - 1, maxMicro + 1, -1 << 63, 1<<63 - 1} {
		if _, ok := readTime(uint64(m)); ok {
			t.Errorf("readTime(%d) accepted a time outside years 1 to 9999", m)
		}
	}
}

// TestDerivations pins the key derivations to their definitions with the
// standard library's HKDF, and the labels to each other.
func TestDerivations(t *testing.T) {
	ek := testKey(t, 0x11)
	id, err := hkdf.Key(sha256.New, ek.Bytes(), nil, "strongroom key backup export key id v1", 8)
	if err != nil {
		t.Fatal(err)
	}
	if got := KeyID(ek); !bytes.Equal(got[:], id) {
		t.Errorf("KeyID() = %x, want %x", got, id)
	}
	fk, err := hkdf.Key(sha256.New, ek.Bytes(), nil, "strongroom key backup file key v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	if got := fileKey(ek); !bytes.Equal(got.Bytes(), fk) || bytes.Equal(fk[:8], id) || bytes.Equal(fk, ek.Bytes()) {
		t.Error("fileKey() is not HKDF-SHA-256(E, info = \"strongroom key backup file key v1\"), or not distinct from the key and its id")
	}
	if KeyID(ek) == KeyID(testKey(t, 0x33)) {
		t.Error("KeyID() is the same for two export keys")
	}
}

func TestMatches(t *testing.T) {
	h := testHeader()
	h.KeyID = KeyID(testKey(t, 0x11))
	h, err := h.Check()
	if err != nil {
		t.Fatal(err)
	}
	k := tenant.Key{
		Tenant: h.Tenant, Type: h.Type, Version: h.Version, State: tenant.StateDestroyed,
		Source: tenant.Source(h.Source), Derivation: tenant.Derivation(h.Derivation), Release: h.Release, Created: created.Add(300), // sub-µs
	}
	if err := h.Matches(k); err != nil {
		t.Fatalf("Matches(the key) error = %v", err)
	}
	tests := []struct {
		name string
		edit func(*tenant.Key)
	}{
		{"tenant", func(k *tenant.Key) { k.Tenant = "fedcba9876543210fedcba9876543210" }},
		{"type", func(k *tenant.Key) { k.Type = tenant.TypeAnalytics }},
		{"version", func(k *tenant.Key) { k.Version = 2 }},
		{"source", func(k *tenant.Key) { k.Source = tenant.SourceUploaded }},
		{"derivation", func(k *tenant.Key) { k.Derivation = tenant.DerivationNone }},
		{"release", func(k *tenant.Key) { k.Release = "2025-9" }},
		{"created", func(k *tenant.Key) { k.Created = k.Created.Add(time.Microsecond) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := k
			tt.edit(&other)
			if err := h.Matches(other); !errors.Is(err, ErrMismatch) {
				t.Errorf("Matches(key with another %s) error = %v, want ErrMismatch", tt.name, err)
			}
		})
	}
}

// TestParseRefusesNonCanonicalBase64 sets padding bits that base64 decoding
// ignores: the bytes decode the same, and Parse still refuses the file.
func TestParseRefusesNonCanonicalBase64(t *testing.T) {
	h := testHeader()
	h.Tenant = "01234567-89ab-4cde-8f01-23456789abcd" // a UUIDv4: a body length that needs padding
	file, _, _ := sealed(t, h)
	i := bytes.Index(file, []byte("==\n"))
	if i < 0 {
		t.Fatalf("no base64 padding in %s", file)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	altered := bytes.Clone(file)
	altered[i-1] = alphabet[strings.IndexByte(alphabet, file[i-1])^1]
	if a, b := mustDecode(t, altered), mustDecode(t, file); !bytes.Equal(a, b) {
		t.Fatal("the altered padding bits changed the decoded body")
	}
	if _, err := Parse(altered); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "canonical") {
		t.Errorf("Parse(non-canonical base64) error = %v, want ErrMalformed (canonical form)", err)
	}
}

func mustDecode(t *testing.T, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("pem.Decode failed")
	}
	return b.Bytes
}

// TestKnownFile opens testdata/v1.backup, written by an earlier build
// (TestWriteTestdata): testHeader() and the secret testKey(0x22), sealed
// under the export key testKey(0x11). It pins the format and the key
// derivations: files exported today must import in later releases.
func TestKnownFile(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("testdata", "v1.backup"))
	if err != nil {
		t.Fatal(err)
	}
	f := mustParse(t, file)
	want := testHeader()
	want.KeyID = [8]byte{0x34, 0x3e, 0xa5, 0xd2, 0xa9, 0xfd, 0xe7, 0xfe}
	if f.Header != want {
		t.Errorf("Parse(v1.backup).Header = %+v, want %+v", f.Header, want)
	}
	ek := testKey(t, 0x11)
	if got := KeyID(ek); got != want.KeyID {
		t.Errorf("KeyID(testKey(0x11)) = %x, want %x", got, want.KeyID)
	}
	s, err := Open(ek, f)
	if err != nil {
		t.Fatalf("Open(v1.backup) error = %v", err)
	}
	if !s.Equal(testKey(t, 0x22)) {
		t.Error("Open(v1.backup) returned another secret")
	}
	if enc, err := f.Encode(); err != nil || !bytes.Equal(enc, file) {
		t.Errorf("Encode(Parse(v1.backup)) = %q, %v, want the file", enc, err)
	}
}

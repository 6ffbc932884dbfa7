package keyservice

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKDF is the cheapest scrypt the format allows, for tests.
var testKDF = kdfParams{logN: 10, r: 8, p: 1}

var testPass = []byte("correct horse battery staple")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestDir(t *testing.T) (*Dir, *clock) {
	t.Helper()
	c := &clock{t: t0}
	d, err := initDir(filepath.Join(t.TempDir(), "ks"), testPass, testKDF, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, c
}

// recipient is Strongroom's side: one RSA key pair for the whole test run.
var recipient = sync.OnceValues(func() (*rsa.PrivateKey, []byte) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
})

func recipientPEMForTest() []byte { _, p := recipient(); return p }

func testMaterial(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestCreateOpen(t *testing.T) {
	d, c := newTestDir(t)
	info, err := d.Create("acme-data-2026", recipientPEMForTest(), testMaterial(7))
	if err != nil {
		t.Fatal(err)
	}
	if info.Kid != "acme-data-2026" || info.State != Active || !info.Created.Equal(t0) || !info.Revoked.IsZero() {
		t.Errorf("Create = %+v, want kid acme-data-2026, active, created %v", info, t0)
	}
	k, err := d.open("acme-data-2026")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.material.Bytes(), testMaterial(7)) {
		t.Errorf("open: material differs from the one given")
	}
	priv, _ := recipient()
	if !k.recipient.Equal(&priv.PublicKey) {
		t.Errorf("open: recipient differs")
	}

	// Random material: 32 bytes, not the same twice.
	if _, err := d.Create("k2", recipientPEMForTest(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create("k3", recipientPEMForTest(), nil); err != nil {
		t.Fatal(err)
	}
	k2, _ := d.open("k2")
	k3, _ := d.open("k3")
	if k2.material.Equal(k3.material) {
		t.Errorf("two created keys have the same material")
	}

	c.add(time.Hour)
	if info, err = d.Revoke("k2"); err != nil || info.State != Revoked || !info.Revoked.Equal(t0.Add(time.Hour)) {
		t.Errorf("Revoke(k2) = %+v, %v; want revoked at %v", info, err, t0.Add(time.Hour))
	}
	if _, err := d.Revoke("k2"); err == nil || !strings.Contains(err.Error(), "revoked already") {
		t.Errorf("Revoke(k2) twice = %v, want revoked already", err)
	}
	if _, err := d.Restore("k3"); err == nil || !strings.Contains(err.Error(), "active already") {
		t.Errorf("Restore(k3) of an active key = %v, want active already", err)
	}
	if info, err = d.Restore("k2"); err != nil || info.State != Active || !info.Revoked.IsZero() {
		t.Errorf("Restore(k2) = %+v, %v; want active", info, err)
	}
	if _, err := d.Revoke("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revoke(nope) = %v, want ErrNotFound", err)
	}

	list, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, i := range list {
		kids = append(kids, i.Kid)
	}
	if got := strings.Join(kids, " "); got != "acme-data-2026 k2 k3" {
		t.Errorf("List = %s, want acme-data-2026 k2 k3", got)
	}
	js, _ := json.Marshal(list)
	if bytes.Contains(js, testMaterial(7)) || strings.Contains(string(js), "BwcHBwcH") || strings.Contains(string(js), "0707070707") {
		t.Errorf("List's JSON holds the material: %s", js)
	}

	// The directory opens again with its passphrase; the keys are there.
	d2, err := Open(d.Path(), testPass, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if k, err := d2.open("acme-data-2026"); err != nil || !bytes.Equal(k.material.Bytes(), testMaterial(7)) {
		t.Errorf("reopened: open = %v, or the material differs", err)
	}
}

func TestCreateRefuses(t *testing.T) {
	d, _ := newTestDir(t)
	if _, err := d.Create("k", recipientPEMForTest(), nil); err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	for _, tc := range []struct {
		name, kid string
		pem       []byte
		material  []byte
		want      string
	}{
		{"exists", "k", recipientPEMForTest(), nil, "exists already"},
		{"empty kid", "", recipientPEMForTest(), nil, "invalid kid"},
		{"dot kid", ".k", recipientPEMForTest(), nil, "invalid kid"},
		{"slash kid", "a/b", recipientPEMForTest(), nil, "invalid kid"},
		{"long kid", strings.Repeat("a", 65), recipientPEMForTest(), nil, "invalid kid"},
		{"short material", "m", recipientPEMForTest(), make([]byte, 31), "31 bytes, want exactly 32"},
		{"long material", "m", recipientPEMForTest(), make([]byte, 33), "33 bytes, want exactly 32"},
		{"not pem", "m", []byte("hello"), nil, "not a PUBLIC KEY"},
		{"ecdsa", "m", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}), nil, "not RSA"},
		{"rsa-1024", "m", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER}), nil, "RSA-1024, want at least RSA-2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Create(tc.kid, tc.pem, tc.material)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Create(%q) = %v, want %q", tc.kid, err, tc.want)
			}
		})
	}
	if _, err := os.Stat(d.keyPath("m")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Create left a key file: %v", err)
	}
}

func TestWrongPassphrase(t *testing.T) {
	d, _ := newTestDir(t)
	_, err := Open(d.Path(), []byte("wrong"), Options{})
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("Open(wrong passphrase) = %v, want ErrWrongPassphrase", err)
	}
	if _, err := Open(d.Path(), nil, Options{}); err == nil {
		t.Errorf("Open(empty passphrase) succeeded")
	}
	if _, err := Open(t.TempDir(), testPass, Options{}); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("Open(empty directory) = %v, want ErrNotInitialized", err)
	}
	if _, err := initDir(d.Path(), testPass, testKDF, Options{}); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("Init twice = %v, want a refusal", err)
	}
}

func TestTamperedKeyFile(t *testing.T) {
	d, _ := newTestDir(t)
	for _, kid := range []string{"aa", "bb"} {
		if _, err := d.Create(kid, recipientPEMForTest(), testMaterial(kid[0])); err != nil {
			t.Fatal(err)
		}
	}
	orig, err := os.ReadFile(d.keyPath("aa"))
	if err != nil {
		t.Fatal(err)
	}
	hdr := len(keyHeader("aa"))
	other, _ := initDir(filepath.Join(t.TempDir(), "other"), []byte("another passphrase"), testKDF, Options{})
	defer other.Close()
	if _, err := other.Create("aa", recipientPEMForTest(), testMaterial(1)); err != nil {
		t.Fatal(err)
	}
	foreign, _ := os.ReadFile(other.keyPath("aa"))
	for _, tc := range []struct {
		name string
		file func() []byte
		want string
	}{
		{"flipped sealed byte", func() []byte { b := bytes.Clone(orig); b[hdr+20] ^= 1; return b }, "does not authenticate"},
		{"flipped last byte", func() []byte { b := bytes.Clone(orig); b[len(b)-1] ^= 1; return b }, "does not authenticate"},
		{"header kid rewritten", func() []byte { b := bytes.Clone(orig); copy(b[hdr-2:], "bb"); return b }, `it holds the key "bb"`},
		{"magic", func() []byte { b := bytes.Clone(orig); b[0] = 'X'; return b }, "not a key file"},
		{"truncated", func() []byte { return orig[:hdr+10] }, "does not authenticate"},
		{"empty", func() []byte { return nil }, "not a key file"},
		{"from another directory", func() []byte { return foreign }, "does not authenticate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(d.keyPath("aa"), tc.file(), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := d.open("aa")
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("open(aa) = %v, want ErrDamaged, %q", err, tc.want)
			}
			if _, err := d.List(); !errors.Is(err, ErrDamaged) {
				t.Errorf("List = %v, want ErrDamaged", err)
			}
		})
	}

	// The file of aa copied over bb's: refused, naming the kid it holds.
	os.WriteFile(d.keyPath("aa"), orig, 0o600)
	if err := os.WriteFile(d.keyPath("bb"), orig, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = d.open("bb")
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), `it holds the key "aa"`) {
		t.Errorf("open(bb) with aa's file = %v, want ErrDamaged naming aa", err)
	}
	// ... and with its header's kid rewritten to bb, it does not authenticate.
	swapped := bytes.Clone(orig)
	copy(swapped[hdr-2:], "bb")
	os.WriteFile(d.keyPath("bb"), swapped, 0o600)
	if _, err = d.open("bb"); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "does not authenticate") {
		t.Errorf("open(bb) with aa's file relabelled bb = %v, want ErrDamaged, does not authenticate", err)
	}
	if k, err := d.open("aa"); err != nil || !bytes.Equal(k.material.Bytes(), testMaterial('a')) {
		t.Errorf("open(aa) after restoring its file = %v", err)
	}
}

func TestKeyFileSealed(t *testing.T) {
	d, _ := newTestDir(t)
	m := testMaterial(0x5a)
	if _, err := d.Create("k", recipientPEMForTest(), m); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(d.keyPath("k"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, m[:8]) {
		t.Errorf("the key file holds the material in clear")
	}
	if st, _ := os.Stat(d.keyPath("k")); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}
}

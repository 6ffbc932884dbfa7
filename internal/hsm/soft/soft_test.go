package soft

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/hsmtest"
)

// testKDF keeps scrypt cheap in tests; the format and code paths are the same.
var testKDF = &kdfParams{logN: 10, r: 8, p: 1}

var pass = []byte("correct horse battery staple")

func openNew(t testing.TB, path string) *HSM {
	t.Helper()
	h, err := Open(context.Background(), path, pass, Options{Create: true, kdf: testKDF})
	if err != nil {
		t.Fatalf("Open(create) error = %v", err)
	}
	return h
}

func TestConformance(t *testing.T) {
	hsmtest.Run(t, func(t *testing.T) hsm.HSM {
		return openNew(t, filepath.Join(t.TempDir(), "hsm.soft"))
	})
}

func TestPersistenceAndFileMode(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hsm.soft")
	h := openNew(t, path)
	sk, err := h.GenerateSigningKey(ctx, "sign")
	if err != nil {
		t.Fatal(err)
	}
	aes, err := h.GenerateSecretKey(ctx, hsm.KeySpec{Label: "aes", Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := aes.Seal(ctx, []byte("persist"), nil)
	h.Close()

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, want 0600", fi.Mode().Perm())
	}
	h2, err := Open(ctx, path, pass, Options{})
	if err != nil {
		t.Fatalf("reopen error = %v", err)
	}
	defer h2.Close()
	sk2, err := h2.SigningKey(ctx, "sign")
	if err != nil || !sk2.ECDSAPublicKey().Equal(sk.ECDSAPublicKey()) {
		t.Errorf("reopened SigningKey = %v, or another key", err)
	}
	aes2, err := h2.SecretKey(ctx, "aes")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := aes2.Open(ctx, sealed, nil); err != nil || string(got) != "persist" {
		t.Errorf("reopened key Open = %q, %v", got, err)
	}
}

func TestWrongPassphraseChangesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hsm.soft")
	h := openNew(t, path)
	if _, err := h.GenerateSigningKey(ctx, "sign"); err != nil {
		t.Fatal(err)
	}
	h.Close()
	before, _ := os.ReadFile(path)
	_, err := Open(ctx, path, []byte("wrong"), Options{Create: true})
	if !errors.Is(err, errWrongPassphrase) || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("Open(wrong passphrase) error = %v, want a wrong-passphrase error", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a refused Open changed the file")
	}
	if _, err := Open(ctx, path, nil, Options{}); err == nil {
		t.Error("Open(empty passphrase) error = nil")
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "none"), pass, Options{})
	if err == nil || !strings.Contains(err.Error(), "hsm init") {
		t.Errorf("Open(missing) error = %v, want a hint to run hsm init", err)
	}
}

func TestDamagedFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hsm.soft")
	h := openNew(t, path)
	h.GenerateSecretKey(ctx, hsm.KeySpec{Label: "k"})
	h.Close()
	good, _ := os.ReadFile(path)
	for i := 0; i < len(good); i++ {
		bad := bytes.Clone(good)
		bad[i] ^= 0x04
		os.WriteFile(path, bad, 0o600)
		if h, err := Open(ctx, path, pass, Options{}); err == nil {
			h.Close()
			t.Fatalf("Open accepted a file with byte %d altered", i)
		}
	}
	os.WriteFile(path, good[:len(good)-1], 0o600)
	if _, err := Open(ctx, path, pass, Options{}); err == nil {
		t.Error("Open accepted a truncated file")
	}
}

func TestSharedBetweenHandles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hsm.soft")
	a := openNew(t, path)
	defer a.Close()
	b, err := Open(ctx, path, pass, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.GenerateSecretKey(ctx, hsm.KeySpec{Label: "from-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GenerateSecretKey(ctx, hsm.KeySpec{Label: "from-b"}); err != nil {
		t.Fatal(err)
	}
	// b's write must not have lost a's key, and a sees b's key.
	if _, err := a.SecretKey(ctx, "from-b"); err != nil {
		t.Errorf("a.SecretKey(from-b) error = %v", err)
	}
	c, err := Open(ctx, path, pass, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, l := range []string{"from-a", "from-b"} {
		if _, err := c.SecretKey(ctx, l); err != nil {
			t.Errorf("SecretKey(%s) after concurrent writers error = %v", l, err)
		}
	}
}

func TestClosed(t *testing.T) {
	h := openNew(t, filepath.Join(t.TempDir(), "hsm.soft"))
	k, _ := h.GenerateSecretKey(context.Background(), hsm.KeySpec{Label: "k"})
	h.Close()
	if _, err := k.Seal(context.Background(), nil, nil); err == nil {
		t.Error("Seal after Close succeeded")
	}
	if _, err := h.SecretKey(context.Background(), "k"); err == nil {
		t.Error("SecretKey after Close succeeded")
	}
}

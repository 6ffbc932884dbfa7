//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/hsmtest"
)

// openTestHSM opens a fresh SoftHSM2 token (or skips, see
// hsmtest.SoftHSMToken) and closes it when the test ends.
func openTestHSM(t testing.TB, label string) (*HSM, URI) {
	t.Helper()
	uri := hsmtest.SoftHSMToken(t, label)
	u, err := ParseURI(uri)
	if err != nil {
		t.Fatalf("ParseURI(%s) error = %v", uri, err)
	}
	h, err := Open(context.Background(), uri)
	if err != nil {
		t.Fatalf("Open(%s) error = %v", uri, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close() error = %v", err)
		}
	})
	return h.(*HSM), u
}

func TestConformance(t *testing.T) {
	hsmtest.Run(t, func(t *testing.T) hsm.HSM {
		uri := hsmtest.SoftHSMToken(t, "conformance")
		h, err := Open(context.Background(), uri)
		if err != nil {
			t.Fatalf("Open(%s) error = %v", uri, err)
		}
		return h
	})
}

// wantErr checks that err is a "pkcs11: " error containing every part.
func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: error = nil, want one containing %q", what, parts)
	}
	t.Logf("%s: %v", what, err)
	if !strings.HasPrefix(err.Error(), "pkcs11: ") {
		t.Errorf("%s: error %q lacks the pkcs11: prefix", what, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error = %q, want it to contain %q", what, err, p)
		}
	}
}

// These need no token: they run wherever cgo does.
func TestOpenModuleErrors(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "no-such-module.so")
	_, err := Open(ctx, "pkcs11:token=x?module-path="+missing+"&pin-source=/pin")
	wantErr(t, "missing module", err, missing, "does not exist")

	notLib := filepath.Join(t.TempDir(), "not-a-library.so")
	if err := os.WriteFile(notLib, []byte("not an ELF file"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, "pkcs11:token=x?module-path="+notLib+"&pin-source=/pin")
	wantErr(t, "not a library", err, notLib, "cannot load PKCS#11 module")

	_, err = Open(ctx, "pkcs11:token=x?module-path="+notLib+"&pin-value=1234")
	wantErr(t, "pin-value", err, "pin-value is refused", "pin-source=file:", "env:")
	if len(registry.modules) != 0 {
		t.Errorf("failed Opens left %d modules loaded", len(registry.modules))
	}
}

func TestOpenTokenErrors(t *testing.T) {
	ctx := context.Background()
	h, u := openTestHSM(t, "errors")
	dir := t.TempDir()

	other := u
	other.Token = "no-such-token"
	_, err := Open(ctx, other.String())
	wantErr(t, "unknown token", err, `no token matches token="no-such-token"`, u.ModulePath,
		"tokens present:", `"`+u.Token+`"`)

	wrongPIN := filepath.Join(dir, "wrong-pin")
	if err := os.WriteFile(wrongPIN, []byte("00000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := u
	bad.PINFile = wrongPIN
	// h is logged in: the process-wide login is checked against the PIN.
	_, err = Open(ctx, bad.String())
	wantErr(t, "wrong PIN while logged in", err, "PIN in file "+wrongPIN+" was refused")
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// Now the token itself refuses it.
	_, err = Open(ctx, bad.String())
	wantErr(t, "wrong PIN", err, `token "`+u.Token+`" refused the PIN in file `+wrongPIN, "CKR_PIN_INCORRECT")
	if !isRV(err, pkcs11.CKR_PIN_INCORRECT) {
		t.Errorf("wrong PIN: error %v does not wrap CKR_PIN_INCORRECT", err)
	}

	bad.PINFile = filepath.Join(dir, "missing-pin")
	_, err = Open(ctx, bad.String())
	wantErr(t, "missing PIN file", err, "cannot read the PIN file", bad.PINFile)

	pin, err := readPIN(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SR_TEST_TOKEN_PIN", string(pin))
	env := u
	env.PINFile, env.PINEnv = "", "SR_TEST_TOKEN_PIN"
	h2, err := Open(ctx, env.String())
	if err != nil {
		t.Fatalf("Open(pin-source=env:) error = %v", err)
	}
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	if len(registry.modules) != 0 {
		t.Errorf("after closing every HSM, %d modules are still loaded", len(registry.modules))
	}
}

func TestInfo(t *testing.T) {
	h, u := openTestHSM(t, "info")
	info := h.Info()
	if info.Backend != "pkcs11" || info.Token != u.Token || !strings.Contains(info.Description, "SoftHSM") {
		t.Errorf("Info() = %+v", info)
	}
	t.Logf("Info() = %+v", info)
	info.OAEPHashes[0] = 99
	if h.Info().OAEPHashes[0] == 99 {
		t.Error("Info() shares its OAEPHashes slice")
	}
	// SoftHSM2 2.6 does RSA-OAEP with SHA-1 only: the probe must see that,
	// and the others must be refused by name, not replaced.
	if strings.Contains(info.Description, "Implementation of PKCS11 2.6") || strings.Contains(info.Description, ") 2.6") {
		if got := h.Info().OAEPHashes; len(got) != 1 || got[0] != hsm.OAEPSHA1 {
			t.Errorf("OAEPHashes on SoftHSM2 2.6 = %v, want [sha1]", got)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := h.GenerateSecretKey(context.Background(), hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, oh := range []hsm.OAEPHash{hsm.OAEPSHA256, hsm.OAEPSHA512, hsm.OAEPSHA1} {
		if h.Info().SupportsOAEP(oh) {
			continue
		}
		_, err := ek.WrapRSA(context.Background(), &key.PublicKey, oh)
		if !errors.Is(err, hsm.ErrUnsupported) || !strings.Contains(err.Error(), oh.String()) {
			t.Errorf("WrapRSA(%v) error = %v, want ErrUnsupported naming %v", oh, err, oh)
		}
	}
}

func TestSelfTestDetectsWrongAnswers(t *testing.T) {
	h, _ := openTestHSM(t, "selftest")
	ctx := context.Background()
	if err := h.selfTest(ctx); err != nil {
		t.Fatalf("selfTest() = %v", err)
	}
	for name, v := range map[string][]byte{
		"KATSealed": hsm.KATSealed, "KATWrapped": hsm.KATWrapped, "KATWrapTarget": hsm.KATWrapTarget,
		"KATKey": hsm.KATKey, "KATPlaintext": hsm.KATPlaintext,
	} {
		v[len(v)-1] ^= 0x01
		err := h.selfTest(ctx)
		v[len(v)-1] ^= 0x01
		if !errors.Is(err, hsm.ErrSelfTest) {
			t.Errorf("selfTest() with %s altered = %v, want ErrSelfTest", name, err)
		}
	}
	if err := h.selfTest(ctx); err != nil {
		t.Errorf("selfTest() after restoring = %v", err)
	}
	if n := countObjects(t, h, nil); n != 0 {
		t.Errorf("the self-tests left %d objects behind", n)
	}
}

// countObjects counts the objects matching tmpl (all objects if nil) that
// the HSM's sessions can see.
func countObjects(t testing.TB, h *HSM, tmpl []*pkcs11.Attribute) int {
	t.Helper()
	var n int
	err := h.pool.do(context.Background(), func(s pkcs11.SessionHandle) error {
		objs, err := h.findObjects(s, tmpl, 1000)
		n = len(objs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSharedModuleAndLogin(t *testing.T) {
	ctx := context.Background()
	h1, u := openTestHSM(t, "shared")
	h2i, err := Open(ctx, u.String())
	if err != nil {
		t.Fatalf("second Open() error = %v", err)
	}
	h2 := h2i.(*HSM)
	if h1.mod != h2.mod || h1.mod.refs != 2 || h1.token.logins != 2 {
		t.Fatalf("two HSMs on one token: modules %p %p, refs %d, logins %d", h1.mod, h2.mod, h1.mod.refs, h1.token.logins)
	}
	k, err := h2.GenerateSecretKey(ctx, hsm.KeySpec{Label: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Seal(ctx, []byte("x"), nil); !errors.Is(err, errClosed) {
		t.Errorf("Seal with a key of a closed HSM: error = %v, want errClosed", err)
	}
	// h1 is still logged in and sees the key.
	k1, err := h1.SecretKey(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := k1.Seal(ctx, []byte("still logged in"), nil)
	if err != nil {
		t.Fatalf("Seal after the other HSM closed: %v", err)
	}
	if err := h1.Close(); err != nil {
		t.Fatal(err)
	}
	if registry.modules[u.ModulePath] != nil {
		t.Fatal("the module is still loaded after its last HSM closed")
	}
	// The module can be loaded again, and persistent keys are still there.
	h3, err := Open(ctx, u.String())
	if err != nil {
		t.Fatalf("reopening after C_Finalize: %v", err)
	}
	defer h3.Close()
	k3, err := h3.SecretKey(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k3.Open(ctx, sealed, nil); err != nil || !bytes.Equal(pt, []byte("still logged in")) {
		t.Errorf("Open after reloading the module = %q, %v", pt, err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h3.Random(canceled, 8); !errors.Is(err, context.Canceled) {
		t.Errorf("Random(canceled context) error = %v", err)
	}
}

// Tests of other packages create tokens while the module is loaded: the
// module must see them (SoftHSM2 rescans its token directory).
func TestTokenCreatedWhileModuleLoaded(t *testing.T) {
	openTestHSM(t, "first")
	second, _ := openTestHSM(t, "second")
	if second.mod.refs != 2 {
		t.Errorf("module refs = %d, want 2", second.mod.refs)
	}
}

package hsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Environment of the SoftHSM2 tests, as set up by ./scripts/test.sh.
const (
	// ModuleEnv names the PKCS#11 module to test with (SoftHSM2's library).
	ModuleEnv = "STRONGROOM_TEST_PKCS11_MODULE"
	// SoftHSMConfEnv is SoftHSM2's own variable: its configuration file,
	// whose token directory must be a throwaway one.
	SoftHSMConfEnv = "SOFTHSM2_CONF"
)

// softhsmMaxLabel is the size of CK_TOKEN_INFO's label field.
const softhsmMaxLabel = 32

// SoftHSMToken returns a PKCS#11 URI for a fresh, empty SoftHSM2 token of
// its own, initialised with random user and SO PINs; the URI's pin-source is
// a 0600 file in t.TempDir(). The token is deleted when the test ends.
//
// SoftHSM2 2.6 sees only the tokens that existed when the process
// initialised it, and the pkcs11 backend keeps it initialised while any HSM
// is open. So tokens are made in batches, before the first of them is used:
// the first call makes softhsmBatch tokens, and later calls hand them out.
// Their labels are therefore "<test binary>-<random>", not label; label goes
// to the test log. (A batch made while an HSM is open is invisible to that
// process until all its HSMs are closed; a test that needs more than
// softhsmBatch tokens at once must open them in that order.)
//
// It needs STRONGROOM_TEST_PKCS11_MODULE (the module path) and SOFTHSM2_CONF
// (a configuration with a temporary token directory), which ./scripts/test.sh
// exports. Without them the test is skipped, except in CI (CI=true), where it
// fails: there, SoftHSM2 is required.
func SoftHSMToken(t testing.TB, label string) (uri string) {
	t.Helper()
	module := os.Getenv(ModuleEnv)
	if module == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("hsmtest: SoftHSM2 is required in CI, but %s is unset; "+
				"run the tests with ./scripts/test.sh, which sets up SoftHSM2", ModuleEnv)
		}
		t.Skipf("hsmtest: SKIPPING this PKCS#11 test: %s is unset. "+
			"Run ./scripts/test.sh to set up SoftHSM2 and run it", ModuleEnv)
	}
	if os.Getenv(SoftHSMConfEnv) == "" {
		t.Fatalf("hsmtest: %s is set but %s is not; SoftHSM2 would use its system-wide token directory. "+
			"Run the tests with ./scripts/test.sh", ModuleEnv, SoftHSMConfEnv)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Fatalf("hsmtest: %s is set but softhsm2-util is not on PATH: %v", ModuleEnv, err)
	}
	tok, err := softhsmTake(util)
	if err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	t.Logf("hsmtest: SoftHSM2 token %q for %s", tok.label, label)
	t.Cleanup(func() {
		unlock, err := softhsmLock(os.Getenv(SoftHSMConfEnv))
		if err != nil {
			t.Logf("hsmtest: %v", err)
			return
		}
		defer unlock()
		if out, err := exec.Command(util, "--delete-token", "--token", tok.label).CombinedOutput(); err != nil {
			t.Logf("hsmtest: softhsm2-util --delete-token --token %s: %v\n%s", tok.label, err, out)
		}
	})

	pinFile := filepath.Join(t.TempDir(), "user-pin")
	// A trailing newline, as editors leave one: the backend must trim it.
	if err := os.WriteFile(pinFile, []byte(tok.pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "pkcs11:token=" + softhsmEscape(tok.label) + "?module-path=" + softhsmEscape(module) +
		"&pin-source=file:" + softhsmEscape(pinFile)
}

// softhsmBatch is how many tokens SoftHSMToken makes at a time.
const softhsmBatch = 16

type softhsmToken struct{ label, pin string }

var softhsmSpare struct {
	sync.Mutex
	tokens []softhsmToken
}

// softhsmTake hands out a spare token, making a batch first if none is left.
func softhsmTake(util string) (softhsmToken, error) {
	softhsmSpare.Lock()
	defer softhsmSpare.Unlock()
	if len(softhsmSpare.tokens) == 0 {
		unlock, err := softhsmLock(os.Getenv(SoftHSMConfEnv))
		if err != nil {
			return softhsmToken{}, err
		}
		defer unlock()
		prefix := softhsmLabel(strings.TrimSuffix(filepath.Base(os.Args[0]), ".test"))
		if len(prefix) > softhsmMaxLabel-9 {
			prefix = prefix[:softhsmMaxLabel-9]
		}
		for range softhsmBatch {
			tok := softhsmToken{label: prefix + "-" + softhsmRandomHex(4), pin: softhsmRandomHex(12)}
			// The PINs are throwaway test values; passing them as arguments is fine.
			out, err := exec.Command(util, "--init-token", "--free", "--label", tok.label,
				"--pin", tok.pin, "--so-pin", softhsmRandomHex(12)).CombinedOutput()
			if err != nil {
				return softhsmToken{}, fmt.Errorf("softhsm2-util --init-token --label %s: %v\n%s", tok.label, err, out)
			}
			softhsmSpare.tokens = append(softhsmSpare.tokens, tok)
		}
	}
	tok := softhsmSpare.tokens[0]
	softhsmSpare.tokens = softhsmSpare.tokens[1:]
	return tok, nil
}

func softhsmRandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// softhsmLabel keeps letters, digits, '-' and '_'.
func softhsmLabel(s string) string {
	s = strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
	if s == "" {
		s = "hsmtest"
	}
	return s
}

// softhsmEscape percent-encodes s for a PKCS#11 URI attribute value (RFC 7512),
// keeping '/' for readability of paths.
func softhsmEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

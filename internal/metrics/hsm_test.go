package metrics

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/hsmtest"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
)

// TestHSMConformance: the timed HSM is an HSM, by the conformance suite
// every backend passes (its keys are wrapped, and a wrapped key given back
// to Wrap reaches the backend as its own), and the suite's operations are
// counted by operation and outcome.
func TestHSMConformance(t *testing.T) {
	m := New()
	hsmtest.Run(t, func(t *testing.T) hsm.HSM {
		h, err := soft.Open(context.Background(), filepath.Join(t.TempDir(), "hsm.soft"), []byte("metrics test"), soft.Options{Create: true})
		if err != nil {
			t.Fatal(err)
		}
		return m.HSM(h)
	})
	op := "strongroom_hsm_operation_duration_seconds"
	for _, name := range []string{"random", "generate_rsa", "generate_ecdsa", "generate_aes", "find_aes", "rsa_decrypt", "rsa_unwrap",
		"rsa_sign_pss", "ecdsa_sign", "aes_seal", "aes_open", "aes_wrap", "aes_unwrap", "aes_derive", "aes_digest", "aes_wrap_rsa", "aes_destroy", "rsa_destroy"} {
		if v, ok := value(t, m, op, map[string]string{"op": name, "outcome": OutcomeOK}); !ok || v == 0 {
			t.Errorf("the suite ran %s, and no successful one was timed", name)
		}
	}
	// The suite looks up missing labels and opens altered ciphertexts:
	// refusals, not faults.
	for _, name := range []string{"find_aes", "aes_open"} {
		if v, ok := value(t, m, op, map[string]string{"op": name, "outcome": OutcomeRefused}); !ok || v == 0 {
			t.Errorf("no refused %s was timed", name)
		}
	}
	if v, ok := value(t, m, op, map[string]string{"op": "aes_open", "outcome": OutcomeError}); ok {
		t.Errorf("%v aes_open counted as HSM faults: a failed decryption is a refusal", v)
	}
}

// isTimed reports whether k is one of the package's wrappers.
func isTimed(k any) bool {
	switch k.(type) {
	case *timedAES, *timedRSA, *timedECDSA:
		return true
	}
	return false
}

// TestHSMErrorsPassThrough: a timed HSM returns the backend's errors, with
// whatever the backend returned beside them, never a wrapper.
func TestHSMErrorsPassThrough(t *testing.T) {
	ctx := context.Background()
	m := New()
	raw, err := soft.Open(ctx, filepath.Join(t.TempDir(), "hsm.soft"), []byte("metrics test"), soft.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	h := m.HSM(raw)
	defer h.Close()
	if k, err := h.SecretKey(ctx, "missing"); !errors.Is(err, hsm.ErrNotFound) || isTimed(k) {
		t.Errorf("SecretKey(missing) = %T, %v; want the backend's ErrNotFound", k, err)
	}
	if k, err := h.EncryptionKey(ctx, "missing"); !errors.Is(err, hsm.ErrNotFound) || isTimed(k) {
		t.Errorf("EncryptionKey(missing) = %T, %v; want the backend's ErrNotFound", k, err)
	}
	if k, err := h.SigningKey(ctx, "missing"); !errors.Is(err, hsm.ErrNotFound) || isTimed(k) {
		t.Errorf("SigningKey(missing) = %T, %v; want the backend's ErrNotFound", k, err)
	}
	want(t, m, "strongroom_hsm_operation_duration_seconds", map[string]string{"op": "find_rsa", "outcome": OutcomeRefused}, 1)
	if h.Info().Backend != raw.Info().Backend || h.Info().Token != raw.Info().Token {
		t.Errorf("Info() = %+v, want the backend's", h.Info())
	}
	var none *Metrics
	if none.HSM(raw) != hsm.HSM(raw) {
		t.Errorf("a nil Metrics wraps the HSM")
	}
}

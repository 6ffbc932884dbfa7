package byok_test

import (
	"context"
	"crypto"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/byok"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/hsmtest"
	"github.com/strongroom-kms/strongroom/internal/hsm/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
)

// backends opens the regional HSM of BYOK on each backend: the test
// world's soft HSM, and a fresh SoftHSM2 token (hsmtest.SoftHSMToken:
// skipped loudly without one, required under CI=true).
func backends() map[string]func(testing.TB) hsm.HSM {
	return map[string]func(testing.TB) hsm.HSM{
		"soft": func(tb testing.TB) hsm.HSM { return nodetest.World(tb).Regions[nodetest.Region].HSM },
		"pkcs11": func(tb testing.TB) hsm.HSM {
			h, err := pkcs11.Open(context.Background(), hsmtest.SoftHSMToken(tb, "byok"))
			if err != nil {
				tb.Fatalf("pkcs11.Open() error = %v", err)
			}
			tb.Cleanup(func() { h.Close() })
			return h
		},
	}
}

// service is BYOK on node n with h as the HSM of its upload certificates.
func service(n *nodetest.Node, h byok.HSM) *byok.Service {
	return byok.New(n.Store, n.Ring, h, n.Keys, n.ExportKeys, n.Policy, n.Clock.Now)
}

// countingHSM counts the key pairs made and destroyed through it and the
// decryptions, and fails every destruction while failDestroy is set.
type countingHSM struct {
	byok.HSM
	made, destroyed, decrypts atomic.Int64
	failDestroy               atomic.Bool
}

var errHSMDown = errors.New("test: the HSM does not answer")

func (h *countingHSM) GenerateEncryptionKey(ctx context.Context, label string, use hsm.RSAUse) (hsm.EncryptionKey, error) {
	k, err := h.HSM.GenerateEncryptionKey(ctx, label, use)
	if err != nil {
		return nil, err
	}
	h.made.Add(1)
	return countedKey{k, h}, nil
}

func (h *countingHSM) EncryptionKey(ctx context.Context, label string) (hsm.EncryptionKey, error) {
	k, err := h.HSM.EncryptionKey(ctx, label)
	if err != nil {
		return nil, err
	}
	return countedKey{k, h}, nil
}

type countedKey struct {
	hsm.EncryptionKey
	h *countingHSM
}

func (k countedKey) Destroy(ctx context.Context) error {
	if k.h.failDestroy.Load() {
		return errHSMDown
	}
	if err := k.EncryptionKey.Destroy(ctx); err != nil {
		return err
	}
	k.h.destroyed.Add(1)
	return nil
}

func (k countedKey) Decrypt(r io.Reader, ciphertext []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	k.h.decrypts.Add(1)
	return k.EncryptionKey.Decrypt(r, ciphertext, opts)
}

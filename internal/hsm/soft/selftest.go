package soft

import (
	"bytes"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// selfTest runs the known-answer tests of hsm.KAT* through the same code
// paths the keys use.
func (h *HSM) selfTest() error {
	key, _ := secret.New(hsm.KATKey)
	defer key.Destroy()
	if got := sealGCM(key, hsm.KATNonce, hsm.KATPlaintext, hsm.KATAAD); !bytes.Equal(got, hsm.KATSealed) {
		return fmt.Errorf("%w: AES-256-GCM", hsm.ErrSelfTest)
	}
	if got, err := openGCM(key, hsm.KATSealed, hsm.KATAAD); err != nil || !bytes.Equal(got, hsm.KATPlaintext) {
		return fmt.Errorf("%w: AES-256-GCM open", hsm.ErrSelfTest)
	}
	target, _ := secret.New(hsm.KATWrapTarget)
	defer target.Destroy()
	if got, err := wrapContext(key, target, hsm.KATWrapContext); err != nil || !bytes.Equal(got, hsm.KATWrapped) {
		return fmt.Errorf("%w: context-bound key wrap", hsm.ErrSelfTest)
	}
	raw, err := unwrapContext(key, hsm.KATWrapped, hsm.KATWrapContext)
	if err != nil || !bytes.Equal(raw, hsm.KATWrapTarget) {
		return fmt.Errorf("%w: context-bound key unwrap", hsm.ErrSelfTest)
	}
	clear(raw)
	return nil
}

//go:build !cgo

package pkcs11

import (
	"context"

	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// Open reports ErrNoCgo: PKCS#11 modules are C libraries, which a binary
// built without cgo cannot load. A malformed URI is still reported as such.
func Open(ctx context.Context, uri string) (hsm.HSM, error) {
	if _, err := ParseURI(uri); err != nil {
		return nil, err
	}
	return nil, ErrNoCgo
}

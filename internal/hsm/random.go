package hsm

import (
	"context"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Randomer is the part of an HSM that makes random bytes.
type Randomer interface {
	Random(ctx context.Context, n int) ([]byte, error)
}

// RandomKey returns 32 random bytes from the HSM's random number generator
// as a secret.Key (a new tenant secret, an export key). The caller
// destroys it.
func RandomKey(ctx context.Context, r Randomer) (secret.Key, error) {
	raw, err := r.Random(ctx, secret.Size)
	if err != nil {
		return secret.Key{}, fmt.Errorf("hsm: random bytes: %w", err)
	}
	defer clear(raw)
	k, err := secret.New(raw)
	if err != nil {
		return secret.Key{}, fmt.Errorf("hsm: %d random bytes returned, want %d", len(raw), secret.Size)
	}
	return k, nil
}

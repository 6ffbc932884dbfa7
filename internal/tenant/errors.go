package tenant

import (
	"errors"
	"fmt"
	"time"
)

// The errors of tenant keys that every service returns, for errors.Is.
var (
	// ErrNoActiveKey: the tenant has no active key of the type: it never
	// had one, or the active one was destroyed. Generate or upload one.
	ErrNoActiveKey = errors.New("tenant: no active key of this type: generate or upload one first")
	// ErrKeyDestroyed: the key version was destroyed; data under it can no
	// longer be decrypted by anyone.
	ErrKeyDestroyed = errors.New("tenant: the key was destroyed: data under it can no longer be decrypted")
	// ErrKeyArchived: an archived key was asked to do what only the active
	// key does (encrypt new data). Archived keys still decrypt. No service
	// returns it today: encryption always takes the active key, and DEK
	// delivery hands out archived DEKs on purpose (for decryption). It is
	// here for the callers that take an explicit version for new data.
	ErrKeyArchived = errors.New("tenant: the key is archived: it decrypts only; encrypt with the active key")
)

// DestroyedError is ErrKeyDestroyed naming the key and when it was
// destroyed.
func DestroyedError(k Key) error {
	return fmt.Errorf("%w (tenant %s, type %s, version %d, at %s)", ErrKeyDestroyed,
		k.Tenant, k.Type, k.Version, k.Destroyed.UTC().Format(time.RFC3339))
}

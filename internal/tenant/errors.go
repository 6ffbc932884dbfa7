package tenant

import (
	"errors"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/reason"
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
	// ErrKeyUnavailable: a cache-only key's material could not be fetched
	// from the tenant's key service (down, slow, or answering wrongly);
	// this node tries again on its retry schedule (docs/cache-only.md).
	ErrKeyUnavailable = errors.New("tenant: the key is unavailable: the tenant's key service did not give it")
	// ErrKeyRevoked: the tenant's key service revoked a cache-only key
	// (HTTP 410); it is asked again at most once a minute.
	ErrKeyRevoked = errors.New("tenant: the key was revoked by the tenant's key service")
)

// DestroyedError is ErrKeyDestroyed naming the key (its type and version:
// the tenant's id is the log's, in its cause) and when it was destroyed.
func DestroyedError(k Key) error {
	return reason.Wrap(ErrKeyDestroyed, fmt.Errorf("tenant %s", k.Tenant),
		"%s key version %d was destroyed at %s: data under it can no longer be decrypted",
		k.Type, k.Version, k.Destroyed.UTC().Format(time.RFC3339))
}

// NoActiveKeyError is ErrNoActiveKey naming the type (and, for the log,
// the tenant's id in its cause).
func NoActiveKeyError(tenantID, typ string) error {
	return reason.Wrap(ErrNoActiveKey, fmt.Errorf("tenant %s", tenantID),
		"there is no active %s key: generate or upload one first", typ)
}

package store

import (
	"errors"
	"fmt"
	"time"
)

// The errors of the store, for errors.Is. Errors returned by a Store wrap at
// most one of them; their messages start with "store: " and never contain key
// material, fingerprints or token hashes.
var (
	// ErrNotFound: no such tenant, token, release or key.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a tenant or token with the same ID, name or hash exists.
	ErrExists = errors.New("store: already exists")
	// ErrConflict: a different release bundle is installed under that ID.
	ErrConflict = errors.New("store: conflicts with what is stored")
	// ErrRateLimited: the previous key of this tenant and type is too
	// recent. The error is a *RateLimitedError, which says when.
	ErrRateLimited = errors.New("store: rotation rate limited")
	// ErrTooManyKeys: the tenant has MaxKeys active and archived keys of
	// this type; destroy one first.
	ErrTooManyKeys = errors.New("store: too many keys")
	// ErrTooManyCerts: the tenant holds the most pending or active upload
	// certificates allowed; retire one first.
	ErrTooManyCerts = errors.New("store: too many upload certificates")
	// ErrTooManyTokens: the tenant has the most live tokens of that role a
	// limit allows (the app tokens its tenant-admins may make).
	ErrTooManyTokens = errors.New("store: too many tokens")
	// ErrTooManyFailures: the tenant's uploads failed the most times a
	// window allows. The error is an *UploadLimitedError, which says when
	// the next may start.
	ErrTooManyFailures = errors.New("store: too many failed uploads")
	// ErrDuplicate: a key of the tenant (any type, any state) has the same
	// fingerprint.
	ErrDuplicate = errors.New("store: duplicate key")
	// ErrRevoked: the token is revoked already. The error is a
	// *RevokedError, which says when.
	ErrRevoked = errors.New("store: token revoked")
	// ErrDestroyed: the key is destroyed already.
	ErrDestroyed = errors.New("store: key destroyed")
	// ErrInvalid: an argument breaks the rules (name, type, role…).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrSchemaTooNew: the database was written by a newer Strongroom.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this build")
)

// RateLimitedError says when the next rotation is allowed.
type RateLimitedError struct {
	// Next is the newest key's Created plus MinInterval.
	Next time.Time
}

func (e *RateLimitedError) Error() string {
	return "store: rotation rate limited: the next key of this type may be made at " +
		e.Next.UTC().Format(time.RFC3339Nano)
}

// Unwrap makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// UploadLimitedError says when the tenant's next upload may start.
type UploadLimitedError struct {
	// Failures is how many uploads failed within the window.
	Failures int
	// Next is when the oldest of them leaves the window.
	Next time.Time
}

func (e *UploadLimitedError) Error() string {
	return fmt.Sprintf("store: %d uploads of this tenant failed within the window, the most allowed: the next may start at %s",
		e.Failures, e.Next.UTC().Format(time.RFC3339Nano))
}

// Unwrap makes errors.Is(err, ErrTooManyFailures) true.
func (e *UploadLimitedError) Unwrap() error { return ErrTooManyFailures }

// RevokedError says that a token was revoked already, and when.
type RevokedError struct {
	ID string // the token's ID
	At time.Time
	// Maker is set when the token revoked is the one that would have made a
	// new token (CreateToken).
	Maker bool
}

func (e *RevokedError) Error() string {
	if e.Maker {
		return fmt.Sprintf("store: token %s, which would make the new token, was revoked at %s", e.ID, e.At.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("store: token %s was revoked already, at %s", e.ID, e.At.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrRevoked) true.
func (e *RevokedError) Unwrap() error { return ErrRevoked }

// kindError is an error of one of the kinds above with its own message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Errorf returns an error whose message is "store: " followed by the
// formatted text, and which wraps kind (one of the Err values) for
// errors.Is. Never format key material into it.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: "store: " + fmt.Sprintf(format, args...)}
}

// invalidf is Errorf(ErrInvalid, …).
func invalidf(format string, args ...any) error { return Errorf(ErrInvalid, format, args...) }

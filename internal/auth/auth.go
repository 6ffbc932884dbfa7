// Package auth is Strongroom's API tokens: making them, authenticating a
// request's bearer token, and deciding what an authenticated caller may do.
//
// A token secret is "srt_" followed by 32 random bytes in unpadded base64url
// (47 characters in all). Only its SHA-256 is stored ([Token].Hash): the
// secret is shown once, when the token is made, and never again. Nothing in
// this package logs a secret or puts one in an error.
//
// # Roles and scope
//
// Operator and auditor tokens are global: their tenant is "" and they see
// every tenant. Tenant-admin and app tokens are scoped to one tenant and
// never see another. A route declares a Policy (the roles it admits and
// whether it is about one tenant), and Identity.Allows applies it.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Prefix starts every token secret, so that secret scanners can find leaked
// tokens and people can tell them from other strings.
const Prefix = "srt_"

// secretBytes is the number of random bytes in a token secret.
const secretBytes = 32

// secretLen is the length of a token secret: the prefix and 32 bytes in
// unpadded base64url.
var secretLen = len(Prefix) + base64.RawURLEncoding.EncodedLen(secretBytes)

// ErrUnauthenticated is the error for a missing, malformed or unknown
// token: callers cannot tell which. A token that was revoked or has expired
// is ErrRevoked or ErrExpired, which wrap it: only the holder of a token's
// secret can present it, so telling them why it no longer works tells
// nobody else anything.
var ErrUnauthenticated = errors.New("auth: missing, malformed or unknown API token")

// ErrRevoked: the token was revoked (errors.Is(err, ErrUnauthenticated) too).
var ErrRevoked error = &unauthenticated{"auth: the API token was revoked"}

// ErrExpired: the token has expired (errors.Is(err, ErrUnauthenticated) too).
var ErrExpired error = &unauthenticated{"auth: the API token expired"}

// unauthenticated is a reason why a token authenticates nobody.
type unauthenticated struct{ msg string }

func (e *unauthenticated) Error() string { return e.msg }
func (e *unauthenticated) Unwrap() error { return ErrUnauthenticated }

// ErrInvalid: a token cannot be made as asked (role, tenant or name).
var ErrInvalid = errors.New("auth: invalid token")

// New makes a token: its secret, to be shown once, and the Token to store,
// which holds only the secret's SHA-256. Created is the current time
// (time.Now); a caller with its own clock sets tok.Created before storing
// it. A zero expires means the token never expires; that it is after
// Created is checked by the store when the token is stored.
//
// Operator and auditor tokens are global (tenantID must be ""); tenant-admin
// and app tokens name their tenant's ID.
func New(role, tenantID, name string, expires time.Time) (secretString string, tok Token, err error) {
	r := Role(role)
	switch {
	case !r.Valid():
		return "", Token{}, reason.New(ErrInvalid, "unknown role %q: use %s, %s, %s or %s",
			role, RoleOperator, RoleAuditor, RoleTenantAdmin, RoleApp)
	case r.Global() && tenantID != "":
		return "", Token{}, reason.New(ErrInvalid, "%s token covers every tenant: it cannot name one", r.A())
	case !r.Global() && tenantID == "":
		return "", Token{}, reason.New(ErrInvalid, "%s token must name its tenant", r.A())
	case tenantID != "" && !tenant.ValidID(tenantID):
		return "", Token{}, fmt.Errorf("%w: invalid tenant ID %q", ErrInvalid, tenantID)
	case !ValidName(name):
		return "", Token{}, reason.New(ErrInvalid, "a token's name must be at most %d bytes of UTF-8 without control characters", MaxName)
	}
	var b [secretBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	secretString = Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	clear(b[:])
	tok = Token{
		ID:      tenant.NewID(),
		Hash:    Hash(secretString),
		Role:    r,
		Tenant:  tenantID,
		Created: time.Now().UTC(),
		Expires: expires,
		Name:    name,
	}
	return secretString, tok, nil
}

// MaxName is the most bytes of a token's name.
const MaxName = 128

// ValidName reports whether name may label a token: at most MaxName bytes
// of UTF-8 without control characters (it may be empty).
func ValidName(name string) bool {
	if len(name) > MaxName || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Hash is what the store keeps of a token secret: its SHA-256.
func Hash(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// wellFormed reports whether s has the shape of a token secret. It looks at
// the shape only, which is public; it does not compare s with anything.
func wellFormed(s string) bool {
	if len(s) != secretLen || !strings.HasPrefix(s, Prefix) {
		return false
	}
	for _, c := range []byte(s[len(Prefix):]) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	// The last character carries 2 padding bits that must be zero (the
	// canonical encoding): decoding strictly refuses the other forms.
	_, err := base64.RawURLEncoding.Strict().DecodeString(s[len(Prefix):])
	return err == nil
}

// Identity is an authenticated caller.
type Identity struct {
	TokenID string
	Role    string
	// Tenant is the ID of the tenant the token is scoped to; "" for a
	// global (operator or auditor) token.
	Tenant string
}

// Global reports whether the identity sees every tenant: an operator or
// auditor token that names no tenant.
func (id Identity) Global() bool {
	return id.Tenant == "" && Role(id.Role).Global()
}

// Policy is a route's access rule: the roles it admits, and whether it acts
// on one tenant (its path names the tenant).
type Policy struct {
	Roles        []string
	TenantScoped bool
}

// Zero reports whether p admits nobody (no roles): a route must never be
// declared with it, except a public one.
func (p Policy) Zero() bool { return len(p.Roles) == 0 }

// Allows reports whether the identity may call a route of policy p; for a
// tenant-scoped route, tenantID is the ID of the tenant its path names.
//
//   - The identity's role must be one of p.Roles.
//   - On a tenant-scoped route, a global identity may act on any tenant; a
//     scoped one only on its own.
//   - On a route that is not about one tenant (lists, creation), a token of
//     a global role that is nonetheless scoped to a tenant is refused: a
//     scoped token never sees beyond its tenant. Scoped roles (tenant-admin,
//     app) are admitted there only where p lists them, and the route then
//     restricts them further itself (see httpapi's route-level checks).
func (id Identity) Allows(p Policy, tenantID string) bool {
	if id.Role == "" || !slices.Contains(p.Roles, id.Role) {
		return false
	}
	if !p.TenantScoped {
		return id.Global() || !Role(id.Role).Global()
	}
	if tenantID == "" {
		return false
	}
	if id.Global() {
		return true
	}
	return id.Tenant != "" && subtle.ConstantTimeCompare([]byte(id.Tenant), []byte(tenantID)) == 1
}

// MaySee reports whether the identity may see a token's record (not its
// secret, which nobody sees again): a global operator or auditor every
// token; any token itself; a tenant-admin also its own tenant's app tokens.
func (id Identity) MaySee(tok Token) bool {
	return id.Global() || id.mayManage(tok)
}

// MayRevoke reports whether the identity may revoke a token: a global
// operator any token; any token itself; a tenant-admin also its own
// tenant's app tokens (never another tenant's, nor a token of another
// role).
func (id Identity) MayRevoke(tok Token) bool {
	return (id.Global() && id.Role == string(RoleOperator)) || id.mayManage(tok)
}

// mayManage: the token is the identity's own, or one of the app tokens of
// a tenant-admin's tenant.
func (id Identity) mayManage(tok Token) bool {
	if id.TokenID != "" && id.TokenID == tok.ID {
		return true
	}
	return id.Role == string(RoleTenantAdmin) && id.Tenant != "" && tok.Role == RoleApp &&
		subtle.ConstantTimeCompare([]byte(id.Tenant), []byte(tok.Tenant)) == 1
}

// TokenFinder finds a token by the SHA-256 of its secret: found is false,
// with a nil error, when no token has it.
type TokenFinder interface {
	TokenByHash(ctx context.Context, hash [32]byte) (tok Token, found bool, err error)
}

// Authenticate finds the token that an Authorization header carries
// ("Bearer srt_…") and returns who it is. A missing, malformed or unknown
// token is ErrUnauthenticated, whichever it is; a revoked one ErrRevoked
// and an expired one ErrExpired, each saying when; any other error is the
// store's (the caller answers it as a server fault). The header value is
// never logged nor put in an error.
func Authenticate(ctx context.Context, st TokenFinder, header string, now time.Time) (Identity, error) {
	tok, err := authenticate(ctx, st, header, now)
	if err != nil {
		return Identity{}, err
	}
	return Identity{TokenID: tok.ID, Role: string(tok.Role), Tenant: tok.Tenant}, nil
}

// authenticate is Authenticate, returning the token found.
func authenticate(ctx context.Context, st TokenFinder, header string, now time.Time) (Token, error) {
	scheme, secretString, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Token{}, ErrUnauthenticated
	}
	secretString = strings.TrimLeft(secretString, " ")
	if !wellFormed(secretString) {
		return Token{}, ErrUnauthenticated
	}
	h := Hash(secretString)
	tok, found, err := st.TokenByHash(ctx, h)
	if err != nil {
		return Token{}, fmt.Errorf("auth: looking up the token: %w", err)
	}
	if !found {
		return Token{}, ErrUnauthenticated
	}
	// The store found it by hash; compare again, in constant time, so that a
	// driver that matched loosely can never let another token in.
	if subtle.ConstantTimeCompare(tok.Hash[:], h[:]) != 1 {
		return Token{}, ErrUnauthenticated
	}
	if !tok.Role.Valid() || (tok.Tenant == "" && !tok.Role.Global()) {
		return Token{}, ErrUnauthenticated
	}
	switch tok.State(now) {
	case StateRevoked:
		return Token{}, fmt.Errorf("%w at %s", ErrRevoked, tok.Revoked.UTC().Format(time.RFC3339))
	case StateExpired:
		return Token{}, fmt.Errorf("%w at %s", ErrExpired, tok.Expires.UTC().Format(time.RFC3339))
	}
	return tok, nil
}

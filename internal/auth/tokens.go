package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
)

// Store is where tokens are kept (internal/store.Store).
type Store interface {
	TokenFinder
	CreateToken(ctx context.Context, tok Token, maxLive int, rec audit.Entry) (Token, error)
	DeleteToken(ctx context.Context, id string, rec audit.Entry) error
	TokenNames(ctx context.Context, ids []string) (map[string]string, error)
}

// Tokens is a region's API tokens: making, revoking and authenticating
// them. It is safe for concurrent use.
type Tokens struct {
	st  Store
	now func() time.Time
}

// NewTokens returns the Tokens over st. now is the clock; nil means
// time.Now.
func NewTokens(st Store, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{st: st, now: now}
}

// MaxDelegated is the most live (unexpired) app tokens a tenant may have
// for one of its tenant-admins to make another: app tokens outlive neither
// the tenant-admin that made them (Revoke) nor this bound.
const MaxDelegated = 100

// Create makes and stores a token (New) created now, made by the caller by
// (its Parent; a zero Identity when no token made it), and records rec with
// it (naming the token's tenant in it, if any). A zero expires means never.
// It returns the secret, shown this once, and the token as stored. A
// tenant-admin's token is refused (store.ErrTooManyTokens) while the tenant
// has MaxDelegated live tokens of its role.
func (ts *Tokens) Create(ctx context.Context, rec *audit.Entry, by Identity, role, tenantID, name string, expires time.Time) (string, Token, error) {
	secret, tok, err := New(role, tenantID, name, expires)
	if err != nil {
		return "", Token{}, err
	}
	tok.Created, tok.Parent = ts.now(), by.TokenID
	if tenantID != "" {
		rec.Tenant = tenantID
	}
	limit := 0
	if by.Role == string(RoleTenantAdmin) {
		limit = MaxDelegated
	}
	if tok, err = ts.st.CreateToken(ctx, tok, limit, *rec); err != nil {
		return "", Token{}, fmt.Errorf("auth: storing the token: %w", err)
	}
	return secret, tok, nil
}

// Revoke deletes the token with id at once, and with it every token it
// made (and those made by them), recorded with rec: from then on they
// authenticate nobody. An unknown id is store.ErrNotFound.
func (ts *Tokens) Revoke(ctx context.Context, rec *audit.Entry, id string) error {
	return ts.st.DeleteToken(ctx, id, *rec)
}

// Authenticate is the package's Authenticate, with the Tokens' store and
// clock.
func (ts *Tokens) Authenticate(ctx context.Context, header string) (Identity, error) {
	return Authenticate(ctx, ts.st, header, ts.now())
}

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
	RevokeToken(ctx context.Context, id, by string, at time.Time, rec audit.Entry) (Token, []string, error)
	TokenByID(ctx context.Context, id string) (Token, error)
	Tokens(ctx context.Context, tenantID string) ([]Token, error)
	TouchToken(ctx context.Context, id string, at time.Time) error
	TokenNames(ctx context.Context, ids []string) (map[string]string, error)
}

// Tokens is a region's API tokens: making, listing, revoking and
// authenticating them. It is safe for concurrent use.
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

// MaxDelegated is the most live (neither revoked nor expired) app tokens a
// tenant may have for one of its tenant-admins to make another: app tokens
// outlive neither the tenant-admin that made them (Revoke) nor this bound.
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

// Revoke revokes the token with id at once, by the caller by, and with it
// every token it made (and those made by them), recorded with rec: from
// then on they authenticate nobody (ErrRevoked), and their records stay. It
// returns the token as revoked and the IDs of those revoked with it. An
// unknown id is store.ErrNotFound, a token revoked already a
// *store.RevokedError. Who may revoke what (Identity.MayRevoke) is the
// caller's to check.
func (ts *Tokens) Revoke(ctx context.Context, rec *audit.Entry, by Identity, id string) (Token, []string, error) {
	return ts.st.RevokeToken(ctx, id, by.TokenID, ts.now(), *rec)
}

// Token returns the token with an ID, revoked or not (store.ErrNotFound if
// there is none).
func (ts *Tokens) Token(ctx context.Context, id string) (Token, error) {
	return ts.st.TokenByID(ctx, id)
}

// List returns the tokens of a tenant (by ID), or every token for "",
// oldest first, revoked and expired ones included. Who may see which
// (Identity.MaySee) is the caller's to check.
func (ts *Tokens) List(ctx context.Context, tenantID string) ([]Token, error) {
	return ts.st.Tokens(ctx, tenantID)
}

// UseGranularity is the granularity of a token's LastUsed: a token's use is
// recorded at most once per token and minute, as the minute it falls in.
const UseGranularity = time.Minute

// touchTimeout bounds the recording of a use.
const touchTimeout = time.Second

// Authenticate is the package's Authenticate, with the Tokens' store and
// clock. The first request a token authenticates in a minute (by
// UseGranularity, as the store last recorded it) also records that minute
// as its LastUsed: one small write per token and minute at most, never per
// request, bounded to a second, not audited, and best effort (a failure
// to record it does not fail the request).
func (ts *Tokens) Authenticate(ctx context.Context, header string) (Identity, error) {
	now := ts.now()
	tok, err := authenticate(ctx, ts.st, header, now)
	if err != nil {
		return Identity{}, err
	}
	if minute := now.UTC().Truncate(UseGranularity); tok.LastUsed.Before(minute) {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), touchTimeout)
		_ = ts.st.TouchToken(tctx, tok.ID, minute) // best effort
		cancel()
	}
	return Identity{TokenID: tok.ID, Role: string(tok.Role), Tenant: tok.Tenant}, nil
}

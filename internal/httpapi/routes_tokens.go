package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The token routes: create, list, revoke by id and revoke oneself.

// maxDelegatedTTL bounds the life of tokens a tenant-admin creates.
const maxDelegatedTTL = 90 * auth.Day

// tenantAdminMintsOwnApps is POST /v1/tokens's rule: operators may create
// any token; a tenant-admin only app tokens of its own tenant, with a ttl of
// at most 90 days.
func (s *server) tenantAdminMintsOwnApps(c *Call) error {
	if c.Identity.Role != tenantAdmin {
		return nil
	}
	req := c.Body.(*api.CreateTokenRequest)
	if req.Role != app {
		return errForbidden
	}
	if err := s.ownTenant(c, req.Tenant); err != nil {
		return err
	}
	// Tokens minted by a tenant-admin expire: they must not outlive the
	// admin's own access indefinitely.
	if ttl, err := auth.ParseTTL(req.TTL); err != nil || ttl > maxDelegatedTTL {
		return badRequestf("a tenant-admin's app tokens need a ttl of at most %s, in days (e.g. \"30d\") or as a Go duration (e.g. \"720h\")",
			auth.FormatTTL(maxDelegatedTTL))
	}
	return nil
}

// ownTenant refuses (errForbidden) a tenant-admin's request about the
// tenant named name unless it is the admin's own; whether another exists
// is not told.
func (s *server) ownTenant(c *Call, name string) error {
	t, err := s.Tenants.ByName(c.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return errForbidden
	}
	if err != nil {
		return err
	}
	if !c.Identity.Allows(scoped(tenantAdmin), t.ID) {
		return errForbidden
	}
	return nil
}

func (s *server) createToken(c *Call) (any, error) {
	ctx := c.Context()
	req := c.Body.(*api.CreateTokenRequest)
	role := auth.Role(req.Role)
	var t tenant.Tenant
	switch {
	case !role.Valid():
		return nil, badRequestf("role %q: use %s, %s, %s or %s", req.Role, operator, auditor, tenantAdmin, app)
	case role.Global() && req.Tenant != "":
		return nil, badRequestf("%s token covers every tenant: leave tenant out", role.A())
	case !role.Global() && req.Tenant == "":
		return nil, badRequestf("%s token needs its tenant's name", role.A())
	case !role.Global():
		var err error
		if t, err = s.Tenants.ByName(ctx, req.Tenant); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, notFoundf("no tenant is named %q", req.Tenant)
			}
			return nil, err
		}
	}
	now := s.Now()
	var expires time.Time
	if req.TTL != "" {
		d, err := auth.ParseTTL(req.TTL)
		if err != nil {
			return nil, err
		}
		expires = now.Add(d)
	}
	secret, tok, err := s.Tokens.Create(ctx, c.Audit, c.Identity, req.Role, t.ID, req.Name, expires)
	if err != nil {
		return nil, err
	}
	out := api.Token{ID: tok.ID, Role: string(tok.Role), Tenant: t.Name, Name: tok.Name, Secret: secret}
	if !tok.Expires.IsZero() {
		out.Expires = &tok.Expires
	}
	return out, nil
}

// tenantAdminListsOwn is GET /v1/tokens's rule: a tenant-admin lists its
// own tenant's tokens (the handler keeps its app tokens and itself); a
// tenant filter must name its own tenant.
func (s *server) tenantAdminListsOwn(c *Call) error {
	if c.Identity.Role != tenantAdmin {
		return nil
	}
	if name := c.Request.URL.Query().Get("tenant"); name != "" {
		return s.ownTenant(c, name)
	}
	return nil
}

// tokens lists the tokens the caller may see (auth.Identity.MaySee):
// operators and auditors every token, or one tenant's; a tenant-admin its
// tenant's app tokens and itself.
func (s *server) tokens(c *Call) (any, error) {
	ctx := c.Context()
	q := c.Request.URL.Query()
	state := q.Get("state")
	switch auth.State(state) {
	case "", auth.StateLive, auth.StateExpired, auth.StateRevoked:
	default:
		return nil, badRequestf("state %q: use %s, %s or %s, or leave it out for every token", state, api.TokenLive, api.TokenExpired, api.TokenRevoked)
	}
	tenantID := c.Identity.Tenant // a tenant-admin's own
	if name := q.Get("tenant"); name != "" && c.Identity.Global() {
		t, err := s.Tenants.ByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFoundf("no tenant is named %q", name)
		}
		if err != nil {
			return nil, err
		}
		tenantID = t.ID
	}
	toks, err := s.Tokens.List(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	names, err := s.tenantNames(ctx)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	out := api.TokenList{Tokens: []api.TokenInfo{}}
	for _, tok := range toks {
		if c.Identity.MaySee(tok) && (state == "" || tok.State(now) == auth.State(state)) {
			out.Tokens = append(out.Tokens, tokenInfo(tok, names, now))
		}
	}
	return out, nil
}

// tenantAdminRevokesOwn is POST /v1/tokens/{id}/revoke's rule: operators
// may revoke any token; a tenant-admin only its tenant's app tokens and
// itself (auth.Identity.MayRevoke), and it is not told whether another id
// exists.
func (s *server) tenantAdminRevokesOwn(c *Call) error {
	id := c.Request.PathValue("id")
	if err := validID("token", id); err != nil {
		return err
	}
	if c.Identity.Role != tenantAdmin {
		return nil
	}
	tok, err := s.Tokens.Token(c.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return errForbidden
	}
	if err != nil {
		return err
	}
	if !c.Identity.MayRevoke(tok) {
		return errForbidden
	}
	return nil
}

func (s *server) revokeToken(c *Call) (any, error) {
	id := c.Request.PathValue("id") // checked by the rule
	return s.revoke(c, id)
}

// selfToken shows the caller's own token: any token may.
func (s *server) selfToken(c *Call) (any, error) {
	ctx := c.Context()
	tok, err := s.Tokens.Token(ctx, c.Identity.TokenID)
	if err != nil {
		return nil, err
	}
	names, err := s.tenantNames(ctx)
	if err != nil {
		return nil, err
	}
	return tokenInfo(tok, names, s.Now()), nil
}

// revokeSelf revokes the caller's own token: any token may.
func (s *server) revokeSelf(c *Call) (any, error) { return s.revoke(c, c.Identity.TokenID) }

func (s *server) revoke(c *Call, id string) (any, error) {
	ctx := c.Context()
	tok, made, err := s.Tokens.Revoke(ctx, c.Audit, c.Identity, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFoundf("no token has id %s", id)
	}
	if err != nil {
		return nil, err
	}
	names, err := s.tenantNames(ctx)
	if err != nil {
		return nil, err
	}
	if made == nil {
		made = []string{}
	}
	return api.Revocation{Token: tokenInfo(tok, names, s.Now()), Cascaded: made}, nil
}

// tenantNames maps the region's tenant IDs to their names.
func (s *server) tenantNames(ctx context.Context) (map[string]string, error) {
	ts, err := s.Tenants.List(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(ts))
	for _, t := range ts {
		names[t.ID] = t.Name
	}
	return names, nil
}

// tokenInfo is the record of a token as the API shows it: never its
// secret, nor its hash.
func tokenInfo(tok auth.Token, tenantNames map[string]string, now time.Time) api.TokenInfo {
	out := api.TokenInfo{ID: tok.ID, Name: tok.Name, Role: string(tok.Role), Tenant: tenantNames[tok.Tenant],
		Created: tok.Created, Parent: tok.Parent, State: string(tok.State(now)), RevokedBy: tok.RevokedBy}
	for _, f := range []struct {
		t   time.Time
		dst **time.Time
	}{{tok.Expires, &out.Expires}, {tok.LastUsed, &out.LastUsed}, {tok.Revoked, &out.Revoked}} {
		if !f.t.IsZero() {
			t := f.t.UTC()
			*f.dst = &t
		}
	}
	return out
}

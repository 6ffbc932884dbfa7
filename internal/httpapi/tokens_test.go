package httpapi_test

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// tokenWorld is acme with a tenant-admin and its app tokens, another
// tenant-admin of acme, and beta with its own.
type tokenWorld struct {
	e                            *env
	admin, admin2, app1, app2    api.Token
	byOp, betaAdmin, betaApp, op api.Token
	auditor                      string
}

func newTokenWorld(t *testing.T) *tokenWorld {
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "acme")
	e.Tenant(t, "beta")
	w := &tokenWorld{e: e, auditor: e.Token(t, api.RoleAuditor, "")}
	mk := func(by string, req api.CreateTokenRequest) api.Token {
		t.Helper()
		var tok api.Token
		e.call("POST", "/v1/tokens", by, req).want(t, 201, &tok)
		e.Clock.Add(time.Second) // listed in the order made
		return tok
	}
	w.op = mk(e.Operator, api.CreateTokenRequest{Role: api.RoleOperator, Name: "ops"})
	w.admin = mk(w.op.Secret, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: "acme", Name: "acme admin"})
	w.admin2 = mk(w.op.Secret, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: "acme", Name: "acme admin 2"})
	w.app1 = mk(w.admin.Secret, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", Name: "web", TTL: "30d"})
	w.app2 = mk(w.admin.Secret, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", Name: "batch", TTL: "1h"})
	w.byOp = mk(w.op.Secret, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", Name: "by the operator"})
	w.betaAdmin = mk(w.op.Secret, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: "beta"})
	w.betaApp = mk(w.betaAdmin.Secret, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "beta", TTL: "1d"})
	return w
}

func (w *tokenWorld) list(t *testing.T, token, query string) []api.TokenInfo {
	t.Helper()
	var l api.TokenList
	w.e.call("GET", "/v1/tokens"+query, token, nil).want(t, 200, &l)
	return l.Tokens
}

func ids(toks []api.TokenInfo) []string {
	var out []string
	for _, tok := range toks {
		out = append(out, tok.ID)
	}
	return out
}

func idsOf(toks ...api.Token) []string {
	var out []string
	for _, tok := range toks {
		out = append(out, tok.ID)
	}
	return out
}

// TestTokenList: operators and auditors see every token (or one tenant's),
// a tenant-admin its tenant's app tokens and itself; each with its name,
// role, tenant, times, maker and state, and never its secret or hash.
func TestTokenList(t *testing.T) {
	w := newTokenWorld(t)
	e := w.e
	all := w.list(t, e.Operator, "")
	if len(all) != 10 { // the server's operator and auditor, and the world's 8
		t.Fatalf("the operator lists %d tokens, want 10: %v", len(all), ids(all))
	}
	if got := ids(w.list(t, w.auditor, "")); !slices.Equal(got, ids(all)) {
		t.Errorf("the auditor lists %v, want every token %v", got, ids(all))
	}
	acme := idsOf(w.admin, w.admin2, w.app1, w.app2, w.byOp)
	if got := ids(w.list(t, w.auditor, "?tenant=acme")); !slices.Equal(got, acme) {
		t.Errorf("tokens of acme = %v, want %v (oldest first)", got, acme)
	}
	own := idsOf(w.admin, w.app1, w.app2, w.byOp) // not the other tenant-admin
	for _, q := range []string{"", "?tenant=acme"} {
		if got := ids(w.list(t, w.admin.Secret, q)); !slices.Equal(got, own) {
			t.Errorf("the tenant-admin lists (%q) %v, want %v", q, got, own)
		}
	}
	if got := ids(w.list(t, w.betaAdmin.Secret, "")); !slices.Equal(got, idsOf(w.betaAdmin, w.betaApp)) {
		t.Errorf("beta's tenant-admin lists %v", got)
	}
	// What one token's record says.
	var app1 api.TokenInfo
	for _, tok := range all {
		if tok.ID == w.app1.ID {
			app1 = tok
		}
	}
	if app1.Name != "web" || app1.Role != api.RoleApp || app1.Tenant != "acme" || app1.Parent != w.admin.ID ||
		app1.State != api.TokenLive || app1.Expires == nil || !app1.Expires.Equal(app1.Created.Add(30*24*time.Hour)) ||
		app1.Revoked != nil || app1.RevokedBy != "" || app1.LastUsed != nil {
		t.Errorf("app1 = %+v", app1)
	}
	// Filters, and refusals.
	e.Clock.Add(2 * time.Hour) // app2 (1h) expires
	if got := ids(w.list(t, e.Operator, "?tenant=acme&state=expired")); !slices.Equal(got, idsOf(w.app2)) {
		t.Errorf("expired tokens of acme = %v, want %v", got, idsOf(w.app2))
	}
	if got := w.list(t, e.Operator, "?state=revoked"); len(got) != 0 {
		t.Errorf("revoked tokens = %v, want none", ids(got))
	}
	e.call("GET", "/v1/tokens?state=dead", e.Operator, nil).wantError(t, 400, api.CodeBadRequest)
	e.call("GET", "/v1/tokens?tenant=nope", e.Operator, nil).wantError(t, 404, api.CodeNotFound)
	refusal := e.call("GET", "/v1/tokens?tenant=beta", w.admin.Secret, nil).wantError(t, 403, api.CodeForbidden)
	if r := e.call("GET", "/v1/tokens?tenant=nope", w.admin.Secret, nil).wantError(t, 403, api.CodeForbidden); r != refusal {
		t.Errorf("a tenant-admin asking for an unknown tenant's tokens is told %q, for another's %q: want the same", r.Message, refusal.Message)
	}
	e.call("GET", "/v1/tokens", w.app1.Secret, nil).wantError(t, 403, api.CodeForbidden)

	// Never a secret or a hash.
	body := string(e.call("GET", "/v1/tokens", e.Operator, nil).want(t, 200, nil).body)
	for _, tok := range []api.Token{w.op, w.admin, w.admin2, w.app1, w.app2, w.byOp, w.betaAdmin, w.betaApp} {
		h := sha(tok.Secret)
		for _, s := range []string{tok.Secret, tok.Secret[4:20], hex.EncodeToString(h[:]), base64.StdEncoding.EncodeToString(h[:]),
			base64.RawURLEncoding.EncodeToString(h[:8])} {
			if strings.Contains(body, s) {
				t.Fatalf("the token list holds a token's secret or hash (%s)", s)
			}
		}
	}
	if strings.Contains(body, "srt_") || strings.Contains(body, "secret") || strings.Contains(body, "hash") {
		t.Errorf("the token list names secrets or hashes: %s", body)
	}
}

// TestTokenLastUse: a token's last use is listed to the minute, recorded
// once a minute at most, and not in the audit log.
func TestTokenLastUse(t *testing.T) {
	w := newTokenWorld(t)
	e := w.e
	lastUsed := func() *time.Time {
		t.Helper()
		for _, tok := range w.list(t, e.Operator, "?tenant=acme") {
			if tok.ID == w.admin.ID {
				return tok.LastUsed
			}
		}
		t.Fatal("the tenant-admin is not listed")
		return nil
	}
	// newTokenWorld used the tenant-admin: at the minute it did.
	start := e.Clock.Now()
	minute := start.Truncate(time.Minute)
	if got := lastUsed(); got == nil || !got.Equal(minute.Add(-time.Minute)) && !got.Equal(minute) {
		t.Fatalf("last use = %v, want the minute of %v", got, start)
	}
	e.Clock.Set(minute.Add(time.Minute + 5*time.Second))
	size := len(auditEntries(t, e))
	for range 3 {
		e.call("GET", "/v1/tenants/acme", w.admin.Secret, nil).want(t, 200, nil)
	}
	if got := lastUsed(); got == nil || !got.Equal(minute.Add(time.Minute)) {
		t.Errorf("last use = %v, want %v (the minute, not the second)", got, minute.Add(time.Minute))
	}
	if n := len(auditEntries(t, e)); n != size {
		t.Errorf("recording a token's use appended %d audit entries, want none", n-size)
	}
	e.Clock.Add(30 * time.Second) // the same minute
	e.call("GET", "/v1/tenants/acme", w.admin.Secret, nil).want(t, 200, nil)
	if got := lastUsed(); !got.Equal(minute.Add(time.Minute)) {
		t.Errorf("last use = %v within the same minute, want %v", got, minute.Add(time.Minute))
	}
	e.Clock.Add(time.Hour)
	e.call("GET", "/v1/tenants/acme", w.admin.Secret, nil).want(t, 200, nil)
	if got := lastUsed(); !got.Equal(e.Clock.Now().Truncate(time.Minute)) {
		t.Errorf("last use = %v an hour later, want %v", got, e.Clock.Now().Truncate(time.Minute))
	}
}

func auditEntries(t *testing.T, e *env) []api.AuditEntry {
	t.Helper()
	var l api.AuditList
	e.call("GET", "/v1/audit?limit=10000", e.Operator, nil).want(t, 200, &l)
	return l.Entries
}

// TestTokenRevoke: a tenant-admin revokes its tenant's app tokens and
// itself, nothing else; operators revoke anything; any token itself. A
// revoked token is told so (token_revoked), and revoking it again is 409
// already_revoked, saying when.
func TestTokenRevoke(t *testing.T) {
	w := newTokenWorld(t)
	e := w.e
	revoke := func(by, id string) api.Revocation {
		t.Helper()
		var r api.Revocation
		e.call("POST", "/v1/tokens/"+id+"/revoke", by, nil).want(t, 200, &r)
		return r
	}
	// A tenant-admin may not revoke another tenant's tokens, nor other
	// roles of its own, nor an id that does not exist: one refusal.
	refusal := e.call("POST", "/v1/tokens/"+w.betaApp.ID+"/revoke", w.admin.Secret, nil).wantError(t, 403, api.CodeForbidden)
	for _, id := range []string{w.betaAdmin.ID, w.admin2.ID, w.op.ID, strings.Repeat("ab", 16)} {
		if r := e.call("POST", "/v1/tokens/"+id+"/revoke", w.admin.Secret, nil).wantError(t, 403, api.CodeForbidden); r != refusal {
			t.Errorf("revoking %s as a tenant-admin: %q, want %q", id, r.Message, refusal.Message)
		}
	}
	if !strings.Contains(refusal.Message, "token revoke needs an operator or tenant-admin token") {
		t.Errorf("refusal %q does not say what revoking needs", refusal.Message)
	}
	e.call("POST", "/v1/tokens/"+w.app2.ID+"/revoke", w.app1.Secret, nil).wantError(t, 403, api.CodeForbidden)
	e.call("POST", "/v1/tokens/"+w.app2.ID+"/revoke", w.auditor, nil).wantError(t, 403, api.CodeForbidden)
	e.call("GET", "/v1/tenants/beta/keys", w.betaApp.Secret, nil).wantError(t, 403, api.CodeForbidden) // still live

	// Its tenant's app tokens, whoever made them.
	for _, app := range []api.Token{w.app1, w.byOp} {
		r := revoke(w.admin.Secret, app.ID)
		if r.Token.ID != app.ID || r.Token.State != api.TokenRevoked || r.Token.RevokedBy != w.admin.ID || r.Token.Tenant != "acme" ||
			r.Token.Revoked == nil || len(r.Cascaded) != 0 {
			t.Errorf("revoking %s = %+v", app.ID, r)
		}
		res := e.call("POST", "/v1/tenants/acme/encrypt", app.Secret, api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: []byte("x")}}})
		if m := res.wantError(t, 401, api.CodeTokenRevoked).Message; !strings.Contains(m, r.Token.Revoked.Format(time.RFC3339)) {
			t.Errorf("a revoked token's refusal %q does not say when (%s)", m, r.Token.Revoked.Format(time.RFC3339))
		}
	}
	e.Clock.Add(time.Minute)
	again := e.call("POST", "/v1/tokens/"+w.app1.ID+"/revoke", w.admin.Secret, nil).wantError(t, 409, api.CodeAlreadyRevoked)
	if !strings.Contains(again.Message, w.app1.ID) || !strings.Contains(again.Message, "revoked already") {
		t.Errorf("already_revoked says %q, want the token and when", again.Message)
	}
	e.call("POST", "/v1/tokens/"+w.app1.ID+"/revoke", e.Operator, nil).wantError(t, 409, api.CodeAlreadyRevoked)
	e.call("POST", "/v1/tokens/"+strings.Repeat("ab", 16)+"/revoke", e.Operator, nil).wantError(t, 404, api.CodeNotFound)

	// Listed live: app2 only, now.
	live := 0
	for _, tok := range w.list(t, w.admin.Secret, "?state=live") {
		if tok.Role == api.RoleApp {
			live++
		}
	}
	if live != 1 {
		t.Errorf("acme has %d live app tokens, want 1 (app2)", live)
	}

	// Self-revocation: any token; a tenant-admin's app tokens go with it.
	var r api.Revocation
	e.call("POST", "/v1/tokens/self/revoke", w.admin.Secret, nil).want(t, 200, &r)
	if r.Token.ID != w.admin.ID || r.Token.RevokedBy != w.admin.ID || !slices.Equal(r.Cascaded, idsOf(w.app2)) {
		t.Errorf("self revocation of the tenant-admin = %+v, want it and app2", r)
	}
	e.call("GET", "/v1/tenants/acme", w.admin.Secret, nil).wantError(t, 401, api.CodeTokenRevoked)
	e.call("POST", "/v1/tenants/acme/encrypt", w.app2.Secret, api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: []byte("x")}}}).
		wantError(t, 401, api.CodeTokenRevoked)
	e.call("POST", "/v1/tokens/self/revoke", w.auditor, nil).want(t, 200, &r)
	e.call("GET", "/v1/tenants", w.auditor, nil).wantError(t, 401, api.CodeTokenRevoked)
	// An operator revokes anything, and the tokens it made, and theirs.
	r = revoke(e.Operator, w.op.ID)
	if want := idsOf(w.admin2, w.betaAdmin, w.betaApp); !sameSet(r.Cascaded, want) {
		t.Errorf("revoking the operator revoked %v with it, want %v (the live ones it made, and theirs)", r.Cascaded, want)
	}
	var got api.TokenInfo
	for _, tok := range w.list(t, e.Operator, "?state=revoked") {
		if tok.ID == w.betaApp.ID {
			got = tok
		}
	}
	if got.State != api.TokenRevoked || got.RevokedBy == "" || got.Revoked == nil {
		t.Errorf("beta's app token after its maker's maker was revoked: %+v", got)
	}
	// The audit log: each revocation once, in the token's tenant.
	n := 0
	for _, a := range auditEntries(t, e) {
		if a.Action == "token.revoke" && a.Outcome == "ok" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d token.revoke entries, want 5", n)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

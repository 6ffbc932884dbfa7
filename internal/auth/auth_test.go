package auth_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

var (
	ctx = context.Background()
	now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
)

var rec = storetest.Rec

// tokens is an in-memory auth.TokenFinder.
type tokens struct {
	byHash map[[32]byte]auth.Token
	err    error
}

func (s *tokens) add(tok auth.Token) { s.byHash[tok.Hash] = tok }

func (s *tokens) TokenByHash(_ context.Context, h [32]byte) (auth.Token, bool, error) {
	if s.err != nil {
		return auth.Token{}, false, s.err
	}
	tok, ok := s.byHash[h]
	return tok, ok, nil
}

func TestNew(t *testing.T) {
	tenantID := tenant.NewID()
	sec, tok, err := auth.New("app", tenantID, "billing", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sec, "srt_") || len(sec) != 47 {
		t.Errorf("secret %q: want srt_ and 43 base64url characters", sec)
	}
	if tok.Hash != sha256.Sum256([]byte(sec)) || tok.Hash != auth.Hash(sec) {
		t.Error("token hash is not the SHA-256 of the secret")
	}
	if tok.Role != auth.RoleApp || tok.Tenant != tenantID || tok.Name != "billing" || !tok.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("token = %+v", tok)
	}
	if err := store.ValidID("token", tok.ID); err != nil {
		t.Error(err)
	}
	tok.Created = now
	mem, err := sqlite.OpenPath(ctx, sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if _, err := mem.CreateTenant(ctx, tenant.Tenant{ID: tenantID, Name: "acme", Env: tenant.EnvProduction, Created: now}, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.CreateToken(ctx, tok, 0, rec); err != nil {
		t.Errorf("the new token does not pass store checks: %v", err)
	}
	if strings.Contains(fmt.Sprintf("%+v", tok), strings.TrimPrefix(sec, "srt_")) {
		t.Error("the token holds its secret")
	}
	sec2, _, _ := auth.New("app", tenantID, "", time.Time{})
	if sec2 == sec {
		t.Error("two tokens with the same secret")
	}

	for _, c := range []struct{ role, tenant string }{
		{"root", ""}, {"", ""},
		{"operator", tenantID}, {"auditor", tenantID}, // global roles name no tenant
		{"tenant-admin", ""}, {"app", ""}, // scoped roles must
		{"app", "not an id"},
	} {
		if _, _, err := auth.New(c.role, c.tenant, "", time.Time{}); err == nil {
			t.Errorf("New(%q, %q) error = nil", c.role, c.tenant)
		}
	}
	if _, _, err := auth.New("app", tenantID, "bad\nname", time.Time{}); err == nil {
		t.Error("New(name with a newline) error = nil")
	}
}

func TestAuthenticate(t *testing.T) {
	st := &tokens{byHash: map[[32]byte]auth.Token{}}
	tenantID := tenant.NewID()
	add := func(role, tenant string, expires time.Time) (string, auth.Token) {
		sec, tok, err := auth.New(role, tenant, "", expires)
		if err != nil {
			t.Fatal(err)
		}
		tok.Created = now.Add(-time.Hour)
		st.add(tok)
		return sec, tok
	}
	live, liveTok := add("tenant-admin", tenantID, now.Add(time.Minute))
	expired, _ := add("app", tenantID, now.Add(time.Minute))
	op, opTok := add("operator", "", time.Time{})

	id, err := auth.Authenticate(ctx, st, "Bearer "+live, now)
	if err != nil || id != (auth.Identity{TokenID: liveTok.ID, Role: "tenant-admin", Tenant: tenantID}) {
		t.Errorf("Authenticate(live) = %+v, %v", id, err)
	}
	if id, err := auth.Authenticate(ctx, st, "bearer "+op, now); err != nil || id.TokenID != opTok.ID || !id.Global() {
		t.Errorf("Authenticate(operator, lowercase scheme) = %+v, %v", id, err)
	}

	unknown, _, _ := auth.New("operator", "", "", time.Time{})
	flip := []byte(live)
	flip[10] ^= 1
	for name, h := range map[string]string{
		"empty":          "",
		"no scheme":      live,
		"basic":          "Basic " + live,
		"bearer only":    "Bearer ",
		"no prefix":      "Bearer " + strings.TrimPrefix(live, "srt_"),
		"other prefix":   "Bearer srx_" + strings.TrimPrefix(live, "srt_"),
		"truncated":      "Bearer " + live[:len(live)-1],
		"longer":         "Bearer " + live + "A",
		"trailing space": "Bearer " + live + " ",
		"std base64":     "Bearer " + strings.NewReplacer("-", "+", "_", "/").Replace(live) + "+",
		"unknown":        "Bearer " + unknown,
		"altered":        "Bearer " + string(flip),
		"expired":        "Bearer " + expired,
	} {
		if name == "expired" {
			if _, err := auth.Authenticate(ctx, st, h, now.Add(time.Minute)); !errors.Is(err, auth.ErrUnauthenticated) {
				t.Errorf("%s: error = %v, want ErrUnauthenticated", name, err)
			}
			continue
		}
		id, err := auth.Authenticate(ctx, st, h, now)
		if !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%s: Authenticate = %+v, %v, want ErrUnauthenticated", name, id, err)
		}
		if err != nil && (strings.Contains(err.Error(), "srt_") || strings.Contains(err.Error(), live[4:12])) {
			t.Errorf("%s: the error %q echoes the token", name, err)
		}
	}
	// A store fault is not "unauthenticated": the caller answers 5xx.
	st.err = errors.New("store: database is locked")
	if _, err := auth.Authenticate(ctx, st, "Bearer "+live, now); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Authenticate(store fault) error = %v", err)
	}
}

func TestAuthenticateSQLite(t *testing.T) {
	st, err := sqlite.OpenPath(ctx, sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tn, err := st.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, now), rec)
	if err != nil {
		t.Fatal(err)
	}
	sec, tok, err := auth.New("app", tn.ID, "web", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateToken(ctx, tok, 0, rec); err != nil {
		t.Fatal(err)
	}
	id, err := auth.Authenticate(ctx, st, "Bearer "+sec, now)
	if err != nil || id.Tenant != tn.ID || id.Role != "app" || id.TokenID != tok.ID {
		t.Errorf("Authenticate = %+v, %v", id, err)
	}
}

// TestAllows checks every role × scope × route kind combination.
func TestAllows(t *testing.T) {
	const mine, other = "tenant-mine", "tenant-other"
	ids := map[string]auth.Identity{
		"operator":            {TokenID: "1", Role: "operator"},
		"auditor":             {TokenID: "2", Role: "auditor"},
		"tenant-admin(mine)":  {TokenID: "3", Role: "tenant-admin", Tenant: mine},
		"app(mine)":           {TokenID: "4", Role: "app", Tenant: mine},
		"operator(mine)":      {TokenID: "5", Role: "operator", Tenant: mine}, // not made by New; treated as scoped
		"auditor(mine)":       {TokenID: "6", Role: "auditor", Tenant: mine},
		"tenant-admin(bogus)": {TokenID: "7", Role: "tenant-admin"}, // scoped role without a tenant
		"nobody":              {},
	}
	roles := []string{"operator", "auditor", "tenant-admin", "app"}
	for idName, id := range ids {
		for _, role := range roles {
			for _, scoped := range []bool{false, true} {
				for _, target := range []string{mine, other, ""} {
					p := auth.Policy{Roles: []string{role}, TenantScoped: scoped}
					got := id.Allows(p, target)
					want := want(id, p, target)
					if got != want {
						t.Errorf("%s.Allows(%+v, %q) = %v, want %v", idName, p, target, got, want)
					}
				}
			}
		}
		if id.Allows(auth.Policy{}, mine) || id.Allows(auth.Policy{TenantScoped: true}, mine) {
			t.Errorf("%s is allowed by a policy with no roles", idName)
		}
	}
	// The model in words, spelled out for the common cases.
	all := auth.Policy{Roles: roles, TenantScoped: true}
	for _, c := range []struct {
		id     string
		tenant string
		want   bool
	}{
		{"operator", mine, true}, {"operator", other, true},
		{"auditor", mine, true}, {"auditor", other, true},
		{"tenant-admin(mine)", mine, true}, {"tenant-admin(mine)", other, false},
		{"app(mine)", mine, true}, {"app(mine)", other, false},
		{"operator(mine)", mine, true}, {"operator(mine)", other, false},
		{"tenant-admin(bogus)", mine, false}, {"tenant-admin(bogus)", "", false},
	} {
		if got := ids[c.id].Allows(all, c.tenant); got != c.want {
			t.Errorf("%s on tenant %q = %v, want %v", c.id, c.tenant, got, c.want)
		}
	}
	global := auth.Policy{Roles: roles}
	for name, want := range map[string]bool{"operator": true, "auditor": true, "tenant-admin(mine)": true,
		"app(mine)": true, "operator(mine)": false, "auditor(mine)": false, "tenant-admin(bogus)": true} {
		if got := ids[name].Allows(global, ""); got != want {
			t.Errorf("%s on a global route = %v, want %v", name, got, want)
		}
	}
	if (auth.Policy{}).Zero() != true || (auth.Policy{Roles: []string{"app"}}).Zero() {
		t.Error("Policy.Zero")
	}
}

// want is the rule, written independently of Allows.
func want(id auth.Identity, p auth.Policy, target string) bool {
	listed := false
	for _, r := range p.Roles {
		listed = listed || (r == id.Role && r != "")
	}
	if !listed {
		return false
	}
	globalRole := id.Role == "operator" || id.Role == "auditor"
	if !p.TenantScoped {
		return !globalRole || id.Tenant == ""
	}
	switch {
	case target == "":
		return false
	case globalRole && id.Tenant == "":
		return true
	default:
		return id.Tenant != "" && id.Tenant == target
	}
}

func TestTokenExpired(t *testing.T) {
	now := time.Now()
	if (auth.Token{}).Expired(now) || !(auth.Token{Expires: now}).Expired(now) || (auth.Token{Expires: now.Add(1)}).Expired(now) {
		t.Error("Token.Expired is wrong")
	}
}

// TestAuthenticateWhy: a revoked token and an expired one are told apart
// from an unknown one, and each says when; all are ErrUnauthenticated.
func TestAuthenticateWhy(t *testing.T) {
	st := &tokens{byHash: map[[32]byte]auth.Token{}}
	tenantID := tenant.NewID()
	add := func(mod func(*auth.Token)) string {
		sec, tok, err := auth.New("app", tenantID, "", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		tok.Created = now.Add(-time.Hour)
		mod(&tok)
		st.add(tok)
		return sec
	}
	revokedAt, expiresAt := now.Add(-time.Minute), now.Add(-time.Second)
	revoked := add(func(tok *auth.Token) { tok.Revoked = revokedAt })
	expired := add(func(tok *auth.Token) { tok.Expires = expiresAt })
	both := add(func(tok *auth.Token) { tok.Revoked, tok.Expires = revokedAt, expiresAt })
	unknown, _, _ := auth.New("app", tenantID, "", time.Time{})
	for _, c := range []struct {
		name, secret string
		want         error
		when         time.Time
	}{
		{"revoked", revoked, auth.ErrRevoked, revokedAt},
		{"expired", expired, auth.ErrExpired, expiresAt},
		{"revoked and expired", both, auth.ErrRevoked, revokedAt},
		{"unknown", unknown, auth.ErrUnauthenticated, time.Time{}},
	} {
		_, err := auth.Authenticate(ctx, st, "Bearer "+c.secret, now)
		if !errors.Is(err, c.want) || !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("Authenticate(%s) error = %v, want %v", c.name, err, c.want)
			continue
		}
		if !c.when.IsZero() && !strings.Contains(err.Error(), c.when.Format(time.RFC3339)) {
			t.Errorf("Authenticate(%s) error %q does not say when (%s)", c.name, err, c.when.Format(time.RFC3339))
		}
		if c.want == auth.ErrUnauthenticated && (errors.Is(err, auth.ErrRevoked) || errors.Is(err, auth.ErrExpired)) {
			t.Errorf("Authenticate(unknown) error = %v, want neither revoked nor expired", err)
		}
		if strings.Contains(err.Error(), c.secret[4:12]) {
			t.Errorf("Authenticate(%s) error %q echoes the token", c.name, err)
		}
	}
	if (auth.Token{}).State(now) != auth.StateLive || (auth.Token{Expires: now}).State(now) != auth.StateExpired ||
		(auth.Token{Expires: now, Revoked: now}).State(now) != auth.StateRevoked {
		t.Error("Token.State is wrong")
	}
}

// useStore is an auth.Store that counts the uses recorded.
type useStore struct {
	auth.Store // nil: only TokenByHash and TouchToken are called
	tokens
	touches []time.Time
	fail    error
}

func (s *useStore) TokenByHash(ctx context.Context, h [32]byte) (auth.Token, bool, error) {
	return s.tokens.TokenByHash(ctx, h)
}

func (s *useStore) TouchToken(_ context.Context, id string, at time.Time) error {
	s.touches = append(s.touches, at)
	if s.fail != nil {
		return s.fail
	}
	for h, tok := range s.byHash {
		if tok.ID == id && tok.LastUsed.Before(at) {
			tok.LastUsed = at
			s.byHash[h] = tok
		}
	}
	return s.fail
}

// TestLastUse: a token's use is recorded at most once per minute, as the
// minute it falls in, and a failure to record it fails nothing.
func TestLastUse(t *testing.T) {
	st := &useStore{tokens: tokens{byHash: map[[32]byte]auth.Token{}}}
	sec, tok, err := auth.New("operator", "", "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	st.add(tok)
	clock := now.Add(10 * time.Second) // 12:00:10
	ts := auth.NewTokens(st, func() time.Time { return clock })
	use := func() {
		t.Helper()
		if _, err := ts.Authenticate(ctx, "Bearer "+sec); err != nil {
			t.Fatalf("Authenticate() error = %v", err)
		}
	}
	for range 50 {
		use()
	}
	clock = now.Add(59 * time.Second)
	use()
	if len(st.touches) != 1 || !st.touches[0].Equal(now) {
		t.Fatalf("51 requests within a minute recorded uses %v, want one, at %v", st.touches, now)
	}
	clock = now.Add(time.Minute + time.Second) // the next minute
	use()
	use()
	if len(st.touches) != 2 || !st.touches[1].Equal(now.Add(time.Minute)) {
		t.Fatalf("uses %v, want a second one at %v", st.touches, now.Add(time.Minute))
	}
	// Best effort: the request still authenticates, and is tried again
	// next time.
	st.fail = errors.New("store: database is locked")
	clock = now.Add(5 * time.Minute)
	before := len(st.touches)
	use()
	use()
	if len(st.touches) != before+2 {
		t.Errorf("two requests after a failed record of use tried %d, want each to try", len(st.touches)-before)
	}
	// A revoked token is not recorded.
	st.fail = nil
	rev := tok
	rev.Revoked = now
	st.tokens.byHash[tok.Hash] = rev
	before = len(st.touches)
	clock = now.Add(time.Hour)
	if _, err := ts.Authenticate(ctx, "Bearer "+sec); !errors.Is(err, auth.ErrRevoked) || len(st.touches) != before {
		t.Errorf("Authenticate(revoked) = %v and %d uses recorded, want ErrRevoked and none", err, len(st.touches)-before)
	}
}

// TestMayRevoke: operators revoke anything; every token itself; a
// tenant-admin its own tenant's app tokens, nothing else. Seeing is the
// same, and auditors see everything.
func TestMayRevoke(t *testing.T) {
	acme, beta := tenant.NewID(), tenant.NewID()
	tok := func(id string, role auth.Role, tn string) auth.Token {
		return auth.Token{ID: id, Role: role, Tenant: tn}
	}
	toks := map[string]auth.Token{
		"operator":          tok("op", auth.RoleOperator, ""),
		"auditor":           tok("aud", auth.RoleAuditor, ""),
		"acme admin":        tok("adm", auth.RoleTenantAdmin, acme),
		"other acme admin":  tok("adm2", auth.RoleTenantAdmin, acme),
		"acme app":          tok("app", auth.RoleApp, acme),
		"beta app":          tok("bapp", auth.RoleApp, beta),
		"beta admin":        tok("badm", auth.RoleTenantAdmin, beta),
		"scoped operator":   tok("sop", auth.RoleOperator, acme),
		"acme app, no name": tok("app2", auth.RoleApp, acme),
	}
	id := func(name string) auth.Identity {
		tk := toks[name]
		return auth.Identity{TokenID: tk.ID, Role: string(tk.Role), Tenant: tk.Tenant}
	}
	revoke := map[string][]string{
		"operator":        {"operator", "auditor", "acme admin", "other acme admin", "acme app", "beta app", "beta admin", "scoped operator", "acme app, no name"},
		"auditor":         {"auditor"},
		"acme admin":      {"acme admin", "acme app", "acme app, no name"},
		"acme app":        {"acme app"},
		"beta admin":      {"beta admin", "beta app"},
		"scoped operator": {"scoped operator"},
	}
	for who, may := range revoke {
		for name, target := range toks {
			want := slices.Contains(may, name)
			if got := id(who).MayRevoke(target); got != want {
				t.Errorf("%s.MayRevoke(%s) = %v, want %v", who, name, got, want)
			}
			wantSee := want || who == "auditor"
			if got := id(who).MaySee(target); got != wantSee {
				t.Errorf("%s.MaySee(%s) = %v, want %v", who, name, got, wantSee)
			}
		}
	}
	if (auth.Identity{}).MayRevoke(auth.Token{}) || (auth.Identity{}).MaySee(auth.Token{}) {
		t.Error("a zero identity may revoke or see a zero token")
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * auth.Day, "1d": auth.Day, "36500d": auth.MaxTTL, "090d": 90 * auth.Day,
		"720h": 720 * time.Hour, "90m": 90 * time.Minute, "1h30m": 90 * time.Minute, "1.5h": 90 * time.Minute,
	} {
		if got, err := auth.ParseTTL(in); err != nil || got != want {
			t.Errorf("ParseTTL(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "0d", "-1d", "+1d", "1.5d", "1 d", " 1d", "1D", "1d12h", "30days", "36501d",
		"99999999999999999999d", "0", "0h", "-1h", "soon", "1y", "876001h"} {
		_, err := auth.ParseTTL(in)
		if !errors.Is(err, auth.ErrInvalid) || !strings.Contains(err.Error(), "30d") || !strings.Contains(err.Error(), "720h") {
			t.Errorf("ParseTTL(%q) error = %v, want ErrInvalid naming the forms", in, err)
		}
	}
	for d, want := range map[time.Duration]string{30 * auth.Day: "30d", 90 * time.Minute: "1h30m0s", 36 * time.Hour: "36h0m0s"} {
		if got := auth.FormatTTL(d); got != want {
			t.Errorf("FormatTTL(%v) = %q, want %q", d, got, want)
		}
		if got, err := auth.ParseTTL(auth.FormatTTL(d)); err != nil || got != d {
			t.Errorf("ParseTTL(FormatTTL(%v)) = %v, %v", d, got, err)
		}
	}
}

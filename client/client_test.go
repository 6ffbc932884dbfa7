package client_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.Cleanup()
	os.Exit(code)
}

var ctx = context.Background()

// server is the real handler on a TLS loopback server.
type server struct {
	*apitest.Server
	ts *httptest.Server
}

func newServer(t *testing.T, opts apitest.Options) *server {
	t.Helper()
	s := apitest.NewServer(t, opts)
	ts := httptest.NewTLSServer(s.Handler)
	t.Cleanup(ts.Close)
	return &server{Server: s, ts: ts}
}

func (s *server) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ts.Certificate())
	return p
}

func (s *server) client(t *testing.T, token string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(s.ts.URL, token, append([]client.Option{client.WithRootCAs(s.pool())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// apiErr checks that err is an *client.Error with status and code.
func apiErr(t *testing.T, err error, status int, code string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *client.Error", err, err)
	}
	if e.Status != status || e.Code != code || e.Message == "" {
		t.Fatalf("error = %+v, want %d %s", e, status, code)
	}
	return e
}

// TestEveryMethod calls every method against the real handler over TLS.
func TestEveryMethod(t *testing.T) {
	s := newServer(t, apitest.Options{})
	op := s.client(t, s.Operator)
	anon := s.client(t, "")

	if h, err := anon.Health(ctx); err != nil || h.Status != "ok" || h.Region != apitest.Region {
		t.Errorf("Health = %+v, %v", h, err)
	}
	if h, err := anon.Ready(ctx); err != nil || h.Status != "ok" || h.Releases != 1 {
		t.Errorf("Ready = %+v, %v", h, err)
	}
	if st, err := op.Status(ctx); err != nil || st.Status != "ok" || len(st.Releases) != 1 || st.Releases[0].ID != apitest.Release1 {
		t.Errorf("Status = %+v, %v", st, err)
	}
	doc, err := anon.OpenAPI(ctx)
	var m map[string]any
	if err != nil || json.Unmarshal(doc, &m) != nil || m["openapi"] != "3.1.0" {
		t.Errorf("OpenAPI = %.80s, %v", doc, err)
	}
	rel, err := op.InstallRelease(ctx, s.Site.Bundles[apitest.Release2])
	if err != nil || rel.ID != apitest.Release2 || !rel.Loaded {
		t.Errorf("InstallRelease = %+v, %v", rel, err)
	}
	rels, err := op.Releases(ctx)
	if err != nil || len(rels) != 2 {
		t.Errorf("Releases = %+v, %v", rels, err)
	}
	acme, err := op.CreateTenant(ctx, "acme", "sandbox")
	if err != nil || acme.Name != "acme" || acme.Env != "sandbox" {
		t.Fatalf("CreateTenant = %+v, %v", acme, err)
	}
	_, err = op.CreateTenant(ctx, "acme", "sandbox")
	apiErr(t, err, 409, api.CodeExists)
	ts, err := op.Tenants(ctx)
	if err != nil || len(ts) != 1 || ts[0] != acme {
		t.Errorf("Tenants = %+v, %v", ts, err)
	}
	if got, err := op.Tenant(ctx, "acme"); err != nil || got != acme {
		t.Errorf("Tenant = %+v, %v", got, err)
	}
	_, err = op.Tenant(ctx, "nope")
	apiErr(t, err, 404, api.CodeNotFound)

	adminTok, err := op.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: "acme", TTL: "24h"})
	if err != nil || adminTok.Secret == "" || adminTok.Expires == nil {
		t.Fatalf("CreateToken = %+v, %v", adminTok, err)
	}
	admin := s.client(t, adminTok.Secret)
	appTok, err := admin.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", TTL: "720h"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleOperator})
	apiErr(t, err, 403, api.CodeForbidden)
	spare, err := admin.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := op.RevokeToken(ctx, spare.ID); err != nil || r.Token.ID != spare.ID || r.Token.State != api.TokenRevoked {
		t.Errorf("RevokeToken = %+v, %v, want the token, revoked", r, err)
	}
	_, err = s.client(t, spare.Secret).Keys(ctx, "acme", "")
	apiErr(t, err, 401, api.CodeTokenRevoked)
	_, err = admin.RevokeToken(ctx, spare.ID)
	if e := apiErr(t, err, 409, api.CodeAlreadyRevoked); !strings.Contains(e.Message, "revoked already, at ") {
		t.Errorf("RevokeToken(revoked) = %v, want when", e)
	}
	if _, err := op.RevokeToken(ctx, "self"); err == nil || !strings.Contains(err.Error(), "RevokeSelf") {
		t.Errorf(`RevokeToken("self") error = %v, want it refused, pointing to RevokeSelf`, err)
	}
	if _, err := op.RevokeToken(ctx, "../tenants"); err == nil {
		t.Error("RevokeToken(../tenants) error = nil")
	}
	if me, err := s.client(t, appTok.Secret).Self(ctx); err != nil || me.ID != appTok.ID || me.Role != api.RoleApp || me.Tenant != "acme" || me.Expires == nil {
		t.Errorf("Self(app) = %+v, %v, want the app token of acme, with its expiry", me, err)
	}
	toks, err := admin.Tokens(ctx, "", "")
	if err != nil || len(toks) != 3 || !slices.ContainsFunc(toks, func(x api.TokenInfo) bool { return x.ID == adminTok.ID && x.Tenant == "acme" }) {
		t.Errorf("Tokens(tenant-admin) = %+v, %v, want itself and its two app tokens", toks, err)
	}
	if toks, err := op.Tokens(ctx, "acme", api.TokenRevoked); err != nil || len(toks) != 1 || toks[0].ID != spare.ID ||
		toks[0].State != api.TokenRevoked || toks[0].Revoked == nil {
		t.Errorf("Tokens(acme, revoked) = %+v, %v, want the spare", toks, err)
	}
	_, err = admin.Tokens(ctx, "nope", "")
	apiErr(t, err, 403, api.CodeForbidden)
	selfish, err := admin.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", TTL: "30d"})
	if err != nil || selfish.Expires == nil || !selfish.Expires.Equal(s.Clock.Now().Add(30*24*time.Hour)) {
		t.Fatalf("CreateToken(ttl 30d) = %+v, %v", selfish, err)
	}
	selfC := s.client(t, selfish.Secret)
	if r, err := selfC.RevokeSelf(ctx); err != nil || r.Token.ID != selfish.ID || r.Token.State != api.TokenRevoked || r.Cascaded == nil {
		t.Errorf("RevokeSelf = %+v, %v", r, err)
	}
	_, err = selfC.RevokeSelf(ctx)
	apiErr(t, err, 401, api.CodeTokenRevoked)
	app := s.client(t, appTok.Secret)

	k1, err := admin.GenerateKey(ctx, "acme", "")
	if err != nil || k1.Version != 1 || k1.Type != "data" || k1.Tenant != "acme" {
		t.Fatalf("GenerateKey = %+v, %v", k1, err)
	}
	_, err = admin.GenerateKey(ctx, "acme", "data")
	rl := apiErr(t, err, 429, api.CodeRateLimited)
	if rl.NextAllowed == nil || !rl.NextAllowed.Equal(k1.Created.Add(4*time.Hour)) || rl.RequestID == "" {
		t.Errorf("rate limited: %+v", rl)
	}
	if !strings.Contains(rl.Error(), "next allowed at") {
		t.Errorf("Error() = %q", rl.Error())
	}
	res, err := app.Encrypt(ctx, "acme", "", api.EncryptItem{Plaintext: []byte("v1 data"), Context: map[string]string{"k": "v"}})
	if err != nil || len(res) != 1 || res[0].Error != nil || res[0].Version != 1 {
		t.Fatalf("Encrypt = %+v, %v", res, err)
	}
	s.Clock.Add(4 * time.Hour)
	if k2, err := op.GenerateKey(ctx, "acme", "data"); err != nil || k2.Version != 2 {
		t.Fatalf("GenerateKey(2) = %+v, %v", k2, err)
	}
	keys, err := admin.Keys(ctx, "acme", "data")
	if err != nil || len(keys) != 2 {
		t.Errorf("Keys = %+v, %v", keys, err)
	}
	if keys, err := admin.Keys(ctx, "acme", "analytics"); err != nil || len(keys) != 0 {
		t.Errorf("Keys(analytics) = %+v, %v", keys, err)
	}

	// DEKs of both KEMs open locally and agree with the server.
	for _, kem := range []uint16{0, client.KEMX25519, client.KEMMLKEM768X25519} {
		dek, err := app.DEK(ctx, "acme", "", 1, kem)
		if err != nil {
			t.Fatalf("DEK(kem %#x) = %v", kem, err)
		}
		if dek.TenantID() != acme.ID || dek.Type() != "data" || dek.Version() != 1 {
			t.Errorf("DEK(kem %#x) = %s/%s/%d, want %s/data/1", kem, dek.TenantID(), dek.Type(), dek.Version(), acme.ID)
		}
		pt, err := dek.Decrypt(res[0].Ciphertext, map[string]string{"k": "v"})
		if err != nil || string(pt) != "v1 data" {
			t.Errorf("Decrypt(server ciphertext) = %q, %v, want %q", pt, err, "v1 data")
		}
		dek.Destroy()
	}
	if active, err := app.DEK(ctx, "acme", "data", 0, 0); err != nil || active.Version() != 2 {
		t.Errorf("DEK(active) = version %d, %v, want 2", active.Version(), err)
	}
	if _, err := app.DEK(ctx, "acme", "data", 0, 0x0010); err == nil {
		t.Error("DEK(P-256 KEM) error = nil")
	}

	// Key usage: deliveries at once, encryptions once the aggregate is
	// flushed; a version never used is listed with zero counts.
	if err := s.Node.Aggregate.Flush(ctx, s.Node.Audit); err != nil {
		t.Fatal(err)
	}
	usage, err := admin.KeyUsage(ctx, "acme", "data")
	if err != nil || len(usage) != 2 {
		t.Fatalf("KeyUsage = %+v, %v, want data/1 and data/2", usage, err)
	}
	if u := usage[0]; u.Version != 1 || u.State != "archived" || u.Encryptions != 1 || u.Sealed != 1 || u.Deliveries != 3 ||
		u.Nonces != "ok" || u.LastEncrypt == nil || u.LastDelivery == nil || u.LastDecrypt != nil || u.SafeToDestroy || u.RowsLeft != nil {
		t.Errorf("KeyUsage()[0] = %+v, want v1 archived: 1 encryption, 3 deliveries, not safe to destroy", u)
	}
	if u := usage[1]; u.Version != 2 || u.State != "active" || u.Encryptions != 0 || u.Deliveries != 1 || u.SafeToDestroy {
		t.Errorf("KeyUsage()[1] = %+v, want v2 active: 1 delivery", u)
	}
	_, err = app.KeyUsage(ctx, "acme", "")
	apiErr(t, err, 403, api.CodeForbidden)

	_, err = admin.DestroyKey(ctx, "acme", "data", 1, "acme/data/2")
	apiErr(t, err, 400, api.CodeBadRequest)
	if k, err := admin.DestroyKey(ctx, "acme", "data", 1, "acme/data/1"); err != nil || k.State != "destroyed" {
		t.Errorf("DestroyKey = %+v, %v", k, err)
	}
	dec, err := app.Decrypt(ctx, "acme", api.DecryptItem{Ciphertext: res[0].Ciphertext, Context: map[string]string{"k": "v"}})
	if err != nil || dec[0].Error == nil || dec[0].Error.Code != api.CodeKeyDestroyed {
		t.Errorf("Decrypt(destroyed) = %+v, %v", dec, err)
	}
	_, err = app.DEK(ctx, "acme", "data", 1, 0)
	apiErr(t, err, 409, api.CodeKeyDestroyed)

	// Access: the app token is refused elsewhere; no token is 401.
	_, err = app.Tenants(ctx)
	apiErr(t, err, 403, api.CodeForbidden)
	_, err = anon.Tenants(ctx)
	apiErr(t, err, 401, api.CodeUnauthenticated)
}

func TestReadyNotReady(t *testing.T) {
	s := newServer(t, apitest.Options{Releases: []string{}})
	h, err := s.client(t, "").Ready(ctx)
	e := apiErr(t, err, 503, api.CodeNotReady)
	if h.Status != "not_ready" || h.Problems != 1 || !strings.Contains(e.Message, "1 problem") || strings.Contains(e.Message, "no release") {
		t.Errorf("Ready = %+v, %v, want the count of problems only", h, e)
	}
	st, err := s.client(t, s.Operator).Status(ctx)
	if err != nil || st.Status != "not_ready" || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "no release") {
		t.Errorf("Status = %+v, %v, want the problem named", st, err)
	}
	_, err = s.client(t, "").Status(ctx)
	apiErr(t, err, 401, api.CodeUnauthenticated)
}

func TestTLSOptions(t *testing.T) {
	s := newServer(t, apitest.Options{})
	// A CA file.
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw}), 0o600)
	c, err := client.New(s.ts.URL, "", client.WithCAFile(ca), client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(ctx); err != nil {
		t.Errorf("Health with a CA file: %v", err)
	}
	// An http.Client.
	c, err = client.New(s.ts.URL, "", client.WithHTTPClient(s.ts.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(ctx); err != nil {
		t.Errorf("Health with an http.Client: %v", err)
	}
	// The system roots do not trust the test CA.
	c, err = client.New(s.ts.URL, s.Operator)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Tenants(ctx)
	var e *client.Error
	if err == nil || errors.As(err, &e) {
		t.Errorf("an untrusted server: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), s.Operator[4:]) {
		t.Errorf("the error holds the token: %v", err)
	}

	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	for name, f := range map[string]func() (*client.Client, error){
		"empty CA file": func() (*client.Client, error) { return client.New(s.ts.URL, "", client.WithCAFile(bad)) },
		"missing CA file": func() (*client.Client, error) {
			return client.New(s.ts.URL, "", client.WithCAFile(filepath.Join(dir, "nope")))
		},
		"both": func() (*client.Client, error) {
			return client.New(s.ts.URL, "", client.WithHTTPClient(http.DefaultClient), client.WithCAFile(ca))
		},
		"plain http":    func() (*client.Client, error) { return client.New("http://kms.example.com", "") },
		"ftp":           func() (*client.Client, error) { return client.New("ftp://kms.example.com", "") },
		"no host":       func() (*client.Client, error) { return client.New("https://", "") },
		"user info":     func() (*client.Client, error) { return client.New("https://u:p@kms.example.com", "") },
		"token newline": func() (*client.Client, error) { return client.New(s.ts.URL, "srt_x\r\nX-Evil: 1") },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: New error = nil", name)
		}
	}
	if _, err := client.New("http://127.0.0.1:8443/", ""); err != nil {
		t.Errorf("http on loopback: %v", err)
	}
}

func TestPathArguments(t *testing.T) {
	s := newServer(t, apitest.Options{})
	c := s.client(t, s.Operator)
	for _, name := range []string{"", "a/b", "..", "a?b", "a#b"} {
		if _, err := c.Tenant(ctx, name); err == nil {
			t.Errorf("Tenant(%q) error = nil", name)
		}
	}
	// A name the server refuses is its 404, not a client-side guess.
	_, err := c.Tenant(ctx, "Not A Name")
	apiErr(t, err, 404, api.CodeNotFound)
}

func TestNonAPIError(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		w.Write([]byte("<html>\n<body>Bad Gateway</body></html>"))
	}))
	defer ts.Close()
	c, err := client.New(ts.URL, "srt_secret", client.WithHTTPClient(ts.Client()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Health(ctx)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 502 || e.Code != "" || !strings.Contains(e.Message, "Bad Gateway") || strings.Contains(e.Message, "\n") {
		t.Errorf("error = %#v", err)
	}
}

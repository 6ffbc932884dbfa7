package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.Cleanup()
	os.Exit(code)
}

var ctx = context.Background()

// env is a server on loopback and a way to call it.
type env struct {
	t *testing.T
	*apitest.Server
	url string
	hc  *http.Client
}

func newEnv(t *testing.T, opts apitest.Options) *env {
	t.Helper()
	s := apitest.NewServer(t, opts)
	ts := httptest.NewServer(s.Handler)
	t.Cleanup(ts.Close)
	return &env{t: t, Server: s, url: ts.URL, hc: ts.Client()}
}

// raw is a request body sent as it is.
type raw string

type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request: body nil (none), raw (as is) or a value (JSON).
func (e *env) call(method, path, token string, body any) *response {
	e.t.Helper()
	return e.callCT(method, path, token, "application/json", body)
}

func (e *env) callCT(method, path, token, contentType string, body any) *response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case raw:
		rd = strings.NewReader(string(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: data}
}

// want checks the status and decodes the body into v (if not nil).
func (r *response) want(t *testing.T, status int, v any) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if v != nil {
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
	}
	return r
}

// apiError decodes an error answer strictly.
func (r *response) apiError(t *testing.T) api.Error {
	t.Helper()
	var e api.Error
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Code == "" || e.Message == "" {
		t.Fatalf("status %d: body %s is not an api.Error (%v)", r.status, r.body, err)
	}
	return e
}

// wantError checks an error answer's status and code.
func (r *response) wantError(t *testing.T, status int, code string) api.Error {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	e := r.apiError(t)
	if e.Code != code {
		t.Fatalf("code %q, want %q (%s)", e.Code, code, e.Message)
	}
	return e
}

// snapshot is the state that refused requests must not change.
type snapshot struct {
	Tenants  []tenant.Tenant
	Keys     map[string][]tenant.Key
	Releases []string
	// Tokens are the IDs of the tokens, each with its state.
	Tokens []string
}

func (e *env) snapshot() snapshot {
	e.t.Helper()
	ts, err := e.Store.Tenants(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	s := snapshot{Tenants: ts, Keys: map[string][]tenant.Key{}}
	for _, t := range ts {
		ks, err := e.Store.Keys(ctx, t.ID, "")
		if err != nil {
			e.t.Fatal(err)
		}
		s.Keys[t.Name] = ks
	}
	rs, err := e.Store.Releases(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rs {
		s.Releases = append(s.Releases, r.ID)
	}
	toks, err := e.Store.Tokens(ctx, "")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tok := range toks {
		s.Tokens = append(s.Tokens, tok.ID+" "+string(tok.State(e.Clock.Now())))
	}
	return s
}

func (a snapshot) equal(b snapshot) bool {
	if !slices.EqualFunc(a.Tenants, b.Tenants, func(x, y tenant.Tenant) bool { return x.ID == y.ID && x.Name == y.Name }) ||
		!slices.Equal(a.Releases, b.Releases) || !slices.Equal(a.Tokens, b.Tokens) || len(a.Keys) != len(b.Keys) {
		return false
	}
	for n, ks := range a.Keys {
		if !slices.EqualFunc(ks, b.Keys[n], func(x, y tenant.Key) bool {
			return x.Type == y.Type && x.Version == y.Version && x.State == y.State && bytes.Equal(x.Wrapped, y.Wrapped)
		}) {
			return false
		}
	}
	return true
}

func configLimits(body int64, batch int, timeout time.Duration) config.Limits {
	return config.Limits{MaxBodyBytes: body, MaxBatch: batch, RequestTimeout: config.Duration(timeout)}
}

func sha(secret string) [32]byte { return auth.Hash(secret) }

func b64[T string | []byte](v T) string { return base64.StdEncoding.EncodeToString([]byte(v)) }

package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// TestMalformed: malformed bodies, unknown fields, oversized bodies, wrong
// content types and bad path values are 4xx, never 5xx, and change nothing.
func TestMalformed(t *testing.T) {
	e := newEnv(t, apitest.Options{Limits: configLimits(4096, 10, 0)})
	e.Tenant(t, "acme")
	e.call("POST", "/v1/tenants/acme/keys", e.Operator, api.GenerateKeyRequest{}).want(t, 201, nil)
	app := e.Token(t, api.RoleApp, "acme")
	op := e.Operator
	before := e.snapshot()

	big := `{"items":[{"plaintext":"` + strings.Repeat("A", 4096) + `"}]}`
	cases := []struct {
		name, method, path, token, ct string
		body                          any
		status                        int
		code                          string
	}{
		{"empty body", "POST", "/v1/tenants", op, "application/json", raw(""), 400, api.CodeBadRequest},
		{"null", "POST", "/v1/tenants", op, "application/json", raw("null"), 400, api.CodeBadRequest},
		{"array", "POST", "/v1/tenants", op, "application/json", raw(`[{"name":"x","env":"sandbox"}]`), 400, api.CodeBadRequest},
		{"string", "POST", "/v1/tenants", op, "application/json", raw(`"x"`), 400, api.CodeBadRequest},
		{"truncated", "POST", "/v1/tenants", op, "application/json", raw(`{"name":"x","env":"sand`), 400, api.CodeBadRequest},
		{"syntax", "POST", "/v1/tenants", op, "application/json", raw(`{"name":x}`), 400, api.CodeBadRequest},
		{"unknown field", "POST", "/v1/tenants", op, "application/json", raw(`{"name":"x","env":"sandbox","admin":true}`), 400, api.CodeBadRequest},
		{"two values", "POST", "/v1/tenants", op, "application/json", raw(`{"name":"x","env":"sandbox"}{}`), 400, api.CodeBadRequest},
		{"trailing garbage", "POST", "/v1/tenants", op, "application/json", raw(`{"name":"x","env":"sandbox"} x`), 400, api.CodeBadRequest},
		{"wrong type", "POST", "/v1/tenants", op, "application/json", raw(`{"name":7,"env":"sandbox"}`), 400, api.CodeBadRequest},
		{"no content type", "POST", "/v1/tenants", op, "", raw(`{"name":"x","env":"sandbox"}`), 415, api.CodeUnsupportedMedia},
		{"text", "POST", "/v1/tenants", op, "text/plain", raw(`{"name":"x","env":"sandbox"}`), 415, api.CodeUnsupportedMedia},
		{"latin1", "POST", "/v1/tenants", op, "application/json; charset=latin1", raw(`{"name":"x","env":"sandbox"}`), 415, api.CodeUnsupportedMedia},
		{"form", "POST", "/v1/tenants", op, "application/x-www-form-urlencoded", raw(`name=x`), 415, api.CodeUnsupportedMedia},
		{"oversized", "POST", "/v1/tenants/acme/encrypt", app, "application/json", raw(big), 413, api.CodeTooLarge},
		{"oversized batch", "POST", "/v1/tenants/acme/encrypt", app, "application/json",
			api.EncryptRequest{Items: make([]api.EncryptItem, 11)}, 413, api.CodeTooLarge},
		{"oversized rewrap batch", "POST", "/v1/tenants/acme/rewrap", app, "application/json",
			api.RewrapRequest{Items: make([]api.RewrapItem, 11)}, 413, api.CodeTooLarge},
		{"bad base64", "POST", "/v1/tenants/acme/encrypt", app, "application/json", raw(`{"items":[{"plaintext":"!!!"}]}`), 400, api.CodeBadRequest},
		{"bad type", "POST", "/v1/tenants/acme/encrypt", app, "application/json", raw(`{"type":"secret","items":[{}]}`), 400, api.CodeBadRequest},
		{"bad context", "POST", "/v1/tenants/acme/encrypt", app, "application/json", raw(`{"items":[{"context":{"a":1}}]}`), 400, api.CodeBadRequest},
		{"bad version 0", "POST", "/v1/tenants/acme/keys/data/0/destroy", op, "application/json", api.DestroyKeyRequest{Confirm: "acme/data/0"}, 400, api.CodeBadRequest},
		{"bad version 01", "POST", "/v1/tenants/acme/keys/data/01/destroy", op, "application/json", api.DestroyKeyRequest{Confirm: "acme/data/1"}, 400, api.CodeBadRequest},
		{"bad version x", "POST", "/v1/tenants/acme/keys/data/x/destroy", op, "application/json", api.DestroyKeyRequest{Confirm: "acme/data/x"}, 400, api.CodeBadRequest},
		{"bad version huge", "POST", "/v1/tenants/acme/keys/data/4294967296/destroy", op, "application/json", api.DestroyKeyRequest{Confirm: "acme/data/4294967296"}, 400, api.CodeBadRequest},
		{"bad version negative", "POST", "/v1/tenants/acme/keys/data/-1/destroy", op, "application/json", api.DestroyKeyRequest{Confirm: "acme/data/-1"}, 400, api.CodeBadRequest},
		{"bad key type", "POST", "/v1/tenants/acme/keys/secret/1/destroy", op, "application/json", api.DestroyKeyRequest{Confirm: "acme/secret/1"}, 400, api.CodeBadRequest},
		{"bad key type query", "GET", "/v1/tenants/acme/keys?type=secret", op, "", nil, 400, api.CodeBadRequest},
		{"bad generate type", "POST", "/v1/tenants/acme/keys", op, "application/json", api.GenerateKeyRequest{Type: "DATA"}, 400, api.CodeBadRequest},
		{"bad tenant name", "GET", "/v1/tenants/ACME", op, "", nil, 404, api.CodeNotFound},
		{"tenant id instead of name", "GET", "/v1/tenants/" + before.Tenants[0].ID, op, "", nil, 404, api.CodeNotFound},
		{"bad env", "POST", "/v1/tenants", op, "application/json", api.CreateTenantRequest{Name: "x", Env: "staging"}, 400, api.CodeBadRequest},
		{"version out of range", "POST", "/v1/tenants/acme/dek", app, "application/json", raw(`{"kem":32,"public_key":"AA==","version":1e99}`), 400, api.CodeBadRequest},
		{"kem out of range", "POST", "/v1/tenants/acme/dek", app, "application/json", raw(`{"kem":65536,"public_key":"AA=="}`), 400, api.CodeBadRequest},
		{"no public key", "POST", "/v1/tenants/acme/dek", app, "application/json", api.DEKRequest{KEM: 0x20}, 400, api.CodeBadRequest},
		{"batch without public key", "POST", "/v1/tenants/acme/deks", app, "application/json", api.DEKsRequest{KEM: 0x20, Keys: []api.DEKKey{{}}}, 400, api.CodeBadRequest},
		{"batch without keys", "POST", "/v1/tenants/acme/deks", app, "application/json", raw(`{"kem":32,"public_key":"AA=="}`), 400, api.CodeBadRequest},
		{"batch version out of range", "POST", "/v1/tenants/acme/deks", app, "application/json", raw(`{"kem":32,"public_key":"AA==","keys":[{"version":-1}]}`), 400, api.CodeBadRequest},
		{"batch bad type", "POST", "/v1/tenants/acme/deks", app, "application/json", raw(`{"kem":32,"public_key":"AA==","keys":[{"type":"secret"}]}`), 400, api.CodeBadRequest},
		{"bundle not base64", "POST", "/v1/releases", op, "application/json", raw(`{"bundle":"-----BEGIN"}`), 400, api.CodeBadRequest},
		{"auth scheme", "GET", "/v1/tenants", "", "", nil, 401, api.CodeUnauthenticated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.callCT(c.method, c.path, c.token, c.ct, c.body)
			if r.status >= 500 {
				t.Fatalf("5xx: %d %s", r.status, r.body)
			}
			r.wantError(t, c.status, c.code)
			if strings.Contains(string(r.body), strings.Repeat("A", 64)) || strings.Contains(string(r.body), "1e99") {
				t.Errorf("the error echoes the body: %s", r.body)
			}
		})
	}
	// Per-item problems are in the item.
	var res api.EncryptResponse
	ctxBig := map[string]string{}
	for i := range 65 {
		ctxBig[strings.Repeat("k", i+1)] = ""
	}
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: []api.EncryptItem{{Context: ctxBig}, {}}}).want(t, 200, &res)
	if res.Items[0].Error == nil || res.Items[0].Error.Code != api.CodeBadRequest || res.Items[1].Error != nil {
		t.Errorf("encrypt = %+v", res)
	}
	if after := e.snapshot(); !before.equal(after) {
		t.Errorf("malformed requests changed the store")
	}
}

// logBuffer collects log output safely.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAccessLog: one structured line per request, with route, status, token
// id and tenant, and never a token secret or a body.
func TestAccessLog(t *testing.T) {
	var buf logBuffer
	e := newEnv(t, apitest.Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	tn := e.Tenant(t, "acme")
	e.call("POST", "/v1/tenants/acme/keys", e.Operator, api.GenerateKeyRequest{}).want(t, 201, nil)
	app := e.Token(t, api.RoleApp, "acme")
	appTok, found, err := e.Store.TokenByHash(ctx, sha(app))
	if err != nil || !found {
		t.Fatal(err, found)
	}
	secretText := "SECRET-PLAINTEXT-" + strings.Repeat("z", 20)
	var res api.EncryptResponse
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: []api.EncryptItem{
		{Plaintext: []byte(secretText), Context: map[string]string{"ctx-secret": "CTX-VALUE"}}}}).want(t, 200, &res)
	e.call("POST", "/v1/tenants/acme/decrypt", app, api.DecryptRequest{Items: []api.DecryptItem{
		{Ciphertext: res.Items[0].Ciphertext, Context: map[string]string{"ctx-secret": "CTX-VALUE"}}}}).want(t, 200, nil)
	e.call("POST", "/v1/tenants/acme/decrypt", app, raw(`{"items":[{"ciphertext":"`+secretText+`"}]}`)).wantError(t, 400, api.CodeBadRequest)
	e.call("GET", "/v1/tenants", "srt_"+strings.Repeat("Q", 43), nil).wantError(t, 401, api.CodeUnauthenticated)

	out := buf.String()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 5 {
		t.Fatalf("%d access log lines, want 5:\n%s", len(lines), out)
	}
	enc := lines[1]
	if enc["route"] != "POST /v1/tenants/{tenant}/encrypt" || enc["status"] != float64(200) ||
		enc["token_id"] != appTok.ID || enc["tenant"] != tn.ID || enc["duration"] == nil || enc["request_id"] == "" {
		t.Errorf("access log line = %v", enc)
	}
	if lines[3]["code"] != api.CodeBadRequest || lines[4]["code"] != api.CodeUnauthenticated || lines[4]["token_id"] != "" {
		t.Errorf("error lines = %v, %v", lines[3], lines[4])
	}
	for _, bad := range []string{app, app[4:20], e.Operator[4:20], "SECRET-PLAINTEXT", "CTX-VALUE", "ctx-secret",
		strings.Repeat("Q", 43), b64(secretText)[:16], b64(res.Items[0].Ciphertext)[:16]} {
		if strings.Contains(out, bad) {
			t.Errorf("the log holds %q:\n%s", bad, out)
		}
	}
}

// blocking is a data plane whose Encrypt waits for its context.
type blocking struct {
	httpapi.DataPlane
}

func (b blocking) Encrypt(ctx context.Context, _ *audit.Entry, tenantID, typ string, pt []byte, c map[string]string) ([]byte, tenant.Key, error) {
	<-ctx.Done()
	return nil, tenant.Key{}, ctx.Err()
}

// keysAPI names the embedded lifecycle (a field named Keys would hide its
// method Keys).
type keysAPI = httpapi.Keys

// failing is a key lifecycle whose Generate fails as a server fault.
type failing struct {
	keysAPI
}

func (failing) Generate(context.Context, *audit.Entry, string, string) (tenant.Key, error) {
	return tenant.Key{}, errors.New("hsm: device unplugged (slot 3)")
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, apitest.Options{Limits: configLimits(0, 0, 200*time.Millisecond),
		Wrap: func(d *httpapi.Deps) { d.Data = blocking{d.Data} }})
	e.Tenant(t, "acme")
	app := e.Token(t, api.RoleApp, "acme")
	start := time.Now()
	r := e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: []api.EncryptItem{{}}})
	ae := r.wantError(t, 503, api.CodeTimeout)
	if id := r.header.Get("X-Request-Id"); id == "" || ae.Message != "the request ran out of time (request "+id+")" {
		t.Errorf("timeout message %q, request id %q", ae.Message, id)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout took %v", d)
	}
}

func TestServerFault(t *testing.T) {
	var buf logBuffer
	e := newEnv(t, apitest.Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil)),
		Wrap: func(d *httpapi.Deps) { d.Keys = failing{d.Keys} }})
	e.Tenant(t, "acme")
	r := e.call("POST", "/v1/tenants/acme/keys", e.Operator, api.GenerateKeyRequest{})
	ae := r.wantError(t, 500, api.CodeInternal)
	if strings.Contains(ae.Message, "unplugged") || !strings.Contains(ae.Message, r.header.Get("X-Request-Id")) {
		t.Errorf("500 message = %q", ae.Message)
	}
	if !strings.Contains(buf.String(), "unplugged") {
		t.Errorf("the log does not hold the fault:\n%s", buf.String())
	}
}

// TestClientGone: a request whose client goes away while the handler runs
// is logged as 499 canceled at level INFO: not a server fault, and no
// answer is written for it.
func TestClientGone(t *testing.T) {
	var buf logBuffer
	e := newEnv(t, apitest.Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil)),
		Wrap: func(d *httpapi.Deps) { d.Data = blocking{d.Data} }})
	e.Tenant(t, "acme")
	app := e.Token(t, api.RoleApp, "acme")
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	body, _ := json.Marshal(api.EncryptRequest{Items: []api.EncryptItem{{}}})
	req, err := http.NewRequestWithContext(cctx, "POST", e.url+"/v1/tenants/acme/encrypt", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+app)
	if res, err := e.hc.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the request was answered: %s", res.Status)
	}
	var line map[string]any
	for deadline := time.Now().Add(10 * time.Second); line == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for l := range strings.Lines(buf.String()) {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["route"] == "POST /v1/tenants/{tenant}/encrypt" {
				line = m
			}
		}
	}
	if line == nil {
		t.Fatalf("no access log line:\n%s", buf.String())
	}
	if line["status"] != float64(499) || line["code"] != "canceled" || line["level"] != "INFO" {
		t.Errorf("access log = %v, want status 499, code canceled, level INFO", line)
	}
	if strings.Contains(buf.String(), "request failed") {
		t.Errorf("a client gone away was logged as a fault:\n%s", buf.String())
	}
}

// canceling is a data plane whose Encrypt fails with a context.Canceled
// that is not the request's (as a shared DEK load whose own caller went
// away), once the request's deadline has passed.
type canceling struct {
	httpapi.DataPlane
}

func (canceling) Encrypt(ctx context.Context, _ *audit.Entry, tenantID, typ string, pt []byte, c map[string]string) ([]byte, tenant.Key, error) {
	<-ctx.Done()
	return nil, tenant.Key{}, fmt.Errorf("a shared load: %w", context.Canceled)
}

// TestCanceledNotTheClients: a context.Canceled that is not the client's
// going away is answered (here a 500), never left as an empty 200.
func TestCanceledNotTheClients(t *testing.T) {
	e := newEnv(t, apitest.Options{Limits: configLimits(0, 0, 200*time.Millisecond),
		Wrap: func(d *httpapi.Deps) { d.Data = canceling{d.Data} }})
	e.Tenant(t, "acme")
	app := e.Token(t, api.RoleApp, "acme")
	r := e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: []api.EncryptItem{{}}})
	r.wantError(t, 500, api.CodeInternal)
}

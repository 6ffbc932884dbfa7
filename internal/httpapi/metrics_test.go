package httpapi_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// scrape reads GET /v1/metrics as token, which must be allowed, and parses
// it.
func (e *env) scrape(t *testing.T, token string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	r := e.call("GET", "/v1/metrics", token, nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /v1/metrics: %d %q %.300s", r.status, r.header.Get("Content-Type"), r.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v\n%s", err, r.body)
	}
	return fams, r.body
}

// sample is the value of the series of name whose labels include labels
// (a histogram's count); -1 if there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestMetrics: after a workload (a key, encryptions, decryptions, a DEK
// delivery, a rotation refused by the rate limit, an unknown route), the
// scrape shows each counted by its route pattern and outcome, the key
// cache's hits and misses, the refusal, and readiness; and it names no
// tenant, token or path.
func TestMetrics(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	tn := e.Tenant(t, "acme-metrics")
	op := e.Operator
	e.call("POST", "/v1/tenants/acme-metrics/keys", op, api.GenerateKeyRequest{Type: "data"}).want(t, 201, nil)
	app := e.Token(t, api.RoleApp, "acme-metrics")
	var enc api.EncryptResponse
	e.call("POST", "/v1/tenants/acme-metrics/encrypt", app, api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: []byte("hello")}}}).want(t, 200, &enc)
	for range 3 {
		e.call("POST", "/v1/tenants/acme-metrics/decrypt", app, api.DecryptRequest{Items: []api.DecryptItem{{Ciphertext: enc.Items[0].Ciphertext}}}).want(t, 200, nil)
	}
	priv, err := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e.call("POST", "/v1/tenants/acme-metrics/dek", app, api.DEKRequest{KEM: envelope.KEMX25519, PublicKey: priv.PublicKey().Bytes()}).want(t, 200, nil)
	// A production tenant's data keys rotate once a day at most.
	e.call("POST", "/v1/tenants/acme-metrics/keys", op, api.GenerateKeyRequest{Type: "data"}).wantError(t, 429, api.CodeRateLimited)
	e.call("GET", "/v1/no-such-route/acme-metrics", op, nil).wantError(t, 404, api.CodeNotFound)

	fams, body := e.scrape(t, op)
	req := "strongroom_http_requests_total"
	for _, c := range []struct {
		route, class, code string
		want               float64
	}{
		{"POST /v1/tenants/{tenant}/keys", "2xx", "ok", 1},
		{"POST /v1/tenants/{tenant}/keys", "4xx", "rate_limited", 1},
		{"POST /v1/tenants/{tenant}/encrypt", "2xx", "ok", 1},
		{"POST /v1/tenants/{tenant}/decrypt", "2xx", "ok", 3},
		{"POST /v1/tenants/{tenant}/dek", "2xx", "ok", 1},
		{"unmatched", "4xx", "not_found", 1},
	} {
		if got := sample(fams, req, map[string]string{"route": c.route, "class": c.class, "code": c.code}); got != c.want {
			t.Errorf("%s{route=%q,class=%q,code=%q} = %v, want %v", req, c.route, c.class, c.code, got, c.want)
		}
	}
	if got := sample(fams, "strongroom_http_request_duration_seconds", map[string]string{"route": "POST /v1/tenants/{tenant}/decrypt", "class": "2xx"}); got != 3 {
		t.Errorf("decrypt's latency histogram has %v observations, want 3", got)
	}
	if got := sample(fams, "strongroom_rotation_refusals_total", map[string]string{"route": "POST /v1/tenants/{tenant}/keys", "reason": "rate_limited"}); got != 1 {
		t.Errorf("rotation refusals = %v, want 1", got)
	}
	// The DEK of the key: a miss, then hits.
	if h, m := sample(fams, "strongroom_keycache_hits_total", nil), sample(fams, "strongroom_keycache_misses_total", nil); h < 3 || m < 1 {
		t.Errorf("key cache hits %v, misses %v: want at least 3 and 1", h, m)
	}
	if got := sample(fams, "strongroom_keycache_entries", nil); got < 1 {
		t.Errorf("key cache entries = %v", got)
	}
	for name, want := range map[string]float64{"strongroom_ready": 1, "strongroom_releases_loaded": 1, "strongroom_release_problems": 0} {
		if got := sample(fams, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// Nothing of the tenant, its tokens or its paths.
	for what, s := range map[string]string{"tenant name": tn.Name, "tenant id": tn.ID, "app token": app, "operator token": op,
		"path": "/v1/no-such-route"} {
		if bytes.Contains(body, []byte(s)) {
			t.Errorf("the scrape holds the %s", what)
		}
	}
}

// TestMetricsAccess: only operators and auditors scrape; no token, a
// tenant-admin's and an app's are refused, and nothing is served to them.
func TestMetricsAccess(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "acme")
	e.scrape(t, e.Operator)
	e.scrape(t, e.Token(t, api.RoleAuditor, ""))
	for who, c := range map[string]struct {
		token  string
		status int
		code   string
	}{
		"no token":       {"", 401, api.CodeUnauthenticated},
		"a bad token":    {"srt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 401, api.CodeUnauthenticated},
		"a tenant-admin": {e.Token(t, api.RoleTenantAdmin, "acme"), 403, api.CodeForbidden},
		"an app":         {e.Token(t, api.RoleApp, "acme"), 403, api.CodeForbidden},
	} {
		r := e.call("GET", "/v1/metrics", c.token, nil)
		r.wantError(t, c.status, c.code)
		if bytes.Contains(r.body, []byte("strongroom_")) {
			t.Errorf("%s: the refusal holds metrics: %s", who, r.body)
		}
	}
}

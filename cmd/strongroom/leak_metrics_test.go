package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/strongroom-kms/strongroom/client"
)

// isAPIError reports whether err is the API's answer with code.
func isAPIError(err error, code string) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code == code
}

// scrapeMetrics reads GET /v1/metrics as token (docs/metrics.md), and adds
// a control: the scrape names routes by their pattern, which the search
// must find there.
func (r *leakRun) scrapeMetrics(token string) []byte {
	r.t.Helper()
	ca, err := os.ReadFile(r.caFile)
	if err != nil {
		r.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		r.t.Fatalf("%s holds no certificate", r.caFile)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequestWithContext(r.ctx, "GET", r.base+"/v1/metrics", nil)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		r.t.Fatalf("GET /v1/metrics: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		r.t.Fatalf("GET /v1/metrics: %d %v %.200s", res.StatusCode, err, body)
	}
	if len(r.controls) == 0 || r.controls[len(r.controls)-1].name != "a route pattern" {
		r.controls = append(r.controls, leakControl{leakSecret{name: "a route pattern", raw: []byte("POST /v1/tenants/{tenant}/encrypt")},
			[]string{"the metrics scrape (as operator)", "the metrics scrape (as auditor)"}})
	}
	return body
}

// checkScrape wants the scrape of the leak test's workload to hold
// something of every part the metrics cover, with the values the workload
// implies: a scrape with less would make its search an empty one, and
// would mean that the server does not wire its metrics.
func checkScrape(t *testing.T, body []byte) {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
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
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			default:
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"strongroom_http_requests_total", map[string]string{"route": "POST /v1/tenants/{tenant}/encrypt", "class": "2xx", "code": "ok"}, 3},
		{"strongroom_http_requests_total", map[string]string{"route": "POST /v1/tenants/{tenant}/keys", "class": "4xx", "code": "rate_limited"}, 1},
		{"strongroom_http_request_duration_seconds", map[string]string{"route": "POST /v1/tenants/{tenant}/dek", "class": "2xx"}, 4},
		{"strongroom_rotation_refusals_total", map[string]string{"route": "POST /v1/tenants/{tenant}/keys", "reason": "rate_limited"}, 1},
		{"strongroom_keycache_hits_total", nil, 1},
		{"strongroom_keycache_misses_total", nil, 1},
		{"strongroom_keycache_evictions_total", map[string]string{"reason": "evicted"}, 1}, // the destroyed key's DEK
		{"strongroom_hsm_operation_duration_seconds", map[string]string{"op": "find_rsa", "outcome": "ok"}, 1},
		{"strongroom_hsm_operation_duration_seconds", map[string]string{"op": "random", "outcome": "ok"}, 1},
		{"strongroom_store_operation_duration_seconds", map[string]string{"op": "TokenByHash", "outcome": "ok"}, 10},
		{"strongroom_store_operation_duration_seconds", map[string]string{"op": "Rotate", "outcome": "ok"}, 3},
		{"strongroom_audit_append_duration_seconds", map[string]string{"outcome": "ok"}, 1},
		{"strongroom_audit_log_entries", nil, 10},
		{"strongroom_audit_checkpoint_rounds_total", map[string]string{"outcome": "ok"}, 1},
		{"strongroom_ready", nil, 1},
		{"strongroom_releases_loaded", nil, 1},
	} {
		if v, ok := value(c.name, c.labels); !ok || v < c.min {
			t.Errorf("the scrape's %s%v = %v (present: %v), want at least %v", c.name, c.labels, v, ok, c.min)
		}
	}
	if strings.Contains(string(body), "/v1/tenants/acme") {
		t.Errorf("the scrape names a request's path, not its route's pattern")
	}
}

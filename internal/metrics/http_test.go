package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRoute(t *testing.T) {
	m := New()
	r := m.Route("POST /v1/tenants/{tenant}/keys")
	r.Observe(201, "", 3*time.Millisecond)
	r.Observe(201, "", time.Millisecond)
	r.Observe(429, "rate_limited", time.Millisecond)
	r.Observe(500, "internal", time.Millisecond)
	r.Observe(404, "", time.Millisecond)
	r.Observe(400, "Not A Code!", time.Millisecond)
	r.Observe(499, "canceled", time.Millisecond)
	r.Observe(0, "", time.Millisecond)
	const route = "POST /v1/tenants/{tenant}/keys"
	req := "strongroom_http_requests_total"
	want(t, m, req, map[string]string{"route": route, "class": "2xx", "code": "ok"}, 2)
	want(t, m, req, map[string]string{"route": route, "class": "4xx", "code": "rate_limited"}, 1)
	want(t, m, req, map[string]string{"route": route, "class": "5xx", "code": "internal"}, 1)
	want(t, m, req, map[string]string{"route": route, "class": "4xx", "code": "none"}, 1)
	want(t, m, req, map[string]string{"route": route, "class": "4xx", "code": "other"}, 1)
	want(t, m, req, map[string]string{"route": route, "class": "4xx", "code": "canceled"}, 1)
	want(t, m, req, map[string]string{"route": route, "class": "other", "code": "ok"}, 1)
	dur := "strongroom_http_request_duration_seconds"
	want(t, m, dur, map[string]string{"route": route, "class": "2xx"}, 2)
	want(t, m, dur, map[string]string{"route": route, "class": "4xx"}, 4)
	want(t, m, dur, map[string]string{"route": route, "class": "5xx"}, 1)

	// A nil Metrics and its nil Route do nothing.
	var none *Metrics
	none.Route("x").Observe(200, "", time.Second)
	none.RotationRefused("x", "rate_limited")
}

// TestRouteBounded: however many distinct codes a route answers, its
// series stay bounded.
func TestRouteBounded(t *testing.T) {
	m := New()
	r := m.Route("GET /v1/x")
	for i := range 3 * maxOutcomes {
		r.Observe(400, fmt.Sprintf("code_%d", i), time.Millisecond)
	}
	fams, _ := m.reg.Gather()
	for _, f := range fams {
		if f.GetName() == "strongroom_http_requests_total" && len(f.GetMetric()) > maxOutcomes+1 {
			t.Errorf("%d series for one route, want at most %d", len(f.GetMetric()), maxOutcomes+1)
		}
	}
	if v, _ := value(t, m, "strongroom_http_requests_total", map[string]string{"route": "GET /v1/x", "class": "4xx", "code": "other"}); v != 2*maxOutcomes {
		t.Errorf("other = %v, want %d", v, 2*maxOutcomes)
	}
}

func TestCleanCode(t *testing.T) {
	for _, c := range []struct {
		code   string
		status int
		want   string
	}{
		{"", 200, "ok"}, {"", 304, "ok"}, {"", 404, "none"}, {"not_found", 404, "not_found"}, {"key_destroyed", 200, "key_destroyed"},
		{"a1", 400, "a1"}, {"1a", 400, "other"}, {"Bad", 400, "other"}, {"a-b", 400, "other"}, {"tenant acme", 400, "other"},
		{strings.Repeat("a", 41), 400, "other"}, {strings.Repeat("a", 40), 400, strings.Repeat("a", 40)},
	} {
		if got := cleanCode(c.code, c.status); got != c.want {
			t.Errorf("cleanCode(%q, %d) = %q, want %q", c.code, c.status, got, c.want)
		}
	}
}

// TestHandler: the scrape is Prometheus's text format.
func TestHandler(t *testing.T) {
	m, _ := full(t)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	for _, s := range []string{"# TYPE strongroom_http_requests_total counter", `strongroom_ready 1`, "strongroom_keycache_entries 3", "go_goroutines"} {
		if !strings.Contains(body, s) {
			t.Errorf("the scrape lacks %q", s)
		}
	}
}

// TestObserveAllocs: observing a request, or a store or HSM operation, of
// an outcome seen before allocates nothing (the API does it on every
// request, the store on every call).
func TestObserveAllocs(t *testing.T) {
	m := New()
	r := m.Route("POST /v1/tenants/{tenant}/encrypt")
	r.Observe(200, "", time.Millisecond)
	r.Observe(429, "rate_limited", time.Millisecond)
	m.store.get("TokenByHash").observe(iOK, time.Now())
	m.hsm.get("aes_open").observe(iRefused, time.Now())
	if n := testing.AllocsPerRun(1000, func() {
		r.Observe(200, "", time.Millisecond)
		r.Observe(429, "rate_limited", time.Millisecond)
		m.store.get("TokenByHash").observe(iOK, time.Now())
		m.hsm.get("aes_open").observe(iRefused, time.Now())
	}); n != 0 {
		t.Errorf("observing allocates %v times", n)
	}
}

func BenchmarkRouteObserve(b *testing.B) {
	r := New().Route("POST /v1/tenants/{tenant}/encrypt")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe(200, "", time.Millisecond)
		}
	})
}

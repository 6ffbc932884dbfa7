package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Unmatched is the route label of requests that matched no route (404,
// 405): the path asked for is never a label.
const Unmatched = "unmatched"

// maxOutcomes bounds the series of one route: codes past it count as
// "other" (the API's codes are a fixed set well below it).
const maxOutcomes = 64

// Route is the request metrics of one route of the API: its count and
// latency by outcome. The API makes one per route when it starts, and
// keeps it, so that observing a request costs a map read under a read
// lock; series are made on a route's first request with each outcome.
type Route struct {
	m     *Metrics
	route string
	mu    sync.RWMutex
	byKey map[outcomeKey]routeSeries
}

type outcomeKey struct {
	class int // the status / 100, 1 to 5; 0 for anything else
	code  string
}

type routeSeries struct {
	count prometheus.Counter
	dur   prometheus.Observer
}

var classes = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Route returns the metrics of route, a route pattern such as
// "POST /v1/tenants/{tenant}/encrypt" (or Unmatched). It is nil-safe: a nil
// Metrics returns a nil Route, whose Observe does nothing.
func (m *Metrics) Route(route string) *Route {
	if m == nil {
		return nil
	}
	return &Route{m: m, route: route, byKey: map[outcomeKey]routeSeries{}}
}

// Observe counts one answered request: its status, the API error code of
// its answer ("" for a success) and how long it took.
func (r *Route) Observe(status int, code string, d time.Duration) {
	if r == nil {
		return
	}
	k := outcomeKey{class: status / 100, code: cleanCode(code, status)}
	if k.class < 1 || k.class > 5 {
		k.class = 0
	}
	r.mu.RLock()
	s, ok := r.byKey[k]
	r.mu.RUnlock()
	if !ok {
		s = r.series(k)
	}
	s.count.Inc()
	s.dur.Observe(d.Seconds())
}

func (r *Route) series(k outcomeKey) routeSeries {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.byKey[k]; ok {
		return s
	}
	if len(r.byKey) >= maxOutcomes {
		k.code = "other"
		if s, ok := r.byKey[k]; ok {
			return s
		}
	}
	class := classes[k.class]
	s := routeSeries{
		count: r.m.requests.WithLabelValues(r.route, class, k.code),
		dur:   r.m.duration.WithLabelValues(r.route, class),
	}
	r.byKey[k] = s
	return s
}

// cleanCode is the code label of an answer: "ok" for a success without
// one, "none" for an error without one, "other" for anything that is not
// shaped like an API error code (lower-case letters, digits and
// underscores, at most 40).
func cleanCode(code string, status int) string {
	if code == "" {
		if status < 400 {
			return "ok"
		}
		return "none"
	}
	if len(code) > 40 {
		return "other"
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return "other"
		}
	}
	return code
}

// Package metrics is a regional node's Prometheus metrics: what it counts
// and times, and how it is scraped (docs/metrics.md).
//
// A Metrics owns its own prometheus.Registry, never the global default one:
// nothing another package registers by import side effect reaches the
// scrape, and two nodes in one process (tests) keep separate counts. Every
// metric is declared once, in the table of Defs, with its type, help and
// labels; docs/metrics.md's table is checked against it, and the Grafana
// dashboard's queries against the names it exports.
//
// # What is measured, and where
//
//   - requests, per route pattern and outcome: Route, called by the API's
//     request wrapper (internal/httpapi) with the status and error code it
//     logs anyway;
//   - HSM operations: HSM wraps an opened hsm.HSM and its keys and times
//     every operation;
//   - store operations: Store wraps a *store.Store and times every method
//     that takes a context (TestStoreCoversEveryMethod keeps it complete);
//     its AppendAudit is also the audit append latency;
//   - rotation refusals: RotationRefused, called by the API when a new key
//     is refused by the rotation rate limit or the key count;
//   - the key cache, readiness and the audit checkpoint lag are read when
//     Prometheus scrapes (WatchCache, WatchReadiness, WatchAudit), so they
//     cost nothing between scrapes.
//
// # Exposure
//
// The package does no access control: Handler is served by the API as the
// route GET /v1/metrics (internal/httpapi), for operator and auditor
// tokens, on the API's own listener. A listener of its own would be a
// second port and TLS configuration, and a path to the node that the route
// table, where every access decision is made and every refusal audited,
// does not cover; Prometheus sends a bearer token from a file as easily.
//
// # What is never exported
//
// Labels carry only values from fixed, small sets: route patterns (never a
// path as requested), status classes, the API's error codes, operation
// names and outcomes. No label or value is ever a tenant's id or name, a
// token or its id, a key's id, label or version, an address, a release id,
// or any text of an error (which may name a database host); and no metric
// holds key material, which the package never sees. cmd/strongroom's leak
// test scrapes the metrics after a full workload and searches them for
// every secret, tenant and token it made.
package metrics

import (
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The metric types, as docs/metrics.md names them.
const (
	Counter   = "counter"
	Gauge     = "gauge"
	Histogram = "histogram"
)

// Def declares one metric.
type Def struct {
	Name   string
	Type   string // Counter, Gauge or Histogram
	Help   string
	Labels []string
}

// Outcome label values of HSM and store operations (classify).
const (
	OutcomeOK       = "ok"       // it succeeded
	OutcomeRefused  = "refused"  // an expected refusal: not found, exists, a limit, a decryption that fails
	OutcomeCanceled = "canceled" // the caller's context ended
	OutcomeError    = "error"    // anything else: a fault of the HSM or the database
)

// defs are every metric the package exports besides the Go runtime's and
// the process's (go_*, process_*): the one list that docs/metrics.md and
// the dashboard are checked against.
var defs = []Def{
	{"strongroom_http_requests_total", Counter,
		"API requests answered, by route pattern, status class and error code (ok for a success)", []string{"route", "class", "code"}},
	{"strongroom_http_request_duration_seconds", Histogram,
		"Time to answer an API request, by route pattern and status class", []string{"route", "class"}},

	{"strongroom_keycache_hits_total", Counter, "Key cache lookups answered from the cache", nil},
	{"strongroom_keycache_misses_total", Counter, "Key cache lookups not answered from the cache", nil},
	{"strongroom_keycache_loads_total", Counter, "Keys loaded (derived or fetched) on a cache miss; concurrent misses for one key share a load", nil},
	{"strongroom_keycache_load_errors_total", Counter, "Loads that failed, or whose key was evicted while loading", nil},
	{"strongroom_keycache_evictions_total", Counter,
		"Entries dropped, by reason: capacity (least recently used), expired (TTL), evicted (a destroyed or revoked key), corrupt", []string{"reason"}},
	{"strongroom_keycache_entries", Gauge, "Entries in the key cache now (sealed keys)", nil},

	{"strongroom_rowcache_hits_total", Counter, "Token, tenant and key row lookups answered from the node's row cache", nil},
	{"strongroom_rowcache_misses_total", Counter, "Row lookups read from the store: not kept, or kept longer than the row cache's max age", nil},
	{"strongroom_rowcache_invalidations_total", Counter, "Changes heard of (this node's writes, other nodes' notifications), each dropping the copies it made stale", nil},
	{"strongroom_rowcache_entries", Gauge, "Rows in the row cache now, by kind: token, tenant (by name and by ID), key", []string{"kind"}},

	{"strongroom_hsm_operation_duration_seconds", Histogram, "Time of an HSM operation, by operation and outcome", []string{"op", "outcome"}},
	{"strongroom_store_operation_duration_seconds", Histogram, "Time of a store operation, by operation (a store method) and outcome", []string{"op", "outcome"}},

	{"strongroom_rotation_refusals_total", Counter,
		"New keys refused by the rotation policy, by route pattern and reason (rate_limited, too_many_keys)", []string{"route", "reason"}},

	{"strongroom_audit_append_duration_seconds", Histogram,
		"Time to append audit entries in a transaction of their own (refusals, deliveries, aggregates), by outcome", []string{"outcome"}},
	{"strongroom_audit_log_entries", Gauge, "Entries in the region's audit log", nil},
	{"strongroom_audit_checkpoint_lag_entries", Gauge, "Audit entries not yet covered by this node's last signed checkpoint", nil},
	{"strongroom_audit_checkpoint_age_seconds", Gauge, "Time since this node's last signed checkpoint (absent until it has one)", nil},
	{"strongroom_audit_checkpoint_rounds_total", Counter,
		"Checkpoint rounds, by outcome: ok (signed, or nothing to sign), refused (the log is not the one this node signed), error", []string{"outcome"}},

	{"strongroom_ready", Gauge, "1 when the node is ready (as GET /v1/ready), else 0", nil},
	{"strongroom_releases_loaded", Gauge, "Releases loaded in the node's ring", nil},
	{"strongroom_release_problems", Gauge, "Readiness problems: bundles that failed to validate, no release installed, the store not answering", nil},
}

// Defs returns the declarations of every metric of the package.
func Defs() []Def {
	out := slices.Clone(defs)
	for i := range out {
		out[i].Labels = slices.Clone(out[i].Labels)
	}
	return out
}

// def returns the declaration of name; an unknown name is a programming
// error.
func def(name, typ string) Def {
	for _, d := range defs {
		if d.Name == name {
			if d.Type != typ {
				panic("metrics: " + name + " is declared a " + d.Type + ", used as a " + typ)
			}
			return d
		}
	}
	panic("metrics: " + name + " is not declared in defs")
}

// desc is the prometheus.Desc of a declared metric.
func desc(name, typ string) *prometheus.Desc {
	d := def(name, typ)
	return prometheus.NewDesc(d.Name, d.Help, d.Labels, nil)
}

func counterVec(name string) *prometheus.CounterVec {
	d := def(name, Counter)
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.Name, Help: d.Help}, d.Labels)
}

func histogramVec(name string, buckets []float64) *prometheus.HistogramVec {
	d := def(name, Histogram)
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: d.Name, Help: d.Help, Buckets: buckets}, d.Labels)
}

// Buckets, in seconds: API requests from a millisecond to the longest
// request timeout; HSM and store operations from 100 µs (a soft HSM, a
// local SQLite read) to tens of seconds (RSA-4096 key generation on a
// network HSM).
var (
	requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	opBuckets      = prometheus.ExponentialBuckets(.0001, 3, 12) // 100 µs … 17.7 s
)

// Metrics is one node's metrics and their registry.
type Metrics struct {
	reg      *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	hsm      *ops
	store    *ops
	audit    *op // AppendAudit, by outcome
	rotation *prometheus.CounterVec
}

// New returns a node's metrics over a registry of their own, with the Go
// runtime's and the process's collectors.
func New() *Metrics {
	audit := histogramVec("strongroom_audit_append_duration_seconds", opBuckets)
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		requests: counterVec("strongroom_http_requests_total"),
		duration: histogramVec("strongroom_http_request_duration_seconds", requestBuckets),
		hsm:      newOps(histogramVec("strongroom_hsm_operation_duration_seconds", opBuckets), hsmOps),
		store:    newOps(histogramVec("strongroom_store_operation_duration_seconds", opBuckets), storeOps()),
		audit:    newOp(audit),
		rotation: counterVec("strongroom_rotation_refusals_total"),
	}
	m.reg.MustRegister(m.requests, m.duration, m.hsm.vec, m.store.vec, audit, m.rotation,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Errors of a collector are never written to the scrape (they could
	// name a database host); ContinueOnError serves what gathered.
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
	return m
}

// Handler serves the scrape: every metric in the text format (or
// compressed, or another format Prometheus negotiates). It does no access
// control: the API serves it behind its route table (GET /v1/metrics, for
// operators and auditors).
func (m *Metrics) Handler() http.Handler { return m.handler }

// Gatherer is the registry, for tests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// RotationRefused counts a new key refused on route (a route pattern) for
// reason: "rate_limited" or "too_many_keys".
func (m *Metrics) RotationRefused(route, reason string) {
	if m == nil {
		return
	}
	m.rotation.WithLabelValues(route, reason).Inc()
}

package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/rowcache"
)

// scrapeTimeout bounds what a scrape reads from the store.
const scrapeTimeout = 5 * time.Second

// scrapeCollector is metrics read when Prometheus scrapes.
type scrapeCollector struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// WatchCache exports the key cache's counters (keycache.Cache.Stats), read
// at each scrape. Call it once.
func (m *Metrics) WatchCache(stats func() keycache.Stats) {
	if m == nil {
		return
	}
	hits := desc("strongroom_keycache_hits_total", Counter)
	misses := desc("strongroom_keycache_misses_total", Counter)
	loads := desc("strongroom_keycache_loads_total", Counter)
	loadErrors := desc("strongroom_keycache_load_errors_total", Counter)
	evictions := desc("strongroom_keycache_evictions_total", Counter)
	entries := desc("strongroom_keycache_entries", Gauge)
	m.reg.MustRegister(&scrapeCollector{
		descs: []*prometheus.Desc{hits, misses, loads, loadErrors, evictions, entries},
		collect: func(ch chan<- prometheus.Metric) {
			s := stats()
			counter := func(d *prometheus.Desc, v uint64, labels ...string) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
			}
			counter(hits, s.Hits)
			counter(misses, s.Misses)
			counter(loads, s.Loads)
			counter(loadErrors, s.LoadErrors)
			counter(evictions, s.Evictions, "capacity")
			counter(evictions, s.Expirations, "expired")
			counter(evictions, s.Removals, "evicted")
			counter(evictions, s.Corrupt, "corrupt")
			ch <- prometheus.MustNewConstMetric(entries, prometheus.GaugeValue, float64(s.Entries))
		},
	})
}

// WatchRows exports the row cache's counters (rowcache.Cache.Stats), read
// at each scrape. Call it once.
func (m *Metrics) WatchRows(stats func() rowcache.Stats) {
	if m == nil {
		return
	}
	hits := desc("strongroom_rowcache_hits_total", Counter)
	misses := desc("strongroom_rowcache_misses_total", Counter)
	invalidations := desc("strongroom_rowcache_invalidations_total", Counter)
	entries := desc("strongroom_rowcache_entries", Gauge)
	m.reg.MustRegister(&scrapeCollector{
		descs: []*prometheus.Desc{hits, misses, invalidations, entries},
		collect: func(ch chan<- prometheus.Metric) {
			s := stats()
			ch <- prometheus.MustNewConstMetric(hits, prometheus.CounterValue, float64(s.Hits))
			ch <- prometheus.MustNewConstMetric(misses, prometheus.CounterValue, float64(s.Misses))
			ch <- prometheus.MustNewConstMetric(invalidations, prometheus.CounterValue, float64(s.Invalidations))
			for kind, n := range map[string]int{"token": s.Tokens, "tenant": s.Tenants, "key": s.Keys} {
				ch <- prometheus.MustNewConstMetric(entries, prometheus.GaugeValue, float64(n), kind)
			}
		},
	})
}

// Readiness is the node's readiness as GET /v1/ready counts it.
type Readiness struct {
	// Releases is how many releases are loaded; Problems how many things
	// keep the node from being ready (it is ready when there are none).
	Releases, Problems int
}

// WatchReadiness exports the node's readiness, read at each scrape with a
// context that ends after a few seconds. Call it once.
func (m *Metrics) WatchReadiness(read func(ctx context.Context) Readiness) {
	if m == nil {
		return
	}
	ready := desc("strongroom_ready", Gauge)
	releases := desc("strongroom_releases_loaded", Gauge)
	problems := desc("strongroom_release_problems", Gauge)
	m.reg.MustRegister(&scrapeCollector{
		descs: []*prometheus.Desc{ready, releases, problems},
		collect: func(ch chan<- prometheus.Metric) {
			ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
			defer cancel()
			r := read(ctx)
			ok := 0.0
			if r.Problems == 0 {
				ok = 1
			}
			ch <- prometheus.MustNewConstMetric(ready, prometheus.GaugeValue, ok)
			ch <- prometheus.MustNewConstMetric(releases, prometheus.GaugeValue, float64(r.Releases))
			ch <- prometheus.MustNewConstMetric(problems, prometheus.GaugeValue, float64(r.Problems))
		},
	})
}

// AuditProgress is the state of the audit log and of this node's
// checkpoints.
type AuditProgress struct {
	// Entries is the size of the log; Checkpointed the size that this
	// node's last signed checkpoint covers, and Signed when it was signed
	// (zero: none yet).
	Entries, Checkpointed uint64
	Signed                time.Time
	// The checkpoint rounds run, by outcome.
	Rounds, Refused, Failed uint64
}

// WatchAudit exports the audit log's size and this node's checkpoint lag,
// read at each scrape with a context that ends after a few seconds. If
// read fails (the store does not answer, so Entries is unknown), the log's
// size and the lag are left out of that scrape; the checkpoint fields it
// returns still count. Call it once.
func (m *Metrics) WatchAudit(read func(ctx context.Context) (AuditProgress, error), now func() time.Time) {
	if m == nil {
		return
	}
	if now == nil {
		now = time.Now
	}
	entries := desc("strongroom_audit_log_entries", Gauge)
	lag := desc("strongroom_audit_checkpoint_lag_entries", Gauge)
	age := desc("strongroom_audit_checkpoint_age_seconds", Gauge)
	rounds := desc("strongroom_audit_checkpoint_rounds_total", Counter)
	m.reg.MustRegister(&scrapeCollector{
		descs: []*prometheus.Desc{entries, lag, age, rounds},
		collect: func(ch chan<- prometheus.Metric) {
			ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
			defer cancel()
			p, err := read(ctx)
			ok := p.Rounds - min(p.Rounds, p.Refused+p.Failed)
			ch <- prometheus.MustNewConstMetric(rounds, prometheus.CounterValue, float64(ok), OutcomeOK)
			ch <- prometheus.MustNewConstMetric(rounds, prometheus.CounterValue, float64(p.Refused), OutcomeRefused)
			ch <- prometheus.MustNewConstMetric(rounds, prometheus.CounterValue, float64(p.Failed), OutcomeError)
			if !p.Signed.IsZero() {
				ch <- prometheus.MustNewConstMetric(age, prometheus.GaugeValue, max(0, now().Sub(p.Signed).Seconds()))
			}
			if err != nil {
				return
			}
			ch <- prometheus.MustNewConstMetric(entries, prometheus.GaugeValue, float64(p.Entries))
			ch <- prometheus.MustNewConstMetric(lag, prometheus.GaugeValue, float64(p.Entries-min(p.Entries, p.Checkpointed)))
		},
	})
}

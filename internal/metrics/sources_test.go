package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/rowcache"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// TestWatchCache: the key cache's counters are read at each scrape.
func TestWatchCache(t *testing.T) {
	m := New()
	var s keycache.Stats
	m.WatchCache(func() keycache.Stats { return s })
	s = keycache.Stats{Entries: 7, Hits: 11, Misses: 13, Loads: 17, LoadErrors: 19, Evictions: 23, Expirations: 29, Removals: 31, Corrupt: 37}
	for name, v := range map[string]float64{"strongroom_keycache_entries": 7, "strongroom_keycache_hits_total": 11,
		"strongroom_keycache_misses_total": 13, "strongroom_keycache_loads_total": 17, "strongroom_keycache_load_errors_total": 19} {
		want(t, m, name, nil, v)
	}
	for reason, v := range map[string]float64{"capacity": 23, "expired": 29, "evicted": 31, "corrupt": 37} {
		want(t, m, "strongroom_keycache_evictions_total", map[string]string{"reason": reason}, v)
	}
	s.Hits++
	want(t, m, "strongroom_keycache_hits_total", nil, 12)
}

// TestWatchCacheReal: with a real cache, a hit, a miss and an eviction
// move the counters.
func TestWatchCacheReal(t *testing.T) {
	ctx := context.Background()
	m := New()
	c := keycache.New(keycache.Options{MaxEntries: 1})
	defer c.Close()
	m.WatchCache(c.Stats)
	load := func(context.Context) (secret.Key, error) { return secret.New(make([]byte, secret.Size)) }
	for _, id := range []string{"a", "a", "b"} {
		k, err := c.GetOrLoad(ctx, id, load)
		if err != nil {
			t.Fatal(err)
		}
		k.Destroy()
	}
	want(t, m, "strongroom_keycache_hits_total", nil, 1)
	want(t, m, "strongroom_keycache_misses_total", nil, 2)
	want(t, m, "strongroom_keycache_evictions_total", map[string]string{"reason": "capacity"}, 1)
	want(t, m, "strongroom_keycache_entries", nil, 1)
}

func TestWatchReadiness(t *testing.T) {
	m := New()
	r := Readiness{Releases: 2}
	m.WatchReadiness(func(ctx context.Context) Readiness {
		if _, ok := ctx.Deadline(); !ok {
			t.Errorf("the readiness read has no deadline")
		}
		return r
	})
	want(t, m, "strongroom_ready", nil, 1)
	want(t, m, "strongroom_releases_loaded", nil, 2)
	want(t, m, "strongroom_release_problems", nil, 0)
	r = Readiness{Releases: 1, Problems: 1}
	want(t, m, "strongroom_ready", nil, 0)
	want(t, m, "strongroom_release_problems", nil, 1)
}

func TestWatchAudit(t *testing.T) {
	m := New()
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	p := AuditProgress{Entries: 10}
	var err error
	m.WatchAudit(func(context.Context) (AuditProgress, error) { return p, err }, func() time.Time { return now })
	// No checkpoint yet: every entry lags, and there is no age.
	want(t, m, "strongroom_audit_log_entries", nil, 10)
	want(t, m, "strongroom_audit_checkpoint_lag_entries", nil, 10)
	if _, ok := value(t, m, "strongroom_audit_checkpoint_age_seconds", nil); ok {
		t.Errorf("an age without a checkpoint")
	}
	p = AuditProgress{Entries: 12, Checkpointed: 10, Signed: now.Add(-90 * time.Second), Rounds: 5, Refused: 1, Failed: 2}
	want(t, m, "strongroom_audit_checkpoint_lag_entries", nil, 2)
	want(t, m, "strongroom_audit_checkpoint_age_seconds", nil, 90)
	want(t, m, "strongroom_audit_checkpoint_rounds_total", map[string]string{"outcome": "ok"}, 2)
	want(t, m, "strongroom_audit_checkpoint_rounds_total", map[string]string{"outcome": "refused"}, 1)
	want(t, m, "strongroom_audit_checkpoint_rounds_total", map[string]string{"outcome": "error"}, 2)
	// The store does not answer: the size and the lag are unknown, not 0.
	err = errors.New("store: postgres: db.internal:5432: connection refused")
	if _, ok := value(t, m, "strongroom_audit_checkpoint_lag_entries", nil); ok {
		t.Errorf("a lag while the log's size is unknown")
	}
	want(t, m, "strongroom_audit_checkpoint_age_seconds", nil, 90)
}

// TestWatchRows: the row cache's counters and sizes are read at each
// scrape.
func TestWatchRows(t *testing.T) {
	m := New()
	var s rowcache.Stats
	m.WatchRows(func() rowcache.Stats { return s })
	s = rowcache.Stats{Hits: 3, Misses: 5, Invalidations: 7, Tokens: 11, Tenants: 13, Keys: 17}
	for name, v := range map[string]float64{"strongroom_rowcache_hits_total": 3, "strongroom_rowcache_misses_total": 5,
		"strongroom_rowcache_invalidations_total": 7} {
		want(t, m, name, nil, v)
	}
	for kind, v := range map[string]float64{"token": 11, "tenant": 13, "key": 17} {
		want(t, m, "strongroom_rowcache_entries", map[string]string{"kind": kind}, v)
	}
	s.Hits++
	want(t, m, "strongroom_rowcache_hits_total", nil, 4)
}

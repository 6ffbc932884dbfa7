package metrics

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/rowcache"
)

// full returns metrics with every source watched (fakes) and every
// series observed once, and their families by name, for the tests that
// compare what is exported with Defs, the docs and the dashboard.
func full(t testing.TB) (*Metrics, map[string]*dto.MetricFamily) {
	t.Helper()
	m := New()
	m.WatchCache(func() keycache.Stats { return keycache.Stats{Entries: 3, Hits: 5} })
	m.WatchRows(func() rowcache.Stats { return rowcache.Stats{Hits: 2, Tokens: 1} })
	m.WatchReadiness(func(context.Context) Readiness { return Readiness{Releases: 1} })
	m.WatchAudit(func(context.Context) (AuditProgress, error) {
		return AuditProgress{Entries: 10, Checkpointed: 8, Signed: time.Now().Add(-time.Minute), Rounds: 2}, nil
	}, nil)
	m.Route("GET /v1/status").Observe(200, "", time.Millisecond)
	m.hsm.get("random").observe(iOK, time.Now())
	m.store.get("Ping").observe(iOK, time.Now())
	m.audit.observe(iOK, time.Now())
	m.RotationRefused("POST /v1/tenants/{tenant}/keys", "rate_limited")
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error = %v", err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	return m, byName
}

// TestEveryDefExported: what the registry exports, once every source is
// watched and every series observed, is exactly Defs (with their types and
// labels), plus the Go runtime's and the process's families.
func TestEveryDefExported(t *testing.T) {
	_, fams := full(t)
	types := map[string]dto.MetricType{Counter: dto.MetricType_COUNTER, Gauge: dto.MetricType_GAUGE, Histogram: dto.MetricType_HISTOGRAM}
	declared := map[string]bool{}
	for _, d := range Defs() {
		declared[d.Name] = true
		f := fams[d.Name]
		if f == nil {
			t.Errorf("%s is declared but not exported", d.Name)
			continue
		}
		if f.GetType() != types[d.Type] {
			t.Errorf("%s is exported as a %v, declared a %s", d.Name, f.GetType(), d.Type)
		}
		if f.GetHelp() != d.Help {
			t.Errorf("%s: help %q, declared %q", d.Name, f.GetHelp(), d.Help)
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
			slices.Sort(labels)
			want := slices.Sorted(slices.Values(d.Labels))
			if !slices.Equal(labels, want) {
				t.Errorf("%s has labels %q, declared %q", d.Name, labels, want)
			}
		}
	}
	var runtime int
	for name := range fams {
		switch {
		case declared[name]:
		case strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_"):
			runtime++
		default:
			t.Errorf("%s is exported but not declared in defs", name)
		}
	}
	if runtime == 0 {
		t.Errorf("no go_* or process_* families: the runtime collectors are not registered")
	}
	for _, d := range Defs() {
		if !strings.HasPrefix(d.Name, "strongroom_") || d.Help == "" {
			t.Errorf("%s: every metric is strongroom_… and has help", d.Name)
		}
		if d.Type == Counter && !strings.HasSuffix(d.Name, "_total") {
			t.Errorf("%s: a counter's name ends in _total", d.Name)
		}
	}
}

func TestClassify(t *testing.T) {
	refusal := errors.New("refusal")
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{refusal, OutcomeRefused},
		{errors.Join(errors.New("x"), refusal), OutcomeRefused},
		{context.Canceled, OutcomeCanceled},
		{context.DeadlineExceeded, OutcomeCanceled},
		{errors.New("disk on fire"), OutcomeError},
	} {
		if got := outcomes[classify(c.err, []error{refusal})]; got != c.want {
			t.Errorf("classify(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

func TestUnknownOperationPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("an operation outside the set did not panic")
		}
	}()
	New().hsm.get("no_such_op")
}

package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCount(t *testing.T) {
	var calls, inFlight, peak atomic.Int64
	op := func(ctx context.Context) error {
		calls.Add(1)
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(time.Millisecond)
		inFlight.Add(-1)
		return nil
	}
	r, err := Run(context.Background(), "sleep", op, Options{Concurrency: 8, Count: 200})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 200 || calls.Load() != 200 || r.Errors != 0 {
		t.Errorf("ops %d, calls %d, errors %d; want 200, 200, 0", r.Ops, calls.Load(), r.Errors)
	}
	if peak.Load() != 8 {
		t.Errorf("peak concurrency %d, want 8", peak.Load())
	}
	if r.P50 < time.Millisecond || r.P99 < r.P50 || r.P999 < r.P99 || r.Max < r.P999 || r.OpsPerSec <= 0 {
		t.Errorf("latencies %+v", r)
	}
}

func TestDuration(t *testing.T) {
	start := time.Now()
	r, err := Run(context.Background(), "spin", func(ctx context.Context) error { return nil }, Options{Concurrency: 2, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("a 200 ms run took %v", took)
	}
	if r.Ops == 0 || r.Elapsed < 200*time.Millisecond {
		t.Errorf("%+v", r)
	}
}

func TestErrors(t *testing.T) {
	var n atomic.Int64
	op := func(ctx context.Context) error {
		if n.Add(1)%4 == 0 {
			return errors.New("refused: rate_limited")
		}
		return nil
	}
	r, err := Run(context.Background(), "flaky", op, Options{Concurrency: 1, Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 75 || r.Errors != 25 || r.FirstError != "refused: rate_limited" {
		t.Errorf("%+v", r)
	}
	if !strings.Contains(r.String(), "flaky") || !strings.Contains(r.String(), " 25") {
		t.Errorf("line %q", r.String())
	}
}

func TestQuantile(t *testing.T) {
	s := make([]time.Duration, 1000)
	for i := range s {
		s[i] = time.Duration(i + 1)
	}
	for q, want := range map[float64]time.Duration{0.5: 500, 0.99: 990, 0.999: 999, 1: 1000, 0: 1} {
		if got := quantile(s, q); got != want {
			t.Errorf("quantile(%v) = %d, want %d", q, got, want)
		}
	}
	if got := quantile([]time.Duration{7}, 0.999); got != 7 {
		t.Errorf("quantile of one = %d", got)
	}
}

func TestRefusesUnbounded(t *testing.T) {
	op := func(context.Context) error { return nil }
	if _, err := Run(context.Background(), "x", op, Options{Concurrency: 1}); err == nil {
		t.Error("a run with neither duration nor count ran")
	}
	if _, err := Run(context.Background(), "x", op, Options{Count: 1}); err == nil {
		t.Error("a run with no worker ran")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, "x", op, Options{Concurrency: 1, Duration: time.Hour}); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled run: %v", err)
	}
}

// Package loadgen is the load generator behind `strongroom bench`: it runs
// an operation from a number of concurrent workers for a fixed duration or
// a fixed count, and reports operations per second, latency percentiles
// (p50, p99, p99.9, max) and errors (docs/benchmarks.md).
//
// Latencies are kept exactly, one sample per operation (8 bytes each, at
// most MaxSamples), and sorted once at the end: at the rates a loopback
// benchmark reaches that is a few megabytes, and exact percentiles need no
// histogram library. Written by hand for that reason; the workers are plain
// goroutines.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation of a target; it returns nil on success.
type Op func(ctx context.Context) error

// MaxSamples bounds the latency samples a run keeps (80 MB of them); a run
// that would exceed it stops there.
const MaxSamples = 10_000_000

// Options bound a run: Duration or Count (the first reached ends it, and
// at least one must be set), with Concurrency workers.
type Options struct {
	Concurrency int
	Duration    time.Duration
	Count       int64
	// Warmup runs the operation once to its end, then this long from every
	// worker, unmeasured (connections, caches: a cold DEK's derivation is
	// seconds, and must not be cut off or counted).
	Warmup time.Duration
}

// Result is one run's measurements.
type Result struct {
	Target      string        `json:"target"`
	Concurrency int           `json:"concurrency"`
	Ops         int64         `json:"ops"`    // successful operations
	Errors      int64         `json:"errors"` // failed operations
	Elapsed     time.Duration `json:"elapsed_ns"`
	OpsPerSec   float64       `json:"ops_per_sec"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	P999        time.Duration `json:"p999_ns"`
	Max         time.Duration `json:"max_ns"`
	// FirstError is the text of the first failure, if any.
	FirstError string `json:"first_error,omitempty"`
}

// Run runs op under o and measures it. Successful operations' latencies
// give the percentiles; failed ones are counted apart. The context ends a
// run early (its result is still returned, with the context's error).
func Run(ctx context.Context, target string, op Op, o Options) (Result, error) {
	if o.Concurrency < 1 {
		return Result{}, errors.New("loadgen: concurrency must be at least 1")
	}
	if o.Duration <= 0 && o.Count <= 0 {
		return Result{}, errors.New("loadgen: a run needs a duration or a count")
	}
	if o.Warmup > 0 {
		op(ctx)
		wctx, cancel := context.WithTimeout(ctx, o.Warmup)
		var wg sync.WaitGroup
		for range o.Concurrency {
			wg.Go(func() {
				for wctx.Err() == nil {
					op(wctx)
				}
			})
		}
		wg.Wait()
		cancel()
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Duration > 0 {
		var c context.CancelFunc
		rctx, c = context.WithTimeout(rctx, o.Duration)
		defer c()
	}
	var (
		issued   atomic.Int64 // operations started (for Count)
		failures atomic.Int64
		firstErr atomic.Pointer[string]
		mu       sync.Mutex
		samples  [][]time.Duration
		wg       sync.WaitGroup
	)
	limit := o.Count
	if limit <= 0 || limit > MaxSamples {
		limit = MaxSamples
	}
	start := time.Now()
	for range o.Concurrency {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1024)
			for rctx.Err() == nil && issued.Add(1) <= limit {
				t0 := time.Now()
				err := op(rctx)
				d := time.Since(t0)
				switch {
				case err == nil:
					mine = append(mine, d)
				case rctx.Err() != nil:
					// Cut off by the end of the run: neither a success nor
					// a failure of the target.
				default:
					failures.Add(1)
					s := err.Error()
					firstErr.CompareAndSwap(nil, &s)
				}
			}
			mu.Lock()
			samples = append(samples, mine)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	all := slices.Concat(samples...)
	slices.Sort(all)
	r := Result{Target: target, Concurrency: o.Concurrency, Ops: int64(len(all)), Errors: failures.Load(), Elapsed: elapsed}
	if elapsed > 0 {
		r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	}
	if len(all) > 0 {
		r.P50, r.P99, r.P999, r.Max = quantile(all, 0.50), quantile(all, 0.99), quantile(all, 0.999), all[len(all)-1]
	}
	if e := firstErr.Load(); e != nil {
		r.FirstError = *e
	}
	return r, ctx.Err()
}

// quantile is the q-quantile of sorted samples, by the nearest-rank
// method: the smallest sample at or above a fraction q of them.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// String is the result as one line of the bench table.
func (r Result) String() string {
	return fmt.Sprintf("%-20s %5d %10d %10.0f %10s %10s %10s %7d", r.Target, r.Concurrency, r.Ops, r.OpsPerSec,
		round(r.P50), round(r.P99), round(r.P999), r.Errors)
}

// Header is the bench table's header, aligned with String.
const Header = "TARGET               CONC        OPS      OPS/S        P50        P99      P99.9  ERRORS"

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

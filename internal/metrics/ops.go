package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// outcomes are the outcome label values, by index (classify).
var outcomes = [...]string{OutcomeOK, OutcomeRefused, OutcomeCanceled, OutcomeError}

const (
	iOK = iota
	iRefused
	iCanceled
	iError
)

// classify is the outcome of an operation that returned err: refused if
// err is one of the expected refusals.
func classify(err error, refusals []error) int {
	switch {
	case err == nil:
		return iOK
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return iCanceled
	}
	for _, r := range refusals {
		if errors.Is(err, r) {
			return iRefused
		}
	}
	return iError
}

// op is the latency histogram of one operation, by outcome. Its series are
// made on first use (a series never observed is not exported) and then
// kept, so that timing an operation costs no label lookup.
type op struct {
	vec    *prometheus.HistogramVec
	labels []string // the operation's label values before the outcome
	once   [len(outcomes)]sync.Once
	obs    [len(outcomes)]prometheus.Observer
}

func newOp(vec *prometheus.HistogramVec, labels ...string) *op {
	return &op{vec: vec, labels: labels}
}

func (o *op) observe(outcome int, start time.Time) {
	o.once[outcome].Do(func() {
		o.obs[outcome] = o.vec.WithLabelValues(append(o.labels[:len(o.labels):len(o.labels)], outcomes[outcome])...)
	})
	o.obs[outcome].Observe(time.Since(start).Seconds())
}

// ops are the operations of one histogram with labels (op, outcome), by
// name: a fixed set, made up front.
type ops struct {
	vec    *prometheus.HistogramVec
	byName map[string]*op
}

func newOps(vec *prometheus.HistogramVec, names []string) *ops {
	o := &ops{vec: vec, byName: map[string]*op{}}
	for _, n := range names {
		o.byName[n] = newOp(vec, n)
	}
	return o
}

// get returns the operation name; a name not in the set is a programming
// error.
func (o *ops) get(name string) *op {
	p, ok := o.byName[name]
	if !ok {
		panic("metrics: operation " + name + " is not in its set")
	}
	return p
}

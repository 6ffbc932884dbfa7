package auditlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// Group commit. Entries that must be durable before their request is
// answered (DEK deliveries, exports, refusals) are appended by concurrent
// requests at once: the requests that arrive while one transaction
// commits wait, and the next transaction appends all of them (at most
// maxBatch requests), so that they share one commit and one fsync. No
// request returns success before the transaction holding its entries
// committed.
//
// There is no timer and no goroutine: the first request in leads, the
// others queue behind the commit in flight, and each leader hands the lead
// to the head of the queue once its own batch committed, so that no
// request waits for more than the commit in flight and its own.
//
// Failures: a batch the store refuses as invalid (store.ErrInvalid, found
// before anything is written) is appended again one request at a time, so
// that one request's invalid entry fails that request alone. Any other
// failure fails every request of the batch, without a retry: the commit
// may have happened (a connection lost during COMMIT), and appending again
// could record a delivery twice. A request whose context ends while it
// waits in the queue leaves it and fails; once in a batch, it waits for
// the batch, whose transaction is bounded by the latest deadline among its
// requests, and by batchTimeout if one of them has none.

// maxBatch bounds the requests one transaction appends for.
const maxBatch = 256

// batchTimeout bounds a batch's transaction when one of its requests has
// no deadline of its own (the checkpointer's flush).
const batchTimeout = time.Minute

// group is a Log's queue of appends.
type group struct {
	mu    sync.Mutex
	queue []*pending
	busy  bool // a leader is committing
}

// pending is one request's append.
type pending struct {
	ctx     context.Context
	counts  []keyusage.Count
	entries []audit.Entry
	err     error
	// batch is what the request leads, when it is woken to lead: itself
	// first, then those queued behind it, taken off the queue.
	batch []*pending
	// wake hears true when the request is to lead batch, false when its
	// batch committed (or failed: err). Whoever took the request off the
	// queue sends to it, once.
	wake chan bool
}

// append appends entries and counts through st's AppendAuditUsage, in a
// transaction shared with concurrent appends, and returns once it
// committed.
func (g *group) append(ctx context.Context, st Store, counts []keyusage.Count, entries []audit.Entry) error {
	p := &pending{ctx: ctx, counts: counts, entries: entries, wake: make(chan bool, 1)}
	var batch []*pending
	g.mu.Lock()
	if g.busy {
		g.queue = append(g.queue, p)
		g.mu.Unlock()
		var lead bool
		select {
		case lead = <-p.wake:
		case <-ctx.Done():
			if g.leave(p) {
				return fmt.Errorf("auditlog: waiting to append: %w", ctx.Err())
			}
			lead = <-p.wake // taken off the queue already: its batch is coming
		}
		if !lead {
			return p.err
		}
		batch = p.batch
	} else {
		g.busy = true
		g.mu.Unlock()
		batch = []*pending{p}
	}
	defer g.handOff(batch)
	commit(st, batch)
	return p.err
}

// leave takes p off the queue if it is still there (no leader took it).
func (g *group) leave(p *pending) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.Index(g.queue, p)
	if i < 0 {
		return false
	}
	g.queue = slices.Delete(g.queue, i, i+1)
	return true
}

// handOff tells the batch's other requests their outcome, and takes the
// next batch off the queue for its head to lead. It runs even if the
// commit panicked (the batch then fails, and the panic goes on), so that
// the queue never stalls.
func (g *group) handOff(batch []*pending) {
	r := recover()
	if r != nil {
		for _, q := range batch {
			q.err = fmt.Errorf("auditlog: appending panicked: %v", r)
		}
	}
	for _, q := range batch[1:] {
		q.wake <- false
	}
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.busy = false
		g.mu.Unlock()
	} else {
		n := min(len(g.queue), maxBatch)
		next := g.queue[:n:n]
		g.queue = g.queue[n:]
		next[0].batch = next
		g.mu.Unlock()
		next[0].wake <- true
	}
	if r != nil {
		panic(r)
	}
}

// commit appends a batch in one transaction; see the package's notes on
// group commit for its failures.
func commit(st Store, batch []*pending) {
	if len(batch) == 1 {
		_, batch[0].err = st.AppendAuditUsage(batch[0].ctx, batch[0].counts, batch[0].entries...)
		return
	}
	ctx, cancel := batchContext(batch)
	defer cancel()
	var counts []keyusage.Count
	var entries []audit.Entry
	for _, p := range batch {
		counts = append(counts, p.counts...)
		entries = append(entries, p.entries...)
	}
	_, err := st.AppendAuditUsage(ctx, counts, entries...)
	if !errors.Is(err, store.ErrInvalid) {
		for _, p := range batch {
			p.err = err
		}
		return
	}
	for _, p := range batch {
		_, p.err = st.AppendAuditUsage(p.ctx, p.counts, p.entries...)
	}
}

// batchContext is the context of a batch's transaction: none of its
// requests' cancellation (each waits for the others' entries too), and
// the latest of their deadlines, or batchTimeout if one has none.
func batchContext(batch []*pending) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			return context.WithTimeout(context.WithoutCancel(batch[0].ctx), batchTimeout)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(batch[0].ctx), latest)
}

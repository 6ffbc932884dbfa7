package auditlog

import (
	"context"
	"sync"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
)

// Group commit. Entries that must be durable before their request is
// answered (DEK deliveries, exports, refusals) are appended by concurrent
// requests at once: the requests that arrive while one transaction
// commits wait, and the next transaction appends all of them (at most
// maxBatch requests), so that they share one commit and one fsync. No
// request returns before the transaction holding its entries committed,
// nor when it failed: a batch that fails is appended again one request at
// a time, so that one request's invalid entry fails that request alone.
//
// There is no timer and no goroutine: the first request in leads, the
// others queue behind the commit in flight, and each leader hands the lead
// to the head of the queue once its own batch committed, so that no
// request waits for more than the commit in flight and its own.

// maxBatch bounds the requests one transaction appends for.
const maxBatch = 256

// group is a Log's queue of appends.
type group struct {
	mu    sync.Mutex
	queue []*pending
	busy  bool // a leader is committing
}

// pending is one request's append.
type pending struct {
	counts  []keyusage.Count
	entries []audit.Entry
	err     error
	// wake hears true when the request is to lead the next batch, false
	// when its batch committed (or failed: err).
	wake chan bool
}

// append appends entries and counts through st's AppendAuditUsage, in a
// transaction shared with concurrent appends, and returns once it
// committed.
func (g *group) append(ctx context.Context, st Store, counts []keyusage.Count, entries []audit.Entry) error {
	p := &pending{counts: counts, entries: entries, wake: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	if g.busy {
		g.mu.Unlock()
		if lead := <-p.wake; !lead {
			return p.err
		}
		g.mu.Lock()
	}
	// Leading: p is the head of the queue.
	g.busy = true
	n := min(len(g.queue), maxBatch)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	commit(ctx, st, batch)
	for _, q := range batch[1:] {
		q.wake <- false
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].wake <- true // still busy: the head leads next
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return p.err
}

// commit appends a batch in one transaction, or, if that fails, each
// request's in its own. A batch of one runs under its request's context; a
// larger one under the leader's deadline, if it has one, but not its
// cancellation: the followers' entries are in the transaction too.
func commit(ctx context.Context, st Store, batch []*pending) {
	if len(batch) == 1 {
		_, batch[0].err = st.AppendAuditUsage(ctx, batch[0].counts, batch[0].entries...)
		return
	}
	shared := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		shared, cancel = context.WithDeadline(shared, d)
		defer cancel()
	}
	ctx = shared
	var counts []keyusage.Count
	var entries []audit.Entry
	for _, p := range batch {
		counts = append(counts, p.counts...)
		entries = append(entries, p.entries...)
	}
	if _, err := st.AppendAuditUsage(ctx, counts, entries...); err == nil {
		return
	}
	for _, p := range batch {
		_, p.err = st.AppendAuditUsage(ctx, p.counts, p.entries...)
	}
}

package lifecycle

import (
	"context"
	"hash/maphash"
)

// seriesLocks serialise, on this node, the Generates of one tenant and key
// type (a series): a read of the highest version, a wrap for the next, a
// rotation. The store serialises rotations across nodes; this keeps a
// node's own concurrent requests from racing each other for a version. The
// locks are striped: two series may share one, which only serialises two
// rare operations.
type seriesLocks struct {
	seed    maphash.Seed
	stripes [64]chan struct{}
}

func newSeriesLocks() *seriesLocks {
	l := &seriesLocks{seed: maphash.MakeSeed()}
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	return l
}

// lock takes the lock of (tenantID, typ), or gives up when ctx ends.
func (l *seriesLocks) lock(ctx context.Context, tenantID, typ string) (unlock func(), err error) {
	c := l.stripes[maphash.String(l.seed, tenantID+"/"+typ)%uint64(len(l.stripes))]
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

package lifecycle

import (
	"context"
	"hash/maphash"
)

// Locks serialise, on this node, the operations of one key at a time:
// here the Generates of one tenant and key type (a series: a read of the
// highest version, a wrap for the next, a rotation), in internal/byok the
// creations of one tenant's upload certificates. The store serialises the
// writes across nodes; these keep a node's own concurrent requests from
// racing each other (for a version, or for HSM work the store would then
// refuse). The locks are striped: two keys may share one, which only
// serialises two rare operations.
type Locks struct {
	seed    maphash.Seed
	stripes [64]chan struct{}
}

// NewLocks returns a set of unlocked locks.
func NewLocks() *Locks {
	l := &Locks{seed: maphash.MakeSeed()}
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	return l
}

// Lock takes the lock of key, or gives up when ctx ends.
func (l *Locks) Lock(ctx context.Context, key string) (unlock func(), err error) {
	c := l.stripes[maphash.String(l.seed, key)%uint64(len(l.stripes))]
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

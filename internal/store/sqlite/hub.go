package sqlite

import (
	"context"
	"fmt"
	"sync"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// watchBuffer is how many destructions a watcher may fall behind by before
// the next are dropped for it.
const watchBuffer = 256

// hub fans the destructions of one Store out to its watchers
// (WatchDestroyed), in this process only: SQLite has no notifications
// between processes.
//
// Each watcher is handed the destroyed key after its transaction committed
// (engine.Committed), through a buffered channel that the watcher's own goroutine
// drains into its callback, so that a slow callback never holds up a
// destruction. When a watcher's buffer is full the destruction is dropped
// for that watcher: this is acceptable only because delivery is best effort
// by contract, and watchers re-check with DestroyedSince.
type hub struct {
	group    store.Watchers
	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

type watcher struct {
	ch chan tenant.KeyRef
}

func newHub() *hub {
	return &hub{watchers: make(map[*watcher]struct{})}
}

// watch tells fn of the destructions made through this Store.
func (h *hub) watch(ctx context.Context, fn func(tenant.KeyRef)) error {
	w := &watcher{ch: make(chan tenant.KeyRef, watchBuffer)}
	register := func(context.Context) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.watchers[w] = struct{}{}
		return nil
	}
	run := func(ctx context.Context) {
		defer h.remove(w)
		for {
			select {
			case <-ctx.Done():
				return
			case ref := <-w.ch:
				if ctx.Err() != nil {
					return
				}
				fn(ref)
			}
		}
	}
	if err := h.group.Start(ctx, register, run); err != nil {
		return fmt.Errorf("store: sqlite: watching key destructions: %w", err)
	}
	return nil
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

// notify tells every watcher of a destruction, without blocking.
func (h *hub) notify(ref tenant.KeyRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		select {
		case w.ch <- ref:
		default: // full: dropped for this watcher (see hub)
		}
	}
}

// close ends every watcher, and waits up to store.CloseWait for their
// callbacks to return.
func (h *hub) close() { h.group.Close() }

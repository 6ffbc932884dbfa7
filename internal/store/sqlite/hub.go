package sqlite

import (
	"context"
	"fmt"
	"sync"

	"github.com/strongroom-kms/strongroom/internal/store"
)

// watchBuffer is how many changes a watcher may fall behind by before the
// next are dropped for it.
const watchBuffer = 256

// hub fans the changes of one Store (destructions first) out to its
// watchers (WatchDestroyed, WatchChanges), in this process only: SQLite
// has no notifications between processes.
//
// Each watcher is handed the change after its transaction committed
// (engine.Committed), through a buffered channel that the watcher's own
// goroutine drains into its callback, so that a slow callback never holds
// up a write. When a watcher's buffer is full the change is dropped for
// that watcher: this is acceptable only because delivery is best effort by
// contract, and watchers re-check (DestroyedSince, rows' bounded age).
type hub struct {
	group    store.Watchers
	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

type watcher struct {
	keep func(store.Change) bool // nil: every change
	ch   chan store.Change
}

func newHub() *hub {
	return &hub{watchers: make(map[*watcher]struct{})}
}

// watch tells fn of the changes made through this Store that keep accepts
// (nil: all), so that the others never take room in its buffer.
func (h *hub) watch(ctx context.Context, keep func(store.Change) bool, fn func(store.Change)) error {
	w := &watcher{keep: keep, ch: make(chan store.Change, watchBuffer)}
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
			case c := <-w.ch:
				if ctx.Err() != nil {
					return
				}
				fn(c)
			}
		}
	}
	if err := h.group.Start(ctx, register, run); err != nil {
		return fmt.Errorf("store: sqlite: watching changes: %w", err)
	}
	return nil
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

// notify tells every watcher of a change, without blocking.
func (h *hub) notify(c store.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if w.keep != nil && !w.keep(c) {
			continue
		}
		select {
		case w.ch <- c:
		default: // full: dropped for this watcher (see hub)
		}
	}
}

// close ends every watcher, and waits up to store.CloseWait for their
// callbacks to return.
func (h *hub) close() { h.group.Close() }

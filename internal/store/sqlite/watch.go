package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/store"
)

// watchBuffer is how many destructions a watcher may fall behind by before
// the next are dropped for it.
const watchBuffer = 256

// closeWait bounds how long Close waits for watchers' callbacks to return.
const closeWait = 5 * time.Second

// hub fans the destructions of one Store out to its watchers
// (WatchDestroyed), in this process only: SQLite has no notifications
// between processes.
//
// DestroyKey hands each watcher the destroyed key after its transaction
// committed, through a buffered channel that the watcher's own goroutine
// drains into its callback, so that a slow callback never holds up a
// destruction. When a watcher's buffer is full the destruction is dropped
// for that watcher: this is acceptable only because delivery is best effort
// by contract, and watchers re-check with DestroyedSince.
type hub struct {
	mu       sync.Mutex
	closed   bool
	done     chan struct{} // closed by close
	watchers map[*watcher]struct{}
	running  sync.WaitGroup
}

type watcher struct {
	ch chan store.KeyRef
}

func newHub() *hub {
	return &hub{done: make(chan struct{}), watchers: make(map[*watcher]struct{})}
}

// WatchDestroyed implements store.DestroyWatcher: it tells fn of the
// destructions made through this Store.
func (s *Store) WatchDestroyed(ctx context.Context, fn func(store.KeyRef)) error {
	if fn == nil {
		return store.Errorf(store.ErrInvalid, "WatchDestroyed needs a function to call")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: sqlite: watching key destructions: %w", err)
	}
	h := s.hub
	w := &watcher{ch: make(chan store.KeyRef, watchBuffer)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("store: sqlite: watching key destructions: the store is closed")
	}
	h.watchers[w] = struct{}{}
	h.running.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.running.Done()
		defer h.remove(w)
		for {
			select {
			case <-ctx.Done():
				return
			case <-h.done:
				return
			case ref := <-w.ch:
				select {
				case <-ctx.Done():
					return
				case <-h.done:
					return
				default:
				}
				fn(ref)
			}
		}
	}()
	return nil
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

// notify tells every watcher of a destruction, without blocking.
func (h *hub) notify(ref store.KeyRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		select {
		case w.ch <- ref:
		default: // full: dropped for this watcher (see hub)
		}
	}
}

// close ends every watcher, and waits up to closeWait for their callbacks
// to return.
func (h *hub) close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	ended := make(chan struct{})
	go func() {
		h.running.Wait()
		close(ended)
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-ended:
	case <-t.C:
	}
}

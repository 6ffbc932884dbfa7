package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// CloseWait bounds how long Close waits for a watcher's callback to return
// (Store.WatchDestroyed): Close never hangs on one.
const CloseWait = 5 * time.Second

// ErrClosed: the store is closed.
var ErrClosed = errors.New("store: the store is closed")

// Watchers is an engine's watcher goroutines (Store.WatchDestroyed): each
// runs until its caller's context ends or the store closes, and Close ends
// them all, waiting at most CloseWait. The zero value is ready to use.
type Watchers struct {
	mu      sync.Mutex
	closing context.Context // done once Close began
	stop    context.CancelFunc
	running sync.WaitGroup
}

func (w *Watchers) init() {
	if w.closing == nil {
		w.closing, w.stop = context.WithCancel(context.Background())
	}
}

// Start runs setup and then, in a goroutine of its own, run, unless the
// store is closed (ErrClosed). Both get a context that ends when ctx ends or
// the store closes. If setup fails, run is not started and Start returns
// setup's error. Close waits for run to return.
func (w *Watchers) Start(ctx context.Context, setup func(context.Context) error, run func(context.Context)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	w.init()
	if w.closing.Err() != nil {
		w.mu.Unlock()
		return ErrClosed
	}
	w.running.Add(1)
	w.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stopAfter := context.AfterFunc(w.closing, cancel)
	end := func() {
		stopAfter()
		cancel()
		w.running.Done()
	}
	if err := setup(ctx); err != nil {
		end()
		return err
	}
	go func() {
		defer end()
		run(ctx)
	}()
	return nil
}

// Close ends every watcher's context and waits up to CloseWait for them to
// return. Later Starts fail with ErrClosed.
func (w *Watchers) Close() {
	w.mu.Lock()
	w.init()
	w.stop()
	w.mu.Unlock()
	ended := make(chan struct{})
	go func() {
		w.running.Wait()
		close(ended)
	}()
	t := time.NewTimer(CloseWait)
	defer t.Stop()
	select {
	case <-ended:
	case <-t.C:
	}
}

// Wait waits until every watcher has returned (tests).
func (w *Watchers) Wait() { w.running.Wait() }

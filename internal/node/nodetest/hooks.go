package nodetest

import (
	"context"
	"sync/atomic"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// HookStore is a real store with hooks, to interleave calls of several
// nodes deterministically: a pause after a Key call has read the store (a
// destruction between a DEK request's reads), and a hook that runs once
// before a Rotate (another node rotating first). Every node over it shares
// the hooks.
type HookStore struct {
	*store.Store
	calls      atomic.Int32
	keyHook    atomic.Pointer[func(call int32)]
	rotateHook atomic.Pointer[func()]
}

// BeforeRotate arms f to run once, before the next Rotate.
func (h *HookStore) BeforeRotate(f func()) { h.rotateHook.Store(&f) }

// Rotate runs the BeforeRotate hook, if armed, then rotates.
func (h *HookStore) Rotate(ctx context.Context, req store.RotateRequest, rec audit.Entry) (tenant.Key, error) {
	if f := h.rotateHook.Swap(nil); f != nil {
		(*f)()
	}
	return h.Store.Rotate(ctx, req, rec)
}

// Key reads the key, then stops if PauseAt says so.
func (h *HookStore) Key(ctx context.Context, ref tenant.KeyRef) (tenant.Key, error) {
	k, err := h.Store.Key(ctx, ref)
	n := h.calls.Add(1)
	if f := h.keyHook.Load(); f != nil {
		(*f)(n)
	}
	return k, err
}

// PauseAt arms the hook to stop the nth Key call from now (after it has
// read the store) until release is closed; paused is closed when it stops.
// Unpause disarms it.
func (h *HookStore) PauseAt(nth int32) (paused, release chan struct{}) {
	paused, release = make(chan struct{}), make(chan struct{})
	h.calls.Store(0)
	f := func(call int32) {
		if call == nth {
			close(paused)
			<-release
		}
	}
	h.keyHook.Store(&f)
	return paused, release
}

// Unpause disarms PauseAt.
func (h *HookStore) Unpause() { h.keyHook.Store(nil) }

//go:build cgo

package pkcs11

import (
	"context"
	"errors"
	"sync"

	"github.com/miekg/pkcs11"
)

// maxPoolSize bounds the sessions an HSM opens. PKCS#11 sessions may not be
// used by two threads at once, so this is also the HSM's parallelism.
const maxPoolSize = 8

var errClosed = errors.New("the HSM has been closed")

// pool is a fixed set of R/W sessions with one token. The token's login
// state is shared by all of them, so logging in once is enough.
type pool struct {
	ctx  *pkcs11.Ctx
	slot uint
	free chan pkcs11.SessionHandle
	size int

	closing   chan struct{}
	closeOnce sync.Once
}

// openSession opens an R/W session with the token in slot.
func openSession(ctx *pkcs11.Ctx, slot uint) (pkcs11.SessionHandle, error) {
	return ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
}

// newPool puts first, an open and logged-in session, into a pool and opens
// up to want-1 more. Tokens that allow fewer sessions get a smaller pool.
func newPool(ctx *pkcs11.Ctx, slot uint, first pkcs11.SessionHandle, want int) *pool {
	p := &pool{ctx: ctx, slot: slot, free: make(chan pkcs11.SessionHandle, want), closing: make(chan struct{})}
	p.free <- first
	p.size = 1
	for p.size < want {
		s, err := openSession(ctx, slot)
		if err != nil {
			break // e.g. CKR_SESSION_COUNT: make do with fewer
		}
		p.free <- s
		p.size++
	}
	return p
}

// do runs f with a session of its own. It waits for a free session until ctx
// is done. A session that the token reports gone is replaced. (Ephemeral keys
// are session objects and die with the session that made them, so live
// sessions are never replaced; no operation is left unfinished on them.)
func (p *pool) do(ctx context.Context, f func(s pkcs11.SessionHandle) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	var s pkcs11.SessionHandle
	select {
	case s = <-p.free:
	case <-p.closing:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p.free <- s }() // even if f panics: Close waits for it
	select {
	case <-p.closing:
		return errClosed
	default:
	}
	err = f(s)
	if isRV(err, pkcs11.CKR_SESSION_HANDLE_INVALID) || isRV(err, pkcs11.CKR_SESSION_CLOSED) {
		s = p.replace(s)
	}
	return err
}

// replace opens a session in place of a dead one; if that fails it keeps the
// old handle, so that the pool keeps its size.
func (p *pool) replace(old pkcs11.SessionHandle) pkcs11.SessionHandle {
	s, err := openSession(p.ctx, p.slot)
	if err != nil {
		return old
	}
	_ = p.ctx.CloseSession(old)
	return s
}

// drain marks the pool closed and waits for every session to come back. It
// returns the sessions; the caller closes them.
func (p *pool) drain() []pkcs11.SessionHandle {
	var all []pkcs11.SessionHandle
	p.closeOnce.Do(func() {
		close(p.closing)
		for range p.size {
			all = append(all, <-p.free)
		}
	})
	return all
}

//go:build cgo

package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// HSM is a logged-in PKCS#11 token. It is safe for concurrent use.
type HSM struct {
	mod   *module
	slot  uint
	token *tokenState // shared with other HSMs of the process on this token
	pool  *pool
	info  hsm.Info // OAEPHashes set by probe
	kwp   uint     // the RFC 5649 mechanism, chosen by probe
	// lenUnreported: the token leaves CKA_VALUE_LEN of unwrapped keys at 0
	// (SoftHSM2 2.6 does), so unwrapAES measures them.
	lenUnreported atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

var _ hsm.HSM = (*HSM)(nil)

// Open loads the module that uri names, finds the token, logs in with the PIN
// from the pin-source, probes which RSA-OAEP hashes the token really supports
// and runs the known-answer self-test.
func Open(ctx context.Context, uri string) (hsm.HSM, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	h, err := open(u)
	if err != nil {
		return nil, err
	}
	if err := h.probe(ctx); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.selfTest(ctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// open does the part of Open that changes the process-wide registry.
func open(u URI) (*HSM, error) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	m, err := acquireModule(u.ModulePath)
	if err != nil {
		return nil, err
	}
	h, err := openToken(m, u)
	if err != nil {
		m.release()
		return nil, err
	}
	return h, nil
}

// openToken finds the token, logs in and fills the session pool. The caller
// holds registry.mu.
func openToken(m *module, u URI) (*HSM, error) {
	slot, ti, err := findToken(m, u)
	if err != nil {
		return nil, err
	}
	pin, err := readPIN(u)
	if err != nil {
		return nil, err
	}
	defer clear(pin)
	s, err := openSession(m.ctx, slot)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: cannot open a read/write session with token %q: %w", ti.Label, err)
	}
	ts := m.token(slot)
	if err := login(m, ts, s, ti.Label, u, pin); err != nil {
		m.ctx.CloseSession(s)
		return nil, err
	}
	ts.logins++
	return &HSM{
		mod:   m,
		slot:  slot,
		token: ts,
		pool:  newPool(m.ctx, slot, s, poolSize(ti)),
		info:  hsm.Info{Backend: "pkcs11", Token: ti.Label, Description: describe(m, ti)},
	}, nil
}

// Info implements hsm.HSM.
func (h *HSM) Info() hsm.Info {
	i := h.info
	i.OAEPHashes = append([]hsm.OAEPHash(nil), h.info.OAEPHashes...)
	return i
}

// Close logs out (when no other HSM of the process uses the token), closes
// the sessions, which destroys the ephemeral keys, and releases the module.
// It waits for operations in progress.
func (h *HSM) Close() error {
	h.closeOnce.Do(func() {
		sessions := h.pool.drain()
		registry.mu.Lock()
		defer registry.mu.Unlock()
		var errs []error
		h.token.logins--
		if h.token.logins == 0 {
			err := h.mod.ctx.Logout(sessions[0])
			if err != nil && !isRV(err, pkcs11.CKR_USER_NOT_LOGGED_IN) {
				errs = append(errs, fmt.Errorf("pkcs11: C_Logout: %w", err))
			}
		}
		for _, s := range sessions {
			if err := h.mod.ctx.CloseSession(s); err != nil {
				errs = append(errs, fmt.Errorf("pkcs11: C_CloseSession: %w", err))
			}
		}
		if err := h.mod.release(); err != nil {
			errs = append(errs, err)
		}
		h.closeErr = errors.Join(errs...)
	})
	return h.closeErr
}

// maxRandom bounds one C_GenerateRandom call.
const maxRandom = 1 << 16

// Random implements hsm.HSM with C_GenerateRandom.
func (h *HSM) Random(ctx context.Context, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("pkcs11: Random(%d): negative length", n)
	}
	out := make([]byte, 0, n)
	err := h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		for len(out) < n {
			want := min(n-len(out), maxRandom)
			b, err := h.mod.ctx.GenerateRandom(s, want)
			if err != nil {
				return fmt.Errorf("C_GenerateRandom: %w", err)
			}
			if len(b) != want {
				return fmt.Errorf("C_GenerateRandom returned %d bytes, want %d", len(b), want)
			}
			out = append(out, b...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: random: %w", err)
	}
	return out, nil
}

// sameToken reports whether o uses the same token of the same module as h,
// so that o's object handles are valid in h's sessions.
func (h *HSM) sameToken(o *HSM) bool { return h.mod == o.mod && h.slot == o.slot }

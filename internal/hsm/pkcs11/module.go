//go:build cgo

package pkcs11

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/miekg/pkcs11"
)

// C_Initialize and C_Finalize act on the whole process, and the login state
// of a token is shared by all of a process's sessions with it. The registry
// therefore loads each module once, counts its users, and finalises and
// unloads it when the last one closes; it also tracks, per token, who is
// logged in.
var registry struct {
	mu      sync.Mutex
	modules map[string]*module
	pinKey  [32]byte // per-process HMAC key for remembering PINs
}

// module is a loaded and initialised PKCS#11 library.
type module struct {
	path     string
	ctx      *pkcs11.Ctx
	refs     int  // guarded by registry.mu
	ownsInit bool // false if another component of the process initialised it
	tokens   map[uint]*tokenState
}

// tokenState is what the process shares about one token (slot).
type tokenState struct {
	logins int      // open HSMs logged in to the token; guarded by registry.mu
	pinMAC [32]byte // HMAC of the PIN that logged in

	// persist serialises the creation and destruction of token objects
	// (persistent keys). It makes "is the label free?" and the creation one
	// step within the process (PKCS#11 has no create-if-absent; across
	// processes, lookups refuse duplicate labels), and it works around
	// SoftHSM2 2.6, whose file store fails (CKR_GENERAL_ERROR) when token
	// objects are created concurrently. Session objects (ephemeral keys) and
	// all other operations run in parallel. Take it before a session.
	persist sync.Mutex
}

// acquireModule loads and initialises the module at path, or takes another
// reference to it. The caller holds registry.mu.
func acquireModule(path string) (*module, error) {
	if registry.modules == nil {
		registry.modules = map[string]*module{}
		if _, err := rand.Read(registry.pinKey[:]); err != nil {
			return nil, err
		}
	}
	if m := registry.modules[path]; m != nil {
		m.refs++
		return m, nil
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("pkcs11: PKCS#11 module %s (module-path) does not exist; "+
			"install the HSM's client library or fix the path", path)
	case err != nil:
		return nil, fmt.Errorf("pkcs11: cannot use PKCS#11 module %s (module-path): %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("pkcs11: PKCS#11 module %s (module-path) is a directory, not a library", path)
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11: cannot load PKCS#11 module %s (module-path): "+
			"dlopen failed (not a shared library for this platform, or a library it needs is missing), "+
			"or it exports no C_GetFunctionList", path)
	}
	m := &module{path: path, ctx: ctx, refs: 1, ownsInit: true, tokens: map[uint]*tokenState{}}
	if err := ctx.Initialize(); err != nil {
		if !isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			ctx.Destroy()
			return nil, fmt.Errorf("pkcs11: C_Initialize of module %s failed: %w", path, err)
		}
		m.ownsInit = false
	}
	registry.modules[path] = m
	return m, nil
}

// release drops a reference; the last one finalises and unloads the module.
// The caller holds registry.mu.
func (m *module) release() error {
	m.refs--
	if m.refs > 0 {
		return nil
	}
	delete(registry.modules, m.path)
	var err error
	if m.ownsInit {
		if e := m.ctx.Finalize(); e != nil {
			err = fmt.Errorf("pkcs11: C_Finalize of module %s: %w", m.path, e)
		}
	}
	m.ctx.Destroy()
	return err
}

// token returns the shared state of the token in slot. The caller holds
// registry.mu.
func (m *module) token(slot uint) *tokenState {
	t := m.tokens[slot]
	if t == nil {
		t = &tokenState{}
		m.tokens[slot] = t
	}
	return t
}

func pinMAC(pin []byte) [32]byte {
	h := hmac.New(sha256.New, registry.pinKey[:])
	h.Write(pin)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// isRV reports whether err is the PKCS#11 return value rv.
func isRV(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}

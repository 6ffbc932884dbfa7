// Package soft is a pure-Go HSM for development and tests.
//
// All its keys live in one file sealed under a key derived from a passphrase
// with scrypt (the format is in file.go and docs/formats.md). The file is
// rewritten atomically, with mode 0600, under an exclusive lock, each time a
// persistent key is created or destroyed; several processes may share it.
//
// It offers no protection against an attacker who can read the process's
// memory or guess the passphrase: use a PKCS#11 HSM in production.
package soft

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Options tune Open.
type Options struct {
	// Create makes a new, empty file when none exists at the path.
	Create bool
	// kdf overrides the scrypt cost (tests only).
	kdf *kdfParams
}

// HSM is an opened soft HSM file.
type HSM struct {
	path string

	mu     sync.Mutex
	key    secret.Key // the file key, derived from the passphrase
	hdr    header
	closed bool
	enc    map[string]*encryptionKey
	sign   map[string]*signingKey
	sec    map[string]*secretKey
	eph    map[*secretKey]struct{} // ephemeral keys, destroyed on Close
}

var _ hsm.HSM = (*HSM)(nil)

// Open opens (or, with opts.Create, creates) the soft HSM at path. A wrong
// passphrase is refused and changes nothing.
func Open(ctx context.Context, path string, passphrase []byte, opts Options) (*HSM, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("soft: empty passphrase; set STRONGROOM_HSM_PASSPHRASE or pass --passphrase-file")
	}
	h := &HSM{
		path: path,
		enc:  map[string]*encryptionKey{},
		sign: map[string]*signingKey{},
		sec:  map[string]*secretKey{},
		eph:  map[*secretKey]struct{}{},
	}
	unlock, err := lockFile(path, true)
	if err != nil {
		return nil, err
	}
	defer unlock()

	data, err := readFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && opts.Create:
		if err := h.create(passphrase, opts); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("soft: no soft HSM file at %s; create one with 'strongroom hsm init --hsm soft:%s'", path, path)
	case err != nil:
		return nil, err
	default:
		if err := h.unlock(data, passphrase); err != nil {
			return nil, err
		}
	}
	if err := h.selfTest(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// create writes a new empty file. The caller holds the lock.
func (h *HSM) create(passphrase []byte, opts Options) error {
	h.hdr.kdf = defaultKDF
	if opts.kdf != nil {
		h.hdr.kdf = *opts.kdf
	}
	if _, err := rand.Read(h.hdr.salt[:]); err != nil {
		return err
	}
	key, check, err := deriveKey(passphrase, &h.hdr)
	if err != nil {
		return err
	}
	h.key, h.hdr.check = key, check
	return h.write(nil)
}

// unlock derives the file key from the passphrase and loads the keys.
func (h *HSM) unlock(data, passphrase []byte) error {
	hdr, _, _, err := parseHeader(data)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, h.path)
	}
	key, check, err := deriveKey(passphrase, &hdr)
	if err != nil {
		return err
	}
	if !secretEqual(check[:], hdr.check[:]) {
		key.Destroy()
		return fmt.Errorf("%w for %s", errWrongPassphrase, h.path)
	}
	entries, err := open(key, data)
	if err != nil {
		key.Destroy()
		return fmt.Errorf("%w (%s)", err, h.path)
	}
	h.key, h.hdr = key, hdr
	return h.load(entries)
}

// reload re-reads the file to see keys that other processes created.
func (h *HSM) reload() error {
	unlock, err := lockFile(h.path, false)
	if err != nil {
		return err
	}
	defer unlock()
	entries, err := h.readEntries()
	if err != nil {
		return err
	}
	return h.load(entries)
}

// readEntries reads and decrypts the current file. The caller holds a lock.
func (h *HSM) readEntries() ([]entry, error) {
	data, err := readFile(h.path)
	if err != nil {
		return nil, err
	}
	hdr, _, _, err := parseHeader(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, h.path)
	}
	if hdr != h.hdr {
		return nil, fmt.Errorf("soft: %s was replaced by another soft HSM file since it was opened", h.path)
	}
	entries, err := open(h.key, data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, h.path)
	}
	return entries, nil
}

// mutate applies change to the file's entries under an exclusive lock and
// writes the result atomically. On any error nothing changes.
func (h *HSM) mutate(change func([]entry) ([]entry, error)) error {
	unlock, err := lockFile(h.path, true)
	if err != nil {
		return err
	}
	defer unlock()
	entries, err := h.readEntries()
	if err != nil {
		return err
	}
	if entries, err = change(entries); err != nil {
		return err
	}
	if err := h.write(entries); err != nil {
		return err
	}
	return h.load(entries)
}

// write seals entries and replaces the file atomically.
func (h *HSM) write(entries []entry) error {
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	data, err := seal(h.key, &h.hdr, nonce, entries)
	if err != nil {
		return err
	}
	return writeFileAtomic(h.path, data)
}

// Info implements hsm.HSM.
func (h *HSM) Info() hsm.Info {
	return hsm.Info{
		Backend:     "soft",
		Token:       h.path,
		Description: "Strongroom soft HSM (pure Go, keys sealed in a file; development and tests only)",
		OAEPHashes:  []hsm.OAEPHash{hsm.OAEPSHA256, hsm.OAEPSHA512, hsm.OAEPSHA1},
	}
}

// Random implements hsm.HSM.
func (h *HSM) Random(ctx context.Context, n int) ([]byte, error) {
	if n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("soft: random length %d out of range", n)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Close destroys ephemeral keys and forgets the file key.
func (h *HSM) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	for k := range h.eph {
		k.wipe()
	}
	for _, k := range h.sec {
		k.wipe()
	}
	h.eph, h.sec, h.enc, h.sign = nil, nil, nil, nil
	h.key.Destroy()
	return nil
}

func (h *HSM) checkOpen() error {
	if h.closed {
		return errors.New("soft: HSM is closed")
	}
	return nil
}

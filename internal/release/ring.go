package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Meta describes an opened release, without its secrets.
type Meta struct {
	ID         string
	Kind       uint8
	Iterations uint32
	Created    time.Time // when its bundle was sealed
	Issued     time.Time // when the release was planned: what orders releases
	PlanDigest [32]byte
}

// Ring holds the releases a regional node has opened (S7): their secrets
// live only sealed in an encrypted key cache, and are re-opened through the
// regional HSM if the cache ever drops them. It also remembers every bundle
// that failed to validate and why, so that the node reports not ready.
type Ring struct {
	h     hsm.HSM
	trust Trust
	cache *keycache.Cache

	mu      sync.RWMutex
	bundles map[string][]byte // release id → the validated bundle
	meta    map[string]Meta
	failed  map[string]string // bundle name → why it failed
}

// ErrUnknownRelease: no opened release has that id.
var ErrUnknownRelease = errors.New("release: no such release is loaded")

// NewRing makes an empty ring that opens bundles with h for trust and keeps
// their secrets in cache.
func NewRing(h hsm.HSM, trust Trust, cache *keycache.Cache) *Ring {
	return &Ring{h: h, trust: trust, cache: cache,
		bundles: map[string][]byte{}, meta: map[string]Meta{}, failed: map[string]string{}}
}

func cacheID(id, name string) string { return "release/" + id + "/" + name }

// Load verifies and opens one installed bundle (named by name, e.g. its file
// or database key). On failure the ring records it, which keeps the node not
// ready, and returns the error. A bundle for an already loaded release id is
// accepted only if it is byte-for-byte the same bundle.
func (r *Ring) Load(ctx context.Context, name string, data []byte) (Meta, error) {
	rel, err := Open(ctx, r.h, data, r.trust)
	return r.loadOpened(name, data, rel, err)
}

// Add is Load for a bundle offered to a running node (release install): a
// bundle that fails is refused and not installed, so it does not make the
// node not ready.
func (r *Ring) Add(ctx context.Context, name string, data []byte) (Meta, error) {
	rel, err := Open(ctx, r.h, data, r.trust)
	return r.add(name, data, rel, err)
}

// loadOpened is Load once the bundle is opened (rel), or failed to open
// (err): LoadAll opens bundles concurrently and then loads each with it,
// in order.
func (r *Ring) loadOpened(name string, data []byte, rel *Release, err error) (Meta, error) {
	m, err := r.add(name, data, rel, err)
	if err != nil {
		r.fail(name, err)
	}
	return m, err
}

// add is Add once the bundle is opened (rel), or failed to open (err): it
// puts the release's secrets in the cache and the release in the ring, and
// destroys rel.
func (r *Ring) add(name string, data []byte, rel *Release, err error) (Meta, error) {
	if err != nil {
		return Meta{}, err
	}
	defer rel.Destroy()
	m := Meta{ID: rel.ID, Kind: rel.Kind, Iterations: rel.Iterations, Created: rel.Created, Issued: rel.Issued, PlanDigest: rel.PlanDigest}

	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.bundles[m.ID]; ok && !bytes.Equal(old, data) {
		return Meta{}, fmt.Errorf("release: %s conflicts with the installed bundle of release %s", name, m.ID)
	}
	for n, s := range map[string]secret.Key{SecretKDFSeed: rel.Seed, SecretKDFSalt: rel.Salt, SecretTWK: rel.TWK} {
		if err := r.cache.Put(cacheID(m.ID, n), s); err != nil {
			return Meta{}, fmt.Errorf("release: cache %s of %s: %w", n, m.ID, err)
		}
	}
	r.bundles[m.ID] = bytes.Clone(data)
	r.meta[m.ID] = m
	delete(r.failed, name)
	return m, nil
}

func (r *Ring) fail(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed[name] = err.Error()
}

// Secret returns a copy of one secret of a loaded release (the caller
// destroys it). If the cache dropped it, the bundle is opened again through
// the HSM.
func (r *Ring) Secret(ctx context.Context, id, name string) (secret.Key, error) {
	r.mu.RLock()
	data, ok := r.bundles[id]
	r.mu.RUnlock()
	if !ok {
		return secret.Key{}, fmt.Errorf("%w: %q", ErrUnknownRelease, id)
	}
	return r.cache.GetOrLoad(ctx, cacheID(id, name), func(ctx context.Context) (secret.Key, error) {
		rel, err := Open(ctx, r.h, data, r.trust)
		if err != nil {
			return secret.Key{}, err
		}
		defer rel.Destroy()
		var k secret.Key
		switch name {
		case SecretKDFSeed:
			k = rel.Seed
		case SecretKDFSalt:
			k = rel.Salt
		case SecretTWK:
			k = rel.TWK
		default:
			return secret.Key{}, fmt.Errorf("release: no secret named %q", name)
		}
		return secret.New(k.Bytes()) // a copy: the cache takes ownership
	})
}

// Meta returns a loaded release's description.
func (r *Ring) Meta(id string) (Meta, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.meta[id]
	if !ok {
		return Meta{}, fmt.Errorf("%w: %q", ErrUnknownRelease, id)
	}
	return m, nil
}

// Current is the newest loaded release, by the time it was issued (not when
// its bundle was sealed: an export of an old release to this region is not
// newer than the releases planned after it): the one new tenant secrets are
// wrapped under.
func (r *Ring) Current() (Meta, error) {
	all := r.Releases()
	if len(all) == 0 {
		return Meta{}, fmt.Errorf("%w: no release is installed", ErrUnknownRelease)
	}
	return all[len(all)-1], nil
}

// CurrentTWK is the current release (Current) and its tenant wrapping key,
// which the caller destroys: what a new tenant secret or export key is
// wrapped under.
func (r *Ring) CurrentTWK(ctx context.Context) (Meta, secret.Key, error) {
	cur, err := r.Current()
	if err != nil {
		return Meta{}, secret.Key{}, fmt.Errorf("release: no release to wrap under: %w", err)
	}
	twk, err := r.Secret(ctx, cur.ID, SecretTWK)
	if err != nil {
		return Meta{}, secret.Key{}, fmt.Errorf("release: the TWK of release %s: %w", cur.ID, err)
	}
	return cur, twk, nil
}

// Releases lists the loaded releases, oldest issued first (then by when
// their bundles were sealed, then by id: plans made in the same second).
func (r *Ring) Releases() []Meta {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Meta, 0, len(r.meta))
	for _, m := range r.meta {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Issued.Equal(out[j].Issued) {
			return out[i].Issued.Before(out[j].Issued)
		}
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Problems lists what keeps the node from being ready: one line per
// installed bundle that failed to validate ("NAME: why"), by name, or that
// no release is installed. It is empty when the node is ready.
func (r *Ring) Problems() []string {
	failed, none := r.problems()
	if none {
		return append(failed, "no release is installed")
	}
	return failed
}

// problems returns the failed bundles' lines, by name, and whether no
// release is loaded, read at one moment.
func (r *Ring) problems() (failed []string, none bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for n, why := range r.failed {
		failed = append(failed, n+": "+why)
	}
	sort.Strings(failed)
	return failed, len(r.meta) == 0
}

// Ready is nil when at least one release is loaded and no installed bundle
// failed; otherwise it says which bundles failed and why.
func (r *Ring) Ready() error {
	failed, none := r.problems()
	switch {
	case len(failed) > 0:
		return fmt.Errorf("release: %d bundle(s) failed to validate: %s", len(failed), strings.Join(failed, "; "))
	case none:
		return errors.New("release: no release is installed")
	}
	return nil
}

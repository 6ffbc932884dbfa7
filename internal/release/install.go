package release

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/reason"
)

// The errors of installing a bundle, for errors.Is.
var (
	// ErrInvalidBundle: the bundle does not decode, does not verify
	// against the region's trust, or does not open in its HSM. Nothing was
	// installed. The error is a *BundleError, which says why.
	ErrInvalidBundle = errors.New("release: invalid bundle")
	// ErrInstalledOther: another bundle of the same release is installed.
	// The error is an *InstalledOtherError, which names the release.
	ErrInstalledOther = errors.New("release: another bundle of this release is installed")
)

// InstalledOtherError is a bundle of release ID, another of which is
// installed.
type InstalledOtherError struct{ ID string }

func (e *InstalledOtherError) Error() string {
	return "another bundle of release " + e.ID + " is installed"
}

// Is makes errors.Is(err, ErrInstalledOther) true.
func (e *InstalledOtherError) Is(target error) bool { return target == ErrInstalledOther }

// BundleError is a bundle that Install refused; Err says why.
type BundleError struct{ Err error }

func (e *BundleError) Error() string { return e.Err.Error() }

// Unwrap returns why.
func (e *BundleError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidBundle) true.
func (e *BundleError) Is(target error) bool { return target == ErrInvalidBundle }

// Installations is where a region keeps its installed bundles
// (internal/store.Store).
type Installations interface {
	Releases(ctx context.Context) ([]Installation, error)
	InstallRelease(ctx context.Context, r Installation, rec audit.Entry) (Installation, error)
}

// Installer loads a region's installed bundles into a node's ring, and
// installs new ones: verified and opened in the regional HSM first, then
// stored. It is safe for concurrent use.
type Installer struct {
	ring *Ring
	st   Installations
	now  func() time.Time
}

// NewInstaller returns the Installer of ring over st. now is the clock; nil
// means time.Now.
func NewInstaller(ring *Ring, st Installations, now func() time.Time) *Installer {
	if now == nil {
		now = time.Now
	}
	return &Installer{ring: ring, st: st, now: now}
}

// LoadAll loads every installed bundle into the ring (S7). A bundle that
// fails keeps the node not ready (Ring.Ready names it); it does not stop
// the others. report, if not nil, hears of each bundle's outcome, from
// LoadAll's goroutine, in the order the store lists them.
//
// The bundles are verified and opened (the HSM's RSA decryption: most of a
// node's startup) by up to GOMAXPROCS goroutines at once, and then put in
// the ring one by one in the store's order, as Ring.Load would: the ring
// ends the same, and the same bundles fail with the same errors, whatever
// the order the openings finish in.
func (in *Installer) LoadAll(ctx context.Context, report func(id string, m Meta, err error)) error {
	rs, err := in.st.Releases(ctx)
	if err != nil {
		return fmt.Errorf("release: listing the installed releases: %w", err)
	}
	type opening struct {
		done chan struct{} // closed when rel and err are set
		rel  *Release
		err  error
	}
	openings := make([]opening, len(rs))
	for i := range openings {
		openings[i].done = make(chan struct{})
	}
	var next atomic.Int64
	for range min(runtime.GOMAXPROCS(0), len(rs)) {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(rs) {
					return
				}
				o := &openings[i]
				o.rel, o.err = Open(ctx, in.ring.h, rs[i].Bundle, in.ring.trust)
				close(o.done)
			}
		}()
	}
	// Every opening is waited for and passed to the ring, which destroys
	// its secrets; if report panics, the rest are destroyed here.
	defer func() {
		for i := range openings {
			<-openings[i].done
			if openings[i].rel != nil {
				openings[i].rel.Destroy()
			}
		}
	}()
	for i, r := range rs {
		o := &openings[i]
		<-o.done
		m, err := in.ring.loadOpened(r.ID, r.Bundle, o.rel, o.err)
		o.rel = nil
		if report != nil {
			report(r.ID, m, err)
		}
	}
	return nil
}

// Install verifies and opens a bundle (Ring.Add) and only then stores it,
// with rec; installing the same bundle again succeeds (and is recorded). A
// bundle that fails to verify or open is ErrInvalidBundle, and another
// bundle of an installed release ErrInstalledOther: neither is installed,
// and neither makes the node not ready.
func (in *Installer) Install(ctx context.Context, rec *audit.Entry, bundle []byte) (Meta, Installation, error) {
	// The bundle's claimed release id names it in the ring (as at
	// startup), so that its readiness problem and a later fix meet under
	// one name.
	der, err := Decode(bundle)
	if err != nil {
		return Meta{}, Installation{}, &BundleError{reason.Wrap(ErrInvalidBundle, err, "this is not a release bundle file (PEM)")}
	}
	claimed, err := Parse(der)
	if err == nil {
		err = plan.ValidRelease(claimed.Release)
	}
	if err != nil {
		return Meta{}, Installation{}, &BundleError{reason.Wrap(ErrInvalidBundle, err, "the bundle is not one a ceremony wrote: it was altered or corrupted, or is not a bundle")}
	}
	// A different bundle under an installed id is refused before it can
	// mark the loaded release as failed.
	installed, err := in.st.Releases(ctx)
	if err != nil {
		return Meta{}, Installation{}, err
	}
	for _, r := range installed {
		if r.ID == claimed.Release && string(r.Bundle) != string(bundle) {
			return Meta{}, Installation{}, &InstalledOtherError{ID: r.ID}
		}
	}
	m, err := in.ring.Add(ctx, claimed.Release, bundle)
	if err != nil {
		if ctx.Err() != nil {
			return Meta{}, Installation{}, ctx.Err()
		}
		return Meta{}, Installation{}, &BundleError{err}
	}
	r, err := in.st.InstallRelease(ctx, Installation{ID: m.ID, Bundle: bundle, Installed: in.now()}, *rec)
	if err != nil {
		return Meta{}, Installation{}, err
	}
	return m, r, nil
}

// Installed lists the installed releases, oldest first.
func (in *Installer) Installed(ctx context.Context) ([]Installation, error) {
	return in.st.Releases(ctx)
}

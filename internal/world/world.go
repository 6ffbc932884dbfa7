// Package world builds a whole Strongroom installation in one process: a
// primary HSM ([enroll.InitPrimary]), regional HSMs it enrolls
// ([enroll.InitRegion], [enroll.Certify]), crypto officers ([officer.New]),
// their plans ([plan.New], [plan.Approve]) and release ceremonies
// ([ceremony.Run]) with a bundle for every region.
//
// It is for development ('strongroom dev') and tests, never for production:
// its HSMs are soft HSMs by default, and every officer's key is in one place,
// in memory and under one passphrase, so that one process can approve its
// own plans.
//
// The stages can be used separately: [New] makes the primary, the regions
// and the officers; [World.Enroll] adds a region later; [World.Plan] and
// [World.Approve] make a plan and its approvals; [World.Release] runs a whole
// release ceremony. [NewPrimary] and [NewOfficer] make one part on its own.
package world

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
)

// Options say what New builds. Zero fields take the defaults given.
type Options struct {
	// Regions are the regions New enrolls, in order; nil means one, eu1.
	Regions []string
	// Officers are the crypto officers' names, in order; nil means alice,
	// bob and carol.
	Officers []string
	// Quorum is the plans' quorum; 0 means a majority of each plan's
	// officers.
	Quorum uint8
	// Iterations is the plans' PBKDF2 count; 0 means plan.MinIterations,
	// which keeps derivations cheap (plan.DefaultIterations for people).
	Iterations uint32
	// Now is the time of the set-up (HSM keys, enrollment, officer keys) and
	// of plans and approvals; zero means time.Now().
	Now time.Time
	// Clock is the ceremonies' clock; nil means Now, standing still.
	Clock func() time.Time
	// Validity is the region certificates' validity; 0 means
	// enroll.DefaultValidity.
	Validity time.Duration
	// AllowSHA1 keeps RSA-OAEP with SHA-1 among the regions' certified
	// hashes, as SoftHSM2 needs (see [enroll.CertifyOptions]).
	AllowSHA1 bool
	// Passphrase seals the officers' key files and the default soft HSMs;
	// nil means "world passphrase".
	Passphrase []byte
	// Dir holds the default soft HSMs' files; "" means a temporary
	// directory that Close removes.
	Dir string
	// OpenHSM, if set, opens the HSM of a region, or of the primary when
	// region is "": a fixture puts one on PKCS#11 this way. A nil HSM (and
	// no error) means the default, a soft HSM in Dir. The World owns what it
	// returns and closes it. New and Enroll call it from their own
	// goroutine, one HSM at a time, before any key is made, so a test's
	// hook may call t.Skip or t.Fatal.
	OpenHSM func(ctx context.Context, region string) (hsm.HSM, error)
}

// World is a primary, its enrolled regions and the officers. Its methods
// may be called concurrently, except Enroll and Close.
type World struct {
	Primary  *Primary
	Regions  map[string]*Region  // by name
	Officers map[string]*Officer // by name

	opts     Options
	regions  []string // in order of enrollment
	officers []string // in Options order
	hsms     []hsm.HSM
	tmp      string // removed by Close
}

// New opens the HSMs, initializes the primary, enrolls the regions and
// makes the officers. The slow parts (RSA-4096 keys, scrypt) run in
// parallel. Close releases what it made.
func New(ctx context.Context, opts Options) (*World, error) {
	opts = opts.withDefaults()
	w := &World{Regions: map[string]*Region{}, Officers: map[string]*Officer{}, opts: opts}
	if err := unique("region", opts.Regions); err != nil {
		return nil, err
	}
	if err := unique("officer", opts.Officers); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok { // an error, or a hook's t.Skip
			w.Close()
		}
	}()
	if w.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "strongroom-world-")
		if err != nil {
			return nil, fmt.Errorf("world: %w", err)
		}
		w.tmp, w.opts.Dir = dir, dir
	}
	primaryHSM, err := w.open(ctx, "")
	if err != nil {
		return nil, err
	}
	regionHSMs := make([]hsm.HSM, len(opts.Regions))
	for i, name := range opts.Regions {
		if regionHSMs[i], err = w.open(ctx, name); err != nil {
			return nil, err
		}
	}

	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		errs     []error
		requests = make([][]byte, len(opts.Regions))
	)
	fail := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}
	wg.Go(func() {
		var err error
		if w.Primary, err = NewPrimary(ctx, primaryHSM, opts.Now); err != nil {
			fail("primary", err)
		}
	})
	for i, name := range opts.Regions {
		wg.Go(func() {
			var err error
			if requests[i], err = enroll.InitRegion(ctx, regionHSMs[i], name, opts.Now); err != nil {
				fail("region "+name, err)
			}
		})
	}
	for _, name := range opts.Officers {
		wg.Go(func() {
			o, err := NewOfficer(name, opts.Passphrase, opts.Now)
			if err != nil {
				fail("officer "+name, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			w.Officers[name] = o
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("world: %w", errors.Join(errs...))
	}
	w.officers = opts.Officers
	for i, name := range opts.Regions {
		if _, err := w.add(ctx, name, regionHSMs[i], requests[i]); err != nil {
			return nil, err
		}
	}
	ok = true
	return w, nil
}

func (o Options) withDefaults() Options {
	if o.Regions == nil {
		o.Regions = []string{"eu1"}
	}
	if o.Officers == nil {
		o.Officers = []string{"alice", "bob", "carol"}
	}
	if o.Iterations == 0 {
		o.Iterations = plan.MinIterations
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Clock == nil {
		now := o.Now
		o.Clock = func() time.Time { return now }
	}
	if o.Passphrase == nil {
		o.Passphrase = []byte("world passphrase")
	}
	o.Regions, o.Officers = slices.Clone(o.Regions), slices.Clone(o.Officers)
	return o
}

func unique(what string, names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			return fmt.Errorf("world: %s %s named twice", what, n)
		}
		seen[n] = true
	}
	return nil
}

// open opens the HSM of region (the primary's if ""), through the hook or
// as a soft HSM in the world's directory, and keeps it for Close.
func (w *World) open(ctx context.Context, region string) (hsm.HSM, error) {
	var h hsm.HSM
	var err error
	if w.opts.OpenHSM != nil {
		h, err = w.opts.OpenHSM(ctx, region)
	}
	if h == nil && err == nil {
		file := "primary.hsm"
		if region != "" {
			file = "region-" + region + ".hsm"
		}
		h, err = soft.Open(ctx, filepath.Join(w.opts.Dir, file), w.opts.Passphrase, soft.Options{Create: true})
	}
	if err != nil {
		if region == "" {
			return nil, fmt.Errorf("world: opening the primary HSM: %w", err)
		}
		return nil, fmt.Errorf("world: opening the HSM of region %s: %w", region, err)
	}
	w.hsms = append(w.hsms, h)
	return h, nil
}

// Trust is what region pins to open its bundles: the world's primary.
func (w *World) Trust(region string) release.Trust {
	return release.Trust{Primary: w.Primary.Public, Region: region}
}

// Close closes the HSMs the world opened, destroys the officers' signers
// and removes the temporary directory, if the world made one.
func (w *World) Close() error {
	for _, o := range w.Officers {
		o.Signer.Destroy()
	}
	var errs []error
	for _, h := range w.hsms {
		errs = append(errs, h.Close())
	}
	w.hsms = nil
	if w.tmp != "" {
		errs = append(errs, os.RemoveAll(w.tmp))
		w.tmp = ""
	}
	return errors.Join(errs...)
}

package world

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/ceremony"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
)

// A Spec says what a plan holds and, for Release, who approves it. Zero
// fields take the world's defaults.
type Spec struct {
	Regions    []string // nil means every region, in order of enrollment
	Officers   []string // nil means every officer
	Quorum     uint8    // 0 means Options.Quorum
	Iterations uint32   // 0 means Options.Iterations
	// Created is the time of the plan and of its approvals and, in Release,
	// the ceremony's clock, standing still. Zero means Options.Now (and
	// Options.Clock).
	Created time.Time
	// Approvers approve the plan in Release; nil means the first Quorum of
	// Officers.
	Approvers []string
}

// fill fills in what s leaves to the world's defaults.
func (w *World) fill(s Spec) Spec {
	if s.Regions == nil {
		s.Regions = w.regions
	}
	if s.Officers == nil {
		s.Officers = w.officers
	}
	if s.Quorum == 0 {
		s.Quorum = w.opts.Quorum
	}
	if s.Quorum == 0 {
		s.Quorum = uint8(len(s.Officers)/2 + 1)
	}
	if s.Iterations == 0 {
		s.Iterations = w.opts.Iterations
	}
	if s.Created.IsZero() {
		s.Created = w.opts.Now
	}
	if s.Approvers == nil && int(s.Quorum) <= len(s.Officers) {
		s.Approvers = s.Officers[:s.Quorum]
	}
	return s
}

// Plan makes a plan of kind for release id at the world's primary.
func (w *World) Plan(kind plan.Kind, id string, s Spec) (*plan.Plan, error) {
	s = w.fill(s)
	regions, err := pick("region", w.Regions, s.Regions)
	if err != nil {
		return nil, err
	}
	officers, err := pick("officer", w.Officers, s.Officers)
	if err != nil {
		return nil, err
	}
	p := plan.Plan{Kind: kind, Release: id, Created: s.Created, Iterations: s.Iterations,
		Primary: w.Primary.Public.SigningKeyID(), Quorum: s.Quorum}
	for _, r := range regions {
		p.Regions = append(p.Regions, r.Cert)
	}
	for _, o := range officers {
		p.Officers = append(p.Officers, o.Public)
	}
	return plan.New(p)
}

// Approve returns the named officers' approvals of pl, signed at the plan's
// creation time, as the files NAME.approval.
func (w *World) Approve(pl *plan.Plan, names ...string) ([]plan.NamedApproval, error) {
	officers, err := pick("officer", w.Officers, names)
	if err != nil {
		return nil, err
	}
	out := make([]plan.NamedApproval, 0, len(officers))
	for _, o := range officers {
		out = append(out, plan.NamedApproval{Source: o.Name + ".approval", Data: plan.Approve(o.Signer, pl, pl.Created)})
	}
	return out, nil
}

// Release is what a release ceremony made, and from what.
type Release struct {
	Plan      *plan.Plan
	Approvals []plan.NamedApproval
	// Output is every file of the ceremony, as ceremony.Write takes them.
	Output *ceremony.Output
	// Bundles are the regions' bundle files (PEM), by region.
	Bundles     map[string][]byte
	PrimaryCopy []byte // RELEASE.primary (a release ceremony's only)
	Transcript  []byte // RELEASE.transcript, or RELEASE.export-TIME.transcript
}

// Release runs the release ceremony of id: a release plan as s says,
// approved by s.Approvers, at the primary. A refused ceremony returns its
// error (quorum not met, id already issued, ...).
func (w *World) Release(ctx context.Context, id string, s Spec) (*Release, error) {
	return w.run(ctx, plan.Release, id, s, nil)
}

// Export runs the export ceremony of release id from its primary copy: an
// export plan as s says (s.Regions: the regions to give it to), approved by
// s.Approvers. Its Bundles are the regions' bundles and Transcript the
// export's transcript; it has no PrimaryCopy.
func (w *World) Export(ctx context.Context, id string, primaryCopy []byte, s Spec) (*Release, error) {
	return w.run(ctx, plan.Export, id, s, primaryCopy)
}

func (w *World) run(ctx context.Context, kind plan.Kind, id string, s Spec, primaryCopy []byte) (*Release, error) {
	clock := w.opts.Clock
	if !s.Created.IsZero() {
		at := s.Created
		clock = func() time.Time { return at }
	}
	s = w.fill(s)
	pl, err := w.Plan(kind, id, s)
	if err != nil {
		return nil, err
	}
	approvals, err := w.Approve(pl, s.Approvers...)
	if err != nil {
		return nil, err
	}
	in := ceremony.Inputs{Plan: pl.Marshal(), Approvals: approvals, PrimaryCopy: primaryCopy}
	ceremonyOf := ceremony.Run
	if kind == plan.Export {
		ceremonyOf = ceremony.Export
	}
	out, err := ceremonyOf(ctx, w.Primary.HSM, in, clock)
	if err != nil {
		return nil, fmt.Errorf("world: %v %s: %w", kind, id, err)
	}
	r := &Release{Plan: pl, Approvals: approvals, Output: out, Bundles: map[string][]byte{},
		PrimaryCopy: out.Files[release.FileName(id, release.PrimaryCopy)]}
	for name, f := range out.Files {
		if strings.HasSuffix(name, ".transcript") {
			r.Transcript = f
		}
	}
	for _, c := range pl.Regions {
		r.Bundles[c.Region] = out.Files[release.FileName(id, c.Region)]
	}
	return r, nil
}

package plan

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/officer"
)

// Why CheckQuorum did not count an approval. ErrBadSignature is the other.
var (
	ErrUnreadable = errors.New("plan: not a readable approval")
	ErrNotOfficer = errors.New("plan: signed by a key that is not an officer of this plan")
	ErrOtherPlan  = errors.New("plan: approves a different plan")
	ErrDuplicate  = errors.New("plan: duplicate approval by an officer already counted")
	// ErrStale: the approval was signed too long before the ceremony, or
	// after it (CheckQuorumAt).
	ErrStale = errors.New("plan: the approval is too old, or from the future")
	// ErrQuorumNotMet is what Quorum.Err wraps.
	ErrQuorumNotMet = errors.New("plan: quorum not met")
)

// NamedApproval is an approval file and where it came from (e.g. its name).
type NamedApproval struct {
	Source string
	Data   []byte
}

// Result is the verdict on one approval.
type Result struct {
	Source   string
	Approval *Approval       // nil if unreadable or its signature does not verify
	Officer  *officer.Public // the plan's officer who signed; nil unless it approves this plan and is by one of its officers
	Err      error           // nil if counted; else wraps ErrUnreadable, ErrBadSignature, ErrNotOfficer, ErrOtherPlan, ErrStale or ErrDuplicate
}

// OK reports whether the approval counts towards the quorum.
func (r Result) OK() bool { return r.Err == nil }

func (r Result) String() string {
	if r.Err == nil {
		return fmt.Sprintf("%s: approved by %s", r.Source, r.Officer.Name)
	}
	return r.Source + ": " + strings.TrimPrefix(r.Err.Error(), "plan: ")
}

// Quorum is the outcome of CheckQuorum.
type Quorum struct {
	Required  int               // M, the plan's quorum
	Officers  int               // N, the plan's officers
	Results   []Result          // one per approval, in the order given
	Approvers []*officer.Public // distinct officers with a counted approval, in the order given
}

// Met reports whether at least Required distinct officers of the plan approved it.
func (q Quorum) Met() bool { return q.Required > 0 && len(q.Approvers) >= q.Required }

// String sums the outcome up in one line, e.g. "quorum not met: 1 of 2
// required approvals (alice); bob.approval: signed by a key that is not an
// officer of this plan (key id 1f2e...)".
func (q Quorum) String() string {
	state := "quorum met"
	if !q.Met() {
		state = "quorum not met"
	}
	return state + q.detail()
}

// Err is nil if the quorum is met, else an error wrapping ErrQuorumNotMet
// that says what was counted and why each other approval was not.
func (q Quorum) Err() error {
	if q.Met() {
		return nil
	}
	return fmt.Errorf("%w%s", ErrQuorumNotMet, q.detail())
}

func (q Quorum) detail() string {
	names := make([]string, len(q.Approvers))
	for i, o := range q.Approvers {
		names[i] = o.Name
	}
	who := strings.Join(names, ", ")
	if who == "" {
		who = "none"
	}
	parts := []string{fmt.Sprintf(": %d of %d required approvals (%s)", len(q.Approvers), q.Required, who)}
	for _, r := range q.Results {
		if r.Err != nil {
			parts = append(parts, r.String())
		}
	}
	return strings.Join(parts, "; ")
}

// CheckQuorum checks each approval against p and counts the distinct
// officers of p who approved it. An approval counts if it parses, its
// signature verifies, it names p's digest (and p's release and kind), it is
// signed by one of p's officers, and that officer is not already counted.
//
// CheckQuorum takes approvals of any age: a region checks, long after the
// ceremony, that a bundle's plan was approved. The ceremony itself uses
// CheckQuorumAt.
func CheckQuorum(p *Plan, approvals []NamedApproval) Quorum {
	return checkQuorum(p, approvals, nil)
}

// Window is when an approval counts at a ceremony: signed at most MaxAge
// before Now, and at most MaxSkew after it or before the plan's creation
// (the officers' clocks).
type Window struct {
	Now     time.Time
	MaxAge  time.Duration
	MaxSkew time.Duration
}

func (w *Window) check(a *Approval, planned time.Time) error {
	if w == nil {
		return nil
	}
	switch {
	case a.Time.Before(planned.Add(-w.MaxSkew)):
		return fmt.Errorf("%w: signed %s, before the plan was made (%s)", ErrStale,
			a.Time.Format(time.RFC3339), planned.Format(time.RFC3339))
	case a.Time.After(w.Now.Add(w.MaxSkew)):
		return fmt.Errorf("%w: signed %s, after the ceremony's clock (%s)", ErrStale,
			a.Time.Format(time.RFC3339), w.Now.UTC().Format(time.RFC3339))
	case a.Time.Before(w.Now.Add(-w.MaxAge)):
		return fmt.Errorf("%w: signed %s, more than %s before the ceremony; approve the plan again", ErrStale,
			a.Time.Format(time.RFC3339), w.MaxAge)
	}
	return nil
}

// CheckQuorumAt is CheckQuorum at a ceremony: an approval also has to be
// signed within w, so that approvals collected for one ceremony cannot be
// kept and brought to another much later.
func CheckQuorumAt(p *Plan, approvals []NamedApproval, w Window) Quorum {
	return checkQuorum(p, approvals, &w)
}

func checkQuorum(p *Plan, approvals []NamedApproval, w *Window) Quorum {
	c := p.canonical()
	digest := p.Digest()
	q := Quorum{Required: int(c.Quorum), Officers: len(c.Officers)}
	counted := map[[32]byte]string{} // officer id -> source of the counted approval
	for _, na := range approvals {
		r := Result{Source: na.Source}
		a, err := ParseApproval(na.Data)
		switch {
		case errors.Is(err, ErrBadSignature):
			r.Err = err
		case err != nil:
			r.Err = fmt.Errorf("%w: %s", ErrUnreadable, strings.TrimPrefix(err.Error(), "plan: "))
		default:
			r.Approval = a
			r.Err = c.check(a, digest, counted, &r)
			if r.Err == nil {
				r.Err = w.check(a, c.Created)
			}
		}
		if r.Err == nil {
			counted[a.OfficerID()] = na.Source
			q.Approvers = append(q.Approvers, r.Officer)
		}
		q.Results = append(q.Results, r)
	}
	return q
}

// check judges a verified approval of the canonical plan c.
func (c *Plan) check(a *Approval, digest [32]byte, counted map[[32]byte]string, r *Result) error {
	if a.PlanDigest != digest {
		return fmt.Errorf("%w: it approves release %s (%s) with digest %s, this plan is release %s (%s) with digest %s",
			ErrOtherPlan, a.Release, a.Kind, short(a.PlanDigest), c.Release, c.Kind, short(digest))
	}
	if a.Release != c.Release || a.Kind != c.Kind {
		return fmt.Errorf("%w: it names this plan's digest but release %s (%s), not %s (%s)", ErrOtherPlan, a.Release, a.Kind, c.Release, c.Kind)
	}
	for _, o := range c.Officers {
		if o.Key.Equal(a.Officer) {
			r.Officer = o
		}
	}
	if r.Officer == nil {
		return fmt.Errorf("%w (key id %s)", ErrNotOfficer, short(a.OfficerID()))
	}
	if src, ok := counted[a.OfficerID()]; ok {
		return fmt.Errorf("%w (%s, counted from %s)", ErrDuplicate, r.Officer.Name, src)
	}
	return nil
}

func short(id [32]byte) string { return hex.EncodeToString(id[:8]) }

// Package plan owns ceremony plans and their approvals.
//
// Once per release, the primary site writes a ceremony plan: which release,
// which primary signing key, which certified regions, the PBKDF2 iteration
// count, and which crypto officers with what quorum M of N must approve it.
// The plan has exactly one binary encoding, so its SHA-256 digest names it.
// Each officer approves remotely and independently, by signing the digest
// with their officer key (package officer) into a separate approval file;
// CheckQuorum counts the approvals. The byte-level formats are in
// docs/ceremony-formats.md.
package plan

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// Kind is what a ceremony does.
type Kind uint8

const (
	// Release issues a new release to the plan's regions.
	Release Kind = 1
	// Export gives an already issued release to regions enrolled later; the
	// plan's regions are the new ones.
	Export Kind = 2
)

func (k Kind) String() string {
	switch k {
	case Release:
		return "release"
	case Export:
		return "export"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == Release || k == Export }

// PBKDF2 iteration counts a plan may set.
const (
	DefaultIterations = 600_000
	MinIterations     = 100_000
	MaxIterations     = 10_000_000
)

// Limits on the lists of a plan.
const (
	MaxRegions  = 256
	MaxOfficers = 255
)

// Plan is a ceremony plan.
//
// Make one with New or Parse. Marshal, Raw, Digest, VerifyRegions, Officer
// and CheckQuorum work from the encoding New or Parse made: changing the
// fields afterwards does not change what they see.
type Plan struct {
	Kind       Kind
	Release    string
	Created    time.Time
	Iterations uint32     // PBKDF2 iteration count
	Primary    sign.KeyID // the primary signing key the plan is for
	Regions    []*enroll.Certificate
	Officers   []*officer.Public
	Quorum     uint8 // approvals needed, 1 ≤ Quorum ≤ len(Officers)

	raw []byte
}

var releaseRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`)

// ValidRelease checks a release id: a letter or digit, then up to 63
// letters, digits, dots, underscores or hyphens.
func ValidRelease(id string) error {
	if !releaseRE.MatchString(id) {
		return fmt.Errorf("plan: invalid release id %q: use a letter or digit followed by up to 63 letters, digits, '.', '_' or '-' (e.g. 2026-1)", id)
	}
	return nil
}

// New checks a plan and returns it in canonical form: Created truncated to
// the second in UTC, Iterations DefaultIterations if zero, regions sorted by
// name and officers by ID. Regions and officers must come from their files
// (enroll.ParseCertificate, officer.ParsePublic), since the plan embeds their
// binary encodings.
func New(p Plan) (*Plan, error) {
	if !p.Kind.Valid() {
		return nil, fmt.Errorf("plan: unknown plan kind %d", p.Kind)
	}
	if err := ValidRelease(p.Release); err != nil {
		return nil, err
	}
	if p.Created.IsZero() {
		return nil, errors.New("plan: the creation time is required")
	}
	p.Created = p.Created.UTC().Truncate(time.Second)
	if p.Created.Unix() < 0 || p.Created.Unix() > maxUnix {
		return nil, fmt.Errorf("plan: creation time %s out of range", p.Created.Format(time.RFC3339))
	}
	if p.Iterations == 0 {
		p.Iterations = DefaultIterations
	}
	for _, c := range p.Regions {
		if c == nil || len(c.Raw()) == 0 {
			return nil, errors.New("plan: every region certificate must be read from its file (enroll.ParseCertificate)")
		}
	}
	for _, o := range p.Officers {
		if o == nil || len(o.Marshal()) == 0 {
			return nil, errors.New("plan: every officer must be read from a public key file (officer.ParsePublic)")
		}
	}
	p.Regions = slices.Clone(p.Regions)
	slices.SortStableFunc(p.Regions, func(a, b *enroll.Certificate) int { return strings.Compare(a.Region, b.Region) })
	p.Officers = slices.Clone(p.Officers)
	slices.SortStableFunc(p.Officers, func(a, b *officer.Public) int {
		ia, ib := a.ID(), b.ID()
		return bytes.Compare(ia[:], ib[:])
	})
	der, err := p.encode()
	if err != nil {
		return nil, err
	}
	return ParseDER(der)
}

// Raw is the plan's canonical binary encoding (the PEM body).
func (p *Plan) Raw() []byte {
	if p.raw == nil {
		panic("plan: a Plan must be made by plan.New or plan.Parse")
	}
	return bytes.Clone(p.raw)
}

// Marshal returns the plan file (PEM).
func (p *Plan) Marshal() []byte { return encodePEM(PlanPEMType, p.Raw()) }

// Digest is the SHA-256 of the canonical encoding. It names the plan:
// approvals sign it.
func (p *Plan) Digest() [32]byte { return sha256.Sum256(p.Raw()) }

// canonical is the plan as its encoding says, whatever became of the fields.
func (p *Plan) canonical() *Plan {
	c, err := ParseDER(p.Raw())
	if err != nil {
		panic("plan: the canonical encoding does not parse: " + err.Error()) // unreachable
	}
	return c
}

// Officer returns the plan's officer with the given public key, or nil.
func (p *Plan) Officer(key ed25519.PublicKey) *officer.Public {
	for _, o := range p.canonical().Officers {
		if o.Key.Equal(key) {
			return o
		}
	}
	return nil
}

// VerifyRegions checks that the plan is for the primary's signing key and
// that every region certificate was signed by it and is valid at now.
func (p *Plan) VerifyRegions(primary *enroll.Primary, now time.Time) error {
	c := p.canonical()
	if id := primary.SigningKeyID(); c.Primary != id {
		return fmt.Errorf("plan: the plan is for primary signing key %s, not for %s", c.Primary, id)
	}
	for _, cert := range c.Regions {
		if err := cert.Verify(primary, now); err != nil {
			return fmt.Errorf("plan: region %s: %w", cert.Region, err)
		}
	}
	return nil
}

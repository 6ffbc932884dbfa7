// Package ceremony runs the High Assurance Virtual Ceremony at the primary
// HSM: with a quorum of officer approvals over a plan, and only then, it
// makes the per-release secrets inside the primary HSM and seals them to
// every region the plan names, recording each step in a signed, hash-chained
// transcript. It also exports an issued release to regions enrolled later.
//
// Run and Export return the files to write; Write puts them in place all at
// once. A refused ceremony returns an error and no file.
package ceremony

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/sign"
	"github.com/strongroom-kms/strongroom/internal/transcript"
)

// LedgerPrefix labels the primary HSM's ledger entries: one persistent,
// non-exportable key per issued release id, created before any secret. Its
// existence is what makes a release id impossible to issue twice, whatever
// happens to the files.
const LedgerPrefix = "strongroom-release/"

// ExportLedgerPrefix labels the ledger entries of exports: one per export
// plan (release id, "/", plan digest in hex), created before any key is
// unwrapped.
// Every export of a release is thus on record in the HSM, and an export plan
// runs once.
const ExportLedgerPrefix = "strongroom-export/"

// ErrIssued: the release id was already issued by this primary, or the
// export plan already ran.
var ErrIssued = errors.New("ceremony: release id already issued")

// A plan runs at a ceremony only if it was made at most ApprovalMaxAge
// before the ceremony's clock and at most ApprovalMaxSkew after it; an
// approval counts only if it was signed in the same window, and not before
// the plan was made (less ApprovalMaxSkew). The clock is the primary host's:
// the window keeps approvals from being saved up for a later ceremony, it
// does not bind whoever sets that clock.
const (
	ApprovalMaxAge  = 7 * 24 * time.Hour
	ApprovalMaxSkew = 5 * time.Minute
)

// Inputs are what the officers bring to the primary.
type Inputs struct {
	Plan      []byte               // the plan file (PEM)
	Approvals []plan.NamedApproval // the approval files
	// PrimaryCopy is the primary's copy of the release (RELEASE.primary),
	// needed by Export only.
	PrimaryCopy []byte
}

// Output is what a ceremony produced.
type Output struct {
	Release    string
	Files      map[string][]byte // file name → content
	Transcript *transcript.Log
}

// primary is the primary HSM with its role keys.
type primary struct {
	h     hsm.HSM
	enc   hsm.EncryptionKey
	sig   hsm.SigningKey
	pub   *enroll.Primary
	now   func() time.Time
	log   *transcript.Log
	files map[string][]byte
}

func openPrimary(ctx context.Context, h hsm.HSM, now func() time.Time) (*primary, error) {
	st, err := enroll.Inspect(ctx, h)
	if err != nil {
		return nil, err
	}
	if st.Role() != "primary" {
		return nil, fmt.Errorf("ceremony: the HSM is not an initialized primary (role %q); run 'strongroom hsm info'", st.Role())
	}
	if u := st.PrimaryEncryption.Use(); u != hsm.UseUnwrapOnly {
		return nil, fmt.Errorf("ceremony: the primary encryption key may %v: a primary copy sealed to it could be read without quorum; initialize the primary HSM again", u)
	}
	return &primary{
		h: h, enc: st.PrimaryEncryption, sig: st.PrimarySigning, now: now,
		pub: &enroll.Primary{
			Encryption: st.PrimaryEncryption.RSAPublicKey(),
			Signing:    st.PrimarySigning.ECDSAPublicKey(),
			OAEPHashes: h.Info().OAEPHashes,
		},
		files: map[string][]byte{},
	}, nil
}

func (p *primary) record(event string, kv ...string) error {
	_, err := p.log.Append(p.now(), event, kv...)
	return err
}

// check verifies the plan, its regions and its quorum, recording each check.
// On failure the error says what failed and why; nothing has been created.
func (p *primary) check(in Inputs, kind plan.Kind) (*plan.Plan, []byte, [][]byte, error) {
	pl, err := plan.Parse(in.Plan)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("ceremony: the plan: %w", err)
	}
	if pl.Kind != kind {
		return nil, nil, nil, fmt.Errorf("ceremony: the plan is of kind %v; this command needs kind %v", pl.Kind, kind)
	}
	sigID := p.pub.SigningKeyID()
	if pl.Primary != sigID {
		return nil, nil, nil, fmt.Errorf("ceremony: the plan is for primary signing key %s, this HSM holds %s", pl.Primary.Short(), sigID.Short())
	}
	p.log = transcript.New(pl.Release, uint8(kind), sigID)
	digest := pl.Digest()
	if err := p.record("plan.checked", "release", pl.Release, "kind", pl.Kind.String(), "digest", hex.EncodeToString(digest[:]),
		"iterations", fmt.Sprint(pl.Iterations), "quorum", fmt.Sprintf("%d of %d", pl.Quorum, len(pl.Officers))); err != nil {
		return nil, nil, nil, err
	}
	now := p.now()
	// The plan's creation orders the releases at every region: one dated
	// ahead would stay current there until that date, one dated back never
	// become current.
	if pl.Created.After(now.Add(ApprovalMaxSkew)) || pl.Created.Before(now.Add(-ApprovalMaxAge)) {
		return nil, nil, nil, fmt.Errorf("ceremony: the plan was made %s, not within %s before this ceremony's clock (%s) and %s after it; make the plan again (and check the clocks)",
			pl.Created.Format(time.RFC3339), ApprovalMaxAge, now.UTC().Format(time.RFC3339), ApprovalMaxSkew)
	}
	if err := pl.VerifyRegions(p.pub, now); err != nil {
		return nil, nil, nil, fmt.Errorf("ceremony: %w", err)
	}
	for _, c := range pl.Regions {
		if _, err := p.oaepFor(c); err != nil {
			return nil, nil, nil, err
		}
		if err := p.record("region.verified", "region", c.Region, "key", c.KeyID().String(),
			"not-after", c.NotAfter.Format(time.RFC3339)); err != nil {
			return nil, nil, nil, err
		}
	}
	q := plan.CheckQuorumAt(pl, in.Approvals, plan.Window{Now: now, MaxAge: ApprovalMaxAge, MaxSkew: ApprovalMaxSkew})
	var counted [][]byte
	for i, r := range q.Results {
		if r.OK() {
			block, _ := pem.Decode(in.Approvals[i].Data)
			counted = append(counted, block.Bytes)
			if err := p.record("approval.accepted", "source", r.Source, "officer", r.Officer.Name); err != nil {
				return nil, nil, nil, err
			}
		} else if err := p.record("approval.rejected", "source", r.Source, "reason", strings.TrimPrefix(r.Err.Error(), "plan: ")); err != nil {
			return nil, nil, nil, err
		}
	}
	if !q.Met() {
		return nil, nil, nil, fmt.Errorf("ceremony: refused, nothing was written: %w", q.Err())
	}
	if err := p.record("quorum.met", "officers", officerNames(q), "required", fmt.Sprint(pl.Quorum)); err != nil {
		return nil, nil, nil, err
	}
	der, _ := pem.Decode(in.Plan)
	return pl, der.Bytes, counted, nil
}

// oaepFor picks the best OAEP hash that the region's certificate allows and
// the primary HSM can wrap with.
func (p *primary) oaepFor(c *enroll.Certificate) (hsm.OAEPHash, error) {
	for _, h := range c.OAEPHashes {
		if p.h.Info().SupportsOAEP(h) {
			return h, nil
		}
	}
	return 0, fmt.Errorf("ceremony: no RSA-OAEP hash in common: region %s allows %v, the primary HSM wraps with %v (re-enroll the region with --allow-sha1-oaep if the primary can only do SHA-1)",
		c.Region, c.OAEPHashes, p.h.Info().OAEPHashes)
}

// session is the spec of the ceremony's working keys: session objects that
// may be wrapped (the masters, into the primary copy; the regions' secrets,
// into their bundles) and may wrap (the RWKs).
var session = hsm.KeySpec{Ephemeral: true, Exportable: true}

// masters are a release's master secrets inside the primary HSM, in
// release.SecretNames order.
type masters struct {
	keys []hsm.SecretKey
}

func (m *masters) destroy(ctx context.Context) { destroyAll(ctx, m.keys) }

func destroyAll(ctx context.Context, keys []hsm.SecretKey) {
	for _, k := range keys {
		if k != nil {
			k.Destroy(ctx)
		}
	}
}

// checkOf derives a master's check key and returns the primary copy's
// commitment to it, both inside the HSM. The master itself need not be
// exportable.
func checkOf(ctx context.Context, releaseID, name string, k hsm.SecretKey) ([32]byte, error) {
	ck, err := k.Derive(ctx, release.CheckContext(releaseID, name), session)
	if err != nil {
		return [32]byte{}, fmt.Errorf("ceremony: derive the check key of %s: %w", name, err)
	}
	defer ck.Destroy(ctx)
	c, err := ck.Digest(ctx, release.CommitmentPrefix(releaseID, release.PrimaryCopy, name))
	if err != nil {
		return [32]byte{}, fmt.Errorf("ceremony: commit to %s: %w", name, err)
	}
	return c, nil
}

// sealing is what every bundle of one ceremony shares.
type sealing struct {
	plan      *plan.Plan
	planDER   []byte
	approvals [][]byte
	issued    time.Time // the release plan's creation time
}

// seal writes one bundle into p.files: keys (in release.SecretNames order,
// with their commitments coms) wrapped under a fresh RWK made for this
// bundle alone, the RWK encrypted by encrypt to recipient.
func (p *primary) seal(ctx context.Context, in sealing, region string, recipient sign.KeyID,
	keys []hsm.SecretKey, coms [][32]byte, encrypt func(rwk hsm.SecretKey) ([]byte, hsm.OAEPHash, error)) error {
	who := region
	if region == release.PrimaryCopy {
		who = "(primary copy)"
	}
	rwk, err := p.h.GenerateSecretKey(ctx, session)
	if err != nil {
		return fmt.Errorf("ceremony: generate the release wrapping key for %s: %w", who, err)
	}
	defer rwk.Destroy(ctx)
	if err := p.record("rwk.generated", "region", who, "handle", "ephemeral session key"); err != nil {
		return err
	}
	rwkCT, oh, err := encrypt(rwk)
	if err != nil {
		return fmt.Errorf("ceremony: encrypt the release wrapping key for %s: %w", who, err)
	}
	b := &release.Bundle{
		Kind: uint8(in.plan.Kind), Release: in.plan.Release, Region: region, Iterations: in.plan.Iterations,
		Primary: p.pub.SigningKeyID(), Recipient: recipient, OAEPHash: oh, RWK: rwkCT,
		Plan: in.planDER, Approvals: in.approvals, Transcript: p.log.Head(), Created: p.now().UTC(), Issued: in.issued,
	}
	for i, name := range release.SecretNames {
		w, err := rwk.Wrap(ctx, keys[i], release.WrapContext(in.plan.Release, region, name))
		if err != nil {
			return fmt.Errorf("ceremony: wrap %s for %s: %w", name, who, err)
		}
		b.Secrets = append(b.Secrets, release.WrappedSecret{Name: name, Wrapped: w, Commitment: coms[i]})
	}
	der, err := b.Sign(p.sig)
	if err != nil {
		return err
	}
	file := release.Encode(der)
	name := b.Name()
	p.files[name] = file
	sum := sha256.Sum256(file)
	return p.record("bundle.sealed", "region", who, "file", name, "recipient", recipient.String(),
		"oaep", oh.String(), "sha256", hex.EncodeToString(sum[:]))
}

// sealRegions derives each region's own secrets from the masters, inside
// the HSM, and seals them to that region: no two regions hold the same key.
func (p *primary) sealRegions(ctx context.Context, m *masters, in sealing) error {
	for _, c := range in.plan.Regions {
		oh, err := p.oaepFor(c)
		if err != nil {
			return err
		}
		keys := make([]hsm.SecretKey, 0, len(release.SecretNames))
		coms := make([][32]byte, 0, len(release.SecretNames))
		err = func() error {
			for i, name := range release.SecretNames {
				k, err := m.keys[i].Derive(ctx, release.RegionContext(in.plan.Release, c.Region, name), session)
				if err != nil {
					return fmt.Errorf("ceremony: derive %s for %s: %w", name, c.Region, err)
				}
				keys = append(keys, k)
				com, err := k.Digest(ctx, release.CommitmentPrefix(in.plan.Release, c.Region, name))
				if err != nil {
					return fmt.Errorf("ceremony: commit to %s for %s: %w", name, c.Region, err)
				}
				coms = append(coms, com)
				if err := p.record("secret.derived", "region", c.Region, "name", name, "commitment", hex.EncodeToString(com[:])); err != nil {
					return err
				}
			}
			return p.seal(ctx, in, c.Region, c.KeyID(), keys, coms, func(rwk hsm.SecretKey) ([]byte, hsm.OAEPHash, error) {
				ct, err := rwk.WrapRSA(ctx, c.Encryption, oh)
				return ct, oh, err
			})
		}()
		destroyAll(ctx, keys)
		if err != nil {
			return err
		}
	}
	return nil
}

// finish signs the transcript and adds it to the files.
func (p *primary) finish(name string) (*Output, error) {
	if err := p.record("transcript.signed", "files", fmt.Sprint(len(p.files)+1)); err != nil {
		return nil, err
	}
	der, err := p.log.Sign(p.sig)
	if err != nil {
		return nil, err
	}
	p.files[name] = pem.EncodeToMemory(&pem.Block{Type: transcript.PEMType, Bytes: der})
	return &Output{Release: p.log.Release, Files: p.files, Transcript: p.log}, nil
}

// officerNames lists the officers counted towards a quorum.
func officerNames(q plan.Quorum) string {
	names := make([]string, len(q.Approvers))
	for i, o := range q.Approvers {
		names[i] = o.Name
	}
	return strings.Join(names, ", ")
}

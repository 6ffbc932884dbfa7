package release

import (
	"context"
	"crypto/aes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/armor"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keywrap"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// Trust is what a regional node pins: the primary's public keys, its own
// region name and, to hold the quorum even against whoever writes plans at
// the primary, the crypto officers it accepts.
type Trust struct {
	Primary *enroll.Primary
	Region  string
	// Officers, if set, is the roster: a bundle is accepted only if its plan
	// names no officer outside it and requires at least MinQuorum approvals.
	Officers *Roster
}

// Roster is the set of crypto officers a region accepts, and the least
// quorum their plans must require.
type Roster struct {
	IDs       map[[32]byte]string // officer id → name
	MinQuorum int
}

// check refuses a plan that names an officer outside the roster or asks for
// fewer approvals than its minimum.
func (r *Roster) check(pl *plan.Plan) error {
	for _, o := range pl.Officers {
		if _, ok := r.IDs[o.ID()]; !ok {
			return fmt.Errorf("release: its plan names officer %s (id %s), who is not in this region's officer roster", o.Name, o.ShortID())
		}
	}
	if int(pl.Quorum) < r.MinQuorum {
		return fmt.Errorf("release: its plan requires %d approvals, this region requires at least %d", pl.Quorum, r.MinQuorum)
	}
	return nil
}

// Release is an opened release: its secrets, in redacting types.
type Release struct {
	ID         string
	Kind       uint8
	Region     string
	Iterations uint32
	Created    time.Time // when the bundle was sealed
	Issued     time.Time // when the release was planned (Bundle.Issued)
	PlanDigest [32]byte
	Seed       secret.Key
	Salt       secret.Key
	TWK        secret.Key
	// Commitments to each secret, by name (this region's secrets: they
	// differ from region to region).
	Commitments map[string][32]byte
}

// Destroy wipes the secrets.
func (r *Release) Destroy() {
	r.Seed.Destroy()
	r.Salt.Destroy()
	r.TWK.Destroy()
}

// Encode armours a binary bundle as PEM, the form bundles travel in.
func Encode(der []byte) []byte { return armor.Encode(PEMType, der) }

// Decode unwraps a PEM bundle.
func Decode(data []byte) ([]byte, error) {
	der, err := armor.Decode(data, PEMType, 2*maxBundle)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return der, nil
}

// Verify checks everything about a bundle that needs no private key: the
// primary's signature, the plan and its quorum of approvals, and that the
// plan certifies the bundle's region with the key the RWK is encrypted to.
// It returns the parsed bundle and plan.
func Verify(data []byte, p *enroll.Primary) (*Bundle, *plan.Plan, error) {
	der, err := Decode(data)
	if err != nil {
		return nil, nil, err
	}
	b, err := Parse(der)
	if err != nil {
		return nil, nil, err
	}
	if err := b.VerifySignature(p); err != nil {
		return nil, nil, err
	}
	pl, err := plan.ParseDER(b.Plan)
	if err != nil {
		return nil, nil, fmt.Errorf("release: bundle %s: its plan: %w", b.Name(), err)
	}
	if pl.Release != b.Release || pl.Kind != plan.Kind(b.Kind) || pl.Iterations != b.Iterations || pl.Primary != b.Primary {
		return nil, nil, fmt.Errorf("release: bundle %s does not match its plan", b.Name())
	}
	// A release bundle was issued by its own plan. (An export carries the
	// time of the release plan it exports, from the primary's signed copy.)
	if b.Kind == KindRelease && !b.Issued.Equal(pl.Created) {
		return nil, nil, fmt.Errorf("release: bundle %s says the release was issued %s, which its plan (created %s) contradicts",
			b.Name(), b.Issued.Format(time.RFC3339), pl.Created.Format(time.RFC3339))
	}
	// The certificates were checked when the ceremony ran; check them again,
	// at the time the bundle was made (a certificate expiring later must not
	// make an installed release unreadable).
	if err := pl.VerifyRegions(p, b.Created); err != nil {
		return nil, nil, fmt.Errorf("release: bundle %s: %w", b.Name(), err)
	}
	if q := plan.CheckQuorum(pl, Approvals(b)); !q.Met() {
		return nil, nil, fmt.Errorf("release: bundle %s: %w", b.Name(), q.Err())
	}
	if b.Region == PrimaryCopy {
		if b.Recipient != p.EncryptionKeyID() {
			return nil, nil, fmt.Errorf("release: primary copy of %s is not encrypted to the primary encryption key", b.Release)
		}
		return b, pl, nil
	}
	for _, c := range pl.Regions {
		if c.Region == b.Region {
			if c.KeyID() != b.Recipient {
				return nil, nil, fmt.Errorf("release: bundle %s is encrypted to key %s, but the plan certifies %s for %s", b.Name(), b.Recipient.Short(), c.KeyID().Short(), b.Region)
			}
			return b, pl, nil
		}
	}
	return nil, nil, fmt.Errorf("release: bundle %s is for region %s, which its plan does not name", b.Name(), b.Region)
}

// Open verifies a region's bundle (Verify) for the pinned trust, decrypts its
// RWK with the regional HSM's encryption key, unwraps the secrets and checks
// them against their commitments. The RWK never outlives the call. The
// primary's copy of a release is refused: its masters are opened only inside
// the primary HSM, by an export ceremony.
func Open(ctx context.Context, h hsm.HSM, data []byte, trust Trust) (*Release, error) {
	b, pl, err := Verify(data, trust.Primary)
	if err != nil {
		return nil, err
	}
	if b.Region == PrimaryCopy {
		return nil, reason.New(ErrInvalidBundle, "%s is the primary's own copy of release %s: it is never opened outside the primary HSM; install a region's bundle", b.Name(), b.Release)
	}
	if b.Region != trust.Region {
		return nil, reason.New(ErrInvalidBundle, "bundle %s is for region %q; this node serves %q", b.Name(), b.Region, trust.Region)
	}
	if trust.Officers != nil {
		if err := trust.Officers.check(pl); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", b.Name(), err)
		}
	}
	label := enroll.LabelRegionEncryption
	ek, err := h.EncryptionKey(ctx, label)
	if err != nil {
		return nil, fmt.Errorf("release: the HSM has no %s key: %w", label, err)
	}
	if id, _ := sign.KeyIDOf(ek.Public()); id != b.Recipient {
		return nil, fmt.Errorf("release: bundle %s is encrypted to key %s, but this HSM's key is %s", b.Name(), b.Recipient.Short(), id.Short())
	}
	raw, err := ek.Decrypt(nil, b.RWK, b.OAEPHash.Options())
	if err != nil {
		return nil, fmt.Errorf("release: bundle %s: decrypt the release wrapping key: %w", b.Name(), err)
	}
	rwk, err := secret.New(raw)
	clear(raw)
	if err != nil {
		return nil, fmt.Errorf("release: bundle %s: the release wrapping key is not 256 bits", b.Name())
	}
	defer rwk.Destroy()

	r := &Release{
		ID: b.Release, Kind: b.Kind, Region: b.Region, Iterations: b.Iterations, Created: b.Created,
		Issued: b.Issued, PlanDigest: pl.Digest(), Commitments: map[string][32]byte{},
	}
	keys := map[string]*secret.Key{SecretKDFSeed: &r.Seed, SecretKDFSalt: &r.Salt, SecretTWK: &r.TWK}
	for _, ws := range b.Secrets {
		k, err := unwrapSecret(rwk, b.Release, b.Region, ws)
		if err != nil {
			r.Destroy()
			return nil, fmt.Errorf("release: bundle %s: %w", b.Name(), err)
		}
		*keys[ws.Name] = k
		r.Commitments[ws.Name] = ws.Commitment
	}
	return r, nil
}

// unwrapSecret unwraps one secret in software and checks its commitment.
func unwrapSecret(rwk secret.Key, releaseID, region string, ws WrappedSecret) (secret.Key, error) {
	kek := hsm.ContextKEK(rwk, WrapContext(releaseID, region, ws.Name))
	defer kek.Destroy()
	block, _ := aes.NewCipher(kek.Bytes())
	raw, err := keywrap.UnwrapPad(block, ws.Wrapped)
	if err != nil {
		return secret.Key{}, fmt.Errorf("secret %s does not unwrap (altered, or wrapped for another context)", ws.Name)
	}
	defer clear(raw)
	k, err := secret.New(raw)
	if err != nil {
		return secret.Key{}, fmt.Errorf("secret %s is not 256 bits", ws.Name)
	}
	c := Commit(releaseID, region, ws.Name, k)
	if subtle.ConstantTimeCompare(c[:], ws.Commitment[:]) != 1 {
		k.Destroy()
		return secret.Key{}, fmt.Errorf("secret %s does not match its commitment", ws.Name)
	}
	return k, nil
}

// Commit computes a region's secret's commitment in software.
func Commit(releaseID, region, name string, k secret.Key) [32]byte {
	h := sha256.New()
	h.Write(CommitmentPrefix(releaseID, region, name))
	h.Write(k.Bytes())
	var c [32]byte
	h.Sum(c[:0])
	return c
}

// Approvals returns a bundle's approvals in the form plan.CheckQuorum takes.
func Approvals(b *Bundle) []plan.NamedApproval {
	var named []plan.NamedApproval
	for i, a := range b.Approvals {
		named = append(named, plan.NamedApproval{
			Source: fmt.Sprintf("approval %d", i+1),
			Data:   pem.EncodeToMemory(&pem.Block{Type: plan.ApprovalPEMType, Bytes: a}),
		})
	}
	return named
}

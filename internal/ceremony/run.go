package ceremony

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
)

// Run performs a release ceremony: it checks the plan and its quorum, records
// the release id in the primary HSM's ledger, generates the RWK, KDF seed,
// KDF salt and TWK as exportable HSM keys, and seals them to every region of
// the plan and to the primary's own copy. Files: RELEASE.REGION.bundle for
// each region, RELEASE.primary, RELEASE.transcript.
func Run(ctx context.Context, h hsm.HSM, in Inputs, now func() time.Time) (*Output, error) {
	p, err := openPrimary(ctx, h, now)
	if err != nil {
		return nil, err
	}
	pl, planDER, approvals, err := p.check(in, plan.Release)
	if err != nil {
		return nil, err
	}
	if err := p.recordIssue(ctx, pl.Release); err != nil {
		return nil, err
	}

	s := &secrets{}
	defer s.destroy(ctx)
	spec := hsm.KeySpec{Ephemeral: true, Exportable: true}
	if s.rwk, err = h.GenerateSecretKey(ctx, spec); err != nil {
		return nil, fmt.Errorf("ceremony: generate the release wrapping key: %w", err)
	}
	if err := p.record("secret.generated", "name", "rwk", "handle", "ephemeral session key"); err != nil {
		return nil, err
	}
	for _, name := range release.SecretNames {
		k, err := h.GenerateSecretKey(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("ceremony: generate %s: %w", name, err)
		}
		c, err := k.Digest(ctx, release.CommitmentPrefix(pl.Release, name))
		if err != nil {
			return nil, fmt.Errorf("ceremony: commit to %s: %w", name, err)
		}
		s.keys, s.com = append(s.keys, k), append(s.com, c)
		if err := p.record("secret.generated", "name", name, "commitment", hex.EncodeToString(c[:])); err != nil {
			return nil, err
		}
	}

	if err := p.sealAll(ctx, s, pl, planDER, approvals); err != nil {
		return nil, err
	}
	own := p.pub.EncryptionKeyID()
	ownHash := h.Info().OAEPHashes[0]
	if err := p.seal(ctx, s, pl, planDER, approvals, release.PrimaryCopy, &own, func() ([]byte, hsm.OAEPHash, error) {
		ct, err := s.rwk.WrapRSA(ctx, p.pub.Encryption, ownHash)
		return ct, ownHash, err
	}); err != nil {
		return nil, err
	}
	return p.finish(pl.Release + ".transcript")
}

// recordIssue adds the release id to the ledger, refusing an id issued before.
func (p *primary) recordIssue(ctx context.Context, id string) error {
	_, err := p.h.GenerateSecretKey(ctx, hsm.KeySpec{Label: LedgerPrefix + id})
	if errors.Is(err, hsm.ErrExists) {
		return fmt.Errorf("%w: %s was issued before by this primary; plan a new release id", ErrIssued, id)
	}
	if err != nil {
		return fmt.Errorf("ceremony: record %s in the ledger: %w", id, err)
	}
	return p.record("ledger.recorded", "release", id, "label", LedgerPrefix+id)
}

// Export gives an issued release to the regions of an export plan (regions
// enrolled after the release). It needs the primary's copy of the release:
// the RWK is unwrapped into the primary HSM from it, the secrets are
// unwrapped under the RWK and checked against their commitments, and they are
// sealed to the new regions exactly as in Run. Files: one bundle per region
// and RELEASE.export-TIME.transcript.
func Export(ctx context.Context, h hsm.HSM, in Inputs, now func() time.Time) (*Output, error) {
	p, err := openPrimary(ctx, h, now)
	if err != nil {
		return nil, err
	}
	pl, planDER, approvals, err := p.check(in, plan.Export)
	if err != nil {
		return nil, err
	}
	if _, err := h.SecretKey(ctx, LedgerPrefix+pl.Release); errors.Is(err, hsm.ErrNotFound) {
		return nil, fmt.Errorf("ceremony: release %s was never issued by this primary", pl.Release)
	} else if err != nil {
		return nil, err
	}
	cp, _, err := release.Verify(in.PrimaryCopy, p.pub)
	if err != nil {
		return nil, fmt.Errorf("ceremony: the primary copy: %w", err)
	}
	if cp.Region != release.PrimaryCopy || cp.Release != pl.Release {
		return nil, fmt.Errorf("ceremony: %s is not the primary copy of release %s", cp.Name(), pl.Release)
	}
	if cp.Iterations != pl.Iterations {
		return nil, fmt.Errorf("ceremony: the export plan says %d PBKDF2 iterations, release %s has %d", pl.Iterations, pl.Release, cp.Iterations)
	}
	if err := p.record("primary-copy.verified", "release", cp.Release, "transcript-head", hex.EncodeToString(cp.Transcript[:])); err != nil {
		return nil, err
	}

	s := &secrets{}
	defer s.destroy(ctx)
	spec := hsm.KeySpec{Ephemeral: true, Exportable: true}
	if s.rwk, err = p.enc.Unwrap(ctx, cp.RWK, cp.OAEPHash, spec); err != nil {
		return nil, fmt.Errorf("ceremony: unwrap the release wrapping key: %w", err)
	}
	for _, ws := range cp.Secrets {
		k, err := s.rwk.Unwrap(ctx, ws.Wrapped, release.WrapContext(cp.Release, release.PrimaryCopy, ws.Name), spec)
		if err != nil {
			return nil, fmt.Errorf("ceremony: unwrap %s from the primary copy: %w", ws.Name, err)
		}
		s.keys = append(s.keys, k)
		c, err := k.Digest(ctx, release.CommitmentPrefix(cp.Release, ws.Name))
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(c[:], ws.Commitment[:]) != 1 {
			return nil, fmt.Errorf("ceremony: %s from the primary copy does not match its commitment", ws.Name)
		}
		s.com = append(s.com, c)
		if err := p.record("secret.recovered", "name", ws.Name, "commitment", hex.EncodeToString(c[:])); err != nil {
			return nil, err
		}
	}
	if err := p.sealAll(ctx, s, pl, planDER, approvals); err != nil {
		return nil, err
	}
	return p.finish(fmt.Sprintf("%s.export-%s.transcript", pl.Release, p.now().UTC().Format("20060102T150405Z")))
}

// Primary returns the public keys of an initialized primary HSM, for callers
// that need to verify what it signed.
func Primary(ctx context.Context, h hsm.HSM) (*enroll.Primary, error) {
	p, err := openPrimary(ctx, h, time.Now)
	if err != nil {
		return nil, err
	}
	return p.pub, nil
}

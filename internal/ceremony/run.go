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
// the release id in the primary HSM's ledger, generates the release's master
// secrets (KDF seed, KDF salt, TWK) as session keys, derives each region's
// own secrets from them and seals those to the region under a fresh RWK, and
// seals the masters to the primary's own unwrap-only key (the primary copy,
// for later exports). Files: RELEASE.REGION.bundle for each region,
// RELEASE.primary, RELEASE.transcript.
func Run(ctx context.Context, h hsm.HSM, in Inputs, now func() time.Time) (*Output, error) {
	p, err := openPrimary(ctx, h, now)
	if err != nil {
		return nil, err
	}
	pl, planDER, approvals, err := p.check(in, plan.Release)
	if err != nil {
		return nil, err
	}
	if err := p.recordLedger(ctx, LedgerPrefix+pl.Release, pl.Release+" was issued before by this primary; plan a new release id"); err != nil {
		return nil, err
	}

	m := &masters{}
	defer m.destroy(ctx)
	var checks [][32]byte // the primary copy's commitments
	for _, name := range release.SecretNames {
		k, err := h.GenerateSecretKey(ctx, session)
		if err != nil {
			return nil, fmt.Errorf("ceremony: generate %s: %w", name, err)
		}
		m.keys = append(m.keys, k)
		c, err := checkOf(ctx, pl.Release, name, k)
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
		if err := p.record("secret.generated", "name", name, "check", hex.EncodeToString(c[:])); err != nil {
			return nil, err
		}
	}

	sl := sealing{plan: pl, planDER: planDER, approvals: approvals, issued: pl.Created}
	if err := p.sealRegions(ctx, m, sl); err != nil {
		return nil, err
	}
	ownHash := h.Info().OAEPHashes[0]
	if err := p.seal(ctx, sl, release.PrimaryCopy, p.pub.EncryptionKeyID(), m.keys, checks, func(rwk hsm.SecretKey) ([]byte, hsm.OAEPHash, error) {
		ct, err := rwk.WrapRSA(ctx, p.pub.Encryption, ownHash)
		return ct, ownHash, err
	}); err != nil {
		return nil, err
	}
	return p.finish(pl.Release + ".transcript")
}

// recordLedger adds the entry label to the ledger, refusing one made before
// (ErrIssued, with why).
func (p *primary) recordLedger(ctx context.Context, label, why string) error {
	_, err := p.h.GenerateSecretKey(ctx, hsm.KeySpec{Label: label})
	if errors.Is(err, hsm.ErrExists) {
		return fmt.Errorf("%w: %s", ErrIssued, why)
	}
	if err != nil {
		return fmt.Errorf("ceremony: record %s in the ledger: %w", label, err)
	}
	return p.record("ledger.recorded", "release", p.log.Release, "label", label)
}

// Export gives an issued release to the regions of an export plan (regions
// enrolled after the release). It needs the primary's copy of the release:
// its RWK is unwrapped by the primary's unwrap-only key into a key that
// never leaves the HSM, the masters under it likewise, and they are checked
// against the copy's commitments; each new region's secrets are then derived
// and sealed exactly as in Run (so they are the same as if the region had
// been in the release plan). The export plan is recorded in the ledger and
// runs once. Files: one bundle per region and RELEASE.export-TIME.transcript.
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
	if cp.Region != release.PrimaryCopy || cp.Release != pl.Release || cp.Kind != release.KindRelease {
		return nil, fmt.Errorf("ceremony: %s is not the primary copy of release %s", cp.Name(), pl.Release)
	}
	if cp.Iterations != pl.Iterations {
		return nil, fmt.Errorf("ceremony: the export plan says %d PBKDF2 iterations, release %s has %d", pl.Iterations, pl.Release, cp.Iterations)
	}
	if err := p.record("primary-copy.verified", "release", cp.Release, "issued", cp.Issued.Format(time.RFC3339),
		"transcript-head", hex.EncodeToString(cp.Transcript[:])); err != nil {
		return nil, err
	}
	digest := pl.Digest()
	if err := p.recordLedger(ctx, ExportLedgerPrefix+pl.Release+"/"+hex.EncodeToString(digest[:]),
		"this export plan of "+pl.Release+" already ran; plan the export again"); err != nil {
		return nil, err
	}

	// Unwrapped by the unwrap-only key, the RWK is never exportable; it
	// may only unwrap the masters, which may only derive.
	inside := hsm.KeySpec{Ephemeral: true, Derivable: true}
	rwk, err := p.enc.Unwrap(ctx, cp.RWK, cp.OAEPHash, inside)
	if err != nil {
		return nil, fmt.Errorf("ceremony: unwrap the release wrapping key of the primary copy: %w", err)
	}
	defer rwk.Destroy(ctx)
	m := &masters{}
	defer m.destroy(ctx)
	for _, ws := range cp.Secrets {
		k, err := rwk.Unwrap(ctx, ws.Wrapped, release.WrapContext(cp.Release, release.PrimaryCopy, ws.Name), inside)
		if err != nil {
			return nil, fmt.Errorf("ceremony: unwrap %s from the primary copy: %w", ws.Name, err)
		}
		m.keys = append(m.keys, k)
		c, err := checkOf(ctx, cp.Release, ws.Name, k)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(c[:], ws.Commitment[:]) != 1 {
			return nil, fmt.Errorf("ceremony: %s from the primary copy does not match its commitment", ws.Name)
		}
		if err := p.record("secret.recovered", "name", ws.Name, "check", hex.EncodeToString(c[:])); err != nil {
			return nil, err
		}
	}
	if err := p.sealRegions(ctx, m, sealing{plan: pl, planDER: planDER, approvals: approvals, issued: cp.Issued}); err != nil {
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

package escrow

import (
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
)

// realBundle makes, without a ceremony, an eu1 bundle that release.Verify
// accepts: a plan for eu1 with one officer and quorum 1, approved.
func realBundle(t *testing.T, f *fixture, releaseID string) []byte {
	t.Helper()
	pl, err := plan.New(plan.Plan{
		Kind: plan.Release, Release: releaseID, Created: now, Primary: f.primary.SigningKeyID(),
		Regions: []*enroll.Certificate{f.regionCert}, Officers: []*officer.Public{f.officerPub}, Quorum: 1,
	})
	if err != nil {
		t.Fatalf("plan.New() error = %v", err)
	}
	approval := plan.Approve(f.officerSigner, pl, now)
	// Bundles carry the approvals counted; try them as files first, then
	// binary, whichever release.Verify reads.
	blk, _ := pem.Decode(approval)
	var verr error
	for _, a := range [][]byte{approval, blk.Bytes} {
		b := bundleTemplate(t, f.primarySigner, releaseID, "eu1", pl.Raw(), [][]byte{a}, f.regionCert.KeyID())
		b.Iterations = pl.Iterations
		der := signBundle(t, f.primarySigner, b)
		if _, _, verr = release.Verify(release.Encode(der), f.primary); verr == nil {
			return der
		}
	}
	t.Fatalf("release.Verify(hand-made bundle) error = %v", verr)
	return nil
}

// TestServerVerifiesBundles runs the escrow with the primary's public keys:
// it serves the bundle release.Verify accepts and skips, and logs, a bundle
// with a made-up plan and one signed by another primary.
func TestServerVerifiesBundles(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	good := writeBundle(t, dir, "2026-1.eu1.bundle", realBundle(t, f, "2026-1"))
	writeBundle(t, dir, "2026-2.eu1.bundle", fakeBundle(t, f.primarySigner, "2026-2", "eu1"))
	writeBundle(t, dir, "2026-3.eu1.bundle", fakeBundle(t, f.otherSigner, "2026-3", "eu1"))
	ts, logs := startEscrow(t, dir, f.escrow1, f.cert1.Raw(), f.primary)
	got, err := fetch(t, ts, "eu1")
	if err != nil {
		t.Fatalf("Fetch() error = %v", err)
	}
	if !slices.Equal(names(got), []string{"2026-1.eu1.bundle"}) || string(got[0].PEM) != string(good) {
		t.Errorf("Fetch() = %v, want only the bundle that verifies", names(got))
	}
	l := logs.String()
	for _, file := range []string{"2026-2.eu1.bundle", "2026-3.eu1.bundle"} {
		if !strings.Contains(l, "skipping: bundle does not verify") || !strings.Contains(l, "file="+file) {
			t.Errorf("the escrow did not log skipping %s:\n%s", file, l)
		}
	}
}

package ceremony

import (
	"context"
	"io"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
)

// TestBackends runs the whole ceremony with the primary on each backend and
// a region on each backend, and opens every bundle in its region. SoftHSM2
// decrypts and wraps RSA-OAEP with SHA-1 only, so the ceremony must pick the
// best hash each pair has in common.
func TestBackends(t *testing.T) {
	ctx := context.Background()
	softPrimary := newPrimary(t, openSoft(t, "matrix-primary"))
	p11Primary := newPrimary(t, openPKCS11(t, "mprimary"))
	for _, pc := range []struct {
		name string
		p    *primarySite
	}{{"soft primary", softPrimary}, {"pkcs11 primary", p11Primary}} {
		t.Run(pc.name, func(t *testing.T) {
			regions := []*regionSite{
				enrollRegion(t, pc.p, openSoft(t, "matrix-"+pc.p.pub.SigningKeyID().Short()), "soft1"),
				enrollRegion(t, pc.p, openPKCS11(t, "mregion"), "hsm1"),
			}
			pl := makePlan(t, plan.Release, "matrix", pc.p, regions...)
			out, err := Run(ctx, pc.p.h, Inputs{Plan: pl.Marshal(), Approvals: approve(t, pl, "alice", "bob")}, clock())
			if err != nil {
				t.Fatalf("Run() error = %v", err)
			}
			if n := VerifyFiles(io.Discard, pc.p.pub, out.Files, false); n != 0 {
				t.Fatalf("VerifyFiles() = %d failures", n)
			}
			var first *release.Release
			for _, r := range regions {
				data := out.Files[release.FileName("matrix", r.name)]
				b, _, err := release.Verify(data, pc.p.pub)
				if err != nil {
					t.Fatal(err)
				}
				want := hsm.OAEPSHA1
				if pc.p.h.Info().SupportsOAEP(hsm.OAEPSHA256) && r.h.Info().SupportsOAEP(hsm.OAEPSHA256) {
					want = hsm.OAEPSHA256
				}
				if b.OAEPHash != want {
					t.Errorf("%s: bundle uses OAEP-%v, want %v", r.name, b.OAEPHash, want)
				}
				got, err := release.Open(ctx, r.h, data, release.Trust{Primary: pc.p.pub, Region: r.name})
				if err != nil {
					t.Fatalf("%s (%s) Open() error = %v", r.name, r.h.Info().Backend, err)
				}
				if first == nil {
					first = got
				} else if !first.Seed.Equal(got.Seed) || !first.TWK.Equal(got.TWK) || !first.Salt.Equal(got.Salt) {
					t.Errorf("%s opened other secrets than %s", r.name, regions[0].name)
				}
			}
			// The late-region export works from this primary too.
			late := enrollRegion(t, pc.p, openSoft(t, "late-"+pc.p.pub.SigningKeyID().Short()), "late1")
			epl := makePlan(t, plan.Export, "matrix", pc.p, late)
			exp, err := Export(ctx, pc.p.h, Inputs{Plan: epl.Marshal(), Approvals: approve(t, epl, "bob", "carol"),
				PrimaryCopy: out.Files["matrix.primary"]}, clock())
			if err != nil {
				t.Fatalf("Export() error = %v", err)
			}
			got, err := release.Open(ctx, late.h, exp.Files["matrix.late1.bundle"], release.Trust{Primary: pc.p.pub, Region: "late1"})
			if err != nil {
				t.Fatalf("late1 Open() error = %v", err)
			}
			if !got.Seed.Equal(first.Seed) {
				t.Error("the exported release differs")
			}
		})
	}
}

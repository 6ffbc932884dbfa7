package ceremony_test

import (
	"context"
	"io"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/ceremony"
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
	for _, pc := range []struct {
		name   string
		pkcs11 bool
	}{{"soft primary", false}, {"pkcs11 primary", true}} {
		t.Run(pc.name, func(t *testing.T) {
			// The primary on pc's backend, soft1 on a soft HSM, hsm1 on SoftHSM2.
			w, err := newWorld([]string{"soft1", "hsm1"}, func(_ context.Context, region string) (hsm.HSM, error) {
				switch {
				case region == "" && pc.pkcs11:
					return openPKCS11(t, "mprimary"), nil
				case region == "hsm1":
					return openPKCS11(t, "mregion"), nil
				}
				return nil, nil // a soft HSM
			})
			if err != nil {
				t.Fatalf("world.New() error = %v", err)
			}
			t.Cleanup(func() { w.Close() })
			regions := []string{"soft1", "hsm1"}
			pl := makePlan(t, w, plan.Release, "matrix", regions...)
			out, err := ceremony.Run(ctx, w.Primary.HSM, ceremony.Inputs{Plan: pl.Marshal(), Approvals: approve(t, w, pl, "alice", "bob")}, clock())
			if err != nil {
				t.Fatalf("Run() error = %v", err)
			}
			if n := ceremony.VerifyFiles(io.Discard, w.Primary.Public, out.Files, false); n != 0 {
				t.Fatalf("VerifyFiles() = %d failures", n)
			}
			checkPrimaryCopySealed(t, w, out.Files["matrix.primary"])
			var first *release.Release
			for _, name := range regions {
				r := w.Regions[name]
				data := out.Files[release.FileName("matrix", r.Name)]
				b, _, err := release.Verify(data, w.Primary.Public)
				if err != nil {
					t.Fatal(err)
				}
				want := hsm.OAEPSHA1
				if w.Primary.HSM.Info().SupportsOAEP(hsm.OAEPSHA256) && r.HSM.Info().SupportsOAEP(hsm.OAEPSHA256) {
					want = hsm.OAEPSHA256
				}
				if b.OAEPHash != want {
					t.Errorf("%s: bundle uses OAEP-%v, want %v", r.Name, b.OAEPHash, want)
				}
				got, err := release.Open(ctx, r.HSM, data, release.Trust{Primary: w.Primary.Public, Region: r.Name})
				if err != nil {
					t.Fatalf("%s (%s) Open() error = %v", r.Name, r.HSM.Info().Backend, err)
				}
				if first == nil {
					first = got
				} else {
					checkIsolated(t, first, got)
				}
			}
			// The late-region export works from this primary too.
			late := enrollRegion(t, w, "late1")
			epl := makePlan(t, w, plan.Export, "matrix", "late1")
			exp, err := ceremony.Export(ctx, w.Primary.HSM, ceremony.Inputs{Plan: epl.Marshal(), Approvals: approve(t, w, epl, "bob", "carol"),
				PrimaryCopy: out.Files["matrix.primary"]}, clock())
			if err != nil {
				t.Fatalf("Export() error = %v", err)
			}
			got, err := release.Open(ctx, late.HSM, exp.Files["matrix.late1.bundle"], release.Trust{Primary: w.Primary.Public, Region: "late1"})
			if err != nil {
				t.Fatalf("late1 Open() error = %v", err)
			}
			checkIsolated(t, first, got)
			// Exported to soft1 again, the release gives soft1 exactly its
			// own secrets.
			checkReexport(t, w, out.Files["matrix.primary"], first)
		})
	}
}

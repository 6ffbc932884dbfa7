package world_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/ceremony"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/transcript"
	"github.com/strongroom-kms/strongroom/internal/world"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// TestWorld builds a world of two regions and three officers and checks
// each stage: the files, a release every region opens, the quorum, a late
// region.
func TestWorld(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := world.New(ctx, world.Options{Regions: []string{"eu1", "us1"}, Now: t0, Dir: dir, Passphrase: []byte("pass")})
	if err != nil {
		t.Fatalf("world.New() error = %v", err)
	}
	defer w.Close()

	t.Run("files", func(t *testing.T) {
		for _, f := range []string{"primary.hsm", "region-eu1.hsm", "region-us1.hsm"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("soft HSM file %s: %v", f, err)
			}
		}
		if p, err := enroll.ParsePrimary(w.Primary.PEM); err != nil || p.SigningKeyID() != w.Primary.Public.SigningKeyID() {
			t.Errorf("enroll.ParsePrimary(Primary.PEM) = %v, another key", err)
		}
		for _, name := range []string{"eu1", "us1"} {
			r := w.Regions[name]
			req, err := enroll.ParseRequest(r.Request)
			if err != nil || req.Region != name {
				t.Errorf("enroll.ParseRequest(%s request) = %v, %v, want region %s", name, req, err, name)
				continue
			}
			if r.Cert.Region != name || r.Cert.KeyID() != req.KeyID() || !bytes.Equal(r.Cert.Raw(), mustDER(t, r.CertPEM)) {
				t.Errorf("%s certificate = %s for key %v, want the request's", name, r.Cert.Region, r.Cert.KeyID())
			}
			if err := r.Cert.Verify(w.Primary.Public, t0.Add(time.Hour)); err != nil {
				t.Errorf("%s Cert.Verify() = %v, want nil", name, err)
			}
		}
		if len(w.Officers) != 3 {
			t.Errorf("len(Officers) = %d, want 3", len(w.Officers))
		}
		for _, name := range []string{"alice", "bob", "carol"} {
			o := w.Officers[name]
			s, err := officer.Open(o.KeyPEM, []byte("pass"))
			if err != nil || s.Public().ID() != o.Public.ID() || o.Signer.Public().ID() != o.Public.ID() {
				t.Errorf("officer.Open(%s key file) = %v, or another key", name, err)
				continue
			}
			s.Destroy()
			if pub, err := officer.ParsePublic(o.PublicPEM); err != nil || pub.Name != name {
				t.Errorf("officer.ParsePublic(%s public file) = %v, %v", name, pub, err)
			}
		}
	})

	t.Run("release", func(t *testing.T) {
		r, err := w.Release(ctx, "2026-1", world.Spec{})
		if err != nil {
			t.Fatalf("Release(2026-1) error = %v", err)
		}
		var sources []string
		for _, a := range r.Approvals {
			sources = append(sources, a.Source)
		}
		if !slices.Equal(sources, []string{"alice.approval", "bob.approval"}) || r.Plan.Quorum != 2 || r.Plan.Iterations != plan.MinIterations {
			t.Errorf("Release(2026-1) approvals %v, quorum %d, %d iterations; want alice and bob, 2, %d",
				sources, r.Plan.Quorum, r.Plan.Iterations, plan.MinIterations)
		}
		if n := ceremony.VerifyFiles(io.Discard, w.Primary.Public, r.Output.Files, false); n != 0 {
			t.Errorf("ceremony.VerifyFiles(release files) = %d failures, want 0", n)
		}
		l, err := transcript.Parse(mustDER(t, r.Transcript), w.Primary.Public.Signing)
		if err != nil || l.Release != "2026-1" {
			t.Errorf("transcript.Parse(Transcript) = %v, want release 2026-1", err)
		}
		var first *release.Release
		for _, name := range []string{"eu1", "us1"} {
			reg := w.Regions[name]
			got, err := release.Open(ctx, reg.HSM, r.Bundles[name], w.Trust(name))
			if err != nil {
				t.Fatalf("release.Open(%s bundle) error = %v", name, err)
			}
			if first == nil {
				first = got
			} else if got.Seed.Equal(first.Seed) || got.TWK.Equal(first.TWK) || got.Salt.Equal(first.Salt) {
				t.Errorf("release.Open(%s bundle) = a secret of eu1's: regions must hold their own", name)
			}
			cache := keycache.New(keycache.Options{})
			ring := release.NewRing(reg.HSM, w.Trust(name), cache)
			if _, err := ring.Load(ctx, release.FileName("2026-1", name), r.Bundles[name]); err != nil {
				t.Errorf("%s Ring.Load() error = %v", name, err)
			}
			if m, err := ring.Current(); err != nil || m.ID != "2026-1" {
				t.Errorf("%s Ring.Current() = %v, %v, want 2026-1", name, m.ID, err)
			}
			cache.Close()
		}
		if _, err := release.Open(ctx, w.Primary.HSM, r.PrimaryCopy, w.Trust(release.PrimaryCopy)); err == nil {
			t.Error("release.Open(primary copy) error = nil, want a refusal")
		}
		// A region opens its own bundle only.
		if _, err := release.Open(ctx, w.Regions["us1"].HSM, r.Bundles["eu1"], w.Trust("us1")); err == nil {
			t.Error("release.Open(eu1 bundle in us1) error = nil, want a refusal")
		}
	})

	t.Run("quorum", func(t *testing.T) {
		for _, c := range []struct {
			name string
			spec world.Spec
			want string // "" if it succeeds
		}{
			{"one of two", world.Spec{Approvers: []string{"alice"}}, "quorum not met: 1 of 2"},
			{"outsider", world.Spec{Officers: []string{"alice", "bob"}, Approvers: []string{"alice", "carol"}}, "not an officer of this plan"},
			{"two of three", world.Spec{Quorum: 3, Approvers: []string{"alice", "bob"}}, "quorum not met: 2 of 3"},
			{"three of three", world.Spec{Quorum: 3, Regions: []string{"us1"}}, ""},
			{"unknown officer", world.Spec{Approvers: []string{"mallory"}}, "world: no officer mallory"},
			{"unknown region", world.Spec{Regions: []string{"ap1"}}, "world: no region ap1"},
		} {
			id := "q-" + strings.ReplaceAll(c.name, " ", "-")
			r, err := w.Release(ctx, id, c.spec)
			if c.want == "" {
				if err != nil || len(r.Approvals) != 3 || len(r.Bundles) != 1 || r.Bundles["us1"] == nil {
					t.Errorf("%s: Release(%s) = %v, want 3 approvals and a us1 bundle", c.name, id, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: Release(%s) error = %v, want %q", c.name, id, err, c.want)
			}
		}
		// A refused release did not issue its id.
		if _, err := w.Release(ctx, "q-one-of-two", world.Spec{}); err != nil {
			t.Errorf("Release(q-one-of-two) with quorum error = %v", err)
		}
		if _, err := w.Release(ctx, "q-one-of-two", world.Spec{}); !errors.Is(err, ceremony.ErrIssued) {
			t.Errorf("Release(q-one-of-two) again error = %v, want ceremony.ErrIssued", err)
		}
	})

	t.Run("late region", func(t *testing.T) {
		created := t0.Add(24 * time.Hour)
		r, err := w.Release(ctx, "2026-2", world.Spec{Created: created, Officers: []string{"bob", "carol"}})
		if err != nil {
			t.Fatalf("Release(2026-2) error = %v", err)
		}
		if !r.Plan.Created.Equal(created) || r.Output.Transcript.Entries[0].Time.Before(created) {
			t.Errorf("Release(2026-2) made at %v, want %v", r.Plan.Created, created)
		}
		ap1, err := w.Enroll(ctx, "ap1")
		if err != nil {
			t.Fatalf("Enroll(ap1) error = %v", err)
		}
		if _, err := w.Enroll(ctx, "ap1"); err == nil {
			t.Error("Enroll(ap1) twice error = nil")
		}
		pl, err := w.Plan(plan.Export, "2026-2", world.Spec{Regions: []string{"ap1"}, Officers: []string{"bob", "carol"}})
		if err != nil {
			t.Fatalf("Plan(export) error = %v", err)
		}
		approvals, err := w.Approve(pl, "bob", "carol")
		if err != nil {
			t.Fatal(err)
		}
		exp, err := ceremony.Export(ctx, w.Primary.HSM, ceremony.Inputs{Plan: pl.Marshal(), Approvals: approvals, PrimaryCopy: r.PrimaryCopy}, time.Now)
		if err != nil {
			t.Fatalf("ceremony.Export() error = %v", err)
		}
		got, err := release.Open(ctx, ap1.HSM, exp.Files[release.FileName("2026-2", "ap1")], w.Trust("ap1"))
		if err != nil || got.ID != "2026-2" {
			t.Errorf("release.Open(ap1 export) = %v", err)
		}
	})
}

// TestOpenHSM: the hook is asked for the primary ("") and each region in
// order; a nil HSM means a soft one; on failure New closes what it opened.
func TestOpenHSM(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var asked []string
	var primary *closeRecorder
	_, err := world.New(ctx, world.Options{Regions: []string{"eu1", "us1"}, OpenHSM: func(ctx context.Context, region string) (hsm.HSM, error) {
		asked = append(asked, region)
		switch region {
		case "":
			h, err := soft.Open(ctx, filepath.Join(dir, "mine"), []byte("pass"), soft.Options{Create: true})
			primary = &closeRecorder{HSM: h}
			return primary, err
		case "eu1":
			return nil, nil
		}
		return nil, errors.New("no HSM here")
	}})
	if err == nil || !strings.Contains(err.Error(), "world: opening the HSM of region us1: no HSM here") {
		t.Fatalf("world.New(failing hook) error = %v, want it to name us1", err)
	}
	if !slices.Equal(asked, []string{"", "eu1", "us1"}) {
		t.Errorf("OpenHSM asked for %q, want the primary, eu1, us1", asked)
	}
	if !primary.closed {
		t.Error("the primary HSM is still open after New failed")
	}
}

type closeRecorder struct {
	hsm.HSM
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return c.HSM.Close()
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []world.Options{
		{Regions: []string{"eu1", "eu1"}},
		{Officers: []string{"alice", "alice"}},
	} {
		if _, err := world.New(context.Background(), o); err == nil || !strings.Contains(err.Error(), "named twice") {
			t.Errorf("world.New(%v, %v) error = %v, want a name twice", o.Regions, o.Officers, err)
		}
	}
}

func mustDER(t *testing.T, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("pem.Decode(%.20q) = nil", data)
	}
	return b.Bytes
}

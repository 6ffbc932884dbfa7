package release_test

import (
	"context"
	"encoding/pem"
	"errors"
	"path/filepath"
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
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// site runs real ceremonies for one soft primary and region eu1.
type site struct {
	primary, eu1 hsm.HSM
	pub          *enroll.Primary
	cert         *enroll.Certificate
	officers     []*officer.Signer
}

func newSite(t *testing.T) *site {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	open := func(name string) hsm.HSM {
		h, err := soft.Open(ctx, filepath.Join(dir, name), []byte("ring test"), soft.Options{Create: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	s := &site{primary: open("primary"), eu1: open("eu1")}
	pubPEM, err := enroll.InitPrimary(ctx, s.primary, now)
	if err != nil {
		t.Fatal(err)
	}
	s.pub, _ = enroll.ParsePrimary(pubPEM)
	reqPEM, err := enroll.InitRegion(ctx, s.eu1, "eu1", now)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := enroll.ParseRequest(reqPEM)
	signer, _ := s.primary.SigningKey(ctx, enroll.LabelPrimarySigning)
	if _, s.cert, err = enroll.Certify(ctx, signer, req, enroll.CertifyOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alice", "bob"} {
		key, _, err := officer.New(n, []byte("pass"), now)
		if err != nil {
			t.Fatal(err)
		}
		o, err := officer.Open(key, []byte("pass"))
		if err != nil {
			t.Fatal(err)
		}
		s.officers = append(s.officers, o)
	}
	return s
}

// release runs a ceremony and returns eu1's bundle.
func (s *site) release(t *testing.T, id string, at time.Time) []byte {
	t.Helper()
	pl, err := plan.New(plan.Plan{Kind: plan.Release, Release: id, Created: at, Iterations: plan.MinIterations,
		Primary: s.pub.SigningKeyID(), Regions: []*enroll.Certificate{s.cert},
		Officers: []*officer.Public{s.officers[0].Public(), s.officers[1].Public()}, Quorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	var approvals []plan.NamedApproval
	for _, o := range s.officers {
		approvals = append(approvals, plan.NamedApproval{Source: o.Public().Name, Data: plan.Approve(o, pl, at)})
	}
	out, err := ceremony.Run(context.Background(), s.primary, ceremony.Inputs{Plan: pl.Marshal(), Approvals: approvals},
		func() time.Time { return at })
	if err != nil {
		t.Fatalf("ceremony.Run(%s) error = %v", id, err)
	}
	return out.Files[release.FileName(id, "eu1")]
}

func TestRing(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	old := s.release(t, "2026-1", now)
	cur := s.release(t, "2026-2", now.Add(24*time.Hour))
	cache := keycache.New(keycache.Options{})
	defer cache.Close()
	ring := release.NewRing(s.eu1, release.Trust{Primary: s.pub, Region: "eu1"}, cache)

	if err := ring.Ready(); err == nil {
		t.Error("Ready() with no release = nil")
	}
	for name, data := range map[string][]byte{"2026-2.eu1.bundle": cur, "2026-1.eu1.bundle": old} {
		if _, err := ring.Load(ctx, name, data); err != nil {
			t.Fatalf("Load(%s) error = %v", name, err)
		}
	}
	if err := ring.Ready(); err != nil {
		t.Errorf("Ready() = %v", err)
	}
	if m, err := ring.Current(); err != nil || m.ID != "2026-2" {
		t.Errorf("Current() = %v, %v, want 2026-2", m.ID, err)
	}
	want, err := release.Open(ctx, s.eu1, old, release.Trust{Primary: s.pub, Region: "eu1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ring.Secret(ctx, "2026-1", release.SecretTWK)
	if err != nil || !got.Equal(want.TWK) {
		t.Fatalf("Secret(2026-1, twk) = %v, or not the bundle's TWK", err)
	}
	// Dropped from the cache: opened again through the HSM.
	if !cache.Evict("release/2026-1/" + release.SecretTWK) {
		t.Fatal("the TWK was not in the cache")
	}
	again, err := ring.Secret(ctx, "2026-1", release.SecretTWK)
	if err != nil || !again.Equal(want.TWK) {
		t.Errorf("Secret after eviction = %v, or another key", err)
	}
	if _, err := ring.Secret(ctx, "2099-1", release.SecretTWK); !errors.Is(err, release.ErrUnknownRelease) {
		t.Errorf("Secret(unknown release) error = %v", err)
	}
	// Loading the same bundle again is harmless. (A different bundle under a
	// loaded id cannot be made: the primary's ledger issues each id once.)
	if _, err := ring.Load(ctx, "again", old); err != nil {
		t.Errorf("Load(same bundle again) error = %v", err)
	}
}

func TestRingNotReadyNamesBadBundle(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	good := s.release(t, "2026-1", now)
	block, _ := pem.Decode(good)
	block.Bytes[len(block.Bytes)/2] ^= 0x10
	bad := pem.EncodeToMemory(block)

	cache := keycache.New(keycache.Options{})
	defer cache.Close()
	ring := release.NewRing(s.eu1, release.Trust{Primary: s.pub, Region: "eu1"}, cache)
	if _, err := ring.Load(ctx, "2026-1.eu1.bundle", good); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Load(ctx, "2026-9.eu1.bundle", bad); err == nil {
		t.Fatal("Load(corrupted bundle) error = nil")
	}
	err := ring.Ready()
	if err == nil || !strings.Contains(err.Error(), "2026-9.eu1.bundle") {
		t.Errorf("Ready() = %v, want it to name the corrupted bundle", err)
	}
}

// TestOfficerRoster: a region that pins its officers refuses a bundle whose
// plan names someone else, or asks for a smaller quorum, even though the
// primary signed it.
func TestOfficerRoster(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	bundle := s.release(t, "2026-1", now)
	alice, bob := s.officers[0].Public(), s.officers[1].Public()
	for name, c := range map[string]struct {
		roster *release.Roster
		want   string
	}{
		"all pinned":      {&release.Roster{IDs: map[[32]byte]string{alice.ID(): "alice", bob.ID(): "bob"}, MinQuorum: 2}, ""},
		"not pinned":      {nil, ""},
		"outsider":        {&release.Roster{IDs: map[[32]byte]string{alice.ID(): "alice"}, MinQuorum: 1}, "not in this region's officer roster"},
		"quorum too weak": {&release.Roster{IDs: map[[32]byte]string{alice.ID(): "alice", bob.ID(): "bob"}, MinQuorum: 3}, "requires at least 3"},
	} {
		_, err := release.Open(ctx, s.eu1, bundle, release.Trust{Primary: s.pub, Region: "eu1", Officers: c.roster})
		if c.want == "" && err != nil {
			t.Errorf("%s: Open() error = %v", name, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: Open() error = %v, want %q", name, err, c.want)
		}
	}
}

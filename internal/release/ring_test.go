package release_test

import (
	"context"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/world"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// newWorld is a soft primary, region eu1 and officers alice and bob
// (quorum 2), for one test: the primary's ledger issues each id once.
func newWorld(t *testing.T) *world.World {
	t.Helper()
	w, err := world.New(context.Background(), world.Options{Officers: []string{"alice", "bob"}, Now: now})
	if err != nil {
		t.Fatalf("world.New() error = %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// bundle runs the ceremony of release id at time at and returns eu1's
// bundle.
func bundle(t *testing.T, w *world.World, id string, at time.Time) []byte {
	t.Helper()
	r, err := w.Release(context.Background(), id, world.Spec{Created: at})
	if err != nil {
		t.Fatalf("Release(%s) error = %v", id, err)
	}
	return r.Bundles["eu1"]
}

func TestRing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	eu1 := w.Regions["eu1"].HSM
	old := bundle(t, w, "2026-1", now)
	cur := bundle(t, w, "2026-2", now.Add(24*time.Hour))
	cache := keycache.New(keycache.Options{})
	defer cache.Close()
	ring := release.NewRing(eu1, w.Trust("eu1"), cache)

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
	want, err := release.Open(ctx, eu1, old, w.Trust("eu1"))
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
	w := newWorld(t)
	good := bundle(t, w, "2026-1", now)
	block, _ := pem.Decode(good)
	block.Bytes[len(block.Bytes)/2] ^= 0x10
	bad := pem.EncodeToMemory(block)

	cache := keycache.New(keycache.Options{})
	defer cache.Close()
	ring := release.NewRing(w.Regions["eu1"].HSM, w.Trust("eu1"), cache)
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
	if _, err := ring.Load(ctx, "2026-8.eu1.bundle", []byte("not a bundle")); err == nil {
		t.Fatal("Load(not a bundle) error = nil")
	}
	// One problem per failed bundle, by name.
	if p := ring.Problems(); len(p) != 2 || !strings.HasPrefix(p[0], "2026-8.eu1.bundle: ") || !strings.HasPrefix(p[1], "2026-9.eu1.bundle: ") {
		t.Errorf("Problems() = %q, want one line for each failed bundle", p)
	}
	empty := release.NewRing(w.Regions["eu1"].HSM, w.Trust("eu1"), cache)
	if p := empty.Problems(); len(p) != 1 || p[0] != "no release is installed" {
		t.Errorf("Problems() of an empty ring = %q", p)
	}
}

// TestOfficerRoster: a region that pins its officers refuses a bundle whose
// plan names someone else, or asks for a smaller quorum, even though the
// primary signed it.
func TestOfficerRoster(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	b := bundle(t, w, "2026-1", now)
	alice, bob := w.Officers["alice"].Public, w.Officers["bob"].Public
	for name, c := range map[string]struct {
		roster *release.Roster
		want   string
	}{
		"all pinned":      {&release.Roster{IDs: map[[32]byte]string{alice.ID(): "alice", bob.ID(): "bob"}, MinQuorum: 2}, ""},
		"not pinned":      {nil, ""},
		"outsider":        {&release.Roster{IDs: map[[32]byte]string{alice.ID(): "alice"}, MinQuorum: 1}, "not in this region's officer roster"},
		"quorum too weak": {&release.Roster{IDs: map[[32]byte]string{alice.ID(): "alice", bob.ID(): "bob"}, MinQuorum: 3}, "requires at least 3"},
	} {
		_, err := release.Open(ctx, w.Regions["eu1"].HSM, b, release.Trust{Primary: w.Primary.Public, Region: "eu1", Officers: c.roster})
		if c.want == "" && err != nil {
			t.Errorf("%s: Open() error = %v", name, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: Open() error = %v, want %q", name, err, c.want)
		}
	}
}

// TestExportIsNotCurrent: an export of an old release to a region that
// already holds a newer one does not become the current release there.
// Releases are ordered by when they were planned, not by when their bundle
// was sealed.
func TestExportIsNotCurrent(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	r1, err := w.Release(ctx, "2026-1", world.Spec{Created: now})
	if err != nil {
		t.Fatal(err)
	}
	ap1, err := w.Enroll(ctx, "ap1")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := w.Release(ctx, "2026-2", world.Spec{Created: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := w.Export(ctx, "2026-1", r1.PrimaryCopy, world.Spec{Regions: []string{"ap1"}, Created: now.Add(48 * time.Hour)})
	if err != nil {
		t.Fatalf("Export(2026-1 to ap1) error = %v", err)
	}
	cache := keycache.New(keycache.Options{})
	defer cache.Close()
	ring := release.NewRing(ap1.HSM, w.Trust("ap1"), cache)
	for _, b := range []struct {
		name string
		data []byte
	}{{"2026-2.ap1.bundle", r2.Bundles["ap1"]}, {"2026-1.ap1.bundle", exp.Bundles["ap1"]}} {
		if _, err := ring.Load(ctx, b.name, b.data); err != nil {
			t.Fatalf("Load(%s) error = %v", b.name, err)
		}
	}
	m1, err := ring.Meta("2026-1")
	if err != nil {
		t.Fatal(err)
	}
	if !m1.Issued.Equal(now) || !m1.Created.Equal(now.Add(48*time.Hour)) || m1.Kind != release.KindExport {
		t.Errorf("export's Meta = %+v, want issued %s, sealed 48h later", m1, now)
	}
	if m, err := ring.Current(); err != nil || m.ID != "2026-2" {
		t.Errorf("Current() = %q, %v; want 2026-2 (the export of 2026-1 is older)", m.ID, err)
	}
	if got := ring.Releases(); len(got) != 2 || got[0].ID != "2026-1" || got[1].ID != "2026-2" {
		t.Errorf("Releases() = %+v, want 2026-1 then 2026-2", got)
	}
}

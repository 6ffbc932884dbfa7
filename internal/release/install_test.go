package release_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/release"
)

// installed is a store's list of installed bundles, in memory.
type installed []release.Installation

func (s installed) Releases(context.Context) ([]release.Installation, error) {
	return slices.Clone(s), nil
}

func (s installed) InstallRelease(context.Context, release.Installation, audit.Entry) (release.Installation, error) {
	return release.Installation{}, errors.New("read-only")
}

// TestLoadAllConcurrent: many bundles, opened concurrently, with a
// corrupted one and one that is not a bundle among them: each is reported
// once, in the store's order, the two fail with the errors Ring.Load gives
// them one by one, the others are loaded, and the ring ends as Ring.Load
// one by one leaves it.
func TestLoadAllConcurrent(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	var rows installed
	for i := range 12 {
		id := fmt.Sprintf("2026-%d", i+1)
		rows = append(rows, release.Installation{ID: id, Bundle: bundle(t, w, id, now.Add(time.Duration(i)*time.Hour))})
	}
	block, _ := pem.Decode(rows[5].Bundle)
	block.Bytes[len(block.Bytes)/2] ^= 0x10
	rows[5].Bundle = pem.EncodeToMemory(block)
	rows = slices.Insert(rows, 9, release.Installation{ID: "2026-99", Bundle: []byte("not a bundle")})

	newRing := func() *release.Ring {
		cache := keycache.New(keycache.Options{})
		t.Cleanup(cache.Close)
		return release.NewRing(w.Regions["eu1"].HSM, w.Trust("eu1"), cache)
	}
	// What loading them one by one gives.
	one := newRing()
	want := map[string]string{}
	for _, r := range rows {
		if _, err := one.Load(ctx, r.ID, r.Bundle); err != nil {
			want[r.ID] = err.Error()
		}
	}
	if len(want) != 2 || want["2026-6"] == "" || want["2026-99"] == "" {
		t.Fatalf("one by one, the failures are %q, want 2026-6 and 2026-99", want)
	}

	for round := range 3 {
		ring := newRing()
		var order []string
		got := map[string]string{}
		err := release.NewInstaller(ring, rows, nil).LoadAll(ctx, func(id string, m release.Meta, err error) {
			order = append(order, id)
			switch {
			case err != nil:
				got[id] = err.Error()
			case m.ID != id:
				t.Errorf("round %d: %s reported as release %q", round, id, m.ID)
			}
		})
		if err != nil {
			t.Fatalf("LoadAll() error = %v", err)
		}
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(order, ids) {
			t.Errorf("round %d: reported %q, want each once in the store's order %q", round, order, ids)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("round %d: failures %q, want %q", round, got, want)
		}
		if !slices.Equal(ring.Problems(), one.Problems()) {
			t.Errorf("round %d: Problems() = %q, want %q", round, ring.Problems(), one.Problems())
		}
		if !slices.Equal(ring.Releases(), one.Releases()) || len(ring.Releases()) != len(rows)-2 {
			t.Errorf("round %d: %d releases loaded, want %d as one by one", round, len(ring.Releases()), len(rows)-2)
		}
		if k, err := ring.Secret(ctx, "2026-12", release.SecretTWK); err != nil {
			t.Errorf("round %d: Secret(2026-12) error = %v", round, err)
		} else {
			k.Destroy()
		}
	}
}

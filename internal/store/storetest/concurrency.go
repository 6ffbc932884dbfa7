package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance tests of concurrent rotations.

// testConcurrentSame: 20 goroutines rotate the same series at once with a
// 24 h limit: exactly one wins, 19 are rate limited, one key is active.
func testConcurrentSame(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	const n = 20
	errs := AtOnce(n, func(i int) error {
		// Distinct times within the window: whichever wins, the others are limited.
		_, err := s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", fmt.Sprint("c", i)), t0.Add(time.Duration(i)*time.Minute)), rec)
		return err
	})
	won, limited := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrRateLimited):
			limited++
		default:
			t.Errorf("goroutine %d: Rotate() error = %v, want nil or ErrRateLimited", i, err)
		}
	}
	if won != 1 || limited != n-1 {
		t.Errorf("concurrent rotations: %d succeeded and %d were rate limited, want 1 and %d", won, limited, n-1)
	}
	ks, err := s.Keys(ctx, tn.ID, tenant.TypeData)
	if err != nil || len(ks) != 1 || ks[0].State != tenant.StateActive || ks[0].Version != 1 {
		t.Errorf("after concurrent rotations, Keys() = %d keys, %v, want exactly v1 active", len(ks), err)
	}

	// Without a rate limit every rotation succeeds, one after another:
	// versions 2..21 without gaps, exactly one active.
	errs = AtOnce(n, func(int) error {
		r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(day))
		r.MinInterval, r.MaxKeys = 0, 100
		_, err := s.Rotate(ctx, r, rec)
		return err
	})
	if ok := Succeeded(t, "Rotate(no limit)", errs, nil); ok != n {
		t.Errorf("%d of %d rotations without a limit succeeded", ok, n)
	}
	ks, err = s.Keys(ctx, tn.ID, tenant.TypeData)
	if err != nil || len(ks) != n+1 {
		t.Fatalf("Keys() = %d keys, %v, want %d", len(ks), err, n+1)
	}
	active := 0
	for i, k := range ks {
		if k.Version != uint32(i+1) {
			t.Errorf("Keys()[%d].Version = %d, want %d", i, k.Version, i+1)
		}
		if k.State == tenant.StateActive {
			active++
		}
	}
	if active != 1 || ks[n].State != tenant.StateActive {
		t.Errorf("%d active keys, want exactly one, the newest", active)
	}
}

// testConcurrentMany: concurrent first rotations of 20 tenants all succeed.
func testConcurrentMany(t *testing.T, s *store.Store) {
	mustRelease(t, s, "r1")
	const n = 20
	tenants := make([]tenant.Tenant, n)
	for i := range tenants {
		tenants[i] = mustTenant(t, s, fmt.Sprintf("tenant-%02d", i))
	}
	errs := AtOnce(n, func(i int) error {
		_, err := s.Rotate(ctx, rotateReq(tenants[i].ID, tenant.TypeData, newKey("r1", "same-secret"), t0), rec)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("tenant %d: Rotate() error = %v", i, err)
		}
	}
	for _, tn := range tenants {
		if k, err := s.ActiveKey(ctx, tn.ID, tenant.TypeData); err != nil || k.Version != 1 {
			t.Errorf("tenant %s: ActiveKey() = v%d, %v, want v1", tn.Name, k.Version, err)
		}
	}
}

// testConcurrentDuplicate: the same fingerprint uploaded at once as every key
// type of one tenant (different series, so different rotation locks on
// PostgreSQL): exactly one upload wins, the others are duplicates.
func testConcurrentDuplicate(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	types := tenant.KeyTypes()
	errs := AtOnce(len(types), func(i int) error {
		_, err := s.Rotate(ctx, rotateReq(tn.ID, types[i], newKey("r1", "uploaded twice"), t0), rec)
		return err
	})
	won := Succeeded(t, "Rotate(a key type)", errs, store.ErrDuplicate)
	ks, err := s.Keys(ctx, tn.ID, "")
	if won != 1 || err != nil || len(ks) != 1 {
		t.Errorf("%d uploads of one secret succeeded and %d keys stored (%v), want 1 and 1", won, len(ks), err)
	}
}

// atOnce runs fn(s, i) for i in 0…n-1 at once, with s = a for even i and b
// for odd ones (two nodes, or one store twice), and returns their errors.
func atOnce(n int, a, b *store.Store, fn func(s *store.Store, i int) error) []error {
	return AtOnce(n, func(i int) error {
		if i%2 == 1 {
			return fn(b, i)
		}
		return fn(a, i)
	})
}

// AtOnce runs fn(0) … fn(n-1) in n goroutines released together, as
// concurrent requests arrive, and returns their errors in order.
func AtOnce(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// Succeeded counts the nil errors, and fails the test for any other than
// one wrapping refused.
func Succeeded(t *testing.T, what string, errs []error, refused error) int {
	t.Helper()
	n := 0
	for i, err := range errs {
		switch {
		case err == nil:
			n++
		case !errors.Is(err, refused):
			t.Errorf("%s #%d error = %v, want nil or %v", what, i, err, refused)
		}
	}
	return n
}
